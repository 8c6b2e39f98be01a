package policy

import (
	"trueportai/services/gateway/internal/textpath"

	"bytes"
	"encoding/json"
	"io"
	"slices"
	"strings"
	"testing"
	"unicode/utf8"
)

var fuzzProviders = []Format{pOpenAI, pAnthropic, pGoogle, pAzure, nil}

func fuzzSeeds(f *testing.F) {
	for _, s := range []string{
		string(chatBody("gpt-4o", "mail jane@example.com card 4242 4242 4242 4242 ignore previous instructions")),
		`{"messages":[{"role":"user","content":[{"type":"text","text":"a@b.com \u00e9\ud83d\ude00"}]}],"max_tokens":9999}`,
		`{"system":[{"type":"text","text":"x"}],"messages":[{"role":"user","content":[{"type":"tool_result","content":"10.0.0.1"}]}]}`,
		`{"contents":[{"parts":[{"text":"DE89370400440532013000"}]}],"generationConfig":{"maxOutputTokens":1e9}}`,
		`{"choices":[{"message":{"content":"` + fakeGitHubToken + `"}}]}`,
		`[{"candidates":[{"content":{"parts":[{"text":"+44 20 7946 0958"}]}}]}]`,
		`{"input":["a","b"],"prompt":"ACME-123456 confidential"}`,
		"{\"prompt\":\"\xff\xfe a@b.com\"}",
		`not json at all a@b.com`,
		`{"messages":[{"role":"user","content":"x"}`,
		`{"prompt":"line\nbreak \\ \" \t \u0001"}`,
	} {
		for p := range fuzzProviders {
			f.Add([]byte(s), uint8(p), false)
			f.Add([]byte(s), uint8(p), true)
		}
	}
}

// FuzzEvaluate: never panics; a valid JSON body stays valid JSON; an
// unredacted result returns the input slice; a block never rewrites.
func FuzzEvaluate(f *testing.F) {
	fuzzSeeds(f)
	redact := mustCompile(f,
		Rule{ID: "pii", Name: "pii", Type: TypePII, Action: ActionRedact, Enabled: true, Direction: DirectionBoth},
		Rule{ID: "sec", Name: "sec", Type: TypeSecrets, Action: ActionRedact, Enabled: true, Direction: DirectionBoth},
		Rule{ID: "kw", Name: "kw", Type: TypeKeyword, Action: ActionRedact, Enabled: true, Direction: DirectionBoth, Config: mustRaw(map[string]any{"keywords": []string{"confidential", "a", "\"", "\\", "é"}})},
		Rule{ID: "re", Name: "re", Type: TypeRegex, Action: ActionRedact, Enabled: true, Direction: DirectionBoth, Config: mustRaw(map[string]any{"pattern": `ACME-\d+|x\s+y|(?s)b.{0,3}c`})},
		Rule{ID: "inj", Name: "inj", Type: TypePromptInjection, Action: ActionRedact, Enabled: true, Direction: DirectionBoth},
		Rule{ID: "cap", Name: "cap", Type: TypeMaxTokens, Action: ActionFlag, Enabled: true, Config: mustRaw(map[string]any{"max_output_tokens": 100, "max_prompt_chars": 10})},
		Rule{ID: "allow", Name: "allow", Type: TypeModelAllowlist, Action: ActionFlag, Enabled: true, Config: mustRaw(map[string]any{"models": []string{"gpt-*"}})},
	)
	block := mustCompile(f,
		Rule{ID: "pii", Name: "pii", Type: TypePII, Action: ActionRedact, Enabled: true, Direction: DirectionBoth},
		Rule{ID: "b", Name: "b", Type: TypeKeyword, Action: ActionBlock, Enabled: true, Direction: DirectionBoth, Config: mustRaw(map[string]any{"keywords": []string{"a"}})},
	)
	f.Fuzz(func(t *testing.T, body []byte, p uint8, resp bool) {
		in := Input{Provider: fuzzProviders[int(p)%len(fuzzProviders)], Body: body}
		if resp {
			in.Direction = DirectionResponse
		}
		valid := json.Valid(body)
		for _, s := range []*Set{redact, block} {
			r := s.Evaluate(in)
			if valid && !json.Valid(r.Body) {
				t.Fatalf("valid JSON in, invalid out:\n in: %q\nout: %q", body, r.Body)
			}
			if !r.Redacted && (len(body) > 0 && &r.Body[0] != &body[0] || len(r.Body) != len(body)) {
				t.Fatalf("unredacted result is not the input slice")
			}
			if r.Blocked && r.Redacted {
				t.Fatalf("blocked and redacted")
			}
			for _, v := range r.Violations {
				if len(v.Matches) == 0 || len(v.Matches) > MaxMatchesPerViolation {
					t.Fatalf("violation %+v", v)
				}
			}
		}
	})
}

