package analytics

import (
	"fmt"
	"math"
	"testing"
	"time"

	"trueportai/services/gateway/internal/usage"
	"trueportai/services/internal/money"
)

// TestFoldBatchDeclines: a batch holding a value Postgres's aggregation
// would refuse (a latency that is not finite or past a bigint of
// microseconds, a sum past a bigint) is not folded in Go, so it takes the
// SQL path and fails there as it always did; anything else is folded.
func TestFoldBatchDeclines(t *testing.T) {
	t.Parallel()
	big := int64(math.MaxInt64 - 10)
	at := time.Date(2026, 12, 6, 10, 30, 0, 0, time.UTC)
	for _, tc := range []struct {
		name string
		edit func(a, b *usage.Event)
		ok   bool
	}{
		{"plain", func(a, b *usage.Event) {}, true},
		{"NaN latency", func(a, b *usage.Event) { a.LatencyMS = math.NaN() }, false},
		{"infinite latency", func(a, b *usage.Event) { b.LatencyMS = math.Inf(1) }, false},
		{"latency past a bigint of µs", func(a, b *usage.Event) { a.LatencyMS = 1e17 }, false},
		{"negative latency past a bigint of µs", func(a, b *usage.Event) { a.LatencyMS = -1e17 }, false},
		{"one huge total", func(a, b *usage.Event) { a.TotalTokens = &big }, true},
		{"two huge totals overflow the sum", func(a, b *usage.Event) { a.TotalTokens, b.TotalTokens = &big, &big }, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			a := testEvent("a", at, tenantA, 40)
			b := testEvent("b", at.Add(time.Second), tenantA, 40)
			tc.edit(&a, &b)
			groups, ok := foldBatch([]*usage.Event{&a, &b})
			if ok != tc.ok {
				t.Fatalf("folded: %v, want %v", ok, tc.ok)
			}
			if ok && len(groups) != 3 { // one hour, one group per dimension
				t.Fatalf("%d groups, want 3", len(groups))
			}
		})
	}
}

// TestFoldBatchGroups: events fold into one group per dimension, UTC hour,
// tenant and environment; measures are rowMeasures' (table: latency
// rounding half to even and the histogram bucket on its bound).
func TestFoldBatchGroups(t *testing.T) {
	t.Parallel()
	at := time.Date(2026, 12, 6, 10, 59, 59, 999_999_999, time.FixedZone("X", 3600))
	tok := int64(7)
	e1 := testEvent("1", at, tenantA, 0.0025) // 2.5 µs → 2
	e1.TotalTokens, e1.PromptTokens = &tok, &tok
	e2 := testEvent("2", at.Add(time.Nanosecond), tenantA, 5) // the next hour; 5 ms is bucket 0
	e2.StatusCode = 502
	groups, ok := foldBatch([]*usage.Event{&e1, &e2})
	if !ok {
		t.Fatal("declined")
	}
	if len(groups) != 6 {
		t.Fatalf("%d groups, want 6 (2 hours × 3 dimensions)", len(groups))
	}
	g1 := rollupGroup{dim: 1, tenant: tenantA, env: "production", hour: at.Truncate(time.Hour).Unix(), keyID: zeroUUID}
	g2 := rollupGroup{dim: 2, tenant: tenantA, env: "production", hour: at.Add(time.Nanosecond).Unix(), status: 502}
	for g, want := range map[rollupGroup]measures{
		//       req err unk prompt compl total cost lat_us h0 …
		g1: {1, 0, 0, 7, 0, 7, 0, 2, 1},
		g2: {1, 1, 1, 0, 0, 0, 0, 5000, 1},
	} {
		got := groups[g]
		if got == nil || *got != want {
			t.Errorf("%+v: %v, want %v", g, got, want)
		}
	}
}

// BenchmarkPrepare is the Go work of a batch of 4 000 events (50 tenants,
// 4 models, 200 keys, a violation on 2 %) before the database: what the
// ingester's fetch stage does while the store stage waits for Postgres.
func BenchmarkPrepare(b *testing.B) {
	at := time.Date(2026, 12, 6, 10, 0, 0, 0, time.UTC)
	evs := make([]usage.Event, 4000)
	for i := range evs {
		tok, cost := int64(20+i%500), money.USD(1170+i%97)
		e := usage.Event{RequestID: fmt.Sprintf("%032x", i), CreatedAt: at.Add(time.Duration(i) * time.Millisecond),
			TenantID: fmt.Sprintf("00000000-0000-4000-8000-%012d", i%50), Env: "production",
			KeyID: fmt.Sprintf("00000000-0000-4000-9000-%012d", i%200), KeyName: "key", Provider: "openai",
			Model: []string{"gpt-4o", "gpt-4o-mini", "o3", "gpt-4.1"}[i%4], Path: "/v1/chat/completions", StatusCode: 200,
			LatencyMS: float64(i%900) + 0.25, PromptTokens: &tok, CompletionTokens: &tok, TotalTokens: &tok, CostUSD: &cost, Outcome: "ok"}
		if i%50 == 0 {
			e.Violations = []usage.Violation{{ID: fmt.Sprintf("00000000-0000-4000-a000-%012d", i), PolicyID: "00000000-0000-4000-b000-000000000001",
				PolicyName: "pii", Type: "pii", Action: "flag", Severity: "medium", Direction: "request"}}
		}
		evs[i] = e
	}
	var s Store
	b.ReportAllocs()
	for b.Loop() {
		if p := s.Prepare(evs); p.logRows == nil {
			b.Fatal("not folded")
		}
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/float64(len(evs)), "ns/event")
}
