package analytics

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"math"
	"math/rand/v2"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"trueportai/services/gateway/internal/migrations"
	"trueportai/services/gateway/internal/usage"
	"trueportai/services/internal/dbtest"
	"trueportai/services/internal/money"
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
	if n := queryInt(t, pool, `SELECT sum(requests) FROM usage_rollups_model_hourly`); n != 2 {
		t.Fatalf("rollups count %d requests, want 2", n)
	}
	// Partitions created by the maintenance carry the parent's keys and indexes.
	if n := queryInt(t, pool, `SELECT count(*) FROM pg_indexes WHERE tablename = $1`, month); n != 3 {
		t.Fatalf("%s has %d indexes, want 3 (the unique time, the key and the error status covering indexes)", month, n)
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
	if n := queryInt(t, pool, `SELECT sum(requests) FROM usage_rollups_key_daily`); n != int64(len(evs)) {
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
// in every table (sums and every histogram bucket, computed here in Go as
// the oracle); a redelivered batch adds nothing; and a rebuild from the
// logs (RebuildRollups) gives exactly the same rows.
func TestRollupUpsertAccumulates(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	pool := migratedPool(t, "rollups")
	in := New(pool)
	all, batches := rollupTestBatches()
	// The batches are folded in Go (foldedRollupsSQL): what is compared
	// below with the oracle and the rebuild is foldBatch's work; only the
	// redelivery takes the SQL aggregation.
	for i, b := range batches {
		evs := make([]*usage.Event, len(b))
		for j := range b {
			evs[j] = &b[j]
		}
		if _, ok := foldBatch(evs); !ok {
			t.Fatalf("batch %d: foldBatch declined it", i)
		}
	}
	// Two batches alone, then the rest concurrently.
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
	if n, err := in.Insert(ctx, batches[3]); err != nil || n != 0 { // a redelivery
		t.Fatalf("redelivery: %d new, %v", n, err)
	}
	incremental := checkRollups(t, pool, all)

	// Rebuild tenant A over its whole range after damaging its rollups:
	// the tables come back row for row; tenant B's rows are not touched.
	for _, table := range RollupTables() {
		if _, err := pool.Exec(ctx, `UPDATE `+table+` SET requests = requests + 5, h3 = 0 WHERE tenant_id = $1`, tenantA); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := pool.Exec(ctx, `DELETE FROM usage_rollups_key_daily WHERE tenant_id = $1`, tenantA); err != nil {
		t.Fatal(err)
	}
	from, to := all[0].CreatedAt, all[0].CreatedAt
	for _, e := range all {
		from, to = minTime(from, e.CreatedAt), maxTime(to, e.CreatedAt)
	}
	res, err := in.RebuildRollups(ctx, tenantA, from, to.Add(time.Second), nil)
	if err != nil {
		t.Fatal(err)
	}
	var wantRows int64
	for _, e := range all {
		if e.TenantID == tenantA {
			wantRows++
		}
	}
	if res.Rows != wantRows || res.Days < 2 {
		t.Fatalf("rebuild read %d rows over %d days, want %d rows", res.Rows, res.Days, wantRows)
	}
	rebuilt := checkRollups(t, pool, all)
	for table, rows := range incremental {
		if fmt.Sprint(rows) != fmt.Sprint(rebuilt[table]) {
			t.Fatalf("%s: rebuilt rows differ from the incremental ones", table)
		}
	}
}

func minTime(a, b time.Time) time.Time {
	if a.Before(b) {
		return a
	}
	return b
}

// rollupTestBatches makes 8 batches of 300 events over 30 hours, two
// tenants and envs, keys and no key, three statuses, latencies on and
// between the histogram bounds, and costs.
func rollupTestBatches() (all []usage.Event, batches [][]usage.Event) {
	rng := rand.New(rand.NewPCG(7, 11))
	base := time.Now().UTC().Truncate(time.Hour).Add(-30 * time.Hour)
	tenants := []string{tenantA, tenantB}
	keys := []string{"", "11111111-2222-4333-8444-555555555555"}
	statuses := []int{200, 429, 500}
	models := []string{"gpt-4o", "gpt-4o-mini", "claude-haiku-4-5"}
	for b := range 8 {
		var batch []usage.Event
		for i := range 300 {
			lat := math.Exp(rng.Float64() * 11)
			if i%10 == 0 {
				lat = LatencyBounds[rng.IntN(len(LatencyBounds))] // exactly on a bound
			}
			ev := testEvent(fmt.Sprintf("b%d-%d", b, i), base.Add(time.Duration(rng.IntN(30*3600*1000))*time.Millisecond), tenants[rng.IntN(2)], lat)
			ev.KeyID = keys[rng.IntN(2)]
			ev.StatusCode = statuses[rng.IntN(3)]
			ev.Model = models[rng.IntN(3)]
			if ev.Model == "claude-haiku-4-5" {
				ev.Provider = "anthropic"
			}
			if i%7 == 0 {
				ev.Env = "staging"
			}
			switch i % 50 {
			case 1: // half a microsecond: Postgres rounds half to even (0, 2, 1000, 2002)
				ev.LatencyMS = []float64{0.0005, 0.0025, 1.0005, 2.0025}[rng.IntN(4)]
			case 2: // one key in two spellings: one rollup row
				ev.KeyID = []string{"aaaaaaaa-bbbb-4ccc-8ddd-eeeeeeeeeeee", "AAAAAAAA-BBBB-4CCC-8DDD-EEEEEEEEEEEE"}[rng.IntN(2)]
			case 3: // the last nanosecond of an hour (Postgres keeps microseconds)
				ev.CreatedAt = ev.CreatedAt.Truncate(time.Hour).Add(time.Hour - time.Nanosecond)
			}
			if ev.StatusCode == 200 {
				p, c := int64(rng.IntN(1000)), int64(rng.IntN(300))
				tot, cost := p+c, money.USD(rng.Int64N(1e9))
				ev.PromptTokens, ev.CompletionTokens, ev.TotalTokens, ev.CostUSD = &p, &c, &tot, &cost
			} else {
				ev.Outcome = usage.OutcomeError
			}
			batch = append(batch, ev)
		}
		all = append(all, batch...)
		batches = append(batches, batch)
	}
	return all, batches
}

// checkRollups compares every rollup table with the Go oracle of evs and
// returns the tables' rows (as text, in key order).
func checkRollups(t *testing.T, pool *pgxpool.Pool, evs []usage.Event) map[string][]string {
	t.Helper()
	out := map[string][]string{}
	for _, d := range dimensions {
		for _, g := range []struct {
			suffix string
			span   time.Duration
		}{{"hourly", time.Hour}, {"daily", 24 * time.Hour}} {
			table := "usage_rollups_" + d.name + "_" + g.suffix
			want := oracle(evs, d.name, g.span)
			rows, err := pool.Query(context.Background(), `SELECT tenant_id::text || '|' || env || '|' || to_char(bucket AT TIME ZONE 'UTC', 'YYYY-MM-DD HH24')
				|| '|' || concat_ws('|', `+strings.Join(d.cols, ", ")+`), `+strings.Join(measureCols, ", ")+` FROM `+table+`
				ORDER BY tenant_id, env, bucket, `+strings.Join(d.cols, ", "))
			if err != nil {
				t.Fatal(err)
			}
			got := map[string][]int64{}
			var keys []string
			for rows.Next() {
				var k string
				m := make([]int64, len(measureCols))
				dst := []any{&k}
				for i := range m {
					dst = append(dst, &m[i])
				}
				if err := rows.Scan(dst...); err != nil {
					t.Fatal(err)
				}
				got[k] = m
				keys = append(keys, k)
				out[table] = append(out[table], k+fmt.Sprint(m))
			}
			if err := rows.Err(); err != nil {
				t.Fatal(err)
			}
			if len(got) != len(want) {
				t.Fatalf("%s: %d rows, want %d", table, len(got), len(want))
			}
			if len(want) >= len(evs) {
				t.Fatalf("%s: the events hit %d rows: no row got several events", table, len(want))
			}
			for _, k := range keys {
				if fmt.Sprint(got[k]) != fmt.Sprint(want[k]) {
					t.Fatalf("%s %s:\n got %v\nwant %v (%v)", table, k, got[k], want[k], measureCols)
				}
			}
		}
	}
	return out
}

// oracle folds evs into the measures (measureCols) of dimension dim at
// span granularity, keyed as checkRollups keys the table rows.
func oracle(evs []usage.Event, dim string, span time.Duration) map[string][]int64 {
	out := map[string][]int64{}
	for _, e := range evs {
		var dv string
		switch dim {
		case "model":
			dv = e.Provider + "|" + e.Model
		case "key":
			dv = strings.ToLower(e.KeyID) // as Postgres spells a uuid
			if dv == "" {
				dv = zeroUUID
			}
		case "status":
			dv = fmt.Sprint(e.StatusCode)
		}
		k := e.TenantID + "|" + e.Env + "|" + e.CreatedAt.UTC().Truncate(span).Format("2006-01-02 15") + "|" + dv
		m, ok := out[k]
		if !ok {
			m = make([]int64, len(measureCols))
			out[k] = m
		}
		m[0]++
		if e.StatusCode >= 400 || e.Outcome == usage.OutcomeError {
			m[1]++
		}
		if e.TotalTokens == nil {
			m[2]++
		} else {
			m[5] += *e.TotalTokens
		}
		if e.PromptTokens != nil {
			m[3] += *e.PromptTokens
		}
		if e.CompletionTokens != nil {
			m[4] += *e.CompletionTokens
		}
		if e.CostUSD != nil {
			m[6] += int64(*e.CostUSD)
		}
		m[7] += int64(math.RoundToEven(e.LatencyMS * 1000)) // Postgres rounds float8 half to even
		m[8+latencyBucket(e.LatencyMS)]++
	}
	return out
}

// insertErr drops Insert's count of new rows.
func insertErr(_ int, err error) error { return err }
