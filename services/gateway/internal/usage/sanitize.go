package usage

import (
	"errors"
	"strings"
	"unicode/utf8"
)

// Bounds of an event's free-text fields, in bytes. Model, env and provider
// are part of indexed keys (usage_logs' model index, the rollups' unique
// keys), and a btree entry over about 2.7 KB is refused by Postgres: a
// 3 KB model failed the whole batch it travelled in.
const (
	MaxIDBytes      = 128 // request, tenant, key, violation and policy ids
	MaxLabelBytes   = 64  // env, provider, outcome, violation type/action/severity/direction, match kind
	MaxModelBytes   = 256
	MaxKeyNameBytes = 256
	MaxPathBytes    = 2048
	MaxErrorBytes   = 1024
	MaxPolicyBytes  = 256 // policy name
	MaxSnippetBytes = 256
	MaxBodyBytes    = 64 << 10 // logged request and response bodies (the proxy's bound too)
	MaxViolations   = 64
	MaxMatches      = 32 // per violation
	MaxViolationIDs = MaxViolations

	minFitSnippet     = 32 // what Encode leaves of a snippet when an event must shrink
	minFitMatches     = 2  // and of a violation's matches
	truncationMarkLen = len(TruncationMark)
)

// TruncationMark ends every field Sanitize or Fit cut short.
const TruncationMark = "…[truncated]"

// ErrEventTooLarge is returned by Encode when an event cannot be made to
// fit the size asked for (practically unreachable once sanitised).
var ErrEventTooLarge = errors.New("usage event too large")

// Sanitize makes ev storable whatever its fields hold: invalid UTF-8 and
// NUL bytes (Postgres text and jsonb refuse NUL: one such event failed its
// whole batch) become U+FFFD, every free-text field is cut to its bound
// with TruncationMark at the end, and the lists of violations and matches
// are bounded. It reports whether anything changed. Sanitize is idempotent:
// a sanitised event is left as it is.
func (e *Event) Sanitize() (changed bool) {
	c := false
	clean := func(s *string, max int) {
		if v, ch := cleanString(*s, max); ch {
			*s, c = v, true
		}
	}
	clean(&e.RequestID, MaxIDBytes)
	clean(&e.TenantID, MaxIDBytes)
	clean(&e.Env, MaxLabelBytes)
	clean(&e.KeyID, MaxIDBytes)
	clean(&e.KeyName, MaxKeyNameBytes)
	clean(&e.Provider, MaxLabelBytes)
	clean(&e.Model, MaxModelBytes)
	clean(&e.Path, MaxPathBytes)
	clean(&e.Outcome, MaxLabelBytes)
	clean(&e.Error, MaxErrorBytes)
	for _, b := range []**string{&e.RequestBody, &e.ResponseBody} {
		if *b != nil {
			if v, ch := cleanString(**b, MaxBodyBytes); ch {
				nb := new(string) // a new string: the proxy's may be shared
				*nb = v
				*b, c = nb, true
			}
		}
	}
	if len(e.ViolationIDs) > MaxViolationIDs {
		e.ViolationIDs, c = e.ViolationIDs[:MaxViolationIDs:MaxViolationIDs], true
	}
	// The proxy's slices are never written to: a slice is copied before
	// its first change.
	copied := false
	for i, id := range e.ViolationIDs {
		if v, ch := cleanString(id, MaxIDBytes); ch {
			if !copied {
				e.ViolationIDs, copied = append([]string(nil), e.ViolationIDs...), true
			}
			e.ViolationIDs[i], c = v, true
		}
	}
	if len(e.Violations) > MaxViolations {
		e.Violations, c = e.Violations[:MaxViolations:MaxViolations], true
	}
	copied = false
	for i := range e.Violations {
		if v, ch := sanitizeViolation(e.Violations[i]); ch {
			if !copied {
				e.Violations, copied = append([]Violation(nil), e.Violations...), true
			}
			e.Violations[i], c = v, true
		}
	}
	return c
}

