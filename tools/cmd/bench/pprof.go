package main

// BENCH_PPROF: after the rounds, profiles of each gateway layout from its
// internal listener (/debug/pprof) while a closed-loop JSON run loads it:
// CPU, block and mutex contention (the gateway runs with PPROF_BLOCK_RATE and
// PPROF_MUTEX_FRACTION set) and the heap in use at the end; then a CPU
// profile under a closed-loop stream run (*.stream.profile.pb.gz). For the GC's
// frequency, run with BENCH_GATEWAY_ENV=GODEBUG=gctrace=1 (the gateway's
// log, kept in the run's temp dir, then has one line per cycle).

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"
)

func (b *proxyBench) pprof(ctx context.Context) error {
	dir := b.cfg.pprofDir
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	secs := int(b.cfg.closedDur.Round(time.Second)/time.Second) - 1
	fetch := func(url, path string) error {
		req, _ := http.NewRequestWithContext(ctx, "GET", url, nil)
		resp, err := (&http.Client{Timeout: time.Duration(secs+30) * time.Second}).Do(req)
		if err != nil {
			return err
		}
		defer resp.Body.Close()
		if resp.StatusCode != 200 {
			return fmt.Errorf("%s: %s", url, resp.Status)
		}
		f, err := os.Create(path)
		if err != nil {
			return err
		}
		defer f.Close()
		_, err = io.Copy(f, resp.Body)
		return err
	}
	var targets []string
	for _, l := range b.cfg.layouts {
		targets = append(targets, gwTarget("gw", l, b.cfg.keyCounts[len(b.cfg.keyCounts)-1]))
	}
	for _, target := range targets {
		g := b.gwOf(target)
		base := filepath.Join(dir, "pprof-"+strings.ReplaceAll(target, ":", "_"))
		say("proxy", "pprof: json closed loop on %s (%d s)", target, secs)
		var wg sync.WaitGroup
		errs := make([]error, 3)
		for i, kind := range []string{"profile", "block", "mutex"} {
			wg.Go(func() {
				errs[i] = fetch("http://"+g.internal+"/debug/pprof/"+kind+"?seconds="+strconv.Itoa(secs), base+"."+kind+".pb.gz")
			})
		}
		_ = sleepCtx(ctx, 300*time.Millisecond)
		r, err := runWrk(ctx, b.cfg.threads, b.cfg.conns, b.cfg.closedDur, b.lua["json-"+target], b.reqs["json-"+target].url)
		wg.Wait()
		if err != nil {
			return err
		}
		for _, e := range errs {
			if e != nil {
				return e
			}
		}
		if err := fetch("http://"+g.internal+"/debug/pprof/heap", base+".heap.pb.gz"); err != nil {
			return err
		}
		_ = os.WriteFile(base+".wrk.json", fmt.Appendf(nil, `{"requests":%d,"rps":%.1f,"p50_ms":%.3f,"p99_ms":%.3f}`+"\n", r.n, r.rps, r.p50ms, r.p99ms), 0o644)
		b.settle(ctx)
		// A CPU profile of the stream closed loop too: with the json one, it
		// is what make pgo merges into the gateway's default.pgo.
		say("proxy", "pprof: stream closed loop on %s (%d s)", target, secs)
		var perr error
		wg.Go(func() {
			perr = fetch("http://"+g.internal+"/debug/pprof/profile?seconds="+strconv.Itoa(secs), base+".stream.profile.pb.gz")
		})
		_ = sleepCtx(ctx, 300*time.Millisecond)
		_, err = runWrk(ctx, b.cfg.threads, b.cfg.conns, b.cfg.closedDur, b.lua["stream-"+target], b.reqs["stream-"+target].url)
		wg.Wait()
		if err != nil {
			return err
		}
		if perr != nil {
			return perr
		}
		b.settle(ctx)
	}
	say("proxy", "pprof profiles in %s (go tool pprof -top FILE)", dir)
	return nil
}
