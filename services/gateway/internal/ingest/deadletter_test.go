package ingest

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"trueportai/services/gateway/internal/analytics"
	"trueportai/services/gateway/internal/usage"
)

const testTenant = "6f1c2a52-8f77-4a38-9d71-6f0a8d1e0a11"

func testEvent(id string) usage.Event {
	return usage.Event{RequestID: id, CreatedAt: time.Now().UTC(), TenantID: testTenant, Env: "production",
		Provider: "openai", Model: "gpt-4o-mini", Path: "/chat/completions", StatusCode: 200, Outcome: usage.OutcomeOK}
}

// encodedTestEvent is testEvent(id) as the publisher sends it (one line).
func encodedTestEvent(t *testing.T, id string) []byte {
	t.Helper()
	ev := testEvent(id)
	b, _, err := usage.Encode(&ev, 1<<20)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// TestIngesterIsolatesRefusedEvents: events Postgres refuses (a tenant or
// key id that is not a uuid, a violation id that is not one) and a line
// that is not an event travel in the same messages as 300 good events.
// The good ones are stored, each once (compared by request id), the bad
// ones are in the dead-letter stream with their error, and nothing is left
// to redeliver. Before, the whole batch failed, was redelivered until
// MaxDeliver and dropped: no row at all.
func TestIngesterIsolatesRefusedEvents(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	pool := migratedPool(t, "deadletter")
	_, js, streams := testStreamsOn(t, "deadletter")

	var want []string
	var lines []string
	for i := range 300 {
		ev := testEvent(fmt.Sprintf("good-%03d", i))
		if i == 7 {
			ev.Model = "gpt\x00-4o" // what a gateway without sanitising published: stored, cleaned
		}
		b, _ := json.Marshal(ev)
		lines = append(lines, string(b))
		want = append(want, ev.RequestID)
	}
	badTenant, badKey, badViolation := testEvent("bad-tenant"), testEvent("bad-key"), testEvent("bad-violation")
	badTenant.TenantID = "not-a-uuid"
	badKey.KeyID = "also-not-a-uuid"
	badViolation.Violations = []usage.Violation{{ID: "nope", PolicyID: "nope", Type: "pii", Action: "flag", Direction: "request", Matches: []usage.Match{}}}
	for i, ev := range []usage.Event{badTenant, badKey, badViolation} {
		b, _ := json.Marshal(ev)
		pos := 50 + 100*i
		lines = append(lines[:pos], append([]string{string(b)}, lines[pos:]...)...)
	}
	lines = append(lines[:120], append([]string{`{"not":"an event"`}, lines[120:]...)...)
	// Four messages of about a hundred lines, as the publisher batches them.
	for start := 0; start < len(lines); start += 101 {
		body := strings.Join(lines[start:min(start+101, len(lines))], "\n")
		msg := &nats.Msg{Subject: streams.Subject, Data: []byte(body), Header: nats.Header{}}
		msg.Header.Set(jetstream.MsgIDHeader, fmt.Sprintf("batch-%d", start))
		if _, err := js.PublishMsg(ctx, msg); err != nil {
			t.Fatal(err)
		}
	}

	reg := prometheus.NewRegistry()
	m := NewIngestMetrics(reg)
	in := NewIngester(analytics.New(pool), js, streams.Name, noTouch{}, log)
	in.SetMetrics(m)
	in.SetDeadLetters(streams.DeadLetterSubject)
	ictx, stop := context.WithCancel(ctx)
	defer stop()
	go func() { _ = in.Run(ictx) }()
	waitDrained(t, js, streams.Name)

	if got := storedIDs(t, pool); fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("stored %d request ids, want the %d good ones:\n got %v", len(got), len(want), got)
	}
	var model string
	if err := pool.QueryRow(ctx, `SELECT model FROM usage_logs WHERE request_id = 'good-007'`).Scan(&model); err != nil || model != "gpt\uFFFD-4o" {
		t.Fatalf("NUL model stored as %q (%v)", model, err)
	}
	dead := map[string]usage.StoredDeadLetter{}
	if err := usage.ReadDeadLetters(ctx, js, streams, 0, func(d usage.StoredDeadLetter) error {
		key := d.RequestID
		if key == "" {
			key = d.Raw
		}
		dead[key] = d
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	for _, id := range []string{"bad-tenant", "bad-key", "bad-violation"} {
		d, ok := dead[id]
		if !ok || d.Stage != usage.StageInsert || !strings.Contains(d.Error, "SQLSTATE 22P02") || !d.Replayable() {
			t.Errorf("dead letter of %s: %+v (found %v)", id, d, ok)
		}
	}
	if d, ok := dead[`{"not":"an event"`]; !ok || d.Stage != usage.StageDecode {
		t.Errorf("the line that is not an event: %+v (found %v)", d, ok)
	}
	if len(dead) != 4 {
		t.Errorf("%d dead letters, want 4: %v", len(dead), dead)
	}
	if got := testutil.ToFloat64(m.events.WithLabelValues("dead_lettered")); got != 4 {
		t.Errorf("metric: %v dead-lettered events, want 4", got)
	}
	if got := testutil.ToFloat64(m.events.WithLabelValues("inserted")); got != 300 {
		t.Errorf("metric: %v inserted events, want 300", got)
	}
}

// testStreamsOn is testStream returning the Streams.
func testStreamsOn(t *testing.T, name string) (*nats.Conn, jetstream.JetStream, usage.Streams) {
	t.Helper()
	nc, js, stream, _ := testStream(t, name)
	info, err := js.Stream(context.Background(), stream)
	if err != nil {
		t.Fatal(err)
	}
	cfg := info.CachedInfo().Config
	return nc, js, usage.NewStreams(cfg.Name, cfg.Subjects[0], cfg.MaxBytes, 16<<20, 1)
}

// storedIDs are the request ids in usage_logs, sorted.
func storedIDs(t *testing.T, pool *pgxpool.Pool) []string {
	t.Helper()
	rows, err := pool.Query(context.Background(), `SELECT request_id FROM usage_logs ORDER BY request_id`)
	if err != nil {
		t.Fatal(err)
	}
	ids, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		t.Fatal(err)
	}
	return ids
}
