package proxy

import (
	"bytes"
	"context"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httputil"
	"net/url"
	"slices"
	"testing"
	"time"

	"trueportai/services/gateway/internal/fakeprovider"
	"trueportai/services/internal/httpserver"
)

// The loopback stack: the fake provider (5 content chunks, no delays, as
// make bench runs it), a bare httputil.ReverseProxy configured like
// cmd/benchproxy, and the gateway's proxy behind the server the gateway
// runs (httpserver.NewServer), each on its own 127.0.0.1 listener in this
// process. Unlike the in-memory benchmarks, requests cross real sockets,
// net/http's server and transport, so the figures hold the syscalls and
// goroutine hand-offs a proxied request costs; the client and the fake
// provider share the process (and its GOMAXPROCS) with the proxies.
type loopbackStack struct {
	upstream, bare, gateway string
	pub                     *countingPublisher
	px                      *Proxy
}

func newLoopbackStack(tb testing.TB) *loopbackStack {
	tb.Helper()
	up := serveLoopback(tb, &http.Server{Handler: fakeprovider.NewHandler(fakeprovider.Config{Chunks: 5}, slog.New(slog.DiscardHandler)),
		ReadHeaderTimeout: 10 * time.Second, IdleTimeout: 120 * time.Second})
	upURL, err := url.Parse(up)
	if err != nil {
		tb.Fatal(err)
	}
	bare := serveLoopback(tb, &http.Server{Handler: bareReverseProxy(upURL), ReadHeaderTimeout: 10 * time.Second, IdleTimeout: 120 * time.Second})
	px, pub := newBenchProxy(tb, nil, benchProviders(tb, up))
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); px.Run(ctx) }() // the keep-alive ticker, as the gateway runs it
	tb.Cleanup(func() { cancel(); <-done })
	gw := serveLoopback(tb, httpserver.NewServer(px, httpserver.DefaultLimits))
	return &loopbackStack{upstream: up, bare: bare, gateway: gw, pub: pub, px: px}
}

// serveLoopback serves srv on a fresh 127.0.0.1 port until the test ends.
func serveLoopback(tb testing.TB, srv *http.Server) string {
	tb.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatal(err)
	}
	go func() { _ = srv.Serve(ln) }()
	tb.Cleanup(func() { _ = srv.Close() })
	return "http://" + ln.Addr().String()
}

// bareReverseProxy is cmd/benchproxy's proxy (main package, not importable).
func bareReverseProxy(up *url.URL) *httputil.ReverseProxy {
	return &httputil.ReverseProxy{
		Rewrite: func(pr *httputil.ProxyRequest) {
			pr.SetURL(up)
			pr.Out.Host = up.Host
			if pr.Out.Body != nil && pr.In.ContentLength > 0 {
				pr.Out.Body = struct {
					io.Reader
					io.Closer
				}{io.LimitReader(pr.Out.Body, pr.In.ContentLength), pr.Out.Body}
			}
		},
		Transport:     NewTransport(120 * time.Second),
		FlushInterval: -1,
	}
}

// target is where a loopback client sends its requests.
func (s *loopbackStack) target(name string) string {
	if name == "bare" {
		return s.bare + "/openai/v1/chat/completions"
	}
	return s.gateway + benchPath
}

// loopbackClient sends requests on one keep-alive connection at a time.
type loopbackClient struct {
	c    *http.Client
	url  string
	body []byte
	rd   bytes.Reader
	buf  []byte
}

func newLoopbackClient(url, body string) *loopbackClient {
	return &loopbackClient{c: &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 64, DisableCompression: true}},
		url: url, body: []byte(body), buf: make([]byte, 32<<10)}
}

// do sends one request; it returns the time to the first body byte, the
// time to the end of the body, the status and the body's length.
func (lc *loopbackClient) do(tb testing.TB) (first, total time.Duration, status, n int) {
	lc.rd.Reset(lc.body)
	req, err := http.NewRequest(http.MethodPost, lc.url, io.NopCloser(&lc.rd))
	if err != nil {
		tb.Fatal(err)
	}
	req.ContentLength = int64(len(lc.body))
	req.Header.Set("Authorization", "Bearer "+benchSecret)
	req.Header.Set("Content-Type", "application/json")
	start := time.Now()
	resp, err := lc.c.Do(req)
	if err != nil {
		tb.Fatal(err)
	}
	for {
		k, err := resp.Body.Read(lc.buf)
		if k > 0 && n == 0 {
			first = time.Since(start)
		}
		n += k
		if err == io.EOF {
			break
		}
		if err != nil {
			tb.Fatal(err)
		}
	}
	total = time.Since(start)
	_ = resp.Body.Close()
	return first, total, resp.StatusCode, n
}

// BenchmarkLoopback: one client, requests one after the other over a
// keep-alive connection, to the bare proxy and to the gateway (JSON and
// streams as make bench sends them). ns/op is the whole request; the
// first-byte percentiles are the stream's time to first chunk.
func BenchmarkLoopback(b *testing.B) {
	st := newLoopbackStack(b)
	for _, body := range []struct{ name, body string }{{"json", benchJSONBody}, {"stream", benchStreamBody}} {
		for _, target := range []string{"bare", "gateway"} {
			b.Run(body.name+"/"+target, func(b *testing.B) {
				lc := newLoopbackClient(st.target(target), body.body)
				defer lc.c.CloseIdleConnections()
				_, _, status, want := lc.do(b)
				if status != http.StatusOK || want == 0 {
					b.Fatalf("%s answered %d with %d bytes", target, status, want)
				}
				firsts := make([]time.Duration, 0, 1024)
				b.ReportAllocs()
				b.ResetTimer()
				for b.Loop() {
					first, _, status, n := lc.do(b)
					if status != http.StatusOK || n != want {
						b.Fatalf("%s answered %d with %d bytes, want 200 with %d", target, status, n, want)
					}
					firsts = append(firsts, first)
				}
				b.StopTimer()
				slices.Sort(firsts)
				b.ReportMetric(float64(firsts[len(firsts)/2].Nanoseconds()), "ns/first-byte-p50")
				b.ReportMetric(float64(firsts[len(firsts)*99/100].Nanoseconds()), "ns/first-byte-p99")
			})
		}
	}
}
