// Package app is the gateway's composition root: it builds every part from
// the configuration and runs them until its context ends. The parts do the
// work in their own packages (proxy, httpapi, grpcapi, ingest, cachesync,
// changefeed, pricesync, analytics, usage); app only wires them and owns
// the shutdown order. app.go wires roles all and proxy, ingester.go role
// ingester, listeners.go the listeners handed in by tests or a parent
// process (RunWithListeners, LISTEN_FDS).
package app

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"sync"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/labstack/echo/v4"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"golang.org/x/sync/errgroup"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/health"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"

	gatewayv1 "trueportai/proto/gen/trueport/gateway/v1"
	platformv1 "trueportai/proto/gen/trueport/platform/v1"
	"trueportai/services/gateway/internal/analytics"
	"trueportai/services/gateway/internal/cachesync"
	"trueportai/services/gateway/internal/changefeed"
	"trueportai/services/gateway/internal/config"
	"trueportai/services/gateway/internal/grpcapi"
	"trueportai/services/gateway/internal/httpapi"
	"trueportai/services/gateway/internal/ingest"
	"trueportai/services/gateway/internal/journal"
	"trueportai/services/gateway/internal/keys"
	"trueportai/services/gateway/internal/migrations"
	"trueportai/services/gateway/internal/platform"
	"trueportai/services/gateway/internal/policystore"
	"trueportai/services/gateway/internal/pricesync"
	"trueportai/services/gateway/internal/pricing"
	"trueportai/services/gateway/internal/provider/registry"
	"trueportai/services/gateway/internal/proxy"
	"trueportai/services/gateway/internal/quota"
	"trueportai/services/gateway/internal/usage"
	"trueportai/services/internal/events"
	"trueportai/services/internal/grpcserve"
	"trueportai/services/internal/httpserver"
	"trueportai/services/internal/listenfd"
	"trueportai/services/internal/logging"
	"trueportai/services/internal/metrics"
	"trueportai/services/internal/natsconn"
	"trueportai/services/internal/pgdb"
	"trueportai/services/internal/ratelimit"
	"trueportai/services/internal/ratelimit/redisstore"
	"trueportai/services/internal/rpcauth"
)

// Run starts the gateway on the listeners its parent process handed down
// (LISTEN_FDS, named "http" and "grpc": package listenfd), or on
// GATEWAY_HTTP_ADDR / GATEWAY_GRPC_ADDR when there are none.
func Run(ctx context.Context, getenv func(string) string, stderr io.Writer) error {
	ls, err := inheritedListeners(getenv)
	if err != nil {
		return err
	}
	return RunWithListeners(ctx, getenv, stderr, ls)
}

