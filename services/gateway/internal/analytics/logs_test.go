package analytics

import (
	"context"
	"fmt"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"
	"time"

	"trueportai/services/gateway/internal/usage"
)

// TestLogsFiltersMatchTheEvents: for every filter of the logs API and some
// combinations, the pages of Logs, read one after the other, are exactly
// the events the filter selects (computed here in Go), newest first, ties
// on created_at broken by id (descending), with exact totals. The events
// span three months (the default partition included), share timestamps
// by threes, and mix keys, providers, models, statuses and streams.
func TestLogsFiltersMatchTheEvents(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	pool := migratedPool(t, "logs")
	s := New(pool)
	rng := rand.New(rand.NewPCG(3, 5))
	now := time.Now().UTC().Truncate(time.Second)
	keys := []string{"", "11111111-2222-4333-8444-555555555555", "66666666-7777-4888-9999-aaaaaaaaaaaa"}
	models := []struct{ provider, model string }{{"openai", "gpt-4o"}, {"openai", "gpt-4o-mini"}, {"azure", "gpt-4o"},
		{"anthropic", "claude-haiku-4-5"}}
	statuses := []int{200, 200, 200, 201, 400, 429, 499, 500, 503}
	var evs []usage.Event
	for i := range 1500 {
		// Three events per instant; the oldest 100 days back: older than
		// the migration's partitions, so in usage_logs_default.
		at := now.Add(-time.Duration(i/3) * 100 * 24 * time.Hour / 500)
		tenant := tenantA
		if i%11 == 0 {
			tenant = tenantB
		}
		ev := testEvent(fmt.Sprintf("logs-%d", i), at, tenant, float64(1+rng.IntN(3000)))
		if i%13 == 0 {
			ev.Env = "staging"
		}
		m := models[rng.IntN(len(models))]
		ev.KeyID, ev.Provider, ev.Model = keys[rng.IntN(len(keys))], m.provider, m.model
		ev.StatusCode, ev.Stream = statuses[rng.IntN(len(statuses))], rng.IntN(3) == 0
		evs = append(evs, ev)
	}
	if _, err := s.Insert(ctx, evs); err != nil {
		t.Fatal(err)
	}
	if queryInt(t, pool, `SELECT count(*) FROM usage_logs_default`) == 0 {
		t.Fatal("no row in the default partition: the test does not cover it")
	}
	// The ids are the ingester's (time-ordered, random within a
	// millisecond): read them to order ties.
	ids := map[string]string{}
	rows, err := pool.Query(ctx, `SELECT request_id, id::text FROM usage_logs`)
	if err != nil {
		t.Fatal(err)
	}
	for rows.Next() {
		var rid, id string
		if err := rows.Scan(&rid, &id); err != nil {
			t.Fatal(err)
		}
		ids[rid] = id
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}

	yes, no := true, false
	base := LogFilter{TenantID: tenantA, Env: "production"}
	with := func(set func(*LogFilter)) LogFilter { f := base; set(&f); return f }
	filters := map[string]LogFilter{
		"none":               base,
		"range":              with(func(f *LogFilter) { f.From, f.To = now.Add(-50*24*time.Hour), now.Add(-20*24*time.Hour) }),
		"from":               with(func(f *LogFilter) { f.From = now.Add(-3 * 24 * time.Hour) }),
		"key":                with(func(f *LogFilter) { f.KeyID = keys[1] }),
		"provider":           with(func(f *LogFilter) { f.Provider = "azure" }),
		"model":              with(func(f *LogFilter) { f.Model = "gpt-4o" }),
		"status 200":         with(func(f *LogFilter) { f.StatusCode = 200 }),
		"status 201":         with(func(f *LogFilter) { f.StatusCode = 201 }),
		"status 429":         with(func(f *LogFilter) { f.StatusCode = 429 }),
		"2xx":                with(func(f *LogFilter) { f.StatusClass = 2 }),
		"4xx":                with(func(f *LogFilter) { f.StatusClass = 4 }),
		"5xx":                with(func(f *LogFilter) { f.StatusClass = 5 }),
		"stream":             with(func(f *LogFilter) { f.Stream = &yes }),
		"not stream":         with(func(f *LogFilter) { f.Stream = &no }),
		"key model 5xx":      with(func(f *LogFilter) { f.KeyID, f.Model, f.StatusClass = keys[2], "gpt-4o", 5 }),
		"provider 4xx range": with(func(f *LogFilter) { f.Provider, f.StatusClass, f.From = "openai", 4, now.Add(-60*24*time.Hour) }),
		"every filter": with(func(f *LogFilter) {
			f.From, f.To, f.KeyID, f.Provider, f.Model, f.StatusCode, f.Stream = now.Add(-90*24*time.Hour), now, keys[1], "openai", "gpt-4o", 500, &no
		}),
		"staging":      {TenantID: tenantA, Env: "staging"},
		"other tenant": {TenantID: tenantB, Env: "production", StatusClass: 5},
	}
	match := func(f LogFilter, e usage.Event) bool {
		switch {
		case e.TenantID != f.TenantID || e.Env != f.Env,
			!f.From.IsZero() && e.CreatedAt.Before(f.From), !f.To.IsZero() && !e.CreatedAt.Before(f.To),
			f.KeyID != "" && e.KeyID != f.KeyID, f.Provider != "" && e.Provider != f.Provider, f.Model != "" && e.Model != f.Model,
			f.StatusCode != 0 && e.StatusCode != f.StatusCode, f.StatusClass != 0 && e.StatusCode/100 != f.StatusClass,
			f.Stream != nil && e.Stream != *f.Stream:
			return false
		}
		return true
	}
	for name, f := range filters {
		var want []usage.Event
		for _, e := range evs {
			if match(f, e) {
				want = append(want, e)
			}
		}
		slices.SortFunc(want, func(a, b usage.Event) int {
			if c := b.CreatedAt.Compare(a.CreatedAt); c != 0 {
				return c
			}
			return strings.Compare(ids[b.RequestID], ids[a.RequestID])
		})
		if len(want) < 3 {
			t.Fatalf("%s: only %d matching events: the filter tests nothing", name, len(want))
		}
		const limit = 7
		var got []Log
		for offset := 0; ; offset += limit {
			page, err := s.Logs(ctx, f, limit, offset)
			if err != nil {
				t.Fatalf("%s: %v", name, err)
			}
			if page.Capped || (!page.Estimated && page.Total != len(want)) {
				t.Fatalf("%s: total %d (capped %v), want %d", name, page.Total, page.Capped, len(want))
			}
			if page.Estimated { // the count budget ran out (a loaded machine): not this test's subject
				t.Logf("%s: total estimated (%d, want %d)", name, page.Total, len(want))
			}
			got = append(got, page.Items...)
			if len(page.Items) < limit {
				break
			}
		}
		if len(got) != len(want) {
			t.Fatalf("%s: %d rows over the pages, want %d", name, len(got), len(want))
		}
		for i, l := range got {
			w := want[i]
			if l.RequestID != w.RequestID || !l.CreatedAt.Equal(w.CreatedAt) || l.ID != ids[w.RequestID] || l.Model != w.Model ||
				l.StatusCode != w.StatusCode || l.Stream != w.Stream || l.Provider != w.Provider {
				t.Fatalf("%s: row %d is %s (%s, %s), want %s (%s, %s)", name, i, l.RequestID, l.CreatedAt, l.ID, w.RequestID, w.CreatedAt,
					ids[w.RequestID])
			}
		}
	}
}

