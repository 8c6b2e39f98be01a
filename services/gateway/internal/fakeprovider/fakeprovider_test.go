package fakeprovider

import (
	"bufio"
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"
)

func TestHealthAndNotFound(t *testing.T) {
	srv := newTestServer(t, Config{})
	resp, b := do(t, srv, request{method: http.MethodGet, path: "/health"})
	wantStatus(t, resp, b, http.StatusOK)

	resp, b = do(t, srv, request{method: http.MethodGet, path: "/nowhere"})
	wantStatus(t, resp, b, http.StatusNotFound)
	wantHeader(t, resp, "Content-Type", "application/json")
	if e := decode[map[string]map[string]any](t, b)["error"]; e["message"] == "" {
		t.Fatalf("unexpected 404 body %s", b)
	}

	resp, b = do(t, srv, request{path: "/anthropic/v1/unknown", body: "{}"})
	wantStatus(t, resp, b, http.StatusNotFound)
	if e := decode[anthropicErrorBody](t, b); e.Error.Type != "not_found_error" {
		t.Fatalf("unexpected provider 404 body %s", b)
	}
}

// fakeStatusCase is one provider's x-fake-status expectation.
type fakeStatusCase struct {
	name    string
	path    string
	body    string
	headers map[string]string
	check   func(t *testing.T, b []byte)
}

func TestFakeStatus(t *testing.T) {
	srv := newTestServer(t, Config{})
	cases := []fakeStatusCase{
		{"openai", "/openai/v1/chat/completions", chatBody + "}", openAIAuth(), func(t *testing.T, b []byte) {
			if e := decode[openAIErrorBody](t, b); e.Error.Type != "requests" || *e.Error.Code != "rate_limit_exceeded" {
				t.Fatalf("unexpected body %s", b)
			}
		}},
		{"azure", azureBase + "/chat/completions?api-version=2024-10-21", chatBody + "}", azureAuth(), func(t *testing.T, b []byte) {
			if e := decode[azureErrorBody](t, b); e.Error.Code != "429" {
				t.Fatalf("unexpected body %s", b)
			}
		}},
		{"anthropic", "/anthropic/v1/messages", messagesBody + "}", anthropicAuth(), func(t *testing.T, b []byte) {
			if e := decode[anthropicErrorBody](t, b); e.Type != "error" || e.Error.Type != "rate_limit_error" {
				t.Fatalf("unexpected body %s", b)
			}
		}},
		{"gemini", geminiPath("generateContent"), geminiBody + "}", geminiAuth(), func(t *testing.T, b []byte) {
			if e := decode[geminiErrorBody](t, b); e.Error.Code != 429 || e.Error.Status != "RESOURCE_EXHAUSTED" {
				t.Fatalf("unexpected body %s", b)
			}
		}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			resp, b := do(t, srv, request{path: tc.path, body: tc.body, headers: []map[string]string{tc.headers, hdr(headerStatus, "429")}})
			wantStatus(t, resp, b, http.StatusTooManyRequests)
			tc.check(t, b)
		})
	}
}

func TestFakeStatusShapes(t *testing.T) {
	srv := newTestServer(t, Config{})
	resp, b := do(t, srv, request{path: "/anthropic/v1/messages", body: messagesBody + "}", headers: []map[string]string{anthropicAuth(), hdr(headerStatus, "529")}})
	wantStatus(t, resp, b, 529)
	if e := decode[anthropicErrorBody](t, b); e.Error.Type != "overloaded_error" {
		t.Fatalf("unexpected body %s", b)
	}
	resp, b = do(t, srv, request{path: geminiPath("generateContent"), body: geminiBody + "}", headers: []map[string]string{geminiAuth(), hdr(headerStatus, "503")}})
	wantStatus(t, resp, b, http.StatusServiceUnavailable)
	if e := decode[geminiErrorBody](t, b); e.Error.Status != "UNAVAILABLE" {
		t.Fatalf("unexpected body %s", b)
	}
	resp, b = do(t, srv, request{path: "/openai/v1/chat/completions", body: chatBody + "}", headers: []map[string]string{openAIAuth(), hdr(headerStatus, "500")}})
	wantStatus(t, resp, b, http.StatusInternalServerError)
	if e := decode[openAIErrorBody](t, b); e.Error.Type != "server_error" || e.Error.Code != nil {
		t.Fatalf("unexpected body %s", b)
	}
}

