package app

import (
	"context"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/nats-io/nats.go/jetstream"
	"golang.org/x/sync/errgroup"

	"trueportai/services/gateway/internal/changefeed"
	"trueportai/services/gateway/internal/config"
	"trueportai/services/gateway/internal/httpapi"
	"trueportai/services/gateway/internal/ingest"
	"trueportai/services/gateway/internal/platform"
	"trueportai/services/gateway/internal/usage"
	"trueportai/services/internal/events"
	"trueportai/services/internal/httpserver"
	"trueportai/services/internal/listenfd"
	"trueportai/services/internal/metrics"
	"trueportai/services/internal/natsconn"
	"trueportai/services/internal/telemetry"
)

// ingestConfig is the part of the ingester role cfg's GATEWAY_ROLE and
// INGESTER_* settings enable.
func ingestConfig(cfg config.Config, streams usage.Streams, tel *telemetry.Telemetry) ingest.Config {
	c := ingest.Config{
		DatabaseURL: cfg.DatabaseURL, Streams: streams,
		Ingest: cfg.RunsIngester(), Workers: cfg.IngesterWorkers, FetchBytes: cfg.IngesterFetchBytes,
		Duty: cfg.IngesterDuty, MaxLag: cfg.IngesterMaxLag, BusyRate: cfg.IngesterBusyRate, MaxDelay: cfg.IngesterMaxDelay,
		Retention: cfg.RunsRetention(), RetentionInterval: cfg.RetentionInterval,
	}
	if tel.Enabled() {
		c.Traces = tel.TracerProvider()
	}
	return c
}

// runIngester is GATEWAY_ROLE=ingester: the usage consumer and the retention
// job, with health on GATEWAY_HTTP_ADDR and /metrics on
// GATEWAY_INTERNAL_ADDR, and neither the proxy nor the APIs. Proxy replicas
// then run GATEWAY_ROLE=proxy and hold no ingestion batches in memory.
func runIngester(ctx context.Context, cfg config.Config, log *slog.Logger, pool *pgxpool.Pool, tenants *platform.Tenants, id serviceIdentity, ls Listeners, tel *telemetry.Telemetry) error {
	nc, err := natsconn.Connect(cfg.NATSURL, "gateway-ingester", log)
	if err != nil {
		return err
	}
	defer nc.Close()
	subj := events.Subjects{Prefix: cfg.NATSPrefix}
	js, err := jetstream.New(nc)
	if err != nil {
		return fmt.Errorf("jetstream: %w", err)
	}
	streams := usageStreams(cfg, subj)
	if err := ensureStreamRetry(ctx, js, streams, log); err != nil {
		return err
	}
	// Retention days change with the plan: drop the cached context on
	// TenantChanged so the next cycle fetches it again.
	feed, err := changefeed.Subscribe(nc, subj, changefeed.Handlers{TenantChanged: tenants.Prefetch}, log)
	if err != nil {
		return err
	}
	defer feed.Close()

	reg := metrics.New("gateway")
	e := httpserver.New(log, reg.Middleware(), tel.Middleware())
	var drain httpserver.Drain
	httpapi.HealthRoutes(e, healthProbes(log, pool, nc, &drain, id.platform))

	bgCtx, stopBG := context.WithCancel(context.WithoutCancel(ctx))
	defer stopBG()
	httpLis, err := listenfd.Or(ls.HTTP, cfg.HTTPAddr, "http")
	if err != nil {
		return err
	}
	defer httpLis.Close()
	internal, err := newInternalServer(ls.Internal, cfg, reg)
	if err != nil {
		return err
	}
	defer internal.lis.Close()
	var bg sync.WaitGroup
	bg.Go(func() { tenants.Run(bgCtx, nil) })
	ingester := ingest.New(ingestConfig(cfg, streams, tel), js, ingest.RetentionFrom(tenants), reg, log)
	bg.Go(func() { ingester.Run(bgCtx) })
	log.Info("gateway ingester starting", "http_addr", httpLis.Addr().String(), "internal_addr", internal.lis.Addr().String(),
		"workers", cfg.IngesterWorkers)
	httpSrv := httpserver.NewServer(e, limits(cfg))
	httpSrv.Addr = httpLis.Addr().String()
	go func() { <-ctx.Done(); drain.Begin() }()
	g, gctx := errgroup.WithContext(ctx)
	g.Go(func() error { return httpserver.ServeListener(gctx, httpSrv, httpLis, 5*time.Second, log) })
	g.Go(func() error { return internal.serve(gctx, log) })
	err = g.Wait()
	// A batch in progress commits and acks (its context outlives ctx);
	// the loops stop at their next fetch.
	stopBG()
	bg.Wait()
	_ = nc.Drain()
	log.Info("gateway ingester stopped")
	if ctx.Err() != nil && err == nil {
		return nil
	}
	return err
}
