package e2e

import (
	"bytes"
	"compress/gzip"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"

	"github.com/anthropics/anthropic-sdk-go"
	anthropicopt "github.com/anthropics/anthropic-sdk-go/option"
	"github.com/openai/openai-go/v3"
	"github.com/openai/openai-go/v3/option"
)

// The answers the upstream streams for the marked prompts: an e-mail
// address and an AWS access key, each split across events.
var guardAnswers = map[string][]string{
	"guard-redact": {"Write to jane.d", "oe@exam", "ple.com, she knows."},
	"guard-block":  {"Use the key AKIAZ7QW", "3RTY5UIOP2LK to deploy."},
}

// streamGuardUpstream answers the marked stream requests with the pieces
// of guardAnswers, in the OpenAI or Anthropic stream format.
func streamGuardUpstream(w http.ResponseWriter, r *http.Request, body []byte) bool {
	var pieces []string
	for mark, p := range guardAnswers {
		if bytes.Contains(body, []byte(mark)) {
			pieces = p
		}
	}
	if pieces == nil {
		return false
	}
	w.Header().Set("Content-Type", "text/event-stream")
	send := func(event string, v any) {
		b, _ := json.Marshal(v)
		if event != "" {
			fmt.Fprintf(w, "event: %s\n", event)
		}
		fmt.Fprintf(w, "data: %s\n\n", b)
		w.(http.Flusher).Flush()
	}
	if strings.Contains(r.URL.Path, "/anthropic/") {
		send("message_start", map[string]any{"type": "message_start", "message": map[string]any{"id": "msg_1", "type": "message", "role": "assistant",
			"model": "claude-sonnet-4-5", "content": []any{}, "usage": map[string]any{"input_tokens": 9, "output_tokens": 1}}})
		send("content_block_start", map[string]any{"type": "content_block_start", "index": 0, "content_block": map[string]any{"type": "text", "text": ""}})
		for _, p := range pieces {
			send("content_block_delta", map[string]any{"type": "content_block_delta", "index": 0, "delta": map[string]any{"type": "text_delta", "text": p}})
		}
		send("content_block_stop", map[string]any{"type": "content_block_stop", "index": 0})
		send("message_delta", map[string]any{"type": "message_delta", "delta": map[string]any{"stop_reason": "end_turn"}, "usage": map[string]any{"output_tokens": 12}})
		send("message_stop", map[string]any{"type": "message_stop"})
		return true
	}
	chunk := func(delta map[string]any, finish any) map[string]any {
		return map[string]any{"id": "chatcmpl-1", "object": "chat.completion.chunk", "created": 1, "model": "gpt-4o-mini",
			"choices": []any{map[string]any{"index": 0, "delta": delta, "finish_reason": finish}}}
	}
	send("", chunk(map[string]any{"role": "assistant", "content": ""}, nil))
	for _, p := range pieces {
		send("", chunk(map[string]any{"content": p}, nil))
	}
	send("", chunk(map[string]any{}, "stop"))
	send("", map[string]any{"id": "chatcmpl-1", "object": "chat.completion.chunk", "created": 1, "model": "gpt-4o-mini", "choices": []any{},
		"usage": map[string]any{"prompt_tokens": 9, "completion_tokens": 12, "total_tokens": 21}})
	fmt.Fprint(w, "data: [DONE]\n\n")
	return true
}

