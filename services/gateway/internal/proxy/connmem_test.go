package proxy

import (
	"bufio"
	"bytes"
	"cmp"
	"context"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"runtime"
	"runtime/metrics"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"trueportai/services/gateway/internal/fakeprovider"
	"trueportai/services/internal/httpserver"
)

// Per-connection memory budgets of the gateway's proxy: bytes of live heap
// and goroutine stacks that one client connection costs the process,
// measured by TestConnectionMemory. Like the allocation budgets, they are
// the measured values plus a margin, and should only go down.
// Measured: idle 17.8–19.7 KB (net/http's server connection: its goroutine,
// 4 KiB read and write buffers; the bare reverse proxy's is the same),
// stream 60–61 KB (89–91 KB with the SSE framer's former 32 KiB buffer; the
// bare proxy's 80–82 KB).
const (
	connBudgetIdle   = 24 << 10 // a keep-alive connection between requests
	connBudgetStream = 72 << 10 // a connection relaying a stream
)

// memSample is the process's live heap, goroutine stack memory and
// goroutines.
type memSample struct{ heap, stacks, goroutines int64 }

func (m memSample) total() int64 { return m.heap + m.stacks }

func readMem() memSample {
	// Two collections: the first makes sync.Pool's contents victims, the
	// second frees them, so only memory in use is counted.
	runtime.GC()
	runtime.GC()
	s := []metrics.Sample{{Name: "/gc/heap/live:bytes"}, {Name: "/memory/classes/heap/stacks:bytes"}}
	metrics.Read(s)
	return memSample{heap: int64(s[0].Value.Uint64()), stacks: int64(s[1].Value.Uint64()), goroutines: int64(runtime.NumGoroutine())}
}

// TestConnectionMemory measures what a client connection costs the
// gateway's proxy, idle between requests and relaying a stream, against
// the bare reverse proxy, and holds the gateway to connBudgetIdle and
// connBudgetStream. The clients and the fake provider run in a child
// process (this test binary again, TestConnMemChild), so this process
// holds nothing but the proxies: each figure is its growth per client
// connection while n connections are open, the median of 3 rounds that
// interleave the two proxies. With -v it logs the figures
// (docs/benchmarks.md, "Issue 13, hot path").
func TestConnectionMemory(t *testing.T) {
	if raceEnabled {
		t.Skip("the race detector's shadow memory and allocations blur the figures")
	}
	if testing.Short() {
		t.Skip("opens a few hundred loopback connections")
	}
	const n, rounds = 300, 3
	child := startConnMemChild(t)
	up, err := url.Parse(child.upstream)
	if err != nil {
		t.Fatal(err)
	}
	bare := serveLoopback(t, &http.Server{Handler: bareReverseProxy(up), ReadHeaderTimeout: 10 * time.Second, IdleTimeout: 120 * time.Second})
	px, _ := newBenchProxy(t, nil, benchProviders(t, child.upstream))
	gw := serveLoopback(t, httpserver.NewServer(px, httpserver.DefaultLimits))
	targets := []struct{ name, url string }{{"bare", bare + "/openai/v1/chat/completions"}, {"gateway", gw + benchPath}}

	for _, phase := range []struct {
		name   string
		hold   bool
		budget int64
	}{{"idle", false, connBudgetIdle}, {"stream", true, connBudgetStream}} {
		per := map[string][]memSample{}
		for range rounds {
			for _, tg := range targets {
				child.open(t, tg.url, 10, phase.hold) // warm-up: pools, lazily built state
				child.close(t)
				before := readMem()
				child.open(t, tg.url, n, phase.hold)
				during := readMem()
				child.close(t)
				per[tg.name] = append(per[tg.name], memSample{(during.heap - before.heap) / n, (during.stacks - before.stacks) / n,
					(during.goroutines - before.goroutines) / n})
			}
		}
		for _, tg := range targets {
			s := slices.SortedFunc(slices.Values(per[tg.name]), func(a, b memSample) int { return cmp.Compare(a.total(), b.total()) })
			m := s[len(s)/2]
			t.Logf("%s, %s: %d bytes per connection (heap %d, stacks %d), %d goroutines (rounds: %d, %d, %d)", phase.name, tg.name,
				m.total(), m.heap, m.stacks, m.goroutines, s[0].total(), s[1].total(), s[2].total())
			if tg.name == "gateway" && m.total() > phase.budget {
				t.Errorf("%s: the gateway holds %d bytes per connection, over the budget of %d: find them with a heap profile "+
					"(go test -run TestConnectionMemory -memprofile mem.out ./internal/proxy/)", phase.name, m.total(), phase.budget)
			}
		}
	}
}

