package analytics

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"trueportai/services/gateway/internal/usage"
)

// TestDuePeriods: a period is due once it ended orderGrace ago, within the
// horizon, unless done; newest first.
func TestDuePeriods(t *testing.T) {
	day := func(s string) time.Time { d, _ := time.Parse(time.DateOnly, s); return d }
	hourly := orderTable{name: "h"}
	monthly := orderTable{name: "d", monthly: true}
	starts := func(ps []period) []string {
		var out []string
		for _, p := range ps {
			out = append(out, p.lo.Format(time.DateOnly))
		}
		return out
	}
	for _, c := range []struct {
		name  string
		t     orderTable
		now   time.Time
		done  []string
		first []string // the newest due periods, in order
		n     int      // how many are due
		last  string   // the oldest due
	}{
		// 2026-03-01 ends at 03-02 00:00, due at 03-04 00:00.
		{"day not yet due", hourly, day("2026-03-03").Add(23 * time.Hour), nil, []string{"2026-02-28", "2026-02-27"}, 0, "2025-01-01"},
		{"day due at its end plus the grace", hourly, day("2026-03-04"), nil, []string{"2026-03-01", "2026-02-28"}, 0, "2025-01-01"},
		{"done days skipped", hourly, day("2026-03-04"), []string{"2026-03-01", "2026-02-27"}, []string{"2026-02-28", "2026-02-26"}, 0, "2025-01-01"},
		{"every day back to the horizon", hourly, day("2026-03-04"), nil, nil, 425, "2025-01-01"},
		// February ends 03-01 00:00, due at 03-03 00:00.
		{"month not yet due", monthly, day("2026-03-02").Add(23 * time.Hour), nil, []string{"2026-01-01", "2025-12-01"}, 13, "2025-01-01"},
		{"month due", monthly, day("2026-03-03"), nil, []string{"2026-02-01", "2026-01-01"}, 14, "2025-01-01"},
		{"done months skipped", monthly, day("2026-03-03"), []string{"2026-02-01"}, []string{"2026-01-01"}, 13, "2025-01-01"},
		{"month across a year", monthly, day("2027-01-05"), nil, []string{"2026-12-01", "2026-11-01"}, 14, "2025-11-01"},
	} {
		t.Run(c.name, func(t *testing.T) {
			done := map[time.Time]bool{}
			for _, d := range c.done {
				done[day(d)] = true
			}
			got := duePeriods(c.t, c.now, done)
			s := starts(got)
			if len(c.first) > 0 && (len(s) < len(c.first) || strings.Join(s[:len(c.first)], " ") != strings.Join(c.first, " ")) {
				t.Fatalf("due %v…, want %v first", s[:min(len(s), 4)], c.first)
			}
			if c.n > 0 && len(s) != c.n {
				t.Fatalf("%d due, want %d", len(s), c.n)
			}
			if s[len(s)-1] != c.last {
				t.Fatalf("oldest due %s, want %s", s[len(s)-1], c.last)
			}
			for _, p := range got {
				if p.hi.Add(orderGrace).After(c.now) || done[p.lo] || p.table.name != c.t.name {
					t.Fatalf("%v is not due at %v", p, c.now)
				}
				if want := p.lo.AddDate(0, 0, 1); c.t.monthly {
					if want = p.lo.AddDate(0, 1, 0); p.hi != want || p.lo.Day() != 1 {
						t.Fatalf("month period %v–%v", p.lo, p.hi)
					}
				} else if p.hi != want {
					t.Fatalf("day period %v–%v", p.lo, p.hi)
				}
			}
		})
	}
}

