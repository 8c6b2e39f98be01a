package e2e

import (
	"bytes"
	"context"
	"fmt"
	"net"
	"net/http"
	"path/filepath"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/nats-io/nats-server/v2/server"
)

// embeddedNATS is a JetStream server this test can stop and restart on the
// same port and store directory.
type embeddedNATS struct {
	t    *testing.T
	opts *server.Options
	srv  *server.Server
}

// startNATS starts the server on a port it picks itself; restarts reuse
// that port (the clients reconnect to it).
func startNATS(t *testing.T) *embeddedNATS {
	t.Helper()
	n := &embeddedNATS{t: t, opts: &server.Options{Host: "127.0.0.1", Port: server.RANDOM_PORT, JetStream: true, StoreDir: t.TempDir(), NoSigs: true, NoLog: true}}
	n.start()
	n.opts.Port = n.srv.Addr().(*net.TCPAddr).Port
	t.Cleanup(n.stop)
	return n
}

func (n *embeddedNATS) url() string { return "nats://127.0.0.1:" + strconv.Itoa(n.opts.Port) }

func (n *embeddedNATS) start() {
	srv, err := server.NewServer(n.opts)
	if err != nil {
		n.t.Fatal(err)
	}
	go srv.Start()
	if !srv.ReadyForConnections(10 * time.Second) {
		n.t.Fatal("embedded NATS not ready")
	}
	n.srv = srv
}

func (n *embeddedNATS) stop() {
	if n.srv != nil {
		n.srv.Shutdown()
		n.srv.WaitForShutdown()
		n.srv = nil
	}
}

// traffic sends chat completions until stopped and keeps the request id of
// every answer served (200 with an X-Request-Id): each must end up as
// exactly one usage row.
type traffic struct {
	served   atomic.Int64
	failures atomic.Int64
	stop     chan struct{}
	wg       sync.WaitGroup
	mu       sync.Mutex
	ids      []string
	failed   []string // the first failures, for the test's message
}

func startTraffic(url, key string, workers int) *traffic {
	tr := &traffic{stop: make(chan struct{})}
	body := []byte(`{"model":"gpt-4o-mini","messages":[{"role":"user","content":"fault test"}]}`)
	for i := 0; i < workers; i++ {
		b := body
		if i%2 == 1 {
			b = []byte(`{"model":"gpt-4o-mini","stream":true,"messages":[{"role":"user","content":"fault test"}]}`)
		}
		tr.wg.Go(func() {
			for {
				select {
				case <-tr.stop:
					return
				default:
				}
				tr.do(url, key, b)
				// About 150 req/s in all: under the key's 6000 rpm (a burst
				// of 6000, then 100/s) for the 80 s of a 60 s outage test.
				time.Sleep(20 * time.Millisecond)
			}
		})
	}
	return tr
}

// do sends one request and records its outcome.
func (tr *traffic) do(url, key string, body []byte) {
	req, _ := http.NewRequest("POST", url, bytes.NewReader(body))
	req.Header.Set("Authorization", "Bearer "+key)
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		tr.fail(err.Error())
		time.Sleep(20 * time.Millisecond)
		return
	}
	_, _ = new(bytes.Buffer).ReadFrom(resp.Body)
	resp.Body.Close()
	id := resp.Header.Get("X-Request-Id")
	if id == "" || resp.StatusCode != 200 {
		tr.fail(fmt.Sprintf("status %d", resp.StatusCode))
		return
	}
	tr.mu.Lock()
	tr.ids = append(tr.ids, id)
	tr.mu.Unlock()
	tr.served.Add(1)
}

func (tr *traffic) fail(why string) {
	tr.failures.Add(1)
	tr.mu.Lock()
	if len(tr.failed) < 5 {
		tr.failed = append(tr.failed, why)
	}
	tr.mu.Unlock()
}

// servedIDs are the request ids of the answers served so far.
func (tr *traffic) servedIDs() []string {
	tr.mu.Lock()
	defer tr.mu.Unlock()
	return append([]string(nil), tr.ids...)
}

func (tr *traffic) halt() {
	close(tr.stop)
	tr.wg.Wait()
}

// assertExactlyOnce waits until the gateway's database holds a usage row
// for each request id in want and checks that it holds nothing else for the
// tenant and no id twice: it compares ids, not counts, so a lost event
// cannot hide behind a duplicate. Stragglers (a spooled batch replayed, a
// message redelivered) could still add rows after the first match: it
// waits until the spool is empty and the usage consumer has nothing pending
// or unacknowledged, then compares again.
func (s *stack) assertExactlyOnce(tenantID string, want []string) {
	s.t.Helper()
	dsn := s.envValue("GATEWAY_DATABASE_URL")
	diff := func() error {
		got, err := usageIDs(dsn, tenantID)
		if err != nil {
			return err
		}
		return compareIDs(want, got)
	}
	eventually(s.t, 90*time.Second, diff)
	eventually(s.t, 60*time.Second, func() error {
		if files, _ := filepath.Glob(filepath.Join(s.envValue("GATEWAY_SPOOL_DIR"), "*.jsonl")); len(files) > 0 {
			return fmt.Errorf("spool holds %v", files)
		}
		return s.usageDrained()
	})
	if err := diff(); err != nil {
		s.t.Fatalf("after settling: %v", err)
	}
}

