package usage

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"trueportai/services/gateway/internal/migrations"
	"trueportai/services/internal/dbtest"
	"trueportai/services/internal/pgdb"
)

type noTouch struct{}

func (noTouch) TouchLastUsed(context.Context, map[string]time.Time) error { return nil }

func natsURL() string {
	if u := os.Getenv("NATS_URL"); u != "" {
		return u
	}
	return nats.DefaultURL
}

// TestIngesterCrashBetweenCommitAndAck: an ingester commits a batch and dies
// before acking; the redelivered batch is inserted idempotently, so each
// event is one row.
func TestIngesterCrashBetweenCommitAndAck(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	pool := migratedPool(t, "ingest")
	_, js, stream, subject := testStream(t, "ingest")

	const n = 50
	for i := 0; i < n; i++ {
		ev := Event{RequestID: fmt.Sprintf("req-%d", i), CreatedAt: time.Now().UTC(), TenantID: "6f1c2a52-8f77-4a38-9d71-6f0a8d1e0a11", Env: "production",
			Provider: "openai", Path: "/chat/completions", StatusCode: 200, Outcome: OutcomeOK}
		b, _ := json.Marshal(ev)
		msg := &nats.Msg{Subject: subject, Data: b, Header: nats.Header{}}
		msg.Header.Set(jetstream.MsgIDHeader, ev.RequestID)
		if _, err := js.PublishMsg(ctx, msg); err != nil {
			t.Fatal(err)
		}
	}
	// A duplicate publish (same msg id) is dropped by the stream.
	dup, _ := json.Marshal(Event{RequestID: "req-0", TenantID: "6f1c2a52-8f77-4a38-9d71-6f0a8d1e0a11"})
	dmsg := &nats.Msg{Subject: subject, Data: dup, Header: nats.Header{}}
	dmsg.Header.Set(jetstream.MsgIDHeader, "req-0")
	if ack, err := js.PublishMsg(ctx, dmsg); err != nil || !ack.Duplicate {
		t.Fatalf("duplicate publish: ack=%+v err=%v", ack, err)
	}
	// A poison message is terminated, not retried forever.
	if _, err := js.Publish(ctx, subject, []byte("not json")); err != nil {
		t.Fatal(err)
	}

	crashed := make(chan struct{})
	runCtx, stop := context.WithCancel(ctx)
	firstReg, secondReg := prometheus.NewRegistry(), prometheus.NewRegistry()
	firstMetrics, secondMetrics := NewIngestMetrics(firstReg), NewIngestMetrics(secondReg)
	first := NewIngester(pool, js, stream, noTouch{}, log)
	first.SetMetrics(firstMetrics)
	first.ackWait = time.Second
	first.crashAfterCommit = func() bool {
		select {
		case <-crashed:
		default:
			close(crashed)
			stop() // the process "dies" here: committed, never acked
		}
		return true
	}
	_ = first.Run(runCtx)
	<-crashed
	if got := countRows(t, pool, ctx); got == 0 {
		t.Fatal("the crashed ingester committed nothing")
	}

	second := NewIngester(pool, js, stream, noTouch{}, log)
	second.SetMetrics(secondMetrics)
	second.ackWait = time.Second
	ctx2, stop2 := context.WithCancel(ctx)
	defer stop2()
	go func() { _ = second.Run(ctx2) }()
	deadline := time.Now().Add(20 * time.Second)
	for {
		info, err := js.Stream(ctx, stream)
		if err != nil {
			t.Fatal(err)
		}
		cons, err := info.Consumer(ctx, "usage-ingester")
		if err != nil {
			t.Fatal(err)
		}
		ci, err := cons.Info(ctx)
		if err == nil && ci.NumAckPending == 0 && ci.NumPending == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("consumer did not drain: %+v", ci)
		}
		time.Sleep(100 * time.Millisecond)
	}
	if got := countRows(t, pool, ctx); got != n {
		t.Fatalf("rows = %d, want exactly %d", got, n)
	}
	// The metrics tell the same story: every event inserted once overall,
	// the crashed batch seen again as duplicates, the poison message dropped.
	count := func(m *IngestMetrics, result string) int {
		return int(testutil.ToFloat64(m.events.WithLabelValues(result)))
	}
	if got := count(firstMetrics, "inserted") + count(secondMetrics, "inserted"); got != n {
		t.Fatalf("metrics: %d events inserted, want %d", got, n)
	}
	if got, want := count(secondMetrics, "duplicate"), count(firstMetrics, "inserted"); got != want {
		t.Fatalf("metrics: the second ingester saw %d duplicates, want the %d the first one committed", got, want)
	}
	if got := count(firstMetrics, "poison") + count(secondMetrics, "poison"); got < 1 {
		t.Fatalf("metrics: poison events %d, want at least 1", got)
	}
	// Rollups counted each event once despite the redelivery.
	var rolled int
	if err := pool.QueryRow(ctx, `SELECT COALESCE(sum(requests), 0) FROM usage_rollups_hourly`).Scan(&rolled); err != nil {
		t.Fatal(err)
	}
	if rolled != n {
		t.Fatalf("rollups count %d requests, want %d", rolled, n)
	}
	if err := pool.QueryRow(ctx, `SELECT COALESCE(sum(requests), 0) FROM usage_rollups_daily`).Scan(&rolled); err != nil || rolled != n {
		t.Fatalf("daily rollups count %d requests (%v), want %d", rolled, err, n)
	}
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

func countRows(t *testing.T, pool *pgxpool.Pool, ctx context.Context) int {
	t.Helper()
	var n int
	if err := pool.QueryRow(ctx, `SELECT count(*) FROM usage_logs`).Scan(&n); err != nil {
		t.Fatal(err)
	}
	return n
}

func TestRetentionDeletesOnlyExpiredRowsOfKnownTenants(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	pool, err := pgdb.Open(ctx, dbtest.NewURL(t, "retention"), log)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(pool.Close)
	if err := pgdb.Migrate(ctx, pool, migrations.FS, log); err != nil {
		t.Fatal(err)
	}
	in := NewIngester(pool, nil, "", noTouch{}, log)
	known, unknown := "11111111-1111-1111-1111-111111111111", "22222222-2222-2222-2222-222222222222"
	now := time.Now().UTC()
	var evs []Event
	for i, age := range []time.Duration{time.Hour, 10 * 24 * time.Hour} {
		for j, tenant := range []string{known, unknown} {
			evs = append(evs, Event{RequestID: fmt.Sprintf("r%d%d", i, j), CreatedAt: now.Add(-age), TenantID: tenant, Env: "production",
				Provider: "openai", Path: "/x", StatusCode: 200, Outcome: OutcomeOK,
				Violations: []Violation{{ID: fmt.Sprintf("0000000%d-0000-0000-0000-00000000000%d", i, j), PolicyName: "p", Type: "pii", Action: "flag", Severity: "medium", Direction: "request"}}})
		}
	}
	if err := in.insert(ctx, evs); err != nil {
		t.Fatal(err)
	}
	r := NewRetention(pool, func(id string) (int64, bool) { return 7, id == known }, log)
	n, err := r.Cycle(ctx)
	if err != nil || n != 2 {
		t.Fatalf("deleted %d rows (%v), want 2 (one log, one violation)", n, err)
	}
	var logs, vios int
	_ = pool.QueryRow(ctx, `SELECT count(*) FROM usage_logs`).Scan(&logs)
	_ = pool.QueryRow(ctx, `SELECT count(*) FROM violations`).Scan(&vios)
	if logs != 3 || vios != 3 {
		t.Fatalf("left %d logs and %d violations, want 3 and 3", logs, vios)
	}
}
