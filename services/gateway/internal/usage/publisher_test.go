package usage

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"testing"
	"time"
)

// TestPublisherBatchesUnderLoadAndIngesterSplits: events queued faster than
// they are sent travel several to a message; a message with a bad line
// keeps its good events; every event becomes exactly one row.
func TestPublisherBatchesUnderLoadAndIngesterSplits(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	pool := migratedPool(t, "publish")
	nc, js, stream, subject := testStream(t, "publish")
	spool, err := OpenSpool(t.TempDir(), 1<<20)
	if err != nil {
		t.Fatal(err)
	}
	pub, err := NewPublisher(nc, subject, spool, log)
	if err != nil {
		t.Fatal(err)
	}

	// Queue everything before the workers start: they find a full queue.
	const n = 2000
	for i := range n {
		pub.Publish(&Event{RequestID: fmt.Sprintf("req-%d", i), CreatedAt: time.Now().UTC(), TenantID: "6f1c2a52-8f77-4a38-9d71-6f0a8d1e0a11",
			Env: "production", Provider: "openai", Path: "/chat/completions", StatusCode: 200, Outcome: OutcomeOK})
	}
	runCtx, stop := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() { defer close(done); pub.Run(runCtx) }()
	deadline := time.Now().Add(10 * time.Second)
	for {
		if p, _, _ := pub.Stats(); p == n {
			break
		}
		if time.Now().After(deadline) {
			p, s, l := pub.Stats()
			t.Fatalf("published %d spooled %d lost %d, want %d published", p, s, l, n)
		}
		time.Sleep(20 * time.Millisecond)
	}
	stop()
	<-done
	// Every acknowledged message gave its bytes back to the in-flight budget.
	if !pub.inflight.TryAcquire(maxInflightBytes) {
		t.Fatal("in-flight byte budget not fully released after all acks")
	}
	info, err := js.Stream(ctx, stream)
	if err != nil {
		t.Fatal(err)
	}
	msgs := info.CachedInfo().State.Msgs
	if msgs >= n || msgs < n/maxBatchEvents {
		t.Fatalf("%d events went as %d messages: want batches of up to %d", n, msgs, maxBatchEvents)
	}
	// A batch whose second line is not an event: the first still lands.
	bad := `{"request_id":"req-extra","created_at":"2026-11-28T10:00:00Z","tenant_id":"6f1c2a52-8f77-4a38-9d71-6f0a8d1e0a11","env":"production","provider":"openai","path":"/x","status_code":200,"outcome":"ok"}` + "\nnot json"
	if _, err := js.Publish(ctx, subject, []byte(bad)); err != nil {
		t.Fatal(err)
	}

	in := NewIngester(pool, js, stream, noTouch{}, log)
	ictx, istop := context.WithCancel(ctx)
	defer istop()
	go func() { _ = in.Run(ictx) }()
	deadline = time.Now().Add(20 * time.Second)
	for countRows(t, pool, ctx) < n+1 {
		if time.Now().After(deadline) {
			t.Fatalf("rows = %d, want %d", countRows(t, pool, ctx), n+1)
		}
		time.Sleep(100 * time.Millisecond)
	}
	time.Sleep(300 * time.Millisecond)
	if got := countRows(t, pool, ctx); got != n+1 {
		t.Fatalf("rows = %d, want exactly %d", got, n+1)
	}
}