// usageIDs are the request ids of a tenant's usage rows (one entry a row).
func usageIDs(dsn, tenantID string) ([]string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, dsn)
	if err != nil {
		return nil, err
	}
	defer conn.Close(context.Background())
	rows, err := conn.Query(ctx, `SELECT request_id FROM usage_logs WHERE tenant_id = $1`, tenantID)
	if err != nil {
		return nil, err
	}
	return pgx.CollectRows(rows, pgx.RowTo[string])
}

// compareIDs says which ids of want have no row, which have several, and
// which rows are not in want.
func compareIDs(want, got []string) error {
	rows := map[string]int{}
	for _, id := range got {
		rows[id]++
	}
	var missing, twice, extra []string
	wanted := map[string]bool{}
	for _, id := range want {
		wanted[id] = true
		switch rows[id] {
		case 0:
			missing = append(missing, id)
		case 1:
		default:
			twice = append(twice, id)
		}
	}
	for id := range rows {
		if !wanted[id] {
			extra = append(extra, id)
		}
	}
	if len(missing)+len(twice)+len(extra) == 0 {
		return nil
	}
	clip := func(ids []string) []string { return ids[:min(len(ids), 5)] }
	return fmt.Errorf("%d served, %d rows: %d ids without a row %v, %d with several %v, %d rows not served %v",
		len(want), len(got), len(missing), clip(missing), len(twice), clip(twice), len(extra), clip(extra))
}

// TestGatewayGracefulRestartLosesNothing restarts the gateway (SIGTERM) with
// requests in flight: every request that was answered is logged exactly once.
func TestGatewayGracefulRestartLosesNothing(t *testing.T) {
	t.Parallel()
	s := newStack(t)
	ts := s.setupTenant("restart-" + randHex(3))
	raiseRPM(t, s, ts)

	tr := startTraffic(s.gatewayURL+"/trueportai-services/openai/v1/chat/completions", ts.apiKey, 4)
	waitServed(t, tr, 30)
	s.restartGateway()
	waitServed(t, tr, tr.served.Load()+30)
	tr.halt()
	s.assertExactlyOnce(ts.tenantID, tr.servedIDs())
}

func waitServed(t *testing.T, tr *traffic, n int64) {
	t.Helper()
	eventually(t, 30*time.Second, func() error {
		if got := tr.served.Load(); got < n {
			return fmt.Errorf("served %d of %d", got, n)
		}
		return nil
	})
}

// raiseRPM lifts the key's limit so fault traffic is not rate limited: the
// tenant moves to the enterprise plan through the platform database (plans
// are not purchasable here yet) and the key is patched to the plan's max.
func raiseRPM(t *testing.T, s *stack, ts tenantSetup) {
	t.Helper()
	execSQL(t, s.envValue("PLATFORM_DATABASE_URL"), `UPDATE tenants SET plan_id = 'enterprise' WHERE id = $1`, ts.tenantID)
	if c := call(t, "PATCH", s.gatewayURL+"/trueportai-services/api/v1/keys/"+ts.keyID, ts.scopedToken, map[string]any{"rpm_limit": 6000}, nil); c != 200 {
		t.Fatalf("raise rpm: %d", c)
	}
}

// unlimitKey lifts every limit of the tenant's key for load tests: the
// enterprise plan (raiseRPM), a limit override removing the plan's cap on
// a key's RPM (keys above the cap are clamped to it: 6000 rpm would
// refuse most of a load test), the key's own limit, and a gateway restart
// (keys and tenant contexts load at start).
func unlimitKey(t *testing.T, s *stack, ts tenantSetup) {
	t.Helper()
	raiseRPM(t, s, ts)
	execSQL(t, s.envValue("PLATFORM_DATABASE_URL"), `INSERT INTO tenant_limit_overrides (tenant_id, limits) VALUES ($1, '{"max_rpm_per_key":0}')
		ON CONFLICT (tenant_id) DO UPDATE SET limits = EXCLUDED.limits`, ts.tenantID)
	execSQL(t, s.envValue("GATEWAY_DATABASE_URL"), `UPDATE api_keys SET rpm_limit = 100000000 WHERE id = $1`, ts.keyID)
	s.restartGateway()
}

func (s *stack) envValue(name string) string {
	v := ""
	for _, kv := range s.env {
		if len(kv) > len(name) && kv[:len(name)+1] == name+"=" {
			v = kv[len(name)+1:]
		}
	}
	return v
}
