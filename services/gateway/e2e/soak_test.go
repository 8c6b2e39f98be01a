package e2e

import (
	"bytes"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// TestSoak (make soak; skipped unless E2E_SOAK is set) sends a fixed rate
// of chat completions (E2E_SOAK_RATE, 1000 req/s) for E2E_SOAK (e.g. 10m)
// through one gateway (GATEWAY_ROLE=all: proxy and ingester in one
// process), samples the gateway's resident memory every 5 s, and checks
// that every served request became exactly one usage row (ids compared)
// and that memory did not keep growing: the RSS trend after the first
// minute must add less than 10 % over the run, and the RSS of the last
// minute must stay within 1.5 times that of the second minute (after
// warm-up). It logs where the memory is (RSS anonymous and file-backed,
// the Go heap, stacks, GC goal); E2E_SOAK_PROFILES=dir saves heap
// profiles after 90 s and at the end.
func TestSoak(t *testing.T) {
	v := os.Getenv("E2E_SOAK")
	if v == "" {
		t.Skip("E2E_SOAK (a duration) not set: make soak runs this")
	}
	length, err := time.ParseDuration(v)
	if err != nil {
		t.Fatalf("E2E_SOAK: %v", err)
	}
	rate := 1000
	if r := os.Getenv("E2E_SOAK_RATE"); r != "" {
		if rate, err = strconv.Atoi(r); err != nil || rate <= 0 {
			t.Fatalf("E2E_SOAK_RATE: %q", r)
		}
	}
	s := newStack(t)
	ts := s.setupTenant("soak-" + randHex(3))
	unlimitKey(t, s, ts) // the key's limit must not refuse the soak

	url := s.gatewayURL + "/trueportai-services/openai/v1/chat/completions"
	bodies := [][]byte{
		[]byte(`{"model":"gpt-4o-mini","messages":[{"role":"user","content":"soak"}]}`),
		[]byte(`{"model":"gpt-4o-mini","stream":true,"messages":[{"role":"user","content":"soak"}]}`),
	}
	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 256, MaxConnsPerHost: 256}}
	var (
		mu        sync.Mutex
		ids       = make([]string, 0, rate*int(length.Seconds()))
		latencies []time.Duration
		failures  atomic.Int64
		missed    atomic.Int64
	)
	tokens := make(chan int, rate) // one a request; full: the client cannot keep up
	var wg sync.WaitGroup
	for range 256 {
		wg.Go(func() {
			for i := range tokens {
				req, _ := http.NewRequest("POST", url, bytes.NewReader(bodies[i%2]))
				req.Header.Set("Authorization", "Bearer "+ts.apiKey)
				req.Header.Set("Content-Type", "application/json")
				begin := time.Now()
				resp, err := client.Do(req)
				if err != nil {
					failures.Add(1)
					continue
				}
				_, _ = new(bytes.Buffer).ReadFrom(resp.Body)
				resp.Body.Close()
				took := time.Since(begin)
				if resp.StatusCode != 200 || resp.Header.Get("X-Request-Id") == "" {
					failures.Add(1)
					continue
				}
				mu.Lock()
				ids = append(ids, resp.Header.Get("X-Request-Id"))
				latencies = append(latencies, took)
				mu.Unlock()
			}
		})
	}

	pid := s.gateway.cmd.Process.Pid
	type sample struct {
		at  time.Duration
		rss int64 // KiB
		mem memSample
	}
	var samples []sample
	profiles := os.Getenv("E2E_SOAK_PROFILES") // a directory: heap profiles after 90 s and at the end
	heap := func(name string) {
		if profiles != "" {
			if err := saveProfile(s.gatewayInternalURL+"/debug/pprof/heap", filepath.Join(profiles, name)); err != nil {
				t.Logf("heap profile %s: %v", name, err)
			}
		}
	}
	heapEarly := false
	// The ingester's trim must keep the usage stream short under traffic
	// (on a nats-server before 2.9.15 it purges only between batches).
	var trimmedDuringLoad atomic.Uint64 // the stream's first sequence, last seen during the load
	loadDone := make(chan struct{})
	var streamWatch sync.WaitGroup
	streamWatch.Go(func() {
		t := time.NewTicker(30 * time.Second)
		defer t.Stop()
		for {
			select {
			case <-loadDone:
				return
			case <-t.C:
			}
			if st, err := usageStream(s.envValue("NATS_PREFIX"), s.envValue("NATS_URL")); err == nil {
				trimmedDuringLoad.Store(st.FirstSeq)
			}
		}
	})
	start := time.Now()
	tick := time.NewTicker(10 * time.Millisecond)
	nextSample := time.Duration(0)
	sent := 0
	for now := range tick.C {
		el := now.Sub(start)
		if el >= length {
			break
		}
		for due := int(el.Seconds() * float64(rate)); sent < due; sent++ {
			select {
			case tokens <- sent:
			default:
				missed.Add(1)
			}
		}
		if el >= nextSample {
			samples = append(samples, sample{el, rssKiB(pid), readMem(pid, s.gatewayInternalURL)})
			nextSample += 5 * time.Second
		}
		if !heapEarly && el >= 90*time.Second {
			heapEarly = true
			go heap("heap-90s.pb.gz")
		}
	}
	tick.Stop()
	close(tokens)
	wg.Wait()
	close(loadDone)
	streamWatch.Wait()
	took := time.Since(start)
	samples = append(samples, sample{took, rssKiB(pid), readMem(pid, s.gatewayInternalURL)})
	heap("heap-end.pb.gz")

	mu.Lock()
	served := append([]string(nil), ids...)
	lat := append([]time.Duration(nil), latencies...)
	mu.Unlock()
	slices.Sort(lat)
	pct := func(p float64) time.Duration {
		if len(lat) == 0 {
			return 0
		}
		return lat[min(len(lat)-1, int(p*float64(len(lat))))]
	}
	avg := func(from, to time.Duration) int64 {
		var sum, n int64
		for _, s := range samples {
			if s.at >= from && s.at < to {
				sum, n = sum+s.rss, n+1
			}
		}
		if n == 0 {
			return 0
		}
		return sum / n
	}
	var peak int64
	var series []string
	for _, s := range samples {
		peak = max(peak, s.rss)
		series = append(series, strconv.FormatInt(s.rss/1024, 10))
	}
	early, late := avg(time.Minute, 2*time.Minute), avg(length-time.Minute, took+time.Second)
	if length < 3*time.Minute { // a short run: first and last third
		early, late = avg(length/3, 2*length/3), avg(2*length/3, took+time.Second)
	}
	t.Logf("soak %s at %d req/s: %d sent, %d served (%.0f/s), %d failed, %d not sent (client behind); latency p50 %s p99 %s",
		length, rate, sent, len(served), float64(len(served))/took.Seconds(), failures.Load(), missed.Load(), pct(0.5), pct(0.99))
	t.Logf("gateway RSS MiB every 5 s: %s", strings.Join(series, " "))
	t.Logf("gateway memory every 30 s (MiB): %s", memHeader)
	for i, sm := range samples {
		if i%6 == 0 || i == len(samples)-1 {
			t.Logf("  %4.0fs %s", sm.at.Seconds(), sm.mem)
		}
	}
	t.Logf("gateway RSS: early %.1f MiB, late %.1f MiB (drift %+.1f MiB), peak %.1f MiB",
		float64(early)/1024, float64(late)/1024, float64(late-early)/1024, float64(peak)/1024)
	// The RSS of a Go process at load swings with the GC cycle and the
	// scavenger (heap between the live size and the GC goal, idle pages
	// released and reused): two one-minute averages compare phases as much
	// as sizes. Growth is the trend: the least-squares slope of the samples
	// from the end of the first minute (third, for short runs), extrapolated
	// over that span, must stay within 10 % of their mean.
	from := time.Minute
	if length < 3*time.Minute {
		from = length / 3
	}
	var xs, ys []float64
	var sysEarly, sysLate float64
	for _, sm := range samples {
		if sm.at >= from {
			xs, ys = append(xs, sm.at.Minutes()), append(ys, float64(sm.rss)/1024)
			if sysEarly == 0 {
				sysEarly = sm.mem.sys
			}
			sysLate = sm.mem.sys
		}
	}
	slope, mean := trend(xs, ys)
	growth := slope * (took - from).Minutes()
	t.Logf("gateway RSS trend from %s: %+.2f MiB/min, %+.1f MiB over the run (%+.1f %% of the mean %.1f MiB); Go runtime memory from the OS (sys) %.1f -> %.1f MiB",
		from, slope, growth, 100*growth/mean, mean, sysEarly/(1<<20), sysLate/(1<<20))
	if mean > 0 && growth > 0.1*mean {
		t.Errorf("gateway RSS grows: %+.1f MiB over the run, more than 10 %% of %.1f MiB", growth, mean)
	}
	settle := time.Now()
	eventually(t, 10*time.Minute, func() error { // the ingester's backlog
		return s.usageDrained()
	})
	if length >= 2*time.Minute {
		first := trimmedDuringLoad.Load()
		t.Logf("usage stream: first sequence %d at the last check during the load (trimmed below it)", first)
		if first <= 1 {
			t.Errorf("the usage stream was never trimmed during the load: it would fill up (MaxBytes, DiscardNew) and every event would spool")
		}
	}
	s.diagnoseMissing(ts.tenantID, served)
	s.assertExactlyOnce(ts.tenantID, served)
	t.Logf("every served request stored once, %s after the load ended", time.Since(settle).Round(time.Second))
	if failures.Load() > 0 {
		t.Errorf("%d requests failed", failures.Load())
	}
	if early > 0 && float64(late) > 1.5*float64(early) {
		t.Errorf("gateway RSS grew from %d to %d KiB", early, late)
	}
}

