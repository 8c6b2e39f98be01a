package analytics

import (
	"context"
	"fmt"
	"testing"
	"time"

	"trueportai/services/gateway/internal/usage"
)

// TestInsertRedeliveryMixedWithNewEvents: a batch first runs without ON
// CONFLICT; a batch holding events stored already (a redelivery) next to
// new ones fails that way and is written again skipping them: the new
// events are stored and counted once, the stored ones change nothing, in
// the logs, the rollups and the violations.
func TestInsertRedeliveryMixedWithNewEvents(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	pool := migratedPool(t, "insert")
	s := New(pool)
	at := time.Now().UTC().Truncate(time.Hour).Add(-time.Hour)
	batch := func(from, n int) []usage.Event {
		var evs []usage.Event
		for i := from; i < from+n; i++ {
			ev := testEvent(fmt.Sprintf("mix-%d", i), at.Add(time.Duration(i)*time.Second), tenantA, 40)
			ev.Violations = []usage.Violation{{ID: fmt.Sprintf("00000000-0000-4000-8000-%012d", i), PolicyName: "pii", Type: "pii",
				Action: "flag", Severity: "low", Direction: "request"}}
			evs = append(evs, ev)
		}
		return evs
	}
	if n, err := s.Insert(ctx, batch(0, 10)); err != nil || n != 10 {
		t.Fatalf("first batch: %d new, %v", n, err)
	}
	if n, err := s.Insert(ctx, batch(5, 10)); err != nil || n != 5 { // 5..9 stored, 10..14 new
		t.Fatalf("mixed batch: %d new, %v; want 5", n, err)
	}
	if n, err := s.Insert(ctx, batch(0, 15)); err != nil || n != 0 {
		t.Fatalf("whole redelivery: %d new, %v; want 0", n, err)
	}
	for q, want := range map[string]int64{
		`SELECT count(*) FROM usage_logs`:                                  15,
		`SELECT count(*) FROM violations`:                                  15,
		`SELECT sum(requests) FROM usage_rollups_model_hourly`:             15,
		`SELECT sum(requests) FROM usage_rollups_key_daily`:                15,
		`SELECT sum(h3) FROM usage_rollups_status_hourly`:                  15, // 40 ms: the (25, 50] bucket
		`SELECT sum(latency_sum_us) FROM usage_rollups_status_daily`:       15 * 40000,
		`SELECT count(DISTINCT request_id) FROM usage_logs`:                15,
		`SELECT count(*) FROM usage_rollups_model_hourly WHERE errors > 0`: 0,
	} {
		if got := queryInt(t, pool, q); got != want {
			t.Errorf("%s = %d, want %d", q, got, want)
		}
	}
}

// TestInsertKeyIsPerTenant: the idempotency key is (tenant_id, env,
// created_at, request_id) (migration 00016). With the old (created_at,
// request_id) key, an event of tenant B carrying the request id and time of
// one of tenant A's was taken for a redelivery and dropped: B's usage went
// unlogged and unbilled. Now both are stored, and a redelivery of either
// stores nothing.
func TestInsertKeyIsPerTenant(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	pool := migratedPool(t, "insertkey")
	s := New(pool)
	at := time.Now().UTC().Truncate(time.Hour).Add(-time.Hour)
	a := testEvent("same-id", at, tenantA, 40)
	b := testEvent("same-id", at, tenantB, 40)
	if n, err := s.Insert(ctx, []usage.Event{a}); err != nil || n != 1 {
		t.Fatalf("tenant A: %d new, %v", n, err)
	}
	if n, err := s.Insert(ctx, []usage.Event{b}); err != nil || n != 1 {
		t.Fatalf("tenant B, same request id and time: %d new, %v; want 1", n, err)
	}
	if n, err := s.Insert(ctx, []usage.Event{b, a}); err != nil || n != 0 {
		t.Fatalf("redelivery of both: %d new, %v; want 0", n, err)
	}
	for q, want := range map[string]int64{
		`SELECT count(*) FROM usage_logs WHERE tenant_id = '` + tenantB + `'`:                      1,
		`SELECT count(*) FROM usage_logs`:                                                          2,
		`SELECT sum(requests) FROM usage_rollups_model_hourly WHERE tenant_id = '` + tenantB + `'`: 1,
	} {
		if got := queryInt(t, pool, q); got != want {
			t.Errorf("%s = %d, want %d", q, got, want)
		}
	}
}
