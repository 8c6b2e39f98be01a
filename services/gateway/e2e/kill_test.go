package e2e

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// killMargin: a response the client finished reading more than this long
// before the kill must have its usage row (docs/decisions.md, "Usage
// journal"). Responses finished later may lose theirs, but never count twice.
const killMargin = 5 * time.Millisecond

// answer is one served request as the client saw it.
type answer struct {
	id   string
	done time.Time // the client read the whole body
}

// closedLoop sends chat completions back to back from workers goroutines
// (half of them streams) until stopped, keeping every answer served.
type closedLoop struct {
	stop     chan struct{}
	wg       sync.WaitGroup
	mu       sync.Mutex
	answers  []answer
	served   atomic.Int64
	failures atomic.Int64
}

func startClosedLoop(url, key string, workers int) *closedLoop {
	cl := &closedLoop{stop: make(chan struct{})}
	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: workers, MaxConnsPerHost: workers}, Timeout: 30 * time.Second}
	bodies := [][]byte{
		[]byte(`{"model":"gpt-4o-mini","messages":[{"role":"user","content":"kill test"}]}`),
		[]byte(`{"model":"gpt-4o-mini","stream":true,"messages":[{"role":"user","content":"kill test"}]}`),
	}
	for i := range workers {
		body := bodies[i%2]
		cl.wg.Go(func() {
			for {
				select {
				case <-cl.stop:
					return
				default:
				}
				req, _ := http.NewRequest("POST", url, bytes.NewReader(body))
				req.Header.Set("Authorization", "Bearer "+key)
				req.Header.Set("Content-Type", "application/json")
				resp, err := client.Do(req)
				if err != nil {
					cl.failures.Add(1) // the killed process cut it; no answer
					time.Sleep(5 * time.Millisecond)
					continue
				}
				_, rerr := new(bytes.Buffer).ReadFrom(resp.Body)
				resp.Body.Close()
				done := time.Now()
				id := resp.Header.Get("X-Request-Id")
				if rerr != nil || resp.StatusCode != 200 || id == "" {
					cl.failures.Add(1)
					continue
				}
				cl.mu.Lock()
				cl.answers = append(cl.answers, answer{id, done})
				cl.mu.Unlock()
				cl.served.Add(1)
			}
		})
	}
	return cl
}

func (cl *closedLoop) halt() []answer {
	close(cl.stop)
	cl.wg.Wait()
	cl.mu.Lock()
	defer cl.mu.Unlock()
	return append([]answer(nil), cl.answers...)
}

// TestProxyKill9LosesNothing kills a proxy replica (GATEWAY_ROLE=proxy; a
// separate GATEWAY_ROLE=ingester process stores the events) with SIGKILL
// under closed-loop load, starts it again on the same listeners and
// compares the request ids the client was answered with the usage rows:
// every answer finished more than killMargin before the kill, and every
// answer of the restarted process, has exactly one row; the few answered
// around the kill have at most one; there is no other row.
//
// Before the usage journal, events queued in memory or awaiting their
// JetStream ack died with the process (E2E_KILL_REPORT=1 logs the figures
// without failing, to measure that).
func TestProxyKill9LosesNothing(t *testing.T) {
	t.Parallel()
	s := newStack(t, "GATEWAY_ROLE=proxy")
	s.startGateway("GATEWAY_ROLE=ingester", "GATEWAY_SPOOL_DIR="+t.TempDir())
	ts := s.setupTenant("kill-" + randHex(3))
	unlimitKey(t, s, ts)

	cl := startClosedLoop(s.gatewayURL+"/trueportai-services/openai/v1/chat/completions", ts.apiKey, 32)
	waitClosedLoop(t, cl, 1500)
	time.Sleep(time.Second) // full queues: well past the first requests
	journalBefore := journalSeries(t, s.gatewayInternalURL)
	killAt := time.Now()
	if err := s.gateway.cmd.Process.Kill(); err != nil {
		t.Fatal(err)
	}
	<-s.gateway.done
	servedAtKill := cl.served.Load()
	s.gateway = startProc(t, "gateway", s.envFor("gateway", "SERVICE_INSTANCE_ID="+s.gatewayInstance), s.gatewayLis)
	s.waitHealthy(s.gatewayURL + "/trueportai-services/health")
	restartedAt := time.Now()
	// The restarted process moved what the killed one left in its journal
	// to the spool (the current segment at least is never released).
	recovered := metricValue(t, s.gatewayInternalURL, "trueport_usage_journal_recovered_total")
	waitClosedLoop(t, cl, cl.served.Load()+500)
	answers := cl.halt()

	var must, may []string
	for _, a := range answers {
		switch {
		case a.done.Before(killAt.Add(-killMargin)) || a.done.After(restartedAt):
			must = append(must, a.id)
		default:
			may = append(may, a.id)
		}
	}
	t.Logf("closed loop, 32 clients: %d answered before the kill (%d within %s of it or after it, from the killed process), %d in all; %d requests cut; "+
		"%d events recovered from the journal at restart", servedAtKill, len(may), killMargin, len(answers), cl.failures.Load(), recovered)
	t.Logf("the killed gateway's journal just before the kill: %s", journalBefore)
	report := os.Getenv("E2E_KILL_REPORT") == "1"
	dsn := s.envValue("GATEWAY_DATABASE_URL")
	var last idCheck
	check := func() error {
		got, err := usageIDs(dsn, ts.tenantID)
		if err != nil {
			return err
		}
		last = compareIDsAllowing(must, may, got)
		return last.err()
	}
	if report {
		// Measure: wait for the rows to stop changing, then count.
		s.assertSettled()
		time.Sleep(2 * time.Second)
		_ = check()
		t.Logf("after settling: %v", last)
		return
	}
	if recovered == 0 {
		t.Errorf("the restarted gateway recovered no event from the journal")
	}
	eventually(t, 90*time.Second, check)
	s.assertSettled()
	if err := check(); err != nil {
		t.Fatalf("after settling: %v", err)
	}
	t.Logf("after settling: %v", last)
}

