package main

// bench go: the Go micro-benchmarks of the hot path, the proxy handler per
// request (ns, bytes, allocations), policy evaluation of 10 rules on a 4 KB
// prompt (target ≤ 50 µs), response metering and, unless
// BENCH_GO_FIRST_CHUNK=0, the time to first chunk of a stream with one
// response rule against none (target: ≤ 1 ms added at p50). Each runs
// BENCH_GO_COUNT [5] times; the table shows the median ns/op and the B/op
// and allocs/op of the last run (exact). Written to stdout and into the
// bench-go block of BENCH_GO_OUT [docs/benchmarks.md] (empty: stdout only).

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"
)

// goBenchmarks are the benchmarks run: a function that locates the package,
// and the -bench expression.
var goBenchmarks = []struct{ fn, expr string }{
	{"BenchmarkProxyJSON", "^BenchmarkProxy(JSON|Stream|JSONPolicies|JSONTraced|StreamTraced)$"}, // Traced: tracing on, every request sampled
	{"BenchmarkEvaluate10Rules4KB", "^BenchmarkEvaluate10Rules4KB$"},
	{"BenchmarkMeterJSON", "^BenchmarkMeterJSON$/^(chat.json|long_100KB)$"},
	{"BenchmarkStreamFirstChunk", "^BenchmarkStreamFirstChunk$"},
}

// firstChunkUnit is BenchmarkStreamFirstChunk's p50 metric.
const firstChunkUnit = "ns/first-chunk-p50"

func benchGo(ctx context.Context) error {
	count, err := envInt("BENCH_GO_COUNT", 5)
	if err != nil {
		return err
	}
	out := envSet("BENCH_GO_OUT", "docs/benchmarks.md")
	firstChunk, err := envInt("BENCH_GO_FIRST_CHUNK", 1)
	if err != nil {
		return err
	}
	var lines []benchLine
	for _, b := range goBenchmarks {
		if b.fn == "BenchmarkStreamFirstChunk" && firstChunk == 0 {
			continue
		}
		dir, err := benchDir(b.fn)
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(gatewayDir, dir)
		pkg := "./" + filepath.ToSlash(rel)
		say("go", "go test -bench '%s' %s (count %d)", b.expr, pkg, count)
		cmd := exec.CommandContext(ctx, "go", "test", "-run", "^$", "-bench", b.expr, "-benchmem", "-count", fmt.Sprint(count), pkg)
		cmd.Dir = gatewayDir
		cmd.Stderr = os.Stderr
		stdout, err := cmd.Output()
		if err != nil {
			os.Stderr.Write(stdout)
			return fmt.Errorf("go test -bench %s: %w", pkg, err)
		}
		ls, err := readBench(bytes.NewReader(stdout))
		if err != nil {
			return err
		}
		if len(ls) == 0 {
			return fmt.Errorf("go test -bench '%s' %s: no results", b.expr, pkg)
		}
		lines = append(lines, ls...)
	}
	report := goReport(lines, count, time.Now().UTC())
	fmt.Println(report)
	return writeBlock("go", out, "bench-go", report, true)
}

// goReport renders the bench-go block from the result lines.
func goReport(lines []benchLine, count int, now time.Time) string {
	var order []string
	ns := map[string][]float64{}
	last := map[string]benchLine{}
	for _, l := range lines {
		if _, ok := ns[l.name]; !ok {
			order = append(order, l.name)
		}
		ns[l.name] = append(ns[l.name], l.values["ns/op"])
		last[l.name] = l
	}
	var table strings.Builder
	table.WriteString("| benchmark | ns/op (median) | B/op | allocs/op |\n|---|---:|---:|---:|\n")
	evalNs := 0.0
	for _, n := range order {
		m := median(ns[n])
		fmt.Fprintf(&table, "| %s | %.0f | %s | %s |\n", n, m, num(last[n].values["B/op"], 0), num(last[n].values["allocs/op"], 0))
		if strings.HasPrefix(n, "BenchmarkEvaluate10Rules4KB/") && m > evalNs {
			evalNs = m
		}
	}
	verdict := "met"
	if evalNs > 50000 {
		verdict = "**missed**"
	}
	m := thisMachine()
	return fmt.Sprintf("## Go micro-benchmarks (last `make bench`)\n\n"+
		"- command: `bench go` (tools/cmd/bench, run by `make bench`), %d runs each; date: %s; commit: %s\n"+
		"- %s; %d cores, shared with whatever else runs (ns/op varies by ±20%%; B/op and allocs/op are exact)\n"+
		"- policy evaluation, 10 rules, 4 KB prompt: slowest median %.1f µs, target ≤ 50 µs: %s\n%s"+
		"- allocations per proxied request are also held by `TestAllocsPerRequestBudget` in `make test`\n\n%s",
		count, now.Format("2006-01-02 15:04 UTC"), commit("services"), goVersion(), m.cores, evalNs/1000, verdict,
		firstChunkLine(lines), strings.TrimRight(table.String(), "\n"))
}

// firstChunkLine reports the time to first chunk of a stream with one
// response rule against none (medians of BenchmarkStreamFirstChunk's p50
// over the runs), or nothing when it did not run.
func firstChunkLine(lines []benchLine) string {
	var none, one []float64
	for _, l := range lines {
		v, ok := l.values[firstChunkUnit]
		switch {
		case !ok:
		case strings.HasSuffix(l.name, "/no_response_rule"):
			none = append(none, v)
		case strings.HasSuffix(l.name, "/one_response_rule"):
			one = append(one, v)
		}
	}
	if len(none) == 0 || len(one) == 0 {
		return ""
	}
	added := median(one) - median(none)
	verdict := "met"
	if added > 1e6 {
		verdict = "**missed**"
	}
	return fmt.Sprintf("- stream time to first chunk (p50): %.1f µs with one response rule, %.1f µs without (added %.1f µs), target ≤ 1 ms added: %s\n",
		median(one)/1000, median(none)/1000, added/1000, verdict)
}
