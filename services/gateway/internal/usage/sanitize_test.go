package usage

import (
	"encoding/json"
	"strings"
	"testing"
	"unicode/utf8"
)

func cleanEvent() Event {
	body := `{"model":"gpt-4o-mini"}`
	return Event{RequestID: "0123456789abcdef0123456789abcdef", TenantID: "6f1c2a52-8f77-4a38-9d71-6f0a8d1e0a11", Env: "production",
		KeyID: "3c7d0c7e-2f7b-4f52-9d43-1f1f4c1b9e55", KeyName: "ci key", Provider: "openai", Model: "gpt-4o-mini",
		Path: "/chat/completions", StatusCode: 200, Outcome: OutcomeOK, RequestBody: &body,
		Violations: []Violation{{ID: "7d1f0f58-5f8e-4d8e-9c3f-2f1f4c1b9e55", PolicyID: "8d1f0f58-5f8e-4d8e-9c3f-2f1f4c1b9e55", PolicyName: "pii",
			Type: "pii", Action: "flag", Severity: "low", Direction: "request", Matches: []Match{{Kind: "email", Snippet: "a***@x.com", Offset: 3}}}}}
}

// TestSanitize: every free-text field comes out valid UTF-8 without NUL and
// within its bound, cut ones end with the mark, and a clean event is left
// exactly as it was.
func TestSanitize(t *testing.T) {
	huge := strings.Repeat("m", 2<<20)
	for _, tc := range []struct {
		name  string
		edit  func(*Event)
		check func(*testing.T, Event)
	}{
		{"clean", func(*Event) {}, func(t *testing.T, e Event) {
			if want := cleanEvent(); e.Model != want.Model || *e.RequestBody != *want.RequestBody {
				t.Errorf("clean event changed: %+v", e)
			}
		}},
		{"NUL in model", func(e *Event) { e.Model = "a\x00b" }, func(t *testing.T, e Event) {
			if e.Model != "a\uFFFDb" {
				t.Errorf("model = %q", e.Model)
			}
		}},
		{"invalid UTF-8 in model", func(e *Event) { e.Model = "gpt-\xff\xfe-4" }, func(t *testing.T, e Event) {
			if e.Model != "gpt-\uFFFD-4" {
				t.Errorf("model = %q", e.Model)
			}
		}},
		{"2 MB model", func(e *Event) { e.Model = huge }, func(t *testing.T, e Event) {
			if len(e.Model) != MaxModelBytes || !strings.HasSuffix(e.Model, TruncationMark) {
				t.Errorf("model of %d bytes ending %q", len(e.Model), e.Model[max(0, len(e.Model)-20):])
			}
		}},
		{"cut on a rune boundary", func(e *Event) { e.KeyName = strings.Repeat("é", 1000) }, func(t *testing.T, e Event) {
			if !utf8.ValidString(e.KeyName) || len(e.KeyName) > MaxKeyNameBytes || !strings.HasSuffix(e.KeyName, TruncationMark) {
				t.Errorf("key name %q (%d bytes)", e.KeyName, len(e.KeyName))
			}
		}},
		{"error, path, bodies, snippets", func(e *Event) {
			e.Error = strings.Repeat("x\x00", 5000)
			e.Path = "/" + huge
			b := strings.Repeat("\x00\xff", MaxBodyBytes)
			e.ResponseBody = &b
			e.Violations[0].Matches[0].Snippet = huge
			e.Violations[0].PolicyName = "p\x00"
		}, func(t *testing.T, e Event) {
			for name, s := range map[string]string{"error": e.Error, "path": e.Path, "response body": *e.ResponseBody,
				"snippet": e.Violations[0].Matches[0].Snippet} {
				if !strings.HasSuffix(s, TruncationMark) {
					t.Errorf("%s not marked as cut: ...%q", name, s[max(0, len(s)-20):])
				}
			}
			if e.Violations[0].PolicyName != "p\uFFFD" {
				t.Errorf("policy name %q", e.Violations[0].PolicyName)
			}
		}},
		{"too many violations and matches", func(e *Event) {
			v := e.Violations[0]
			v.Matches = make([]Match, 1000)
			e.Violations = make([]Violation, 1000)
			for i := range e.Violations {
				e.Violations[i] = v
			}
		}, func(t *testing.T, e Event) {
			if len(e.Violations) != MaxViolations || len(e.Violations[0].Matches) != MaxMatches {
				t.Errorf("%d violations, %d matches", len(e.Violations), len(e.Violations[0].Matches))
			}
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := cleanEvent()
			tc.edit(&e)
			sharedViolations := e.Violations
			before := sharedViolations[0].Matches[0].Snippet
			changed := e.Sanitize()
			if changed != (tc.name != "clean") {
				t.Errorf("Sanitize reported changed=%v", changed)
			}
			if tc.name != "clean" && tc.name != "too many violations and matches" && sharedViolations[0].Matches[0].Snippet != before {
				t.Error("the caller's violations were written in place")
			}
			checkStorable(t, e)
			tc.check(t, e)
			if again := e; again.Sanitize() {
				t.Error("Sanitize is not idempotent")
			}
		})
	}
}

