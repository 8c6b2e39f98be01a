package usage

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// TestPublisherBatchesUnderLoad: events queued faster than they are sent
// travel several to a message, and every acknowledged message gives its
// bytes back to the in-flight budget. (Package ingest checks that the
// batches become one row per event.)
func TestPublisherBatchesUnderLoad(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
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
}

func natsURL() string {
	if u := os.Getenv("NATS_URL"); u != "" {
		return u
	}
	return nats.DefaultURL
}

// testStream connects to NATS and creates a usage stream of the test's own
// (deleted at cleanup).
func testStream(t *testing.T, name string) (nc *nats.Conn, js jetstream.JetStream, stream, subject string) {
	t.Helper()
	nc, err := nats.Connect(natsURL())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(nc.Close)
	js, err = jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	suffix := fmt.Sprintf("%d", time.Now().UnixNano())
	stream, subject = "TEST_"+strings.ToUpper(name)+"_"+suffix, "test."+name+"."+suffix
	if err := EnsureStream(context.Background(), js, stream, subject); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = js.DeleteStream(context.Background(), stream) })
	return nc, js, stream, subject
}
