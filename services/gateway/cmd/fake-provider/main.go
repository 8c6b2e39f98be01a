// Command fake-provider serves fake OpenAI, Azure OpenAI, Anthropic, Google
// Gemini and AWS Bedrock Runtime APIs for development, tests and benchmarks
// of the gateway.
//
// Environment:
//
//	FAKE_PROVIDER_ADDR            listen address (default 127.0.0.1:8090)
//	FAKE_PROVIDER_DELAY_MS        delay before the first byte (default 0)
//	FAKE_PROVIDER_CHUNKS          content chunks per stream (default 5)
//	FAKE_PROVIDER_CHUNK_DELAY_MS  delay between stream chunks (default 0)
//	FAKE_PROVIDER_LOG_LEVEL       debug, info, warn or error (default info;
//	                              debug logs every request)
//	LISTEN_FDS, LISTEN_FDNAMES    a listener handed down by the parent process,
//	                              named "http" (package listenfd); it replaces
//	                              FAKE_PROVIDER_ADDR
//	FAKE_PROVIDER_AWS_CREDENTIALS AWS keys whose SigV4 signatures Bedrock
//	                              requests must carry, as
//	                              "AKID:secret,AKID2:secret2" (default none:
//	                              any well-formed signature is accepted)
//
// Point the gateway at it with:
//
//	UPSTREAM_OPENAI_URL=http://HOST/openai/v1
//	UPSTREAM_ANTHROPIC_URL=http://HOST/anthropic/v1
//	UPSTREAM_GOOGLE_URL=http://HOST/google/v1beta
//	UPSTREAM_AZURE_URL_TEMPLATE=http://HOST/azure/{resource}/openai/deployments/{deployment}
//
// and an AWS Bedrock Runtime client at http://HOST/bedrock/{region} (the
// stand-in for https://bedrock-runtime.{region}.amazonaws.com).
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"strconv"
	"strings"
	"syscall"
	"time"

	"trueportai/services/gateway/internal/fakeprovider"
	"trueportai/services/internal/listenfd"
)

const (
	defaultAddr       = "127.0.0.1:8090"
	readHeaderTimeout = 10 * time.Second
	idleTimeout       = 2 * time.Minute
	shutdownTimeout   = 10 * time.Second
)

func main() {
	if err := run(context.Background(), os.Getenv, os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, "fake-provider:", err)
		os.Exit(1)
	}
}

// settings is the configuration read from the environment.
type settings struct {
	addr     string
	cfg      fakeprovider.Config
	logLevel slog.Level
}

// run serves the fake provider until ctx is cancelled or SIGINT/SIGTERM
// arrives, then shuts down gracefully.
func run(ctx context.Context, getenv func(string) string, stdout io.Writer) error {
	ctx, stop := signal.NotifyContext(ctx, os.Interrupt, syscall.SIGTERM)
	defer stop()

	st, err := loadSettings(getenv)
	if err != nil {
		return err
	}
	log := slog.New(slog.NewJSONHandler(os.Stderr, &slog.HandlerOptions{Level: st.logLevel}))

	ln, err := listener(getenv, st.addr)
	if err != nil {
		return err
	}
	srv := newServer(fakeprovider.NewHandler(st.cfg, log))
	log.Info("fake-provider started", "addr", ln.Addr().String(), "delay", st.cfg.Delay,
		"chunks", st.cfg.Chunks, "chunk_delay", st.cfg.ChunkDelay, "aws_access_keys", len(st.cfg.AWSCredentials))
	fmt.Fprintf(stdout, "fake-provider listening on %s\n", ln.Addr())

	return serve(ctx, srv, ln, log)
}

// newServer returns the HTTP server. It has a ReadHeaderTimeout but no
// WriteTimeout so that long streams are not cut.
func newServer(h http.Handler) *http.Server {
	return &http.Server{
		Handler:           h,
		ReadHeaderTimeout: readHeaderTimeout,
		IdleTimeout:       idleTimeout,
	}
}

