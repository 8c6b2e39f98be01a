package policy

import (
	"bytes"
	"encoding/json"
	"errors"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"unicode/utf8"
)

type ruleType uint8

const (
	rtPII ruleType = iota
	rtSecrets
	rtInjection
	rtKeyword
	rtRegex
	rtModelAllowlist
	rtMaxTokens
)

type actionKind uint8

const (
	actBlock actionKind = iota
	actRedact
	actFlag
)

type direction uint8

const (
	dirRequest  direction = 1
	dirResponse direction = 2
)

// Limits enforced by Validate.
const (
	MaxNameLen         = 200
	MaxRegexLen        = 1000 // characters
	MaxKeywords        = 10000
	MaxKeywordLen      = 256 // bytes
	MaxKeywordBytes    = 64 << 10
	MaxAllowlistModels = 1000
	MaxScopeEntries    = 1000
)

// DefaultInjectionThreshold applies when prompt_injection config has no threshold.
const DefaultInjectionThreshold = 0.5

type compiledRule struct {
	id, name, typeName, actionName, dirName string

	typ      ruleType
	action   actionKind
	shadow   bool
	dirs     direction
	priority int
	order    int // position after priority sort; lower wins redaction label ties
	scope    compiledScope

	kinds     uint32 // pii / secrets kinds bitmask (bit = kind)
	threshold float64

	kwPats  []string
	kwCase  bool
	kwWhole bool

	re *regexp.Regexp

	models []string // lower-case globs

	maxOut, maxChars int64
}

// compileRule compiles one rule; with providers non-nil, a scope may only
// name those (on write), otherwise any name is kept (stored rules).
func compileRule(r Rule, providers []string) (*compiledRule, error) {
	cr := &compiledRule{id: r.ID, name: r.Name, typeName: r.Type, actionName: r.Action, priority: r.Priority}

	if strings.TrimSpace(r.Name) == "" {
		return nil, fieldErr("name", "is required")
	}
	if utf8.RuneCountInString(r.Name) > MaxNameLen {
		return nil, fieldErr("name", "must be at most %d characters", MaxNameLen)
	}

	switch r.Type {
	case TypePII:
		cr.typ = rtPII
	case TypeSecrets:
		cr.typ = rtSecrets
	case TypePromptInjection:
		cr.typ = rtInjection
	case TypeKeyword:
		cr.typ = rtKeyword
	case TypeRegex:
		cr.typ = rtRegex
	case TypeModelAllowlist:
		cr.typ = rtModelAllowlist
	case TypeMaxTokens:
		cr.typ = rtMaxTokens
	case "":
		return nil, fieldErr("type", "is required (one of pii, secrets, prompt_injection, keyword, regex, model_allowlist, max_tokens)")
	default:
		return nil, fieldErr("type", "unknown type %q (one of pii, secrets, prompt_injection, keyword, regex, model_allowlist, max_tokens)", r.Type)
	}

	requestOnly := cr.typ == rtModelAllowlist || cr.typ == rtMaxTokens
	switch r.Action {
	case ActionBlock:
		cr.action = actBlock
	case ActionRedact:
		if requestOnly {
			return nil, fieldErr("action", "redact is not supported for %s (use block or flag)", r.Type)
		}
		cr.action = actRedact
	case ActionFlag:
		cr.action = actFlag
	case "":
		return nil, fieldErr("action", "is required (one of block, redact, flag)")
	default:
		return nil, fieldErr("action", "unknown action %q (one of block, redact, flag)", r.Action)
	}

	switch r.Mode {
	case "", ModeEnforce:
	case ModeShadow:
		cr.shadow = true
	default:
		return nil, fieldErr("mode", "unknown mode %q (one of enforce, shadow)", r.Mode)
	}

	switch r.Direction {
	case "", DirectionRequest:
		cr.dirs, cr.dirName = dirRequest, DirectionRequest
	case DirectionResponse:
		if requestOnly {
			return nil, fieldErr("direction", "%s applies to requests only (use request or both)", r.Type)
		}
		cr.dirs, cr.dirName = dirResponse, DirectionResponse
	case DirectionBoth:
		cr.dirs, cr.dirName = dirRequest|dirResponse, DirectionBoth
		if requestOnly {
			cr.dirs = dirRequest
		}
	default:
		return nil, fieldErr("direction", "unknown direction %q (one of request, response, both)", r.Direction)
	}

	sc, err := compileScope(r.Scope, providers)
	if err != nil {
		return nil, err
	}
	cr.scope = sc

	if err := cr.compileConfig(r.Config); err != nil {
		return nil, err
	}
	return cr, nil
}