// RunWithListeners is Run serving on the given listeners (closed on return).
func RunWithListeners(ctx context.Context, getenv func(string) string, stderr io.Writer, ls Listeners) error {
	defer closeListeners(ls)
	cfg, err := config.Load(getenv)
	if err != nil {
		return fmt.Errorf("config: %w", err)
	}
	log := logging.New(stderr, cfg.LogLevel, cfg.LogFormat)

	// Analytics filters (status ranges, optional fields) get poor generic
	// plans once pgx's prepared statements are reused: plan each execution.
	// No JIT: every query here is short, and JIT compilation of the stats
	// aggregates (up to 68 ms in one EXPLAIN ANALYZE) is pure overhead for
	// them; measured over 20 runs the 30-day hourly series went 284 → 275 ms.
	pool, err := pgdb.Open(ctx, cfg.DatabaseURL, log, pgdb.WithRuntimeParam("plan_cache_mode", "force_custom_plan"),
		pgdb.WithRuntimeParam("jit", "off"))
	if err != nil {
		return err
	}
	defer pool.Close()
	if cfg.MigrateOnStart {
		if err := pgdb.Migrate(ctx, pool, migrations.FS, log); err != nil {
			return err
		}
	}

	conn, err := grpc.NewClient(cfg.PlatformGRPC, append(rpcauth.DialOptions(cfg.InternalGRPCToken), grpc.WithTransportCredentials(insecure.NewCredentials()))...)
	if err != nil {
		return fmt.Errorf("platform grpc client: %w", err)
	}
	defer conn.Close()
	intro := platform.NewIntrospector(platformv1.NewAuthServiceClient(conn), 60*time.Second)
	tenants := platform.NewTenants(platformv1.NewTenantServiceClient(conn), cfg.CacheTTL, log)
	if !cfg.RunsProxy() {
		return runIngester(ctx, cfg, log, pool, tenants, ls)
	}

	keyStore := keys.NewStore(pool)
	keyCache := keys.NewCache()
	policyStore := policystore.NewStore(pool)
	policySnap := policystore.NewSnapshot(log)
	// Per-key RPM and monthly quotas: in memory, or shared by the replicas
	// through Redis (REDIS_URL): leased budgets, no I/O on the hot path;
	// limit ÷ replicas while Redis is down.
	var limiter interface {
		proxy.RateLimiter
		cachesync.Sweeper
	} = ratelimit.New()
	var shared *ratelimit.Shared
	var limitStore *redisstore.Store
	if cfg.Limits.Enabled() {
		var rc io.Closer
		shared, limitStore, rc, err = buildShared(cfg, log)
		if err != nil {
			return err
		}
		defer rc.Close()
		limiter = shared
	}
	reloader := cachesync.New(keyStore, keyCache, policyStore, policySnap, limiter, log)
	nkeys, err := reloader.Load(ctx)
	if err != nil {
		return err
	}
	warmCtx, cancelWarm := context.WithTimeout(ctx, 5*time.Second)
	tenants.Warm(warmCtx, keyCache.TenantIDs())
	cancelWarm()

	nc, err := natsconn.Connect(cfg.NATSURL, "gateway", log)
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
	reg := metrics.New("gateway")
	spool, err := usage.OpenSpool(cfg.SpoolDir, cfg.SpoolMaxBytes)
	if err != nil {
		return err
	}
	pub, err := usage.NewPublisher(nc, subj.Usage(), spool, log)
	if err != nil {
		return err
	}
	pub.SetStreams(streams)
	reg.MustRegister(pub.Collectors()...)
	// The usage journal: every event survives a kill of this process
	// (docs/decisions.md, "Usage journal"); what a previous process left
	// goes to the spool now.
	var jr *journal.Journal
	if cfg.JournalDir != "" {
		jr = usage.OpenJournal(cfg.JournalDir, cfg.JournalMaxBytes, usage.MessageLimit(nc), spool, log)
	}
	defer jr.Close() // after the publisher stopped: unreleased segments stay for the next start
	pub.SetJournal(jr)
	reg.MustRegister(journal.Collectors(jr)...)
	ev := events.NewPublisher(nc, subj, log)

	prices, err := pricesync.LoadTable(cfg.PricingFile)
	if err != nil {
		return err
	}
	livePrices := pricing.NewLive(prices)
	priceSync := pricesync.New(livePrices, platformv1.NewConfigServiceClient(conn), log)
	priceSync.Refresh(ctx)
	feed, err := changefeed.Subscribe(nc, subj, changefeed.Handlers{
		TenantChanged: func(id string) { tenants.Prefetch(id); intro.Revoke("", id) },
		TokensRevoked: intro.Revoke,
		KeyChanged:    func(ctx context.Context, id string) error { return keyCache.Refresh(ctx, keyStore, id) },
		PoliciesChanged: func(ctx context.Context, tenantID string) error {
			return policySnap.Reload(ctx, policyStore, tenantID)
		},
		GlobalConfigChanged: priceSync.Trigger,
	}, log)
	if err != nil {
		return err
	}
	defer feed.Close()
	usageStore := analytics.New(pool)
	quotas := quota.New(usageStore)
	if shared != nil {
		quotas.Shared(limitStore, quota.SharedOptions{Group: "gateway", Replicas: shared.Replicas, Log: log})
	}
	if err := quotas.Sync(ctx, time.Now()); err != nil {
		return fmt.Errorf("load monthly usage: %w", err)
	}
	redact, err := newBodyRedactor()
	if err != nil {
		return err
	}
	providers, err := registry.New(getenv)
	if err != nil {
		return err
	}
	px := proxy.New(log, keyCache, tenants, limiter, pub, proxy.Options{
		Prices: livePrices, Quota: quotas, Metrics: proxy.NewMetrics(reg), Policies: policySnap, RedactBody: redact,
		Providers: providers, Egress: &cfg.Egress, MaxConcurrent: cfg.ProxyMaxConcurrent, MaxBufferedBytes: cfg.ProxyMaxBuffered,
		BodyLimit: cfg.ProxyBodyLimit, HeaderTimeout: cfg.UpstreamHeaderTimeout, IdleTimeout: cfg.StreamIdleTimeout,
	})

	var draining sync.Once
	ready := make(chan struct{}) // closed when shutdown begins: readiness turns false
	e := httpserver.New(log, reg.Middleware())
	api := httpapi.New(log, intro, tenants, keyStore, keyCache, ev, usageStore, policyStore, policySnap, providers.Names())
	if shared != nil {
		api.SetLimiter(shared) // management and analytics limits across replicas too
	}
	api.Routes(e, healthHandler(log, pool, nc, ready))
	var inflight sync.WaitGroup // proxied requests, joined before the publisher closes
	root := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if providers.IsProxyPath(r.URL.Path) {
			inflight.Add(1)
			defer inflight.Done()
			px.ServeHTTP(w, r)
			return
		}
		e.ServeHTTP(w, r)
	})
	// Header and body deadlines, no write timeout: long healthy streams
	// must not be cut; the upstream header and idle timeouts bound a stuck
	// call instead.
	httpLis, err := listenfd.Or(ls.HTTP, cfg.HTTPAddr, "http")
	if err != nil {
		return err
	}
	defer httpLis.Close()
	httpSrv := httpserver.NewServer(root, limits(cfg))
	httpSrv.Addr = httpLis.Addr().String()
	internal, err := newInternalServer(ls.Internal, cfg, reg)
	if err != nil {
		return err
	}
	defer internal.lis.Close()

	grpcSrv := grpc.NewServer(append(grpcserve.ServerOptions(cfg.ReadHeaderTimeout), rpcauth.ServerOptions(cfg.InternalGRPCToken)...)...)
	gatewayv1.RegisterUsageServiceServer(grpcSrv, grpcapi.New(usageStore, keyStore, log))
	hs := health.NewServer()
	healthpb.RegisterHealthServer(grpcSrv, hs)
	lis, err := listenfd.Or(ls.GRPC, cfg.GRPCAddr, "grpc")
	if err != nil {
		return err
	}

	bgCtx, stopBG := context.WithCancel(context.WithoutCancel(ctx))
	defer stopBG()
	var bg sync.WaitGroup
	pubDone := make(chan struct{})
	go func() { defer close(pubDone); pub.Run(bgCtx) }()
	if jr != nil {
		bg.Go(func() { jr.Run(bgCtx) })
	}
	bg.Go(func() { tenants.Run(bgCtx, keyCache.TenantIDs) })
	bg.Go(func() {
		quotas.Run(bgCtx, cfg.CacheTTL, func(err error) { log.Warn("quota resync failed", "err", err) })
	})
	if shared != nil {
		bg.Go(func() { shared.Run(bgCtx) })
	}
	bg.Go(func() { priceSync.Run(bgCtx, cfg.CacheTTL) })
	bg.Go(func() { reloader.Run(bgCtx, cfg.CacheTTL) })
	ingester := ingest.New(ingestConfig(cfg, streams), js, ingest.RetentionFrom(tenants), reg, log)
	bg.Go(func() { ingester.Run(bgCtx) })
	log.Info("gateway starting", "http_addr", httpLis.Addr().String(), "grpc_addr", lis.Addr().String(),
		"internal_addr", internal.lis.Addr().String(), "keys", nkeys)
	g, gctx := errgroup.WithContext(ctx)
	g.Go(func() error {
		go func() { <-gctx.Done(); draining.Do(func() { close(ready) }) }()
		return httpserver.ServeListener(gctx, httpSrv, httpLis, cfg.ShutdownGrace, log)
	})
	g.Go(func() error { return grpcserve.Serve(gctx, grpcSrv, lis, hs, 5*time.Second) })
	g.Go(func() error { return internal.serve(gctx, log) })
	err = g.Wait()
	// Streams cut at the end of the grace period still finish their handler
	// (and queue their usage event); wait for them briefly.
	waitTimeout(&inflight, 5*time.Second)
	// HTTP is drained: every served request has queued its usage event.
	// Stop the publisher (flushes its queue to JetStream or the spool), then
	// give the ingester a moment to catch up before stopping it.
	pub.Close()
	stopBG()
	<-pubDone
	bg.Wait()
	_ = nc.Drain()
	p, s, l := pub.Stats()
	log.Info("gateway stopped", "usage_published", p, "usage_spooled", s, "usage_lost", l)
	if ctx.Err() != nil && err == nil {
		return nil
	}
	return err
}

// healthHandler checks Postgres and NATS, and turns unready once draining
// is closed (shutdown began).
func healthHandler(log *slog.Logger, pool *pgxpool.Pool, nc *nats.Conn, draining <-chan struct{}) echo.HandlerFunc {
	return httpserver.HealthHandler(log,
		httpserver.PostgresCheck(pool),
		httpserver.NATSCheck(nc),
		httpserver.Check{Name: "shutdown", Down: "draining", Probe: func(context.Context) error {
			select {
			case <-draining:
				return errors.New("draining")
			default:
				return nil
			}
		}},
	)
}
