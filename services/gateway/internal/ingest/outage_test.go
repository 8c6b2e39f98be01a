package ingest

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgconn"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"trueportai/services/gateway/internal/analytics"
	"trueportai/services/gateway/internal/usage"
)

// downWriter fails every insert with a connection error while down is set.
type downWriter struct {
	Writer
	down  atomic.Bool
	tries atomic.Int64
}

func (w *downWriter) Insert(ctx context.Context, evs []usage.Event) (int, error) {
	if w.down.Load() {
		w.tries.Add(1)
		return 0, fmt.Errorf("insert usage: %w", &pgconn.ConnectError{})
	}
	return w.Writer.Insert(ctx, evs)
}

// TestIngesterOutlastsADatabaseOutage: while Postgres is unreachable the
// ingester keeps its batch (no redelivery: the messages are kept in
// progress) and retries with a capped backoff; when Postgres is back every
// event is stored once. The consumer's redelivery budget is 3 here: before,
// each failed insert was a Nak, and after 3 the batch was dropped for good.
func TestIngesterOutlastsADatabaseOutage(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	pool := migratedPool(t, "outage")
	_, js, streams := testStreamsOn(t, "outage")
	want := publishTestEvents(t, js, streams.Subject, 40)
	w := &downWriter{Writer: analytics.New(pool)}
	w.down.Store(true)
	in := NewIngester(w, js, streams.Name, noTouch{}, log)
	in.maxDeliver, in.ackWait, in.retryMax = 3, time.Second, 500*time.Millisecond
	ictx, stop := context.WithCancel(ctx)
	defer stop()
	go func() { _ = in.Run(ictx) }()
	// Down for several AckWaits and past 3 deliveries' worth of Naks.
	deadline := time.Now().Add(8 * time.Second)
	for time.Now().Before(deadline) {
		time.Sleep(100 * time.Millisecond)
	}
	if w.tries.Load() < 5 {
		t.Fatalf("%d attempts during the outage: the ingester is not retrying", w.tries.Load())
	}
	w.down.Store(false)
	waitDrained(t, js, streams.Name)
	if got := storedIDs(t, pool); fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("stored %v, want %v", got, want)
	}
	cons, err := js.Consumer(ctx, streams.Name, "usage-ingester")
	if err != nil {
		t.Fatal(err)
	}
	ci, err := cons.Info(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if ci.NumRedelivered != 0 {
		t.Errorf("%d messages redelivered: the batch was not kept in progress", ci.NumRedelivered)
	}
}

// publishTestEvents publishes n events (req-00, req-01, …), one a message
// with its Nats-Msg-Id, and returns their request ids.
func publishTestEvents(t *testing.T, js jetstream.JetStream, subject string, n int) []string {
	t.Helper()
	var ids []string
	for i := range n {
		ev := testEvent(fmt.Sprintf("req-%02d", i))
		b, _ := json.Marshal(ev)
		msg := &nats.Msg{Subject: subject, Data: b, Header: nats.Header{}}
		msg.Header.Set(jetstream.MsgIDHeader, ev.RequestID)
		if _, err := js.PublishMsg(context.Background(), msg); err != nil {
			t.Fatal(err)
		}
		ids = append(ids, ev.RequestID)
	}
	return ids
}
