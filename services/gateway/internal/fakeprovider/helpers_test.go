package fakeprovider

import (
	"bufio"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

// openAIAuth returns credentials accepted by the OpenAI dialect.
func openAIAuth() map[string]string { return hdr("Authorization", "Bearer test-key") }

// azureAuth returns credentials accepted by the Azure dialect.
func azureAuth() map[string]string { return hdr("api-key", "test-key") }

// anthropicAuth returns the headers required by the Anthropic dialect.
func anthropicAuth() map[string]string {
	return map[string]string{"x-api-key": "test-key", "anthropic-version": "2023-06-01"}
}

// geminiAuth returns credentials accepted by the Gemini dialect.
func geminiAuth() map[string]string { return hdr("x-goog-api-key", "test-key") }

// newTestServer starts the fake provider on a real listener.
func newTestServer(t *testing.T, cfg Config) *httptest.Server {
	t.Helper()
	srv := httptest.NewServer(NewHandler(cfg, nil))
	t.Cleanup(srv.Close)
	return srv
}

// request describes one test request.
type request struct {
	method  string
	path    string
	body    string
	headers []map[string]string
}

// do sends req and returns the response with its whole body read.
func do(t *testing.T, srv *httptest.Server, req request) (*http.Response, []byte) {
	t.Helper()
	return doCtx(t, context.Background(), srv, req)
}

// doCtx sends req with ctx and returns the response with its whole body read.
func doCtx(t *testing.T, ctx context.Context, srv *httptest.Server, req request) (*http.Response, []byte) {
	t.Helper()
	resp := open(t, ctx, srv, req)
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("read body: %v", err)
	}
	return resp, body
}

// open sends req and returns the response with its body unread.
func open(t *testing.T, ctx context.Context, srv *httptest.Server, req request) *http.Response {
	t.Helper()
	method := req.method
	if method == "" {
		method = http.MethodPost
	}
	var body io.Reader
	if req.body != "" {
		body = strings.NewReader(req.body)
	}
	hr, err := http.NewRequestWithContext(ctx, method, srv.URL+req.path, body)
	if err != nil {
		t.Fatalf("new request: %v", err)
	}
	hr.Header.Set("Content-Type", "application/json")
	for _, h := range req.headers {
		for k, v := range h {
			hr.Header.Set(k, v)
		}
	}
	resp, err := srv.Client().Do(hr)
	if err != nil {
		t.Fatalf("%s %s: %v", method, req.path, err)
	}
	return resp
}

// hdr returns a one-header map.
func hdr(k, v string) map[string]string {
	return map[string]string{k: v}
}

// wantStatus fails the test when resp does not have status want.
func wantStatus(t *testing.T, resp *http.Response, body []byte, want int) {
	t.Helper()
	if resp.StatusCode != want {
		t.Fatalf("status = %d, want %d; body: %s", resp.StatusCode, want, body)
	}
}

// decode unmarshals body into a new T.
func decode[T any](t *testing.T, body []byte) T {
	t.Helper()
	var v T
	if err := json.Unmarshal(body, &v); err != nil {
		t.Fatalf("unmarshal %T: %v; body: %s", v, err, body)
	}
	return v
}

// sseEvent is one parsed server-sent event.
type sseEvent struct {
	name string
	data string
}

// parseSSE splits a server-sent event stream into events. It accepts both
// \n and \r\n line endings.
func parseSSE(t *testing.T, body []byte) []sseEvent {
	t.Helper()
	var events []sseEvent
	var cur sseEvent
	sc := bufio.NewScanner(strings.NewReader(string(body)))
	sc.Buffer(make([]byte, 0, 64*1024), 16<<20)
	for sc.Scan() {
		line := strings.TrimSuffix(sc.Text(), "\r")
		switch {
		case line == "":
			if cur.data != "" || cur.name != "" {
				events = append(events, cur)
			}
			cur = sseEvent{}
		case strings.HasPrefix(line, "event: "):
			cur.name = strings.TrimPrefix(line, "event: ")
		case strings.HasPrefix(line, "data: "):
			cur.data = strings.TrimPrefix(line, "data: ")
		default:
			t.Fatalf("unexpected SSE line %q", line)
		}
	}
	if cur.data != "" || cur.name != "" {
		t.Fatalf("stream does not end with a blank line: last event %+v", cur)
	}
	return events
}

// wantHeader fails the test when header k of resp does not start with prefix.
func wantHeader(t *testing.T, resp *http.Response, k, prefix string) {
	t.Helper()
	if got := resp.Header.Get(k); !strings.HasPrefix(got, prefix) {
		t.Fatalf("header %s = %q, want prefix %q", k, got, prefix)
	}
}

// expectedText is the completion for the given chunk count and no limit.
func expectedText(chunks int) string {
	return newReply(chunks, 0).text
}
