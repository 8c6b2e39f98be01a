// Package ingest is the gateway's ingester role: the JetStream → Postgres
// usage consumer loops and the retention job with its monthly partition
// upkeep. A process runs it when its GATEWAY_ROLE is all or ingester
// (INGESTER_ENABLED and the role decide which of the two parts run).
//
// The consumer (Ingester) is a durable pull consumer: it fetches up to
// INGESTER_FETCH_BYTES of messages, splits them into events, hands the
// batch to analytics.Store.Insert (one idempotent transaction) and acks
// only after the commit, so a crash between commit and ack costs a
// redelivery the insert absorbs. Several loops may share the consumer:
// while one batch commits, the next is being fetched.
//
// The retention job runs analytics.Retention.Cycle at start and every
// RETENTION_INTERVAL; each cycle also keeps the monthly partitions.
package ingest

import (
	"context"
	"log/slog"
	"sync"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"
	"go.opentelemetry.io/otel/trace"

	"trueportai/services/gateway/internal/analytics"
	"trueportai/services/gateway/internal/keys"
	"trueportai/services/gateway/internal/platform"
	"trueportai/services/gateway/internal/usage"
	"trueportai/services/internal/pgdb"
)

// Config says which parts of the role run, and how.
type Config struct {
	DatabaseURL       string
	Ingest            bool    // the consumer loops
	Workers           int     // consumer loops sharing the durable consumer
	FetchBytes        int     // bytes of messages one loop fetches per batch
	Duty              float64 // share of time a loop may spend on batches while behind by less than MaxLag events
	MaxLag            int
	BusyRate          float64       // usage messages a second at which the loops defer their fetches
	MaxDelay          time.Duration // how long they defer at most (0: never)
	Streams           usage.Streams // the usage stream and its dead-letter stream
	Retention         bool          // the retention and partition job
	RetentionInterval time.Duration
	// Traces, when set (tracing on), records the insert spans of sampled
	// requests (Ingester.SetTracerProvider).
	Traces trace.TracerProvider
}

// Role is the ingester role of one process.
type Role struct {
	cfg     Config
	js      jetstream.JetStream
	policy  analytics.RetentionPolicy
	metrics *IngestMetrics
	log     *slog.Logger
}

// New prepares the role; the ingest metrics are registered on reg at once
// (when cfg.Ingest), so /metrics lists them from the start.
func New(cfg Config, js jetstream.JetStream, policy analytics.RetentionPolicy, reg prometheus.Registerer, log *slog.Logger) *Role {
	r := &Role{cfg: cfg, js: js, policy: policy, log: log}
	if cfg.Ingest {
		r.metrics = NewIngestMetrics(reg)
	}
	return r
}

// Run runs the enabled parts until ctx ends, on a pool of their own with
// the default plan cache (batch statements gain nothing from the API
// pool's per-execution planning). The pool is opened with retries, so a
// database down at start delays ingestion without failing the process.
func (r *Role) Run(ctx context.Context) {
	if !r.cfg.Ingest && !r.cfg.Retention {
		return
	}
	pool := r.openPool(ctx)
	if pool == nil {
		return
	}
	defer pool.Close()
	var wg sync.WaitGroup
	if r.cfg.Retention {
		retention := analytics.NewRetention(pool, r.policy, r.log)
		wg.Go(func() { runRetention(ctx, retention.Cycle, r.cfg.RetentionInterval, r.log) })
	}
	if r.cfg.Ingest {
		ing := NewIngester(analytics.New(pool), r.js, r.cfg.Streams.Name, keys.NewStore(pool), r.log)
		ing.SetFetchBytes(r.cfg.FetchBytes)
		ing.SetPacing(r.cfg.Duty, r.cfg.MaxLag)
		ing.SetDeferral(r.cfg.BusyRate, r.cfg.MaxDelay)
		ing.SetStreams(r.cfg.Streams)
		ing.SetMetrics(r.metrics)
		if r.cfg.Traces != nil {
			ing.SetTracerProvider(r.cfg.Traces)
		}
		for range max(r.cfg.Workers, 1) {
			wg.Go(func() { _ = ing.Run(ctx) })
		}
		wg.Go(func() { runTrim(ctx, r.js, r.cfg.Streams.Name, ing.durable, trimInterval, &ing.cycle, r.log) })
	}
	wg.Wait()
}

// openPool opens the role's pool, retrying every second; nil when ctx ends.
func (r *Role) openPool(ctx context.Context) *pgxpool.Pool {
	for {
		pool, err := pgdb.Open(ctx, r.cfg.DatabaseURL, r.log)
		if err == nil {
			return pool
		}
		r.log.Warn("ingestion pool not opened, retrying", "err", err)
		select {
		case <-ctx.Done():
			return nil
		case <-time.After(time.Second):
		}
	}
}

// runRetention runs cycle at once and then every interval until ctx ends.
func runRetention(ctx context.Context, cycle func(context.Context) (int64, error), interval time.Duration, log *slog.Logger) {
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		if n, err := cycle(ctx); err != nil {
			log.Warn("retention cycle failed", "err", err)
		} else if n > 0 {
			log.Info("retention deleted expired rows", "rows", n)
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// Tenants is the tenant-context cache the retention policy reads.
type Tenants interface {
	Get(id string) (*platform.Tenant, bool)
	Prefetch(id string)
}

// RetentionFrom is the retention policy of the cached tenant contexts: a
// tenant not cached yet is unknown this cycle (its rows stay) and fetched
// in the background, so the next cycle knows it.
func RetentionFrom(tenants Tenants) analytics.RetentionPolicy {
	return func(id string) (int64, bool) {
		t, ok := tenants.Get(id)
		if !ok {
			tenants.Prefetch(id)
			return 0, false
		}
		return t.RetentionDays, true
	}
}
