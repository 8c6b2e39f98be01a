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
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"slices"
	"sync"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"golang.org/x/sync/errgroup"
	"google.golang.org/grpc"
	"google.golang.org/grpc/health"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"

	gatewayv1 "trueportai/proto/gen/trueport/gateway/v1"
	platformv1 "trueportai/proto/gen/trueport/platform/v1"
	svcauthv1 "trueportai/proto/gen/trueport/svcauth/v1"
	"trueportai/services/gateway/internal/analytics"
	"trueportai/services/gateway/internal/cachesync"
	"trueportai/services/gateway/internal/changefeed"
	"trueportai/services/gateway/internal/config"
	"trueportai/services/gateway/internal/fdtable"
	"trueportai/services/gateway/internal/filepages"
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
	"trueportai/services/gateway/internal/servicekeys"
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
	"trueportai/services/internal/svcauth"
	"trueportai/services/internal/telemetry"
)

// Run starts the gateway on the listeners its parent process handed down
// (LISTEN_FDS, named "http" and "grpc": package listenfd), or on
// GATEWAY_HTTP_ADDR / GATEWAY_GRPC_ADDR when there are none.
//
// Run also sets the process-wide runtime settings (the soft memory limit,
// the contention profiles), which in-process callers of RunWithListeners
// (tests) leave alone.
func Run(ctx context.Context, getenv func(string) string, stderr io.Writer) error {
	ls, err := inheritedListeners(getenv)
	if err != nil {
		return err
	}
	if cfg, err := config.Load(getenv); err == nil {
		applyRuntime(cfg, getenv)
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
	// Tracing (OTEL_*; off by default), flushed after everything stopped.
	tel, err := telemetry.FromEnv(ctx, getenv, "gateway")
	if err != nil {
		return fmt.Errorf("tracing: %w", err)
	}
	defer tel.Close(5*time.Second, log)
	tel.Announce(log)

	// Analytics filters (status ranges, optional fields) get poor generic
	// plans once pgx's prepared statements are reused: plan each execution.
	// No JIT: every query here is short, and JIT compilation of the stats
	// aggregates (up to 68 ms in one EXPLAIN ANALYZE) is pure overhead for
	// them; measured over 20 runs the 30-day hourly series went 284 → 275 ms.
	// No parallel workers: these queries read thousands of rows, and
	// starting two workers cost 100 ms of a 113 ms stats query on a loaded
	// machine (docs/benchmarks.md, "Analytics at 10 M rows over a year").
	pool, err := pgdb.Open(ctx, cfg.DatabaseURL, log, pgdb.WithRuntimeParam("plan_cache_mode", "force_custom_plan"),
		pgdb.WithRuntimeParam("jit", "off"), pgdb.WithRuntimeParam("max_parallel_workers_per_gather", "0"))
	if err != nil {
		return err
	}
	defer pool.Close()
	if cfg.MigrateOnStart {
		if err := pgdb.Migrate(ctx, pool, migrations.FS, log); err != nil {
			return err
		}
	}

	// Service identity: every call to the platform carries this instance's
	// service token, over mutual TLS when configured.
	id, err := newServiceIdentity(ctx, cfg, servicekeys.New(pool), log)
	if err != nil {
		return err
	}
	conn, err := grpc.NewClient(cfg.PlatformGRPC, slices.Concat(id.platformDialOptions(), tel.GRPCDialOptions())...)
	if err != nil {
		return fmt.Errorf("platform grpc client: %w", err)
	}
	defer conn.Close()
	intro := platform.NewIntrospector(platformv1.NewAuthServiceClient(conn), 60*time.Second)
	tenants := platform.NewTenants(platformv1.NewTenantServiceClient(conn), cfg.CacheTTL, log)
	if !cfg.RunsProxy() {
		return runIngester(ctx, cfg, log, pool, tenants, id, ls, tel)
	}

	// Grow the descriptor table now, not in accept4 under a burst of
	// connections (package fdtable).
	if size, err := fdtable.Reserve(fdReserve); err != nil {
		log.Warn("descriptor table not grown", "err", err, "size", size)
	} else {
		log.Debug("descriptor table grown", "size", size)
	}

	keyStore := keys.NewStore(pool)
	keyCache := keys.NewCache()
	usageStore := analytics.New(pool)

	// gRPC serves from here on, before the warm-up below calls the
	// platform: the platform checks those calls' tokens at this service's
	// introspection.
	verifier := id.Verifier(conn, log)
	grpcSrv := grpc.NewServer(slices.Concat(grpcserve.ServerOptions(cfg.ReadHeaderTimeout), id.ServerOptions(verifier, grpcACL(), log), tel.GRPCServerOptions())...)
	gatewayv1.RegisterUsageServiceServer(grpcSrv, grpcapi.New(usageStore, keyStore, log))
	svcauthv1.RegisterServiceAuthServiceServer(grpcSrv, id.Introspection)
	hs := health.NewServer()
	healthpb.RegisterHealthServer(grpcSrv, hs)
	lis, err := listenfd.Or(ls.GRPC, cfg.GRPCAddr, "grpc")
	if err != nil {
		return err
	}
	grpcCtx, stopGRPC := context.WithCancel(ctx)
	grpcDone := make(chan error, 1)
	go func() { grpcDone <- grpcserve.Serve(grpcCtx, grpcSrv, lis, hs, 5*time.Second) }()
	grpcStopped := false
	defer func() {
		if !grpcStopped {
			stopGRPC()
			<-grpcDone
		}
	}()
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
	revSub, err := svcauth.SubscribeRevocations(nc, subj, verifier, log)
	if err != nil {
		return err
	}
	defer func() { _ = revSub.Unsubscribe() }()
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
		KeepAliveInterval: cfg.StreamKeepAlive,
		Telemetry:         tel,
	})

	var drain httpserver.Drain // shutdown began: readiness turns false
	e := httpserver.New(log, reg.Middleware(), tel.Middleware())
	api := httpapi.New(log, intro, tenants, keyStore, keyCache, ev, usageStore, policyStore, policySnap, providers.Names())
	if shared != nil {
		api.SetLimiter(shared) // management and analytics limits across replicas too
	}
	api.Routes(e, healthProbes(log, pool, nc, &drain, id.platform))
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
	bg.Go(func() { px.Run(bgCtx) }) // stream keep-alives
	ingester := ingest.New(ingestConfig(cfg, streams, tel), js, ingest.RetentionFrom(tenants), reg, log)
	bg.Go(func() { ingester.Run(bgCtx) })
	log.Info("gateway starting", "http_addr", httpLis.Addr().String(), "grpc_addr", lis.Addr().String(),
		"internal_addr", internal.lis.Addr().String(), "keys", nkeys,
		"instance", id.Minter.Instance(), "service_kid", id.Ring.KeyID(), "grpc_tls", id.TLS != nil)
	// Start-up touched most of the binary's code (every package's
	// initialisation, migrations, cache loads): let those file pages go;
	// the ones in use come back page by page (package filepages).
	if spanned, err := filepages.Release(); err != nil {
		log.Warn("start-up file pages not released", "err", err)
	} else {
		log.Debug("start-up file pages released", "mapped_bytes", spanned)
	}
	g, gctx := errgroup.WithContext(ctx)
	g.Go(func() error {
		go func() { <-gctx.Done(); drain.Begin() }()
		// Readiness is false from the signal on; the server keeps serving
		// for the drain delay, then drains for the grace period; calls
		// still open then are ended (streams with their provider's error
		// event) and get endWait to record their usage.
		return httpserver.ServeListenerStop(gctx, httpSrv, httpLis, httpserver.Stop{
			DrainDelay: cfg.DrainDelay, Grace: cfg.ShutdownGrace, End: func() { px.EndCalls() }, EndWait: endWait,
		}, log)
	})
	g.Go(func() error {
		select {
		case err := <-grpcDone:
			grpcStopped = true
			return err
		case <-gctx.Done():
			stopGRPC()
			err := <-grpcDone
			grpcStopped = true
			return err
		}
	})
	g.Go(func() error { return internal.serve(gctx, log) })
	err = g.Wait()
	// Calls whose connection was closed after endWait still finish their
	// handler (and queue their usage event); wait for them briefly.
	waitTimeout(&inflight, time.Second)
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

