package proxy

import (
	"bytes"
	"context"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"encoding/hex"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
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

// servePost sends body through p as the benchmarks' key, to the chat
// completions path.
func servePost(p *Proxy, body string) *httptest.ResponseRecorder {
	req := httptest.NewRequest(http.MethodPost, benchPath, strings.NewReader(body))
	req.Header.Set("Authorization", "Bearer "+benchSecret)
	req.Header.Set("Content-Type", "application/json")
	rec := httptest.NewRecorder()
	p.ServeHTTP(rec, req)
	return rec
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
		rec := servePost(p, benchJSONBody)
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

// TestForwardedBodiesStayIntact: concurrent requests with distinct bodies
// reach the provider intact over HTTP/1.1 and HTTP/2, while their pooled
// buffers go back to the pool as each write completes. A buffer returned
// while the transport still read it would hand one request's bytes to
// another: the provider answers with a digest of what it received, and
// each client checks it against its own body.
func TestForwardedBodiesStayIntact(t *testing.T) {
	for _, h2 := range []bool{false, true} {
		name := "http1"
		if h2 {
			name = "http2"
		}
		t.Run(name, func(t *testing.T) {
			up := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				if h2 != (r.ProtoMajor == 2) {
					http.Error(w, "unexpected protocol "+r.Proto, http.StatusTeapot)
					return
				}
				b, _ := io.ReadAll(r.Body)
				sum := sha256.Sum256(b)
				w.Header().Set("Content-Type", "application/json")
				_, _ = io.WriteString(w, `{"id":"`+hex.EncodeToString(sum[:])+`","object":"chat.completion","model":"gpt-4o-mini",`+
					`"choices":[],"usage":{"prompt_tokens":3,"completion_tokens":2,"total_tokens":5}}`)
			}))
			up.EnableHTTP2 = h2
			tr := NewTransport(time.Minute)
			if h2 {
				up.StartTLS()
				tr.TLSClientConfig = &tls.Config{RootCAs: x509.NewCertPool()}
				tr.TLSClientConfig.RootCAs.AddCert(up.Certificate())
			} else {
				up.Start()
			}
			defer up.Close()
			p, _ := newBenchProxy(t, tr, benchProviders(t, up.URL))

			var wg sync.WaitGroup
			for g := range 8 {
				wg.Go(func() {
					for i := range 50 {
						// Bodies of different lengths, so that a mix-up shows in the digest.
						body := fmt.Sprintf(`{"model":"gpt-4o-mini","messages":[{"role":"user","content":"%d-%d %s"}]}`,
							g, i, strings.Repeat("x", (g*50+i)%700))
						rec := servePost(p, body)
						sum := sha256.Sum256([]byte(body))
						if rec.Code != http.StatusOK || !strings.Contains(rec.Body.String(), hex.EncodeToString(sum[:])) {
							t.Errorf("request %d-%d: status %d, answer %s: the provider did not get this body", g, i, rec.Code, rec.Body)
							return
						}
					}
				})
			}
			wg.Wait()
		})
	}
}

// TestBodyBufferWaitsForTheWrite: a provider may answer before it has read
// the request body (an error, say); the transport then returns the response
// while its write goes on, even after ServeHTTP has returned. The pooled
// buffer must not go back before that write is over: another request would
// be read into it while the transport still sends it.
func TestBodyBufferWaitsForTheWrite(t *testing.T) {
	const answer = `{"id":"chatcmpl-1","object":"chat.completion","model":"gpt-4o-mini","choices":[],` +
		`"usage":{"prompt_tokens":3,"completion_tokens":2,"total_tokens":5}}`
	release := make(chan struct{})
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_ = http.NewResponseController(w).EnableFullDuplex()
		w.Header().Set("Content-Type", "application/json")
		w.Header().Set("Content-Length", strconv.Itoa(len(answer)))
		_, _ = io.WriteString(w, answer)
		_ = http.NewResponseController(w).Flush()
		<-release
		_, _ = io.Copy(io.Discard, r.Body)
	}))
	defer up.Close()
	defer close(release)

	p, _ := newBenchProxy(t, NewTransport(time.Minute), benchProviders(t, up.URL))
	var puts atomic.Int64
	p.putBody = func(b *bytes.Buffer) { puts.Add(1); p.putBuffer(b) }
	// Larger than what loopback's socket buffers take in: the transport's
	// write blocks until the provider reads.
	body := `{"model":"gpt-4o-mini","messages":[{"role":"user","content":"` + strings.Repeat("x", 24<<20) + `"}]}`
	rec := servePost(p, body)
	if rec.Code != http.StatusOK {
		t.Fatalf("status %d: %s", rec.Code, rec.Body)
	}
	if n := puts.Load(); n != 0 {
		t.Fatalf("the body's buffer went back to the pool (%d) while the transport was still writing it", n)
	}
}