// connMemChild drives the child process: its fake provider's URL, and
// commands on its stdin ("open URL N HOLD", "close"), each answered with a
// line on its stdout ("ok" or an error).
type connMemChild struct {
	upstream string // holds streams open after their first chunk
	fast     string // answers at once (5 chunks, no delays, as in make bench)
	in       io.Writer
	out      *bufio.Scanner
}

func startConnMemChild(t testing.TB) *connMemChild {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	cmd := exec.CommandContext(ctx, os.Args[0], "-test.run", "^TestConnMemChild$", "-test.count", "1")
	cmd.Env = append(os.Environ(), "CONNMEM_CHILD=1")
	cmd.Stderr = os.Stderr
	in, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = in.Close(); cancel(); _ = cmd.Wait() })
	c := &connMemChild{in: in, out: bufio.NewScanner(stdout)}
	urls := strings.Fields(c.answer(t))
	if len(urls) != 2 || !strings.HasPrefix(urls[0], "http://") {
		t.Fatalf("child: %v", urls)
	}
	c.upstream, c.fast = urls[0], urls[1]
	return c
}

func (c *connMemChild) answer(t testing.TB) string {
	t.Helper()
	for c.out.Scan() {
		// The child's test framework prints its own lines too.
		if line := c.out.Text(); strings.HasPrefix(line, "connmem: ") {
			return strings.TrimPrefix(line, "connmem: ")
		}
	}
	t.Fatalf("child ended: %v", c.out.Err())
	return ""
}

func (c *connMemChild) do(t testing.TB, cmd string) {
	t.Helper()
	if _, err := fmt.Fprintln(c.in, cmd); err != nil {
		t.Fatal(err)
	}
	if a := c.answer(t); a != "ok" {
		t.Fatalf("child: %s: %s", cmd, a)
	}
}

// open has the child open n connections to url, each with one request:
// with hold, a stream the fake provider keeps open after its first chunk
// (read); otherwise a JSON request read to its end, the connection then
// idle in the client's pool.
func (c *connMemChild) open(t *testing.T, url string, n int, hold bool) {
	c.do(t, fmt.Sprintf("open %s %d %v", url, n, hold))
}

// close has the child close every connection it opened.
func (c *connMemChild) close(t *testing.T) {
	c.do(t, "close")
	time.Sleep(50 * time.Millisecond) // the proxies see the connections end
}

