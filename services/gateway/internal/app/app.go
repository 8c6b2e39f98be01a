// Package app wires the gateway together and runs it until its context ends.
package app

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/pprof"
	"os"
	"sync"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/labstack/echo/v4"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"
	"golang.org/x/sync/errgroup"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/health"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"

	gatewayv1 "trueportai/proto/gen/trueport/gateway/v1"
	platformv1 "trueportai/proto/gen/trueport/platform/v1"
	"trueportai/services/gateway/internal/config"
	"trueportai/services/gateway/internal/grpcapi"
	"trueportai/services/gateway/internal/httpapi"
	"trueportai/services/gateway/internal/keys"
	"trueportai/services/gateway/internal/metering"
	"trueportai/services/gateway/internal/migrations"
	"trueportai/services/gateway/internal/platform"
	"trueportai/services/gateway/internal/policy"
	"trueportai/services/gateway/internal/policystore"
	"trueportai/services/gateway/internal/pricing"
	"trueportai/services/gateway/internal/proxy"
	"trueportai/services/gateway/internal/quota"
	"trueportai/services/gateway/internal/usage"
	"trueportai/services/internal/events"
	"trueportai/services/internal/grpcserve"
	"trueportai/services/internal/httpserver"
	"trueportai/services/internal/logging"
	"trueportai/services/internal/metrics"
	"trueportai/services/internal/natsconn"
	"trueportai/services/internal/pgdb"
	"trueportai/services/internal/ratelimit"
	"trueportai/services/internal/rpcauth"
)

