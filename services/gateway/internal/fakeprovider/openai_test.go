package fakeprovider

import (
	"encoding/base64"
	"encoding/binary"
	"encoding/json"
	"math"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

// chatBody is a chat request whose prompt is 25 characters: 7 tokens.
const chatBody = `{"model":"gpt-4o-mini","messages":[{"role":"user","content":"Hello there, how are you?"}]`

// testChatCompletion is the decoded shape of a chat completion or chunk.
type testChatCompletion struct {
	ID      string `json:"id"`
	Object  string `json:"object"`
	Model   string `json:"model"`
	Choices []struct {
		Message struct {
			Role    string `json:"role"`
			Content string `json:"content"`
		} `json:"message"`
		Delta struct {
			Role    string  `json:"role"`
			Content *string `json:"content"`
		} `json:"delta"`
		FinishReason *string `json:"finish_reason"`
	} `json:"choices"`
	Usage *testOpenAIUsage `json:"usage"`
}

// testOpenAIUsage is the decoded usage of a chat completion.
type testOpenAIUsage struct {
	PromptTokens        int `json:"prompt_tokens"`
	CompletionTokens    int `json:"completion_tokens"`
	TotalTokens         int `json:"total_tokens"`
	PromptTokensDetails *struct {
		CachedTokens *int `json:"cached_tokens"`
	} `json:"prompt_tokens_details"`
	CompletionTokensDetails *struct {
		ReasoningTokens *int `json:"reasoning_tokens"`
	} `json:"completion_tokens_details"`
}

// chatJSON posts a non-streamed chat completion and decodes it.
func chatJSON(t *testing.T, srv *httptest.Server, path, body string, headers ...map[string]string) testChatCompletion {
	t.Helper()
	resp, b := do(t, srv, request{path: path, body: body + "}", headers: headers})
	wantStatus(t, resp, b, http.StatusOK)
	return decode[testChatCompletion](t, b)
}

// chatStream posts a streamed chat completion and returns its SSE events.
func chatStream(t *testing.T, srv *httptest.Server, path, body string, headers ...map[string]string) []sseEvent {
	t.Helper()
	resp, b := do(t, srv, request{path: path, body: body + `,"stream":true}`, headers: headers})
	wantStatus(t, resp, b, http.StatusOK)
	wantHeader(t, resp, "Content-Type", "text/event-stream")
	events := parseSSE(t, b)
	if len(events) == 0 || events[len(events)-1].data != "[DONE]" {
		t.Fatalf("stream does not end with [DONE]: %q", b)
	}
	return events
}

func TestOpenAIChatJSON(t *testing.T) {
	srv := newTestServer(t, Config{})
	got := chatJSON(t, srv, "/openai/v1/chat/completions", chatBody, openAIAuth())
	if !strings.HasPrefix(got.ID, "chatcmpl-") || got.Object != "chat.completion" || got.Model != "gpt-4o-mini" {
		t.Fatalf("unexpected completion header: %+v", got)
	}
	if len(got.Choices) != 1 {
		t.Fatalf("choices = %d, want 1", len(got.Choices))
	}
	c := got.Choices[0]
	if c.Message.Role != "assistant" || c.Message.Content != loremIpsum || *c.FinishReason != "stop" {
		t.Fatalf("unexpected choice: %+v", c)
	}
	u := got.Usage
	if u == nil || u.PromptTokens != 7 || u.CompletionTokens != 19 || u.TotalTokens != 26 {
		t.Fatalf("usage = %+v, want 7/19/26", u)
	}
	if u.PromptTokensDetails == nil || u.PromptTokensDetails.CachedTokens == nil ||
		u.CompletionTokensDetails == nil || u.CompletionTokensDetails.ReasoningTokens == nil {
		t.Fatalf("usage details missing: %+v", u)
	}
}

func TestOpenAIChatStreamWithoutUsage(t *testing.T) {
	srv := newTestServer(t, Config{})
	events := chatStream(t, srv, "/openai/v1/chat/completions", chatBody, openAIAuth(), hdr(headerChunks, "4"))
	var text strings.Builder
	contentChunks := 0
	for i, ev := range events[:len(events)-1] {
		raw := decode[map[string]json.RawMessage](t, []byte(ev.data))
		if _, ok := raw["usage"]; ok {
			t.Fatalf("chunk %d has a usage field without include_usage: %s", i, ev.data)
		}
		chunk := decode[testChatCompletion](t, []byte(ev.data))
		if chunk.Object != "chat.completion.chunk" || chunk.Model != "gpt-4o-mini" {
			t.Fatalf("chunk %d: unexpected header %s", i, ev.data)
		}
		if len(chunk.Choices) != 1 {
			t.Fatalf("chunk %d: %d choices", i, len(chunk.Choices))
		}
		if d := chunk.Choices[0].Delta; d.Content != nil && *d.Content != "" {
			contentChunks++
			text.WriteString(*d.Content)
		}
	}
	first := decode[testChatCompletion](t, []byte(events[0].data))
	if first.Choices[0].Delta.Role != "assistant" {
		t.Fatalf("first chunk has no assistant role: %s", events[0].data)
	}
	last := decode[testChatCompletion](t, []byte(events[len(events)-2].data))
	if fr := last.Choices[0].FinishReason; fr == nil || *fr != "stop" {
		t.Fatalf("last chunk finish_reason = %v, want stop", fr)
	}
	if contentChunks != 4 {
		t.Fatalf("content chunks = %d, want 4", contentChunks)
	}
	want := chatJSON(t, srv, "/openai/v1/chat/completions", chatBody, openAIAuth(), hdr(headerChunks, "4"))
	if text.String() != want.Choices[0].Message.Content {
		t.Fatalf("streamed text %q != JSON text %q", text.String(), want.Choices[0].Message.Content)
	}
}

func TestOpenAIChatStreamIncludeUsage(t *testing.T) {
	srv := newTestServer(t, Config{Chunks: 3})
	body := chatBody + `,"stream_options":{"include_usage":true}`
	events := chatStream(t, srv, "/openai/v1/chat/completions", body, openAIAuth())
	usageEvent := events[len(events)-2]
	for i, ev := range events[:len(events)-2] {
		raw := decode[map[string]json.RawMessage](t, []byte(ev.data))
		if u, ok := raw["usage"]; !ok || string(u) != "null" {
			t.Fatalf("chunk %d: usage = %s, want null", i, u)
		}
	}
	final := decode[testChatCompletion](t, []byte(usageEvent.data))
	raw := decode[map[string]json.RawMessage](t, []byte(usageEvent.data))
	if string(raw["choices"]) != "[]" {
		t.Fatalf("usage chunk choices = %s, want []", raw["choices"])
	}
	want := chatJSON(t, srv, "/openai/v1/chat/completions", chatBody, openAIAuth())
	if final.Usage == nil || final.Usage.PromptTokensDetails == nil || final.Usage.CompletionTokensDetails == nil {
		t.Fatalf("usage chunk lacks usage details: %s", usageEvent.data)
	}
	if *stripDetails(final.Usage) != *stripDetails(want.Usage) {
		t.Fatalf("stream usage %+v != JSON usage %+v", final.Usage, want.Usage)
	}
}

// stripDetails returns u without its detail pointers, for comparisons.
func stripDetails(u *testOpenAIUsage) *testOpenAIUsage {
	c := *u
	c.PromptTokensDetails, c.CompletionTokensDetails = nil, nil
	return &c
}

func TestOpenAIChatMaxTokens(t *testing.T) {
	srv := newTestServer(t, Config{})
	got := chatJSON(t, srv, "/openai/v1/chat/completions", chatBody+`,"max_completion_tokens":4`, openAIAuth())
	if fr := got.Choices[0].FinishReason; *fr != "length" || got.Usage.CompletionTokens != 4 {
		t.Fatalf("finish=%s usage=%+v, want length and 4 tokens", *fr, got.Usage)
	}
}

func TestOpenAIChatValidation(t *testing.T) {
	srv := newTestServer(t, Config{})
	for _, body := range []string{`{"messages":[]}`, `{"model":"gpt-4o"}`, `{not json`} {
		resp, b := do(t, srv, request{path: "/openai/v1/chat/completions", body: body, headers: []map[string]string{openAIAuth()}})
		wantStatus(t, resp, b, http.StatusBadRequest)
		e := decode[openAIErrorBody](t, b)
		if e.Error.Type != "invalid_request_error" || e.Error.Message == "" {
			t.Fatalf("body %s: unexpected error %s", body, b)
		}
	}
}

func TestOpenAIAuthError(t *testing.T) {
	srv := newTestServer(t, Config{})
	for _, h := range []map[string]string{nil, hdr("Authorization", "Bearer "), hdr("Authorization", "Basic abc")} {
		resp, b := do(t, srv, request{path: "/openai/v1/chat/completions", body: chatBody + "}", headers: []map[string]string{h}})
		wantStatus(t, resp, b, http.StatusUnauthorized)
		raw := decode[map[string]map[string]json.RawMessage](t, b)
		e := raw["error"]
		if string(e["type"]) != `"invalid_request_error"` || string(e["code"]) != `"invalid_api_key"` ||
			string(e["param"]) != "null" || len(e["message"]) < 3 {
			t.Fatalf("unexpected error body %s", b)
		}
	}
}

// testEmbeddings is the decoded embeddings response; Embedding is a float
// array or a base64 string.
type testEmbeddings struct {
	Object string `json:"object"`
	Model  string `json:"model"`
	Data   []struct {
		Object    string          `json:"object"`
		Index     int             `json:"index"`
		Embedding json.RawMessage `json:"embedding"`
	} `json:"data"`
	Usage struct {
		PromptTokens int `json:"prompt_tokens"`
		TotalTokens  int `json:"total_tokens"`
	} `json:"usage"`
}

func TestOpenAIEmbeddingsFloatAndBase64(t *testing.T) {
	srv := newTestServer(t, Config{})
	const body = `{"model":"text-embedding-3-small","input":["abcdefgh","abcd"],"dimensions":8`
	floatResp := embeddingsCall(t, srv, "/openai/v1/embeddings", body+`}`, openAIAuth())
	b64Resp := embeddingsCall(t, srv, "/openai/v1/embeddings", body+`,"encoding_format":"base64"}`, openAIAuth())
	if floatResp.Object != "list" || floatResp.Model != "text-embedding-3-small" || len(floatResp.Data) != 2 {
		t.Fatalf("unexpected response %+v", floatResp)
	}
	if floatResp.Usage.PromptTokens != 3 || floatResp.Usage.TotalTokens != 3 {
		t.Fatalf("usage = %+v, want 3 (2+1)", floatResp.Usage)
	}
	for i := range floatResp.Data {
		floats := decode[[]float32](t, floatResp.Data[i].Embedding)
		if len(floats) != 8 || floatResp.Data[i].Index != i || floatResp.Data[i].Object != "embedding" {
			t.Fatalf("item %d: unexpected %+v", i, floatResp.Data[i])
		}
		decoded := decodeBase64Floats(t, decode[string](t, b64Resp.Data[i].Embedding))
		for j := range floats {
			if floats[j] != decoded[j] {
				t.Fatalf("item %d value %d: float %v != base64 %v", i, j, floats[j], decoded[j])
			}
		}
	}
}

func TestOpenAIEmbeddingsInputs(t *testing.T) {
	srv := newTestServer(t, Config{})
	tests := []struct {
		input      string
		items      int
		tokens     int
		dimensions int
	}{
		{`"hello world"`, 1, 3, 1536},
		{`[1,2,3,4,5]`, 1, 5, 1536},
		{`[[1,2],[3,4,5]]`, 2, 5, 1536},
	}
	for _, tt := range tests {
		got := embeddingsCall(t, srv, "/openai/v1/embeddings", `{"model":"text-embedding-3-small","input":`+tt.input+`}`, openAIAuth())
		if len(got.Data) != tt.items || got.Usage.PromptTokens != tt.tokens {
			t.Fatalf("input %s: %d items, %d tokens; want %d, %d", tt.input, len(got.Data), got.Usage.PromptTokens, tt.items, tt.tokens)
		}
		if n := len(decode[[]float32](t, got.Data[0].Embedding)); n != tt.dimensions {
			t.Fatalf("input %s: %d dimensions, want %d", tt.input, n, tt.dimensions)
		}
	}
	resp, b := do(t, srv, request{path: "/openai/v1/embeddings", body: `{"model":"m","input":{}}`, headers: []map[string]string{openAIAuth()}})
	wantStatus(t, resp, b, http.StatusBadRequest)
}

// embeddingsCall posts an embeddings request and decodes the answer.
func embeddingsCall(t *testing.T, srv *httptest.Server, path, body string, headers ...map[string]string) testEmbeddings {
	t.Helper()
	resp, b := do(t, srv, request{path: path, body: body, headers: headers})
	wantStatus(t, resp, b, http.StatusOK)
	return decode[testEmbeddings](t, b)
}

// decodeBase64Floats decodes little-endian float32 values the way openai-go does.
func decodeBase64Floats(t *testing.T, s string) []float32 {
	t.Helper()
	b, err := base64.StdEncoding.DecodeString(s)
	if err != nil || len(b)%4 != 0 {
		t.Fatalf("bad base64 embedding %q: %v", s, err)
	}
	out := make([]float32, len(b)/4)
	for i := range out {
		out[i] = math.Float32frombits(binary.LittleEndian.Uint32(b[4*i:]))
	}
	return out
}

func TestOpenAIModels(t *testing.T) {
	srv := newTestServer(t, Config{})
	resp, b := do(t, srv, request{method: http.MethodGet, path: "/openai/v1/models", headers: []map[string]string{openAIAuth()}})
	wantStatus(t, resp, b, http.StatusOK)
	list := decode[openAIModelList](t, b)
	if list.Object != "list" || len(list.Data) == 0 || list.Data[0].Object != "model" {
		t.Fatalf("unexpected model list %s", b)
	}
	resp, b = do(t, srv, request{method: http.MethodGet, path: "/openai/v1/models/my-model", headers: []map[string]string{openAIAuth()}})
	wantStatus(t, resp, b, http.StatusOK)
	if m := decode[openAIModelObject](t, b); m.ID != "my-model" || m.Object != "model" {
		t.Fatalf("unexpected model %s", b)
	}
}
