package main

// bench overload: the gateway (GATEWAY_ROLE=proxy, with a GATEWAY_ROLE=ingester
// process beside it, as deployed) under a multiple of its sustainable
// closed-loop rate. First the sustainable rate: closed loop (a fixed number
// of clients, each sending its next request when the last is answered) of
// JSON chat completions against the fake provider. Then that rate times
// BENCH_OVERLOAD_FACTOR, open loop (vegeta at a fixed rate: requests keep
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
//	BENCH_OVERLOAD_MEASURE     length of the closed-loop measurement [20s]
//	BENCH_OVERLOAD_FACTOR      multiple of the sustainable rate offered [3]
//	BENCH_OVERLOAD_DURATION    length of the overload [60s]
//	BENCH_OVERLOAD_MEMORY      the gateway's memory limit in MiB: GOMEMLIMIT and the RSS bound [512]
//	BENCH_OVERLOAD_GATEWAY_ENV extra VAR=value words for the gateway (e.g. PROXY_MAX_CONCURRENT=256)
//	BENCH_OVERLOAD_PORT_BASE   first of the 10 local ports used [18180]
//	BENCH_OUT                  markdown file to update [docs/benchmarks.md]; empty: stdout only

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	vegeta "github.com/tsenart/vegeta/v12/lib"
)

type overloadConfig struct {
	conns        int
	measure, dur time.Duration
	factor       float64
	memMiB       int
	gatewayEnv   []string
	base         int
	out          string
}

