package main

// bench proxy: load-test the gateway against a bare Go reverse proxy and the
// fake provider itself, A/B interleaved in one run, and write the figures to
// stdout and into the bench block of docs/benchmarks.md.
//
// Targets, measured in rotation for every scenario:
//
//	direct   client -> fake provider
//	bare     client -> benchproxy (httputil.ReverseProxy) -> fake provider
//	gateway  client -> gateway (auth, rate limit, metering, usage publishing
//	         to JetStream + ingester) -> fake provider
//	policies the gateway again, with a key of a second tenant that has 10
//	         policy rules (none matching the benchmark body), JSON only
//
// Scenarios: JSON and SSE chat completions, at fixed rates (vegeta) and
// closed loop (wrk). Each (scenario, target) runs BENCH_REPEATS times; the
// table reports medians.
//
// Environment (defaults in brackets):
//
//	BENCH_RATES           fixed request rates per second ["500 2000"]
//	BENCH_RATE_DURATION   length of a fixed-rate run [2s]
//	BENCH_CLOSED_DURATION length of a closed-loop run [7s]
//	BENCH_CONNS           closed-loop connections [64]
//	BENCH_THREADS         closed-loop wrk threads [2]
//	BENCH_REPEATS         repetitions of every run [3]
//	BENCH_OUT             markdown file to update [docs/benchmarks.md]; empty: stdout only
//	BENCH_POLICY_LOADS    loads at which the JSON body also goes through a
//	                      tenant with 10 policy rules ["500"; e.g. "500 max"]
//	BENCH_PORT_BASE       first of the 10 local ports used [18080]
//	BENCH_GATEWAY_ENV     extra VAR=value words for the gateway, e.g. INGESTER_ENABLED=false
//	BENCH_GATEWAY_LAYOUT  split: the gateway runs GATEWAY_ROLE=proxy and a second
//	                      gateway process GATEWAY_ROLE=ingester consumes the usage
//	                      stream (the production layout, both on this machine);
//	                      all: one gateway process with the ingester in it [split]
//	BENCH_PERF            a directory: after the rounds, profile benchproxy and the
//	                      gateway with perf under closed-loop load and count their
//	                      syscalls per request (files in that directory, not in the table)

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
)

const pgServer = "postgres://postgres@127.0.0.1:5432"

type proxyConfig struct {
	rates                 []string
	rateDur, closedDur    time.Duration
	conns, threads, reps  int
	out                   string
	policyLoads           []string
	base                  int
	gatewayEnv            []string
	layout                string
	perfDir               string
	rawRates, rawPolicies string
	// db prefixes the run's databases (<db>_platform, <db>_gateway);
	// noBare: no benchproxy (bench overload).
	db     string
	noBare bool
}

func proxyConfigFromEnv() (proxyConfig, error) {
	var c proxyConfig
	var err error
	c.rawRates = envOr("BENCH_RATES", "500 2000")
	c.rates = strings.Fields(c.rawRates)
	for _, r := range c.rates {
		if n, err := strconv.Atoi(r); err != nil || n <= 0 {
			return c, fmt.Errorf("BENCH_RATES: %q is not a positive rate", r)
		}
	}
	if len(c.rates) == 0 {
		return c, fmt.Errorf("BENCH_RATES is empty")
	}
	if c.rateDur, err = envDuration("BENCH_RATE_DURATION", "2s"); err != nil {
		return c, err
	}
	if c.closedDur, err = envDuration("BENCH_CLOSED_DURATION", "7s"); err != nil {
		return c, err
	}
	if c.conns, err = envInt("BENCH_CONNS", 64); err != nil {
		return c, err
	}
	if c.threads, err = envInt("BENCH_THREADS", 2); err != nil {
		return c, err
	}
	if c.reps, err = envInt("BENCH_REPEATS", 3); err != nil {
		return c, err
	}
	if c.base, err = envInt("BENCH_PORT_BASE", 18080); err != nil {
		return c, err
	}
	c.out = envSet("BENCH_OUT", "docs/benchmarks.md")
	c.rawPolicies = envSet("BENCH_POLICY_LOADS", "500")
	c.policyLoads = strings.Fields(c.rawPolicies)
	c.gatewayEnv = strings.Fields(os.Getenv("BENCH_GATEWAY_ENV"))
	c.layout = envOr("BENCH_GATEWAY_LAYOUT", "split")
	switch c.layout {
	case "split":
		c.gatewayEnv = append([]string{"GATEWAY_ROLE=proxy"}, c.gatewayEnv...)
	case "all":
	default:
		return c, fmt.Errorf("BENCH_GATEWAY_LAYOUT must be split or all")
	}
	c.perfDir = os.Getenv("BENCH_PERF")
	c.db = "trueport_bench"
	return c, nil
}

