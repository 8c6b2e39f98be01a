package policy

import (
	"encoding/json"
	"fmt"
	"sort"
	"sync"

	"trueportai/services/gateway/internal/textpath"
)

// Rule types.
const (
	TypePII             = "pii"
	TypeSecrets         = "secrets"
	TypePromptInjection = "prompt_injection"
	TypeKeyword         = "keyword"
	TypeRegex           = "regex"
	TypeModelAllowlist  = "model_allowlist"
	TypeMaxTokens       = "max_tokens"
)

// Actions.
const (
	ActionBlock  = "block"
	ActionRedact = "redact"
	ActionFlag   = "flag"
)

// Modes. The empty mode means enforce.
const (
	ModeEnforce = "enforce"
	ModeShadow  = "shadow"
)

// Directions. An empty rule direction means request (the column default);
// an empty Input direction means request too.
const (
	DirectionRequest  = "request"
	DirectionResponse = "response"
	DirectionBoth     = "both"
)

// Severities, from least to most severe.
const (
	SeverityLow      = "low"
	SeverityMedium   = "medium"
	SeverityHigh     = "high"
	SeverityCritical = "critical"
)

// Scope restricts a rule; an empty list matches everything on that dimension.
// Models are globs ('*' any run, '?' one character, case-insensitive).
type Scope struct {
	Envs      []string `json:"envs,omitempty"`
	Providers []string `json:"providers,omitempty"`
	Models    []string `json:"models,omitempty"`
	KeyIDs    []string `json:"key_ids,omitempty"`
}

// Rule is a policy rule as stored (docs/decisions.md, "Policies").
type Rule struct {
	ID          string          `json:"id"`
	Name        string          `json:"name"`
	Description string          `json:"description"`
	Type        string          `json:"type"`
	Config      json.RawMessage `json:"config"`
	Action      string          `json:"action"`
	Enabled     bool            `json:"enabled"`
	Priority    int             `json:"priority"` // higher is evaluated (and reported) first
	Mode        string          `json:"mode"`     // enforce (default) | shadow
	Scope       Scope           `json:"scope"`
	Direction   string          `json:"direction"` // request (default) | response | both
}

// Input is one body to evaluate.
type Input struct {
	// Provider is the wire format of Body (its name is what scopes match);
	// nil makes every string of a JSON body text.
	Provider Format
	Env      string
	// Model is the requested model (from the body, the Gemini path or the
	// Azure deployment). When empty, the top-level "model" field of the
	// body is used for scope and allowlist checks.
	Model     string
	KeyID     string
	Body      []byte
	Direction string // request (default) | response
	// Raw makes Body plain text (a stream's text), never parsed as JSON.
	Raw bool
}

// Result of an evaluation.
type Result struct {
	// Blocked is true when an enforce-mode rule with action block matched.
	Blocked bool
	// Body is what to forward: the redacted, re-serialised body when an
	// enforce-mode redact rule matched and nothing blocked; otherwise the
	// input body (the same slice).
	Body []byte
	// Redacted is true when Body differs from the input body.
	Redacted bool
	// Violations lists every match, including flag and shadow ones, ordered
	// by rule priority (higher first; ties keep the order given to Compile).
	Violations []Violation
}

// Blocking returns the first (highest priority) violation that blocked the
// request, or nil.
func (r *Result) Blocking() *Violation {
	if !r.Blocked {
		return nil
	}
	for i := range r.Violations {
		v := &r.Violations[i]
		if v.Action == ActionBlock && !v.Shadow {
			return v
		}
	}
	return nil
}

// Violation is one rule that matched.
type Violation struct {
	PolicyID   string `json:"policy_id"`
	PolicyName string `json:"policy_name"`
	Type       string `json:"type"`
	// Action is the rule's configured action; with Shadow set it is what
	// would have happened.
	Action    string  `json:"action"`
	Severity  string  `json:"severity"`
	Shadow    bool    `json:"shadow,omitempty"`
	Direction string  `json:"direction"`       // request | response (the evaluated body)
	Score     float64 `json:"score,omitempty"` // prompt_injection only
	Matches   []Match `json:"matches"`
}