// TestConnMemChild is TestConnectionMemory's child process (it does
// nothing in a normal run): a fake provider that holds streams open after
// their first chunk, and the clients.
func TestConnMemChild(t *testing.T) {
	if os.Getenv("CONNMEM_CHILD") != "1" {
		t.Skip("TestConnectionMemory's child process")
	}
	up := serveLoopback(t, &http.Server{Handler: fakeprovider.NewHandler(fakeprovider.Config{Chunks: 5, ChunkDelay: time.Hour},
		slog.New(slog.DiscardHandler)), ReadHeaderTimeout: 10 * time.Second, IdleTimeout: 120 * time.Second})
	fast := serveLoopback(t, &http.Server{Handler: fakeprovider.NewHandler(fakeprovider.Config{Chunks: 5}, slog.New(slog.DiscardHandler)),
		ReadHeaderTimeout: 10 * time.Second, IdleTimeout: 120 * time.Second})
	fmt.Println("connmem: " + up + " " + fast)
	var conns *clientConns
	in := bufio.NewScanner(os.Stdin)
	for in.Scan() {
		f := strings.Fields(in.Text())
		switch {
		case len(f) == 4 && f[0] == "open":
			n, _ := strconv.Atoi(f[2])
			var err error
			conns, err = openClientConns(f[1], n, f[3] == "true")
			if err != nil {
				fmt.Println("connmem: " + err.Error())
				continue
			}
		case len(f) == 5 && f[0] == "load":
			conns, _ := strconv.Atoi(f[2])
			total, _ := strconv.Atoi(f[3])
			if err := closedLoop(f[1], conns, total, f[4] == "true"); err != nil {
				fmt.Println("connmem: " + err.Error())
				continue
			}
		case len(f) == 1 && f[0] == "close":
			if conns != nil {
				conns.close()
				conns = nil
			}
		default:
			fmt.Println("connmem: unknown command " + in.Text())
			continue
		}
		fmt.Println("connmem: ok")
	}
}

// clientConns are a child's open client connections.
type clientConns struct {
	cancel context.CancelFunc
	done   sync.WaitGroup
	trs    []*http.Transport
}

func (c *clientConns) close() {
	c.cancel()
	c.done.Wait()
	for _, tr := range c.trs {
		tr.CloseIdleConnections()
	}
}

func openClientConns(url string, n int, hold bool) (*clientConns, error) {
	ctx, cancel := context.WithCancel(context.Background())
	c := &clientConns{cancel: cancel}
	body := benchJSONBody
	if hold {
		body = benchStreamBody
	}
	errs := make(chan error, n)
	var ready sync.WaitGroup
	for range n {
		// One transport per client: n connections, whatever the timing.
		tr := &http.Transport{DisableCompression: true}
		c.trs = append(c.trs, tr)
		ready.Add(1)
		c.done.Add(1)
		go func() {
			defer c.done.Done()
			var once sync.Once
			signal := func() { once.Do(ready.Done) }
			defer signal()
			req, err := http.NewRequestWithContext(ctx, http.MethodPost, url, bytes.NewReader([]byte(body)))
			if err != nil {
				errs <- err
				return
			}
			req.Header.Set("Authorization", "Bearer "+benchSecret)
			req.Header.Set("Content-Type", "application/json")
			resp, err := (&http.Client{Transport: tr}).Do(req)
			if err != nil {
				errs <- err
				return
			}
			defer resp.Body.Close()
			if resp.StatusCode != http.StatusOK {
				errs <- fmt.Errorf("status %d", resp.StatusCode)
				return
			}
			if !hold {
				if _, err := io.Copy(io.Discard, resp.Body); err != nil {
					errs <- err
				}
				return
			}
			buf := make([]byte, 512)
			if k, err := resp.Body.Read(buf); k == 0 {
				errs <- fmt.Errorf("no first chunk: %v", err)
				return
			}
			signal()
			<-ctx.Done()
		}()
	}
	ready.Wait()
	if !hold {
		c.done.Wait() // every connection idle in its client's pool
	}
	select {
	case err := <-errs:
		c.close()
		return nil, err
	default:
		return c, nil
	}
}

// closedLoop sends total requests over conns keep-alive connections, each
// sending its next request as soon as the previous answer has been read.
func closedLoop(url string, conns, total int, stream bool) error {
	body := []byte(benchJSONBody)
	if stream {
		body = []byte(benchStreamBody)
	}
	var next atomic.Int64
	errs := make(chan error, conns)
	var wg sync.WaitGroup
	for range conns {
		tr := &http.Transport{DisableCompression: true}
		defer tr.CloseIdleConnections()
		client := &http.Client{Transport: tr}
		wg.Go(func() {
			for next.Add(1) <= int64(total) {
				req, err := http.NewRequest(http.MethodPost, url, bytes.NewReader(body))
				if err != nil {
					errs <- err
					return
				}
				req.Header.Set("Authorization", "Bearer "+benchSecret)
				req.Header.Set("Content-Type", "application/json")
				resp, err := client.Do(req)
				if err != nil {
					errs <- err
					return
				}
				_, err = io.Copy(io.Discard, resp.Body)
				_ = resp.Body.Close()
				if err != nil || resp.StatusCode != http.StatusOK {
					errs <- fmt.Errorf("status %d, %v", resp.StatusCode, err)
					return
				}
			}
		})
	}
	wg.Wait()
	select {
	case err := <-errs:
		return err
	default:
		return nil
	}
}

