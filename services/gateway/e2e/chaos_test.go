package e2e

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// outageLength is how long the fault tests keep Postgres or NATS down:
// E2E_OUTAGE (make chaos sets 60s), 15 s by default (make test).
func outageLength(t *testing.T) time.Duration {
	t.Helper()
	if v := os.Getenv("E2E_OUTAGE"); v != "" {
		d, err := time.ParseDuration(v)
		if err != nil {
			t.Fatalf("E2E_OUTAGE: %v", err)
		}
		return d
	}
	return 15 * time.Second
}

// poisonBodies are requests a key holder can send to shape the usage event
// of their own request: a NUL in the model (Postgres refuses NUL in text:
// the batch it travelled in failed, and every event in it was redelivered
// until dropped), a 2 MB model (over NATS's max payload: spooled, and the
// spool's replay stopped at its line for good), invalid UTF-8.
var poisonBodies = [][]byte{
	[]byte(`{"model":"gpt\u0000-4o","messages":[{"role":"user","content":"poison"}]}`),
	[]byte(`{"model":"` + strings.Repeat("m", 2<<20) + `","messages":[{"role":"user","content":"poison"}]}`),
	[]byte("{\"model\":\"gpt-\xff\xfe-4o\",\"messages\":[{\"role\":\"user\",\"content\":\"poison\"}]}"),
}

// startPoison mixes poison requests into tr's traffic (one every 250 ms);
// they are served like any other, and their ids join tr's.
func startPoison(tr *traffic, url, key string) {
	tr.wg.Go(func() {
		for i := 0; ; i++ {
			select {
			case <-tr.stop:
				return
			case <-time.After(250 * time.Millisecond):
			}
			tr.do(url, key, poisonBodies[i%len(poisonBodies)])
		}
	})
}

// injected are events published straight to the usage stream, as a
// publisher that does not sanitise would: what must become rows, and the
// request ids (or raw lines) that must end in the dead-letter stream.
type injected struct {
	rows, dead []string
}

// injectPoison publishes one batched message of events a sanitising
// gateway never sends: a NUL in the model (the ingester sanitises it: a
// row), a tenant id and a key id that are not uuids (refused by Postgres:
// dead letters), a line that is not JSON (a dead letter), and a good event.
func injectPoison(t *testing.T, natsURL, prefix, tenantID string) injected {
	t.Helper()
	tag := randHex(4)
	ev := func(id, tenant, key, model string) string {
		b, _ := json.Marshal(map[string]any{"request_id": id, "created_at": time.Now().UTC(), "tenant_id": tenant, "env": "production",
			"key_id": key, "provider": "openai", "model": model, "path": "/chat/completions", "status_code": 200, "outcome": "ok"})
		return string(b)
	}
	inj := injected{
		rows: []string{"inject-good-" + tag, "inject-nul-" + tag},
		dead: []string{"inject-badtenant-" + tag, "inject-badkey-" + tag, "not json " + tag},
	}
	body := strings.Join([]string{
		ev(inj.rows[0], tenantID, "", "gpt-4o"),
		ev(inj.dead[0], "not-a-uuid", "", "gpt-4o"),
		ev(inj.rows[1], tenantID, "", "a\x00b"),
		inj.dead[2],
		ev(inj.dead[1], tenantID, "not-a-uuid-either", "gpt-4o"),
	}, "\n")
	nc, err := nats.Connect(natsURL, nats.Timeout(5*time.Second))
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if _, err := js.Publish(ctx, prefix+".usage.events", []byte(body)); err != nil {
		t.Fatal(err)
	}
	return inj
}

// deadLetterIDs runs `gateway deadletter list` with the stack's
// environment and returns the request ids (or raw lines) it lists.
func (s *stack) deadLetterIDs() []string {
	s.t.Helper()
	cmd := exec.Command(filepath.Join(binDir, "gateway"), "deadletter", "list")
	cmd.Env = append(os.Environ(), s.env...)
	out, err := cmd.CombinedOutput()
	if err != nil {
		s.t.Fatalf("gateway deadletter list: %v\n%s", err, out)
	}
	var ids []string
	sc := bufio.NewScanner(bytes.NewReader(out))
	sc.Buffer(nil, 4<<20)
	for sc.Scan() {
		var d struct {
			RequestID string `json:"request_id"`
			Raw       string `json:"raw"`
		}
		if json.Unmarshal(sc.Bytes(), &d) != nil {
			continue // the summary line
		}
		if d.RequestID != "" {
			ids = append(ids, d.RequestID)
		} else {
			ids = append(ids, d.Raw)
		}
	}
	return ids
}

