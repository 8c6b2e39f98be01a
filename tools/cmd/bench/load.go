package main

// The two load generators: wrk for the closed loop (a C program: the Go
// side would otherwise share the 2 cores with a much heavier client) and
// vegeta, as a library, for fixed rates (wrk cannot hold a rate).

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"time"

	vegeta "github.com/tsenart/vegeta/v12/lib"
)

const vegetaVersion = "v12.13.0" // the module version in tools/go.mod

// loadResult is one load run as measured by the client: requests, rate,
// latency to the last body byte, and the share answered 2xx without error.
type loadResult struct {
	n             int64
	rps           float64
	p50ms, p99ms  float64
	ok            float64
	errors, non2x int64
}

// request is what every run sends: same body and headers for every target;
// each request carries the next of keys (Authorization: Bearer).
type request struct {
	url  string
	keys []string
	body []byte
}

// wrkScript writes a wrk Lua script that posts r, one request per key built
// once at start and sent in turn (the same client work for one key or
// many), and prints its summary as one JSON line prefixed BENCHJSON.
func wrkScript(dir, name string, r request) (string, error) {
	p := filepath.Join(dir, name+".lua")
	var keys strings.Builder
	for _, k := range r.keys {
		fmt.Fprintf(&keys, "%q,", k)
	}
	s := fmt.Sprintf(`local body = [==[%s]==]
local keys = {%s}
local reqs = {}
local i = 0
init = function(args)
  for j, k in ipairs(keys) do
    reqs[j] = wrk.format("POST", nil, {["Content-Type"] = "application/json", ["Authorization"] = "Bearer " .. k}, body)
  end
end
request = function()
  i = i + 1
  if i > #reqs then i = 1 end
  return reqs[i]
end
done = function(summary, latency, requests)
  local e = summary.errors
  io.write(string.format('BENCHJSON {"requests":%%d,"duration_us":%%d,"p50_us":%%d,"p99_us":%%d,"errors":%%d,"non2xx":%%d}\n',
    summary.requests, summary.duration, latency:percentile(50), latency:percentile(99),
    e.connect + e.read + e.write + e.timeout, e.status))
end
`, r.body, keys.String())
	return p, os.WriteFile(p, []byte(s), 0o644)
}

// parseWrk reads the BENCHJSON line of wrk's output.
func parseWrk(out []byte) (loadResult, error) {
	for _, l := range strings.Split(string(out), "\n") {
		js, ok := strings.CutPrefix(l, "BENCHJSON ")
		if !ok {
			continue
		}
		var w struct {
			Requests   int64 `json:"requests"`
			DurationUs int64 `json:"duration_us"`
			P50Us      int64 `json:"p50_us"`
			P99Us      int64 `json:"p99_us"`
			Errors     int64 `json:"errors"`
			Non2xx     int64 `json:"non2xx"`
		}
		if err := json.Unmarshal([]byte(js), &w); err != nil {
			return loadResult{}, fmt.Errorf("wrk summary %q: %w", js, err)
		}
		r := loadResult{n: w.Requests, p50ms: float64(w.P50Us) / 1000, p99ms: float64(w.P99Us) / 1000, errors: w.Errors, non2x: w.Non2xx}
		if w.DurationUs > 0 {
			r.rps = float64(w.Requests) / (float64(w.DurationUs) / 1e6)
		}
		r.ok = float64(w.Requests-w.Non2xx-w.Errors) / float64(max(w.Requests, 1))
		return r, nil
	}
	return loadResult{}, fmt.Errorf("wrk printed no BENCHJSON line")
}

// runWrk runs the closed loop: threads, conns, for d, with script.
func runWrk(ctx context.Context, threads, conns int, d time.Duration, script, url string) (loadResult, error) {
	cmd := exec.CommandContext(ctx, "wrk", fmt.Sprintf("-t%d", threads), fmt.Sprintf("-c%d", conns),
		fmt.Sprintf("-d%ds", int(d.Round(time.Second)/time.Second)), "-s", script, url)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		return loadResult{}, fmt.Errorf("wrk: %w: %s", err, stderr.String())
	}
	return parseWrk(out)
}

func wrkVersion() string {
	out, _ := exec.Command("wrk", "-v").CombinedOutput()
	f := strings.Fields(string(out))
	if len(f) >= 2 && f[0] == "wrk" {
		return f[1]
	}
	return "?"
}

