package e2e

import (
	"context"
	"strings"
	"testing"

	"github.com/openai/openai-go/v3"
	"github.com/openai/openai-go/v3/option"
)

// TestOpenAIFlow is the walking skeleton: register → tenant → key → proxied
// call with the official openai-go client (JSON and streamed) → usage log.
func TestOpenAIFlow(t *testing.T) {
	t.Parallel()
	s := newStack(t)
	ts := s.setupTenant("acme-" + randHex(3))

	client := openai.NewClient(
		option.WithBaseURL(s.gatewayURL+"/trueportai-services/openai/v1/"),
		option.WithAPIKey(ts.apiKey),
		option.WithMaxRetries(0),
	)
	ctx := context.Background()
	params := openai.ChatCompletionNewParams{
		Model:    "gpt-4o-mini",
		Messages: []openai.ChatCompletionMessageParamUnion{openai.UserMessage("Say hello to the gateway")},
	}

	// JSON.
	comp, err := client.Chat.Completions.New(ctx, params)
	if err != nil {
		t.Fatalf("chat completion: %v", err)
	}
	if len(comp.Choices) == 0 || comp.Choices[0].Message.Content == "" {
		t.Fatalf("empty completion: %+v", comp)
	}
	jsonUsage := comp.Usage
	if jsonUsage.TotalTokens == 0 {
		t.Fatal("upstream usage missing from the JSON answer")
	}

	// Stream without include_usage: the gateway meters it anyway and hides
	// the extra usage chunk from this client.
	stream := client.Chat.Completions.NewStreaming(ctx, params)
	var text strings.Builder
	for stream.Next() {
		ch := stream.Current()
		if len(ch.Choices) == 0 {
			t.Fatalf("client saw a usage-only chunk it did not ask for: %s", ch.RawJSON())
		}
		text.WriteString(ch.Choices[0].Delta.Content)
	}
	if err := stream.Err(); err != nil {
		t.Fatalf("stream: %v", err)
	}
	if text.String() != comp.Choices[0].Message.Content {
		t.Fatalf("streamed text %q != JSON text %q", text.String(), comp.Choices[0].Message.Content)
	}

	// Stream with include_usage: the client gets its usage chunk.
	params.StreamOptions = openai.ChatCompletionStreamOptionsParam{IncludeUsage: openai.Bool(true)}
	stream = client.Chat.Completions.NewStreaming(ctx, params)
	var streamUsage openai.CompletionUsage
	for stream.Next() {
		if u := stream.Current().Usage; u.TotalTokens > 0 {
			streamUsage = u
		}
	}
	if err := stream.Err(); err != nil {
		t.Fatalf("stream with usage: %v", err)
	}
	if streamUsage.TotalTokens != jsonUsage.TotalTokens {
		t.Fatalf("streamed usage %+v != JSON usage %+v", streamUsage, jsonUsage)
	}

	// The caller's sk- key never reached the upstream; the tenant's credential did.
	for _, h := range s.upstream.headers() {
		if got := h.Get("Authorization"); got != "Bearer "+ts.credential {
			t.Fatalf("upstream saw Authorization %q, want the tenant credential", got)
		}
		for name, vals := range h {
			for _, v := range vals {
				if strings.Contains(v, ts.apiKey) {
					t.Fatalf("caller key leaked upstream in header %s", name)
				}
			}
		}
	}

	// Every call is in the usage log with exact tokens, streamed ones too.
	page := s.waitLogs(ts.scopedToken, 3)
	if page.Limit != 200 || page.Offset != 0 || len(page.Items) != 3 {
		t.Fatalf("envelope: %+v", page)
	}
	streams := 0
	for _, r := range page.Items {
		if r.StatusCode != 200 || r.Outcome != "ok" || r.Provider != "openai" || r.Model != "gpt-4o-mini" || r.KeyID != ts.keyID {
			t.Fatalf("log row: %+v", r)
		}
		if r.PromptTokens == nil || r.CompletionTokens == nil || r.TotalTokens == nil ||
			*r.PromptTokens != jsonUsage.PromptTokens || *r.CompletionTokens != jsonUsage.CompletionTokens || *r.TotalTokens != jsonUsage.TotalTokens {
			t.Fatalf("log row tokens %v/%v/%v, want %d/%d/%d", r.PromptTokens, r.CompletionTokens, r.TotalTokens,
				jsonUsage.PromptTokens, jsonUsage.CompletionTokens, jsonUsage.TotalTokens)
		}
		if r.Stream {
			streams++
		}
	}
	if streams != 2 {
		t.Fatalf("want 2 streamed rows, got %d", streams)
	}
}