func TestInvalidOverridesAreIgnored(t *testing.T) {
	srv := newTestServer(t, Config{Chunks: 2})
	for _, h := range []map[string]string{
		hdr(headerStatus, "abc"), hdr(headerStatus, "200"), hdr(headerStatus, "700"),
		hdr(headerChunks, "0"), hdr(headerChunks, "-3"), hdr(headerChunks, "x"),
		hdr(headerDelay, "-5"), hdr(headerChunkDelay, "soon"),
	} {
		events := chatStream(t, srv, "/openai/v1/chat/completions", chatBody, openAIAuth(), h)
		// role chunk + 2 content chunks + finish chunk + [DONE]
		if len(events) != 5 {
			t.Fatalf("headers %v: %d events, want 5", h, len(events))
		}
	}
}

func TestChunksOverride(t *testing.T) {
	srv := newTestServer(t, Config{})
	events := chatStream(t, srv, "/openai/v1/chat/completions", chatBody, openAIAuth(), hdr(headerChunks, "40"))
	if len(events) != 43 {
		t.Fatalf("events = %d, want 43 (role + 40 content + finish + [DONE])", len(events))
	}
	got := chatJSON(t, srv, "/openai/v1/chat/completions", chatBody, openAIAuth(), hdr(headerChunks, "40"))
	if got.Choices[0].Message.Content != expectedText(40) || got.Usage.CompletionTokens != 57 {
		t.Fatalf("40 chunks: content %q, %d tokens; want 3 sentences, 57 tokens", got.Choices[0].Message.Content, got.Usage.CompletionTokens)
	}
}

func TestDelayOverride(t *testing.T) {
	srv := newTestServer(t, Config{})
	start := time.Now()
	resp, b := do(t, srv, request{path: "/openai/v1/chat/completions", body: chatBody + "}", headers: []map[string]string{openAIAuth(), hdr(headerDelay, "50")}})
	wantStatus(t, resp, b, http.StatusOK)
	if d := time.Since(start); d < 50*time.Millisecond {
		t.Fatalf("answered after %v, want at least 50ms", d)
	}
}

// trackedServer starts the fake provider and reports on done each time a
// request handler returns.
func trackedServer(t *testing.T, cfg Config) (*httptest.Server, <-chan struct{}) {
	t.Helper()
	h := NewHandler(cfg, nil)
	done := make(chan struct{}, 16)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		defer func() { done <- struct{}{} }()
		h.ServeHTTP(w, r)
	}))
	t.Cleanup(srv.Close)
	return srv, done
}

// waitDone fails the test unless a handler returns within limit.
func waitDone(t *testing.T, done <-chan struct{}, limit time.Duration) {
	t.Helper()
	select {
	case <-done:
	case <-time.After(limit):
		t.Fatalf("handler still running %v after the client went away", limit)
	}
}

func TestCancelEndsSlowStream(t *testing.T) {
	type streamCase struct {
		name, path, body string
		headers          map[string]string
	}
	cases := []streamCase{
		{"openai", "/openai/v1/chat/completions", chatBody + `,"stream":true}`, openAIAuth()},
		{"responses", "/openai/v1/responses", responsesBody + `,"stream":true}`, openAIAuth()},
		{"anthropic", "/anthropic/v1/messages", messagesBody + `,"stream":true}`, anthropicAuth()},
		{"gemini", geminiPath("streamGenerateContent") + "?alt=sse", geminiBody + "}", geminiAuth()},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			srv, done := trackedServer(t, Config{Chunks: 100, ChunkDelay: 10 * time.Second})
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			resp := open(t, ctx, srv, request{path: tc.path, body: tc.body, headers: []map[string]string{tc.headers}})
			defer resp.Body.Close()
			line, err := bufio.NewReader(resp.Body).ReadString('\n')
			if err != nil || !strings.Contains(line, ":") {
				t.Fatalf("first stream line %q: %v", line, err)
			}
			cancel()
			waitDone(t, done, 2*time.Second)
		})
	}
}

func TestCancelDuringInitialDelay(t *testing.T) {
	srv, done := trackedServer(t, Config{Delay: 10 * time.Second})
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	hr, err := http.NewRequestWithContext(ctx, http.MethodPost, srv.URL+"/openai/v1/chat/completions", strings.NewReader(chatBody+"}"))
	if err != nil {
		t.Fatal(err)
	}
	hr.Header.Set("Authorization", "Bearer k")
	if resp, err := srv.Client().Do(hr); err == nil {
		resp.Body.Close()
		t.Fatalf("request finished despite a 10s delay")
	}
	waitDone(t, done, 2*time.Second)
}

