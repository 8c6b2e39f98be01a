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
//	BENCH_PORT_BASE       first of the 13 local ports used [18080]
//	BENCH_PROXY_DB        prefix of the run's databases, <prefix>_platform and
//	                      <prefix>_gateway, dropped and recreated [trueport_bench]
//	BENCH_GATEWAY_ENV     extra VAR=value words for the gateway, e.g. INGESTER_ENABLED=false
//	BENCH_LAYOUTS         gateway layouts measured side by side in the same rounds
//	                      ["all proxy"]: all is one gateway process with the
//	                      ingester in it (GATEWAY_ROLE=all, as make run starts it);
//	                      proxy is a GATEWAY_ROLE=proxy process whose usage stream
//	                      a second gateway process (GATEWAY_ROLE=ingester) consumes
//	                      (the production layout, both on this machine; the
//	                      ingester paced as role all's: coLocatedIngesterEnv). Each
//	                      layout has its own NATS prefix and ports.
//	                      BENCH_GATEWAY_LAYOUT=split|all (the old knob) picks one.
//	BENCH_KEYS            numbers of API keys the gateway targets rotate over ["1 400"]:
//	                      every request of a run uses the next key (wrk and vegeta
//	                      alike, for every target, so the clients' work is the same)
//	BENCH_FIRST_CHUNK_RATE  stream requests per second of the time-to-first-chunk
//	                      runs [500]; 0 skips them
//	BENCH_PPROF           a directory: after the rounds, CPU, block, mutex and heap
//	                      profiles of each gateway layout under closed-loop JSON load
//	                      (the gateway runs with PPROF_BLOCK_RATE/PPROF_MUTEX_FRACTION)
//	BENCH_PERF            a directory: after the rounds, profile benchproxy and the
//	                      gateway with perf under closed-loop load and count their
//	                      syscalls per request (files in that directory, not in the table)

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
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
	layouts               []string // "all", "proxy"
	keyCounts             []int
	firstChunkRate        int
	perfDir, pprofDir     string
	rawRates, rawPolicies string
	// db prefixes the run's databases (<db>_platform, <db>_gateway);
	// noBare: no benchproxy (bench overload).
	db     string
	noBare bool
	// upstreamDelay: the fake provider's delay before it answers.
	upstreamDelay time.Duration
	// freezeThreshold: the lateness of the freeze probe that counts as
	// the machine standing still (0: no probe); freezeReruns: how many
	// times a fixed-rate or first-chunk run that overlapped a freeze is
	// run again.
	freezeThreshold time.Duration
	freezeReruns    int
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
	c.rawPolicies = envSet("BENCH_POLICY_LOADS", "500 max")
	c.policyLoads = strings.Fields(c.rawPolicies)
	c.gatewayEnv = strings.Fields(os.Getenv("BENCH_GATEWAY_ENV"))
	switch l := os.Getenv("BENCH_GATEWAY_LAYOUT"); l {
	case "":
		c.layouts = strings.Fields(envOr("BENCH_LAYOUTS", "all proxy"))
	case "split":
		c.layouts = []string{"proxy"}
	case "all":
		c.layouts = []string{"all"}
	default:
		return c, fmt.Errorf("BENCH_GATEWAY_LAYOUT must be split or all")
	}
	if len(c.layouts) == 0 {
		return c, fmt.Errorf("BENCH_LAYOUTS is empty")
	}
	for _, l := range c.layouts {
		if l != "all" && l != "proxy" {
			return c, fmt.Errorf("BENCH_LAYOUTS: %q is not all or proxy", l)
		}
	}
	for _, k := range strings.Fields(envOr("BENCH_KEYS", "1 400")) {
		n, err := strconv.Atoi(k)
		if err != nil || n < 1 || n > 5000 {
			return c, fmt.Errorf("BENCH_KEYS: %q is not a key count from 1 to 5000", k)
		}
		c.keyCounts = append(c.keyCounts, n)
	}
	if len(c.keyCounts) == 0 {
		return c, fmt.Errorf("BENCH_KEYS is empty")
	}
	if c.firstChunkRate, err = envInt("BENCH_FIRST_CHUNK_RATE", 500); err != nil {
		return c, err
	}
	c.perfDir = os.Getenv("BENCH_PERF")
	c.pprofDir = os.Getenv("BENCH_PPROF")
	c.db = envOr("BENCH_PROXY_DB", "trueport_bench")
	ms, err := envInt("BENCH_FREEZE_MS", 15)
	if err != nil {
		return c, err
	}
	c.freezeThreshold = time.Duration(ms) * time.Millisecond
	if c.freezeReruns, err = envInt("BENCH_FREEZE_RERUNS", 3); err != nil {
		return c, err
	}
	return c, nil
}

// gwTarget names the gateway target of a layout and key count
// ("gw:all:400"); policies targets are "pol:LAYOUT:1".
func gwTarget(kind, layout string, keys int) string {
	return kind + ":" + layout + ":" + strconv.Itoa(keys)
}

