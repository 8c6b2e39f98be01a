package compat

import (
	"net/http"
	"testing"

	"trueportai/services/gateway/internal/metering/meteringtest"
	"trueportai/services/gateway/internal/provider"
)

func TestRoute(t *testing.T) {
	p := New()
	tg, err := p.Route("groq/v1/chat/completions")
	if err != nil || tg.Resource != "groq" || tg.Credential != "compat.groq" || tg.Rest != "chat/completions" || tg.Path != "/groq/v1/chat/completions" {
		t.Fatalf("%+v %v", tg, err)
	}
	for _, bad := range []string{"", "groq", "groq/chat/completions", "groq/v1/", "Groq/v1/x", "-x/v1/y", "a.b/v1/x", "groq/v1/../x", "groq/v1/%2e%2e/x", "..%2f/v1/x", "groq/v2/x"} {
		if _, err := p.Route(bad); err == nil {
			t.Errorf("%q accepted", bad)
		}
	}
}

func TestCredentialAndURL(t *testing.T) {
	p := New()
	tg, _ := p.Route("vllm-1/v1/chat/completions")
	if got := p.MissingCredential(&tg, provider.Credential{APIKey: "k"}); got != "providers.compat.vllm-1.base_url" {
		t.Fatalf("missing %q", got)
	}
	c := provider.Credential{BaseURL: "https://llm.internal.test/v1/"}
	if p.MissingCredential(&tg, c) != "" {
		t.Fatal("a base URL without a key is usable (self-hosted servers)")
	}
	if u, _, err := p.URL(&tg, c, "a=1"); err != nil || u != "https://llm.internal.test/v1/chat/completions?a=1" {
		t.Fatalf("%q %v", u, err)
	}
	req, _ := http.NewRequest("POST", "https://x", nil)
	_ = p.Authorize(req, c, nil)
	if req.Header.Get("Authorization") != "" {
		t.Fatal("an empty key was sent")
	}
	c.APIKey = "gsk_1"
	_ = p.Authorize(req, c, nil)
	if req.Header.Get("Authorization") != "Bearer gsk_1" {
		t.Fatal(req.Header)
	}
}

// TestOpenAIGoldens: compat upstreams meter exactly as OpenAI.
func TestOpenAIGoldens(t *testing.T) { meteringtest.RunGolden(t, New(), "../openai/testdata", 15) }