// checkStorable fails t unless every string of e is valid UTF-8, without
// NUL, within its bound.
func checkStorable(t *testing.T, e Event) {
	t.Helper()
	check := func(name, s string, max int) {
		t.Helper()
		if !utf8.ValidString(s) || strings.IndexByte(s, 0) >= 0 || len(s) > max {
			t.Errorf("%s not storable: %d bytes, valid %v", name, len(s), utf8.ValidString(s))
		}
	}
	check("request_id", e.RequestID, MaxIDBytes)
	check("tenant_id", e.TenantID, MaxIDBytes)
	check("env", e.Env, MaxLabelBytes)
	check("key_name", e.KeyName, MaxKeyNameBytes)
	check("model", e.Model, MaxModelBytes)
	check("path", e.Path, MaxPathBytes)
	check("error", e.Error, MaxErrorBytes)
	for _, b := range []*string{e.RequestBody, e.ResponseBody} {
		if b != nil {
			check("body", *b, MaxBodyBytes)
		}
	}
	for _, v := range e.Violations {
		check("policy_name", v.PolicyName, MaxPolicyBytes)
		for _, m := range v.Matches {
			check("snippet", m.Snippet, MaxSnippetBytes)
		}
	}
}

// TestEncodeFitsTheMessageLimit: an event whose JSON escaping inflates it
// (bodies of '<' and control bytes take six bytes each, many violations
// with long snippets) still encodes within the limit, keeps its ids,
// tokens and violations, and says it was cut.
func TestEncodeFitsTheMessageLimit(t *testing.T) {
	for _, limit := range []int{1<<20 - headerSlack, 256 << 10, 64 << 10} {
		e := cleanEvent()
		body := strings.Repeat("<\x01", MaxBodyBytes/2)
		e.RequestBody, e.ResponseBody = &body, &body
		tokens := int64(42)
		e.TotalTokens = &tokens
		v := e.Violations[0]
		v.Matches = make([]Match, MaxMatches)
		for i := range v.Matches {
			v.Matches[i] = Match{Kind: "email", Snippet: strings.Repeat("\x02", MaxSnippetBytes)}
		}
		e.Violations = make([]Violation, MaxViolations)
		for i := range e.Violations {
			e.Violations[i] = v
		}
		whole := e
		full, _, err := Encode(&whole, 64<<20)
		if err != nil {
			t.Fatal(err)
		}
		b, sanitised, err := Encode(&e, limit)
		if err != nil {
			t.Fatalf("limit %d: %v", limit, err)
		}
		// Cut exactly when the whole event does not fit (the binary form
		// does not inflate control bytes: at 1 MiB this one fits whole).
		if len(b) > limit || sanitised != (len(full) > limit) {
			t.Fatalf("limit %d: %d bytes (whole %d), sanitised %v", limit, len(b), len(full), sanitised)
		}
		back, err := Decode(b)
		if err != nil {
			t.Fatal(err)
		}
		if back.RequestID != e.RequestID || back.TotalTokens == nil || *back.TotalTokens != 42 || len(back.Violations) != MaxViolations {
			t.Fatalf("limit %d: lost facts: id %q tokens %v violations %d", limit, back.RequestID, back.TotalTokens, len(back.Violations))
		}
		if sanitised && (back.RequestBody == nil || !strings.HasSuffix(*back.RequestBody, TruncationMark)) {
			t.Fatalf("limit %d: request body not marked as cut", limit)
		}
	}
	// A clean event is not touched.
	e := cleanEvent()
	if _, sanitised, err := Encode(&e, 1<<20); err != nil || sanitised {
		t.Fatalf("clean event: sanitised %v err %v", sanitised, err)
	}
}

func FuzzSanitize(f *testing.F) {
	f.Add("gpt-4o", "/chat/completions", "key", "err", "snippet")
	f.Add("a\x00b", "/\xff", "\xc3", strings.Repeat("x", 3000), "\x00")
	f.Fuzz(func(t *testing.T, model, path, keyName, errText, snippet string) {
		e := cleanEvent()
		e.Model, e.Path, e.KeyName, e.Error = model, path, keyName, errText
		e.RequestBody = &snippet
		e.Violations[0].Matches[0].Snippet = snippet
		e.Sanitize()
		checkStorable(t, e)
		if e.Sanitize() {
			t.Fatal("Sanitize is not idempotent")
		}
		b, _, err := Encode(&e, 4<<10)
		if err != nil || len(b) > 4<<10 {
			t.Fatalf("Encode: %d bytes, %v", len(b), err)
		}
	})
}

// TestSanitizeCleanEventAllocs: sanitising an event that needs nothing
// allocates nothing (it runs for every event the publisher sends).
func TestSanitizeCleanEventAllocs(t *testing.T) {
	if raceEnabled {
		t.Skip("the race detector allocates; make test's non-race run checks this")
	}
	e := cleanEvent()
	if n := testing.AllocsPerRun(1000, func() { e.Sanitize() }); n != 0 {
		t.Fatalf("Sanitize of a clean event: %v allocations", n)
	}
}

// BenchmarkEncode: what sanitising adds to encoding a typical event (the
// publisher's sender goroutine does this for every event), against
// json.Marshal alone.
func BenchmarkEncode(b *testing.B) {
	b.Run("encode", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			e := cleanEvent()
			if _, _, err := Encode(&e, 1<<20); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("marshal", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			e := cleanEvent()
			if _, err := json.Marshal(&e); err != nil {
				b.Fatal(err)
			}
		}
	})
}