// parseTarget splits a gateway target name; ok=false for direct and bare.
func parseTarget(t string) (kind, layout string, keys int, ok bool) {
	f := strings.Split(t, ":")
	if len(f) != 3 {
		return "", "", 0, false
	}
	n, err := strconv.Atoi(f[2])
	return f[0], f[1], n, err == nil
}

// gatewayProc is the gateway of one layout: its process, the ingester
// process of the proxy layout, its listeners and NATS prefix.
type gatewayProc struct {
	layout                   string
	p, ing                   *proc
	http, grpc, internal     string
	ingHTTP, ingInternal     string
	prefix                   string
	hwmKB, idleKB, ingHWMKB  int64
	published, spooled, lost int64
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
	anonMB              float64
	// schedP99 is the p99 of the gateway's goroutine scheduling latency
	// during the run (ms; NaN for other targets): the wait of a runnable
	// goroutine for a CPU, the part of the tail the process's own
	// contention adds. It is the upper bound of the bucket that holds it,
	// and the collector's buckets are coarse (0.92, 10.5, 117 ms: a
	// factor of about 11): it tells a millisecond from a stall, no more.
	schedP99 float64
	// reruns is how many runs of it were thrown away for a freeze of the
	// machine (freezeProbe) during their load.
	reruns int
	// from, to bound the load of the run.
	from, to time.Time
}

type proxyBench struct {
	cfg        proxyConfig
	ps         *procs
	tmp        string
	prefix     string
	addr       map[string]string
	gws        map[string]*gatewayProc // by layout
	bare       *proc
	reqs       map[string]request // "mode-target"
	lua        map[string]string
	results    []measurement
	loadBefore string
	loadAfter  string
	// probe watches for the machine's freezes (nil: not watching).
	probe *freezeProbe
}

// gwOf is the gateway process serving target (nil for direct and bare).
// gatewayDB is the URL of the run's gateway database.
func (b *proxyBench) gatewayDB() string {
	return pgServer + "/" + b.cfg.db + "_gateway?sslmode=disable"
}

func (b *proxyBench) gwOf(target string) *gatewayProc {
	if _, layout, _, ok := parseTarget(target); ok {
		return b.gws[layout]
	}
	return nil
}

// gatewayTargets lists the gateway targets (no policies) in layout, then key order.
func (b *proxyBench) gatewayTargets() []string {
	var t []string
	for _, l := range b.cfg.layouts {
		for _, k := range b.cfg.keyCounts {
			t = append(t, gwTarget("gw", l, k))
		}
	}
	return t
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
	b, err := newStack("proxy", "bench", "BENCH_PORT_BASE", cfg)
	if err != nil {
		return err
	}
	defer func() { b.close(err) }()
	// Linked statically, as make build links the gateway (and the images).
	say("proxy", "CGO_ENABLED=0 go build -o bin/benchproxy ./services/gateway/cmd/benchproxy")
	build := exec.CommandContext(ctx, "go", "build", "-o", "bin/benchproxy", "./services/gateway/cmd/benchproxy")
	build.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := build.CombinedOutput(); err != nil {
		return fmt.Errorf("build benchproxy: %w\n%s", err, out)
	}

	if err := b.startAll(ctx); err != nil {
		return err
	}
	if cfg.freezeThreshold > 0 {
		if b.probe, err = startFreezeProbe(cfg.freezeThreshold); err != nil {
			say("proxy", "%v: runs are not checked for the machine's freezes", err)
		} else {
			defer b.probe.close()
		}
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
		// The platform checks the gateways' service tokens at
		// GATEWAY_GRPC_ADDR: the first layout's gateway, the one startAll
		// runs first (the gateways share one key, kept in their database).
		// Each gateway process is given its own address after this.
		"GATEWAY_HTTP_ADDR=" + b.addr["gateway_http"], "GATEWAY_GRPC_ADDR=" + b.gws[b.cfg.layouts[0]].grpc,
		"PLATFORM_INTERNAL_ADDR=" + b.addr["platform_internal"], "GATEWAY_INTERNAL_ADDR=" + b.addr["gateway_internal"],
		"PLATFORM_DATABASE_URL=" + pgServer + "/" + b.cfg.db + "_platform?sslmode=disable",
		"GATEWAY_DATABASE_URL=" + b.gatewayDB(),
		"GATEWAY_SPOOL_DIR=" + filepath.Join(b.tmp, "spool"),
		"UPSTREAM_OPENAI_URL=" + fake + "/openai/v1", "UPSTREAM_ANTHROPIC_URL=" + fake + "/anthropic/v1",
		"UPSTREAM_GOOGLE_URL=" + fake + "/google/v1beta",
		"UPSTREAM_AZURE_URL_TEMPLATE=" + fake + "/azure/{resource}/openai/deployments/{deployment}",
	}
}

