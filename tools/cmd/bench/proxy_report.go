package main

import (
	"fmt"
	"math"
	"slices"
	"strconv"
	"strings"
)

// summary is the medians of one (mode, load, target) over the rounds.
type summary struct {
	mode, load, target  string
	rps, p50, p99, ok   float64
	rssMB, cpuUs, boxUs float64
	anonMB              float64
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
			rssMB: slices.Max(col(func(r measurement) float64 { return r.rssMB })), anonMB: slices.Max(col(func(r measurement) float64 { return r.anonMB })), cpuUs: median(col(func(r measurement) float64 { return r.cpuUs })),
			boxUs: median(col(func(r measurement) float64 { return r.boxUs }))}
		out = append(out, s)
	}
	loadKey := func(l string) float64 {
		switch l {
		case "max":
			return 1e9
		case "ttfc":
			return 2e9
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
		return targetRank(a.target) - targetRank(b.target)
	})
	return out
}

// targetRank orders targets: direct, bare, then the gateways by layout
// (all first) and key count, then the policy targets.
func targetRank(t string) int {
	switch t {
	case "direct":
		return 0
	case "bare":
		return 1
	}
	kind, layout, keys, ok := parseTarget(t)
	if !ok {
		return 1 << 30
	}
	r := 1_000_000 + keys
	if layout == "proxy" {
		r += 100_000
	}
	if kind == "pol" {
		r += 10_000_000
	}
	return r
}

// targetLabel is a target's name in the tables.
func targetLabel(t string) string {
	switch t {
	case "direct":
		return "direct (fake provider)"
	case "bare":
		return "bare Go proxy"
	}
	kind, layout, keys, ok := parseTarget(t)
	if !ok {
		return t
	}
	if kind == "pol" {
		return "gateway, role " + layout + ", 10 policy rules on"
	}
	k := strconv.Itoa(keys) + " keys"
	if keys == 1 {
		k = "1 key"
	}
	return "gateway, role " + layout + ", " + k
}

func resultTable(sum []summary) string {
	var t strings.Builder
	t.WriteString("| body | load | target | throughput req/s | p50 ms | p99 ms | ok % | proxy CPU µs/req | machine CPU µs/req | proxy peak RSS MiB | of which anon MiB |\n")
	t.WriteString("|---|---|---|---:|---:|---:|---:|---:|---:|---:|---:|\n")
	policies := false
	for _, s := range sum {
		load, box, rss, anon := s.load+" req/s", "–", num(s.rssMB, 1), num(s.anonMB, 1)
		switch s.load {
		case "max":
			load, box = "closed loop", num(s.boxUs, 0)
		case "ttfc":
			load = "first chunk"
		}
		if s.target == "direct" {
			rss, anon = "–", "–"
		}
		kind, _, _, _ := parseTarget(s.target)
		policies = policies || kind == "pol"
		fmt.Fprintf(&t, "| %s | %s | %s | %s | %s | %s | %s | %s | %s | %s | %s |\n", s.mode, load, targetLabel(s.target),
			num(s.rps, 0), num(s.p50, 3), num(s.p99, 3), num(s.ok*100, 1), num(s.cpuUs, 0), box, rss, anon)
	}
	if !policies {
		t.WriteString("| json | – | gateway, 10 policy rules on | not measured (BENCH_POLICY_LOADS is empty) | | | | | | | |\n")
	}
	return strings.TrimRight(t.String(), "\n")
}

const tableNotes = `Throughput, p50 and p99 are medians over the rounds; ok % is the worst round. *proxy CPU µs/req* is the user+system CPU of the
proxy process (benchproxy or gateway, including the gateway's publisher and ingester goroutines) per request; *machine CPU
µs/req* (closed loop only, where the machine is saturated) is the busy CPU of the whole machine per request: load generator,
fake provider, proxy, NATS, Postgres, and anything else running (see the load average); *proxy peak RSS*
is the highest VmRSS sampled every 100 ms during the runs (MiB), *of which anon* the highest RssAnon (the process's own
memory: heap, stacks; the rest is the binary's code and read-only data mapped from its file). *10 policy rules on* is the gateway with a key of a second
tenant that has 10 rules (secrets, PII redact, prompt injection, 2 keyword, 2 regex, model allowlist, max size, PII on
responses), none matching the body. *first chunk*: p50/p99 are the time from sending a stream request to its first body
byte (the first SSE event), at a fixed rate.`

const targetNotes = `Each ratio or difference is computed within a round (the targets of a round run back to back) and the table gives
the median over the rounds. *Added* latency is the target's minus the fake provider's (direct); "added p50 − bare's" is
therefore the gateway's p50 minus the bare proxy's. Peak RSS is the highest VmRSS sampled during the closed-loop runs of
the layout's process.`

