package analytics

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"trueportai/services/gateway/internal/usage"
	"trueportai/services/internal/money"
)

// TestStatsSeriesLatency: every bucket of the series carries its own
// average and p95 latency, from that bucket's rows only (the console's
// p95 chart), while the totals fold every bucket.
func TestStatsSeriesLatency(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	pool := migratedPool(t, "stats")
	tenant := "33333333-3333-3333-3333-333333333333"
	hour := time.Now().UTC().Truncate(time.Hour)
	var evs []usage.Event
	add := func(at time.Time, latency float64, n int) {
		for range n {
			evs = append(evs, usage.Event{RequestID: fmt.Sprintf("r%d", len(evs)), CreatedAt: at, TenantID: tenant, Env: "production",
				Provider: "openai", Model: "gpt-4o-mini", Path: "/chat/completions", StatusCode: 200, Outcome: usage.OutcomeOK, LatencyMS: latency})
		}
	}
	add(hour.Add(-2*time.Hour+time.Minute), 20, 10)   // a fast hour
	add(hour.Add(-1*time.Hour+time.Minute), 3000, 10) // a slow one
	if _, err := New(pool).Insert(ctx, evs); err != nil {
		t.Fatal(err)
	}
	st, err := New(pool).Stats(ctx, StatsQuery{TenantID: tenant, Env: "production", From: hour.Add(-3 * time.Hour), To: hour.Add(time.Hour),
		Interval: "hour", GroupBy: "model"})
	if err != nil {
		t.Fatal(err)
	}
	if len(st.Series) != 2 {
		t.Fatalf("series: %+v", st.Series)
	}
	fast, slow := st.Series[0], st.Series[1]
	if fast.AvgLatencyMS != 20 || fast.P95LatencyMS <= 10 || fast.P95LatencyMS > 25 {
		t.Errorf("fast hour: avg %v p95 %v, want 20 and in (10, 25]", fast.AvgLatencyMS, fast.P95LatencyMS)
	}
	if slow.AvgLatencyMS != 3000 || slow.P95LatencyMS <= 2500 || slow.P95LatencyMS > 5000 {
		t.Errorf("slow hour: avg %v p95 %v, want 3000 and in (2500, 5000]", slow.AvgLatencyMS, slow.P95LatencyMS)
	}
	if st.Totals.Requests != 20 || st.Totals.P95LatencyMS <= 2500 {
		t.Errorf("totals: %+v", st.Totals)
	}
}