// The benchmark bodies. The stream asks for the usage chunk itself so that
// every target sends the upstream the same request (the gateway would
// otherwise add it and hide it).
const (
	jsonBody   = `{"model":"gpt-4o-mini","messages":[{"role":"user","content":"Say hello in one short sentence."}]}`
	streamBody = `{"model":"gpt-4o-mini","stream":true,"stream_options":{"include_usage":true},"messages":[{"role":"user","content":"Say hello in one short sentence."}]}`
)

// policyRules are the 10 rules of the second tenant, one or two of every
// type, none matching the benchmark body.
var policyRules = []string{
	`{"name":"no secrets","type":"secrets","action":"block","config":{},"priority":10}`,
	`{"name":"mask pii","type":"pii","action":"redact","config":{"kinds":["email","phone","credit_card","us_ssn","iban","ipv4"]}}`,
	`{"name":"prompt injection","type":"prompt_injection","action":"block","config":{}}`,
	`{"name":"watch words","type":"keyword","action":"flag","config":{"keywords":["merger","acquisition","layoff","lawsuit"]}}`,
	`{"name":"confidential","type":"keyword","action":"block","config":{"keywords":["confidential","do not distribute"],"whole_word":true}}`,
	`{"name":"project names","type":"regex","action":"flag","config":{"pattern":"\\bproject-[a-z]{4,}\\b"}}`,
	`{"name":"internal only","type":"regex","action":"block","config":{"pattern":"(?i)internal use only"}}`,
	`{"name":"models","type":"model_allowlist","action":"block","config":{"models":["gpt-4o-mini","gpt-4o","gpt-4.1-mini"]}}`,
	`{"name":"size","type":"max_tokens","action":"block","config":{"max_prompt_chars":20000}}`,
	`{"name":"pii in answers","type":"pii","action":"flag","direction":"response","config":{"kinds":["email","credit_card"]}}`,
}

// run is one measurement.
type measurement struct {
	rep                 int
	mode, load, target  string
	n                   int64
	rps, p50, p99, ok   float64
	rssMB, cpuUs, boxUs float64 // cpuUs is NaN without a proxy process
}

type proxyBench struct {
	cfg           proxyConfig
	ps            *procs
	tmp           string
	prefix        string
	addr          map[string]string
	gw, ing, bare *proc
	gatewayEnv    []string
	reqs          map[string]request // "mode-target"
	lua           map[string]string
	results       []measurement
	loadBefore    string
	loadAfter     string
}

func benchProxy(ctx context.Context) (err error) {
	started := time.Now()
	cfg, err := proxyConfigFromEnv()
	if err != nil {
		return err
	}
	if err := ensureWrk(); err != nil {
		return err
	}
	if cfg.perfDir != "" {
		if _, err := exec.LookPath("perf"); err != nil {
			return fmt.Errorf("perf is required for BENCH_PERF (apt-get install -y linux-perf)")
		}
	}
	for _, b := range []string{"platform-backend", "gateway", "fake-provider"} {
		if st, err := os.Stat("bin/" + b); err != nil || st.Mode()&0o111 == 0 {
			return fmt.Errorf("bin/%s is missing: run make build (make bench builds first)", b)
		}
	}
	say("proxy", "go build -o bin/benchproxy ./services/gateway/cmd/benchproxy")
	if out, err := exec.CommandContext(ctx, "go", "build", "-o", "bin/benchproxy", "./services/gateway/cmd/benchproxy").CombinedOutput(); err != nil {
		return fmt.Errorf("build benchproxy: %w\n%s", err, out)
	}

	b := &proxyBench{cfg: cfg, reqs: map[string]request{}, lua: map[string]string{}}
	names := []string{"platform_http", "gateway_http", "fake", "bare", "platform_grpc", "gateway_grpc", "ingester_http",
		"platform_internal", "gateway_internal", "ingester_internal"}
	b.addr = map[string]string{}
	for i, n := range names {
		a := fmt.Sprintf("127.0.0.1:%d", cfg.base+i)
		if !portFree(a) {
			return fmt.Errorf("%s is in use (set BENCH_PORT_BASE)", a)
		}
		b.addr[n] = a
	}
	b.tmp, err = os.MkdirTemp("", "trueport-bench.")
	if err != nil {
		return err
	}
	defer os.RemoveAll(b.tmp)
	for _, d := range []string{"logs", "spool"} {
		if err := os.MkdirAll(filepath.Join(b.tmp, d), 0o755); err != nil {
			return err
		}
	}
	rnd := make([]byte, 4)
	_, _ = rand.Read(rnd)
	b.prefix = "bench" + hex.EncodeToString(rnd)
	b.ps = newProcs("proxy", filepath.Join(b.tmp, "logs"))
	defer func() {
		b.ps.stopAll("gateway", "ingester", "platform-backend", "benchproxy", "fake-provider")
		b.deleteStream()
		if err != nil {
			say("proxy", "failed: %v; last log lines:", err)
			b.ps.tails(15)
		}
	}()

	if err := b.startAll(ctx); err != nil {
		return err
	}
	if err := b.measure(ctx); err != nil {
		return err
	}
	report, err := b.finish(ctx, started)
	if err != nil {
		return err
	}
	fmt.Printf("\n%s\n", report)
	if err := writeBlock("proxy", cfg.out, "bench", report, true); err != nil {
		return err
	}
	say("proxy", "done in %d s", int(time.Since(started).Seconds()))
	return nil
}