// runOutage drives a stack (its gateway database on a private Postgres
// cluster when pg, its NATS a private server) with traffic and poison
// requests, stops Postgres and/or NATS for the outage length, starts them
// again, and checks that every served request is exactly one usage row
// (ids compared), that the injected poison is in the dead-letter stream,
// that no proxied request failed, and, while Postgres is down, that REST
// routes answer 503 with Retry-After.
func runOutage(t *testing.T, stopPG, stopNATS bool) {
	t.Parallel()
	down := outageLength(t)
	nats := startNATS(t)
	env := []string{"NATS_URL=" + nats.url()}
	var pg *pgCluster
	if stopPG {
		pg = startPostgres(t)
		env = append(env, "GATEWAY_DATABASE_URL="+pg.url("e2e_gateway"))
	}
	s := newStack(t, env...)
	ts := s.setupTenant("chaos-" + randHex(3))
	// No rate limit: 6000 rpm (the enterprise plan's cap, which now clamps
	// keys) refused requests when the machine was fast enough to send more.
	unlimitKey(t, s, ts)
	url := s.gatewayURL + "/trueportai-services/openai/v1/chat/completions"
	tr := startTraffic(url, ts.apiKey, 4)
	startPoison(tr, url, ts.apiKey)
	waitServed(t, tr, 30)
	inj := injectPoison(t, nats.url(), s.envValue("NATS_PREFIX"), ts.tenantID)

	start := time.Now()
	if stopPG {
		pg.stop()
	}
	if stopNATS {
		nats.stop()
	}
	before := tr.served.Load()
	if stopPG {
		// Management routes: 503 with Retry-After, not 500.
		eventually(t, 10*time.Second, func() error {
			req, _ := http.NewRequest("GET", s.gatewayURL+"/trueportai-services/api/v1/keys", nil)
			req.Header.Set("Authorization", "Bearer "+ts.scopedToken)
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				return err
			}
			resp.Body.Close()
			if resp.StatusCode != http.StatusServiceUnavailable || resp.Header.Get("Retry-After") == "" {
				return fmt.Errorf("keys list while the database is down: %d, Retry-After %q", resp.StatusCode, resp.Header.Get("Retry-After"))
			}
			return nil
		})
	}
	waitServed(t, tr, before+50) // the proxy serves on from its caches
	time.Sleep(time.Until(start.Add(down)))
	during := tr.served.Load() - before
	if stopNATS {
		nats.start()
	}
	if stopPG {
		pg.start()
	}
	waitServed(t, tr, tr.served.Load()+50)
	tr.halt()
	if f := tr.failures.Load(); f != 0 {
		t.Fatalf("%d proxied requests failed (first: %v)", f, tr.failed)
	}
	served := tr.servedIDs()
	s.assertExactlyOnce(ts.tenantID, append(served, inj.rows...))
	got := map[string]bool{}
	for _, id := range s.deadLetterIDs() {
		got[id] = true
	}
	for _, id := range inj.dead {
		if !got[id] {
			t.Errorf("%q is not in the dead-letter stream (it holds %v)", id, got)
		}
	}
	t.Logf("outage %s (postgres %v, nats %v): %d requests served in all, %d during the outage, %d dead letters",
		down, stopPG, stopNATS, len(served), during, len(got))
}

// TestPostgresOutage: the gateway's database stops under traffic mixed
// with poison requests and comes back; nothing is lost or doubled.
func TestPostgresOutage(t *testing.T) { runOutage(t, true, false) }

// TestNATSOutage: NATS stops under traffic mixed with poison requests
// (the gateway spools) and comes back; nothing is lost or doubled.
func TestNATSOutage(t *testing.T) { runOutage(t, false, true) }

// TestPostgresAndNATSOutage: both at once.
func TestPostgresAndNATSOutage(t *testing.T) { runOutage(t, true, true) }
