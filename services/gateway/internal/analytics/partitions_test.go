package analytics

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"math"
	"math/rand/v2"
	"sort"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"trueportai/services/gateway/internal/migrations"
	"trueportai/services/gateway/internal/usage"
	"trueportai/services/internal/dbtest"
	"trueportai/services/internal/pgdb"
)

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

func partitionNames(t *testing.T, pool *pgxpool.Pool, table string) map[string]bool {
	t.Helper()
	parts, err := listPartitions(context.Background(), pool, table)
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]bool{}
	for _, p := range parts {
		out[p.name] = true
	}
	return out
}

func partName(table string, month time.Time) string {
	return fmt.Sprintf("%s_y%04dm%02d", table, month.Year(), int(month.Month()))
}

func queryInt(t *testing.T, pool *pgxpool.Pool, q string, args ...any) int64 {
	t.Helper()
	var n int64
	if err := pool.QueryRow(context.Background(), q, args...).Scan(&n); err != nil {
		t.Fatalf("%s: %v", q, err)
	}
	return n
}

// TestEnsurePartitions: the migration leaves partitions for the previous,
// current and next two months; EnsurePartitions adds the months around a
// later date, moving that month's rows out of the default partition, and
// the moved rows keep their idempotency.
func TestEnsurePartitions(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	pool := migratedPool(t, "partitions")
	now := time.Now().UTC()
	for _, table := range PartitionedTables {
		got := partitionNames(t, pool, table)
		if !got[table+"_default"] {
			t.Errorf("%s: no default partition in %v", table, got)
		}
		for k := -1; k <= 2; k++ {
			if name := partName(table, monthStart(now, k)); !got[name] {
				t.Errorf("%s: partition %s missing after the migration (have %v)", table, name, got)
			}
		}
	}
	// Nothing to do right after the migration.
	if created, err := EnsurePartitions(ctx, pool, now); err != nil || len(created) != 0 {
		t.Fatalf("EnsurePartitions(now) = %v, %v; want nothing created", created, err)
	}

	// Rows six months ahead land in the default partition until their month exists.
	later := monthStart(now, 6).Add(3*24*time.Hour + 5*time.Minute)
	in := New(pool)
	evs := []usage.Event{
		testEvent("ahead-1", later, tenantA, 120),
		testEvent("ahead-2", later.Add(time.Hour), tenantA, 700),
	}
	evs[0].Violations = []usage.Violation{{ID: "0e4b7b8e-2c53-4a8e-9a57-5b7f9f000001", PolicyName: "p", Type: "pii", Action: "flag", Severity: "low", Direction: "request"}}
	if err := insertErr(in.Insert(ctx, evs)); err != nil {
		t.Fatal(err)
	}
	if n := queryInt(t, pool, `SELECT count(*) FROM usage_logs_default`); n != 2 {
		t.Fatalf("default partition holds %d rows, want 2", n)
	}
	created, err := EnsurePartitions(ctx, pool, later)
	if err != nil {
		t.Fatal(err)
	}
	// later's previous, own and next two months, for both tables; the
	// month before later's previous one is not created.
	want := []string{}
	for _, table := range PartitionedTables {
		for k := 5; k <= 8; k++ {
			want = append(want, partName(table, monthStart(now, k)))
		}
	}
	sort.Strings(created)
	sort.Strings(want)
	if fmt.Sprint(created) != fmt.Sprint(want) {
		t.Fatalf("created %v, want %v", created, want)
	}
	if got := partitionNames(t, pool, "usage_logs"); got[partName("usage_logs", monthStart(now, 4))] {
		t.Fatalf("month +4 was created: %v", got)
	}
	for _, table := range PartitionedTables {
		if n := queryInt(t, pool, `SELECT count(*) FROM `+table+`_default`); n != 0 {
			t.Errorf("%s_default still holds %d rows", table, n)
		}
	}
	month := partName("usage_logs", monthStart(later, 0))
	if n := queryInt(t, pool, `SELECT count(*) FROM `+month); n != 2 {
		t.Fatalf("%s holds %d rows, want the 2 moved ones", month, n)
	}
	if n := queryInt(t, pool, `SELECT count(*) FROM `+partName("violations", monthStart(later, 0))); n != 1 {
		t.Fatalf("the violation did not move: %d", n)
	}
	// A redelivery of the moved events inserts nothing and counts nothing.
	if err := insertErr(in.Insert(ctx, evs)); err != nil {
		t.Fatal(err)
	}
	if n := queryInt(t, pool, `SELECT count(*) FROM usage_logs`); n != 2 {
		t.Fatalf("usage_logs has %d rows after the redelivery, want 2", n)
	}
	if n := queryInt(t, pool, `SELECT sum(requests) FROM usage_rollups_hourly`); n != 2 {
		t.Fatalf("rollups count %d requests, want 2", n)
	}
	// Partitions created by the maintenance carry the parent's keys and indexes.
	if n := queryInt(t, pool, `SELECT count(*) FROM pg_indexes WHERE tablename = $1`, month); n != 6 {
		t.Fatalf("%s has %d indexes, want 6 (primary key, unique, 4 filter indexes)", month, n)
	}
	// Idempotent.
	if created, err := EnsurePartitions(ctx, pool, later); err != nil || len(created) != 0 {
		t.Fatalf("second EnsurePartitions = %v, %v", created, err)
	}
}

