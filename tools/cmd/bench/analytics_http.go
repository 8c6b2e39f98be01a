package main

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"time"
)

// benchPlatform is the platform-backend (and, for the timed phase, the
// gateway) that the http phase runs on the generated database.
type benchPlatform struct {
	ps              *procs
	addr            map[string]string
	platformDB      string
	email, password string
	tenantID        string
}

// benchAnalyticsPortBase is the first of the ports the http phase listens
// on (BENCH_ANALYTICS_PORT_BASE).
const benchAnalyticsPortBase = 18600

func (p *benchPlatform) env(gatewayDB string) []string {
	return []string{
		"APP_ENV=dev", "LOG_LEVEL=" + envOr("BENCH_ANALYTICS_LOG_LEVEL", "warn"), "LOG_FORMAT=json", "NATS_PREFIX=benchan" + strconv.Itoa(os.Getpid()),
		"PLATFORM_HTTP_ADDR=" + p.addr["platform_http"], "PLATFORM_GRPC_ADDR=" + p.addr["platform_grpc"],
		"GATEWAY_HTTP_ADDR=" + p.addr["gateway_http"], "GATEWAY_GRPC_ADDR=" + p.addr["gateway_grpc"],
		"PLATFORM_INTERNAL_ADDR=" + p.addr["platform_internal"], "GATEWAY_INTERNAL_ADDR=" + p.addr["gateway_internal"],
		"PLATFORM_DATABASE_URL=" + p.platformDB, "GATEWAY_DATABASE_URL=" + gatewayDB,
	}
}

func (p *benchPlatform) stop() { p.ps.stopAll() }

// startPlatform starts bin/platform-backend on the database <db>_platform;
// fresh: the database is recreated, a user registered, a tenant created on
// the enterprise plan (its retention is the largest, 365 days), and the
// tenant's id kept for the generated rows.
func (a *analytics) startPlatform(ctx context.Context, admin string, fresh bool) (*benchPlatform, error) {
	for _, b := range []string{"platform-backend", "gateway"} {
		if st, err := os.Stat("bin/" + b); err != nil || st.Mode()&0o111 == 0 {
			return nil, fmt.Errorf("bin/%s is missing: run make build (the http phase runs the services)", b)
		}
	}
	base, err := envInt("BENCH_ANALYTICS_PORT_BASE", benchAnalyticsPortBase)
	if err != nil {
		return nil, err
	}
	p := &benchPlatform{ps: newProcs("analytics", a.tmp), addr: map[string]string{},
		platformDB: a.cfg.pgURL + "/" + a.cfg.db + "_platform?sslmode=disable", email: "bench-analytics@example.com", password: "correct-horse-battery"}
	for i, n := range []string{"platform_http", "platform_grpc", "platform_internal", "gateway_http", "gateway_grpc", "gateway_internal"} {
		ad := fmt.Sprintf("127.0.0.1:%d", base+i)
		if !portFree(ad) {
			return nil, fmt.Errorf("%s is in use (set BENCH_ANALYTICS_PORT_BASE)", ad)
		}
		p.addr[n] = ad
	}
	if fresh {
		if err := pgExec(ctx, admin, "DROP DATABASE IF EXISTS "+a.cfg.db+"_platform WITH (FORCE)"); err != nil {
			return nil, err
		}
	}
	say("analytics", "starting platform-backend on %s_platform", a.cfg.db)
	plat, err := p.ps.start("platform-backend", "bin/platform-backend", p.env(""))
	if err != nil {
		return nil, err
	}
	if err := waitHTTP(ctx, "http://"+p.addr["platform_http"]+"/health", plat); err != nil {
		p.stop()
		return nil, err
	}
	if !fresh {
		return p, nil
	}
	P := "http://" + p.addr["platform_http"] + "/platform/api"
	cred := map[string]string{"email": p.email, "password": p.password}
	if _, err := api(ctx, "POST", P+"/global/auth/register", "", cred); err != nil {
		p.stop()
		return nil, err
	}
	login, err := api(ctx, "POST", P+"/global/auth/login", "", cred)
	if err != nil {
		p.stop()
		return nil, err
	}
	t, err := api(ctx, "POST", P+"/global/tenants", str(login, "global_access_token"), map[string]string{"name": "Bench analytics", "slug": "bench-analytics"})
	if err != nil {
		p.stop()
		return nil, err
	}
	p.tenantID = str(t, "id")
	if err := pgExec(ctx, p.platformDB, "UPDATE tenants SET plan_id='enterprise' WHERE id=$1", p.tenantID); err != nil {
		p.stop()
		return nil, err
	}
	say("analytics", "  tenant %s (enterprise plan) for the big tenant's rows", p.tenantID)
	return p, nil
}

// scopedToken logs the bench user in and selects the tenant.
func (p *benchPlatform) scopedToken(ctx context.Context) (string, error) {
	P := "http://" + p.addr["platform_http"] + "/platform/api"
	login, err := api(ctx, "POST", P+"/global/auth/login", "", map[string]string{"email": p.email, "password": p.password})
	if err != nil {
		return "", err
	}
	sel, err := api(ctx, "POST", P+"/global/auth/select-tenant", str(login, "global_access_token"), map[string]string{"tenant_id": p.tenantID})
	if err != nil {
		return "", err
	}
	return str(sel, "scoped_access_token"), nil
}

