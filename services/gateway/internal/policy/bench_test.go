package policy

import (
	"encoding/json"
	"strings"
	"testing"
)

func benchRules() []Rule {
	return []Rule{
		rule("pii", TypePII, ActionRedact, map[string]any{"kinds": []string{"email", "phone", "credit_card", "us_ssn", "iban", "ipv4"}}),
		rule("secrets", TypeSecrets, ActionBlock, nil),
		rule("inj", TypePromptInjection, ActionFlag, map[string]any{"threshold": 0.5}),
		rule("kw", TypeKeyword, ActionRedact, map[string]any{"keywords": []string{"project falcon", "codename", "acme-internal", "blueprint", "merger", "layoff", "salary band", "roadmap q3", "confidential", "do not distribute", "tiger team", "zeta"}, "whole_word": true}),
		rule("kw-cs", TypeKeyword, ActionFlag, map[string]any{"keywords": []string{"TOPSECRET", "NOFORN", "EYES ONLY"}, "case_sensitive": true}),
		rule("re", TypeRegex, ActionRedact, map[string]any{"pattern": `ACME-[0-9]{6}`}),
		rule("models", TypeModelAllowlist, ActionBlock, map[string]any{"models": []string{"gpt-4o*", "gpt-4.1*", "o3*"}}),
		rule("maxtok", TypeMaxTokens, ActionBlock, map[string]any{"max_output_tokens": 4096, "max_prompt_chars": 100000}),
		{ID: "pii-shadow", Name: "pii-shadow", Type: TypePII, Action: ActionBlock, Enabled: true, Mode: ModeShadow, Config: mustRaw(map[string]any{"kinds": []string{"email"}})},
		{ID: "pk", Name: "pk", Type: TypeSecrets, Action: ActionBlock, Enabled: true, Priority: 10, Config: mustRaw(map[string]any{"kinds": []string{"private_key"}})},
	}
}

const benchProse = "Please review the following design notes for our billing service. The service receives usage events " +
	"from the gateway, aggregates them per tenant and per hour, and writes rollups that the dashboard reads. We saw " +
	"p95 latency of 180 ms last week after the release on the 14th, up from 120 ms; the cause seems to be lock " +
	"contention in the aggregator when 3 or 4 workers flush at once. Version 2.3 of the client retries with backoff. "

func benchBody(withMatches bool) []byte {
	var sb strings.Builder
	for sb.Len() < 3800 {
		sb.WriteString(benchProse)
	}
	user := sb.String()
	if withMatches {
		user += " Contact jane.doe@example.com or call 415-555-0134. Ticket ACME-123456 is related. Card 4242 4242 4242 4242."
	}
	b, _ := json.Marshal(map[string]any{
		"model":      "gpt-4o-mini",
		"max_tokens": 1024,
		"messages": []map[string]any{
			{"role": "system", "content": "You are a careful senior engineer. Answer concisely."},
			{"role": "user", "content": user},
		},
	})
	return b
}

func BenchmarkEvaluate10Rules4KB(b *testing.B) {
	set := mustCompile(b, benchRules()...)
	for _, tc := range []struct {
		name    string
		matches bool
	}{{"no-matches", false}, {"few-matches", true}} {
		body := benchBody(tc.matches)
		in := Input{Provider: pOpenAI, Env: "production", KeyID: "k1", Body: body}
		res := set.Evaluate(in)
		if tc.matches != (len(res.Violations) > 0) {
			b.Fatalf("%s: violations %+v", tc.name, res.Violations)
		}
		b.Run(tc.name, func(b *testing.B) {
			b.ReportAllocs()
			b.SetBytes(int64(len(body)))
			for b.Loop() {
				set.Evaluate(in)
			}
		})
	}
}

// BenchmarkACScan measures the raw automaton passes.
func BenchmarkACScan(b *testing.B) {
	var sb strings.Builder
	for sb.Len() < 4000 {
		sb.WriteString(benchProse)
	}
	text := []byte(sb.String())
	kw := newAC([]string{"project falcon", "codename", "acme-internal", "blueprint", "merger", "layoff", "salary band", "roadmap q3", "confidential", "do not distribute", "tiger team", "zeta"}, true)
	kwcs := newAC([]string{"TOPSECRET", "NOFORN", "EYES ONLY"}, false)
	for _, c := range []struct {
		name string
		m    *acMatcher
	}{{"kw", kw}, {"kwcs", kwcs}, {"lexicon", defaultLexicon.ac}} {
		b.Run(c.name, func(b *testing.B) {
			b.SetBytes(int64(len(text)))
			n := 0
			for b.Loop() {
				c.m.scan(text, func(p, s, e int) bool { n++; return true })
			}
			b.ReportMetric(float64(len(c.m.outOff)), "states")
			b.ReportMetric(float64(c.m.nclass), "classes")
		})
	}
}
