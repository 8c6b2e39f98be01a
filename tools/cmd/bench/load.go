package main

// The two load generators: wrk for the closed loop (a C program: the Go
// side would otherwise share the 2 cores with a much heavier client) and
// vegeta, as a library, for fixed rates (wrk cannot hold a rate).

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
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

// request is what every run sends: same body and headers for every target.
type request struct {
	url, key string
	body     []byte
}

// wrkScript writes a wrk Lua script that posts r and prints its summary as
// one JSON line prefixed BENCHJSON.
func wrkScript(dir, name string, r request) (string, error) {
	p := filepath.Join(dir, name+".lua")
	s := fmt.Sprintf(`wrk.method = "POST"
wrk.body = '%s'
wrk.headers["Content-Type"] = "application/json"
wrk.headers["Authorization"] = "Bearer %s"
done = function(summary, latency, requests)
  local e = summary.errors
  io.write(string.format('BENCHJSON {"requests":%%d,"duration_us":%%d,"p50_us":%%d,"p99_us":%%d,"errors":%%d,"non2xx":%%d}\n',
    summary.requests, summary.duration, latency:percentile(50), latency:percentile(99),
    e.connect + e.read + e.write + e.timeout, e.status))
end
`, r.body, r.key)
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
	h := http.Header{}
	h.Set("Content-Type", "application/json")
	h.Set("Authorization", "Bearer "+r.key)
	tr := vegeta.NewStaticTargeter(vegeta.Target{Method: "POST", URL: r.url, Body: r.body, Header: h})
	atk := vegeta.NewAttacker(vegeta.KeepAlive(true), vegeta.Timeout(30*time.Second))
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
