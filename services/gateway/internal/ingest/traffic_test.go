package ingest

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"slices"
	"testing"
	"time"

	"trueportai/services/gateway/internal/analytics"
)

// TestTrafficFetchNow: a loop fetches at once below the busy rate; at or
// above it, it waits, up to maxDelay, and then catches up until nothing is
// pending, whatever the rate, before it defers again.
func TestTrafficFetchNow(t *testing.T) {
	t0 := time.Date(2026, 12, 7, 10, 0, 0, 0, time.UTC)
	at := func(ms int) time.Time { return t0.Add(time.Duration(ms) * time.Millisecond) }
	const busy, maxDelay = 50.0, time.Second
	type step struct {
		ms           int
		seq, pending uint64
		want         bool
		why          string
	}
	for _, tc := range []struct {
		name   string
		before func(*traffic) // the loop's history before the steps
		steps  []step
	}{
		{"idle stream: fetch", nil, []step{
			{0, 10, 0, true, "first sample: no rate yet"},
			{300, 11, 1, true, "3 messages a second"},
			{600, 11, 0, true, "nothing arrived"},
		}},
		{"heavy traffic defers, then catches up after maxDelay", nil, []step{
			{0, 100, 0, true, "first sample"},
			{100, 110, 10, false, "100 a second: defer"},
			{130, 113, 13, false, "closer than minSpan: the last rate holds"},
			{1000, 200, 100, false, "still 100 a second, deferred 900 ms"},
			{1100, 210, 110, true, "deferred 1 s: catch up"},
			{1150, 215, 60, true, "catching up, though the traffic goes on"},
			{1250, 225, 0, false, "drained, and still 100 a second: defer again"},
			{1350, 235, 10, false, "deferring"},
		}},
		{"traffic stops: fetch at once", nil, []step{
			{0, 100, 0, true, "first sample"},
			{100, 110, 10, false, "100 a second"},
			{200, 110, 10, true, "nothing arrived"},
		}},
		{"just below the busy rate", nil, []step{
			{0, 0, 0, true, "first sample"},
			{1000, 49, 49, true, "49 a second"},
		}},
		{"idle, then a burst", func(tr *traffic) { // the last sample 1 s ago, then fetches that found nothing until 0 ms
			tr.fetchNow(arrivals{at(-1000), 500, 0}, busy, maxDelay)
			tr.fetchedNothing(at(-100))
			tr.fetchedNothing(at(0))
		}, []step{
			{100, 510, 10, false, "10 arrived since the empty fetch: 100 a second"},
		}},
		{"a recreated consumer restarts the rate", nil, []step{
			{0, 1000, 0, true, "first sample"},
			{100, 1100, 100, false, "1 000 a second"},
			{200, 5, 5, true, "sequence went back: no rate"},
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var tr traffic
			if tc.before != nil {
				tc.before(&tr)
			}
			for _, s := range tc.steps {
				if got := tr.fetchNow(arrivals{at(s.ms), s.seq, s.pending}, busy, maxDelay); got != s.want {
					t.Fatalf("at %d ms (%s): fetch %v, want %v (rate %.0f/s)", s.ms, s.why, got, s.want, tr.rate)
				}
			}
		})
	}
}

// TestIngesterDefersToHeavyTraffic: with a deferral, an ingester stores
// nothing more once it has seen usage messages arrive above the busy rate
// (what it fetched before, in the traffic's first 500 ms, may be stored),
// and every event once they stop; without one, it stores as they come.
// Under traffic longer than maxDelay, rows are stored before it ends.
func TestIngesterDefersToHeavyTraffic(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name            string
		maxDelay        time.Duration
		traffic         time.Duration
		storedInTraffic bool
	}{
		{"no deferral", 0, 1500 * time.Millisecond, true},
		{"burst shorter than maxDelay", 10 * time.Second, 1500 * time.Millisecond, false},
		{"traffic longer than maxDelay", 700 * time.Millisecond, 3 * time.Second, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			ctx := context.Background()
			log := slog.New(slog.NewTextHandler(io.Discard, nil))
			name := fmt.Sprintf("defer%d", tc.maxDelay.Milliseconds())
			pool := migratedPool(t, name)
			_, js, stream, subject := testStream(t, name)
			in := NewIngester(analytics.New(pool), js, stream, noTouch{}, log)
			in.SetDeferral(20, tc.maxDelay)
			ictx, istop := context.WithCancel(ctx)
			defer istop()
			go func() { _ = in.Run(ictx) }()

			// 100 messages a second, five times the busy rate.
			var want []string
			start := time.Now()
			end, seen := start.Add(tc.traffic), -1
			for i := 0; time.Now().Before(end); i++ {
				if seen < 0 && time.Since(start) >= 500*time.Millisecond {
					seen = countRows(t, pool, ctx) // what was stored before the loop saw the traffic
				}
				id := fmt.Sprintf("r-%05d", i)
				if _, err := js.Publish(ctx, subject, encodedTestEvent(t, id)); err != nil {
					t.Fatal(err)
				}
				want = append(want, id)
				time.Sleep(10 * time.Millisecond)
			}
			inTraffic := countRows(t, pool, ctx)
			if got := inTraffic > seen; got != tc.storedInTraffic {
				t.Errorf("%d events stored 500 ms into the traffic, %d of %d when it ended; want more stored meanwhile: %v",
					seen, inTraffic, len(want), tc.storedInTraffic)
			}
			waitDrained(t, js, stream)
			if got := storedIDs(t, pool); !slices.Equal(got, want) {
				t.Fatalf("stored %d request ids, want the %d published", len(got), len(want))
			}
		})
	}
}