// coLocatedIngesterEnv paces the proxy layout's ingester process as role
// all's ingester is by default (one loop, at most half its time on batches,
// 128 KiB fetches, fetches deferred up to 5 s while usage messages arrive
// at 50 a second or more): flat out (two loops, 3 MiB fetches) it took both cores
// while it caught up, and the proxy beside it fell behind its fixed-rate
// load (a stream round at 2 000 req/s: p50 618 ms, and the process kept
// 116 MiB from then on; docs/benchmarks.md, "The proxy layout's ingester").
// BENCH_GATEWAY_ENV comes after it and can set it back.
var coLocatedIngesterEnv = []string{"INGESTER_WORKERS=1", "INGESTER_DUTY=0.5", "INGESTER_FETCH_BYTES=131072", "INGESTER_MAX_DELAY=5s"}

// layoutBinary is the copy of bin/gateway that layout's processes run, made
// in dir on first use. The layouts are alternatives (a deployment runs role
// all, or role proxy beside role ingester), run side by side here only to
// interleave their rounds. From one file they would share its page cache:
// the gateway keeps its read-only data out of the page cache except for the
// pages in use (package filepages), and the kernel maps cached neighbours
// of each fault, so each layout would map pages that only the others use.
// The proxy layout's two processes share one copy, as one deployment's
// processes on one node would.
func layoutBinary(dir, layout string) (string, error) {
	dst := filepath.Join(dir, "gateway-"+layout)
	if _, err := os.Stat(dst); err == nil {
		return dst, nil
	}
	src, err := os.Open("bin/gateway")
	if err != nil {
		return "", err
	}
	defer src.Close()
	out, err := os.OpenFile(dst+".tmp", os.O_CREATE|os.O_TRUNC|os.O_WRONLY, 0o755)
	if err != nil {
		return "", err
	}
	_, err = io.Copy(out, src)
	if err == nil {
		err = out.Sync() // clean pages: the gateway can drop them (package filepages)
	}
	if cerr := out.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(dst+".tmp", dst)
	}
	return dst, err
}

// startGateway starts the gateway of layout g (and the ingester process of
// the proxy layout when withIngester).
func (b *proxyBench) startGateway(ctx context.Context, g *gatewayProc, withIngester bool) error {
	env := append(b.env(), "LOG_LEVEL=info", "NATS_PREFIX="+g.prefix, "GATEWAY_HTTP_ADDR="+g.http, "GATEWAY_GRPC_ADDR="+g.grpc,
		"GATEWAY_INTERNAL_ADDR="+g.internal, "GATEWAY_ROLE="+g.layout)
	if b.cfg.pprofDir != "" {
		env = append(env, "PPROF_BLOCK_RATE=10000", "PPROF_MUTEX_FRACTION=10")
	}
	bin, err := layoutBinary(b.tmp, g.layout)
	if err != nil {
		return err
	}
	p, err := b.ps.start("gateway-"+g.layout, bin, append(env, b.cfg.gatewayEnv...))
	if err != nil {
		return err
	}
	g.p = p
	if err := waitHTTP(ctx, "http://"+g.http+"/trueportai-services/health", p); err != nil {
		return err
	}
	if !withIngester || g.layout != "proxy" {
		return nil
	}
	say(b.ps.who, "starting the ingester process of the proxy layout (GATEWAY_ROLE=ingester)")
	// The ingester shares the proxy's two cores here, as role all's does,
	// so it is paced as role all's is (coLocatedIngesterEnv); in production
	// it has nodes of its own and the role's defaults (two loops, flat out).
	ienv := append(b.env(), "LOG_LEVEL=info", "NATS_PREFIX="+g.prefix, "GATEWAY_ROLE=ingester", "GATEWAY_HTTP_ADDR="+g.ingHTTP,
		"GATEWAY_GRPC_ADDR=127.0.0.1:0", "GATEWAY_INTERNAL_ADDR="+g.ingInternal)
	ienv = append(ienv, coLocatedIngesterEnv...)
	if g.ing, err = b.ps.start("ingester", bin, append(ienv, b.cfg.gatewayEnv...)); err != nil {
		return err
	}
	return waitHTTP(ctx, "http://"+g.ingHTTP+"/trueportai-services/health", g.ing)
}