// pairedMedian is the median over the rounds of f(x, y), x and y being
// the measurements of targets tx and ty of the same round; ok=false when no
// round has both.
func pairedMedian(rs []measurement, mode, load, tx, ty string, f func(x, y measurement) float64) (float64, bool) {
	byRep := map[int][2]*measurement{}
	for i := range rs {
		r := &rs[i]
		if r.mode != mode || r.load != load {
			continue
		}
		p := byRep[r.rep]
		switch r.target {
		case tx:
			p[0] = r
		case ty:
			p[1] = r
		}
		byRep[r.rep] = p
	}
	var v []float64
	for _, p := range byRep {
		if p[0] != nil && p[1] != nil {
			v = append(v, f(*p[0], *p[1]))
		}
	}
	if len(v) == 0 {
		return 0, false
	}
	return median(v), true
}

// tripleMedian is pairedMedian over three targets of the same round.
func tripleMedian(rs []measurement, mode, load, tx, ty, tz string, f func(x, y, z measurement) float64) (float64, bool) {
	byRep := map[int][3]*measurement{}
	for i := range rs {
		r := &rs[i]
		if r.mode != mode || r.load != load {
			continue
		}
		p := byRep[r.rep]
		switch r.target {
		case tx:
			p[0] = r
		case ty:
			p[1] = r
		case tz:
			p[2] = r
		}
		byRep[r.rep] = p
	}
	var v []float64
	for _, p := range byRep {
		if p[0] != nil && p[1] != nil && p[2] != nil {
			v = append(v, f(*p[0], *p[1], *p[2]))
		}
	}
	if len(v) == 0 {
		return 0, false
	}
	return median(v), true
}

// targetRows renders the verdicts against issue 13's goals, for every
// layout and key count measured.
func targetRows(rs []measurement, layouts []string, keyCounts []int, rates []string) string {
	var t strings.Builder
	row := func(label, goal, measured string, ok bool) {
		v := "**met**"
		if !ok {
			v = "**missed**"
		}
		fmt.Fprintf(&t, "| %s | %s | %s | %s |\n", label, goal, measured, v)
	}
	low, high := rates[0], rates[len(rates)-1]
	if slices.Contains(rates, "500") {
		low = "500"
	}
	if slices.Contains(rates, "2000") {
		high = "2000"
	}
	for _, l := range layouts {
		for _, k := range keyCounts {
			gw := gwTarget("gw", l, k)
			name := targetLabel(gw)
			for _, m := range []string{"json", "stream"} {
				if r, ok := pairedMedian(rs, m, "max", gw, "bare", func(x, y measurement) float64 { return x.rps / y.rps }); ok {
					row(m+", "+name+": closed-loop throughput / bare proxy", "≥ 0.95", num(r, 2), r >= 0.95)
				}
			}
			for _, m := range []string{"json", "stream"} {
				if d, ok := pairedMedian(rs, m, low, gw, "bare", func(x, y measurement) float64 { return x.p50 - y.p50 }); ok {
					row(fmt.Sprintf("%s, %s: added p50 at %s req/s − bare proxy's", m, name, low), "≤ 0.05 ms", num(d, 3)+" ms", d <= 0.05)
				}
			}
			for _, m := range []string{"json", "stream"} {
				if r, ok := tripleMedian(rs, m, high, gw, "bare", "direct", func(x, y, z measurement) float64 {
					return (x.p99 - z.p99) / math.Max(y.p99-z.p99, 0.001)
				}); ok {
					row(fmt.Sprintf("%s, %s: added p99 at %s req/s / bare proxy's", m, name, high), "≤ 1.5", num(r, 2), r <= 1.5)
				}
			}
			if d, ok := pairedMedian(rs, "stream", "ttfc", gw, "bare", func(x, y measurement) float64 { return x.p50 - y.p50 }); ok {
				row("stream, "+name+": time to first chunk p50 − bare proxy's", "≤ 0.05 ms", num(d, 3)+" ms", d <= 0.05)
			}
		}
		var peak, anon float64
		seen := false
		for _, r := range rs {
			if _, layout, _, ok := parseTarget(r.target); ok && layout == l && r.load == "max" {
				peak, anon, seen = math.Max(peak, r.rssMB), math.Max(anon, r.anonMB), true
			}
		}
		if seen {
			bound := 40.0
			if l == "proxy" {
				bound = 30
			}
			row("role "+l+": gateway peak RSS under the closed loop", "≤ "+num(bound, 0)+" MiB",
				num(peak, 1)+" MiB (anon "+num(anon, 1)+")", peak <= bound)
		}
	}
	pol := gwTarget("pol", layouts[0], 1)
	if r, ok := pairedMedian(rs, "json", "max", pol, "bare", func(x, y measurement) float64 { return x.rps / y.rps }); ok {
		row("json, "+targetLabel(pol)+": closed-loop throughput / bare proxy", "≥ 0.90", num(r, 2), r >= 0.9)
	}
	if d, ok := pairedMedian(rs, "json", low, pol, "bare", func(x, y measurement) float64 { return x.p50 - y.p50 }); ok {
		row(fmt.Sprintf("json, %s: added p50 at %s req/s − bare proxy's", targetLabel(pol), low), "(no goal)", num(d, 3)+" ms", true)
	}
	return strings.TrimRight(t.String(), "\n")
}