// TestProxyRefusals checks the gateway's own answers in OpenAI's error shape.
func TestProxyRefusals(t *testing.T) {
	t.Parallel()
	s := newStack(t)
	ts := s.setupTenant("refuse-" + randHex(3))
	ctx := context.Background()
	params := openai.ChatCompletionNewParams{Model: "gpt-4o-mini", Messages: []openai.ChatCompletionMessageParamUnion{openai.UserMessage("hi")}}

	bad := openai.NewClient(option.WithBaseURL(s.gatewayURL+"/trueportai-services/openai/v1/"), option.WithAPIKey("sk-not-a-real-key"), option.WithMaxRetries(0))
	_, err := bad.Chat.Completions.New(ctx, params)
	var apiErr *openai.Error
	if !asAPIError(err, &apiErr) || apiErr.StatusCode != 401 || apiErr.Code != "invalid_api_key" {
		t.Fatalf("unknown key: %v", err)
	}

	// Disable the key: refused at once on this replica.
	if c := call(t, "PATCH", s.gatewayURL+"/trueportai-services/api/v1/keys/"+ts.keyID, ts.scopedToken, map[string]any{"enabled": false}, nil); c != 200 {
		t.Fatalf("disable key: %d", c)
	}
	good := openai.NewClient(option.WithBaseURL(s.gatewayURL+"/trueportai-services/openai/v1/"), option.WithAPIKey(ts.apiKey), option.WithMaxRetries(0))
	_, err = good.Chat.Completions.New(ctx, params)
	if !asAPIError(err, &apiErr) || apiErr.StatusCode != 401 {
		t.Fatalf("disabled key: %v", err)
	}

	// Path traversal never reaches the upstream.
	before := len(s.upstream.headers())
	for _, p := range []string{"/trueportai-services/openai/v1/%2e%2e/admin", "/trueportai-services/openai/v1/chat/../../x", "/trueportai-services/openai/v1/%252e%252e/x", "/trueportai-services/azure/evil.com/dep/chat/completions"} {
		code := rawStatus(t, s.gatewayURL+p, ts.apiKey)
		if code != 400 {
			t.Errorf("%s: status %d, want 400", p, code)
		}
	}
	if after := len(s.upstream.headers()); after != before {
		t.Fatalf("a refused request reached the upstream")
	}

	// The free plan allows 3 keys (one exists): the 4th is refused, naming the limit.
	for i, want := range []int{201, 201, 409} {
		var env struct {
			Error struct {
				Code    string         `json:"code"`
				Details map[string]any `json:"details"`
			} `json:"error"`
		}
		c := call(t, "POST", s.gatewayURL+"/trueportai-services/api/v1/keys", ts.scopedToken, map[string]any{"name": "extra"}, &env)
		if c != want || (want == 409 && env.Error.Details["limit"] != "max_api_keys") {
			t.Fatalf("key %d: %d %+v", i+2, c, env.Error)
		}
	}

	// Platform down: management routes answer 503, never allow.
	s.platform.stop(t)
	if c := call(t, "GET", s.gatewayURL+"/trueportai-services/api/v1/keys", "not-cached-token", nil, nil); c != 503 {
		t.Fatalf("platform down: status %d, want 503", c)
	}
}
