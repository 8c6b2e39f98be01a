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
	if ok, _ := cs[0].Allow("t1", 200, time.Now()); !ok {
		t.Fatal("refused with the store up")
	}
	srv.Stop()
	// A lease fails: the replica notices within a probe.
	waitFor(t, func() bool {
		cs[0].Allow("t1", 200, time.Now())
		cs[1].Allow("t1", 200, time.Now())
		return cs[0].Degraded() && cs[1].Degraded()
	})
	for _, q := range cs {
		_ = q.Sync(context.Background(), time.Now()) // the usage table: still 100
		n := 0
		for range 200 {
			if ok, _ := q.Allow("t1", 200, time.Now()); ok {
				n++
			}
		}
		if n != 50 {
			t.Errorf("admitted %d during the outage, want (200 - 100) ÷ 2 = 50", n)
		}
	}
	srv.Restart()
	waitFor(t, func() bool { return !cs[0].Degraded() })
	// The restarted store is seeded from the usage table again.
	waitFor(t, func() bool { ok, _ := cs[0].Allow("t1", 200, time.Now()); return ok })
}