// ensureWrk installs wrk (a Debian package) when it is missing and this
// runs as root.
func ensureWrk() error {
	if _, err := exec.LookPath("wrk"); err == nil {
		return nil
	}
	if os.Geteuid() == 0 {
		if _, err := exec.LookPath("apt-get"); err == nil {
			say("proxy", "installing wrk (Debian package)")
			if exec.Command("apt-get", "install", "-y", "-qq", "wrk").Run() != nil {
				_ = exec.Command("apt-get", "update", "-qq").Run()
				_ = exec.Command("apt-get", "install", "-y", "-qq", "wrk").Run()
			}
		}
	}
	if _, err := exec.LookPath("wrk"); err != nil {
		return fmt.Errorf("wrk is required (apt-get install -y wrk)")
	}
	return nil
}

func (b *proxyBench) env() []string {
	fake := "http://" + b.addr["fake"]
	return []string{
		"APP_ENV=dev", "LOG_LEVEL=warn", "LOG_FORMAT=json", "NATS_PREFIX=" + b.prefix,
		"PLATFORM_HTTP_ADDR=" + b.addr["platform_http"], "PLATFORM_GRPC_ADDR=" + b.addr["platform_grpc"],
		"GATEWAY_HTTP_ADDR=" + b.addr["gateway_http"], "GATEWAY_GRPC_ADDR=" + b.addr["gateway_grpc"],
		"PLATFORM_INTERNAL_ADDR=" + b.addr["platform_internal"], "GATEWAY_INTERNAL_ADDR=" + b.addr["gateway_internal"],
		"PLATFORM_DATABASE_URL=" + pgServer + "/" + b.cfg.db + "_platform?sslmode=disable",
		"GATEWAY_DATABASE_URL=" + pgServer + "/" + b.cfg.db + "_gateway?sslmode=disable",
		"GATEWAY_SPOOL_DIR=" + filepath.Join(b.tmp, "spool"),
		"UPSTREAM_OPENAI_URL=" + fake + "/openai/v1", "UPSTREAM_ANTHROPIC_URL=" + fake + "/anthropic/v1",
		"UPSTREAM_GOOGLE_URL=" + fake + "/google/v1beta",
		"UPSTREAM_AZURE_URL_TEMPLATE=" + fake + "/azure/{resource}/openai/deployments/{deployment}",
	}
}

func (b *proxyBench) startGateway(ctx context.Context) error {
	env := append(append(b.env(), "LOG_LEVEL=info"), b.cfg.gatewayEnv...)
	p, err := b.ps.start("gateway", "bin/gateway", env)
	if err != nil {
		return err
	}
	b.gw = p
	return waitHTTP(ctx, "http://"+b.addr["gateway_http"]+"/trueportai-services/health", p)
}

