package e2e

import (
	"bytes"
	"fmt"
	"net"
	"net/http"
	"path/filepath"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

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

// traffic sends chat completions until stopped and counts the answers that
// carry a request id (each must end up as exactly one usage row).
type traffic struct {
	served   atomic.Int64
	failures atomic.Int64
	stop     chan struct{}
	wg       sync.WaitGroup
}

func startTraffic(url, key string, workers int) *traffic {
	tr := &traffic{stop: make(chan struct{})}
	body := []byte(`{"model":"gpt-4o-mini","messages":[{"role":"user","content":"fault test"}]}`)
	for i := 0; i < workers; i++ {
		tr.wg.Add(1)
		go func(stream bool) {
			defer tr.wg.Done()
			b := body
			if stream {
				b = []byte(`{"model":"gpt-4o-mini","stream":true,"messages":[{"role":"user","content":"fault test"}]}`)
			}
			for {
				select {
				case <-tr.stop:
					return
				default:
				}
				req, _ := http.NewRequest("POST", url, bytes.NewReader(b))
				req.Header.Set("Authorization", "Bearer "+key)
				req.Header.Set("Content-Type", "application/json")
				resp, err := http.DefaultClient.Do(req)
				if err != nil {
					tr.failures.Add(1)
					time.Sleep(20 * time.Millisecond)
					continue
				}
				_, _ = new(bytes.Buffer).ReadFrom(resp.Body)
				resp.Body.Close()
				if resp.Header.Get("X-Request-Id") != "" && resp.StatusCode == 200 {
					tr.served.Add(1)
				} else {
					tr.failures.Add(1)
				}
				time.Sleep(5 * time.Millisecond)
			}
		}(i%2 == 1)
	}
	return tr
}

func (tr *traffic) halt() {
	close(tr.stop)
	tr.wg.Wait()
}

// assertExactlyOnce waits until the logs hold exactly `served` rows and
// checks there are no duplicates.
func (s *stack) assertExactlyOnce(token string, served int) {
	s.t.Helper()
	s.waitLogs(token, served)
	// total == served proves nothing was lost. Stragglers (a spooled batch
	// replayed, a message redelivered) could still add rows: wait until the
	// gateway's spool is empty and the usage consumer has nothing pending or
	// unacknowledged, then count again.
	eventually(s.t, 30*time.Second, func() error {
		if files, _ := filepath.Glob(filepath.Join(s.envValue("GATEWAY_SPOOL_DIR"), "*.jsonl")); len(files) > 0 {
			return fmt.Errorf("spool holds %v", files)
		}
		ci, err := usageConsumer(s.envValue("NATS_PREFIX"), s.envValue("NATS_URL"))
		if err != nil {
			return err
		}
		if ci.NumPending != 0 || ci.NumAckPending != 0 {
			return fmt.Errorf("usage consumer: %d pending, %d unacknowledged", ci.NumPending, ci.NumAckPending)
		}
		return nil
	})
	var again logPage
	eventually(s.t, 30*time.Second, func() error { // past the analytics rate limit the polls above may have reached
		again = logPage{}
		if c := call(s.t, "GET", s.gatewayURL+"/trueportai-services/api/v1/analytics/logs?limit=1", token, nil, &again); c != 200 {
			return fmt.Errorf("logs status %d", c)
		}
		return nil
	})
	if again.Total != served {
		s.t.Fatalf("after settling: %d rows, want %d", again.Total, served)
	}
}

// TestNATSOutageLosesNothing stops NATS during traffic and restarts it: the
// gateway keeps serving, spools events, replays them, and every served
// request ends up as exactly one usage row.
func TestNATSOutageLosesNothing(t *testing.T) {
	t.Parallel()
	nats := startNATS(t)
	s := newStack(t, "NATS_URL="+nats.url())
	ts := s.setupTenant("outage-" + randHex(3))
	raiseRPM(t, s, ts)

	tr := startTraffic(s.gatewayURL+"/trueportai-services/openai/v1/chat/completions", ts.apiKey, 4)
	waitServed(t, tr, 20)
	nats.stop()
	before := tr.served.Load()
	waitServed(t, tr, before+40) // the gateway serves on without NATS
	nats.start()
	waitServed(t, tr, tr.served.Load()+20)
	tr.halt()
	if f := tr.failures.Load(); f != 0 {
		t.Fatalf("%d requests failed during the outage", f)
	}
	s.assertExactlyOnce(ts.scopedToken, int(tr.served.Load()))
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
	s.assertExactlyOnce(ts.scopedToken, int(tr.served.Load()))
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

func (s *stack) envValue(name string) string {
	v := ""
	for _, kv := range s.env {
		if len(kv) > len(name) && kv[:len(name)+1] == name+"=" {
			v = kv[len(name)+1:]
		}
	}
	return v
}
