package e2e

import (
	"fmt"
	"testing"
	"time"
)

// TestKeyChangesReachOtherReplicas: a key created, disabled and deleted on
// one gateway replica is honoured by another within 5 s, through NATS events
// (no per-request database lookups).
func TestKeyChangesReachOtherReplicas(t *testing.T) {
	t.Parallel()
	s := newStack(t)
	ts := s.setupTenant("replicas-" + randHex(3))

	// Second replica: same databases and NATS prefix, its own ports.
	addr := freeAddr(t)
	env := append(append([]string(nil), s.env...), "GATEWAY_HTTP_ADDR="+addr, "GATEWAY_GRPC_ADDR="+freeAddr(t), "GATEWAY_SPOOL_DIR="+t.TempDir())
	startProc(t, "gateway", env)
	other := "http://" + addr
	s.waitHealthy(other + "/trueportai-services/health")
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
