package fakeprovider

import (
	"net/http"
	"slices"
	"strings"
	"testing"
)

// messagesBody has a 12-character system prompt and 4 characters of
// messages: 4 tokens.
const messagesBody = `{"model":"claude-sonnet-4-20250514","max_tokens":1024,"system":"You are kind",` +
	`"messages":[{"role":"user","content":[{"type":"text","text":"Hi!!"}]}]`

// testAnthropicEvent is the decoded shape of a Messages stream event.
type testAnthropicEvent struct {
	Type    string            `json:"type"`
	Index   *int              `json:"index"`
	Message *anthropicMessage `json:"message"`
	Delta   struct {
		Type       string `json:"type"`
		Text       string `json:"text"`
		StopReason string `json:"stop_reason"`
	} `json:"delta"`
	Usage *struct {
		OutputTokens int `json:"output_tokens"`
	} `json:"usage"`
}

func TestAnthropicMessagesJSON(t *testing.T) {
	srv := newTestServer(t, Config{})
	resp, b := do(t, srv, request{path: "/anthropic/v1/messages", body: messagesBody + "}", headers: []map[string]string{anthropicAuth()}})
	wantStatus(t, resp, b, http.StatusOK)
	wantHeader(t, resp, "request-id", "req_")
	m := decode[anthropicMessage](t, b)
	if !strings.HasPrefix(m.ID, "msg_") || m.Type != "message" || m.Role != "assistant" || m.Model != "claude-sonnet-4-20250514" {
		t.Fatalf("unexpected message %s", b)
	}
	if len(m.Content) != 1 || m.Content[0].Type != "text" || m.Content[0].Text != loremIpsum {
		t.Fatalf("unexpected content %s", b)
	}
	if m.StopReason == nil || *m.StopReason != "end_turn" || m.StopSequence != nil {
		t.Fatalf("unexpected stop %s", b)
	}
	if m.Usage.InputTokens != 4 || m.Usage.OutputTokens != 19 || !strings.Contains(string(b), `"cache_read_input_tokens":0`) {
		t.Fatalf("unexpected usage %s", b)
	}
}

func TestAnthropicMessagesStream(t *testing.T) {
	srv := newTestServer(t, Config{Chunks: 4})
	resp, b := do(t, srv, request{path: "/anthropic/v1/messages", body: messagesBody + `,"stream":true}`, headers: []map[string]string{anthropicAuth()}})
	wantStatus(t, resp, b, http.StatusOK)
	wantHeader(t, resp, "Content-Type", "text/event-stream")
	var names []string
	var text strings.Builder
	var start, delta testAnthropicEvent
	for _, ev := range parseSSE(t, b) {
		e := decode[testAnthropicEvent](t, []byte(ev.data))
		if e.Type != ev.name {
			t.Fatalf("event %q has type %q", ev.name, e.Type)
		}
		names = append(names, ev.name)
		switch e.Type {
		case "message_start":
			start = e
		case "content_block_delta":
			if e.Delta.Type != "text_delta" {
				t.Fatalf("delta type = %q", e.Delta.Type)
			}
			text.WriteString(e.Delta.Text)
		case "message_delta":
			delta = e
		}
	}
	want := []string{
		"message_start", "content_block_start", "ping",
		"content_block_delta", "content_block_delta", "content_block_delta", "content_block_delta",
		"content_block_stop", "message_delta", "message_stop",
	}
	if !slices.Equal(names, want) {
		t.Fatalf("events = %v, want %v", names, want)
	}
	_, jb := do(t, srv, request{path: "/anthropic/v1/messages", body: messagesBody + "}", headers: []map[string]string{anthropicAuth()}})
	full := decode[anthropicMessage](t, jb)
	if text.String() != full.Content[0].Text {
		t.Fatalf("streamed text %q != JSON text %q", text.String(), full.Content[0].Text)
	}
	if start.Message == nil || start.Message.Usage.InputTokens != full.Usage.InputTokens || start.Message.Usage.OutputTokens != 1 {
		t.Fatalf("unexpected message_start usage %+v", start.Message)
	}
	if delta.Delta.StopReason != "end_turn" || delta.Usage == nil || delta.Usage.OutputTokens != full.Usage.OutputTokens {
		t.Fatalf("unexpected message_delta %+v", delta)
	}
}

func TestAnthropicMaxTokens(t *testing.T) {
	srv := newTestServer(t, Config{})
	body := strings.Replace(messagesBody, `"max_tokens":1024`, `"max_tokens":5`, 1) + "}"
	resp, b := do(t, srv, request{path: "/anthropic/v1/messages", body: body, headers: []map[string]string{anthropicAuth()}})
	wantStatus(t, resp, b, http.StatusOK)
	m := decode[anthropicMessage](t, b)
	if *m.StopReason != "max_tokens" || m.Usage.OutputTokens != 5 {
		t.Fatalf("unexpected message %s", b)
	}
}

func TestAnthropicCountTokensAndModels(t *testing.T) {
	srv := newTestServer(t, Config{})
	resp, b := do(t, srv, request{path: "/anthropic/v1/messages/count_tokens", body: messagesBody + "}", headers: []map[string]string{anthropicAuth()}})
	wantStatus(t, resp, b, http.StatusOK)
	if got := decode[map[string]int](t, b)["input_tokens"]; got != 4 {
		t.Fatalf("input_tokens = %d, want 4", got)
	}
	resp, b = do(t, srv, request{method: http.MethodGet, path: "/anthropic/v1/models", headers: []map[string]string{anthropicAuth()}})
	wantStatus(t, resp, b, http.StatusOK)
	list := decode[anthropicModelList](t, b)
	if len(list.Data) == 0 || list.Data[0].Type != "model" || list.HasMore || list.FirstID == nil {
		t.Fatalf("unexpected model list %s", b)
	}
}

func TestAnthropicErrors(t *testing.T) {
	srv := newTestServer(t, Config{})
	tests := []struct {
		name    string
		headers map[string]string
		status  int
		typ     string
	}{
		{"missing api key", hdr("anthropic-version", "2023-06-01"), http.StatusUnauthorized, "authentication_error"},
		{"missing version", hdr("x-api-key", "k"), http.StatusBadRequest, "invalid_request_error"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			resp, b := do(t, srv, request{path: "/anthropic/v1/messages", body: messagesBody + "}", headers: []map[string]string{tt.headers}})
			wantStatus(t, resp, b, tt.status)
			e := decode[anthropicErrorBody](t, b)
			if e.Type != "error" || e.Error.Type != tt.typ || e.Error.Message == "" {
				t.Fatalf("unexpected error body %s", b)
			}
		})
	}
	resp, b := do(t, srv, request{path: "/anthropic/v1/messages", body: `{"messages":[]}`, headers: []map[string]string{anthropicAuth()}})
	wantStatus(t, resp, b, http.StatusBadRequest)
	if e := decode[anthropicErrorBody](t, b); e.Error.Type != "invalid_request_error" {
		t.Fatalf("unexpected error body %s", b)
	}
}