// rssKiB is the resident memory of process pid (VmRSS), 0 if unreadable.
func rssKiB(pid int) int64 {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0
	}
	for _, line := range strings.Split(string(b), "\n") {
		if rest, ok := strings.CutPrefix(line, "VmRSS:"); ok {
			n, _ := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(rest), " kB"), 10, 64)
			return n
		}
	}
	return 0
}

// memSample is where a process's memory is: the kernel's view (RSS split
// into anonymous and file-backed pages) and the Go runtime's (from the
// gateway's /metrics: heap in use, heap idle and released to the OS, the
// GC's next goal, stacks, goroutines).
type memSample struct {
	rssAnon, rssFile                               int64 // KiB
	heapInuse, heapIdle, heapReleased, nextGC, sys float64
	stack, goroutines                              float64
}

const memHeader = "RssAnon RssFile | heap_inuse heap_idle heap_released next_gc stack sys | goroutines"

func (m memSample) String() string {
	mib := func(b float64) float64 { return b / (1 << 20) }
	return fmt.Sprintf("%5.1f %5.1f | %5.1f %5.1f %5.1f %5.1f %4.1f %5.1f | %4.0f", float64(m.rssAnon)/1024, float64(m.rssFile)/1024,
		mib(m.heapInuse), mib(m.heapIdle), mib(m.heapReleased), mib(m.nextGC), mib(m.stack), mib(m.sys), m.goroutines)
}