// TestLogsTotalEstimatedPastTheBudget: a count that runs out of its budget
// gives the planner's estimate, marked as such (the hedged estimate is
// asked for at half the budget), and the page itself is complete.
func TestLogsTotalEstimatedPastTheBudget(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	pool := migratedPool(t, "logsest")
	s := New(pool)
	now := time.Now().UTC().Truncate(time.Second)
	const n = 24000
	for b := 0; b < n; b += 4000 {
		var evs []usage.Event
		for i := b; i < b+4000; i++ {
			evs = append(evs, testEvent(fmt.Sprintf("est-%d", i), now.Add(-time.Duration(i)*time.Second), tenantA, 10))
		}
		if _, err := s.Insert(ctx, evs); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := pool.Exec(ctx, `ANALYZE usage_logs`); err != nil {
		t.Fatal(err)
	}
	f := LogFilter{TenantID: tenantA, Env: "production"}
	s.countBudget = 10 * time.Second // time enough, on a loaded machine too
	exact, err := s.Logs(ctx, f, 50, 0)
	if err != nil {
		t.Fatal(err)
	}
	if exact.Estimated || !exact.Capped || exact.Total != LogTotalCap {
		t.Fatalf("with time enough: total %d capped %v estimated %v, want the cap, exact", exact.Total, exact.Capped, exact.Estimated)
	}
	s.countBudget = time.Millisecond // counting 10 001 rows takes longer
	page, err := s.Logs(ctx, f, 50, 0)
	if err != nil {
		t.Fatal(err)
	}
	if !page.Estimated {
		t.Fatalf("total %d not marked as an estimate with a 1 ms budget", page.Total)
	}
	if page.Total < n/2 || page.Total > 2*n {
		t.Errorf("estimated total %d, want about %d", page.Total, n)
	}
	if len(page.Items) != 50 || page.Items[0].RequestID != "est-0" {
		t.Errorf("page of %d items starting %v, want 50 from est-0", len(page.Items), page.Items[:min(1, len(page.Items))])
	}
	// The last page is not full: it tells the total exactly, whatever the
	// count managed (capped as the count caps it).
	last, err := s.Logs(ctx, f, 50, n-10)
	if err != nil {
		t.Fatal(err)
	}
	if last.Estimated || !last.Capped || last.Total != LogTotalCap || len(last.Items) != 10 {
		t.Errorf("last page: %d items, total %d capped %v estimated %v; want 10 items, the cap, exact", len(last.Items), last.Total, last.Capped, last.Estimated)
	}
}

// TestLogPageSettle: an estimated total is made exact by a page that is
// not full, and kept within what a full or an empty page shows.
func TestLogPageSettle(t *testing.T) {
	t.Parallel()
	est := func(n int) LogPage { return LogPage{Total: n, Estimated: true} }
	for _, tc := range []struct {
		name                string
		page                LogPage
		rows, limit, offset int
		total               int
		capped, estimated   bool
	}{
		{"empty first page: none match", est(5), 0, 50, 0, 0, false, false},
		{"short first page", est(900), 7, 50, 0, 7, false, false},
		{"short last page", est(10), 3, 50, 100, 103, false, false},
		{"short page past the cap", est(100), 3, 50, LogTotalCap, LogTotalCap, true, false},
		{"full page, estimate too low", est(10), 50, 50, 100, 150, false, true},
		{"full page, estimate above", est(5000), 50, 50, 100, 5000, false, true},
		{"empty page past the start, estimate too high", est(5000), 0, 50, 200, 200, false, true},
		{"empty page past the start, estimate below", est(120), 0, 50, 200, 120, false, true},
		{"exact totals are left alone", LogPage{Total: 42}, 0, 50, 0, 42, false, false},
	} {
		got := tc.page.settle(tc.rows, tc.limit, tc.offset)
		if got.Total != tc.total || got.Capped != tc.capped || got.Estimated != tc.estimated {
			t.Errorf("%s: total %d capped %v estimated %v, want %d %v %v", tc.name, got.Total, got.Capped, got.Estimated, tc.total, tc.capped, tc.estimated)
		}
	}
}
