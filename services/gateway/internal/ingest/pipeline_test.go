package ingest

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/nats-io/nats.go/jetstream"

	"trueportai/services/gateway/internal/analytics"
	"trueportai/services/gateway/internal/usage"
)

// runHeld publishes 30 events and runs an ingester (batches of 10, AckWait
// 1 s) over the writer newWriter wraps around a migrated store, until the
// test ends; it returns once the first batch has reached the writer
// (entered closed).
func runHeld(t *testing.T, name string, newWriter func(*analytics.Store) (w Writer, entered chan struct{})) (*pgxpool.Pool, jetstream.JetStream, usage.Streams, []string) {
	t.Helper()
	pool := migratedPool(t, name)
	_, js, streams := testStreamsOn(t, name)
	want := publishTestEvents(t, js, streams.Subject, 30)
	w, entered := newWriter(analytics.New(pool))
	in := NewIngester(w, js, streams.Name, noTouch{}, slog.New(slog.NewTextHandler(io.Discard, nil)))
	in.batch, in.ackWait = 10, time.Second
	ctx, stop := context.WithCancel(context.Background())
	t.Cleanup(stop)
	go func() { _ = in.Run(ctx) }()
	select {
	case <-entered:
	case <-time.After(10 * time.Second):
		t.Fatal("the first batch never reached the database")
	}
	return pool, js, streams, want
}

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
	var w *heldWriter
	pool, js, streams, want := runHeld(t, "pipeline", func(st *analytics.Store) (Writer, chan struct{}) {
		w = &heldWriter{Writer: st, entered: make(chan struct{}), release: make(chan struct{})}
		return w, w.entered
	})
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

// heldBatchWriter is an analytics.Store whose first InsertBatch waits until
// release is closed; it counts the batches prepared meanwhile.
type heldBatchWriter struct {
	*analytics.Store
	once            sync.Once
	entered         chan struct{}
	release         chan struct{}
	mu              sync.Mutex
	prepared, held  int // batches prepared in all, and while the first insert was held
	holding, insert bool
}

func (w *heldBatchWriter) Prepare(evs []usage.Event) *analytics.Batch {
	w.mu.Lock()
	w.prepared++
	if w.holding {
		w.held++
	}
	w.mu.Unlock()
	return w.Store.Prepare(evs)
}

func (w *heldBatchWriter) InsertBatch(ctx context.Context, b *analytics.Batch) (int, error) {
	w.once.Do(func() {
		w.mu.Lock()
		w.holding = true
		w.mu.Unlock()
		close(w.entered)
		<-w.release
		w.mu.Lock()
		w.holding = false
		w.mu.Unlock()
	})
	return w.Store.InsertBatch(ctx, b)
}

func (w *heldBatchWriter) Insert(context.Context, []usage.Event) (int, error) {
	w.mu.Lock()
	w.insert = true
	w.mu.Unlock()
	return 0, fmt.Errorf("Insert called: a whole batch must be stored as prepared")
}

// TestIngesterPreparesWhileStoring: the fetch stage prepares the next batch
// (deduplicated, folded, encoded: analytics.Store.Prepare) while the store
// stage waits for the database with the one before it, and every batch is
// stored as prepared.
func TestIngesterPreparesWhileStoring(t *testing.T) {
	t.Parallel()
	var w *heldBatchWriter
	pool, js, streams, want := runHeld(t, "prepare", func(st *analytics.Store) (Writer, chan struct{}) {
		w = &heldBatchWriter{Store: st, entered: make(chan struct{}), release: make(chan struct{})}
		return w, w.entered
	})
	for deadline := time.Now().Add(5 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		w.mu.Lock()
		held := w.held
		w.mu.Unlock()
		if held >= 1 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("no batch was prepared while the first was being stored")
		}
	}
	close(w.release)
	waitDrained(t, js, streams.Name)
	if got := storedIDs(t, pool); fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("stored %v, want %v", got, want)
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.insert || w.prepared < 3 {
		t.Fatalf("Insert called: %v; %d batches prepared (30 events in batches of 10)", w.insert, w.prepared)
	}
}
