package proxy_test

import (
	"bytes"
	"compress/flate"
	"compress/gzip"
	"compress/zlib"
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"sync"
	"testing"

	"github.com/andybalholm/brotli"
	"github.com/klauspost/compress/zstd"

	"trueportai/services/gateway/internal/keys"
	"trueportai/services/gateway/internal/platform"
	"trueportai/services/gateway/internal/policy"
	"trueportai/services/gateway/internal/proxy"
)

func encode(t *testing.T, coding string, b []byte) []byte {
	t.Helper()
	var buf bytes.Buffer
	var w io.WriteCloser
	switch coding {
	case "gzip":
		w = gzip.NewWriter(&buf)
	case "deflate":
		w = zlib.NewWriter(&buf)
	case "raw-deflate":
		w, _ = flate.NewWriter(&buf, flate.BestSpeed)
	case "br":
		w = brotli.NewWriter(&buf)
	case "zstd":
		zw, err := zstd.NewWriter(&buf)
		if err != nil {
			t.Fatal(err)
		}
		w = zw
	default:
		t.Fatalf("coding %s", coding)
	}
	if _, err := w.Write(b); err != nil {
		t.Fatal(err)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

type upstreamLog struct {
	mu      sync.Mutex
	bodies  []string
	headers []http.Header
}

func (u *upstreamLog) handler() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		u.mu.Lock()
		u.bodies = append(u.bodies, string(b))
		u.headers = append(u.headers, r.Header.Clone())
		u.mu.Unlock()
		w.Header().Set("Content-Type", "application/json")
		_, _ = io.WriteString(w, chatJSON)
	})
}

func (u *upstreamLog) count() int {
	u.mu.Lock()
	defer u.mu.Unlock()
	return len(u.bodies)
}

func postEncoded(t *testing.T, url, coding string, body []byte) (int, string) {
	t.Helper()
	req, _ := http.NewRequest("POST", url, bytes.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("X-Api-Key", callerKey)
	req.Header.Set("Content-Encoding", coding)
	resp, err := http.DefaultTransport.RoundTrip(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// A compressed body is read decoded by the model allowlist and policies,
// and forwarded decoded without Content-Encoding.
func TestEncodedBodiesAreDecoded(t *testing.T) {
	set, err := policy.Compile([]policy.Rule{{ID: "33333333-3333-3333-3333-333333333333", Name: "no codenames", Type: "keyword",
		Config: []byte(`{"keywords":["bluebird"]}`), Action: "block", Enabled: true}})
	if err != nil {
		t.Fatal(err)
	}
	up := &upstreamLog{}
	f := newFixture(t, up.handler(), func(o *proxy.Options, k *keys.Key, tn *platform.Tenant) {
		o.Policies = fixedRules{set}
		tn.AllowedModels = []string{"gpt-4o-mini"}
	})
	url := f.gw.URL + "/trueportai-services/openai/v1/chat/completions"
	blocked := []byte(`{"model":"gpt-4o-mini","messages":[{"role":"user","content":"tell me about project bluebird"}]}`)
	clean := []byte(`{"model":"gpt-4o-mini","messages":[{"role":"user","content":"hello"}]}`)
	other := []byte(`{"model":"gpt-4o","messages":[{"role":"user","content":"hello"}]}`)
	for _, coding := range []string{"gzip", "deflate", "raw-deflate", "br", "zstd"} {
		header := coding
		if coding == "raw-deflate" {
			header = "deflate"
		}
		t.Run(coding, func(t *testing.T) {
			before := up.count()
			if code, body := postEncoded(t, url, header, encode(t, coding, blocked)); code != 400 || !strings.Contains(body, "policy_violation") {
				t.Fatalf("compressed blocked prompt: %d %s", code, body)
			}
			if code, body := postEncoded(t, url, header, encode(t, coding, other)); code != 403 || !strings.Contains(body, "model_not_allowed") {
				t.Fatalf("compressed disallowed model: %d %s", code, body)
			}
			if up.count() != before {
				t.Fatal("a refused request reached the upstream")
			}
			if code, body := postEncoded(t, url, header+", identity", encode(t, coding, clean)); code != 200 {
				t.Fatalf("compressed clean prompt: %d %s", code, body)
			}
			up.mu.Lock()
			got, h := up.bodies[len(up.bodies)-1], up.headers[len(up.headers)-1]
			up.mu.Unlock()
			if got != string(clean) || h.Get("Content-Encoding") != "" || h.Get("Content-Length") != "" && h.Get("Content-Length") != "70" {
				t.Fatalf("upstream got %q with Content-Encoding %q", got, h.Get("Content-Encoding"))
			}
		})
	}
}

func TestEncodedBodiesRefused(t *testing.T) {
	up := &upstreamLog{}
	f := newFixture(t, up.handler(), nil) // body limit 1 MiB
	url := f.gw.URL + "/trueportai-services/openai/v1/chat/completions"
	anth := f.gw.URL + "/trueportai-services/anthropic/v1/messages"
	// 4 MiB of text inflated from a few KiB.
	bomb := []byte(`{"model":"gpt-4o-mini","messages":[{"role":"user","content":"` + strings.Repeat("a", 4<<20) + `"}]}`)
	clean := []byte(`{"model":"gpt-4o-mini","messages":[{"role":"user","content":"hello"}]}`)
	for _, tc := range []struct {
		name, url, coding string
		body              []byte
		status            int
		code              string
	}{
		{"unknown coding", url, "compress", clean, 415, "unsupported_content_encoding"},
		{"stacked codings", url, "gzip, br", encode(t, "br", encode(t, "gzip", clean)), 415, "unsupported_content_encoding"},
		{"anthropic shape", anth, "lz4", clean, 415, "invalid_request_error"},
		{"gzip bomb", url, "gzip", encode(t, "gzip", bomb), 413, "request_too_large"},
		{"zstd bomb", url, "zstd", encode(t, "zstd", bomb), 413, "request_too_large"},
		{"br bomb", url, "br", encode(t, "br", bomb), 413, "request_too_large"},
		{"not gzip", url, "gzip", clean, 400, "invalid_body"},
		{"truncated gzip", url, "gzip", encode(t, "gzip", clean)[:20], 400, "invalid_body"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			code, body := postEncoded(t, tc.url, tc.coding, tc.body)
			var shape map[string]any
			if code != tc.status || json.Unmarshal([]byte(body), &shape) != nil || !strings.Contains(body, tc.code) {
				t.Fatalf("%d %s, want %d %s", code, body, tc.status, tc.code)
			}
		})
	}
	if up.count() != 0 {
		t.Fatalf("%d refused requests reached the upstream", up.count())
	}
}
