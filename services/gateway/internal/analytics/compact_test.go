package analytics

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"testing"
	"time"

	"trueportai/services/gateway/internal/usage"
)

// TestRetentionCompactsClosedMonths ingests a month's events the way the
// ingester does (batches in time order, over a few tenants), which leaves
// the partition's indexes about half full, and checks that a retention
// cycle after the month's end rebuilds them packed, once.
func TestRetentionCompactsClosedMonths(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	pool := migratedPool(t, "compact")
	now := monthStart(time.Now(), 0).Add(5 * 24 * time.Hour)
	if _, err := EnsurePartitions(ctx, pool, now); err != nil {
		t.Fatal(err)
	}
	last := monthStart(now, -1)
	name := "usage_logs_y" + last.Format("2006") + "m" + last.Format("01")
	tenants := []string{"11111111-1111-1111-1111-111111111111", "22222222-2222-2222-2222-222222222222",
		"33333333-3333-3333-3333-333333333333", "44444444-4444-4444-4444-444444444444"}
	store := New(pool)
	const batches, perBatch = 20, 1000
	for b := range batches {
		evs := make([]usage.Event, 0, perBatch)
		for i := range perBatch {
			n := b*perBatch + i
			evs = append(evs, usage.Event{RequestID: fmt.Sprintf("req_%08d", n), CreatedAt: last.Add(time.Duration(n) * time.Second),
				TenantID: tenants[n%len(tenants)], Env: "production", KeyID: "aaaaaaaa-0000-0000-0000-000000000001",
				Provider: "openai", Model: "gpt-4o-mini", Path: "/v1/chat/completions", StatusCode: 200, Outcome: usage.OutcomeOK})
		}
		if _, err := store.Insert(ctx, evs); err != nil {
			t.Fatal(err)
		}
	}
	// An interrupted rebuild leaves an invalid index behind: a unique
	// index built concurrently over duplicates fails and stays, invalid.
	if _, err := pool.Exec(ctx, `CREATE UNIQUE INDEX CONCURRENTLY leftover_ccnew ON `+name+` (provider)`); err == nil {
		t.Fatal("the leftover index was built valid")
	}
	var bytesBefore int64
	var leftovers int
	if err := pool.QueryRow(ctx, `SELECT pg_indexes_size($1::regclass), (SELECT count(*) FROM pg_index WHERE indrelid = $1::regclass AND NOT indisvalid)`,
		name).Scan(&bytesBefore, &leftovers); err != nil || leftovers != 1 {
		t.Fatalf("%d invalid indexes before the cycle (%v), want the leftover", leftovers, err)
	}

	r := NewRetention(pool, func(string) (int64, bool) { return 0, false }, log)
	r.now = func() time.Time { return monthStart(now, 0).Add(compactGrace - time.Hour) }
	if _, err := r.Cycle(ctx); err != nil {
		t.Fatal(err)
	}
	var n int
	if err := pool.QueryRow(ctx, `SELECT count(*) FROM partition_compactions`).Scan(&n); err != nil || n != 0 {
		t.Fatalf("%d partitions compacted (%v) within the grace period, want none", n, err)
	}

	r.now = func() time.Time { return now }
	if _, err := r.Cycle(ctx); err != nil {
		t.Fatal(err)
	}
	var recBefore, recAfter int64
	var at time.Time
	if err := pool.QueryRow(ctx, `SELECT index_bytes_before, index_bytes_after, compacted_at FROM partition_compactions WHERE partition = $1`,
		name).Scan(&recBefore, &recAfter, &at); err != nil {
		t.Fatalf("%s not recorded as compacted: %v", name, err)
	}
	var bytesAfter int64
	var invalid, packed int
	if err := pool.QueryRow(ctx, `SELECT pg_indexes_size($1::regclass),
			(SELECT count(*) FROM pg_index WHERE indrelid = $1::regclass AND NOT indisvalid),
			(SELECT count(*) FROM pg_class c JOIN pg_index i ON i.indexrelid = c.oid WHERE i.indrelid = $1::regclass AND 'fillfactor=100' = ANY(c.reloptions))`,
		name).Scan(&bytesAfter, &invalid, &packed); err != nil {
		t.Fatal(err)
	}
	t.Logf("%s: index bytes %d -> %d (recorded %d -> %d)", name, bytesBefore, bytesAfter, recBefore, recAfter)
	if invalid != 0 || packed == 0 {
		t.Fatalf("after the compaction: %d invalid indexes (want 0), %d with fillfactor 100", invalid, packed)
	}
	if recAfter != bytesAfter || bytesAfter*10 > bytesBefore*7 {
		t.Fatalf("index bytes %d -> %d (recorded %d): want at most 70 %% of before", bytesBefore, bytesAfter, recAfter)
	}
	var rows int
	if err := pool.QueryRow(ctx, `SELECT count(*) FROM usage_logs WHERE tenant_id = $1 AND env = 'production' AND created_at >= $2`,
		tenants[0], last).Scan(&rows); err != nil || rows != batches*perBatch/len(tenants) {
		t.Fatalf("tenant's rows after the compaction: %d (%v), want %d", rows, err, batches*perBatch/len(tenants))
	}

	// Once only.
	if _, err := r.Cycle(ctx); err != nil {
		t.Fatal(err)
	}
	var again time.Time
	if err := pool.QueryRow(ctx, `SELECT compacted_at FROM partition_compactions WHERE partition = $1`, name).Scan(&again); err != nil || !again.Equal(at) {
		t.Fatalf("compacted again at %v (%v), first at %v", again, err, at)
	}
}

// TestRetentionWithoutCompactionState: compaction is upkeep; when its table
// is missing (a database not migrated to 00017) the expired rows still go.
func TestRetentionWithoutCompactionState(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	pool := migratedPool(t, "compactless")
	if _, err := pool.Exec(ctx, `DROP TABLE partition_compactions`); err != nil {
		t.Fatal(err)
	}
	tenant := "11111111-1111-1111-1111-111111111111"
	now := time.Now().UTC()
	// A month partition old enough to drop, and a row to delete.
	ancient := monthStart(now, -6)
	if _, err := pool.Exec(ctx, `SELECT gateway_ensure_month_partition('usage_logs'::regclass, $1)`, ancient); err != nil {
		t.Fatal(err)
	}
	evs := []usage.Event{{RequestID: "old", CreatedAt: now.Add(-10 * 24 * time.Hour)}, {RequestID: "ancient", CreatedAt: ancient.Add(time.Hour)}}
	for i := range evs {
		evs[i].TenantID, evs[i].Env, evs[i].Provider, evs[i].Path, evs[i].StatusCode, evs[i].Outcome = tenant, "production", "openai", "/x", 200, usage.OutcomeOK
	}
	if _, err := New(pool).Insert(ctx, evs); err != nil {
		t.Fatal(err)
	}
	r := NewRetention(pool, func(string) (int64, bool) { return 7, true }, log)
	if n, err := r.Cycle(ctx); err != nil || n != 1 {
		t.Fatalf("deleted %d rows (%v), want 1", n, err)
	}
	name := "usage_logs_y" + ancient.Format("2006") + "m" + ancient.Format("01")
	var left bool
	if err := pool.QueryRow(ctx, `SELECT to_regclass($1) IS NOT NULL`, name).Scan(&left); err != nil || left {
		t.Fatalf("%s still there (%v): the drop failed", name, err)
	}
}
