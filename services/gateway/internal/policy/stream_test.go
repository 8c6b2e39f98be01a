package policy

import (
	"strings"
	"testing"

	"trueportai/services/gateway/internal/textpath"
)

func respRule(id, typ, action string, cfg any) Rule {
	r := rule(id, typ, action, cfg)
	r.Direction = DirectionResponse
	return r
}

func TestStreamHold(t *testing.T) {
	kw := respRule("kw", TypeKeyword, ActionBlock, map[string]any{"keywords": []string{"bluebird", "x"}})
	for _, tc := range []struct {
		name    string
		rules   []Rule
		in      Input
		hold    int
		enforce bool
	}{
		{"none", nil, Input{}, 0, false},
		{"keyword", []Rule{kw}, Input{}, len("bluebird") + StreamRightContext, true},
		{"request only", []Rule{rule("r", TypeKeyword, ActionBlock, map[string]any{"keywords": []string{"x"}})}, Input{}, 0, false},
		{"flag only", []Rule{respRule("f", TypePII, ActionFlag, nil)}, Input{}, 0, false},
		{"shadow", []Rule{func() Rule { r := kw; r.Mode = ModeShadow; return r }()}, Input{}, 0, false},
		{"out of scope", []Rule{func() Rule { r := kw; r.Scope.Envs = []string{"prod"}; return r }()}, Input{Env: "dev"}, 0, false},
		{"bounded regex", []Rule{respRule("re", TypeRegex, ActionRedact, map[string]any{"pattern": `\bcode-\d{6}\b`})}, Input{}, 11 + StreamRightContext, true},
		{"folded regex", []Rule{respRule("re", TypeRegex, ActionRedact, map[string]any{"pattern": `(?i)ok`})}, Input{}, 8 + StreamRightContext, true},
		{"unbounded regex", []Rule{respRule("re", TypeRegex, ActionRedact, map[string]any{"pattern": `secret-\w+`})}, Input{}, StreamHoldCap, true},
		{"pii email", []Rule{respRule("p", TypePII, ActionRedact, map[string]any{"kinds": []string{"email", "ipv4"}})}, Input{}, 320 + StreamRightContext, true},
		{"secrets all", []Rule{respRule("s", TypeSecrets, ActionBlock, nil)}, Input{}, 1024 + StreamRightContext, true},
		{"secrets aws", []Rule{respRule("s", TypeSecrets, ActionBlock, map[string]any{"kinds": []string{"aws_access_key"}})}, Input{}, 20 + StreamRightContext, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			hold, enforce := mustCompile(t, tc.rules...).StreamHold(tc.in)
			if hold != tc.hold || enforce != tc.enforce {
				t.Fatalf("StreamHold = %d, %v; want %d, %v", hold, enforce, tc.hold, tc.enforce)
			}
		})
	}
	scoped := respRule("f", TypePII, ActionFlag, nil)
	scoped.Scope.Providers = []string{"anthropic"}
	if set := mustCompile(t, scoped); set.RespondsTo(Input{}) || !set.RespondsTo(Input{Provider: namedFormat("anthropic")}) {
		t.Fatal("RespondsTo ignores the scope")
	}
	if h, ok := (*Set)(nil).StreamHold(Input{}); h != 0 || ok {
		t.Fatal("nil set holds")
	}
}

func TestScanText(t *testing.T) {
	set := mustCompile(t,
		respRule("secrets", TypeSecrets, ActionBlock, nil),
		respRule("emails", TypePII, ActionRedact, map[string]any{"kinds": []string{"email"}}),
		respRule("watch", TypeKeyword, ActionFlag, map[string]any{"keywords": []string{"merger"}}),
		rule("request", TypeKeyword, ActionBlock, map[string]any{"keywords": []string{"write"}}),
	)
	// Text that happens to be JSON is still plain text: nothing hides in a
	// JSON member no text path names.
	text := `{"k":"AKIAZ7QW3RTY5UIOP2LK"} write to a@example.com or b@example.org about the merger`
	got := set.ScanText(Input{Body: []byte(text)}, nil)
	var desc []string
	for _, sp := range got {
		desc = append(desc, text[sp.Start:sp.End]+"|"+map[bool]string{true: "block", false: sp.Label}[sp.Block])
	}
	want := "AKIAZ7QW3RTY5UIOP2LK|block a@example.com|[REDACTED:EMAIL] b@example.org|[REDACTED:EMAIL]"
	if strings.Join(desc, " ") != want {
		t.Fatalf("ScanText = %q, want %q", strings.Join(desc, " "), want)
	}
	if got := set.ScanText(Input{Body: []byte("nothing to see")}, nil); len(got) != 0 {
		t.Fatalf("clean text: %+v", got)
	}
}

type namedFormat string

func (n namedFormat) Name() string                { return string(n) }
func (namedFormat) TextPaths(bool) *textpath.Trie { return nil }