// TestStatsMatchTheEvents: for every interval and group_by, the totals, the
// series and the breakdown of a range are the sums of the events in it
// (the range's hours: from is rounded down to its hour), exactly, money
// included; the summary agrees.
func TestStatsMatchTheEvents(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	pool := migratedPool(t, "stats")
	s := New(pool)
	all, _ := rollupTestBatches()
	if _, err := s.Insert(ctx, all); err != nil {
		t.Fatal(err)
	}
	var minT, maxT time.Time
	for i, e := range all {
		if i == 0 || e.CreatedAt.Before(minT) {
			minT = e.CreatedAt
		}
		if e.CreatedAt.After(maxT) {
			maxT = e.CreatedAt
		}
	}
	from, to := minT.Add(3*time.Hour+17*time.Minute), maxT.Add(-5*time.Hour).Truncate(time.Hour) // partial first day, whole last hours
	in := func(e usage.Event) bool {
		return e.TenantID == tenantA && e.Env == "production" && !e.CreatedAt.Before(from.Truncate(time.Hour)) && e.CreatedAt.Before(to)
	}
	var want Totals
	wantGroups := map[string]map[string]int64{}
	for _, e := range all {
		if !in(e) {
			continue
		}
		want.Requests++
		if e.TotalTokens != nil {
			want.TotalTokens += *e.TotalTokens
		}
		if e.CostUSD != nil {
			want.CostUSD += *e.CostUSD
		}
		for g, k := range map[string]string{"model": e.Model, "provider": e.Provider, "key": keyOrZero(e.KeyID), "status": fmt.Sprint(e.StatusCode)} {
			if wantGroups[g] == nil {
				wantGroups[g] = map[string]int64{}
			}
			wantGroups[g][k]++
		}
	}
	if want.Requests < 100 {
		t.Fatalf("only %d events in range", want.Requests)
	}
	for _, iv := range []string{"hour", "day", "month"} {
		for _, g := range []string{"model", "provider", "key", "status"} {
			st, err := s.Stats(ctx, StatsQuery{TenantID: tenantA, Env: "production", From: from, To: to, Interval: iv, GroupBy: g})
			if err != nil {
				t.Fatal(err)
			}
			if st.Totals.Requests != want.Requests || st.Totals.TotalTokens != want.TotalTokens || st.Totals.CostUSD != want.CostUSD {
				t.Fatalf("%s/%s totals %+v, want %+v", iv, g, st.Totals, want)
			}
			var sr int64
			var sc money.USD
			for i, p := range st.Series {
				sr, sc = sr+p.Requests, sc+p.CostUSD
				if i > 0 && !p.Bucket.After(st.Series[i-1].Bucket) {
					t.Fatalf("%s/%s: series out of order", iv, g)
				}
			}
			if sr != want.Requests || sc != want.CostUSD {
				t.Fatalf("%s/%s: series sums %d, %s", iv, g, sr, sc)
			}
			if len(st.Breakdown) != len(wantGroups[g]) {
				t.Fatalf("%s/%s: %d groups, want %d", iv, g, len(st.Breakdown), len(wantGroups[g]))
			}
			for _, b := range st.Breakdown {
				if b.Requests != wantGroups[g][b.Key] {
					t.Fatalf("%s/%s: group %q has %d requests, want %d", iv, g, b.Key, b.Requests, wantGroups[g][b.Key])
				}
			}
		}
	}
	sum, err := s.Summary(ctx, tenantA, from.Truncate(time.Hour), to)
	if err != nil {
		t.Fatal(err)
	}
	var envAll int64
	for _, e := range all {
		if e.TenantID == tenantA && !e.CreatedAt.Before(from.Truncate(time.Hour)) && e.CreatedAt.Before(to) {
			envAll++
		}
	}
	if sum.Requests != envAll {
		t.Fatalf("summary counts %d requests, want %d (every env)", sum.Requests, envAll)
	}
}

func keyOrZero(k string) string {
	if k == "" {
		return zeroUUID
	}
	return strings.ToLower(k) // as Postgres spells a uuid
}

// TestStatsWithinOneDay: a range that begins and ends inside one day (no
// whole day in it) counts only its own hours, at every interval. Before
// the fix, by day and by month it also counted the hours after its end up
// to midnight (TestStatsMatchTheEvents, whose range follows the clock,
// met this case only when run between about 03:00 and 05:00 UTC).
func TestStatsWithinOneDay(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	pool := migratedPool(t, "statsday")
	s := New(pool)
	day := time.Now().UTC().Truncate(24 * time.Hour).Add(-24 * time.Hour)
	var evs []usage.Event
	for i, at := range []time.Duration{30 * time.Minute, 90 * time.Minute, 12 * time.Hour, 23*time.Hour + 30*time.Minute} {
		evs = append(evs, testEvent(fmt.Sprintf("oneday-%d", i), day.Add(at), tenantA, 10))
	}
	if _, err := s.Insert(ctx, evs); err != nil {
		t.Fatal(err)
	}
	// From 01:17 (its hour, 01:00, counts) to 23:00: 01:30 and 12:00.
	from, to := day.Add(time.Hour+17*time.Minute), day.Add(23*time.Hour)
	for _, iv := range []string{"hour", "day", "month"} {
		st, err := s.Stats(ctx, StatsQuery{TenantID: tenantA, Env: "production", From: from, To: to, Interval: iv, GroupBy: "model"})
		if err != nil {
			t.Fatal(err)
		}
		if st.Totals.Requests != 2 {
			t.Errorf("%s: %d requests, want 2 (01:30 and 12:00)", iv, st.Totals.Requests)
		}
	}
}