// BenchmarkLoopbackLoad is a closed loop of 64 connections (make bench's
// wrk -c64) through the bare reverse proxy and the gateway's proxy to the
// fake provider, the clients and the fake provider in a child process: this
// process holds only the proxies. b.N is the number of requests. It reports
// the process's peak RssAnon during the loop (/proc/self/status, sampled
// every 10 ms) over its RssAnon before, the CPU time per request (getrusage:
// the proxy's alone) and the GC cycles per 1 000 requests.
func BenchmarkLoopbackLoad(b *testing.B) {
	child := startConnMemChild(b)
	up, err := url.Parse(child.fast)
	if err != nil {
		b.Fatal(err)
	}
	bare := serveLoopback(b, &http.Server{Handler: bareReverseProxy(up), ReadHeaderTimeout: 10 * time.Second, IdleTimeout: 120 * time.Second})
	px, _ := newBenchProxy(b, nil, benchProviders(b, child.fast))
	gw := serveLoopback(b, httpserver.NewServer(px, httpserver.DefaultLimits))
	for _, stream := range []bool{false, true} {
		for _, tg := range []struct{ name, url string }{{"bare", bare + "/openai/v1/chat/completions"}, {"gateway", gw + benchPath}} {
			name := "json/" + tg.name
			if stream {
				name = "stream/" + tg.name
			}
			b.Run(name, func(b *testing.B) {
				child.do(b, fmt.Sprintf("load %s 64 %d %v", tg.url, 640, stream)) // warm-up
				runtime.GC()
				base := rssAnon(b)
				gc0 := gcCycles()
				cpu0 := processCPUTime()
				stop := make(chan struct{})
				peak := make(chan int64)
				go func() {
					p := base
					tick := time.NewTicker(10 * time.Millisecond)
					defer tick.Stop()
					for {
						select {
						case <-stop:
							peak <- p
							return
						case <-tick.C:
							p = max(p, rssAnon(b))
						}
					}
				}()
				b.ResetTimer()
				child.do(b, fmt.Sprintf("load %s 64 %d %v", tg.url, b.N, stream))
				b.StopTimer()
				close(stop)
				p := <-peak
				b.ReportMetric(float64(p-base)/(1<<20), "peak-anon-MiB-over-idle")
				b.ReportMetric(float64(p)/(1<<20), "peak-anon-MiB")
				b.ReportMetric(float64((processCPUTime()-cpu0).Microseconds())/float64(b.N), "cpu-µs/req")
				b.ReportMetric(float64(gcCycles()-gc0)*1000/float64(b.N), "gc/1000req")
			})
		}
	}
}

// rssAnon is the process's RssAnon in bytes.
func rssAnon(tb testing.TB) int64 {
	b, err := os.ReadFile("/proc/self/status")
	if err != nil {
		tb.Fatal(err)
	}
	for line := range strings.Lines(string(b)) {
		if v, ok := strings.CutPrefix(line, "RssAnon:"); ok {
			kb, _ := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 10, 64)
			return kb << 10
		}
	}
	tb.Fatal("no RssAnon in /proc/self/status")
	return 0
}

func gcCycles() uint64 {
	s := []metrics.Sample{{Name: "/gc/cycles/total:gc-cycles"}}
	metrics.Read(s)
	return s[0].Value.Uint64()
}

// processCPUTime is the process's user and system CPU time so far.
func processCPUTime() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