// TestStreamGuardThroughSDKs: response rules act on streams read by the
// official SDKs: an address split across events arrives redacted, a key
// split across events never arrives and the SDK raises the block; a
// gzip-compressed prompt is read decoded (a block rule sees it).
func TestStreamGuardThroughSDKs(t *testing.T) {
	t.Parallel()
	s := newStack(t)
	s.upstream.mu.Lock()
	s.upstream.answer = streamGuardUpstream
	s.upstream.mu.Unlock()
	ts := s.setupTenant("guard-" + randHex(3))
	api := s.gatewayURL + "/trueportai-services/api/v1"
	for _, p := range []map[string]any{
		{"name": "no keys in answers", "type": "secrets", "action": "block", "direction": "response", "config": map[string]any{}},
		{"name": "mask addresses", "type": "pii", "action": "redact", "direction": "response", "config": map[string]any{"kinds": []string{"email"}}},
		{"name": "no codenames", "type": "keyword", "action": "block", "config": map[string]any{"keywords": []string{"bluebird"}}},
	} {
		if c := call(t, "POST", api+"/policies", ts.scopedToken, p, nil); c != 201 {
			t.Fatalf("create policy %v: %d", p["name"], c)
		}
	}
	ctx := context.Background()

	oc := openai.NewClient(option.WithBaseURL(s.gatewayURL+"/trueportai-services/openai/v1/"), option.WithAPIKey(ts.apiKey), option.WithMaxRetries(0))
	openaiStream := func(mark string) (string, error) {
		st := oc.Chat.Completions.NewStreaming(ctx, openai.ChatCompletionNewParams{
			Model: "gpt-4o-mini", Messages: []openai.ChatCompletionMessageParamUnion{openai.UserMessage("answer " + mark)},
		})
		var text strings.Builder
		for st.Next() {
			if c := st.Current(); len(c.Choices) > 0 {
				text.WriteString(c.Choices[0].Delta.Content)
			}
		}
		return text.String(), st.Err()
	}
	ac := anthropic.NewClient(anthropicopt.WithBaseURL(s.gatewayURL+"/trueportai-services/anthropic/"), anthropicopt.WithAPIKey(ts.apiKey), anthropicopt.WithMaxRetries(0))
	anthropicStream := func(mark string) (string, error) {
		st := ac.Messages.NewStreaming(ctx, anthropic.MessageNewParams{Model: "claude-sonnet-4-5", MaxTokens: 256,
			Messages: []anthropic.MessageParam{anthropic.NewUserMessage(anthropic.NewTextBlock("answer " + mark))}})
		acc := anthropic.Message{}
		var text strings.Builder
		for st.Next() {
			ev := st.Current()
			_ = acc.Accumulate(ev)
			if d, ok := ev.AsAny().(anthropic.ContentBlockDeltaEvent); ok {
				text.WriteString(d.Delta.Text)
			}
		}
		return text.String(), st.Err()
	}

	for name, stream := range map[string]func(string) (string, error){"openai": openaiStream, "anthropic": anthropicStream} {
		text, err := stream("guard-redact")
		if err != nil {
			t.Fatalf("%s redacted stream: %v", name, err)
		}
		if text != "Write to [REDACTED:EMAIL], she knows." {
			t.Fatalf("%s redacted stream: %q", name, text)
		}
		text, err = stream("guard-block")
		if err == nil || !strings.Contains(err.Error(), "no keys in answers") || strings.Contains(text, "AKIA") {
			t.Fatalf("%s blocked stream: text %q, err %v", name, text, err)
		}
		var ae *anthropic.Error
		if name == "anthropic" && !errors.As(err, &ae) {
			t.Fatalf("anthropic SDK did not raise an API error: %T %v", err, err)
		}
	}

	// A gzip body: the keyword block rule reads it decoded.
	var gz bytes.Buffer
	zw := gzip.NewWriter(&gz)
	_, _ = io.WriteString(zw, `{"model":"gpt-4o-mini","messages":[{"role":"user","content":"plans for bluebird"}]}`)
	_ = zw.Close()
	sent := len(s.upstream.raw)
	req, _ := http.NewRequest("POST", s.gatewayURL+"/trueportai-services/openai/v1/chat/completions", &gz)
	req.Header.Set("Authorization", "Bearer "+ts.apiKey)
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Content-Encoding", "gzip")
	resp, err := http.DefaultTransport.RoundTrip(req)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	s.upstream.mu.Lock()
	reached := len(s.upstream.raw) != sent
	s.upstream.mu.Unlock()
	if resp.StatusCode != 400 || !strings.Contains(string(b), "policy_violation") || reached {
		t.Fatalf("gzip prompt: %d %s (reached the upstream: %v)", resp.StatusCode, b, reached)
	}

	page := s.waitLogs(ts.scopedToken, 5)
	outcomes := map[string]int{}
	for _, r := range page.Items {
		outcomes[r.Outcome]++
	}
	if outcomes["redacted"] != 2 || outcomes["blocked"] != 3 {
		t.Fatalf("outcomes: %v", outcomes)
	}
}