// serve runs srv on ln until ctx is done, then shuts it down. Shutdown
// cancels in-flight requests' contexts so streams end promptly.
func serve(ctx context.Context, srv *http.Server, ln net.Listener, log *slog.Logger) error {
	baseCtx, cancelRequests := context.WithCancel(context.Background())
	defer cancelRequests()
	srv.BaseContext = func(net.Listener) context.Context { return baseCtx }
	srv.RegisterOnShutdown(cancelRequests)

	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()

	select {
	case err := <-errc:
		return fmt.Errorf("serve: %w", err)
	case <-ctx.Done():
	}
	log.Info("fake-provider shutting down")
	shutdownCtx, cancel := context.WithTimeout(context.Background(), shutdownTimeout)
	defer cancel()
	if err := srv.Shutdown(shutdownCtx); err != nil {
		return fmt.Errorf("shutdown: %w", err)
	}
	if err := <-errc; !errors.Is(err, http.ErrServerClosed) {
		return fmt.Errorf("serve: %w", err)
	}
	return nil
}

// loadSettings reads the FAKE_PROVIDER_* environment variables.
func loadSettings(getenv func(string) string) (settings, error) {
	st := settings{addr: getenv("FAKE_PROVIDER_ADDR")}
	if st.addr == "" {
		st.addr = defaultAddr
	}
	var err error
	if st.cfg.Delay, err = envMillis(getenv, "FAKE_PROVIDER_DELAY_MS"); err != nil {
		return settings{}, err
	}
	if st.cfg.ChunkDelay, err = envMillis(getenv, "FAKE_PROVIDER_CHUNK_DELAY_MS"); err != nil {
		return settings{}, err
	}
	if st.cfg.Chunks, err = envInt(getenv, "FAKE_PROVIDER_CHUNKS"); err != nil {
		return settings{}, err
	}
	if st.cfg.AWSCredentials, err = envAWSCredentials(getenv, "FAKE_PROVIDER_AWS_CREDENTIALS"); err != nil {
		return settings{}, err
	}
	if lvl := getenv("FAKE_PROVIDER_LOG_LEVEL"); lvl != "" {
		if err := st.logLevel.UnmarshalText([]byte(lvl)); err != nil {
			return settings{}, fmt.Errorf("FAKE_PROVIDER_LOG_LEVEL: %w", err)
		}
	}
	return st, nil
}

// envInt parses a non-negative integer variable; unset means 0 (the default).
func envInt(getenv func(string) string, name string) (int, error) {
	raw := getenv(name)
	if raw == "" {
		return 0, nil
	}
	v, err := strconv.Atoi(raw)
	if err != nil || v < 0 {
		return 0, fmt.Errorf("%s: want a non-negative integer, got %q", name, raw)
	}
	return v, nil
}

// envMillis parses a variable holding milliseconds.
func envMillis(getenv func(string) string, name string) (time.Duration, error) {
	v, err := envInt(getenv, name)
	return time.Duration(v) * time.Millisecond, err
}

// listener returns the "http" listener the parent process handed down, or
// a new one on addr.
func listener(getenv func(string) string, addr string) (net.Listener, error) {
	ls, err := listenfd.Listeners(getenv)
	if err != nil {
		return nil, err
	}
	if l, ok := ls["http"]; ok && len(ls) == 1 {
		return l, nil
	}
	if len(ls) > 0 {
		for _, l := range ls {
			_ = l.Close()
		}
		return nil, fmt.Errorf("inherited listeners: the fake provider takes one, named http (LISTEN_FDNAMES=%s)", getenv("LISTEN_FDNAMES"))
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("listen on %s: %w", addr, err)
	}
	return ln, nil
}

// envAWSCredentials parses "AKID:secret,AKID2:secret2" into access key ids and
// their secrets; unset means none. Errors never quote a secret.
func envAWSCredentials(getenv func(string) string, name string) (map[string]string, error) {
	raw := getenv(name)
	if strings.TrimSpace(raw) == "" {
		return nil, nil
	}
	creds := make(map[string]string)
	for i, entry := range strings.Split(raw, ",") {
		id, secret, ok := strings.Cut(strings.TrimSpace(entry), ":")
		id, secret = strings.TrimSpace(id), strings.TrimSpace(secret)
		switch {
		case !ok || id == "" || secret == "":
			return nil, fmt.Errorf("%s: entry %d: want ACCESS_KEY_ID:SECRET", name, i+1)
		case creds[id] != "":
			return nil, fmt.Errorf("%s: access key id %q given twice", name, id)
		}
		creds[id] = secret
	}
	return creds, nil
}
