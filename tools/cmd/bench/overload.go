package main

// bench overload: the gateway (GATEWAY_ROLE=proxy, with a GATEWAY_ROLE=ingester
// process beside it, as deployed) under a multiple of its sustainable
// closed-loop rate. First the sustainable rate: closed loop (a fixed number
// of clients, each sending its next request when the last is answered) of
// JSON chat completions against the fake provider. Then that rate times
// BENCH_OVERLOAD_FACTOR, open loop (rawload.go at a fixed rate: requests keep
// coming whatever the answers), for BENCH_OVERLOAD_DURATION. The gateway
// runs with GOMEMLIMIT = BENCH_OVERLOAD_MEMORY, as in Kubernetes (the
// container's memory limit), so PROXY_MAX_CONCURRENT and
// PROXY_MAX_BUFFERED_BYTES take their defaults from it; above them it
// answers a fast 503. The run checks what issue 11 asks: no process killed
// (every process still running, the kernel's oom_kill count unchanged), the
// gateway's peak RSS under the memory limit, the p99 of the 503s under 5 ms,
// every request answered (no client error or timeout). Figures go to stdout
// and to the bench-overload block of docs/benchmarks.md.
//
// Environment (defaults in brackets):
//
//	BENCH_OVERLOAD_CONNS       closed-loop clients for the sustainable rate [64]
//	BENCH_OVERLOAD_OPEN_CONNS  connections the open loop may use [4096: above PROXY_MAX_CONCURRENT's
//	                           default for 512 MiB, so that the gateway's bound, not the generator, refuses]
//	BENCH_OVERLOAD_MEASURE     length of the closed-loop measurement [20s]
//	BENCH_OVERLOAD_FACTOR      multiple of the sustainable rate offered [3]
//	BENCH_OVERLOAD_DURATION    length of the overload [60s]
//	BENCH_OVERLOAD_MEMORY      the gateway's memory limit in MiB: GOMEMLIMIT and the RSS bound [512]
//	BENCH_OVERLOAD_GATEWAY_ENV extra VAR=value words for the gateway (e.g. PROXY_MAX_CONCURRENT=256)
//	BENCH_OVERLOAD_UPSTREAM_DELAY the fake provider's delay before it answers [0: the gateway is
//	                           CPU-bound]; with a delay (an LLM's seconds) the gateway's concurrency bound
//	                           is its capacity: set BENCH_OVERLOAD_CONNS to PROXY_MAX_CONCURRENT, and the
//	                           figures go to their own block (bench-overload-delay)
//	BENCH_OVERLOAD_PORT_BASE   first of the 13 local ports used [18180]
//	BENCH_OVERLOAD_PROFILES    a directory: the gateway's goroutines (pprof, text) halfway
//	                           through the overload, its /metrics and the processes' logs at the end
//	BENCH_OUT                  markdown file to update [docs/benchmarks.md]; empty: stdout only

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"
)

type overloadConfig struct {
	conns        int
	openConns    int
	measure, dur time.Duration
	factor       float64
	memMiB       int
	delay        time.Duration
	gatewayEnv   []string
	base         int
	out          string
	profiles     string
}

func overloadConfigFromEnv() (overloadConfig, error) {
	var c overloadConfig
	var err error
	if c.conns, err = envInt("BENCH_OVERLOAD_CONNS", 64); err != nil {
		return c, err
	}
	if c.openConns, err = envInt("BENCH_OVERLOAD_OPEN_CONNS", 4096); err != nil {
		return c, err
	}
	if c.measure, err = envDuration("BENCH_OVERLOAD_MEASURE", "20s"); err != nil {
		return c, err
	}
	if c.dur, err = envDuration("BENCH_OVERLOAD_DURATION", "60s"); err != nil {
		return c, err
	}
	if c.factor, err = envFloat("BENCH_OVERLOAD_FACTOR", 3); err != nil {
		return c, err
	}
	if c.memMiB, err = envInt("BENCH_OVERLOAD_MEMORY", 512); err != nil {
		return c, err
	}
	if c.delay, err = envDuration("BENCH_OVERLOAD_UPSTREAM_DELAY", "0s"); err != nil {
		return c, err
	}
	if c.base, err = envInt("BENCH_OVERLOAD_PORT_BASE", 18180); err != nil {
		return c, err
	}
	c.gatewayEnv = strings.Fields(os.Getenv("BENCH_OVERLOAD_GATEWAY_ENV"))
	c.out = envSet("BENCH_OUT", "docs/benchmarks.md")
	c.profiles = os.Getenv("BENCH_OVERLOAD_PROFILES")
	return c, nil
}

