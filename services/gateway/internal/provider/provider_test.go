package provider

import (
	"net/http"
	"testing"

	"trueportai/services/gateway/internal/metering"
	"trueportai/services/gateway/internal/textpath"
)

func TestBodyModelAndStream(t *testing.T) {
	tests := []struct {
		body   string
		model  string
		stream bool
	}{
		{`{"model":"gpt-4o","messages":[{"role":"user","content":"{\"model\":\"x\",\"stream\":false}"}],"stream":true}`, "gpt-4o", true},
		{`{"messages":[{"role":"user","content":"hi"}],"stream":false}`, "", false},
		{`{"model":"claude-\u0033-haiku","max_tokens":1024,"messages":[]}`, "claude-3-haiku", false},
		{`{"model":"gpt-4o","stream":"true"}`, "gpt-4o", false},
		{`{"model":7,"stream":1}`, "", false},
		{`{"model":"a","metadata":{"model":"b","stream":true},"model":"c"}`, "c", false},
		{`{"model":"gpt-4o","stream":true`, "", false},
		{`[]`, "", false},
		{``, "", false},
	}
	for _, tt := range tests {
		r := BodyModelAndStream([]byte(tt.body))
		if r.Model != tt.model || r.Stream != tt.stream {
			t.Errorf("BodyModelAndStream(%s) = %+v; want %q, %v", tt.body, r, tt.model, tt.stream)
		}
	}
}

func TestCheckRest(t *testing.T) {
	for _, ok := range []string{"chat/completions", "files/file-abc%20def/content", "models/g:generateContent", "a%2Db"} {
		if err := CheckRest(ok); err != nil {
			t.Errorf("%q refused", ok)
		}
	}
	for _, bad := range []string{"", "../x", "a/../b", "a/./b", "a//b", "%2e%2e/x", "%2E%2e/x", "a%2fb", "a%5Cb", "a%25b", "a%00b", `a\b`, "a%3fb", "a%23b", "a%0ab", "a%zz", string(make([]byte, 2049))} {
		if err := CheckRest(bad); err == nil {
			t.Errorf("%q accepted", bad)
		}
	}
}

func TestJoinURL(t *testing.T) {
	if u, err := JoinURL("https://h/v1/", "chat/completions", "a=b"); err != nil || u != "https://h/v1/chat/completions?a=b" {
		t.Fatalf("%q %v", u, err)
	}
	for _, base := range []string{"", "h/v1", "ftp://h", "https://"} {
		if _, err := JoinURL(base, "x", ""); err == nil {
			t.Errorf("base %q accepted", base)
		}
	}
}

func TestHeaderSet(t *testing.T) {
	s := NewHeaderSet(CommonHeaders, []string{"openai-beta", "x-amzn-bedrock-*"})
	for name, want := range map[string]bool{
		"Content-Type": true, "Openai-Beta": true, "X-Amzn-Bedrock-Trace": true, "Authorization": false, "Openai-Organization": false, "X-Amzn": false,
	} {
		if got := s.Allows(name); got != want {
			t.Errorf("%s: %v, want %v", name, got, want)
		}
	}
}

// fake is a minimal provider for registry tests.
type fake struct{ name, prefix string }

func (f fake) Name() string                                        { return f.name }
func (f fake) Prefix() string                                      { return f.prefix }
func (f fake) Route(rest string) (Target, error)                   { return SimpleRoute(f.name, rest) }
func (fake) MissingCredential(*Target, Credential) string          { return "" }
func (fake) Framing(string) Framing                                { return nil }
func (fake) ModelFree(*Target, string) bool                        { return false }
func (fake) Inspect(*Target, Credential, []byte) Request           { return Request{} }
func (fake) TextPaths(bool) *textpath.Trie                         { return nil }
func (fake) Prepare(_ *Target, _ Request, b []byte) ([]byte, bool) { return b, false }
func (fake) URL(*Target, Credential, string) (string, bool, error) { return "", false, nil }
func (fake) ForwardHeader(string) bool                             { return false }
func (fake) Authorize(*http.Request, Credential, []byte) error     { return nil }
func (fake) MeterJSON([]byte) metering.Usage                       { return metering.Usage{} }
func (fake) NewStreamMeter(bool) metering.StreamMeter              { return nil }
func (fake) ErrorBody(int, string, string) []byte                  { return nil }

func TestNewRegistryRejectsConflicts(t *testing.T) {
	a := fake{"a", RoutePrefix + "a/v1/"}
	for name, ps := range map[string][]Provider{
		"duplicate name":       {a, fake{"a", RoutePrefix + "b/"}},
		"nested prefix":        {a, fake{"b", RoutePrefix + "a/"}},
		"prefix outside":       {fake{"c", "/c/"}},
		"prefix without slash": {fake{"d", RoutePrefix + "d"}},
		"empty name":           {fake{"", RoutePrefix + "e/"}},
	} {
		if _, err := NewRegistry(ps...); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
	r, err := NewRegistry(a, fake{"b", RoutePrefix + "b/"})
	if err != nil {
		t.Fatal(err)
	}
	if p, rest, ok := r.Match(RoutePrefix + "b/x"); !ok || p.Name() != "b" || rest != "x" {
		t.Fatalf("Match: %v %q %v", p, rest, ok)
	}
	if _, ok := r.Lookup("a"); !ok {
		t.Fatal("Lookup")
	}
}
