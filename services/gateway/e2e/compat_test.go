package e2e

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/openai/openai-go/v3"
	"github.com/openai/openai-go/v3/option"
)

// TestCompatUpstreams drives tenant-named OpenAI-compatible upstreams
// (providers.compat.{name}.*) through the official OpenAI SDK: JSON and
// streamed calls metered, the upstream's own key injected, an upstream
// without a key gets no Authorization, and an unconfigured name is a 400
// naming the config key.
func TestCompatUpstreams(t *testing.T) {
	t.Parallel()
	s := newStack(t)
	ts := s.setupTenant("compat-" + randHex(3))
	ctx := context.Background()
	p := s.platformURL + "/platform/api/service/configs/"
	const groqKey = "gsk_compatUpstreamKey0001"
	for key, val := range map[string]string{
		"providers.compat.groq.base_url":  s.upstream.srv.URL + "/openai/v1",
		"providers.compat.groq.api_key":   groqKey,
		"providers.compat.nokey.base_url": s.upstream.srv.URL + "/openai/v1",
	} {
		if c := call(t, "PUT", p+key, ts.scopedToken, map[string]string{"value": val}, nil); c != http.StatusOK {
			t.Fatalf("put %s: %d", key, c)
		}
	}
	client := func(name string) openai.Client {
		return openai.NewClient(option.WithBaseURL(s.gatewayURL+"/trueportai-services/compat/"+name+"/v1/"),
			option.WithAPIKey(ts.apiKey), option.WithMaxRetries(0))
	}
	params := openai.ChatCompletionNewParams{Model: "llama-3.3-70b-versatile", Messages: []openai.ChatCompletionMessageParamUnion{openai.UserMessage("Hello compat")}}
	groq := client("groq")
	var comp *openai.ChatCompletion
	// The tenant context picks up the new keys via NATS; each attempt spends
	// one of the key's 60 RPM, so poll at most once a second.
	eventuallyEvery(t, 30*time.Second, time.Second, func() error {
		var err error
		comp, err = groq.Chat.Completions.New(ctx, params)
		return err
	})
	if comp.Usage.CompletionTokens == 0 || comp.Choices[0].Message.Content == "" {
		t.Fatalf("compat answer %+v", comp)
	}
	st := groq.Chat.Completions.NewStreaming(ctx, params)
	var text strings.Builder
	for st.Next() {
		if len(st.Current().Choices) == 0 {
			t.Fatal("the client saw the usage chunk it did not ask for")
		}
		text.WriteString(st.Current().Choices[0].Delta.Content)
	}
	if err := st.Err(); err != nil || text.String() != comp.Choices[0].Message.Content {
		t.Fatalf("stream %q (%v), JSON %q", text.String(), err, comp.Choices[0].Message.Content)
	}
	sawKey := false
	for _, h := range s.upstream.headers() {
		if h.Get("Authorization") == "Bearer "+groqKey {
			sawKey = true
		}
		for _, vals := range h {
			for _, v := range vals {
				if strings.Contains(v, ts.apiKey) {
					t.Fatal("caller key leaked upstream")
				}
			}
		}
	}
	if !sawKey {
		t.Fatal("the compat upstream's key was not injected")
	}

	// No key configured: nothing is injected, the upstream's own 401 comes
	// back (once the gateway has the tenant's latest settings).
	nokey := client("nokey")
	var apiErr *openai.Error
	n := 0
	eventuallyEvery(t, 30*time.Second, time.Second, func() error {
		n = len(s.upstream.headers())
		_, err := nokey.Chat.Completions.New(ctx, params)
		if !errors.As(err, &apiErr) || apiErr.StatusCode != http.StatusUnauthorized {
			return fmt.Errorf("nokey: %v", err)
		}
		return nil
	})
	if h := s.upstream.headers()[n:]; len(h) != 1 || h[0].Get("Authorization") != "" {
		t.Fatalf("nokey upstream headers %v", h)
	}

	// An upstream the tenant never configured.
	unknown := client("unknown")
	_, err := unknown.Chat.Completions.New(ctx, params)
	if !errors.As(err, &apiErr) || apiErr.StatusCode != http.StatusBadRequest || !strings.Contains(apiErr.Message, "providers.compat.unknown.base_url") {
		t.Fatalf("unknown upstream: %v", err)
	}

	// Retries above may have left refused rows too: wait for the metered
	// groq rows and the nokey row rather than for a total.
	eventually(t, 30*time.Second, func() error {
		var page logPage
		if c := call(t, "GET", s.gatewayURL+"/trueportai-services/api/v1/analytics/logs?limit=200", ts.scopedToken, nil, &page); c != 200 {
			return fmt.Errorf("logs status %d", c)
		}
		metered, nokeyRows := 0, 0
		for _, r := range page.Items {
			if r.Provider != "compat" {
				return fmt.Errorf("row provider %q", r.Provider)
			}
			switch {
			case r.Path == "/groq/v1/chat/completions" && r.StatusCode == 200:
				if r.PromptTokens == nil || *r.PromptTokens != comp.Usage.PromptTokens || *r.CompletionTokens != comp.Usage.CompletionTokens {
					t.Fatalf("row %+v tokens, want %d/%d", r, comp.Usage.PromptTokens, comp.Usage.CompletionTokens)
				}
				metered++
			case r.Path == "/nokey/v1/chat/completions" && r.StatusCode == 401:
				nokeyRows++
			}
		}
		if metered != 2 || nokeyRows < 1 {
			return fmt.Errorf("%d metered groq rows (want 2), %d nokey rows", metered, nokeyRows)
		}
		return nil
	})
}
