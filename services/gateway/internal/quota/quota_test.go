package quota

import (
	"context"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"trueportai/services/internal/ratelimit/redisstore"
	"trueportai/services/internal/redistest"
)

type fixed map[string]int64

func (f fixed) CountSince(context.Context, time.Time) (map[string]int64, error) { return f, nil }

func TestMonthlyQuota(t *testing.T) {
	now := time.Date(2026, 11, 30, 23, 59, 0, 0, time.UTC)
	c := New(fixed{"t1": 8})
	if err := c.Sync(context.Background(), now); err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 2; i++ {
		if ok, _ := c.Allow("t1", 10, now); !ok {
			t.Fatalf("request %d refused under the cap", i)
		}
	}
	if ok, used := c.Allow("t1", 10, now); ok || used != 10 {
		t.Fatalf("over the cap: ok=%v used=%d", ok, used)
	}
	if ok, _ := c.Allow("t2", 10, now); !ok {
		t.Fatal("another tenant refused")
	}
	// A new calendar month (UTC) starts from zero.
	if ok, used := c.Allow("t1", 10, now.Add(2*time.Minute)); !ok || used != 1 {
		t.Fatalf("new month: ok=%v used=%d", ok, used)
	}
	if ok, _ := c.Allow("t1", 0, now); !ok {
		t.Fatal("no limit refused")
	}
}

// TestResyncKeepsAdmittedRequests: a resync from a usage table that has
// not yet stored the latest requests (ingestion deferred under heavy
// traffic) keeps them counted; one that holds more (other replicas'
// requests) raises the count; a new month starts from the table.
func TestResyncKeepsAdmittedRequests(t *testing.T) {
	ctx := context.Background()
	now := time.Date(2026, 12, 7, 12, 0, 0, 0, time.UTC)
	table := fixed{"t1": 4}
	c := New(table)
	if err := c.Sync(ctx, now); err != nil {
		t.Fatal(err)
	}
	for i := range 6 {
		if ok, _ := c.Allow("t1", 10, now); !ok {
			t.Fatalf("request %d refused under the cap", i)
		}
	}
	table["t1"] = 7 // three of the six are stored so far
	if err := c.Sync(ctx, now); err != nil {
		t.Fatal(err)
	}
	if ok, used := c.Allow("t1", 10, now); ok || used != 10 {
		t.Fatalf("after a resync from a lagging table: ok=%v used=%d, want refused at 10", ok, used)
	}
	table["t1"] = 12 // the six, and two from another replica
	if err := c.Sync(ctx, now); err != nil {
		t.Fatal(err)
	}
	if ok, used := c.Allow("t1", 20, now); !ok || used != 13 {
		t.Fatalf("after a resync from a table ahead: ok=%v used=%d, want 13", ok, used)
	}
	table["t1"] = 0
	if err := c.Sync(ctx, now.AddDate(0, 1, 0)); err != nil {
		t.Fatal(err)
	}
	if ok, used := c.Allow("t1", 20, now.AddDate(0, 1, 0)); !ok || used != 1 {
		t.Fatalf("a new month: ok=%v used=%d, want 1", ok, used)
	}
}

func sharedCounters(t *testing.T, store Store, n int, base fixed) ([]*Counter, context.CancelFunc) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	cs := make([]*Counter, n)
	for i := range cs {
		cs[i] = New(base)
		cs[i].Shared(store, SharedOptions{Group: "gateway", Replicas: func() int { return n }, Timeout: 100 * time.Millisecond})
		if err := cs[i].Sync(ctx, time.Now()); err != nil {
			t.Fatal(err)
		}
		wg.Go(func() { cs[i].Run(ctx, time.Hour, nil) })
	}
	stop := func() { cancel(); wg.Wait() }
	t.Cleanup(stop)
	return cs, stop
}

// TestSharedQuotaAcrossReplicas: three replicas share one tenant's monthly
// quota through the store, seeded from the usage table; together they
// admit what is left (alone, each would have admitted all 600 of it). A
// burst of 3000 requests within 0.2 s is the worst case for the overshoot:
// what replicas admit on credit during one store round trip; it stays
// within 15 % of what was left (in memory it was 200 %).
func TestSharedQuotaAcrossReplicas(t *testing.T) {
	t.Parallel()
	c, err := redisstore.Open(redistest.URL(t))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	store := redisstore.New(c, redistest.Prefix(t))
	cs, _ := sharedCounters(t, store, 3, fixed{"t1": 400})
	var admitted atomic.Int64
	var wg sync.WaitGroup
	for i := range 3000 {
		wg.Go(func() {
			if ok, _ := cs[i%3].Allow("t1", 1000, time.Now()); ok {
				admitted.Add(1)
			}
		})
		if i%50 == 0 {
			time.Sleep(2 * time.Millisecond)
		}
	}
	wg.Wait()
	if n := admitted.Load(); n < 600 || n > 690 {
		t.Fatalf("admitted %d, want 600 … 690", n)
	}
	if ok, used := cs[0].Allow("t1", 1000, time.Now()); ok || used < 1000 {
		t.Fatalf("spent quota: ok=%v used=%d", ok, used)
	}
	// Raising the limit (a plan change) opens it again at once.
	waitFor(t, func() bool { ok, _ := cs[1].Allow("t1", 2000, time.Now()); return ok })
}

func waitFor(t *testing.T, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatal("condition not reached in time")
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// TestSharedQuotaOutage: with the store down each replica admits its share
// of what the usage table says is left, and leases again once it is back.
func TestSharedQuotaOutage(t *testing.T) {
	t.Parallel()
	srv := redistest.Start(t)
	c, err := redisstore.Open(srv.URL())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	cs, _ := sharedCounters(t, redisstore.New(c, "q"), 2, fixed{"t1": 100})
	admitted := make([]int64, len(cs)) // by each replica before the outage's share
	if ok, _ := cs[0].Allow("t1", 200, time.Now()); !ok {
		t.Fatal("refused with the store up")
	}
	admitted[0]++
	srv.Stop()
	// A lease fails: the replica notices within a probe.
	waitFor(t, func() bool {
		for i, q := range cs {
			if ok, _ := q.Allow("t1", 200, time.Now()); ok {
				admitted[i]++
			}
		}
		return cs[0].Degraded() && cs[1].Degraded()
	})
	for i, q := range cs {
		// The usage table still says 100, without the requests this
		// replica admitted since (not yet ingested): they stay counted.
		_ = q.Sync(context.Background(), time.Now())
		var n int64
		for range 200 {
			if ok, _ := q.Allow("t1", 200, time.Now()); ok {
				n++
			}
		}
		if want := (200 - 100 - admitted[i] + 1) / 2; n != want {
			t.Errorf("replica %d admitted %d during the outage, want ⌈(200 - 100 - the %d it had admitted) ÷ 2⌉ = %d", i, n, admitted[i], want)
		}
	}
	srv.Restart()
	waitFor(t, func() bool { return !cs[0].Degraded() })
	// The restarted store is seeded from the usage table again.
	waitFor(t, func() bool { ok, _ := cs[0].Allow("t1", 200, time.Now()); return ok })
}
