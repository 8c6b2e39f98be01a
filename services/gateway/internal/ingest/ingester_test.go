package ingest

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

	"trueportai/services/gateway/internal/analytics"
	"trueportai/services/gateway/internal/migrations"
	"trueportai/services/gateway/internal/usage"
	"trueportai/services/internal/dbtest"
	"trueportai/services/internal/money"
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
		ev := usage.Event{RequestID: fmt.Sprintf("req-%d", i), CreatedAt: time.Now().UTC(), TenantID: "6f1c2a52-8f77-4a38-9d71-6f0a8d1e0a11", Env: "production",
			Provider: "openai", Path: "/chat/completions", StatusCode: 200, Outcome: usage.OutcomeOK}
		b, _ := json.Marshal(ev)
		msg := &nats.Msg{Subject: subject, Data: b, Header: nats.Header{}}
		msg.Header.Set(jetstream.MsgIDHeader, ev.RequestID)
		if _, err := js.PublishMsg(ctx, msg); err != nil {
			t.Fatal(err)
		}
	}
	// A duplicate publish (same msg id) is dropped by the stream.
	dup, _ := json.Marshal(usage.Event{RequestID: "req-0", TenantID: "6f1c2a52-8f77-4a38-9d71-6f0a8d1e0a11"})
	dmsg := &nats.Msg{Subject: subject, Data: dup, Header: nats.Header{}}
	dmsg.Header.Set(jetstream.MsgIDHeader, "req-0")
	if ack, err := js.PublishMsg(ctx, dmsg); err != nil || !ack.Duplicate {
		t.Fatalf("duplicate publish: ack=%+v err=%v", ack, err)
	}
	// A message that is not an event is dead-lettered, not retried forever.
	if _, err := js.Publish(ctx, subject, []byte("not json")); err != nil {
		t.Fatal(err)
	}

	crashed := make(chan struct{})
	runCtx, stop := context.WithCancel(ctx)
	firstReg, secondReg := prometheus.NewRegistry(), prometheus.NewRegistry()
	firstMetrics, secondMetrics := NewIngestMetrics(firstReg), NewIngestMetrics(secondReg)
	first := NewIngester(analytics.New(pool), js, stream, noTouch{}, log)
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

	second := NewIngester(analytics.New(pool), js, stream, noTouch{}, log)
	second.SetMetrics(secondMetrics)
	second.ackWait = time.Second
	ctx2, stop2 := context.WithCancel(ctx)
	defer stop2()
	go func() { _ = second.Run(ctx2) }()
	waitDrained(t, js, stream)
	if got := countRows(t, pool, ctx); got != n {
		t.Fatalf("rows = %d, want exactly %d", got, n)
	}
	// The metrics tell the same story: every event inserted once overall,
	// the crashed batch seen again as duplicates, the bad message dead-lettered.
	count := func(m *IngestMetrics, result string) int {
		return int(testutil.ToFloat64(m.events.WithLabelValues(result)))
	}
	if got := count(firstMetrics, "inserted") + count(secondMetrics, "inserted"); got != n {
		t.Fatalf("metrics: %d events inserted, want %d", got, n)
	}
	if got, want := count(secondMetrics, "duplicate"), count(firstMetrics, "inserted"); got != want {
		t.Fatalf("metrics: the second ingester saw %d duplicates, want the %d the first one committed", got, want)
	}
	if got := count(firstMetrics, "dead_lettered") + count(secondMetrics, "dead_lettered"); got < 1 {
		t.Fatalf("metrics: dead-lettered events %d, want at least 1", got)
	}
	// Rollups counted each event once despite the redelivery.
	var rolled int
	if err := pool.QueryRow(ctx, `SELECT COALESCE(sum(requests), 0) FROM usage_rollups_model_hourly`).Scan(&rolled); err != nil {
		t.Fatal(err)
	}
	if rolled != n {
		t.Fatalf("rollups count %d requests, want %d", rolled, n)
	}
	if err := pool.QueryRow(ctx, `SELECT COALESCE(sum(requests), 0) FROM usage_rollups_status_daily`).Scan(&rolled); err != nil || rolled != n {
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
	s := testStreams(name)
	if err := usage.EnsureStreams(context.Background(), js, s); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { usage.DeleteStreams(context.Background(), js, s) })
	return nc, js, s.Name, s.Subject
}

// testStreams names a test's own streams, small (a stream's MaxBytes is
// reserved on the shared server until it is deleted).
func testStreams(name string) usage.Streams {
	suffix := fmt.Sprintf("%d", time.Now().UnixNano())
	return usage.NewStreams("TEST_"+strings.ToUpper(name)+"_"+suffix, "test."+name+"."+suffix, 64<<20, 16<<20, 1)
}

func countRows(t *testing.T, pool *pgxpool.Pool, ctx context.Context) int {
	t.Helper()
	var n int
	if err := pool.QueryRow(ctx, `SELECT count(*) FROM usage_logs`).Scan(&n); err != nil {
		t.Fatal(err)
	}
	return n
}