func TestStreamFlushesEachChunk(t *testing.T) {
	srv := newTestServer(t, Config{Chunks: 3, ChunkDelay: time.Second})
	resp := open(t, context.Background(), srv, request{path: "/openai/v1/chat/completions", body: chatBody + `,"stream":true}`, headers: []map[string]string{openAIAuth()}})
	defer resp.Body.Close()
	start := time.Now()
	r := bufio.NewReader(resp.Body)
	for range 2 { // role chunk and first content chunk arrive before any delay
		line, err := r.ReadString('\n')
		if err != nil {
			t.Fatal(err)
		}
		if _, err := r.ReadString('\n'); err != nil {
			t.Fatal(err)
		}
		var chunk map[string]json.RawMessage
		if err := json.Unmarshal([]byte(strings.TrimPrefix(strings.TrimSpace(line), "data: ")), &chunk); err != nil {
			t.Fatalf("chunk %q: %v", line, err)
		}
	}
	if d := time.Since(start); d > 500*time.Millisecond {
		t.Fatalf("first chunks took %v: stream is not flushed", d)
	}
}

// The pause knob: a silence in the middle of a stream, asked for by header
// or by the model name (which a gateway forwards), on every streaming
// dialect; the stream is whole after it.
func TestPauseKnob(t *testing.T) {
	const pause = 300 * time.Millisecond
	cases := []struct {
		name string
		req  request
		last string // in the last event
	}{
		{"header", request{path: "/openai/v1/chat/completions", body: chatBody + `,"stream":true}`,
			headers: []map[string]string{openAIAuth(), hdr(headerPause, "300")}}, "[DONE]"},
		{"openai-model", request{path: "/openai/v1/chat/completions", body: strings.Replace(chatBody, "gpt-4o-mini", "gpt-4o-mini-pause-300ms", 1) + `,"stream":true}`,
			headers: []map[string]string{openAIAuth()}}, "[DONE]"},
		{"anthropic-model", request{path: "/anthropic/v1/messages", body: strings.Replace(messagesBody, "claude-sonnet-4-20250514", "claude-pause-300ms", 1) + `,"stream":true}`,
			headers: []map[string]string{anthropicAuth()}}, "message_stop"},
		{"gemini-path", request{path: strings.Replace(geminiPath("streamGenerateContent"), "models/", "models/gemini-pause-300ms-", 1) + "?alt=sse",
			body: geminiBody + "}", headers: []map[string]string{geminiAuth()}}, "STOP"},
		{"azure-deployment", request{path: "/azure/res/openai/deployments/gpt4o-pause-300ms/chat/completions?api-version=2024-10-21",
			body: chatBody + `,"stream":true}`, headers: []map[string]string{azureAuth()}}, "[DONE]"},
	}
	srv := newTestServer(t, Config{Chunks: 4})
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			resp := open(t, context.Background(), srv, tc.req)
			defer resp.Body.Close()
			r := bufio.NewReader(resp.Body)
			var gaps []time.Duration
			var text strings.Builder
			last := time.Now()
			for {
				line, err := r.ReadString('\n')
				text.WriteString(line)
				if strings.HasPrefix(line, "data:") {
					gaps = append(gaps, time.Since(last))
					last = time.Now()
				}
				if err != nil {
					break
				}
			}
			long := 0
			for _, g := range gaps {
				if g >= pause-20*time.Millisecond {
					long++
				}
			}
			if long != 1 {
				t.Errorf("gaps between events %v: want exactly one of at least %v", gaps, pause)
			}
			if !strings.Contains(text.String(), tc.last) {
				t.Errorf("stream not complete after the pause:\n%s", text.String())
			}
		})
	}
	// Without the knob nothing pauses.
	start := time.Now()
	resp, b := do(t, srv, request{path: "/openai/v1/chat/completions", body: chatBody + `,"stream":true}`, headers: []map[string]string{openAIAuth()}})
	wantStatus(t, resp, b, http.StatusOK)
	if d := time.Since(start); d >= pause {
		t.Errorf("a stream without the knob took %v", d)
	}
}