// decodeConfig decodes a rule config object into v, naming the field of a
// type mismatch. An absent or null config is an empty object.
func decodeConfig(raw json.RawMessage, v any) error {
	raw = bytes.TrimSpace(raw)
	if len(raw) == 0 || string(raw) == "null" {
		return nil
	}
	if raw[0] != '{' {
		return fieldErr("config", "must be a JSON object")
	}
	if err := json.Unmarshal(raw, v); err != nil {
		var te *json.UnmarshalTypeError
		if errors.As(err, &te) && te.Field != "" {
			return fieldErr("config."+te.Field, "must be %s", te.Type.String())
		}
		return fieldErr("config", "invalid JSON: %v", err)
	}
	return nil
}

func (cr *compiledRule) compileConfig(raw json.RawMessage) error {
	switch cr.typ {
	case rtPII:
		var c struct {
			Kinds []string `json:"kinds"`
		}
		if err := decodeConfig(raw, &c); err != nil {
			return err
		}
		if len(c.Kinds) == 0 {
			cr.kinds = piiAll
			return nil
		}
		for _, k := range c.Kinds {
			id, ok := kindByName(k)
			if !ok || !isPII(id) {
				return fieldErr("config.kinds", "unknown pii kind %q (one of %s)", k, kindList(kEmail, kIPv4))
			}
			cr.kinds |= 1 << id
		}
	case rtSecrets:
		var c struct {
			Kinds []string `json:"kinds"`
		}
		if err := decodeConfig(raw, &c); err != nil {
			return err
		}
		if len(c.Kinds) == 0 {
			cr.kinds = secretsAll
			return nil
		}
		for _, k := range c.Kinds {
			id, ok := kindByName(k)
			if !ok || !isSecret(id) {
				return fieldErr("config.kinds", "unknown secrets kind %q (one of %s)", k, kindList(kAWSAccessKey, kNPMToken))
			}
			cr.kinds |= 1 << id
		}
	case rtInjection:
		var c struct {
			Threshold *float64 `json:"threshold"`
		}
		if err := decodeConfig(raw, &c); err != nil {
			return err
		}
		cr.threshold = DefaultInjectionThreshold
		if c.Threshold != nil {
			if !(*c.Threshold > 0 && *c.Threshold <= 1) {
				return fieldErr("config.threshold", "must be greater than 0 and at most 1")
			}
			cr.threshold = *c.Threshold
		}
	case rtKeyword:
		var c struct {
			Keywords      []string `json:"keywords"`
			CaseSensitive bool     `json:"case_sensitive"`
			WholeWord     bool     `json:"whole_word"`
		}
		if err := decodeConfig(raw, &c); err != nil {
			return err
		}
		if len(c.Keywords) == 0 {
			return fieldErr("config.keywords", "must list at least one keyword")
		}
		if len(c.Keywords) > MaxKeywords {
			return fieldErr("config.keywords", "at most %d keywords", MaxKeywords)
		}
		pats := make([]string, 0, len(c.Keywords))
		total := 0
		for i, k := range c.Keywords {
			if total += len(k); total > MaxKeywordBytes {
				return fieldErr("config.keywords", "keywords total more than %d bytes", MaxKeywordBytes)
			}
			if strings.TrimSpace(k) == "" {
				return fieldErr("config.keywords", "keyword %d is empty", i)
			}
			if len(k) > MaxKeywordLen {
				return fieldErr("config.keywords", "keyword %d is longer than %d bytes", i, MaxKeywordLen)
			}
			pats = append(pats, k)
			if !c.CaseSensitive && !isASCII(k) {
				// ASCII letters fold in the automaton; for other scripts
				// match the lower- and upper-case spellings too.
				for _, v := range []string{strings.ToLower(k), strings.ToUpper(k)} {
					if v != k {
						pats = append(pats, v)
					}
				}
			}
		}
		cr.kwPats, cr.kwCase, cr.kwWhole = pats, c.CaseSensitive, c.WholeWord
	case rtRegex:
		var c struct {
			Pattern string `json:"pattern"`
		}
		if err := decodeConfig(raw, &c); err != nil {
			return err
		}
		if c.Pattern == "" {
			return fieldErr("config.pattern", "is required")
		}
		if utf8.RuneCountInString(c.Pattern) > MaxRegexLen {
			return fieldErr("config.pattern", "must be at most %d characters", MaxRegexLen)
		}
		re, err := regexp.Compile(c.Pattern)
		if err != nil {
			return fieldErr("config.pattern", "invalid RE2 pattern: %v", err)
		}
		if re.MatchString("") {
			return fieldErr("config.pattern", "must not match the empty string")
		}
		cr.re = re
	case rtModelAllowlist:
		var c struct {
			Models []string `json:"models"`
		}
		if err := decodeConfig(raw, &c); err != nil {
			return err
		}
		if len(c.Models) == 0 {
			return fieldErr("config.models", "must list at least one model")
		}
		if len(c.Models) > MaxAllowlistModels {
			return fieldErr("config.models", "at most %d models", MaxAllowlistModels)
		}
		for i, m := range c.Models {
			m = normModel(m)
			if m == "" {
				return fieldErr("config.models", "model %d is empty", i)
			}
			cr.models = append(cr.models, m)
		}
	case rtMaxTokens:
		var c struct {
			MaxOutputTokens *int64 `json:"max_output_tokens"`
			MaxPromptChars  *int64 `json:"max_prompt_chars"`
		}
		if err := decodeConfig(raw, &c); err != nil {
			return err
		}
		if c.MaxOutputTokens == nil && c.MaxPromptChars == nil {
			return fieldErr("config", "set max_output_tokens and/or max_prompt_chars")
		}
		if c.MaxOutputTokens != nil {
			if *c.MaxOutputTokens <= 0 {
				return fieldErr("config.max_output_tokens", "must be positive")
			}
			cr.maxOut = *c.MaxOutputTokens
		}
		if c.MaxPromptChars != nil {
			if *c.MaxPromptChars <= 0 {
				return fieldErr("config.max_prompt_chars", "must be positive")
			}
			cr.maxChars = *c.MaxPromptChars
		}
	}
	return nil
}

