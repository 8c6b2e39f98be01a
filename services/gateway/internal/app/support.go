package app

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"sync"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"trueportai/services/gateway/internal/config"
	"trueportai/services/gateway/internal/policy"
	"trueportai/services/gateway/internal/provider"
	"trueportai/services/gateway/internal/usage"
	"trueportai/services/internal/events"
	"trueportai/services/internal/httpserver"
	"trueportai/services/internal/listenfd"
	"trueportai/services/internal/metrics"
	"trueportai/services/internal/ratelimit"
	"trueportai/services/internal/ratelimit/redisstore"
)

// limits are the public HTTP server's header and body deadlines.
func limits(cfg config.Config) httpserver.Limits {
	lim := httpserver.DefaultLimits
	lim.ReadHeaderTimeout, lim.BodyReadTimeout = cfg.ReadHeaderTimeout, cfg.BodyReadTimeout
	return lim
}

// internalServer serves /metrics and pprof on GATEWAY_INTERNAL_ADDR (or the
// listener handed down as "internal"), never on the public listener.
type internalServer struct {
	srv *http.Server
	lis net.Listener
}

func newInternalServer(l net.Listener, cfg config.Config, reg *metrics.Registry) (internalServer, error) {
	lis, err := listenfd.Or(l, cfg.InternalAddr, "internal")
	if err != nil {
		return internalServer{}, err
	}
	srv := httpserver.NewServer(httpserver.InternalHandler(reg.Handler()), limits(cfg))
	srv.Addr = lis.Addr().String()
	return internalServer{srv: srv, lis: lis}, nil
}

// serve runs until ctx ends (the listener is closed on return).
func (s internalServer) serve(ctx context.Context, log *slog.Logger) error {
	return httpserver.ServeListener(ctx, s.srv, s.lis, time.Second, log)
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

// usageStreams are the usage stream and its dead-letter stream as cfg sets them.
func usageStreams(cfg config.Config, subj events.Subjects) usage.Streams {
	return usage.NewStreams(subj.UsageStream(), subj.Usage(), cfg.UsageStreamMaxBytes, cfg.UsageDLQMaxBytes, cfg.UsageStreamReplicas)
}

// ensureStreamRetry creates or updates the usage stream and its dead-letter
// stream, trying three times; past that the process serves on without them
// (events spool until NATS is back). A server that answers with a refusal
// (no room for USAGE_STREAM_MAX_BYTES, more replicas than peers) fails the
// start at once with the reason and what to change: serving on would only
// fill the spool.
func ensureStreamRetry(ctx context.Context, js jetstream.JetStream, streams usage.Streams, log *slog.Logger) error {
	for i := 0; ; i++ {
		cctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		err := usage.EnsureStreams(cctx, js, streams)
		cancel()
		if err == nil {
			return nil
		}
		var refused *usage.StreamRefusedError
		if errors.As(err, &refused) {
			return err
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