const (
	tenantA = "aaaaaaaa-0000-4000-8000-000000000001" // retention 30 days
	tenantB = "bbbbbbbb-0000-4000-8000-000000000002" // retention 400 days
	tenantC = "cccccccc-0000-4000-8000-000000000003" // unknown to the replica
	tenantD = "dddddddd-0000-4000-8000-000000000004" // retention 1 day
)

func testEvent(id string, at time.Time, tenant string, latency float64) usage.Event {
	return usage.Event{RequestID: id, CreatedAt: at, TenantID: tenant, Env: "production", Provider: "openai", Model: "gpt-4o",
		Path: "/chat/completions", StatusCode: 200, Outcome: usage.OutcomeOK, LatencyMS: latency}
}

// TestRetentionDropsPartitionsOnlyWhenSafe: a month partition is dropped
// when every tenant in it has a known retention that expired all of it;
// one tenant with a longer or unknown retention keeps it, and the expired
// rows of the others are deleted row by row; the window of partitions
// EnsurePartitions keeps is never dropped.
func TestRetentionDropsPartitionsOnlyWhenSafe(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	pool := migratedPool(t, "retdrop")
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	now := time.Now().UTC()
	// Old months: -7 empty, -6 tenant A only, -5 A and B, -4 A and C.
	for k := -7; k <= -4; k++ {
		if _, err := pool.Exec(ctx, `SELECT gateway_ensure_month_partition($1::regclass, $2), gateway_ensure_month_partition($3::regclass, $2)`,
			"usage_logs", monthStart(now, k), "violations"); err != nil {
			t.Fatal(err)
		}
	}
	var evs []usage.Event
	add := func(k int, tenant string, n int) {
		for i := range n {
			at := monthStart(now, k).Add(time.Duration(i+1) * 36 * time.Hour)
			ev := testEvent(fmt.Sprintf("%s-%d-%d", tenant[:4], k, i), at, tenant, 50)
			ev.Violations = []usage.Violation{{ID: fmt.Sprintf("%s-%04d-4000-8000-%012d", tenant[:8], k+100, i), PolicyName: "p", Type: "pii",
				Action: "flag", Severity: "low", Direction: "request"}}
			evs = append(evs, ev)
		}
	}
	add(-6, tenantA, 3)
	add(-5, tenantA, 2)
	add(-5, tenantB, 2)
	add(-4, tenantA, 4)
	add(-4, tenantC, 1)
	add(-1, tenantD, 2) // previous month: expired for D, but the partition stays
	recent := testEvent("a-recent", now.Add(-time.Hour), tenantA, 50)
	evs = append(evs, recent)
	in := New(pool)
	if err := insertErr(in.Insert(ctx, evs)); err != nil {
		t.Fatal(err)
	}
	days := map[string]int64{tenantA: 30, tenantB: 400, tenantD: 1}
	r := NewRetention(pool, func(id string) (int64, bool) { d, ok := days[id]; return d, ok }, log)
	r.now = func() time.Time { return now }
	n, err := r.Cycle(ctx)
	if err != nil {
		t.Fatal(err)
	}
	// Row deletes: A's 2 rows in -5 and 4 in -4, D's 2 in -1, with one
	// violation each; month -6 (A's 3 rows) goes as a whole.
	if want := int64(2 * (2 + 4 + 2)); n != want {
		t.Errorf("row deletes removed %d rows, want %d", n, want)
	}
	for _, table := range PartitionedTables {
		got := partitionNames(t, pool, table)
		for k, keep := range map[int]bool{-7: false, -6: false, -5: true, -4: true, -1: true, 0: true} {
			if name := partName(table, monthStart(now, k)); got[name] != keep {
				t.Errorf("%s: partition %s present=%v, want %v", table, name, got[name], keep)
			}
		}
	}
	left := func(table, tenant string) int64 {
		return queryInt(t, pool, `SELECT count(*) FROM `+table+` WHERE tenant_id = $1::uuid`, tenant)
	}
	for _, table := range PartitionedTables {
		wantA := int64(0) // the recent event has no violation
		if table == "usage_logs" {
			wantA = 1
		}
		if a := left(table, tenantA); a != wantA {
			t.Errorf("%s: tenant A has %d rows left, want %d (the recent event)", table, a, wantA)
		}
		if b := left(table, tenantB); b != 2 {
			t.Errorf("%s: tenant B (400 days) has %d rows left, want 2", table, b)
		}
		if c := left(table, tenantC); c != 1 {
			t.Errorf("%s: tenant C (unknown) has %d rows left, want 1", table, c)
		}
		if d := left(table, tenantD); d != 0 {
			t.Errorf("%s: tenant D (1 day) has %d rows left, want 0", table, d)
		}
	}
	// Rollups are kept.
	if n := queryInt(t, pool, `SELECT sum(requests) FROM usage_rollups_daily`); n != int64(len(evs)) {
		t.Errorf("daily rollups count %d requests, want %d", n, len(evs))
	}

	// Once C's retention is known and short, month -4 holds only expired
	// rows of known tenants and goes; B keeps -5.
	days[tenantC] = 7
	r = NewRetention(pool, func(id string) (int64, bool) { d, ok := days[id]; return d, ok }, log)
	r.now = func() time.Time { return now }
	if _, err := r.Cycle(ctx); err != nil {
		t.Fatal(err)
	}
	got := partitionNames(t, pool, "usage_logs")
	if got[partName("usage_logs", monthStart(now, -4))] || !got[partName("usage_logs", monthStart(now, -5))] {
		t.Errorf("after C became known: partitions %v; want -4 dropped, -5 kept", got)
	}
}