func migratedPool(t *testing.T, prefix string) *pgxpool.Pool {
	t.Helper()
	ctx := context.Background()
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	pool, err := pgdb.Open(ctx, dbtest.NewURL(t, prefix), log)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(pool.Close)
	if err := pgdb.Migrate(ctx, pool, migrations.FS, log); err != nil {
		t.Fatal(err)
	}
	return pool
}

// waitDrained polls until the ingester's consumer has nothing pending or
// unacknowledged: every message was stored (or dropped) and acked.
func waitDrained(t *testing.T, js jetstream.JetStream, stream string) {
	t.Helper()
	ctx := context.Background()
	deadline := time.Now().Add(20 * time.Second)
	for {
		var ci *jetstream.ConsumerInfo
		cons, err := js.Consumer(ctx, stream, "usage-ingester") // not found until the ingester creates it
		if err == nil {
			ci, err = cons.Info(ctx)
		}
		if err == nil && ci.NumAckPending == 0 && ci.NumPending == 0 {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("consumer did not drain: %+v (%v)", ci, err)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// TestIngesterSplitsBatchedMessages: messages the publisher batched under
// load become one row per event; a message with a bad line keeps its good
// events.
func TestIngesterSplitsBatchedMessages(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	pool := migratedPool(t, "split")
	nc, js, stream, subject := testStream(t, "split")
	spool, err := usage.OpenSpool(t.TempDir(), 1<<20)
	if err != nil {
		t.Fatal(err)
	}
	pub, err := usage.NewPublisher(nc, subject, spool, log)
	if err != nil {
		t.Fatal(err)
	}
	const n = 2000
	for i := range n {
		pub.Publish(&usage.Event{RequestID: fmt.Sprintf("req-%d", i), CreatedAt: time.Now().UTC(), TenantID: "6f1c2a52-8f77-4a38-9d71-6f0a8d1e0a11",
			Env: "production", Provider: "openai", Path: "/chat/completions", StatusCode: 200, Outcome: usage.OutcomeOK})
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
	info, err := js.Stream(ctx, stream)
	if err != nil {
		t.Fatal(err)
	}
	if msgs := info.CachedInfo().State.Msgs; msgs >= n {
		t.Fatalf("%d events went as %d messages: want batches", n, msgs)
	}
	// A batch whose second line is not an event: the first still lands.
	bad := `{"request_id":"req-extra","created_at":"2026-11-28T10:00:00Z","tenant_id":"6f1c2a52-8f77-4a38-9d71-6f0a8d1e0a11","env":"production","provider":"openai","path":"/x","status_code":200,"outcome":"ok"}` + "\nnot json"
	if _, err := js.Publish(ctx, subject, []byte(bad)); err != nil {
		t.Fatal(err)
	}
	// A rolling deploy: one message mixing an older publisher's JSON event
	// (its cost a float) and a current binary one; both land, the float
	// cost as the decimal it stood for, and a binary redelivery of the
	// JSON event is the same row.
	oldJSON := `{"request_id":"req-json","created_at":"2026-11-28T10:00:00.123456789Z","tenant_id":"6f1c2a52-8f77-4a38-9d71-6f0a8d1e0a11","env":"production","provider":"openai","model":"gpt-4o-mini","path":"/x","status_code":200,"prompt_tokens":78,"total_tokens":78,"cost_usd":1.1700000000000001e-05,"outcome":"ok"}`
	cost := money.USD(4_500_000)
	bin, _, err := usage.Encode(&usage.Event{RequestID: "req-bin", CreatedAt: time.Now().UTC(), TenantID: "6f1c2a52-8f77-4a38-9d71-6f0a8d1e0a11",
		Env: "production", Provider: "openai", Path: "/x", StatusCode: 200, Outcome: usage.OutcomeOK, CostUSD: &cost}, 1<<20)
	if err != nil {
		t.Fatal(err)
	}
	again, err := usage.Decode([]byte(oldJSON))
	if err != nil {
		t.Fatal(err)
	}
	againBin, _, _ := usage.Encode(&again, 1<<20)
	mixed := oldJSON + "\n" + string(bin) + "\n" + string(againBin)
	if _, err := js.Publish(ctx, subject, []byte(mixed)); err != nil {
		t.Fatal(err)
	}

	in := NewIngester(analytics.New(pool), js, stream, noTouch{}, log)
	ictx, istop := context.WithCancel(ctx)
	defer istop()
	go func() { _ = in.Run(ictx) }()
	waitDrained(t, js, stream)
	if got := countRows(t, pool, ctx); got != n+3 {
		t.Fatalf("rows = %d, want exactly %d", got, n+3)
	}
	for id, want := range map[string]string{"req-json": "117000", "req-bin": "4500000"} {
		var got string
		if err := pool.QueryRow(ctx, `SELECT cost_usd_e10::text FROM usage_logs WHERE request_id = $1`, id).Scan(&got); err != nil || got != want {
			t.Errorf("%s: cost_usd_e10 %q, %v; want %s", id, got, err, want)
		}
	}
}