func isASCII(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] >= utf8.RuneSelf {
			return false
		}
	}
	return true
}

// ---- scope ----

type compiledScope struct {
	envs      strSet
	providers strSet // names; empty = all
	models    []string
	keyIDs    strSet
}

// strSet is a small string set: linear for a few entries, a map beyond.
type strSet struct {
	list []string
	m    map[string]struct{}
}

func newStrSet(field string, vals []string) (strSet, error) {
	var s strSet
	if len(vals) > MaxScopeEntries {
		return s, fieldErr(field, "at most %d entries", MaxScopeEntries)
	}
	for i, v := range vals {
		if v == "" {
			return s, fieldErr(field, "entry %d is empty", i)
		}
	}
	if len(vals) > 8 {
		s.m = make(map[string]struct{}, len(vals))
		for _, v := range vals {
			s.m[v] = struct{}{}
		}
		return s, nil
	}
	s.list = append([]string(nil), vals...)
	return s, nil
}

func (s *strSet) empty() bool { return s.m == nil && len(s.list) == 0 }

func (s *strSet) has(v string) bool {
	if s.m != nil {
		_, ok := s.m[v]
		return ok
	}
	for _, x := range s.list {
		if x == v {
			return true
		}
	}
	return false
}

func compileScope(sc Scope, known []string) (compiledScope, error) {
	var c compiledScope
	var err error
	if c.envs, err = newStrSet("scope.envs", sc.Envs); err != nil {
		return c, err
	}
	if c.keyIDs, err = newStrSet("scope.key_ids", sc.KeyIDs); err != nil {
		return c, err
	}
	if c.providers, err = newStrSet("scope.providers", sc.Providers); err != nil {
		return c, err
	}
	if known != nil {
		for _, p := range sc.Providers {
			if !slices.Contains(known, p) {
				return c, fieldErr("scope.providers", "unknown provider %q (one of %s)", p, strings.Join(known, ", "))
			}
		}
	}
	if len(sc.Models) > MaxScopeEntries {
		return c, fieldErr("scope.models", "at most %d entries", MaxScopeEntries)
	}
	for i, m := range sc.Models {
		m = normModel(m)
		if m == "" {
			return c, fieldErr("scope.models", "entry %d is empty", i)
		}
		c.models = append(c.models, m)
	}
	return c, nil
}