// TestRollupUpsertAccumulates: several batches, some of them concurrent,
// hitting the same rollup rows add up to the rollups of all their events
// (sums and every latency_hist bucket); a redelivered batch adds nothing.
func TestRollupUpsertAccumulates(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	pool := migratedPool(t, "rollups")
	in := New(pool)
	rng := rand.New(rand.NewPCG(7, 11))
	base := time.Now().UTC().Truncate(time.Hour).Add(-30 * time.Hour)
	tenants := []string{tenantA, tenantB}
	keys := []string{"", "11111111-2222-4333-8444-555555555555"}
	statuses := []int{200, 429, 500}
	var all []usage.Event
	var batches [][]usage.Event
	for b := range 8 {
		var batch []usage.Event
		for i := range 300 {
			ev := testEvent(fmt.Sprintf("b%d-%d", b, i), base.Add(time.Duration(rng.IntN(30*3600))*time.Second), tenants[rng.IntN(2)],
				math.Exp(rng.Float64()*11))
			ev.KeyID = keys[rng.IntN(2)]
			ev.StatusCode = statuses[rng.IntN(3)]
			if ev.StatusCode == 200 {
				p, c := int64(rng.IntN(1000)), int64(rng.IntN(300))
				tot, cost := p+c, float64(p+c)/1e6
				ev.PromptTokens, ev.CompletionTokens, ev.TotalTokens, ev.CostUSD = &p, &c, &tot, &cost
			} else {
				ev.Outcome = usage.OutcomeError
			}
			batch = append(batch, ev)
		}
		all = append(all, batch...)
		batches = append(batches, batch)
	}
	// Two batches alone, then three pairs concurrently.
	for _, b := range batches[:2] {
		if err := insertErr(in.Insert(ctx, b)); err != nil {
			t.Fatal(err)
		}
	}
	var wg sync.WaitGroup
	errs := make(chan error, len(batches))
	for _, b := range batches[2:] {
		wg.Add(1)
		go func() { defer wg.Done(); errs <- insertErr(in.Insert(ctx, b)) }()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	if err := insertErr(in.Insert(ctx, batches[3])); err != nil { // a redelivery
		t.Fatal(err)
	}
	ptrs := make([]*usage.Event, len(all))
	for i := range all {
		ptrs[i] = &all[i]
	}
	for _, table := range []struct {
		name string
		span time.Duration
	}{{"usage_rollups_hourly", time.Hour}, {"usage_rollups_daily", 24 * time.Hour}} {
		want := aggregate(ptrs, table.span)
		rows, err := pool.Query(ctx, `SELECT tenant_id::text, env, bucket, provider, model, key_id::text, status_code, requests, errors, unknown_usage,
			prompt_tokens, completion_tokens, total_tokens, cost_usd, latency_sum_ms, latency_hist FROM `+table.name+`
			ORDER BY tenant_id, env, bucket, provider, model, key_id, status_code`)
		if err != nil {
			t.Fatal(err)
		}
		var got []*rollup
		for rows.Next() {
			r := &rollup{}
			if err := rows.Scan(&r.tenant, &r.env, &r.bucket, &r.provider, &r.model, &r.keyID, &r.status, &r.requests, &r.errors, &r.unknown,
				&r.prompt, &r.completion, &r.total, &r.cost, &r.latencySum, &r.hist); err != nil {
				t.Fatal(err)
			}
			r.bucket = r.bucket.UTC()
			got = append(got, r)
		}
		if err := rows.Err(); err != nil {
			t.Fatal(err)
		}
		if len(got) != len(want) {
			t.Fatalf("%s: %d rows, want %d", table.name, len(got), len(want))
		}
		if len(want) >= len(all) {
			t.Fatalf("%s: the events hit %d rows: no row got several events", table.name, len(want))
		}
		for i := range want {
			g, w := got[i], want[i]
			// Costs and latency sums are float sums in another order.
			if math.Abs(g.cost-w.cost) > 1e-9 || math.Abs(g.latencySum-w.latencySum) > 1e-6*max(1, w.latencySum) {
				t.Fatalf("%s row %d: cost/latency %v/%v, want %v/%v", table.name, i, g.cost, g.latencySum, w.cost, w.latencySum)
			}
			g.cost, g.latencySum = w.cost, w.latencySum
			if fmt.Sprint(*g) != fmt.Sprint(*w) {
				t.Fatalf("%s row %d:\n got %+v\nwant %+v", table.name, i, *g, *w)
			}
		}
	}
}

// insertErr drops Insert's count of new rows.
func insertErr(_ int, err error) error { return err }