// Run starts the gateway.
func Run(ctx context.Context, getenv func(string) string, stderr io.Writer) error {
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
		return runIngester(ctx, cfg, log, pool, tenants)
	}

	keyStore := keys.NewStore(pool)
	keyCache := keys.NewCache()
	all, err := keyStore.All(ctx)
	if err != nil {
		return fmt.Errorf("load keys: %w", err)
	}
	keyCache.Replace(all)
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
	if err := ensureStreamRetry(ctx, js, subj, log); err != nil {
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
	for name, pick := range map[string]func(p, s, l int64) int64{
		"published": func(p, _, _ int64) int64 { return p },
		"spooled":   func(_, s, _ int64) int64 { return s },
		"lost":      func(_, _, l int64) int64 { return l },
	} {
		reg.MustRegister(prometheus.NewCounterFunc(prometheus.CounterOpts{
			Name: "trueport_usage_events_" + name + "_total", Help: "Usage events " + name + " by this replica.",
		}, func() float64 { return float64(pick(pub.Stats())) }))
	}
	ev := events.NewPublisher(nc, subj, log)
	policyStore := policystore.NewStore(pool)
	policySnap := policystore.NewSnapshot(log)
	allRules, err := policyStore.All(ctx)
	if err != nil {
		return fmt.Errorf("load policies: %w", err)
	}
	policySnap.ReplaceAll(allRules)
	subs, err := subscribe(nc, subj, log, intro, tenants, keyCache, keyStore, policySnap, policyStore)
	if err != nil {
		return err
	}
	defer func() {
		for _, s := range subs {
			_ = s.Unsubscribe()
		}
	}()

	prices, err := loadPrices(cfg.PricingFile)
	if err != nil {
		return err
	}
	livePrices := pricing.NewLive(prices)
	cfgClient := platformv1.NewConfigServiceClient(conn)
	refreshPrices := func(ctx context.Context) {
		ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		defer cancel()
		resp, err := cfgClient.GetGatewayConfig(ctx, &platformv1.GetGatewayConfigRequest{})
		if err == nil {
			err = livePrices.SetOverrides(resp.GetPricingOverridesJson())
			log.Debug("pricing overrides refreshed", "overrides", resp.GetPricingOverridesJson())
		}
		if err != nil {
			log.Warn("pricing overrides not refreshed", "err", err)
		}
	}
	refreshPrices(ctx)
	if globalSub, err := nc.Subscribe(subj.GlobalConfigChanged(), func(*nats.Msg) { go refreshPrices(context.Background()) }); err == nil {
		subs = append(subs, globalSub)
	}
	quotas := quota.New(usage.NewCounts(pool))
	if err := quotas.Sync(ctx, time.Now()); err != nil {
		return fmt.Errorf("load monthly usage: %w", err)
	}
	redact, err := newBodyRedactor()
	if err != nil {
		return err
	}
	limiter := ratelimit.New()
	px := proxy.New(log, keyCache, tenants, limiter, pub, proxy.Options{
		Prices: livePrices, Quota: quotas, Metrics: proxy.NewMetrics(reg), Policies: policySnap, RedactBody: redact,
		Upstreams: cfg.Upstreams, BodyLimit: cfg.ProxyBodyLimit, HeaderTimeout: cfg.UpstreamHeaderTimeout, IdleTimeout: cfg.StreamIdleTimeout,
	})

	var draining sync.Once
	ready := make(chan struct{}) // closed when shutdown begins: readiness turns false
	e := httpserver.New(log, reg.Middleware())
	e.GET("/metrics", echo.WrapHandler(reg.Handler()))
	api := httpapi.New(log, intro, tenants, keyStore, keyCache, ev, pool, policyStore, policySnap)
	api.Routes(e, healthHandler(pool, nc, ready))
	var inflight sync.WaitGroup // proxied requests, joined before the publisher closes
	root := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if proxy.IsProxyPath(r.URL.Path) {
			inflight.Add(1)
			defer inflight.Done()
			px.ServeHTTP(w, r)
			return
		}
		e.ServeHTTP(w, r)
	})
	// No read/write timeout: long healthy streams must not be cut; the
	// upstream header and idle timeouts bound a stuck call instead.
	httpSrv := &http.Server{Addr: cfg.HTTPAddr, Handler: root, ReadHeaderTimeout: 10 * time.Second, IdleTimeout: 120 * time.Second}

	grpcSrv := grpc.NewServer(rpcauth.ServerOptions(cfg.InternalGRPCToken)...)
	gatewayv1.RegisterUsageServiceServer(grpcSrv, grpcapi.New(pool, keyStore, log))
	hs := health.NewServer()
	healthpb.RegisterHealthServer(grpcSrv, hs)
	lis, err := net.Listen("tcp", cfg.GRPCAddr)
	if err != nil {
		return fmt.Errorf("grpc listen %s: %w", cfg.GRPCAddr, err)
	}

	bgCtx, stopBG := context.WithCancel(context.WithoutCancel(ctx))
	defer stopBG()
	var bg sync.WaitGroup
	pubDone := make(chan struct{})
	go func() { defer close(pubDone); pub.Run(bgCtx) }()
	bg.Add(3)
	go func() { defer bg.Done(); tenants.Run(bgCtx, keyCache.TenantIDs) }()
	go func() {
		defer bg.Done()
		quotas.Run(bgCtx, cfg.CacheTTL, func(err error) { log.Warn("quota resync failed", "err", err) })
	}()
	bg.Add(1)
	go func() {
		defer bg.Done()
		t := time.NewTicker(cfg.CacheTTL)
		defer t.Stop()
		for {
			select {
			case <-bgCtx.Done():
				return
			case <-t.C:
				refreshPrices(bgCtx)
			}
		}
	}()
	go func() {
		defer bg.Done()
		reloadCaches(bgCtx, keyStore, keyCache, policyStore, policySnap, limiter, cfg.CacheTTL, log)
	}()
	startIngestion(bgCtx, &bg, cfg, log, js, subj, tenants, reg)
	startDebug(bgCtx, &bg, cfg, log)
	log.Info("gateway starting", "http_addr", cfg.HTTPAddr, "grpc_addr", cfg.GRPCAddr, "keys", len(all))
	g, gctx := errgroup.WithContext(ctx)
	g.Go(func() error {
		go func() { <-gctx.Done(); draining.Do(func() { close(ready) }) }()
		return httpserver.Serve(gctx, httpSrv, cfg.ShutdownGrace, log)
	})
	g.Go(func() error { return grpcserve.Serve(gctx, grpcSrv, lis, hs, 5*time.Second) })
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