func readMem(pid int, internalURL string) memSample {
	var m memSample
	if b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid)); err == nil {
		for _, line := range strings.Split(string(b), "\n") {
			for key, dst := range map[string]*int64{"RssAnon:": &m.rssAnon, "RssFile:": &m.rssFile} {
				if rest, ok := strings.CutPrefix(line, key); ok {
					*dst, _ = strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(rest), " kB"), 10, 64)
				}
			}
		}
	}
	c := &http.Client{Timeout: 2 * time.Second}
	resp, err := c.Get(internalURL + "/metrics")
	if err != nil {
		return m
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	for _, line := range strings.Split(string(body), "\n") {
		name, v, ok := strings.Cut(line, " ")
		if !ok {
			continue
		}
		f, err := strconv.ParseFloat(v, 64)
		if err != nil {
			continue
		}
		switch name {
		case "go_memstats_heap_inuse_bytes":
			m.heapInuse = f
		case "go_memstats_heap_idle_bytes":
			m.heapIdle = f
		case "go_memstats_heap_released_bytes":
			m.heapReleased = f
		case "go_memstats_next_gc_bytes":
			m.nextGC = f
		case "go_memstats_stack_inuse_bytes":
			m.stack = f
		case "go_memstats_sys_bytes":
			m.sys = f
		case "go_goroutines":
			m.goroutines = f
		}
	}
	return m
}

