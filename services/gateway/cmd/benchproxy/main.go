// Command benchproxy is a bare reverse proxy used by `bench proxy` (tools/cmd/bench) as the
// floor for "one extra Go hop": net/http/httputil.ReverseProxy with a tuned
// keep-alive transport and no auth, rate limiting, metering or logging.
// The gateway's overhead is measured against it.
//
// Environment:
//
//	BENCH_PROXY_ADDR  listen address (default 127.0.0.1:8095)
//	BENCH_UPSTREAM    upstream base URL (default http://127.0.0.1:8090);
//	                  the request path is appended to its path
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"net/http/httputil"
	"net/url"
	"os"
	"os/signal"
	"syscall"
	"time"
)

func main() {
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "benchproxy:", err)
		os.Exit(1)
	}
}

func getenv(k, def string) string {
	if v := os.Getenv(k); v != "" {
		return v
	}
	return def
}

func run() error {
	addr := getenv("BENCH_PROXY_ADDR", "127.0.0.1:8095")
	up, err := url.Parse(getenv("BENCH_UPSTREAM", "http://127.0.0.1:8090"))
	if err != nil || (up.Scheme != "http" && up.Scheme != "https") || up.Host == "" {
		return fmt.Errorf("BENCH_UPSTREAM must be an http(s) URL, got %q", os.Getenv("BENCH_UPSTREAM"))
	}
	srv := &http.Server{
		Handler:           newProxy(up),
		ReadHeaderTimeout: 10 * time.Second,
		IdleTimeout:       120 * time.Second,
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return err
	}
	fmt.Printf("benchproxy listening on %s -> %s\n", ln.Addr(), up)

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	select {
	case err := <-errc:
		return err
	case <-ctx.Done():
	}
	sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := srv.Shutdown(sctx); err != nil {
		return err
	}
	if err := <-errc; !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	return nil
}

// newProxy returns the bare reverse proxy to up. The transport is sized like
// the gateway's (large idle pool per host) so that neither side pays for
// reconnects; FlushInterval -1 flushes after every write so SSE streams are
// relayed event by event, as the gateway does.
func newProxy(up *url.URL) *httputil.ReverseProxy {
	return &httputil.ReverseProxy{
		Rewrite: func(pr *httputil.ProxyRequest) {
			pr.SetURL(up)
			pr.Out.Host = up.Host
			if pr.Out.Body != nil && pr.In.ContentLength > 0 {
				pr.Out.Body = exactBody{io.LimitReader(pr.Out.Body, pr.In.ContentLength), pr.Out.Body}
			}
		},
		Transport: &http.Transport{
			Proxy:                 nil,
			DialContext:           (&net.Dialer{Timeout: 10 * time.Second, KeepAlive: 30 * time.Second}).DialContext,
			ForceAttemptHTTP2:     true,
			MaxIdleConns:          1024,
			MaxIdleConnsPerHost:   512,
			IdleConnTimeout:       90 * time.Second,
			ResponseHeaderTimeout: 120 * time.Second,
			ExpectContinueTimeout: time.Second,
		},
		FlushInterval: -1,
		ErrorLog:      log.New(os.Stderr, "benchproxy: ", log.LstdFlags),
	}
}

// exactBody ends the outbound body at the inbound Content-Length without
// reading the inbound body again. Without it the transport, after sending the
// declared bytes, reads once more to check for extra data; when the upstream
// answers first and the proxy flushes the response header (SSE), the server
// has already closed the inbound body, that read fails with "invalid Read on
// closed Body", the transport closes the upstream connection and the stream is
// cut (about 2% of SSE requests at 500 req/s with vegeta). The gateway is not
// affected: it reads the whole body before forwarding.
type exactBody struct {
	io.Reader
	io.Closer
}
