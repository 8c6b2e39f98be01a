package app

// Hostile clients against the platform's listeners (issue "Hostile
// tenants", docs/decisions.md "Threat model"): slow headers, trickled
// bodies, oversized bodies, silent gRPC connections, and what the public
// listener must not serve.

import (
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"
)

// trickleConn writes head on a new connection to addr, then one byte every
// gap, until the server ends the connection; it fails the test when the
// connection is still open after stop. It returns the server's answer and
// how long the connection lasted.
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

func hostOf(url string) string { return strings.TrimPrefix(url, "http://") }

// TestSlowClientsCut: with READ_HEADER_TIMEOUT=1s and BODY_READ_TIMEOUT=1s,
// headers or a body sent a byte at a time (on a public route, a
// management route with a valid token, and one whose token check fails)
// end within a few seconds; a gRPC connection that never handshakes is
// closed too. The defaults are 10 s and 30 s.
func TestSlowClientsCut(t *testing.T) {
	t.Parallel()
	s := startServer(t, "READ_HEADER_TIMEOUT=1s", "BODY_READ_TIMEOUT=1s")
	u := s.newUser(t, "slow@example.com")
	tok := s.scoped(t, u, s.newTenant(t, u, "Slow", "slow-org").ID)
	const gap, stop, bound = 200 * time.Millisecond, 8 * time.Second, 4 * time.Second

	t.Run("headers", func(t *testing.T) {
		t.Parallel()
		_, took := trickleConn(t, hostOf(s.baseURL), "GET /health HTTP/1.1\r\nHost: x\r\nX-Slow: ", gap, stop)
		if took > bound {
			t.Errorf("slowloris connection lasted %s", took)
		}
	})
	for _, tc := range []struct{ name, path, token string }{
		{"body/public", "/platform/api/global/auth/login", ""},
		{"body/management", "/platform/api/service/invites", tok},
		{"body/management-unauthenticated", "/platform/api/service/invites", "bogus"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			head := "POST " + tc.path + " HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 5000\r\n"
			if tc.token != "" {
				head += "Authorization: Bearer " + tc.token + "\r\n"
			}
			answer, took := trickleConn(t, hostOf(s.baseURL), head+"\r\n{", gap, stop)
			if took > bound {
				t.Errorf("trickled body held the connection %s", took)
			}
			if !strings.HasPrefix(answer, "HTTP/1.1 4") {
				t.Errorf("answer %q, want a 4xx", answer)
			}
		})
	}
	t.Run("grpc-handshake", func(t *testing.T) {
		t.Parallel()
		_, took := trickleConn(t, s.grpcAddr, "", 0, stop)
		if took > bound {
			t.Errorf("a silent gRPC connection lasted %s", took)
		}
	})
}

// TestManagementBodyOver1MiB: a 2 MiB body is refused 413 in the envelope
// naming the limit, before the token is checked.
func TestManagementBodyOver1MiB(t *testing.T) {
	t.Parallel()
	s := startServer(t)
	u := s.newUser(t, "big@example.com")
	tok := s.scoped(t, u, s.newTenant(t, u, "Big", "big-org").ID)
	big := `{"email":"a@example.com","role":"member","pad":"` + strings.Repeat("x", 2<<20) + `"}`
	for _, tc := range []struct{ name, method, path, token string }{
		{"no-token", http.MethodPost, "/platform/api/service/invites", ""},
		{"scoped", http.MethodPost, "/platform/api/service/invites", tok},
		{"config", http.MethodPut, "/platform/api/service/configs/gateway.default_rpm", tok},
		{"public", http.MethodPost, "/platform/api/global/auth/register", ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			env := wantError(t, s.do(t, req{Method: tc.method, Path: tc.path, Token: tc.token, Body: big}), http.StatusRequestEntityTooLarge, "body_too_large")
			if env.Details["limit_bytes"] != float64(1<<20) || !strings.Contains(env.Message, "1 MiB") {
				t.Errorf("the envelope does not name the limit: %+v", env)
			}
		})
	}
}

// TestMetricsOnInternalListenerOnly: /metrics and pprof answer on
// PLATFORM_INTERNAL_ADDR, 404 on the public listener.
func TestMetricsOnInternalListenerOnly(t *testing.T) {
	t.Parallel()
	s := startServer(t)
	for _, path := range []string{"/metrics", "/debug/pprof/", "/debug/pprof/cmdline"} {
		if r := s.get(t, path, ""); r.Status != http.StatusNotFound {
			t.Errorf("public GET %s: %d, want 404", path, r.Status)
		}
		resp, err := http.Get(s.internalURL + path)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			t.Errorf("internal GET %s: %d, want 200", path, resp.StatusCode)
		}
		if path == "/metrics" && !strings.Contains(string(body), "trueport_http_requests_total") {
			t.Errorf("internal /metrics lacks the REST counters:\n%.500s", body)
		}
	}
}