// match reports whether the input is in scope. An empty input value never
// matches a non-empty scope list (the model falls back to the body's
// top-level "model" first).
func (c *compiledScope) match(st *evalState) bool {
	in := st.in
	if !c.envs.empty() && !c.envs.has(in.Env) {
		return false
	}
	if !c.providers.empty() && (in.Provider == nil || !c.providers.has(in.Provider.Name())) {
		return false
	}
	if !c.keyIDs.empty() && !c.keyIDs.has(in.KeyID) {
		return false
	}
	if len(c.models) > 0 {
		m := st.modelName()
		if m == "" || !anyGlob(c.models, m) {
			return false
		}
	}
	return true
}

// normModel lower-cases a model name and drops Gemini's "models/" prefix.
func normModel(m string) string {
	m = strings.ToLower(strings.TrimSpace(m))
	return strings.TrimPrefix(m, "models/")
}

func anyGlob(globs []string, s string) bool {
	for _, g := range globs {
		if globMatch(g, s) {
			return true
		}
	}
	return false
}

// globMatch matches s against pattern with '*' (any run, '/' included) and
// '?' (one byte). Both are already lower-case.
func globMatch(p, s string) bool {
	px, sx := 0, 0
	starP, starS := -1, 0
	for sx < len(s) {
		if px < len(p) && (p[px] == '?' || p[px] == s[sx]) {
			px++
			sx++
			continue
		}
		if px < len(p) && p[px] == '*' {
			starP, starS = px, sx
			px++
			continue
		}
		if starP >= 0 {
			px = starP + 1
			starS++
			sx = starS
			continue
		}
		return false
	}
	for px < len(p) && p[px] == '*' {
		px++
	}
	return px == len(p)
}

// ---- evaluation ----