func waitClosedLoop(t *testing.T, cl *closedLoop, n int64) {
	t.Helper()
	eventually(t, 60*time.Second, func() error {
		if got := cl.served.Load(); got < n {
			return fmt.Errorf("served %d of %d", got, n)
		}
		return nil
	})
}

// assertSettled waits until the spool is empty and the usage consumer has
// nothing pending or unacknowledged (stragglers could still add rows).
func (s *stack) assertSettled() {
	s.t.Helper()
	eventually(s.t, 60*time.Second, func() error {
		return s.usageDrained()
	})
}

// idCheck is the comparison of answered ids with rows.
type idCheck struct {
	answered, near, rows  int
	missing, twice, extra []string // missing: of the ids that must have a row
	nearMissing           int
}

// compareIDsAllowing: every id of must has exactly one row, every id of
// may at most one, and no row has another id.
func compareIDsAllowing(must, may, got []string) idCheck {
	c := idCheck{answered: len(must) + len(may), near: len(may), rows: len(got)}
	rows := map[string]int{}
	for _, id := range got {
		rows[id]++
	}
	known := map[string]bool{}
	for _, id := range must {
		known[id] = true
		switch rows[id] {
		case 0:
			c.missing = append(c.missing, id)
		case 1:
		default:
			c.twice = append(c.twice, id)
		}
	}
	for _, id := range may {
		known[id] = true
		switch rows[id] {
		case 0:
			c.nearMissing++
		case 1:
		default:
			c.twice = append(c.twice, id)
		}
	}
	for id := range rows {
		if !known[id] {
			c.extra = append(c.extra, id)
		}
	}
	sort.Strings(c.missing)
	return c
}

func (c idCheck) err() error {
	if len(c.missing)+len(c.twice)+len(c.extra) == 0 {
		return nil
	}
	return errors.New(c.String())
}

func (c idCheck) String() string {
	clip := func(ids []string) []string { return ids[:min(len(ids), 5)] }
	return fmt.Sprintf("%d answered, %d rows: %d ids answered more than %s before the kill (or after the restart) without a row %v, "+
		"%d with several %v, %d rows not answered %v; of the %d answered around the kill, %d without a row",
		c.answered, c.rows, len(c.missing), killMargin, clip(c.missing), len(c.twice), clip(c.twice), len(c.extra), clip(c.extra), c.near, c.nearMissing)
}

// metricValue reads an unlabelled series from the /metrics of the process
// whose internal listener is base (-1 when it is not there).
func metricValue(t *testing.T, base, series string) int64 {
	t.Helper()
	resp, err := http.Get(base + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	for _, line := range strings.Split(string(body), "\n") {
		if v, ok := strings.CutPrefix(line, series+" "); ok {
			f, err := strconv.ParseFloat(v, 64)
			if err != nil {
				t.Fatalf("%s: %q", series, line)
			}
			return int64(f)
		}
	}
	return -1
}

// journalSeries is the journal's series on a gateway's /metrics, one line.
func journalSeries(t *testing.T, base string) string {
	t.Helper()
	resp, err := http.Get(base + "/metrics")
	if err != nil {
		return err.Error()
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	var out []string
	for _, line := range strings.Split(string(body), "\n") {
		if strings.HasPrefix(line, "trueport_usage_journal_") {
			out = append(out, strings.TrimPrefix(line, "trueport_usage_journal_"))
		}
	}
	return strings.Join(out, ", ")
}