// startAll: fresh databases, the processes, the tenants and keys through the
// REST APIs, smoke checks.
func (b *proxyBench) startAll(ctx context.Context) error {
	for _, db := range []string{b.cfg.db + "_platform", b.cfg.db + "_gateway"} {
		if err := pgExec(ctx, pgServer+"/postgres?sslmode=disable", "DROP DATABASE IF EXISTS "+db+" WITH (FORCE)"); err != nil {
			return err
		}
	}
	say("proxy", "starting fake provider, benchproxy, platform-backend, gateway (NATS_PREFIX=%s)", b.prefix)
	fake, err := b.ps.start("fake-provider", "bin/fake-provider", append(b.env(), "FAKE_PROVIDER_ADDR="+b.addr["fake"],
		"FAKE_PROVIDER_DELAY_MS=0", "FAKE_PROVIDER_CHUNKS=5", "FAKE_PROVIDER_CHUNK_DELAY_MS=0", "FAKE_PROVIDER_LOG_LEVEL=warn"))
	if err != nil {
		return err
	}
	type up struct {
		url string
		p   *proc
	}
	ups := []up{{"http://" + b.addr["fake"] + "/health", fake}}
	if !b.cfg.noBare {
		if b.bare, err = b.ps.start("benchproxy", "bin/benchproxy", append(b.env(), "BENCH_PROXY_ADDR="+b.addr["bare"],
			"BENCH_UPSTREAM=http://"+b.addr["fake"])); err != nil {
			return err
		}
		ups = append(ups, up{"http://" + b.addr["bare"] + "/health", b.bare})
	}
	plat, err := b.ps.start("platform-backend", "bin/platform-backend", b.env())
	if err != nil {
		return err
	}
	for _, w := range append(ups, up{"http://" + b.addr["platform_http"] + "/health", plat}) {
		if err := waitHTTP(ctx, w.url, w.p); err != nil {
			return err
		}
	}
	if err := b.startGateway(ctx); err != nil {
		return err
	}

	// Tenant + key. The free plan caps a key at 60 rpm, enterprise at 6000:
	// upgrade the tenant in the platform DB (no API for it), create the key
	// at the enterprise cap (key creation fetches the tenant context
	// afresh), then lift the key's limit in the gateway DB and restart the
	// gateway, which loads keys at start. The rate limiter still runs on
	// every request, it just never refuses.
	say("proxy", "setting up user, tenant (enterprise plan), provider credential, API key")
	P := "http://" + b.addr["platform_http"] + "/platform/api"
	G := "http://" + b.addr["gateway_http"] + "/trueportai-services"
	email := "bench-" + b.prefix + "@example.com"
	cred := map[string]string{"email": email, "password": "correct-horse-battery"}
	if _, err := api(ctx, "POST", P+"/global/auth/register", "", cred); err != nil {
		return err
	}
	login, err := api(ctx, "POST", P+"/global/auth/login", "", cred)
	if err != nil {
		return err
	}
	gt := str(login, "global_access_token")
	platformDB := pgServer + "/" + b.cfg.db + "_platform?sslmode=disable"
	tenant := func(name, slug, keyName string) (scoped, key string, err error) {
		t, err := api(ctx, "POST", P+"/global/tenants", gt, map[string]string{"name": name, "slug": slug})
		if err != nil {
			return "", "", err
		}
		tid := str(t, "id")
		sel, err := api(ctx, "POST", P+"/global/auth/select-tenant", gt, map[string]string{"tenant_id": tid})
		if err != nil {
			return "", "", err
		}
		scoped = str(sel, "scoped_access_token")
		if _, err := api(ctx, "PUT", P+"/service/configs/providers.openai.api_key", scoped, map[string]string{"value": "sk-upstream-bench"}); err != nil {
			return "", "", err
		}
		if err := pgExec(ctx, platformDB, "UPDATE tenants SET plan_id='enterprise' WHERE id=$1", tid); err != nil {
			return "", "", err
		}
		// The enterprise plan caps a key at 6000 rpm (keys above are
		// clamped): a limit override lifts the cap for this tenant.
		if err := pgExec(ctx, platformDB, `INSERT INTO tenant_limit_overrides (tenant_id, limits) VALUES ($1, '{"max_rpm_per_key":0}')`, tid); err != nil {
			return "", "", err
		}
		k, err := api(ctx, "POST", G+"/api/v1/keys", scoped, map[string]any{"name": keyName, "rpm_limit": 6000})
		if err != nil {
			return "", "", err
		}
		return scoped, str(k, "key"), nil
	}
	_, key, err := tenant("Bench", b.prefix, "bench")
	if err != nil {
		return err
	}
	// A second tenant with 10 policy rules of every type, none of which
	// matches the benchmark body: the cost of evaluating policies on clean
	// traffic.
	say("proxy", "setting up a second tenant with 10 policy rules")
	st2, pkey, err := tenant("Bench policies", b.prefix+"p", "bench-policies")
	if err != nil {
		return err
	}
	for _, r := range policyRules {
		if _, err := api(ctx, "POST", G+"/api/v1/policies", st2, json.RawMessage(r)); err != nil {
			return err
		}
	}
	if err := pgExec(ctx, pgServer+"/"+b.cfg.db+"_gateway?sslmode=disable", "UPDATE api_keys SET rpm_limit=100000000"); err != nil {
		return err
	}
	b.ps.stop("gateway", 10*time.Second)
	if err := b.startGateway(ctx); err != nil {
		return err
	}
	chat := G + "/openai/v1/chat/completions"
	hi := `{"model":"gpt-4o-mini","messages":[{"role":"user","content":"hi"}]}`
	var code int
	var limit string
	for range 50 { // the tenant context is warmed in the background
		code, limit = post(ctx, chat, key, hi)
		if code == 200 {
			break
		}
		_ = sleepCtx(ctx, 200*time.Millisecond)
	}
	if code != 200 || limit != "100000000" {
		return fmt.Errorf("gateway smoke call: got %d %q, want 200 and X-Ratelimit-Limit 100000000", code, limit)
	}
	for range 50 { // the policy tenant's key passes clean traffic
		if code, _ = post(ctx, chat, pkey, hi); code == 200 {
			break
		}
		_ = sleepCtx(ctx, 200*time.Millisecond)
	}
	if code != 200 {
		return fmt.Errorf("policy tenant smoke call: got %d, want 200", code)
	}
	// ... and its rules are live.
	if code, _ = post(ctx, chat, pkey, `{"model":"gpt-4o-mini","messages":[{"role":"user","content":"this is confidential"}]}`); code != 400 {
		return fmt.Errorf("policy tenant: a request matching a block rule got %d, want 400", code)
	}
	if b.cfg.layout == "split" {
		say("proxy", "starting the ingester process (GATEWAY_ROLE=ingester)")
		env := append(b.env(), "LOG_LEVEL=info", "GATEWAY_ROLE=ingester", "GATEWAY_HTTP_ADDR="+b.addr["ingester_http"], "GATEWAY_GRPC_ADDR=127.0.0.1:0",
			"GATEWAY_INTERNAL_ADDR="+b.addr["ingester_internal"])
		if b.ing, err = b.ps.start("ingester", "bin/gateway", env); err != nil {
			return err
		}
		if err := waitHTTP(ctx, "http://"+b.addr["ingester_http"]+"/trueportai-services/health", b.ing); err != nil {
			return err
		}
	}

	urls := map[string]string{
		"direct":  "http://" + b.addr["fake"] + "/openai/v1/chat/completions",
		"bare":    "http://" + b.addr["bare"] + "/openai/v1/chat/completions",
		"gateway": chat, "policies": chat,
	}
	// direct and bare carry the same key: the fake provider only checks that one is sent.
	keys := map[string]string{"direct": key, "bare": key, "gateway": key, "policies": pkey}
	for mode, body := range map[string]string{"json": jsonBody, "stream": streamBody} {
		for _, t := range []string{"direct", "bare", "gateway", "policies"} {
			r := request{url: urls[t], key: keys[t], body: []byte(body)}
			b.reqs[mode+"-"+t] = r
			if b.lua[mode+"-"+t], err = wrkScript(b.tmp, mode+"-"+t, r); err != nil {
				return err
			}
		}
	}
	return nil
}