// saveProfile writes the profile at url (pprof on the internal listener)
// to path.
func saveProfile(url, path string) error {
	resp, err := (&http.Client{Timeout: 30 * time.Second}).Get(url)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != 200 {
		return fmt.Errorf("%s: %d", url, resp.StatusCode)
	}
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		return err
	}
	return os.WriteFile(path, b, 0o644)
}

// trend is the least-squares slope of ys over xs, and the mean of ys.
func trend(xs, ys []float64) (slope, mean float64) {
	n := float64(len(xs))
	if n < 2 {
		return 0, 0
	}
	var mx, my float64
	for i := range xs {
		mx, my = mx+xs[i], my+ys[i]
	}
	mx, my = mx/n, my/n
	var sxy, sxx float64
	for i := range xs {
		sxy += (xs[i] - mx) * (ys[i] - my)
		sxx += (xs[i] - mx) * (xs[i] - mx)
	}
	if sxx == 0 {
		return 0, my
	}
	return sxy / sxx, my
}

// diagnoseMissing waits up to 90 s for a row per served id and, if some
// are still missing, logs what the pipeline says about them: the gateway's
// usage counters (published, spooled, ingested by result), the usage
// stream's and the ingester consumer's state.
func (s *stack) diagnoseMissing(tenantID string, served []string) {
	t := s.t
	dsn := s.envValue("GATEWAY_DATABASE_URL")
	var err error
	deadline := time.Now().Add(90 * time.Second)
	for time.Now().Before(deadline) {
		var got []string
		if got, err = usageIDs(dsn, tenantID); err == nil {
			if err = compareIDs(served, got); err == nil {
				return
			}
		}
		time.Sleep(time.Second)
	}
	t.Logf("rows missing after 90 s: %v", err)
	if resp, err := http.Get(s.gatewayInternalURL + "/metrics"); err == nil {
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		for _, line := range strings.Split(string(body), "\n") {
			if strings.HasPrefix(line, "trueport_usage_") {
				t.Logf("  %s", line)
			}
		}
	}
	if ci, err := usageConsumer(s.envValue("NATS_PREFIX"), s.envValue("NATS_URL")); err == nil {
		t.Logf("  consumer: delivered stream seq %d, ack floor stream seq %d, pending %d, ack pending %d, redelivered %d",
			ci.Delivered.Stream, ci.AckFloor.Stream, ci.NumPending, ci.NumAckPending, ci.NumRedelivered)
	} else {
		t.Logf("  consumer: %v", err)
	}
	if ss, err := usageStream(s.envValue("NATS_PREFIX"), s.envValue("NATS_URL")); err == nil {
		t.Logf("  stream: %d messages, first seq %d, last seq %d, %d deleted", ss.Msgs, ss.FirstSeq, ss.LastSeq, ss.NumDeleted)
	} else {
		t.Logf("  stream: %v", err)
	}
}