// endWait is what calls still open at the end of the shutdown grace period
// get to end (a stream writes its error event) and queue their usage event,
// before their connections are closed. With the wait for handlers after
// that (1 s) it is the 5 s the Kubernetes termination budget allows
// (deploy/k8s/base/gateway.yaml).
const endWait = 4 * time.Second

// fdReserve is the descriptor table size a proxying gateway reserves at
// start (fdtable.Reserve; capped at RLIMIT_NOFILE): a client and an
// upstream connection per request in flight, for bursts of up to 8 000
// connections, before the table would have to grow under load.
const fdReserve = 16384

// healthProbes: the health routes check Postgres, NATS and whether the
// platform accepts this instance's service tokens (while it refuses them,
// the proxy serves on from its caches, and readiness says "refused"), and
// turn unready once drain began (shutdown); the local readiness checks only
// the latter. The caches need no probe: the listener opens after they are
// loaded.
func healthProbes(log *slog.Logger, pool *pgxpool.Pool, nc *nats.Conn, drain *httpserver.Drain, platformAuth *svcauth.PeerState) httpserver.Probes {
	return httpserver.NewProbes(log, drain, []httpserver.Check{
		httpserver.PostgresCheck(pool),
		httpserver.NATSCheck(nc),
		{Name: "platform_auth", Down: "refused", Probe: platformAuth.Probe},
	})
}