// api calls a JSON API and decodes the answer; HTTP ≥ 400 is an error.
func api(ctx context.Context, method, url, token string, body any) (map[string]any, error) {
	js, err := json.Marshal(body)
	if err != nil {
		return nil, err
	}
	req, err := http.NewRequestWithContext(ctx, method, url, bytes.NewReader(js))
	if err != nil {
		return nil, err
	}
	req.Header.Set("content-type", "application/json")
	if token != "" {
		req.Header.Set("authorization", "Bearer "+token)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	data, _ := io.ReadAll(resp.Body)
	if resp.StatusCode >= 400 {
		return nil, fmt.Errorf("%s %s -> %d: %s", method, url, resp.StatusCode, data)
	}
	out := map[string]any{}
	if len(bytes.TrimSpace(data)) > 0 {
		if err := json.Unmarshal(data, &out); err != nil {
			return nil, fmt.Errorf("%s %s: %w", method, url, err)
		}
	}
	return out, nil
}

func str(m map[string]any, k string) string { s, _ := m[k].(string); return s }

// post sends a chat completion with key and returns the status and the
// X-Ratelimit-Limit header (0 on a transport error).
func post(ctx context.Context, url, key, body string) (int, string) {
	req, err := http.NewRequestWithContext(ctx, "POST", url, strings.NewReader(body))
	if err != nil {
		return 0, ""
	}
	req.Header.Set("content-type", "application/json")
	req.Header.Set("authorization", "Bearer "+key)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return 0, ""
	}
	defer resp.Body.Close()
	_, _ = io.Copy(io.Discard, resp.Body)
	return resp.StatusCode, resp.Header.Get("X-Ratelimit-Limit")
}

