package httpserver

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/labstack/echo/v4"

	"trueportai/services/internal/apperr"
)

// serve runs NewServer(h, lim) on a loopback listener until the test ends
// and returns its address.
func serve(t *testing.T, h http.Handler, lim Limits) string {
	t.Helper()
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := NewServer(h, lim)
	go func() { _ = srv.Serve(lis) }()
	t.Cleanup(func() { _ = srv.Close() })
	return lis.Addr().String()
}

// trickle writes head, then one byte of body every gap until the server
// closes the connection or stop passes. It returns what the server
// answered and when the connection ended (read EOF or reset).
func trickle(t *testing.T, addr, head string, gap, stop time.Duration) (answer string, ended time.Duration) {
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
	go func() {
		for {
			time.Sleep(gap)
			if _, err := conn.Write([]byte("a")); err != nil {
				return
			}
		}
	}()
	b, err := io.ReadAll(conn)
	if ne, ok := err.(net.Error); ok && ne.Timeout() {
		t.Fatalf("the connection was still open after %s; answer so far %q", stop, b)
	}
	return string(b), time.Since(start)
}

// TestSlowlorisHeadersDropped: a client sending its headers a line at a
// time is disconnected at ReadHeaderTimeout.
func TestSlowlorisHeadersDropped(t *testing.T) {
	t.Parallel()
	lim := Limits{ReadHeaderTimeout: 500 * time.Millisecond, BodyReadTimeout: time.Minute}
	addr := serve(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {}), lim)
	_, ended := trickle(t, addr, "GET / HTTP/1.1\r\nHost: x\r\nX-Slow: ", 100*time.Millisecond, 10*time.Second)
	if ended > 3*time.Second {
		t.Errorf("slowloris held the connection %s (ReadHeaderTimeout %s)", ended, lim.ReadHeaderTimeout)
	}
}

// TestTrickledBodyCut: a body sent a byte at a time is cut at
// BodyReadTimeout whether the handler reads it (answer 408 from BindJSON)
// or answers without reading it (net/http discards it under the same
// deadline), with a declared length or chunked; the connection is closed
// after the answer.
func TestTrickledBodyCut(t *testing.T) {
	t.Parallel()
	lim := Limits{ReadHeaderTimeout: time.Minute, BodyReadTimeout: 700 * time.Millisecond}
	e := New(slog.New(slog.DiscardHandler))
	e.POST("/bind", func(c echo.Context) error {
		var v map[string]any
		if err := BindJSON(c, &v, MaxBodyBytes); err != nil {
			return err
		}
		return c.NoContent(http.StatusNoContent)
	})
	e.POST("/ignore", func(c echo.Context) error {
		return apperr.New(apperr.Unauthenticated, "unauthorized", "missing or invalid token")
	})
	addr := serve(t, e, lim)
	for _, tc := range []struct {
		name, path, framing string
		status              int
	}{
		{"read/length", "/bind", "Content-Length: 4000\r\n", 408},
		{"read/chunked", "/bind", "Transfer-Encoding: chunked\r\n\r\n100", 408},
		{"unread/length", "/ignore", "Content-Length: 4000\r\n", 401},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			// The framing ends the headers; a chunked body opens a 256-byte chunk.
			head := "POST " + tc.path + " HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n" + tc.framing + "\r\n"
			answer, ended := trickle(t, addr, head, 100*time.Millisecond, 10*time.Second)
			if ended > 3*time.Second {
				t.Errorf("connection held %s (BodyReadTimeout %s)", ended, lim.BodyReadTimeout)
			}
			if !strings.HasPrefix(answer, "HTTP/1.1 "+strconv.Itoa(tc.status)+" ") {
				t.Errorf("answer %q, want status %d", answer, tc.status)
			}
			if tc.status == 408 && !strings.Contains(answer, `"code":"request_timeout"`) {
				t.Errorf("answer %q is not the request_timeout envelope", answer)
			}
		})
	}
}