// Match is one masked match. Offset is a byte offset into the extracted text
// (the extracted strings joined with "\n"), or -1 for matches that are not
// in the text (model_allowlist, max_tokens output cap).
type Match struct {
	Kind    string `json:"kind"`
	Snippet string `json:"snippet"`
	Offset  int    `json:"offset"`
}

// MaxMatchesPerViolation caps the matches recorded on one violation;
// redaction still covers every match.
const MaxMatchesPerViolation = 20

// FieldError is a validation error naming the offending field, e.g. "type",
// "action", "config.pattern", "scope.providers".
type FieldError struct {
	Field   string
	Message string
}

func (e *FieldError) Error() string { return e.Field + ": " + e.Message }

func fieldErr(field, format string, args ...any) *FieldError {
	return &FieldError{Field: field, Message: fmt.Sprintf(format, args...)}
}

// Format is what the engine needs to know about a provider's wire format:
// its name (for scopes) and where its bodies carry text.
type Format interface {
	Name() string
	TextPaths(response bool) *textpath.Trie
}

// Validate checks a rule on write; providers are the names a scope may
// list. The error is a *FieldError. Disabled rules are validated too.
func Validate(r Rule, providers []string) error {
	_, err := compileRule(r, providers)
	if err != nil {
		return err
	}
	return nil
}

// Set is an immutable compiled rule set; Evaluate is safe for concurrent use.
type Set struct {
	rules []compiledRule
	lex   *lexicon
}

// Len returns the number of enabled rules in the set.
func (s *Set) Len() int {
	if s == nil {
		return 0
	}
	return len(s.rules)
}

// HasResponseRules reports whether any rule applies to responses, so callers
// buffer a response for evaluation only when something would look at it.
func (s *Set) HasResponseRules() bool {
	if s == nil {
		return false
	}
	for i := range s.rules {
		if s.rules[i].dirs&dirResponse != 0 {
			return true
		}
	}
	return false
}

// Compile validates and compiles the enabled rules (disabled ones are
// skipped without validation). Any invalid enabled rule fails the whole
// compilation (errors.As finds the *FieldError), so a snapshot never
// silently loses a rule. Rules are ordered by Priority, higher first; equal
// priorities keep the given order.
func Compile(rules []Rule) (*Set, error) {
	s := &Set{rules: make([]compiledRule, 0, len(rules))}
	for i, r := range rules {
		if !r.Enabled {
			continue
		}
		cr, err := compileRule(r, nil)
		if err != nil {
			return nil, fmt.Errorf("policy: rule %d (id %q): %w", i, r.ID, err)
		}
		s.rules = append(s.rules, *cr)
	}
	sort.SliceStable(s.rules, func(a, b int) bool { return s.rules[a].priority > s.rules[b].priority })
	var kws []kwSource
	for i := range s.rules {
		r := &s.rules[i]
		r.order = i
		if r.typ == rtKeyword {
			kws = append(kws, kwSource{order: i, pats: r.kwPats, cs: r.kwCase})
		}
	}
	s.lex = defaultLexicon
	if len(kws) > 0 {
		s.lex = buildLexicon(kws)
	}
	return s, nil
}

var statePool = sync.Pool{New: func() any { return new(evalState) }}

// Evaluate runs every applicable rule (direction and scope filtered) over
// the input. An enforce-mode block wins over everything (no redaction is
// done then); otherwise enforce-mode redactions are applied to the body;
// flag actions and shadow-mode rules only produce violations.
func (s *Set) Evaluate(in Input) Result {
	res := Result{Body: in.Body}
	if s == nil || len(s.rules) == 0 {
		return res
	}
	dir := dirRequest
	if in.Direction == DirectionResponse {
		dir = dirResponse
	}
	st := statePool.Get().(*evalState)
	st.reset(&in, dir, s.lex)
	for i := range s.rules {
		r := &s.rules[i]
		if r.dirs&dir == 0 || !r.scope.match(st) {
			continue
		}
		v, ok := r.evaluate(st)
		if !ok {
			continue
		}
		res.Violations = append(res.Violations, v)
		if r.action == actBlock && !r.shadow {
			res.Blocked = true
		}
	}
	if !res.Blocked && len(st.spans) > 0 {
		res.Body = st.rewrite()
		res.Redacted = true
	}
	st.release()
	statePool.Put(st)
	return res
}