func overloadConfigFromEnv() (overloadConfig, error) {
	var c overloadConfig
	var err error
	if c.conns, err = envInt("BENCH_OVERLOAD_CONNS", 64); err != nil {
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
	if c.base, err = envInt("BENCH_OVERLOAD_PORT_BASE", 18180); err != nil {
		return c, err
	}
	c.gatewayEnv = strings.Fields(os.Getenv("BENCH_OVERLOAD_GATEWAY_ENV"))
	c.out = envSet("BENCH_OUT", "docs/benchmarks.md")
	return c, nil
}

// codeStats are the answers of one load run, by status (0: no answer).
type codeStats struct {
	n       int
	elapsed time.Duration
	rate    float64 // the rate vegeta achieved
	byCode  map[uint16][]time.Duration
	errs    map[string]int // the first words of client errors
}

func (s codeStats) count(code uint16) int { return len(s.byCode[code]) }

// pct is the p-quantile latency of the answers with code, in ms.
func (s codeStats) pct(code uint16, p float64) float64 {
	l := s.byCode[code]
	if len(l) == 0 {
		return 0
	}
	return float64(l[min(len(l)-1, int(p*float64(len(l))))]) / 1e6
}

// attack runs vegeta: rate 0 with workers is a closed loop of that many
// clients; otherwise an open loop at rate per second.
func attack(ctx context.Context, r request, rate int, workers int, d time.Duration) codeStats {
	h := http.Header{}
	h.Set("Content-Type", "application/json")
	h.Set("Authorization", "Bearer "+r.key)
	tr := vegeta.NewStaticTargeter(vegeta.Target{Method: "POST", URL: r.url, Body: r.body, Header: h})
	opts := []func(*vegeta.Attacker){vegeta.KeepAlive(true), vegeta.Timeout(30 * time.Second)}
	if rate == 0 {
		opts = append(opts, vegeta.Workers(uint64(workers)), vegeta.MaxWorkers(uint64(workers)), vegeta.Connections(workers))
	}
	atk := vegeta.NewAttacker(opts...)
	st := codeStats{byCode: map[uint16][]time.Duration{}, errs: map[string]int{}}
	var m vegeta.Metrics
	res := atk.Attack(tr, vegeta.Rate{Freq: rate, Per: time.Second}, d, "overload")
	for {
		select {
		case <-ctx.Done():
			atk.Stop()
		case x, ok := <-res:
			if !ok {
				m.Close()
				for _, l := range st.byCode {
					slices.Sort(l)
				}
				st.elapsed, st.rate = m.Duration, m.Rate
				return st
			}
			m.Add(x)
			st.n++
			st.byCode[x.Code] = append(st.byCode[x.Code], x.Latency)
			if x.Code == 0 && x.Error != "" { // no answer (non-2xx statuses are vegeta errors too)
				e := x.Error
				if i := strings.LastIndex(e, ": "); i >= 0 {
					e = e[i+2:]
				}
				st.errs[e]++
			}
		}
	}
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
	for _, bin := range []string{"platform-backend", "gateway", "fake-provider"} {
		if st, err := os.Stat("bin/" + bin); err != nil || st.Mode()&0o111 == 0 {
			return fmt.Errorf("bin/%s is missing: run make build", bin)
		}
	}
	mem := int64(oc.memMiB) << 20
	cfg := proxyConfig{reps: 1, conns: oc.conns, threads: 2, base: oc.base, layout: "split", db: "trueport_overload", noBare: true,
		gatewayEnv: append([]string{"GATEWAY_ROLE=proxy", "GOMEMLIMIT=" + strconv.FormatInt(mem, 10)}, oc.gatewayEnv...)}
	b := &proxyBench{cfg: cfg, reqs: map[string]request{}, lua: map[string]string{}, addr: map[string]string{}}
	for i, n := range []string{"platform_http", "gateway_http", "fake", "bare", "platform_grpc", "gateway_grpc", "ingester_http",
		"platform_internal", "gateway_internal", "ingester_internal"} {
		a := fmt.Sprintf("127.0.0.1:%d", oc.base+i)
		if !portFree(a) {
			return fmt.Errorf("%s is in use (set BENCH_OVERLOAD_PORT_BASE)", a)
		}
		b.addr[n] = a
	}
	if b.tmp, err = os.MkdirTemp("", "trueport-overload."); err != nil {
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
	b.prefix = "overload" + hex.EncodeToString(rnd)
	b.ps = newProcs("overload", filepath.Join(b.tmp, "logs"))
	defer func() {
		b.ps.stopAll("gateway", "ingester", "platform-backend", "fake-provider")
		b.deleteStream()
		if err != nil {
			say("overload", "failed: %v; last log lines:", err)
			b.ps.tails(15)
		}
	}()
	if err := b.startAll(ctx); err != nil {
		return err
	}
	fake := b.ps.byName["fake-provider"]
	r := b.reqs["json-gateway"]

	say("overload", "warming up (5 s closed loop, %d clients)", oc.conns)
	_ = attack(ctx, r, 0, oc.conns, 5*time.Second)
	b.settle(ctx)
	loadBefore := loadavg()
	say("overload", "sustainable rate: closed loop, %d clients, %s", oc.conns, oc.measure)
	sus := attack(ctx, r, 0, oc.conns, oc.measure)
	susRate := float64(sus.count(200)) / sus.elapsed.Seconds()
	if sus.count(200) < sus.n*99/100 {
		return fmt.Errorf("closed loop: only %d of %d answered 200 (%v): not a sustainable load", sus.count(200), sus.n, sus.errs)
	}
	say("overload", "  %.0f req/s answered 200, p50 %.1f ms, p99 %.1f ms", susRate, sus.pct(200, .5), sus.pct(200, .99))
	b.settle(ctx)

	offered := int(oc.factor * susRate)
	say("overload", "overload: %d req/s (%.1f x) open loop for %s", offered, oc.factor, oc.dur)
	oom0 := oomKills()
	rss := sampleRSS(b.gw.pid())
	t0, c0, m0 := cpuTicks(b.gw.pid()), cpuTicks(os.Getpid()), boxTicks()
	ov := attack(ctx, r, offered, 0, oc.dur)
	gwCPU := float64(cpuTicks(b.gw.pid())-t0) / clkTck
	clientCPU := float64(cpuTicks(os.Getpid())-c0) / clkTck
	boxCPU := float64(boxTicks()-m0) / clkTck
	peakKB := rss.peakKB()
	hwm := hwmKB(b.gw.pid())
	oom1 := oomKills()
	loadAfter := loadavg()

	// Nobody died, and the gateway serves normally again.
	var dead []string
	for _, p := range []*proc{b.gw, b.ing, fake} {
		if p.exited() {
			dead = append(dead, fmt.Sprintf("%s (%v)", p.name, p.err))
		}
	}
	recovered := "yes"
	if code, _ := post(ctx, r.url, r.key, string(r.body)); code != 200 {
		recovered = fmt.Sprintf("no (%d)", code)
	}

	m := thisMachine()
	answered := ov.n - ov.count(0)
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
	check(ov.count(503) > 0 && ov.pct(503, .99) < 5, fmt.Sprintf("p99 of the 503s %.2f ms under 5 ms", ov.pct(503, .99)))
	check(answered == ov.n, fmt.Sprintf("every request answered (%d of %d)", answered, ov.n))

	var codes []string
	for c := range ov.byCode {
		codes = append(codes, strconv.Itoa(int(c)))
	}
	slices.Sort(codes)
	var tbl strings.Builder
	fmt.Fprintf(&tbl, "| status | answers | share | p50 ms | p99 ms | max ms |\n|---|---:|---:|---:|---:|---:|\n")
	for _, cs := range codes {
		c, _ := strconv.Atoi(cs)
		l := ov.byCode[uint16(c)]
		name := cs
		if c == 0 {
			name = "0 (no answer)"
		}
		fmt.Fprintf(&tbl, "| %s | %d | %.1f %% | %s | %s | %s |\n", name, len(l), 100*float64(len(l))/float64(max(ov.n, 1)),
			num(ov.pct(uint16(c), .5), 2), num(ov.pct(uint16(c), .99), 2), num(float64(l[len(l)-1])/1e6, 1))
	}
	cmdline := "`make overload`"
	if o := overrides("BENCH_OVERLOAD_", "BENCH_OUT"); o != "" {
		cmdline += " with " + o
	}
	var rep strings.Builder
	fmt.Fprintf(&rep, "## Overload: %.0f× the sustainable closed-loop rate for %s (last `make overload`)\n\n", oc.factor, oc.dur)
	fmt.Fprintf(&rep, "- command: %s\n", cmdline)
	fmt.Fprintf(&rep, "- date: %s; commit: %s\n", time.Now().UTC().Format("2006-01-02 15:04 UTC"), commit("services", "proto", "tools"))
	fmt.Fprintf(&rep, "- CPU: %d cores (%s); memory: %d GiB total, %d GiB available; %s\n", m.cores, m.cpuModel, m.memTotal, m.memAvail, goVersion())
	fmt.Fprintf(&rep, "- load average (1/5/15 min) before the measurements: %s; after the overload: %s (other sessions share the machine)\n", loadBefore, loadAfter)
	fmt.Fprintf(&rep, "- gateway: GATEWAY_ROLE=proxy with GOMEMLIMIT=%d MiB (the Kubernetes memory limit; PROXY_MAX_CONCURRENT and PROXY_MAX_BUFFERED_BYTES "+
		"from it: %d and %d MiB)%s; a GATEWAY_ROLE=ingester process, the fake provider (no delay), Postgres, NATS, the load generator (vegeta %s, in this process) on the same cores\n",
		oc.memMiB, min(max(mem/(256<<10), 256), 65536), mem/4>>20, extraEnv(oc.gatewayEnv), vegetaVersion)
	fmt.Fprintf(&rep, "- sustainable rate: closed loop, %d clients, %s: %d requests, **%.0f req/s** answered 200 (%.1f %%), p50 %s ms, p99 %s ms\n",
		oc.conns, oc.measure, sus.n, susRate, 100*float64(sus.count(200))/float64(max(sus.n, 1)), num(sus.pct(200, .5), 2), num(sus.pct(200, .99), 2))
	fmt.Fprintf(&rep, "- overload: open loop at **%d req/s** (%.1f×) for %s: vegeta achieved %.0f req/s, %d requests; CPU used (in cores, of %d): gateway %.2f, load generator %.2f, whole machine %.2f\n",
		offered, oc.factor, oc.dur, ov.rate, ov.n, m.cores, gwCPU/oc.dur.Seconds(), clientCPU/oc.dur.Seconds(), boxCPU/oc.dur.Seconds())
	fmt.Fprintf(&rep, "- gateway RSS: peak %.1f MiB (VmRSS every 100 ms and VmHWM) against the %.0f MiB limit; kernel OOM kills during the run: %d; every process still running: %v; a request after the overload answered 200: %s\n",
		peakMiB, bound, max(oom1-oom0, 0), len(dead) == 0, recovered)
	if len(ov.errs) > 0 {
		fmt.Fprintf(&rep, "- requests without an answer, by error: %v\n", ov.errs)
	}
	fmt.Fprintf(&rep, "- wall time of the whole run: %d s\n\n", int(time.Since(started).Seconds()))
	rep.WriteString(tbl.String())
	rep.WriteString("\n| target (issue 11) | verdict |\n|---|---|\n" + strings.Join(verdicts, "\n") + "\n")
	report := rep.String()
	fmt.Printf("\n%s\n", report)
	if err := writeBlock("overload", oc.out, "bench-overload", report, true); err != nil {
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