// TestBodyDeadlineSparesStreams: once the body is read, the deadline is
// lifted: a response streaming far longer than BodyReadTimeout completes
// with its request context alive, and the connection is reused after it.
func TestBodyDeadlineSparesStreams(t *testing.T) {
	t.Parallel()
	lim := Limits{ReadHeaderTimeout: time.Second, BodyReadTimeout: 200 * time.Millisecond}
	const chunks = 8
	addr := serve(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if _, err := io.ReadAll(r.Body); err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		w.Header().Set("Content-Type", "text/event-stream")
		for i := range chunks {
			select {
			case <-r.Context().Done():
				return // the test sees too few chunks
			case <-time.After(100 * time.Millisecond):
			}
			fmt.Fprintf(w, "data: %d\n\n", i)
			_ = http.NewResponseController(w).Flush()
		}
	}), lim)
	client := &http.Client{Transport: &http.Transport{MaxConnsPerHost: 1}}
	for round := range 2 {
		resp, err := client.Post("http://"+addr+"/", "application/json", strings.NewReader(`{"stream":true}`))
		if err != nil {
			t.Fatal(err)
		}
		n := 0
		sc := bufio.NewScanner(resp.Body)
		for sc.Scan() {
			if strings.HasPrefix(sc.Text(), "data: ") {
				n++
			}
		}
		resp.Body.Close()
		if sc.Err() != nil || n != chunks {
			t.Errorf("round %d: %d of %d chunks (%v): the stream was cut", round, n, chunks, sc.Err())
		}
	}
}

// TestManagementBodyLimit: a REST body over 1 MiB is refused with 413 in
// the envelope naming the limit, before authentication or the handler,
// with a declared length or chunked.
func TestManagementBodyLimit(t *testing.T) {
	t.Parallel()
	e := New(slog.New(slog.DiscardHandler))
	auth := func(next echo.HandlerFunc) echo.HandlerFunc {
		return func(c echo.Context) error {
			if c.Request().Header.Get("Authorization") == "" {
				return apperr.New(apperr.Unauthenticated, "unauthorized", "missing or invalid token")
			}
			return next(c)
		}
	}
	e.POST("/keys", func(c echo.Context) error {
		var v map[string]any
		if err := BindJSON(c, &v, MaxBodyBytes); err != nil {
			return err
		}
		return c.NoContent(http.StatusCreated)
	}, auth)
	e.PUT("/raw", func(c echo.Context) error {
		if _, err := io.ReadAll(c.Request().Body); err != nil {
			return BodyError(err, MaxBodyBytes)
		}
		return c.NoContent(http.StatusNoContent)
	})
	addr := serve(t, e, DefaultLimits)
	big := `{"name":"` + strings.Repeat("x", 2<<20) + `"}`
	for _, tc := range []struct {
		name, method, path, token string
		chunked                   bool
	}{
		{"length/before-auth", "POST", "/keys", "", false},
		{"length/authenticated", "POST", "/keys", "tok", false},
		{"chunked/bind", "POST", "/keys", "tok", true},
		{"chunked/raw-read", "PUT", "/raw", "", true},
		{"unknown-route", "POST", "/nope", "", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			var body io.Reader = strings.NewReader(big)
			if tc.chunked {
				body = io.MultiReader(body) // unknown length: sent chunked
			}
			req, _ := http.NewRequestWithContext(context.Background(), tc.method, "http://"+addr+tc.path, body)
			req.Header.Set("Content-Type", "application/json")
			if tc.token != "" {
				req.Header.Set("Authorization", "Bearer "+tc.token)
			}
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			var env Envelope
			if err := json.NewDecoder(resp.Body).Decode(&env); err != nil {
				t.Fatal(err)
			}
			if resp.StatusCode != http.StatusRequestEntityTooLarge || env.Error.Code != "body_too_large" ||
				env.Error.Details["limit_bytes"] != float64(MaxBodyBytes) || !strings.Contains(env.Error.Message, "1 MiB") ||
				env.Error.RequestID == "" {
				t.Errorf("got %d %+v, want 413 body_too_large naming 1 MiB", resp.StatusCode, env.Error)
			}
		})
	}
	// At the limit passes.
	ok := `{"name":"` + strings.Repeat("x", MaxBodyBytes-12) + `"}`
	req, _ := http.NewRequest("POST", "http://"+addr+"/keys", strings.NewReader(ok))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Authorization", "Bearer tok")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusCreated {
		t.Errorf("a body of exactly %d bytes: %d", len(ok), resp.StatusCode)
	}
}

// TestInternalHandler: metrics and profiles, nothing else.
func TestInternalHandler(t *testing.T) {
	t.Parallel()
	h := InternalHandler(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "metric 1\n") }))
	addr := serve(t, h, DefaultLimits)
	for path, want := range map[string]int{"/metrics": 200, "/debug/pprof/": 200, "/debug/pprof/cmdline": 200, "/health": 404, "/": 404} {
		resp, err := http.Get("http://" + addr + path)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != want {
			t.Errorf("GET %s: %d, want %d", path, resp.StatusCode, want)
		}
	}
}