func pgExec(ctx context.Context, url, sql string, args ...any) error {
	conn, err := pgx.Connect(ctx, url)
	if err != nil {
		return err
	}
	defer conn.Close(ctx)
	_, err = conn.Exec(ctx, "SET client_min_messages = warning")
	if err == nil {
		_, err = conn.Exec(ctx, sql, args...)
	}
	if err != nil {
		return fmt.Errorf("%s: %w", sql, err)
	}
	return nil
}

// gatewayTicks is the CPU of the gateway process(es): the proxy, plus the
// ingester when split.
func (b *proxyBench) gatewayTicks() int64 {
	t := cpuTicks(b.gw.pid())
	if b.ing != nil {
		t += cpuTicks(b.ing.pid())
	}
	return t
}

// settle waits (up to 10 s) until the gateway is idle: after a heavy run its
// ingester is still draining the usage stream into Postgres, which would
// otherwise load the next target's run. Idle: the gateway below 5% of a
// core, and the whole machine (Postgres committing the last batches, NATS)
// below 20% of its cores.
func (b *proxyBench) settle(ctx context.Context) {
	ncpu := int64(runtime.NumCPU())
	for range 20 {
		a, ma := b.gatewayTicks(), boxTicks()
		if sleepCtx(ctx, 500*time.Millisecond) != nil {
			return
		}
		g, m := b.gatewayTicks()-a, boxTicks()-ma
		if g <= clkTck/40 && m <= clkTck*ncpu/10 {
			return
		}
	}
	say("proxy", "warning: gateway or machine still busy 10 s after a run")
}

// rssSampler records the peak VmRSS of pid every 100 ms until stopped.
type rssSampler struct {
	stop chan struct{}
	done chan int64
}

func sampleRSS(pid int) *rssSampler {
	s := &rssSampler{stop: make(chan struct{}), done: make(chan int64, 1)}
	go func() {
		var peak int64
		t := time.NewTicker(100 * time.Millisecond)
		defer t.Stop()
		for {
			if v := rssKB(pid); v > peak {
				peak = v
			}
			select {
			case <-s.stop:
				s.done <- peak
				return
			case <-t.C:
			}
		}
	}()
	return s
}

func (s *rssSampler) peakKB() int64 { close(s.stop); return <-s.done }

// runOne measures one (mode, load, target) and appends it to b.results.
func (b *proxyBench) runOne(ctx context.Context, rep int, mode, load, target string) error {
	var pid int
	switch target {
	case "gateway", "policies":
		pid = b.gw.pid()
	case "bare":
		pid = b.bare.pid()
	}
	key := mode + "-" + target
	var sampler *rssSampler
	var t0 int64
	b0 := boxTicks()
	if pid != 0 {
		sampler = sampleRSS(pid)
		t0 = cpuTicks(pid)
	}
	var res loadResult
	var err error
	if load == "max" {
		res, err = runWrk(ctx, b.cfg.threads, b.cfg.conns, b.cfg.closedDur, b.lua[key], b.reqs[key].url)
		if err != nil {
			if sampler != nil {
				sampler.peakKB()
			}
			return fmt.Errorf("%s/%s/%s: %w", mode, load, target, err)
		}
	} else {
		rate, _ := strconv.Atoi(load)
		res = runVegeta(ctx, rate, b.cfg.rateDur, b.reqs[key])
	}
	box := float64(boxTicks()-b0) * 1e6 / clkTck
	n := float64(max(res.n, 1))
	r := measurement{rep: rep, mode: mode, load: load, target: target, n: res.n, rps: res.rps, p50: res.p50ms, p99: res.p99ms,
		ok: res.ok, cpuUs: math.NaN(), boxUs: box / n}
	if pid != 0 {
		r.cpuUs = float64(cpuTicks(pid)-t0) * 1e6 / clkTck / n
		r.rssMB = float64(sampler.peakKB()) / 1024
	}
	b.results = append(b.results, r)
	say("proxy", "  %s/%s/%s rep %d: %d req/s, p50 %s ms, p99 %s ms, ok %d%%", mode, load, target, rep,
		int64(r.rps), num(r.p50, 3), num(r.p99, 3), int64(r.ok*100))
	if target == "gateway" || target == "policies" {
		b.settle(ctx)
	} else {
		_ = sleepCtx(ctx, 300*time.Millisecond)
	}
	return ctx.Err()
}

// targetsOf lists the targets of one scenario.
func (b *proxyBench) targetsOf(mode, load string) []string {
	t := []string{"direct", "bare", "gateway"}
	if mode == "json" && slices.Contains(b.cfg.policyLoads, load) {
		t = append(t, "policies")
	}
	return t
}

