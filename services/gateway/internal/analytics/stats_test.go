package analytics

import (
	"context"
	"fmt"
	"testing"
	"time"

	"trueportai/services/gateway/internal/usage"
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
