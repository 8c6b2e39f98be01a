package main

import (
	"fmt"
	"slices"
	"strconv"
	"strings"
)

// summary is the medians of one (mode, load, target) over the rounds.
type summary struct {
	mode, load, target  string
	rps, p50, p99, ok   float64
	rssMB, cpuUs, boxUs float64
}

func summarize(rs []measurement) []summary {
	groups := map[[3]string][]measurement{}
	var keys [][3]string
	for _, r := range rs {
		k := [3]string{r.mode, r.load, r.target}
		if _, ok := groups[k]; !ok {
			keys = append(keys, k)
		}
		groups[k] = append(groups[k], r)
	}
	var out []summary
	for _, k := range keys {
		g := groups[k]
		col := func(f func(measurement) float64) []float64 {
			var v []float64
			for _, r := range g {
				v = append(v, f(r))
			}
			return v
		}
		s := summary{mode: k[0], load: k[1], target: k[2],
			rps: median(col(func(r measurement) float64 { return r.rps })), p50: median(col(func(r measurement) float64 { return r.p50 })),
			p99: median(col(func(r measurement) float64 { return r.p99 })), ok: slices.Min(col(func(r measurement) float64 { return r.ok })),
			rssMB: slices.Max(col(func(r measurement) float64 { return r.rssMB })), cpuUs: median(col(func(r measurement) float64 { return r.cpuUs })),
			boxUs: median(col(func(r measurement) float64 { return r.boxUs }))}
		out = append(out, s)
	}
	order := map[string]int{"direct": 0, "bare": 1, "gateway": 2, "policies": 3}
	loadKey := func(l string) float64 {
		if l == "max" {
			return 1e9
		}
		f, _ := strconv.ParseFloat(l, 64)
		return f
	}
	slices.SortStableFunc(out, func(a, b summary) int {
		if a.mode != b.mode {
			return strings.Compare(a.mode, b.mode)
		}
		if la, lb := loadKey(a.load), loadKey(b.load); la != lb {
			if la < lb {
				return -1
			}
			return 1
		}
		return order[a.target] - order[b.target]
	})
	return out
}

var targetLabel = map[string]string{"direct": "direct (fake provider)", "bare": "bare Go proxy", "gateway": "gateway", "policies": "gateway, 10 policy rules on"}

func resultTable(sum []summary) string {
	var t strings.Builder
	t.WriteString("| body | load | target | throughput req/s | p50 ms | p99 ms | ok % | proxy CPU µs/req | machine CPU µs/req | proxy peak RSS MB |\n")
	t.WriteString("|---|---|---|---:|---:|---:|---:|---:|---:|---:|\n")
	policies := false
	for _, s := range sum {
		load, box, rss := s.load+" req/s", "–", num(s.rssMB, 1)
		if s.load == "max" {
			load, box = "closed loop", num(s.boxUs, 0)
		}
		if s.target == "direct" {
			rss = "–"
		}
		policies = policies || s.target == "policies"
		fmt.Fprintf(&t, "| %s | %s | %s | %s | %s | %s | %s | %s | %s | %s |\n", s.mode, load, targetLabel[s.target],
			num(s.rps, 0), num(s.p50, 3), num(s.p99, 3), num(s.ok*100, 1), num(s.cpuUs, 0), box, rss)
	}
	if !policies {
		t.WriteString("| json | – | gateway, 10 policy rules on | not measured (BENCH_POLICY_LOADS is empty) | | | | | | |\n")
	}
	return strings.TrimRight(t.String(), "\n")
}

const tableNotes = `Throughput, p50 and p99 are medians over the rounds; ok % is the worst round. *proxy CPU µs/req* is the user+system CPU of the
proxy process (benchproxy or gateway, including the gateway's publisher and ingester goroutines) per request; *machine CPU
µs/req* (closed loop only, where the machine is saturated) is the busy CPU of the whole machine per request: load generator,
fake provider, proxy, NATS, Postgres, and anything else running (see the load average); *proxy peak RSS*
is the highest VmRSS sampled every 100 ms during the runs. *10 policy rules on* is the gateway with a key of a second tenant
that has 10 rules (secrets, PII redact, prompt injection, 2 keyword, 2 regex, model allowlist, max size, PII on responses),
none matching the body.`

// targetRows renders the verdicts against the goals.
func targetRows(sum []summary, rate string, gwHWMKB int64) string {
	get := func(mode, load, target string) *summary {
		for i := range sum {
			if sum[i].mode == mode && sum[i].load == load && sum[i].target == target {
				return &sum[i]
			}
		}
		return nil
	}
	verdict := func(ok bool) string {
		if ok {
			return "**met**"
		}
		return "**missed**"
	}
	var t strings.Builder
	ratio := func(label string, gw, bare *summary) {
		if gw == nil || bare == nil {
			return
		}
		r := gw.rps / bare.rps
		v := verdict(r >= 0.9)
		if r < 0.9 {
			v += fmt.Sprintf(", short by %s points", num((0.9-r)*100, 0))
		}
		fmt.Fprintf(&t, "| %s | ≥ 0.90 | %s | %s |\n", label, num(r, 2), v)
	}
	added := func(label string, d float64, extra string) {
		v := verdict(d <= 0.1)
		if d > 0.1 {
			v += fmt.Sprintf(", over by %s ms", num(d-0.1, 3))
		}
		fmt.Fprintf(&t, "| %s | ≤ 0.100 ms | %s ms%s | %s |\n", label, num(d, 3), extra, v)
	}
	for _, m := range []string{"json", "stream"} {
		ratio(m+": gateway / bare proxy closed-loop throughput", get(m, "max", "gateway"), get(m, "max", "bare"))
	}
	for _, m := range []string{"json", "stream"} {
		if gw, bare := get(m, rate, "gateway"), get(m, rate, "bare"); gw != nil && bare != nil {
			added(fmt.Sprintf("%s: added p50 at %s req/s vs bare proxy", m, rate), gw.p50-bare.p50, "")
		}
	}
	mb := float64(gwHWMKB) / 1024
	v := verdict(mb <= 60)
	if mb > 60 {
		v += fmt.Sprintf(", over by %s MB", num(mb-60, 1))
	}
	fmt.Fprintf(&t, "| gateway peak RSS (VmHWM over the whole run) | ≤ 60 MB | %s MB | %s |\n", num(mb, 1), v)
	p500, pmax := get("json", rate, "policies"), get("json", "max", "policies")
	if p500 != nil {
		if bare, gw := get("json", rate, "bare"), get("json", rate, "gateway"); bare != nil && gw != nil {
			added(fmt.Sprintf("json, 10 policy rules on: added p50 at %s req/s vs bare proxy", rate), p500.p50-bare.p50,
				fmt.Sprintf(" (rules alone: %s ms)", num(p500.p50-gw.p50, 3)))
		}
	}
	if pmax != nil {
		ratio("json, 10 policy rules on: closed-loop throughput / bare proxy", pmax, get("json", "max", "bare"))
	}
	if p500 == nil && pmax == nil {
		t.WriteString("| 10 policy rules on | same goals | – | not measured (BENCH_POLICY_LOADS is empty) |\n")
	}
	return strings.TrimRight(t.String(), "\n")
}