// startIngestion starts, as cfg's role asks, the retention job (with the
// monthly partition upkeep) and the JetStream → Postgres ingester loops; they
// stop when ctx ends (bg joins them).
func startIngestion(ctx context.Context, bg *sync.WaitGroup, cfg config.Config, log *slog.Logger, js jetstream.JetStream, subj events.Subjects,
	tenants *platform.Tenants, reg prometheus.Registerer) {
	if !cfg.RunsRetention() && !cfg.RunsIngester() {
		return
	}
	var im *usage.IngestMetrics
	if cfg.RunsIngester() {
		im = usage.NewIngestMetrics(reg)
	}
	// Background writers get their own pool with the default plan cache
	// (their batch statements gain nothing from per-execution planning).
	bg.Add(1)
	go func() {
		defer bg.Done()
		var pool *pgxpool.Pool
		for {
			var err error
			if pool, err = pgdb.Open(ctx, cfg.DatabaseURL, log); err == nil {
				break
			}
			log.Warn("ingestion pool not opened, retrying", "err", err)
			select {
			case <-ctx.Done():
				return
			case <-time.After(time.Second):
			}
		}
		defer pool.Close()
		var wg sync.WaitGroup
		if cfg.RunsRetention() {
			retention := usage.NewRetention(pool, func(id string) (int64, bool) {
				t, ok := tenants.Get(id)
				if !ok {
					tenants.Prefetch(id) // known by the next cycle
					return 0, false
				}
				return t.RetentionDays, true
			}, log)
			wg.Add(1)
			go func() { defer wg.Done(); retention.Run(ctx, cfg.RetentionInterval) }()
		}
		if cfg.RunsIngester() {
			// Several fetch loops share the durable consumer: while one
			// batch commits, the next is being fetched.
			ing := usage.NewIngester(pool, js, subj.UsageStream(), keys.NewStore(pool), log)
			ing.SetFetchBytes(cfg.IngesterFetchBytes)
			ing.SetMetrics(im)
			for range cfg.IngesterWorkers {
				wg.Add(1)
				go func() { defer wg.Done(); _ = ing.Run(ctx) }()
			}
		}
		wg.Wait()
	}()
}

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

