package e2e

import (
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"
)

// TestKeyChangesReachOtherReplicas: a key created, disabled and deleted on
// one gateway replica is honoured by another within 5 s, through NATS events
// (no per-request database lookups).
func TestKeyChangesReachOtherReplicas(t *testing.T) {
	t.Parallel()
	s := newStack(t)
	ts := s.setupTenant("replicas-" + randHex(3))

	// Second replica: same databases and NATS prefix, its own listeners.
	other, _ := s.startGateway("GATEWAY_SPOOL_DIR=" + t.TempDir())
	url := other + "/trueportai-services/openai/v1/chat/completions"

	// A key created after the replica started is learnt from the event.
	var k struct {
		ID  string `json:"id"`
		Key string `json:"key"`
	}
	if c := call(t, "POST", s.gatewayURL+"/trueportai-services/api/v1/keys", ts.scopedToken, map[string]any{"name": "late"}, &k); c != 201 {
		t.Fatalf("create: %d", c)
	}
	eventually(t, 5*time.Second, func() error { return expectStatus(rawStatus(t, url, k.Key), 200, 400) })

	if c := call(t, "PATCH", s.gatewayURL+"/trueportai-services/api/v1/keys/"+k.ID, ts.scopedToken, map[string]any{"enabled": false}, nil); c != 200 {
		t.Fatalf("disable: %d", c)
	}
	eventually(t, 5*time.Second, func() error { return expectStatus(rawStatus(t, url, k.Key), 401) })

	if c := call(t, "PATCH", s.gatewayURL+"/trueportai-services/api/v1/keys/"+k.ID, ts.scopedToken, map[string]any{"enabled": true}, nil); c != 200 {
		t.Fatalf("enable: %d", c)
	}
	eventually(t, 5*time.Second, func() error { return expectStatus(rawStatus(t, url, k.Key), 200, 400) })

	if c := call(t, "DELETE", s.gatewayURL+"/trueportai-services/api/v1/keys/"+k.ID, ts.scopedToken, nil, nil); c != 204 {
		t.Fatalf("delete: %d", c)
	}
	eventually(t, 5*time.Second, func() error { return expectStatus(rawStatus(t, url, k.Key), 401) })

	// Expiry needs no event: an expired key is refused at once everywhere.
	exp := time.Now().Add(1500 * time.Millisecond).UTC().Format(time.RFC3339Nano)
	if c := call(t, "PATCH", s.gatewayURL+"/trueportai-services/api/v1/keys/"+ts.keyID, ts.scopedToken, map[string]any{"expires_at": exp}, nil); c != 200 {
		t.Fatalf("expire: %d", c)
	}
	eventually(t, 5*time.Second, func() error { return expectStatus(rawStatus(t, url, ts.apiKey), 401) })
}

func expectStatus(got int, want ...int) error {
	for _, w := range want {
		if got == w {
			return nil
		}
	}
	return fmt.Errorf("status %d, want %v", got, want)
}

// TestSplitProxyAndIngesterRoles: a GATEWAY_ROLE=proxy replica ingests
// nothing itself; a GATEWAY_ROLE=ingester process (health and metrics only,
// no proxy routes) writes every served request's row.
func TestSplitProxyAndIngesterRoles(t *testing.T) {
	t.Parallel()
	s := newStack(t, "GATEWAY_ROLE=proxy")
	ts := s.setupTenant("roles-" + randHex(3))
	url := s.gatewayURL + "/trueportai-services/openai/v1/chat/completions"
	const n = 20
	for range n {
		// No body: the upstream answers 400, still a served, metered request.
		if err := expectStatus(rawStatus(t, url, ts.apiKey), 200, 400); err != nil {
			t.Fatalf("proxied call: %v", err)
		}
	}
	// Every event is in the stream, and nothing consumes it: the proxy
	// replica created no consumer.
	eventually(t, 10*time.Second, func() error {
		return s.metricIs(s.gatewayInternalURL, "trueport_usage_events_published_total", n)
	})
	if _, err := usageConsumer(s.envValue("NATS_PREFIX"), ""); !errors.Is(err, jetstream.ErrConsumerNotFound) {
		t.Fatalf("usage consumer on a proxy-only stack: %v, want none", err)
	}
	var page logPage
	if c := call(t, "GET", s.gatewayURL+"/trueportai-services/api/v1/analytics/logs", ts.scopedToken, nil, &page); c != 200 || len(page.Items) != 0 ||
		page.Total != 0 || page.TotalEstimated {
		// (An empty first page makes the total exact even when the count runs
		// out of its budget on a loaded machine: analytics.LogPage.settle.)
		t.Fatalf("proxy role ingested: status %d, %d rows on the page, total %d (estimated %v)", c, len(page.Items), page.Total, page.TotalEstimated)
	}

	ingester, ingesterInternal := s.startGateway("GATEWAY_ROLE=ingester")
	if c := rawStatus(t, ingester+"/trueportai-services/openai/v1/chat/completions", ts.apiKey); c != 404 {
		t.Fatalf("ingester role served a proxy route: %d", c)
	}
	if c := call(t, "GET", ingesterInternal+"/metrics", "", nil, nil); c != 200 {
		t.Fatalf("ingester internal /metrics: %d", c)
	}
	if c := call(t, "GET", ingester+"/metrics", "", nil, nil); c != 404 {
		t.Fatalf("ingester public /metrics: %d, want 404", c)
	}
	s.waitLogs(ts.scopedToken, n)
	// The ingester's metrics count what it stored.
	eventually(t, 5*time.Second, func() error {
		return s.metricIs(ingesterInternal, `trueport_usage_ingested_events_total{result="inserted"}`, n)
	})
}

// metricIs checks that the process whose internal listener is base reports
// series = want on /metrics.
func (s *stack) metricIs(base, series string, want int) error {
	resp, err := http.Get(base + "/metrics")
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	if line := fmt.Sprintf("\n%s %d\n", series, want); !strings.Contains(string(body), line) {
		return fmt.Errorf("%s/metrics lacks %q", base, strings.TrimSpace(line))
	}
	return nil
}