func (b *proxyBench) measure(ctx context.Context) error {
	say("proxy", "warming up (1 s closed loop per target and body)")
	for _, mode := range []string{"json", "stream"} {
		for _, t := range []string{"direct", "bare", "gateway"} {
			if _, err := runWrk(ctx, b.cfg.threads, b.cfg.conns, time.Second, b.lua[mode+"-"+t], b.reqs[mode+"-"+t].url); err != nil {
				return err
			}
		}
	}
	if len(b.cfg.policyLoads) > 0 {
		if _, err := runWrk(ctx, b.cfg.threads, b.cfg.conns, time.Second, b.lua["json-policies"], b.reqs["json-policies"].url); err != nil {
			return err
		}
	}
	b.settle(ctx)
	b.loadBefore = loadavg()
	var scenarios [][2]string
	for _, mode := range []string{"json", "stream"} {
		for _, r := range b.cfg.rates {
			scenarios = append(scenarios, [2]string{mode, r})
		}
		scenarios = append(scenarios, [2]string{mode, "max"})
	}
	for rep := 1; rep <= b.cfg.reps; rep++ {
		say("proxy", "round %d/%d", rep, b.cfg.reps)
		for _, sc := range scenarios {
			// Rotate which target goes first so no target always runs after the gateway.
			tl := b.targetsOf(sc[0], sc[1])
			for i := range tl {
				if err := b.runOne(ctx, rep, sc[0], sc[1], tl[(i+rep-1)%len(tl)]); err != nil {
					return err
				}
			}
		}
	}
	b.loadAfter = loadavg()
	if b.cfg.perfDir != "" {
		return b.perf(ctx)
	}
	return nil
}

// usageCounters scrapes the gateway's publisher counters from /metrics on
// its internal listener.
func (b *proxyBench) usageCounters(ctx context.Context) (pub, spooled, lost int64, err error) {
	req, _ := http.NewRequestWithContext(ctx, "GET", "http://"+b.addr["gateway_internal"]+"/metrics", nil)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return 0, 0, 0, err
	}
	defer resp.Body.Close()
	fams, err := promFamilies(resp.Body)
	if err != nil {
		return 0, 0, 0, err
	}
	get := func(name string) int64 {
		if f, ok := fams[name]; ok && len(f.Metric) > 0 && f.Metric[0].Counter != nil {
			return int64(f.Metric[0].Counter.GetValue())
		}
		return -1
	}
	pub, spooled, lost = get("trueport_usage_events_published_total"), get("trueport_usage_events_spooled_total"), get("trueport_usage_events_lost_total")
	if pub < 0 || spooled < 0 || lost < 0 {
		return 0, 0, 0, fmt.Errorf("/metrics lacks the trueport_usage_events_{published,spooled,lost}_total counters")
	}
	return pub, spooled, lost, nil
}

func promFamilies(r io.Reader) (map[string]*dto.MetricFamily, error) {
	p := expfmt.NewTextParser(model.UTF8Validation)
	return p.TextToMetricFamilies(r)
}

