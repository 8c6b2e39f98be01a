package ingest

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"trueportai/services/gateway/internal/analytics"
	"trueportai/services/gateway/internal/usage"
)

// heldWriter holds its first Insert until release is closed.
type heldWriter struct {
	Writer
	once    sync.Once
	entered chan struct{}
	release chan struct{}
}

func (w *heldWriter) Insert(ctx context.Context, evs []usage.Event) (int, error) {
	first := false
	w.once.Do(func() { first = true })
	if first {
		close(w.entered)
		<-w.release
	}
	return w.Writer.Insert(ctx, evs)
}

// TestIngesterFetchesWhileStoring: while a batch is being stored, the
// loop has already fetched the next one (its messages delivered and kept
// in progress), so the database's time and NATS's overlap; every event is
// still stored once and nothing is redelivered, however long the first
// insert takes (here several AckWaits).
func TestIngesterFetchesWhileStoring(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	pool := migratedPool(t, "pipeline")
	_, js, streams := testStreamsOn(t, "pipeline")
	want := publishTestEvents(t, js, streams.Subject, 30)
	w := &heldWriter{Writer: analytics.New(pool), entered: make(chan struct{}), release: make(chan struct{})}
	in := NewIngester(w, js, streams.Name, noTouch{}, log)
	in.batch, in.ackWait = 10, time.Second
	ictx, stop := context.WithCancel(ctx)
	defer stop()
	go func() { _ = in.Run(ictx) }()
	select {
	case <-w.entered:
	case <-time.After(10 * time.Second):
		t.Fatal("the first batch never reached the database")
	}
	cons, err := js.Consumer(ctx, streams.Name, "usage-ingester")
	if err != nil {
		t.Fatal(err)
	}
	// The next batch is delivered while the first is held.
	var ci *jetstream.ConsumerInfo
	for deadline := time.Now().Add(5 * time.Second); ; time.Sleep(50 * time.Millisecond) {
		if ci, err = cons.Info(ctx); err != nil {
			t.Fatal(err)
		}
		if ci.NumAckPending >= 20 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d messages delivered while the first batch of 10 was being stored: the next batch was not fetched meanwhile", ci.NumAckPending)
		}
	}
	// Held past several AckWaits: both batches stay in progress.
	time.Sleep(3 * time.Second)
	close(w.release)
	waitDrained(t, js, streams.Name)
	if got := storedIDs(t, pool); fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("stored %v, want %v", got, want)
	}
	if ci, err = cons.Info(ctx); err != nil {
		t.Fatal(err)
	}
	if ci.NumRedelivered != 0 {
		t.Errorf("%d messages redelivered: a waiting batch was not kept in progress", ci.NumRedelivered)
	}
}
