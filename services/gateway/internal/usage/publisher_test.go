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
func testStream(t testing.TB, name string) (nc *nats.Conn, js jetstream.JetStream, stream, subject string) {
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
	s := testStreams(name)
	if err := EnsureStreams(context.Background(), js, s); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { DeleteStreams(context.Background(), js, s) })
	return nc, js, s.Name, s.Subject
}

// testStreams names a test's own streams, small (a stream's MaxBytes is
// reserved on the shared server until it is deleted).
func testStreams(name string) Streams {
	suffix := fmt.Sprintf("%d", time.Now().UnixNano())
	return NewStreams("TEST_"+strings.ToUpper(name)+"_"+suffix, "test."+name+"."+suffix, 64<<20, 16<<20, 1)
}

// TestPublisherSanitisesPoisonEvents: events a key holder can shape (a NUL
// in the model, a 2 MB model, invalid UTF-8, bodies that JSON escaping
// inflates past the server's max payload) are published, never spooled:
// before sanitising, the 2 MB model was refused by NATS (max payload),
// spooled, and stopped the spool's replay at its line for good.
func TestPublisherSanitisesPoisonEvents(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	nc, js, stream, subject := testStream(t, "poison")
	spool, err := OpenSpool(t.TempDir(), 64<<20)
	if err != nil {
		t.Fatal(err)
	}
	pub, err := NewPublisher(nc, subject, spool, log)
	if err != nil {
		t.Fatal(err)
	}
	body := strings.Repeat("<\x00", MaxBodyBytes)
	evs := map[string]*Event{
		"nul":    {Model: "gpt\x00-4o"},
		"huge":   {Model: strings.Repeat("m", 2<<20)},
		"utf8":   {Model: "gpt-\xff", KeyName: "k\xc3"},
		"bodies": {Model: "gpt-4o", RequestBody: &body, ResponseBody: &body},
		"clean":  {Model: "gpt-4o"},
	}
	for id, ev := range evs {
		ev.RequestID, ev.CreatedAt, ev.TenantID, ev.Env, ev.Provider, ev.Path, ev.StatusCode, ev.Outcome =
			id, time.Now().UTC(), "6f1c2a52-8f77-4a38-9d71-6f0a8d1e0a11", "production", "openai", "/chat/completions", 200, OutcomeOK
		pub.Publish(ev)
	}
	runCtx, stop := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() { defer close(done); pub.Run(runCtx) }()
	deadline := time.Now().Add(10 * time.Second)
	for pub.Counters().Published < int64(len(evs)) && time.Now().Before(deadline) {
		time.Sleep(20 * time.Millisecond)
	}
	stop()
	<-done
	if c := pub.Counters(); c.Published != int64(len(evs)) || c.Spooled != 0 || c.Lost != 0 || c.Sanitised != 4 {
		t.Fatalf("counters %+v, want %d published, 4 sanitised, none spooled or lost", c, len(evs))
	}
	// Every event is in the stream, storable.
	cons, err := js.OrderedConsumer(ctx, stream, jetstream.OrderedConsumerConfig{})
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]Event{}
	for len(got) < len(evs) {
		msg, err := cons.Next(jetstream.FetchMaxWait(5 * time.Second))
		if err != nil {
			t.Fatalf("after %d events: %v", len(got), err)
		}
		if len(msg.Data()) > MessageLimit(nc) {
			t.Fatalf("a message of %d bytes, over the limit %d", len(msg.Data()), MessageLimit(nc))
		}
		for _, line := range strings.Split(string(msg.Data()), "\n") {
			ev, err := Decode([]byte(line))
			if err != nil {
				t.Fatal(err)
			}
			got[ev.RequestID] = ev
		}
	}
	for id, ev := range got {
		if ev.Sanitize() {
			t.Errorf("%s: published unsanitised", id)
		}
	}
	if m := got["huge"].Model; len(m) != MaxModelBytes || !strings.HasSuffix(m, TruncationMark) {
		t.Errorf("2 MB model stored as %d bytes", len(m))
	}
	if m := got["nul"].Model; m != "gpt\uFFFD-4o" {
		t.Errorf("NUL model stored as %q", m)
	}
}