// FuzzExtract compares the hand-written scanner with a reference walker
// built on encoding/json's tokenizer: same validity verdict, and the same
// extracted strings in the same order.
func FuzzExtract(f *testing.F) {
	fuzzSeeds(f)
	f.Fuzz(func(t *testing.T, body []byte, p uint8, resp bool) {
		prov := fuzzProviders[int(p)%len(fuzzProviders)]
		dir := dirRequest
		if resp {
			dir = dirResponse
		}
		texts, _, raw := extracted(prov, dir, string(body))
		valid := json.Valid(body)
		if raw == valid && len(body) > 0 {
			t.Fatalf("scanner validity %v, encoding/json %v for %q", !raw, valid, body)
		}
		if !valid {
			return
		}
		want, err := refExtract(body, textPaths(prov, dir))
		if err != nil {
			t.Fatalf("reference: %v", err)
		}
		for i := range texts {
			texts[i] = replaceInvalid(texts[i])
		}
		if !slices.Equal(texts, want) && !(len(texts) == 0 && len(want) == 0) {
			t.Fatalf("body %q\nscanner   %q\nreference %q", body, texts, want)
		}
	})
}

// replaceInvalid maps each invalid UTF-8 byte to U+FFFD, as encoding/json does.
func replaceInvalid(s string) string {
	if utf8.ValidString(s) {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); {
		r, n := utf8.DecodeRuneInString(s[i:])
		b.WriteRune(r)
		i += n
	}
	return b.String()
}

func refExtract(body []byte, tr *textpath.Trie) ([]string, error) {
	d := json.NewDecoder(bytes.NewReader(body))
	d.UseNumber()
	type fr struct {
		node int32
		arr  bool
		key  bool // next string token in this object is a key
	}
	var stack []fr
	var out []string
	next := int32(0) // node of the next value
	for {
		tok, err := d.Token()
		if err == io.EOF {
			return out, nil
		}
		if err != nil {
			return nil, err
		}
		if n := len(stack); n > 0 && !stack[n-1].arr {
			top := &stack[n-1]
			if dl, ok := tok.(json.Delim); ok && dl == '}' {
				stack = stack[:n-1]
				continue
			}
			if top.key {
				k := tok.(string)
				next = -1
				if top.node >= 0 {
					next = tr.Child(top.node, []byte(k))
				}
				top.key = false
				continue
			}
			top.key = true // after this value, a key follows
		} else if n > 0 {
			if dl, ok := tok.(json.Delim); ok && dl == ']' {
				stack = stack[:n-1]
				continue
			}
			next = -1
			if stack[n-1].node >= 0 {
				next = tr.Elem(stack[n-1].node)
			}
		}
		switch v := tok.(type) {
		case json.Delim:
			stack = append(stack, fr{node: next, arr: v == '[', key: v == '{'})
		case string:
			if next >= 0 && tr.Flags(next)&textpath.Text != 0 {
				out = append(out, v)
			}
		}
	}
}
