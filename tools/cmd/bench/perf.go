package main

// BENCH_PERF: after the rounds, perf profiles of benchproxy and the gateway
// under closed-loop load, machine-wide profiles by command, and syscalls per
// request counted with perf stat. Files in BENCH_PERF, not in the table.

import (
	"context"
	"encoding/csv"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"time"
)

// perfAlongside runs perf with args while load runs, then waits for perf.
func perfAlongside(ctx context.Context, args []string, load func() (loadResult, error)) (loadResult, error) {
	cmd := exec.CommandContext(ctx, "perf", args...)
	if err := cmd.Start(); err != nil {
		return loadResult{}, err
	}
	_ = sleepCtx(ctx, 200*time.Millisecond)
	res, err := load()
	_ = cmd.Wait()
	return res, err
}

func (b *proxyBench) perf(ctx context.Context) error {
	dir := b.cfg.perfDir
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	secs := int(b.cfg.closedDur.Round(time.Second) / time.Second)
	gw := b.gatewayTargets()[0] // the first layout, one key
	pidOf := func(target string) int {
		if g := b.gwOf(target); g != nil {
			return g.p.pid()
		}
		return b.bare.pid()
	}
	wrk := func(mode, target string, d time.Duration) func() (loadResult, error) {
		return func() (loadResult, error) {
			return runWrk(ctx, b.cfg.threads, b.cfg.conns, d, b.lua[mode+"-"+target], b.reqs[mode+"-"+target].url)
		}
	}
	report := func(data, out string, args ...string) {
		r, _ := exec.CommandContext(ctx, "perf", append([]string{"report", "-i", data, "--stdio"}, args...)...).Output()
		_ = os.WriteFile(out, r, 0o644)
	}
	writeWrk := func(p string, r loadResult) {
		_ = os.WriteFile(p, fmt.Appendf(nil, `{"requests":%d,"rps":%.1f,"p50_ms":%.3f,"p99_ms":%.3f}`+"\n", r.n, r.rps, r.p50ms, r.p99ms), 0o644)
	}
	for _, mode := range []string{"json", "stream"} {
		for _, target := range []string{"bare", gw} {
			say("proxy", "perf: %s closed loop on %s (%d s)", mode, target, secs)
			data := filepath.Join(b.tmp, "perf.data")
			r, err := perfAlongside(ctx, []string{"record", "-q", "-F", "999", "-g", "-p", strconv.Itoa(pidOf(target)), "-o", data, "--", "sleep", strconv.Itoa(secs)}, wrk(mode, target, b.cfg.closedDur))
			if err != nil {
				return err
			}
			base := filepath.Join(dir, "perf-"+mode+"-"+strings.ReplaceAll(target, ":", "_"))
			writeWrk(base+".wrk.json", r)
			report(data, base+".self.txt", "--no-children", "--sort", "symbol", "--percent-limit", "0.7", "-g", "none")
			report(data, base+".children.txt", "--children", "--sort", "symbol", "--percent-limit", "4", "-g", "none")
			if target == gw {
				b.settle(ctx)
			}
		}
	}
	// Where the whole machine's CPU goes (by command) under closed-loop load.
	for _, mode := range []string{"json", "stream"} {
		for _, target := range []string{"bare", gw} {
			say("proxy", "perf: machine-wide %s closed loop on %s (%d s)", mode, target, secs)
			data := filepath.Join(b.tmp, "perf-all.data")
			r, err := perfAlongside(ctx, []string{"record", "-q", "-a", "-F", "499", "-o", data, "--", "sleep", strconv.Itoa(secs)}, wrk(mode, target, b.cfg.closedDur))
			if err != nil {
				return err
			}
			base := filepath.Join(dir, "perf-all-"+mode+"-"+strings.ReplaceAll(target, ":", "_"))
			writeWrk(base+".wrk.json", r)
			report(data, base+".comm.txt", "--no-children", "--sort", "comm", "--percent-limit", "0.5")
			if target == gw {
				b.settle(ctx)
			}
		}
	}
	// Syscalls per request (perf stat on tracepoints), at 500 req/s and closed loop.
	var md strings.Builder
	md.WriteString("| body | load | target | write/req | read/req | fsync/req | futex/req |\n|---|---|---|---:|---:|---:|---:|\n")
	events := "syscalls:sys_enter_write,syscalls:sys_enter_read,syscalls:sys_enter_fsync,syscalls:sys_enter_futex"
	for _, mode := range []string{"json", "stream"} {
		for _, load := range []string{"500", "max"} {
			for _, target := range []string{"bare", gw} {
				csvPath := filepath.Join(b.tmp, "stat.csv")
				gen := wrk(mode, target, 3*time.Second)
				if load != "max" {
					gen = func() (loadResult, error) { return runVegeta(ctx, 500, 3*time.Second, b.reqs[mode+"-"+target]), nil }
				}
				r, err := perfAlongside(ctx, []string{"stat", "-x,", "-e", events, "-p", strconv.Itoa(pidOf(target)), "-o", csvPath, "--", "sleep", "3.5"}, gen)
				if err != nil {
					return err
				}
				c, err := perfStatCounts(csvPath)
				if err != nil {
					return err
				}
				n := float64(max(r.n, 1))
				fmt.Fprintf(&md, "| %s | %s | %s | %.1f | %.1f | %.2f | %.1f |\n", mode, load, target, c["write"]/n, c["read"]/n, c["fsync"]/n, c["futex"]/n)
				if target == gw {
					b.settle(ctx)
				}
			}
		}
	}
	if err := os.WriteFile(filepath.Join(dir, "syscalls.md"), []byte(md.String()), 0o644); err != nil {
		return err
	}
	say("proxy", "perf reports in %s", dir)
	return nil
}

// perfStatCounts reads perf stat -x, output: count by syscall name.
func perfStatCounts(p string) (map[string]float64, error) {
	f, err := os.Open(p)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	r := csv.NewReader(f)
	r.Comment = '#'
	r.FieldsPerRecord = -1
	recs, err := r.ReadAll()
	if err != nil {
		return nil, err
	}
	out := map[string]float64{}
	for _, rec := range recs {
		if len(rec) < 3 {
			continue
		}
		if _, name, ok := strings.Cut(rec[2], "sys_enter_"); ok {
			v, _ := strconv.ParseFloat(rec[0], 64)
			out[name] = v
		}
	}
	return out, nil
}
