package proxy

import (
	"context"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

// writeCountingConn counts the writes made on a connection.
type writeCountingConn struct {
	net.Conn
	writes *atomic.Int64
}

func (c writeCountingConn) Write(b []byte) (int, error) {
	c.writes.Add(1)
	return c.Conn.Write(b)
}

// TestUpstreamRequestIsOneWrite: the forwarded request's headers and body
// leave in one write, so a small request is one TCP segment and the provider
// has all of it at once. (Given a body it does not know to be in memory, the
// transport flushes the headers first: two writes, two segments.)
func TestUpstreamRequestIsOneWrite(t *testing.T) {
	bodies := make(chan string, 8)
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		bodies <- string(b)
		w.Header().Set("Content-Type", "application/json")
		_, _ = io.WriteString(w, `{"id":"chatcmpl-1","object":"chat.completion","model":"gpt-4o-mini","choices":[],`+
			`"usage":{"prompt_tokens":3,"completion_tokens":2,"total_tokens":5}}`)
	}))
	defer up.Close()

	var writes atomic.Int64
	tr := NewTransport(time.Minute)
	dial := tr.DialContext
	tr.DialContext = func(ctx context.Context, network, addr string) (net.Conn, error) {
		c, err := dial(ctx, network, addr)
		if err != nil {
			return nil, err
		}
		return writeCountingConn{c, &writes}, nil
	}
	p, _ := newBenchProxy(t, tr, benchProviders(t, up.URL))
	for i := range 3 { // the first request dials, the others reuse the connection
		writes.Store(0)
		req := httptest.NewRequest(http.MethodPost, benchPath, strings.NewReader(benchJSONBody))
		req.Header.Set("Authorization", "Bearer "+benchSecret)
		req.Header.Set("Content-Type", "application/json")
		rec := httptest.NewRecorder()
		p.ServeHTTP(rec, req)
		if rec.Code != http.StatusOK {
			t.Fatalf("request %d: status %d: %s", i, rec.Code, rec.Body)
		}
		if got := <-bodies; got != benchJSONBody {
			t.Fatalf("request %d: the provider got body %q", i, got)
		}
		if n := writes.Load(); n != 1 {
			t.Errorf("request %d: the upstream request took %d writes, want 1 (headers and body together)", i, n)
		}
	}
}
