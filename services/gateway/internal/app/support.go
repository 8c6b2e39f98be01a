package app

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/pprof"
	"sync"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"trueportai/services/gateway/internal/config"
	"trueportai/services/gateway/internal/policy"
	"trueportai/services/gateway/internal/provider"
	"trueportai/services/gateway/internal/usage"
	"trueportai/services/internal/events"
	"trueportai/services/internal/httpserver"
	"trueportai/services/internal/ratelimit"
	"trueportai/services/internal/ratelimit/redisstore"
)

// startDebug serves pprof on DEBUG_ADDR when set.
func startDebug(ctx context.Context, bg *sync.WaitGroup, cfg config.Config, log *slog.Logger) {
	if cfg.DebugAddr == "" {
		return
	}
	dbg := &http.Server{Addr: cfg.DebugAddr, Handler: debugMux(), ReadHeaderTimeout: 5 * time.Second}
	bg.Add(1)
	go func() {
		defer bg.Done()
		if err := httpserver.Serve(ctx, dbg, time.Second, log); err != nil {
			log.Warn("debug server", "err", err)
		}
	}()
}

func waitTimeout(wg *sync.WaitGroup, d time.Duration) {
	done := make(chan struct{})
	go func() { wg.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(d):
	}
}

// newBodyRedactor masks every PII and secret kind in logged bodies (tenants
// with redact_logged_bodies), using the policy engine's detectors.
func newBodyRedactor() (func(provider.Provider, string, []byte) []byte, error) {
	set, err := policy.Compile([]policy.Rule{
		{ID: "logged-bodies-pii", Name: "logged bodies: PII", Type: policy.TypePII, Config: []byte(`{}`), Action: policy.ActionRedact, Enabled: true, Direction: policy.DirectionBoth},
		{ID: "logged-bodies-secrets", Name: "logged bodies: secrets", Type: policy.TypeSecrets, Config: []byte(`{}`), Action: policy.ActionRedact, Enabled: true, Direction: policy.DirectionBoth},
	})
	if err != nil {
		return nil, fmt.Errorf("body redactor: %w", err)
	}
	return func(p provider.Provider, direction string, body []byte) []byte {
		return set.Evaluate(policy.Input{Provider: p, Body: body, Direction: direction}).Body
	}, nil
}

// debugMux serves the runtime profiles (DEBUG_ADDR only).
func debugMux() *http.ServeMux {
	mux := http.NewServeMux()
	mux.HandleFunc("/debug/pprof/", pprof.Index)
	mux.HandleFunc("/debug/pprof/cmdline", pprof.Cmdline)
	mux.HandleFunc("/debug/pprof/profile", pprof.Profile)
	mux.HandleFunc("/debug/pprof/symbol", pprof.Symbol)
	mux.HandleFunc("/debug/pprof/trace", pprof.Trace)
	return mux
}

// ensureStreamRetry creates or updates the usage stream, trying three times;
// past that the process serves on without it.
func ensureStreamRetry(ctx context.Context, js jetstream.JetStream, subj events.Subjects, log *slog.Logger) error {
	for i := 0; ; i++ {
		cctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		err := usage.EnsureStream(cctx, js, subj.UsageStream(), subj.Usage())
		cancel()
		if err == nil {
			return nil
		}
		if i >= 2 {
			// Keep serving: events spool until NATS is back; the ingester
			// and publisher retry on their own.
			log.Warn("usage stream not ensured; continuing, events will spool", "err", err)
			return nil
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(time.Second):
		}
	}
}

// buildShared connects the shared limits (REDIS_URL) of the proxy replicas.
func buildShared(cfg config.Config, log *slog.Logger) (*ratelimit.Shared, *redisstore.Store, io.Closer, error) {
	shared, st, c, err := cfg.Limits.Build("gateway", cfg.NATSPrefix, log)
	if err != nil {
		return nil, nil, nil, err
	}
	return shared, st, c, nil
}