// httpScenario is one GET of the analytics API.
type httpScenario struct{ label, path string }

func (a *analytics) httpScenarios() []httpScenario {
	now := a.now
	q := func(from time.Time, kv ...string) string {
		v := url.Values{"from": {from.Format(time.RFC3339)}, "to": {now.Format(time.RFC3339)}}
		for i := 0; i+1 < len(kv); i += 2 {
			v.Set(kv[i], kv[i+1])
		}
		return v.Encode()
	}
	var out []httpScenario
	for _, sc := range statsMatrix(a.cfg.days) {
		if sc.days < 30 && sc.interval != "hour" {
			continue // the short ranges are measured in SQL; HTTP takes the heavy ones
		}
		out = append(out, httpScenario{fmt.Sprintf("stats %s, group_by=%s, %d days", sc.interval, sc.groupBy, sc.days),
			"/analytics/stats?" + q(now.Add(-time.Duration(sc.days)*24*time.Hour), "interval", sc.interval, "group_by", sc.groupBy)})
	}
	day := now.Add(-48 * time.Hour)
	for _, l := range []struct{ label, query string }{
		{"logs, no filter", ""},
		{"logs, from/to one hour", url.Values{"from": {day.Add(-time.Hour).Format(time.RFC3339)}, "to": {day.Format(time.RFC3339)}}.Encode()},
		{"logs, key_id", "key_id=" + a.key1},
		{"logs, provider=google", "provider=google"},
		{"logs, model=gpt-4o", "model=gpt-4o"},
		{"logs, status=429", "status=429"},
		{"logs, status=5xx", "status=5xx"},
		{"logs, stream=true", "stream=true"},
		{"logs, key_id + model + status=5xx", "key_id=" + a.key1 + "&model=gpt-4o&status=5xx"},
	} {
		out = append(out, httpScenario{l.label, "/analytics/logs?limit=50&" + l.query})
	}
	return out
}

// timeHTTP starts the platform and a gateway on the generated database and
// times the analytics routes with the tenant's scoped token.
func (a *analytics) timeHTTP(ctx context.Context, admin string) error {
	p, err := a.startPlatform(ctx, admin, false)
	if err != nil {
		return err
	}
	defer p.stop()
	p.tenantID = a.bigTen
	say("analytics", "starting a gateway (GATEWAY_ROLE=proxy, MIGRATE_ON_START=false) on %s", a.cfg.db)
	gw, err := p.ps.start("gateway", "bin/gateway", append(p.env(a.dbURL), "GATEWAY_ROLE=proxy", "MIGRATE_ON_START=false",
		"GATEWAY_SPOOL_DIR="+filepath.Join(a.tmp, "spool")))
	if err != nil {
		return err
	}
	G := "http://" + p.addr["gateway_http"] + "/trueportai-services/api/v1"
	if err := waitHTTP(ctx, "http://"+p.addr["gateway_http"]+"/trueportai-services/health", gw); err != nil {
		return err
	}
	tok, err := p.scopedToken(ctx)
	if err != nil {
		return fmt.Errorf("scoped token (is %s the platform tenant of a BENCH_ANALYTICS_PHASES=\"data http\" run?): %w", a.bigTen, err)
	}
	client := &http.Client{Timeout: 60 * time.Second}
	get := func(path string) (int, int, time.Duration, string, error) {
		req, err := http.NewRequestWithContext(ctx, "GET", G+path, nil)
		if err != nil {
			return 0, 0, 0, "", err
		}
		req.Header.Set("authorization", "Bearer "+tok)
		st := time.Now()
		resp, err := client.Do(req)
		if err != nil {
			return 0, 0, 0, "", err
		}
		body, err := io.ReadAll(resp.Body)
		resp.Body.Close()
		return resp.StatusCode, len(body), time.Since(st), resp.Header.Get("Retry-After"), err
	}
	// The analytics limit is 60 a minute per user and tenant: one request
	// a second, and a 429 waits its Retry-After and is sent again.
	pace := time.NewTicker(time.Second)
	defer pace.Stop()
	for _, sc := range a.httpScenarios() {
		var ms []float64
		size := 0
		for len(ms) < a.cfg.httpRuns {
			select {
			case <-ctx.Done():
				return ctx.Err()
			case <-pace.C:
			}
			code, n, d, retry, err := get(sc.path)
			if err != nil {
				return fmt.Errorf("%s: %w", sc.label, err)
			}
			if code == http.StatusTooManyRequests {
				s, _ := strconv.Atoi(retry)
				_ = sleepCtx(ctx, time.Duration(max(s, 1))*time.Second)
				continue
			}
			if code != http.StatusOK {
				return fmt.Errorf("%s: GET %s answered %d", sc.label, sc.path, code)
			}
			ms = append(ms, float64(d.Microseconds())/1000)
			size = n
		}
		p50, p99 := pct(ms, 0.5), pct(ms, 0.99)
		target := 20.0
		v := verdict(p50, target)
		if sc.path[:len("/analytics/stats")] == "/analytics/stats" {
			v = statsVerdict(p50, p99)
		}
		a.http = append(a.http, fmt.Sprintf("| %s | %d | %.1f | %.1f | %.1f | %d | %s |", sc.label, len(ms), p50, p99, pct(ms, 1), size, v))
		say("analytics", "  HTTP %s: p50 %.1f ms, p99 %.1f ms", sc.label, p50, p99)
	}
	return nil
}