// oomKills is the kernel's count of OOM kills (/proc/vmstat), -1 if unknown.
func oomKills() int64 {
	b, err := os.ReadFile("/proc/vmstat")
	if err != nil {
		return -1
	}
	for _, l := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(l, "oom_kill "); ok {
			n, _ := strconv.ParseInt(v, 10, 64)
			return n
		}
	}
	return -1
}

func benchOverload(ctx context.Context) (err error) {
	started := time.Now()
	oc, err := overloadConfigFromEnv()
	if err != nil {
		return err
	}
	mem := int64(oc.memMiB) << 20
	cfg := proxyConfig{reps: 1, conns: oc.conns, threads: 2, base: oc.base, layouts: []string{"proxy"}, keyCounts: []int{1}, db: "trueport_overload", noBare: true, upstreamDelay: oc.delay,
		gatewayEnv: append([]string{"GATEWAY_ROLE=proxy", "GOMEMLIMIT=" + strconv.FormatInt(mem, 10)}, oc.gatewayEnv...)}
	b, err := newStack("overload", "overload", "BENCH_OVERLOAD_PORT_BASE", cfg)
	if err != nil {
		return err
	}
	defer func() { b.close(err) }()
	g := b.gws["proxy"]
	if err := b.startAll(ctx); err != nil {
		return err
	}
	fake := b.ps.byName["fake-provider"]
	r := b.reqs["json-"+gwTarget("gw", "proxy", 1)]
	gw := g.http
	raw := rawRequest(gw, "/trueportai-services/openai/v1/chat/completions", r.keys[0], r.body)

	say("overload", "warming up (5 s closed loop, %d clients)", oc.conns)
	_ = rawLoad(ctx, gw, raw, 0, oc.conns, 5*time.Second)
	b.settle(ctx)
	loadBefore := loadavg()
	say("overload", "sustainable rate: closed loop, %d clients, %s", oc.conns, oc.measure)
	sus := rawLoad(ctx, gw, raw, 0, oc.conns, oc.measure)
	susRate := float64(sus.count(200)) / sus.elapsed.Seconds()
	if sus.count(200) < sus.sent*99/100 {
		return fmt.Errorf("closed loop: only %d of %d answered 200 (%v): not a sustainable load", sus.count(200), sus.sent, sus.errs)
	}
	say("overload", "  %.0f req/s answered 200, p50 %.1f ms, p99 %.1f ms", susRate, sus.pct(200, .5), sus.pct(200, .99))
	b.settle(ctx)

	offered := int(oc.factor * susRate)
	say("overload", "overload: %d req/s (%.1f x) open loop for %s", offered, oc.factor, oc.dur)
	oom0 := oomKills()
	rss := sampleRSS(g.p.pid())
	t0, c0, m0 := cpuTicks(g.p.pid()), cpuTicks(os.Getpid()), boxTicks()
	if oc.profiles != "" {
		go func() {
			if sleepCtx(ctx, oc.dur/2) == nil {
				saveURL("http://"+g.internal+"/debug/pprof/goroutine?debug=1", filepath.Join(oc.profiles, "goroutines-half.txt"))
				saveURL("http://"+g.internal+"/metrics", filepath.Join(oc.profiles, "metrics-half.txt"))
			}
		}()
	}
	ov := rawLoad(ctx, gw, raw, offered, oc.openConns, oc.dur)
	secs := ov.elapsed.Seconds() // the run and its last answers
	gwCPU := float64(cpuTicks(g.p.pid())-t0) / clkTck / secs
	clientCPU := float64(cpuTicks(os.Getpid())-c0) / clkTck / secs
	boxCPU := float64(boxTicks()-m0) / clkTck / secs
	peakKB, _ := rss.peakKB()
	hwm := hwmKB(g.p.pid())
	oom1 := oomKills()
	loadAfter := loadavg()

	pub, spooled, lost, _ := b.usageCounters(ctx, g)
	if oc.profiles != "" {
		saveURL("http://"+g.internal+"/metrics", filepath.Join(oc.profiles, "metrics-end.txt"))
		defer func() { // the logs so far, before the cleanup removes them
			_ = exec.Command("cp", "-r", filepath.Join(b.tmp, "logs"), oc.profiles).Run()
		}()
	}
	// Nobody died, and the gateway serves normally again.
	var dead []string
	for _, p := range []*proc{g.p, g.ing, fake} {
		if p.exited() {
			dead = append(dead, fmt.Sprintf("%s (%v)", p.name, p.err))
		}
	}
	recovered := "yes"
	if code, _ := post(ctx, r.url, r.keys[0], string(r.body)); code != 200 {
		recovered = fmt.Sprintf("no (%d)", code)
	}

	m := thisMachine()
	answered := ov.sent - ov.count(0)
	var verdicts []string
	check := func(ok bool, what string) {
		v := "**met**"
		if !ok {
			v = "**not met**"
		}
		verdicts = append(verdicts, fmt.Sprintf("| %s | %s |", what, v))
	}
	bound := float64(mem) / (1 << 20)
	peakMiB := float64(max(peakKB, hwm)) / 1024
	check(len(dead) == 0 && (oom0 < 0 || oom1 == oom0), "no process killed")
	check(peakMiB < bound, fmt.Sprintf("gateway peak RSS %.1f MiB under the %.0f MiB bound", peakMiB, bound))
	check(ov.count(503) > 0 && ov.pct(503, .99) < 5, fmt.Sprintf("p99 of the 503s %.2f ms under 5 ms (service time)", ov.pct(503, .99)))
	check(answered == ov.sent, fmt.Sprintf("every request answered (%d of %d sent)", answered, ov.sent))

	var codes []string
	for c := range ov.byCode {
		codes = append(codes, strconv.Itoa(int(c)))
	}
	slices.Sort(codes)
	var tbl strings.Builder
	fmt.Fprintf(&tbl, "| status | answers | share | service p50 ms | p90 | p95 | service p99 ms | service max ms | intended p99 ms |\n|---|---:|---:|---:|---:|---:|---:|---:|---:|\n")
	for _, cs := range codes {
		c, _ := strconv.Atoi(cs)
		l := ov.byCode[c]
		name := cs
		if c == 0 {
			name = "0 (no answer)"
		}
		fmt.Fprintf(&tbl, "| %s | %d | %.1f %% | %s | %s | %s | %s | %s | %s |\n", name, len(l), 100*float64(len(l))/float64(max(ov.sent, 1)),
			num(ov.pct(c, .5), 2), num(ov.pct(c, .9), 2), num(ov.pct(c, .95), 2), num(ov.pct(c, .99), 2), num(float64(l[len(l)-1])/1e6, 1), num(ov.ipct(c, .99), 1))
	}
	cmdline := "`make overload`"
	if o := overrides("BENCH_OVERLOAD_", "BENCH_OUT"); o != "" {
		cmdline += " with " + o
	}
	var rep strings.Builder
	title, marker, upstream := "", "bench-overload", "the fake provider (no delay)"
	if oc.delay > 0 {
		title, marker, upstream = fmt.Sprintf(", upstream answering in %s", oc.delay), "bench-overload-delay", fmt.Sprintf("the fake provider (answering after %s)", oc.delay)
	}
	fmt.Fprintf(&rep, "## Overload: %.0f× the sustainable closed-loop rate for %s%s (last `make overload`)\n\n", oc.factor, oc.dur, title)
	fmt.Fprintf(&rep, "- command: %s\n", cmdline)
	fmt.Fprintf(&rep, "- date: %s; commit: %s\n", time.Now().UTC().Format("2006-01-02 15:04 UTC"), commit("services", "proto", "tools"))
	fmt.Fprintf(&rep, "- CPU: %d cores (%s); memory: %d GiB total, %d GiB available; %s\n", m.cores, m.cpuModel, m.memTotal, m.memAvail, goVersion())
	fmt.Fprintf(&rep, "- load average (1/5/15 min) before the measurements: %s; after the overload: %s (other sessions share the machine)\n", loadBefore, loadAfter)
	fmt.Fprintf(&rep, "- gateway: GATEWAY_ROLE=proxy with GOMEMLIMIT=%d MiB (the Kubernetes memory limit; PROXY_MAX_CONCURRENT and PROXY_MAX_BUFFERED_BYTES "+
		"from it: %d and %d MiB)%s; a GATEWAY_ROLE=ingester process, %s, Postgres, NATS and the load generator "+
		"(tools/cmd/bench/rawload.go: prepared requests on keep-alive connections, in this process) on the same cores\n",
		oc.memMiB, min(max(mem/(256<<10), 256), 65536), mem/4>>20, extraEnv(oc.gatewayEnv), upstream)
	fmt.Fprintf(&rep, "- sustainable rate: closed loop, %d clients, %s: %d requests, **%.0f req/s** answered 200 (%.1f %%), p50 %s ms, p99 %s ms\n",
		oc.conns, oc.measure, sus.sent, susRate, 100*float64(sus.count(200))/float64(max(sus.sent, 1)), num(sus.pct(200, .5), 2), num(sus.pct(200, .99), 2))
	fmt.Fprintf(&rep, "- overload: open loop at **%d req/s** (%.1f×) for %s over at most %d connections: %d requests sent (%.0f/s), %d not sent (no free connection within a second of their time); "+
		"CPU used (cores, of %d): gateway %.2f, load generator %.2f, whole machine %.2f\n",
		offered, oc.factor, oc.dur, oc.openConns, ov.sent, float64(ov.sent)/oc.dur.Seconds(), ov.notSent, m.cores, gwCPU, clientCPU, boxCPU)
	if n := len(ov.dials); n > 0 {
		fmt.Fprintf(&rep, "- connections opened during the overload: %d (TCP set-up p50 %s ms, p99 %s ms, max %s ms; a request's service time starts once its connection is open)\n",
			n, num(quantile(ov.dials, .5), 2), num(quantile(ov.dials, .99), 2), num(float64(ov.dials[n-1])/1e6, 1))
	}
	fmt.Fprintf(&rep, "- gateway RSS: peak %.1f MiB (VmRSS every 100 ms and VmHWM) against the %.0f MiB limit; kernel OOM kills during the run: %d; every process still running: %v; a request after the overload answered 200: %s\n",
		peakMiB, bound, max(oom1-oom0, 0), len(dead) == 0, recovered)
	fmt.Fprintf(&rep, "- usage events of the gateway: %d published to JetStream, %d spooled to disk (on the request path when its queue was full), %d lost\n", pub, spooled, lost)
	if len(ov.errs) > 0 {
		fmt.Fprintf(&rep, "- requests without an answer, by error: %v\n", ov.errs)
	}
	fmt.Fprintf(&rep, "- wall time of the whole run: %d s\n\n", int(time.Since(started).Seconds()))
	rep.WriteString(tbl.String())
	rep.WriteString("\n| target (issue 11) | verdict |\n|---|---|\n" + strings.Join(verdicts, "\n") + "\n")
	report := rep.String()
	fmt.Printf("\n%s\n", report)
	if err := writeBlock("overload", oc.out, marker, report, true); err != nil {
		return err
	}
	if len(dead) > 0 {
		return fmt.Errorf("processes died: %v", dead)
	}
	return nil
}

func extraEnv(env []string) string {
	if len(env) == 0 {
		return ""
	}
	return ", " + strings.Join(env, ", ")
}

// saveURL writes the body at url to path (diagnostics; errors ignored).
func saveURL(url, path string) {
	resp, err := (&http.Client{Timeout: 20 * time.Second}).Get(url)
	if err != nil {
		return
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	_ = os.WriteFile(path, b, 0o644)
}