func (cr *compiledRule) evaluate(st *evalState) (Violation, bool) {
	st.hits = st.hits[:0]
	var v Violation
	switch cr.typ {
	case rtPII, rtSecrets:
		st.ensureText()
		if cr.typ == rtPII {
			st.collectPII(cr.kinds)
		} else {
			st.collectSecrets(cr.kinds)
		}
	case rtKeyword:
		st.ensureText()
		st.collectKeywords(cr)
	case rtRegex:
		st.ensureText()
		if len(st.text) > 0 {
			for _, m := range cr.re.FindAllIndex(st.text, -1) {
				if m[1] > m[0] {
					st.hits = append(st.hits, hit{start: m[0], end: m[1], kind: kRegex})
				}
			}
		}
	case rtInjection:
		st.ensureText()
		st.scoreInjection()
		if st.injScore < cr.threshold {
			return v, false
		}
		st.hits = append(st.hits, st.injHits...)
		v.Score = roundScore(st.injScore)
	case rtModelAllowlist:
		m := st.modelName()
		if m != "" && anyGlob(cr.models, m) {
			return v, false
		}
		snip := m
		if snip == "" {
			snip = "(no model)"
		}
		v.Matches = []Match{{Kind: "model", Snippet: truncate(snip, 128), Offset: -1}}
	case rtMaxTokens:
		st.ensureText()
		if cr.maxOut > 0 && st.maxOutSet && st.maxOut > float64(cr.maxOut) {
			v.Matches = append(v.Matches, Match{
				Kind:    "max_output_tokens",
				Snippet: st.maxOutField + "=" + strconv.FormatFloat(st.maxOut, 'f', -1, 64) + " exceeds " + strconv.FormatInt(cr.maxOut, 10),
				Offset:  -1,
			})
		}
		// characters <= bytes: count only when the bytes exceed the cap
		if cr.maxChars > 0 && int64(len(st.text)) > cr.maxChars {
			if n := st.promptChars(); n > cr.maxChars {
				v.Matches = append(v.Matches, Match{
					Kind:    "max_prompt_chars",
					Snippet: "prompt of " + strconv.FormatInt(n, 10) + " characters exceeds " + strconv.FormatInt(cr.maxChars, 10),
					Offset:  0,
				})
			}
		}
		if len(v.Matches) == 0 {
			return v, false
		}
	}

	if cr.typ != rtModelAllowlist && cr.typ != rtMaxTokens {
		if len(st.hits) == 0 {
			return v, false
		}
		sortHits(st.hits)
		if cr.action == actRedact && !cr.shadow {
			for _, h := range st.hits {
				st.spans = append(st.spans, span{start: h.start, end: h.end, label: cr.label(h.kind), order: cr.order})
			}
		}
		v.Matches = st.buildMatches(cr.typ)
	}

	v.PolicyID, v.PolicyName, v.Type, v.Action = cr.id, cr.name, cr.typeName, cr.actionName
	v.Shadow = cr.shadow
	v.Direction = DirectionRequest
	if st.dir == dirResponse {
		v.Direction = DirectionResponse
	}
	v.Severity = cr.severity(st, v.Score)
	return v, true
}

func (cr *compiledRule) label(k kind) string {
	switch cr.typ {
	case rtKeyword:
		return "[REDACTED:KEYWORD]"
	case rtRegex:
		return "[REDACTED:REGEX]"
	case rtInjection:
		return "[REDACTED:PROMPT_INJECTION]"
	}
	return kindLabel[k]
}

// severity: secrets high (private keys critical); pii medium (credit card,
// SSN, IBAN high; IPv4 low); prompt_injection medium (high from score 0.8);
// keyword, regex, model_allowlist medium; max_tokens low.
func (cr *compiledRule) severity(st *evalState, score float64) string {
	switch cr.typ {
	case rtSecrets:
		for _, h := range st.hits {
			if h.kind == kPrivateKey {
				return SeverityCritical
			}
		}
		return SeverityHigh
	case rtPII:
		sev := 0
		for _, h := range st.hits {
			s := 2
			switch h.kind {
			case kCreditCard, kUSSSN, kIBAN:
				s = 3
			case kIPv4:
				s = 1
			}
			sev = max(sev, s)
		}
		return [...]string{SeverityLow, SeverityLow, SeverityMedium, SeverityHigh}[sev]
	case rtInjection:
		if score >= 0.8 {
			return SeverityHigh
		}
		return SeverityMedium
	case rtMaxTokens:
		return SeverityLow
	}
	return SeverityMedium
}

func roundScore(f float64) float64 {
	return float64(int(f*1000+0.5)) / 1000
}