// runIngester is GATEWAY_ROLE=ingester: the usage consumer and the retention
// job, with health and /metrics on GATEWAY_HTTP_ADDR, and neither the proxy
// nor the APIs. Proxy replicas then run GATEWAY_ROLE=proxy and hold no
// ingestion batches in memory.
func runIngester(ctx context.Context, cfg config.Config, log *slog.Logger, pool *pgxpool.Pool, tenants *platform.Tenants) error {
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
	if err := ensureStreamRetry(ctx, js, subj, log); err != nil {
		return err
	}
	// Retention days change with the plan: drop the cached context on
	// TenantChanged so the next cycle fetches it again.
	sub, err := nc.Subscribe(subj.TenantChanged(), func(m *nats.Msg) {
		var ev events.TenantChangedEvent
		if json.Unmarshal(m.Data, &ev) == nil && ev.TenantID != "" {
			tenants.Prefetch(ev.TenantID)
		}
	})
	if err != nil {
		return fmt.Errorf("subscribe: %w", err)
	}
	defer func() { _ = sub.Unsubscribe() }()

	reg := metrics.New("gateway")
	e := httpserver.New(log, reg.Middleware())
	e.GET("/metrics", echo.WrapHandler(reg.Handler()))
	draining := make(chan struct{})
	httpapi.HealthRoutes(e, healthHandler(pool, nc, draining))

	bgCtx, stopBG := context.WithCancel(context.WithoutCancel(ctx))
	defer stopBG()
	var bg sync.WaitGroup
	bg.Add(1)
	go func() { defer bg.Done(); tenants.Run(bgCtx, nil) }()
	startIngestion(bgCtx, &bg, cfg, log, js, subj, tenants, reg)
	startDebug(bgCtx, &bg, cfg, log)
	log.Info("gateway ingester starting", "http_addr", cfg.HTTPAddr, "workers", cfg.IngesterWorkers)
	httpSrv := &http.Server{Addr: cfg.HTTPAddr, Handler: e, ReadHeaderTimeout: 10 * time.Second}
	go func() { <-ctx.Done(); close(draining) }()
	err = httpserver.Serve(ctx, httpSrv, 5*time.Second, log)
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

// healthHandler checks Postgres and NATS, and turns unready once draining
// is closed (shutdown began).
func healthHandler(pool *pgxpool.Pool, nc *nats.Conn, draining <-chan struct{}) echo.HandlerFunc {
	return httpserver.HealthHandler(
		httpserver.PostgresCheck(pool),
		httpserver.NATSCheck(nc),
		httpserver.Check{Name: "shutdown", Probe: func(context.Context) error {
			select {
			case <-draining:
				return errors.New("draining")
			default:
				return nil
			}
		}},
	)
}

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

func subscribe(nc *nats.Conn, subj events.Subjects, log *slog.Logger, intro *platform.Introspector, tenants *platform.Tenants, cache *keys.Cache, store *keys.Store,
	snap *policystore.Snapshot, rules *policystore.Store) ([]*nats.Subscription, error) {
	var subs []*nats.Subscription
	add := func(subject string, h nats.MsgHandler) error {
		s, err := nc.Subscribe(subject, h)
		if err != nil {
			return fmt.Errorf("subscribe %s: %w", subject, err)
		}
		subs = append(subs, s)
		return nil
	}
	err := errors.Join(
		add(subj.TenantChanged(), func(m *nats.Msg) {
			var ev events.TenantChangedEvent
			if json.Unmarshal(m.Data, &ev) == nil && ev.TenantID != "" {
				tenants.Prefetch(ev.TenantID)
				intro.Revoke("", ev.TenantID)
			}
		}),
		add(subj.TokensRevoked(), func(m *nats.Msg) {
			var ev events.TokensRevokedEvent
			if json.Unmarshal(m.Data, &ev) == nil {
				intro.Revoke(ev.UserID, ev.TenantID)
			}
		}),
		add(subj.PoliciesChanged(), func(m *nats.Msg) {
			var ev events.PoliciesChangedEvent
			if json.Unmarshal(m.Data, &ev) == nil && ev.TenantID != "" {
				ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
				defer cancel()
				if err := snap.Reload(ctx, rules, ev.TenantID); err != nil {
					log.Warn("policy refresh failed", "tenant_id", ev.TenantID, "err", err)
				}
			}
		}),
		add(subj.KeysChanged(), func(m *nats.Msg) {
			var ev events.KeysChangedEvent
			if json.Unmarshal(m.Data, &ev) == nil && ev.KeyID != "" {
				ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
				defer cancel()
				if err := cache.Refresh(ctx, store, ev.KeyID); err != nil {
					log.Warn("key refresh failed", "key_id", ev.KeyID, "err", err)
				}
			}
		}),
	)
	return subs, err
}

// reloadCaches fully reloads the key cache and the policy snapshot every ttl
// (the safety net behind change events) and sweeps idle rate-limit state.
func reloadCaches(ctx context.Context, store *keys.Store, cache *keys.Cache, rules *policystore.Store, snap *policystore.Snapshot,
	limiter *ratelimit.Limiter, ttl time.Duration, log *slog.Logger) {
	tick := time.NewTicker(ttl)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case now := <-tick.C:
			all, err := store.All(ctx)
			if err != nil {
				log.Warn("key reload failed", "err", err)
				continue
			}
			cache.Replace(all)
			limiter.Sweep(now)
			if rows, err := rules.All(ctx); err != nil {
				log.Warn("policy reload failed", "err", err)
			} else {
				snap.ReplaceAll(rows)
			}
		}
	}
}

// loadPrices returns the shipped price table, extended by PRICING_FILE.
func loadPrices(path string) (*pricing.Table, error) {
	t, err := pricing.Default()
	if err != nil || path == "" {
		return t, err
	}
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("PRICING_FILE: %w", err)
	}
	over, err := pricing.Parse(b)
	if err != nil {
		return nil, fmt.Errorf("PRICING_FILE: %w", err)
	}
	return t.WithOverrides(over.Models()), nil
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
func newBodyRedactor() (func(metering.Provider, string, []byte) []byte, error) {
	set, err := policy.Compile([]policy.Rule{
		{ID: "logged-bodies-pii", Name: "logged bodies: PII", Type: policy.TypePII, Config: []byte(`{}`), Action: policy.ActionRedact, Enabled: true, Direction: policy.DirectionBoth},
		{ID: "logged-bodies-secrets", Name: "logged bodies: secrets", Type: policy.TypeSecrets, Config: []byte(`{}`), Action: policy.ActionRedact, Enabled: true, Direction: policy.DirectionBoth},
	})
	if err != nil {
		return nil, fmt.Errorf("body redactor: %w", err)
	}
	return func(p metering.Provider, direction string, body []byte) []byte {
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