func sanitizeViolation(v Violation) (Violation, bool) {
	c := false
	clean := func(s *string, max int) {
		if n, ch := cleanString(*s, max); ch {
			*s, c = n, true
		}
	}
	clean(&v.ID, MaxIDBytes)
	clean(&v.PolicyID, MaxIDBytes)
	clean(&v.PolicyName, MaxPolicyBytes)
	clean(&v.Type, MaxLabelBytes)
	clean(&v.Action, MaxLabelBytes)
	clean(&v.Severity, MaxLabelBytes)
	clean(&v.Direction, MaxLabelBytes)
	if len(v.Matches) > MaxMatches {
		v.Matches, c = v.Matches[:MaxMatches:MaxMatches], true
	}
	copied := false
	for i, m := range v.Matches {
		k, ck := cleanString(m.Kind, MaxLabelBytes)
		s, cs := cleanString(m.Snippet, MaxSnippetBytes)
		if ck || cs {
			if !copied {
				v.Matches, copied = append([]Match(nil), v.Matches...), true
			}
			v.Matches[i].Kind, v.Matches[i].Snippet, c = k, s, true
		}
	}
	return v, c
}

// cleanString replaces invalid UTF-8 and NUL bytes with U+FFFD and cuts s
// to at most max bytes (on a rune boundary, TruncationMark included). It
// reports whether s changed; a clean short string is returned as it is,
// without allocating.
func cleanString(s string, max int) (string, bool) {
	changed := false
	if !utf8.ValidString(s) {
		s, changed = strings.ToValidUTF8(s, "\uFFFD"), true
	}
	if strings.IndexByte(s, 0) >= 0 {
		s, changed = strings.ReplaceAll(s, "\x00", "\uFFFD"), true
	}
	if len(s) > max {
		s, changed = cut(s, max), true
	}
	return s, changed
}

// cut shortens s to at most max bytes ending with TruncationMark (only the
// mark's prefix fits when max is below its length).
func cut(s string, max int) string {
	if len(s) <= max {
		return s
	}
	if max < truncationMarkLen {
		return ""
	}
	n := max - truncationMarkLen
	for n > 0 && !utf8.RuneStart(s[n]) {
		n--
	}
	return s[:n] + TruncationMark
}

// Encode sanitises ev and returns its binary line (encoding.go: '#' and the
// base64 of its protobuf), at most limit bytes: when the line is longer
// (base64 makes a 64 KiB body a third longer), the logged bodies are cut,
// then the violations' match lists and snippets, until it fits. Violations themselves, ids, tokens and costs are never
// dropped. sanitised reports whether ev was changed.
func Encode(ev *Event, limit int) (b []byte, sanitised bool, err error) {
	sanitised = ev.Sanitize()
	b = marshal(ev)
	for len(b) > limit {
		if !shrink(ev, len(b)-limit) {
			return nil, true, ErrEventTooLarge
		}
		sanitised = true
		b = marshal(ev)
	}
	return b, sanitised, nil
}

// shrink removes at least excess encoded bytes' worth of ev's bulk if it can:
// the logged bodies first (cut by the excess, at least by half, down to the
// mark alone), then every violation's matches (two left, snippets of
// minFitSnippet bytes), then the matches altogether. It reports false once
// nothing is left to cut.
func shrink(ev *Event, excess int) bool {
	for _, b := range []**string{&ev.ResponseBody, &ev.RequestBody} {
		if *b == nil || len(**b) <= truncationMarkLen {
			continue
		}
		s := cut(**b, max(len(**b)-max(excess, len(**b)/2), truncationMarkLen))
		*b = &s
		return true
	}
	long := func(ms []Match) bool {
		if len(ms) > minFitMatches {
			return true
		}
		for _, m := range ms {
			if len(m.Snippet) > minFitSnippet {
				return true
			}
		}
		return false
	}
	vs := append([]Violation(nil), ev.Violations...) // never written in place
	shrunk := false
	for i := range vs {
		if ms := vs[i].Matches; long(ms) {
			short := make([]Match, min(len(ms), minFitMatches))
			for j := range short {
				short[j] = Match{Kind: ms[j].Kind, Snippet: cut(ms[j].Snippet, minFitSnippet), Offset: ms[j].Offset}
			}
			vs[i].Matches, shrunk = short, true
		}
	}
	if !shrunk {
		for i := range vs {
			if len(vs[i].Matches) > 0 {
				vs[i].Matches, shrunk = []Match{}, true
			}
		}
	}
	ev.Violations = vs
	return shrunk
}
