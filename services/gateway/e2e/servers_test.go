package e2e

// Hostile clients against the gateway's listeners (docs/decisions.md,
// "Threat model"): slow headers, trickled bodies on proxy and management
// routes, oversized management bodies, silent gRPC connections, and the
// public listener serving no metrics or profiles; while a stream far longer
// than the body deadline stays healthy.

import (
	"bufio"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"trueportai/services/gateway/internal/fakeprovider"
)

// trickleConn writes head on a new connection to addr, then one byte every
// gap (none when gap is 0), until the server ends the connection; it fails
// the test when the connection is still open after stop. It returns the
// server's answer and how long the connection lasted.
func trickleConn(t *testing.T, addr, head string, gap, stop time.Duration) (string, time.Duration) {
	t.Helper()
	conn, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	start := time.Now()
	_ = conn.SetDeadline(start.Add(stop))
	if _, err := io.WriteString(conn, head); err != nil {
		t.Fatal(err)
	}
	if gap > 0 {
		go func() {
			for {
				time.Sleep(gap)
				if _, err := conn.Write([]byte("a")); err != nil {
					return
				}
			}
		}()
	}
	b, err := io.ReadAll(conn)
	if ne, ok := err.(net.Error); ok && ne.Timeout() {
		t.Fatalf("connection still open after %s; answer so far %q", stop, b)
	}
	return string(b), time.Since(start)
}

// TestHostileClients runs the gateway with READ_HEADER_TIMEOUT=1s and
// BODY_READ_TIMEOUT=2s (defaults 10 s and 30 s) and an upstream whose
// streams last 4 s.
func TestHostileClients(t *testing.T) {
	t.Parallel()
	const chunks = 10
	slow := httptest.NewServer(fakeprovider.NewHandler(fakeprovider.Config{Chunks: chunks, ChunkDelay: 400 * time.Millisecond}, nil))
	t.Cleanup(slow.Close)
	s := newStack(t, "READ_HEADER_TIMEOUT=1s", "BODY_READ_TIMEOUT=2s", "UPSTREAM_OPENAI_URL="+slow.URL+"/openai/v1")
	ts := s.setupTenant("hostile-" + randHex(3))
	gw := strings.TrimPrefix(s.gatewayURL, "http://")
	const gap, stop, bound = 250 * time.Millisecond, 10 * time.Second, 5 * time.Second

	t.Run("slowloris", func(t *testing.T) {
		t.Parallel()
		_, took := trickleConn(t, gw, "GET /trueportai-services/health HTTP/1.1\r\nHost: x\r\nX-Slow: ", gap, stop)
		if took > bound {
			t.Errorf("slowloris connection lasted %s", took)
		}
	})
	for _, tc := range []struct {
		name, path, auth, want string
	}{
		{"trickle/proxy", "/trueportai-services/openai/v1/chat/completions", "Authorization: Bearer " + ts.apiKey, "HTTP/1.1 400 "},
		{"trickle/management", "/trueportai-services/api/v1/keys", "Authorization: Bearer " + ts.scopedToken, "HTTP/1.1 408 "},
		{"trickle/management-no-token", "/trueportai-services/api/v1/keys", "", "HTTP/1.1 401 "},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			head := "POST " + tc.path + " HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 5000\r\n"
			if tc.auth != "" {
				head += tc.auth + "\r\n"
			}
			answer, took := trickleConn(t, gw, head+"\r\n{", gap, stop)
			if took > bound {
				t.Errorf("trickled body held the connection %s", took)
			}
			if !strings.HasPrefix(answer, tc.want) {
				t.Errorf("answer %q, want %q…", answer, tc.want)
			}
		})
	}
	t.Run("management-2MiB", func(t *testing.T) {
		t.Parallel()
		big := map[string]any{"name": strings.Repeat("k", 2<<20)}
		for _, tok := range []string{"", ts.scopedToken} {
			var env struct {
				Error struct {
					Code    string         `json:"code"`
					Message string         `json:"message"`
					Details map[string]any `json:"details"`
				} `json:"error"`
			}
			c := call(t, "POST", s.gatewayURL+"/trueportai-services/api/v1/keys", tok, big, &env)
			if c != 413 || env.Error.Code != "body_too_large" || env.Error.Details["limit_bytes"] != float64(1<<20) || !strings.Contains(env.Error.Message, "1 MiB") {
				t.Errorf("token %t: %d %+v, want 413 body_too_large naming 1 MiB", tok != "", c, env.Error)
			}
		}
	})
	t.Run("metrics-internal-only", func(t *testing.T) {
		t.Parallel()
		for _, path := range []string{"/metrics", "/debug/pprof/"} {
			if c := call(t, "GET", s.gatewayURL+path, "", nil, nil); c != 404 {
				t.Errorf("public %s: %d, want 404", path, c)
			}
			resp, err := (&http.Client{Timeout: 10 * time.Second}).Get(s.gatewayInternalURL + path)
			if err != nil {
				t.Fatal(err)
			}
			body, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode != 200 || path == "/metrics" && !strings.Contains(string(body), "trueport_usage_events_published_total") {
				t.Errorf("internal %s: %d %.300s", path, resp.StatusCode, body)
			}
		}
	})
	t.Run("grpc-handshake", func(t *testing.T) {
		t.Parallel()
		_, took := trickleConn(t, s.gatewayLis.grpcAddr(), "", 0, stop)
		if took > bound {
			t.Errorf("a silent gRPC connection lasted %s", took)
		}
	})
	t.Run("long-stream", func(t *testing.T) {
		t.Parallel()
		body, _ := json.Marshal(map[string]any{"model": "gpt-4o-mini", "stream": true,
			"messages": []map[string]string{{"role": "user", "content": "count slowly"}}})
		req, _ := http.NewRequest("POST", s.gatewayURL+"/trueportai-services/openai/v1/chat/completions", strings.NewReader(string(body)))
		req.Header.Set("Authorization", "Bearer "+ts.apiKey)
		req.Header.Set("Content-Type", "application/json")
		start := time.Now()
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		events, done := 0, false
		sc := bufio.NewScanner(resp.Body)
		for sc.Scan() {
			switch line := sc.Text(); {
			case line == "data: [DONE]":
				done = true
			case strings.HasPrefix(line, "data: "):
				events++
			}
		}
		took := time.Since(start)
		if resp.StatusCode != 200 || !done || events < chunks || took < 3*time.Second {
			t.Errorf("stream: status %d, %d events, [DONE] %t, after %s (%v): cut by the body deadline?", resp.StatusCode, events, done, took, sc.Err())
		}
	})
}