// finish reads the usage counters, stops the gateway gracefully, waits for
// the ingestion to finish, and renders the report.
func (b *proxyBench) finish(ctx context.Context, started time.Time) (string, error) {
	gwHWM := hwmKB(b.gw.pid())
	var ingHWM int64
	if b.ing != nil {
		ingHWM = hwmKB(b.ing.pid())
	}
	gwIdle := rssKB(b.gw.pid())
	bareHWM := hwmKB(b.bare.pid())

	// The publisher's counters once they stop moving (it flushes a batch
	// within milliseconds of the last request), then a graceful stop.
	b.settle(ctx)
	var pub, spooled, lost int64
	for i := range 20 {
		p, s, l, err := b.usageCounters(ctx)
		if err != nil {
			return "", err
		}
		if i > 0 && p == pub && s == spooled && l == lost {
			break
		}
		pub, spooled, lost = p, s, l
		_ = sleepCtx(ctx, 500*time.Millisecond)
	}
	say("proxy", "stopping the gateway (graceful: flushes usage events)")
	b.ps.stop("gateway", 40*time.Second)

	// The ingester (in its own process when split, or already stopped with
	// the gateway) may still be draining: wait until the row count reaches
	// the published count or stops moving.
	rows, err := countRows(ctx)
	if err != nil {
		return "", err
	}
	if b.ing != nil {
		for range 60 {
			if rows == pub || sleepCtx(ctx, time.Second) != nil {
				break
			}
			n, err := countRows(ctx)
			if err != nil {
				return "", err
			}
			if n == rows && n != 0 {
				_ = sleepCtx(ctx, 2*time.Second)
				if n2, _ := countRows(ctx); n2 == n {
					break
				}
			}
			rows = n
		}
		rows, _ = countRows(ctx)
		b.ps.stop("ingester", 10*time.Second)
	}
	var gwReqs int64
	for _, r := range b.results {
		if r.target == "gateway" {
			gwReqs += r.n
		}
	}
	m := thisMachine()
	spoolNote := "spooled none to disk"
	if spooled != 0 {
		spoolNote = fmt.Sprintf("**spooled %d to disk on the request path** (write + fsync each: its in-memory queue was full)", spooled)
	}
	cmdline := "`make bench`"
	if o := overrides("BENCH_"); o != "" {
		cmdline += " with " + o
	}
	gwEnv := "APP_ENV=dev"
	for _, e := range b.cfg.gatewayEnv {
		gwEnv += ", " + e
	}
	layout := "usage publisher + ingester in the gateway process"
	if b.ing != nil {
		layout = fmt.Sprintf("split layout: the proxy process (GATEWAY_ROLE=proxy) publishes usage, a second gateway process "+
			"(GATEWAY_ROLE=ingester) on the same machine consumes it (ingester VmHWM %.1f MB; its CPU counts in the machine column, not the proxy column)",
			float64(ingHWM)/1024)
	}
	var hdr strings.Builder
	fmt.Fprintf(&hdr, "- command: %s\n", cmdline)
	fmt.Fprintf(&hdr, "- date: %s; commit: %s\n", time.Now().UTC().Format("2006-01-02 15:04 UTC"), commit("services", "proto"))
	fmt.Fprintf(&hdr, "- CPU: %d cores (%s); memory: %d GiB total, %d GiB available\n", m.cores, m.cpuModel, m.memTotal, m.memAvail)
	fmt.Fprintf(&hdr, "- %s\n", goVersion())
	fmt.Fprintf(&hdr, "- load average (1/5/15 min) before the rounds: %s; after: %s\n", b.loadBefore, b.loadAfter)
	fmt.Fprintf(&hdr, "- load generators: vegeta %s (library, fixed rate, %s per run), wrk %s (closed loop, -t%d -c%d, %s per run); %d rounds, medians; targets rotated each round\n",
		vegetaVersion, b.cfg.rateDur, wrkVersion(), b.cfg.threads, b.cfg.conns, b.cfg.closedDur, b.cfg.reps)
	fmt.Fprintf(&hdr, "- all on one machine: load generator, fake provider, proxies, Postgres, NATS share the %d cores\n", m.cores)
	fmt.Fprintf(&hdr, "- gateway: %s, %s; gateway VmHWM %.1f MB, VmRSS at the end %.1f MB; benchproxy VmHWM %.1f MB\n",
		gwEnv, layout, float64(gwHWM)/1024, float64(gwIdle)/1024, float64(bareHWM)/1024)
	fmt.Fprintf(&hdr, "- usage events: %d gateway requests in the measured runs (plus warm-up); the publisher sent %d to JetStream from its queue, %s, lost %d; %d rows ingested into usage_logs by the end\n",
		gwReqs, pub, spoolNote, lost, rows)
	fmt.Fprintf(&hdr, "- wall time of the whole run: %d s", int(time.Since(started).Seconds()))

	sum := summarize(b.results)
	return "## Results of the last `make bench`\n\n" + hdr.String() + "\n\n" + resultTable(sum) + "\n\n" + tableNotes +
		"\n\n### Targets\n\n| target | goal | measured | verdict |\n|---|---|---|---|\n" + targetRows(sum, b.cfg.rates[0], gwHWM), nil
}

func countRows(ctx context.Context) (int64, error) {
	conn, err := pgx.Connect(ctx, pgServer+"/trueport_bench_gateway?sslmode=disable") // bench proxy's
	if err != nil {
		return 0, err
	}
	defer conn.Close(ctx)
	var n int64
	err = conn.QueryRow(ctx, "SELECT count(*) FROM usage_logs").Scan(&n)
	return n, err
}

// deleteStream removes the run's JetStream streams (usage and dead letters).
func (b *proxyBench) deleteStream() {
	nc, err := nats.Connect("nats://127.0.0.1:4222", nats.Timeout(2*time.Second))
	if err != nil {
		return
	}
	defer nc.Close()
	js, err := jetstream.New(nc)
	if err != nil {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	_ = js.DeleteStream(ctx, streamName(b.prefix))
	_ = js.DeleteStream(ctx, streamName(b.prefix)+"_DLQ")
}

// streamName is the usage stream of a NATS prefix: BENCH…_USAGE.
func streamName(prefix string) string {
	return strings.NewReplacer(".", "_", "-", "_").Replace(strings.ToUpper(prefix)) + "_USAGE"
}