// keyOrdered reports whether table's rows of [lo, hi) lie on the heap in
// key order: read in primary-key order, each heap page's rows come in one
// run (the inserts of a rewrite fill a page, then go on to the next one
// the free space map offers, not always a later one; a page whose freed
// line pointers are reused numbers its rows out of order). It also says on
// how many pages the rows of tenant lie.
func keyOrdered(t *testing.T, pool *pgxpool.Pool, table orderTable, tenant string, lo, hi time.Time) (ordered bool, pages int) {
	t.Helper()
	rows, err := pool.Query(context.Background(), `SELECT (ctid::text::point)[0]::bigint, tenant_id::text = $3
		FROM `+table.name+` WHERE bucket >= $1 AND bucket < $2 ORDER BY `+strings.Join(table.keys, ", "), lo, hi, tenant)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	ordered = true
	page := int64(-1)
	left := map[int64]bool{} // pages whose run ended
	seen := map[int64]bool{}
	n := 0
	for rows.Next() {
		var b int64
		var mine bool
		if err := rows.Scan(&b, &mine); err != nil {
			t.Fatal(err)
		}
		if b != page {
			if left[b] {
				ordered = false
			}
			left[page] = true
			page = b
		}
		if mine {
			seen[b] = true
		}
		n++
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	if n < 2 {
		t.Fatalf("%s [%v, %v): %d rows, nothing to order", table.name, lo, hi, n)
	}
	return ordered, len(seen)
}

// orderTestEvents makes events the way traffic reaches the ingester: hour
// after hour, each hour's batch over six tenants and four models, on the
// given days, two events each.
func orderTestEvents(days []time.Time) (all []usage.Event, batches [][]usage.Event) {
	tenants := []string{tenantA, tenantB, tenantC, tenantD, "eeeeeeee-0000-4000-8000-000000000005", "ffffffff-0000-4000-8000-000000000006"}
	models := []string{"gpt-4o", "gpt-4o-mini", "gpt-4.1", "o3"}
	for _, d := range days {
		for h := range 24 {
			var b []usage.Event
			for i, ten := range tenants {
				for j, m := range models {
					for k := range 2 {
						ev := testEvent(fmt.Sprintf("%s-%02d-%d-%d-%d", d.Format(time.DateOnly), h, i, j, k),
							d.Add(time.Duration(h)*time.Hour+time.Duration(i*8+j*2+k)*time.Minute), ten, float64(10*j+i+k))
						ev.Model = m
						ev.StatusCode = []int{200, 429, 500}[(h+i+j+k)%3]
						b = append(b, ev)
					}
				}
			}
			all = append(all, b...)
			batches = append(batches, b)
		}
	}
	return all, batches
}

// ingestedDays is a migrated database holding orderTestEvents(days),
// inserted batch by batch as the ingester does.
func ingestedDays(t *testing.T, prefix string, days []time.Time) (*pgxpool.Pool, *Store, []usage.Event, [][]usage.Event) {
	t.Helper()
	pool := migratedPool(t, prefix)
	all, batches := orderTestEvents(days)
	store := New(pool)
	for _, b := range batches {
		if _, err := store.Insert(context.Background(), b); err != nil {
			t.Fatal(err)
		}
	}
	return pool, store, all, batches
}

// twoClosedDays is ingestedDays of two days that closed well past
// orderGrace, with the noon of today (UTC) to order them at.
func twoClosedDays(t *testing.T, prefix string) (now time.Time, days []time.Time, pool *pgxpool.Pool, store *Store, all []usage.Event, batches [][]usage.Event) {
	t.Helper()
	today := time.Now().UTC().Truncate(24 * time.Hour)
	days = []time.Time{today.AddDate(0, 0, -5), today.AddDate(0, 0, -4)}
	pool, store, all, batches = ingestedDays(t, prefix, days)
	return today.Add(12 * time.Hour), days, pool, store, all, batches
}

// TestRetentionOrdersClosedRollupPeriods: rollup rows written hour after
// hour, as the ingester writes them, lie interleaved across tenants; a
// retention cycle rewrites every period that closed orderGrace ago in key
// order (the rows unchanged: the oracle still holds), leaves the others
// where they are, records what it did, and does nothing the second time.
func TestRetentionOrdersClosedRollupPeriods(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	today := time.Now().UTC().Truncate(24 * time.Hour)
	days := []time.Time{today.AddDate(0, 0, -4), today.AddDate(0, 0, -3), today.AddDate(0, 0, -1), today}
	pool, _, all, _ := ingestedDays(t, "order", days)
	before := checkRollups(t, pool, all)
	tables := orderTables()
	hourly := tables[0] // usage_rollups_model_hourly
	if hourly.name != "usage_rollups_model_hourly" || !tables[1].monthly {
		t.Fatalf("order tables: %v", tables)
	}
	dayOf := func(d time.Time) (time.Time, time.Time) { return d, d.AddDate(0, 0, 1) }
	ordered, pagesBefore := keyOrdered(t, pool, hourly, tenantA, days[0], days[1])
	if ordered {
		t.Fatal("the ingester's rows were in key order already: the test shows nothing")
	}
	ctids := func(lo, hi time.Time) string {
		return fmt.Sprint(queryStrings(t, pool, `SELECT ctid::text FROM `+hourly.name+` WHERE bucket >= $1 AND bucket < $2 ORDER BY 1`, lo, hi))
	}
	openBefore := ctids(days[2], today.AddDate(0, 0, 1))

	// As autovacuum leaves a table the ingester updates: free space in the
	// free space map, on pages among the current rows, where the rewrite's
	// inserts go first.
	for _, table := range tables {
		if _, err := pool.Exec(ctx, `VACUUM `+table.name); err != nil {
			t.Fatal(err)
		}
	}
	r := NewRetention(pool, func(string) (int64, bool) { return 0, false }, slog.New(slog.NewTextHandler(io.Discard, nil)))
	r.now = func() time.Time { return today.Add(12 * time.Hour) }
	if _, err := r.Cycle(ctx); err != nil {
		t.Fatal(err)
	}
	for _, d := range days[:2] {
		for _, table := range tables {
			if table.monthly {
				continue
			}
			lo, hi := dayOf(d)
			if ok, _ := keyOrdered(t, pool, table, tenantA, lo, hi); !ok {
				t.Fatalf("%s of %s not in key order after the cycle", table.name, d.Format(time.DateOnly))
			}
			var rows int64
			want := queryInt(t, pool, `SELECT count(*) FROM `+table.name+` WHERE bucket >= $1 AND bucket < $2`, lo, hi)
			if err := pool.QueryRow(ctx, `SELECT rows FROM rollup_orderings WHERE rollup = $1 AND period = $2`, table.name, lo).Scan(&rows); err != nil || rows != want {
				t.Fatalf("%s %s recorded with %d rows (%v), want %d", table.name, d.Format(time.DateOnly), rows, err, want)
			}
		}
	}
	_, pagesAfter := keyOrdered(t, pool, hourly, tenantA, days[0], days[1])
	t.Logf("tenant A's hourly rows of a day: %d pages before ordering, %d after", pagesBefore, pagesAfter)
	if pagesAfter*3 > pagesBefore {
		t.Fatalf("tenant A's hourly rows of a day on %d pages after ordering, %d before", pagesAfter, pagesBefore)
	}
	if got := ctids(days[2], today.AddDate(0, 0, 1)); got != openBefore {
		t.Fatal("rows of periods within the grace were moved")
	}
	var recorded int
	if err := pool.QueryRow(ctx, `SELECT count(*) FROM rollup_orderings WHERE period >= $1 OR (rollup LIKE '%\_daily' AND period = $2)`, days[2], monthStart(today, 0)).Scan(&recorded); err != nil || recorded != 0 {
		t.Fatalf("%d periods within the grace or open recorded (%v)", recorded, err)
	}
	// Every day back to the horizon was looked at; those without rows
	// were recorded together, as empty.
	if n := queryInt(t, pool, `SELECT count(*) FROM rollup_orderings WHERE rollup = $1 AND rows = 0`, hourly.name); n < 300 {
		t.Fatalf("%d empty days recorded, want the horizon's", n)
	}
	if after := checkRollups(t, pool, all); fmt.Sprint(after) != fmt.Sprint(before) {
		t.Fatal("ordering changed the rollups")
	}
	n, err := orderRollups(ctx, poolConn(t, pool), today.Add(12*time.Hour), time.Time{}, nil)
	if err != nil || n != 0 {
		t.Fatalf("a second pass ordered %d periods (%v), want none", n, err)
	}

	// A month later every period of the events is due, the daily tables'
	// months too.
	later := monthStart(today, 1).Add(orderGrace)
	r.now = func() time.Time { return later }
	if _, err := r.Cycle(ctx); err != nil {
		t.Fatal(err)
	}
	for _, table := range tables {
		for _, d := range days {
			lo, hi := dayOf(d)
			if table.monthly {
				lo, hi = monthStart(d, 0), monthStart(d, 1)
			}
			if ok, _ := keyOrdered(t, pool, table, tenantA, lo, hi); !ok {
				t.Fatalf("%s [%s, %s) not in key order", table.name, lo.Format(time.DateOnly), hi.Format(time.DateOnly))
			}
		}
	}
	if after := checkRollups(t, pool, all); fmt.Sprint(after) != fmt.Sprint(before) {
		t.Fatal("ordering changed the rollups")
	}
}

// TestOrderingUnderLateIncrements: late events of a period being ordered,
// inserted concurrently by an ingester, are all counted once: each
// increment lands on the old row before the rewrite or on the new one
// after it. A rewrite that meets a held row gives up (lock timeout) and
// is retried at the next pass, as at the next retention cycle.
func TestOrderingUnderLateIncrements(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	now, _, pool, store, all, batches := twoClosedDays(t, "orderlate")
	// Late events: copies with new request ids, same hours, tenants, models.
	var late [][]usage.Event
	for i, b := range batches {
		if i%3 != 0 {
			continue
		}
		c := make([]usage.Event, len(b))
		for j, e := range b {
			e.RequestID = "late-" + e.RequestID
			c[j] = e
		}
		late = append(late, c)
		all = append(all, c...)
	}
	// The ingester and the rewrite lock rows in key order: an insert waits,
	// it never fails; a rewrite may give up on a held row.
	var wg sync.WaitGroup
	inserting := make(chan struct{})
	wg.Go(func() {
		defer close(inserting)
		for _, b := range late {
			if _, err := store.Insert(ctx, b); err != nil {
				t.Errorf("late insert: %v", err)
				return
			}
		}
	})
	conn := poolConn(t, pool)
	// The periods are ordered again and again while the late events go
	// in (their records removed between passes), then once after.
	refused, ordered, passes := 0, 0, 0
	for done := false; !done; {
		select {
		case <-inserting:
			done = true
		default:
		}
		n, err := orderRollups(ctx, conn, now, time.Time{}, nil)
		ordered += n
		if err != nil {
			if !onlyLockRefusals(err) {
				t.Fatalf("ordering: %v", err)
			}
			refused++
		}
		passes++
		if _, err := conn.Exec(ctx, `DELETE FROM rollup_orderings`); err != nil {
			t.Fatal(err)
		}
	}
	wg.Wait()
	t.Logf("%d periods ordered in %d passes, %d of them with a period refused", ordered, passes, refused)
	if passes < 2 || ordered < 2*3*(passes-refused) {
		t.Fatalf("%d periods ordered in %d passes, want both days of the three hourly tables in each", ordered, passes)
	}
	checkRollups(t, pool, all)
}

// onlyLockRefusals reports whether err (joined or not) is lock refusals
// only.
func onlyLockRefusals(err error) bool {
	if j, ok := err.(interface{ Unwrap() []error }); ok {
		for _, e := range j.Unwrap() {
			if !onlyLockRefusals(e) {
				return false
			}
		}
		return true
	}
	return lockRefused(err)
}

// TestOrderingMeetsAnIngester: a rewrite that meets a row an ingester holds
// gives up within its lock timeout, records nothing, and the other periods
// are ordered; an ingester's increment that meets a rewrite waits for its
// commit and lands on the rewritten row.
func TestOrderingMeetsAnIngester(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	now, days, pool, store, all, batches := twoClosedDays(t, "ordermeet")
	hourly := orderTables()[0]
	day0 := period{hourly, days[0], days[0].AddDate(0, 0, 1)}
	recorded := func(p period) bool {
		return queryInt(t, pool, `SELECT count(*) FROM rollup_orderings WHERE rollup = $1 AND period = $2`, p.table.name, p.lo) == 1
	}

	// An ingester's transaction holds a row of day0.
	held, err := pool.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer held.Rollback(ctx) // a failure below must not leave the row held
	if tag, err := held.Exec(ctx, `UPDATE `+hourly.name+` SET requests = requests WHERE tenant_id = $1 AND bucket = $2`, tenantC, days[0].Add(5*time.Hour)); err != nil || tag.RowsAffected() == 0 {
		t.Fatalf("hold a row: %v (%d rows)", err, tag.RowsAffected())
	}
	start := time.Now()
	if _, err := orderPeriod(ctx, pool, day0); !lockRefused(err) {
		t.Fatalf("ordering a period with a held row: %v, want a lock timeout", err)
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Fatalf("the rewrite waited %v for the held row", d)
	}
	n, err := orderRollups(ctx, poolConn(t, pool), now, time.Time{}, nil)
	if !onlyLockRefusals(err) || err == nil {
		t.Fatalf("ordering every period with one held: %v", err)
	}
	if recorded(day0) {
		t.Fatal("day0 recorded as ordered while its row was held")
	}
	for _, table := range orderTables() {
		for _, d := range days {
			if p := (period{table, d, d.AddDate(0, 0, 1)}); !table.monthly && (table.name != day0.table.name || d != day0.lo) && !recorded(p) {
				t.Fatalf("%s %s not ordered while another period's row was held (%d ordered)", table.name, d.Format(time.DateOnly), n)
			}
		}
	}
	if err := held.Rollback(ctx); err != nil {
		t.Fatal(err)
	}

	// A rewrite of day0 in progress; late events of day0 go in meanwhile.
	tx, err := pool.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer tx.Rollback(ctx)
	if _, err := orderPeriodTx(ctx, tx, day0); err != nil {
		t.Fatal(err)
	}
	var late []usage.Event
	for _, e := range batches[7] {
		e.RequestID = "late-" + e.RequestID
		late = append(late, e)
	}
	all = append(all, late...)
	inserted := make(chan error, 1)
	go func() { _, err := store.Insert(ctx, late); inserted <- err }()
	waitFor(t, 10*time.Second, func() bool {
		return queryInt(t, pool, `SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() AND wait_event_type = 'Lock'`) > 0
	})
	select {
	case err := <-inserted:
		t.Fatalf("the late increment did not wait for the rewrite: %v", err)
	default:
	}
	if err := tx.Commit(ctx); err != nil {
		t.Fatal(err)
	}
	if err := <-inserted; err != nil {
		t.Fatal(err)
	}
	if !recorded(day0) {
		t.Fatal("day0 not recorded after its rewrite committed")
	}
	checkRollups(t, pool, all)
}

// waitFor polls cond every 20 ms until it holds, failing after d.
func waitFor(t *testing.T, d time.Duration, cond func() bool) {
	t.Helper()
	for end := time.Now().Add(d); !cond(); time.Sleep(20 * time.Millisecond) {
		if time.Now().After(end) {
			t.Fatalf("not within %v", d)
		}
	}
}

// poolConn is one connection of pool for the test's length.
func poolConn(t *testing.T, pool *pgxpool.Pool) *pgxpool.Conn {
	t.Helper()
	c, err := pool.Acquire(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Release)
	return c
}

// queryStrings reads one text column.
func queryStrings(t *testing.T, pool *pgxpool.Pool, q string, args ...any) []string {
	t.Helper()
	rows, err := pool.Query(context.Background(), q, args...)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	var out []string
	for rows.Next() {
		var s string
		if err := rows.Scan(&s); err != nil {
			t.Fatal(err)
		}
		out = append(out, s)
	}
	if err := rows.Err(); err != nil && !errors.Is(err, context.Canceled) {
		t.Fatal(err)
	}
	return out
}