// runVegeta sends r at rate requests per second for d (keep-alive, 30 s
// timeout: vegeta attack's defaults and the old script's flags).
func runVegeta(ctx context.Context, rate int, d time.Duration, r request) loadResult {
	var ts []vegeta.Target
	for _, k := range r.keys {
		h := http.Header{}
		h.Set("Content-Type", "application/json")
		h.Set("Authorization", "Bearer "+k)
		ts = append(ts, vegeta.Target{Method: "POST", URL: r.url, Body: r.body, Header: h})
	}
	tr := vegeta.NewStaticTargeter(ts...) // round robin over the keys
	// vegeta's own transport, but one the run can close: the connections
	// a run leaves idle (thousands when the target fell behind) would stay
	// open on the target for its idle timeout, and their memory would count
	// in the next runs' RSS.
	transport := &http.Transport{Proxy: http.ProxyFromEnvironment,
		DialContext:         (&net.Dialer{KeepAlive: 30 * time.Second}).DialContext,
		MaxIdleConnsPerHost: vegeta.DefaultConnections, MaxConnsPerHost: vegeta.DefaultMaxConnections}
	defer transport.CloseIdleConnections()
	atk := vegeta.NewAttacker(vegeta.Client(&http.Client{Transport: transport}), vegeta.KeepAlive(true), vegeta.Timeout(30*time.Second))
	var m vegeta.Metrics
	res := atk.Attack(tr, vegeta.Rate{Freq: rate, Per: time.Second}, d, "bench")
	for {
		select {
		case <-ctx.Done():
			atk.Stop()
		case x, ok := <-res:
			if !ok {
				m.Close()
				return loadResult{n: int64(m.Requests), rps: m.Throughput, p50ms: float64(m.Latencies.P50) / 1e6,
					p99ms: float64(m.Latencies.P99) / 1e6, ok: m.Success}
			}
			m.Add(x)
		}
	}
}

// runFirstChunk sends r's stream requests at rate per second for d (open
// loop, keep-alive) and measures each one's time to the first body byte:
// the first SSE event a client sees. p50/p99 are of that time; ok is the
// share answered 200 whose body was read to its end.
func runFirstChunk(ctx context.Context, rate int, d time.Duration, r request) loadResult {
	client := &http.Client{Timeout: 30 * time.Second, Transport: &http.Transport{MaxIdleConns: 1024, MaxIdleConnsPerHost: 1024,
		IdleConnTimeout: 90 * time.Second, DisableCompression: true}}
	defer client.CloseIdleConnections()
	var mu sync.Mutex
	var firsts []time.Duration
	var okN int64
	var wg sync.WaitGroup
	tick := time.NewTicker(time.Second / time.Duration(rate))
	defer tick.Stop()
	start := time.Now()
	sent := 0
	for time.Since(start) < d && ctx.Err() == nil {
		<-tick.C
		key := r.keys[sent%len(r.keys)]
		sent++
		wg.Go(func() {
			req, err := http.NewRequestWithContext(ctx, "POST", r.url, bytes.NewReader(r.body))
			if err != nil {
				return
			}
			req.Header.Set("Content-Type", "application/json")
			req.Header.Set("Authorization", "Bearer "+key)
			t0 := time.Now()
			resp, err := client.Do(req)
			if err != nil {
				return
			}
			defer resp.Body.Close()
			var buf [512]byte
			n, err := resp.Body.Read(buf[:])
			first := time.Since(t0)
			if n == 0 && err != nil {
				return
			}
			_, err = io.Copy(io.Discard, resp.Body)
			mu.Lock()
			firsts = append(firsts, first)
			if err == nil && resp.StatusCode == http.StatusOK {
				okN++
			}
			mu.Unlock()
		})
	}
	elapsed := time.Since(start)
	wg.Wait()
	res := loadResult{n: int64(sent), rps: float64(sent) / elapsed.Seconds(), ok: float64(okN) / float64(max(sent, 1))}
	if len(firsts) > 0 {
		slices.Sort(firsts)
		res.p50ms = float64(firsts[len(firsts)/2]) / 1e6
		res.p99ms = float64(firsts[min(len(firsts)-1, len(firsts)*99/100)]) / 1e6
	}
	return res
}