// startAll: fresh databases, the processes, the tenants and keys through the
// REST APIs, smoke checks.
func (b *proxyBench) startAll(ctx context.Context) error {
	for _, db := range []string{b.cfg.db + "_platform", b.cfg.db + "_gateway"} {
		if err := pgExec(ctx, pgServer+"/postgres?sslmode=disable", "DROP DATABASE IF EXISTS "+db+" WITH (FORCE)"); err != nil {
			return err
		}
	}
	say(b.ps.who, "starting fake provider, benchproxy, platform-backend, gateway (NATS_PREFIX=%s)", b.prefix)
	fake, err := b.ps.start("fake-provider", "bin/fake-provider", append(b.env(), "FAKE_PROVIDER_ADDR="+b.addr["fake"],
		"FAKE_PROVIDER_DELAY_MS="+strconv.FormatInt(b.cfg.upstreamDelay.Milliseconds(), 10), "FAKE_PROVIDER_CHUNKS=5", "FAKE_PROVIDER_CHUNK_DELAY_MS=0", "FAKE_PROVIDER_LOG_LEVEL=warn"))
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
	setup := b.gws[b.cfg.layouts[0]]
	if err := b.startGateway(ctx, setup, false); err != nil {
		return err
	}

	// Tenant + key. The free plan caps a key at 60 rpm, enterprise at 6000:
	// upgrade the tenant in the platform DB (no API for it), create the key
	// at the enterprise cap (key creation fetches the tenant context
	// afresh), then lift the key's limit in the gateway DB and restart the
	// gateway, which loads keys at start. The rate limiter still runs on
	// every request, it just never refuses.
	say(b.ps.who, "setting up user, tenant (enterprise plan), provider credential, API key")
	P := "http://" + b.addr["platform_http"] + "/platform/api"
	G := "http://" + setup.http + "/trueportai-services"
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
		// Without a maximum RPM per key (a key's limit is at most its plan's)
		// nor a monthly cap: the limiter and the quota still run on every
		// request, they never refuse.
		if err := pgExec(ctx, platformDB, `INSERT INTO tenant_limit_overrides (tenant_id, limits)
			VALUES ($1, '{"max_rpm_per_key":0,"monthly_requests":0}')`, tid); err != nil {
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
	say(b.ps.who, "setting up a second tenant with 10 policy rules")
	st2, pkey, err := tenant("Bench policies", b.prefix+"p", "bench-policies")
	if err != nil {
		return err
	}
	for _, r := range policyRules {
		if _, err := api(ctx, "POST", G+"/api/v1/policies", st2, json.RawMessage(r)); err != nil {
			return err
		}
	}
	if err := pgExec(ctx, b.gatewayDB(), "UPDATE api_keys SET rpm_limit=100000000"); err != nil {
		return err
	}
	// More keys of the first tenant, for the runs that rotate over many
	// (copies of the first key's row with their own secret, id and name).
	allKeys, err := addKeys(ctx, b.gatewayDB(), key, slices.Max(b.cfg.keyCounts)-1)
	if err != nil {
		return err
	}
	b.ps.stop("gateway-"+setup.layout, 10*time.Second)
	for _, l := range b.cfg.layouts {
		say(b.ps.who, "starting the gateway of layout %s (GATEWAY_ROLE=%s)", l, l)
		if err := b.startGateway(ctx, b.gws[l], true); err != nil {
			return err
		}
	}
	hi := `{"model":"gpt-4o-mini","messages":[{"role":"user","content":"hi"}]}`
	for _, l := range b.cfg.layouts {
		chat := "http://" + b.gws[l].http + "/trueportai-services/openai/v1/chat/completions"
		var code int
		var limit string
		for _, k := range []string{key, allKeys[len(allKeys)-1]} {
			for range 50 { // the tenant context is warmed in the background
				code, limit = post(ctx, chat, k, hi)
				if code == 200 {
					break
				}
				_ = sleepCtx(ctx, 200*time.Millisecond)
			}
			if code != 200 || limit != "100000000" {
				return fmt.Errorf("gateway (%s) smoke call: got %d %q, want 200 and X-Ratelimit-Limit 100000000", l, code, limit)
			}
		}
		for range 50 { // the policy tenant's key passes clean traffic
			if code, _ = post(ctx, chat, pkey, hi); code == 200 {
				break
			}
			_ = sleepCtx(ctx, 200*time.Millisecond)
		}
		if code != 200 {
			return fmt.Errorf("policy tenant smoke call (%s): got %d, want 200", l, code)
		}
		// ... and its rules are live.
		if code, _ = post(ctx, chat, pkey, `{"model":"gpt-4o-mini","messages":[{"role":"user","content":"this is confidential"}]}`); code != 400 {
			return fmt.Errorf("policy tenant (%s): a request matching a block rule got %d, want 400", l, code)
		}
	}

	for mode, body := range map[string]string{"json": jsonBody, "stream": streamBody} {
		for _, t := range []string{"direct", "bare"} {
			url := "http://" + b.addr["fake"] + "/openai/v1/chat/completions"
			if t == "bare" {
				url = "http://" + b.addr["bare"] + "/openai/v1/chat/completions"
			}
			// direct and bare rotate over the same keys: the fake provider
			// only checks that one is sent.
			if err := b.addRequest(mode, t, request{url: url, keys: allKeys, body: []byte(body)}); err != nil {
				return err
			}
		}
		for _, l := range b.cfg.layouts {
			chat := "http://" + b.gws[l].http + "/trueportai-services/openai/v1/chat/completions"
			for _, n := range b.cfg.keyCounts {
				if err := b.addRequest(mode, gwTarget("gw", l, n), request{url: chat, keys: allKeys[:n], body: []byte(body)}); err != nil {
					return err
				}
			}
			if err := b.addRequest(mode, gwTarget("pol", l, 1), request{url: chat, keys: []string{pkey}, body: []byte(body)}); err != nil {
				return err
			}
		}
	}
	return nil
}

func (b *proxyBench) addRequest(mode, target string, r request) error {
	var err error
	b.reqs[mode+"-"+target] = r
	b.lua[mode+"-"+target], err = wrkScript(b.tmp, strings.ReplaceAll(mode+"-"+target, ":", "_"), r)
	return err
}

// addKeys adds n keys to the tenant of the key first (rows copied from its
// own, each with a fresh secret) and returns first followed by them.
func addKeys(ctx context.Context, gatewayDB, first string, n int) ([]string, error) {
	all := []string{first}
	if n <= 0 {
		return all, nil
	}
	conn, err := pgx.Connect(ctx, gatewayDB)
	if err != nil {
		return nil, err
	}
	defer conn.Close(ctx)
	h := sha256.Sum256([]byte(first))
	for i := range n {
		raw := make([]byte, 20)
		_, _ = rand.Read(raw)
		secret := "sk-" + hex.EncodeToString(raw)
		kh := sha256.Sum256([]byte(secret))
		if _, err := conn.Exec(ctx, `INSERT INTO api_keys (tenant_id, env, name, prefix, key_hash, enabled, rpm_limit, created_by)
			SELECT tenant_id, env, $1, $2, $3, true, rpm_limit, created_by FROM api_keys WHERE key_hash = $4`,
			fmt.Sprintf("bench-%d", i+2), secret[3:11], kh[:], h[:]); err != nil {
			return nil, fmt.Errorf("add key: %w", err)
		}
		all = append(all, secret)
	}
	return all, nil
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

// gatewayTicks is the CPU of every gateway process: the proxies, plus the
// ingester of the proxy layout.
func (b *proxyBench) gatewayTicks() int64 {
	var t int64
	for _, g := range b.gws {
		t += cpuTicks(g.p.pid())
		if g.ing != nil {
			t += cpuTicks(g.ing.pid())
		}
	}
	return t
}

// settle waits until the gateways are idle: after a heavy run the ingester
// is still draining the usage stream into Postgres (in role all it may have
// deferred work to after the burst: INGESTER_DUTY), which would otherwise
// load the next target's run. Idle: the gateway processes below 5% of a
// core (up to 30 s), and the whole machine below 20% of its cores (up to
// 5 s: other sessions may keep it busy).
func (b *proxyBench) settle(ctx context.Context) {
	ncpu := int64(runtime.NumCPU())
	for i := range 60 {
		a, ma := b.gatewayTicks(), boxTicks()
		if sleepCtx(ctx, 500*time.Millisecond) != nil {
			return
		}
		g, m := b.gatewayTicks()-a, boxTicks()-ma
		if g <= clkTck/40 && (m <= clkTck*ncpu/10 || i >= 10) {
			return
		}
	}
	say(b.ps.who, "warning: gateway still busy 30 s after a run")
}

// rssSampler records the peak VmRSS of pid every 100 ms until stopped.
type rssSampler struct {
	stop chan struct{}
	done chan [2]int64
}

func sampleRSS(pid int) *rssSampler {
	s := &rssSampler{stop: make(chan struct{}), done: make(chan [2]int64, 1)}
	go func() {
		var peak, anon int64
		t := time.NewTicker(100 * time.Millisecond)
		defer t.Stop()
		for {
			peak, anon = max(peak, rssKB(pid)), max(anon, statusKB(pid, "RssAnon"))
			select {
			case <-s.stop:
				s.done <- [2]int64{peak, anon}
				return
			case <-t.C:
			}
		}
	}()
	return s
}

// peakKB stops the sampler: the peak VmRSS and the peak RssAnon (the
// process's own memory, without the file pages of its binary).
func (s *rssSampler) peakKB() (rss, anon int64) { close(s.stop); p := <-s.done; return p[0], p[1] }

// runOne runs one target of a scenario and records it. A fixed-rate or
// first-chunk run during which the machine froze (freezeProbe) is run
// again, up to freezeReruns times: its tail measured the machine, not the
// target (a 100 ms freeze delays 200 requests of a 2 000 req/s run, five
// times its p99's 40). The closed loop's throughput loses a freeze's share
// of its seconds; its runs are kept and their freezes counted.
func (b *proxyBench) runOne(ctx context.Context, rep int, mode, load, target string) error {
	for attempt := 0; ; attempt++ {
		r, err := b.attempt(ctx, rep, mode, load, target)
		if err != nil {
			return err
		}
		var frozen []freeze
		if b.probe != nil {
			frozen = b.probe.during(r.from, r.to)
		}
		r.reruns = attempt
		if len(frozen) > 0 {
			say("proxy", "  the machine froze during that run: %s", describeFreezes(frozen))
		}
		if len(frozen) == 0 || load == "max" || attempt >= b.cfg.freezeReruns {
			b.results = append(b.results, r)
			return ctx.Err()
		}
		say("proxy", "  running it again (%d of %d)", attempt+1, b.cfg.freezeReruns)
	}
}

// attempt runs one target of a scenario once.
func (b *proxyBench) attempt(ctx context.Context, rep int, mode, load, target string) (measurement, error) {
	var pid int
	var sched0 []bucket
	g := b.gwOf(target)
	if g != nil {
		pid = g.p.pid()
		sched0, _ = b.schedLatencies(ctx, g)
	} else if target == "bare" {
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
	from := time.Now()
	switch load {
	case "max":
		res, err = runWrk(ctx, b.cfg.threads, b.cfg.conns, b.cfg.closedDur, b.lua[key], b.reqs[key].url)
		if err != nil {
			if sampler != nil {
				sampler.peakKB()
			}
			return measurement{}, fmt.Errorf("%s/%s/%s: %w", mode, load, target, err)
		}
	case "ttfc":
		res = runFirstChunk(ctx, b.cfg.firstChunkRate, b.cfg.rateDur, b.reqs[key])
	default:
		rate, _ := strconv.Atoi(load)
		res = runVegeta(ctx, rate, b.cfg.rateDur, b.reqs[key])
	}
	to := time.Now()
	box := float64(boxTicks()-b0) * 1e6 / clkTck
	n := float64(max(res.n, 1))
	r := measurement{rep: rep, mode: mode, load: load, target: target, n: res.n, rps: res.rps, p50: res.p50ms, p99: res.p99ms,
		ok: res.ok, cpuUs: math.NaN(), boxUs: box / n, schedP99: math.NaN(), from: from, to: to}
	if sched0 != nil {
		if sched1, err := b.schedLatencies(ctx, g); err == nil {
			r.schedP99 = bucketQuantile(sched0, sched1, 0.99) * 1e3
		}
	}
	if pid != 0 {
		r.cpuUs = float64(cpuTicks(pid)-t0) * 1e6 / clkTck / n
		rss, anon := sampler.peakKB()
		r.rssMB, r.anonMB = float64(rss)/1024, float64(anon)/1024
	}
	say("proxy", "  %s/%s/%s rep %d: %d req/s, p50 %s ms, p99 %s ms, ok %d%%, RSS %s MiB, sched p99 %s ms", mode, load, target, rep,
		int64(r.rps), num(r.p50, 3), num(r.p99, 3), int64(r.ok*100), num(r.rssMB, 1), num(r.schedP99, 3))
	if g != nil {
		b.settle(ctx)
	} else {
		_ = sleepCtx(ctx, 300*time.Millisecond)
	}
	return r, ctx.Err()
}

// targetsOf lists the targets of one scenario.
func (b *proxyBench) targetsOf(mode, load string) []string {
	t := append([]string{"direct", "bare"}, b.gatewayTargets()...)
	if mode == "json" && slices.Contains(b.cfg.policyLoads, load) {
		t = append(t, gwTarget("pol", b.cfg.layouts[0], 1))
	}
	return t
}

func (b *proxyBench) measure(ctx context.Context) error {
	say("proxy", "warming up (1 s closed loop per target and body)")
	for _, mode := range []string{"json", "stream"} {
		for _, t := range b.targetsOf(mode, "warm-up") {
			if _, err := runWrk(ctx, b.cfg.threads, b.cfg.conns, time.Second, b.lua[mode+"-"+t], b.reqs[mode+"-"+t].url); err != nil {
				return err
			}
		}
	}
	if len(b.cfg.policyLoads) > 0 {
		t := gwTarget("pol", b.cfg.layouts[0], 1)
		if _, err := runWrk(ctx, b.cfg.threads, b.cfg.conns, time.Second, b.lua["json-"+t], b.reqs["json-"+t].url); err != nil {
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
	if b.cfg.firstChunkRate > 0 {
		scenarios = append(scenarios, [2]string{"stream", "ttfc"})
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
	if b.cfg.pprofDir != "" {
		if err := b.pprof(ctx); err != nil {
			return err
		}
	}
	if b.cfg.perfDir != "" {
		return b.perf(ctx)
	}
	return nil
}

// freezeNote says how the machine's freezes were watched and what they
// cost the run.
func (b *proxyBench) freezeNote() string {
	if b.probe == nil {
		return "machine freezes: not watched (BENCH_FREEZE_MS=0, or no SCHED_FIFO here)"
	}
	var kept []freeze
	reruns, frozenKept := 0, 0
	byTarget := map[string]int{}
	var targets []string
	for _, r := range b.results {
		frozen := b.probe.during(r.from, r.to)
		kept = append(kept, frozen...)
		reruns += r.reruns
		if r.reruns > 0 {
			if byTarget[r.target] == 0 {
				targets = append(targets, r.target)
			}
			byTarget[r.target] += r.reruns
		}
		if len(frozen) > 0 && r.load != "max" {
			frozenKept++
		}
	}
	var by []string
	for _, t := range targets {
		by = append(by, fmt.Sprintf("%s %d", t, byTarget[t]))
	}
	note := fmt.Sprintf("machine freezes (a SCHED_FIFO probe thread on every CPU woke ≥ %d ms late): %s in the whole run; "+
		"fixed-rate and first-chunk runs that overlapped one were run again (at most %d times): %d reruns",
		b.cfg.freezeThreshold.Milliseconds(), describeFreezes(b.probe.during(time.Time{}, time.Now())), b.cfg.freezeReruns, reruns)
	if len(by) > 0 {
		note += " (" + strings.Join(by, ", ") + ")"
	}
	note += fmt.Sprintf("; %d such runs kept with a freeze; freezes in the kept runs, closed loops included: %s", frozenKept, describeFreezes(kept))
	return note
}

// usageCounters scrapes the gateway's publisher counters from /metrics on
// its internal listener.
func (b *proxyBench) usageCounters(ctx context.Context, g *gatewayProc) (pub, spooled, lost int64, err error) {
	fams, err := scrapeMetrics(ctx, g)
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

// bucket is one cumulative bucket of a histogram.
type bucket struct {
	le    float64
	count uint64
}

// schedLatencies scrapes the gateway's scheduling latency histogram
// (go_sched_latencies_seconds) from /metrics on its internal listener.
func (b *proxyBench) schedLatencies(ctx context.Context, g *gatewayProc) ([]bucket, error) {
	fams, err := scrapeMetrics(ctx, g)
	if err != nil {
		return nil, err
	}
	f, ok := fams["go_sched_latencies_seconds"]
	if !ok || len(f.Metric) == 0 || f.Metric[0].Histogram == nil {
		return nil, fmt.Errorf("/metrics lacks go_sched_latencies_seconds")
	}
	var out []bucket
	for _, bk := range f.Metric[0].Histogram.Bucket {
		out = append(out, bucket{bk.GetUpperBound(), bk.GetCumulativeCount()})
	}
	// The +Inf bucket is the sample count.
	return append(out, bucket{math.Inf(1), f.Metric[0].Histogram.GetSampleCount()}), nil
}

// bucketQuantile is the q-quantile of what a cumulative histogram counted
// between two scrapes (the upper bound of the bucket that reaches it; NaN
// when nothing was counted or the buckets differ).
func bucketQuantile(before, after []bucket, q float64) float64 {
	if len(before) != len(after) || len(after) == 0 {
		return math.NaN()
	}
	total := after[len(after)-1].count - before[len(before)-1].count
	if total == 0 {
		return math.NaN()
	}
	for i := range after {
		if float64(after[i].count-before[i].count) >= q*float64(total) {
			return after[i].le
		}
	}
	return math.NaN()
}

// scrapeMetrics reads g's /metrics (its internal listener) by family name.
func scrapeMetrics(ctx context.Context, g *gatewayProc) (map[string]*dto.MetricFamily, error) {
	req, _ := http.NewRequestWithContext(ctx, "GET", "http://"+g.internal+"/metrics", nil)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	p := expfmt.NewTextParser(model.UTF8Validation)
	return p.TextToMetricFamilies(resp.Body)
}

// finish reads the usage counters, stops the gateways gracefully, waits for
// the ingestion to finish, and renders the report.
func (b *proxyBench) finish(ctx context.Context, started time.Time) (string, error) {
	for _, g := range b.gws {
		g.hwmKB, g.idleKB = hwmKB(g.p.pid()), rssKB(g.p.pid())
		if g.ing != nil {
			g.ingHWMKB = hwmKB(g.ing.pid())
		}
	}
	bareHWM := hwmKB(b.bare.pid())

	// The publishers' counters once they stop moving (each flushes a batch
	// within milliseconds of the last request), then graceful stops.
	b.settle(ctx)
	var pubAll int64
	for _, l := range b.cfg.layouts {
		g := b.gws[l]
		for i := range 20 {
			p, s, lo, err := b.usageCounters(ctx, g)
			if err != nil {
				return "", err
			}
			if i > 0 && p == g.published && s == g.spooled && lo == g.lost {
				break
			}
			g.published, g.spooled, g.lost = p, s, lo
			_ = sleepCtx(ctx, 500*time.Millisecond)
		}
		pubAll += g.published
		say("proxy", "stopping the gateway of layout %s (graceful: flushes usage events)", l)
		b.ps.stop("gateway-"+l, 40*time.Second)
	}

	// The ingesters (in their own process for the proxy layout, or already
	// stopped with the gateway of layout all) may still be draining: wait
	// until the row count reaches the published count or stops moving.
	rows, err := countRows(ctx, b.gatewayDB())
	if err != nil {
		return "", err
	}
	if g := b.gws["proxy"]; g != nil && g.ing != nil {
		for range 60 {
			if rows >= pubAll || sleepCtx(ctx, time.Second) != nil {
				break
			}
			n, err := countRows(ctx, b.gatewayDB())
			if err != nil {
				return "", err
			}
			if n == rows && n != 0 {
				_ = sleepCtx(ctx, 2*time.Second)
				if n2, _ := countRows(ctx, b.gatewayDB()); n2 == n {
					break
				}
			}
			rows = n
		}
		rows, _ = countRows(ctx, b.gatewayDB())
		b.ps.stop("ingester", 10*time.Second)
	}
	gwReqs := map[string]int64{}
	for _, r := range b.results {
		if g := b.gwOf(r.target); g != nil {
			gwReqs[g.layout] += r.n
		}
	}
	m := thisMachine()
	cmdline := "`make bench`"
	if o := overrides("BENCH_"); o != "" {
		cmdline += " with " + o
	}
	var hdr strings.Builder
	fmt.Fprintf(&hdr, "- command: %s\n", cmdline)
	fmt.Fprintf(&hdr, "- date: %s; commit: %s\n", time.Now().UTC().Format("2006-01-02 15:04 UTC"), commit("services", "proto"))
	fmt.Fprintf(&hdr, "- CPU: %d cores (%s); memory: %d GiB total, %d GiB available\n", m.cores, m.cpuModel, m.memTotal, m.memAvail)
	fmt.Fprintf(&hdr, "- %s\n", goVersion())
	fmt.Fprintf(&hdr, "- load average (1/5/15 min) before the rounds: %s; after: %s\n", b.loadBefore, b.loadAfter)
	fmt.Fprintf(&hdr, "- load generators: vegeta %s (library, fixed rate, %s per run), wrk %s (closed loop, -t%d -c%d, %s per run), "+
		"time to first chunk: a Go client at %d stream requests/s for %s (first body byte); %d rounds, medians; targets rotated each round; "+
		"every request of a run uses the next of the target's keys (1 or %d)\n",
		vegetaVersion, b.cfg.rateDur, wrkVersion(), b.cfg.threads, b.cfg.conns, b.cfg.closedDur, b.cfg.firstChunkRate, b.cfg.rateDur, b.cfg.reps,
		slices.Max(b.cfg.keyCounts))
	fmt.Fprintf(&hdr, "- all on one machine: load generator, fake provider, proxies, Postgres, NATS share the %d cores\n", m.cores)
	for _, l := range b.cfg.layouts {
		g := b.gws[l]
		env := "APP_ENV=dev, GATEWAY_ROLE=" + l
		for _, e := range b.cfg.gatewayEnv {
			env += ", " + e
		}
		what := "one process: proxy, usage publisher and ingester (as `make run` starts it)"
		if l == "proxy" {
			what = fmt.Sprintf("the proxy process publishes usage, a second gateway process (GATEWAY_ROLE=ingester, %s, VmHWM %.1f MiB) on the same machine "+
				"consumes it (its CPU counts in the machine column, not the proxy column)", strings.Join(coLocatedIngesterEnv, " "), float64(g.ingHWMKB)/1024)
		}
		spoolNote := "spooled none"
		if g.spooled != 0 {
			spoolNote = fmt.Sprintf("**spooled %d to disk**", g.spooled)
		}
		fmt.Fprintf(&hdr, "- layout %s (%s): %s; gateway VmHWM %.1f MiB, VmRSS at the end %.1f MiB; %d requests in the measured runs, "+
			"%d usage events acknowledged by JetStream (warm-up included), %s, lost %d\n",
			l, env, what, float64(g.hwmKB)/1024, float64(g.idleKB)/1024, gwReqs[l], g.published, spoolNote, g.lost)
	}
	fmt.Fprintf(&hdr, "- benchproxy VmHWM %.1f MiB; %d rows in usage_logs by the end (all layouts)\n", float64(bareHWM)/1024, rows)
	fmt.Fprintf(&hdr, "- %s\n", b.freezeNote())
	fmt.Fprintf(&hdr, "- wall time of the whole run: %d s", int(time.Since(started).Seconds()))

	sum := summarize(b.results)
	return "## Results of the last `make bench`\n\n" + hdr.String() + "\n\n" + resultTable(sum) + "\n\n" + tableNotes +
		"\n\n### Targets (issue 13)\n\n" + targetNotes + "\n\n| target | goal | measured | verdict |\n|---|---|---|---|\n" +
		targetRows(b.results, b.cfg.layouts, b.cfg.keyCounts, b.cfg.rates), nil
}

func countRows(ctx context.Context, gatewayDB string) (int64, error) {
	conn, err := pgx.Connect(ctx, gatewayDB)
	if err != nil {
		return 0, err
	}
	defer conn.Close(ctx)
	var n int64
	err = conn.QueryRow(ctx, "SELECT count(*) FROM usage_logs").Scan(&n)
	return n, err
}

// deleteStreams removes the run's JetStream streams (usage and dead
// letters of every layout's prefix).
func (b *proxyBench) deleteStreams() {
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
	for _, g := range b.gws {
		_ = js.DeleteStream(ctx, streamName(g.prefix))
		_ = js.DeleteStream(ctx, streamName(g.prefix)+"_DLQ")
	}
}

// streamName is the usage stream of a NATS prefix: BENCH…_USAGE.
func streamName(prefix string) string {
	return strings.NewReplacer(".", "_", "-", "_").Replace(strings.ToUpper(prefix)) + "_USAGE"
}
