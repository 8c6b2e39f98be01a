package redisstore_test

import (
	"context"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"trueportai/services/internal/ratelimit"
	"trueportai/services/internal/ratelimit/redisstore"
	"trueportai/services/internal/redistest"
)

func open(t *testing.T, url string) *redis.Client {
	t.Helper()
	c, err := redisstore.Open(url)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

func sharedStore(t *testing.T) *redisstore.Store {
	return redisstore.New(open(t, redistest.URL(t)), redistest.Prefix(t))
}

func TestLeaseIsGCRA(t *testing.T) {
	t.Parallel()
	st := sharedStore(t)
	ctx := context.Background()
	rule := ratelimit.Rule{Name: "r", Limit: 10, Window: time.Hour}
	l := []ratelimit.Lease{{Rule: rule, Key: "k", Want: 4}}
	if err := st.Lease(ctx, "g", l); err != nil {
		t.Fatal(err)
	}
	if l[0].Granted != 4 || l[0].Wait != 0 {
		t.Fatalf("first lease: %+v", l[0])
	}
	// 6 left of the burst: a lease of 8 gets 6, and waits one interval.
	l = []ratelimit.Lease{{Rule: rule, Key: "k", Want: 8}, {Rule: rule, Key: "other", Want: 1}}
	if err := st.Lease(ctx, "g", l); err != nil {
		t.Fatal(err)
	}
	if l[0].Granted != 6 || l[0].Wait < 5*time.Minute || l[0].Wait > 6*time.Minute || l[0].Reset < 59*time.Minute {
		t.Fatalf("second lease: %+v", l[0])
	}
	if l[1].Granted != 1 {
		t.Fatalf("keys are independent: %+v", l[1])
	}
	// Forced charges count even when nothing is left; giving back restores.
	l = []ratelimit.Lease{{Rule: rule, Key: "k", Force: 2, Want: 1}}
	_ = st.Lease(ctx, "g", l)
	if l[0].Granted != 0 || l[0].Wait < 17*time.Minute {
		t.Fatalf("after a forced charge: %+v", l[0])
	}
	l = []ratelimit.Lease{{Rule: rule, Key: "k", Force: -5, Want: 3}}
	_ = st.Lease(ctx, "g", l)
	if l[0].Granted != 3 {
		t.Fatalf("after giving 5 back: %+v", l[0])
	}
	// Another group has its own keys.
	l = []ratelimit.Lease{{Rule: rule, Key: "k", Want: 10}}
	_ = st.Lease(ctx, "other-group", l)
	if l[0].Granted != 10 {
		t.Fatalf("groups share keys: %+v", l[0])
	}
}

func TestCounterLease(t *testing.T) {
	t.Parallel()
	st := sharedStore(t)
	ctx := context.Background()
	l := []ratelimit.CounterLease{{Key: "t1:2026-11", Limit: 100, Seed: 90, Want: 4, TTL: time.Hour}}
	if err := st.LeaseCounters(ctx, "g", l); err != nil {
		t.Fatal(err)
	}
	if l[0].Granted != 4 || l[0].Used != 94 {
		t.Fatalf("seeded lease: %+v", l[0])
	}
	l[0].Seed, l[0].Want, l[0].Force = 0, 10, 1
	_ = st.LeaseCounters(ctx, "g", l)
	if l[0].Granted != 5 || l[0].Used != 100 {
		t.Fatalf("lease at the cap: %+v", l[0])
	}
	l[0].Force, l[0].Want = -3, 1
	_ = st.LeaseCounters(ctx, "g", l)
	if l[0].Granted != 1 || l[0].Used != 98 {
		t.Fatalf("given back: %+v", l[0])
	}
	// The store lost nothing here; a higher seed (the usage table knows
	// more) raises it.
	l[0].Force, l[0].Want, l[0].Seed = 0, 0, 99
	_ = st.LeaseCounters(ctx, "g", l)
	if l[0].Used != 99 {
		t.Fatalf("raised to the seed: %+v", l[0])
	}
}

func TestHeartbeatCountsReplicas(t *testing.T) {
	t.Parallel()
	st := sharedStore(t)
	ctx := context.Background()
	for i, inst := range []string{"a", "b", "c", "a"} {
		n, err := st.Heartbeat(ctx, "gw", inst, time.Second)
		if err != nil {
			t.Fatal(err)
		}
		if want := min(i+1, 3); n != want {
			t.Fatalf("beat %d: %d replicas, want %d", i, n, want)
		}
	}
	if n, _ := st.Heartbeat(ctx, "platform", "a", time.Second); n != 1 {
		t.Fatalf("groups share replicas: %d", n)
	}
	// Short-lived beats expire.
	_, _ = st.Heartbeat(ctx, "gw2", "x", 20*time.Millisecond)
	deadline := time.Now().Add(2 * time.Second)
	for {
		n, _ := st.Heartbeat(ctx, "gw2", "y", time.Second)
		if n == 1 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("expired replica still counted: %d", n)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// replicas starts n Shared limiters of one group on store, their loops
// running until the test ends.
func replicas(t *testing.T, store ratelimit.Store, n int, opts ratelimit.SharedOptions) []*ratelimit.Shared {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	out := make([]*ratelimit.Shared, n)
	for i := range out {
		out[i] = ratelimit.NewShared(store, opts)
		wg.Go(func() { out[i].Run(ctx) })
	}
	t.Cleanup(func() { cancel(); wg.Wait() })
	waitFor(t, 5*time.Second, func() bool {
		for _, s := range out {
			if s.Replicas() < n {
				return false
			}
		}
		return true
	})
	return out
}

func waitFor(t *testing.T, d time.Duration, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatal("condition not reached in time")
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func TestAllowRuleIsExactAcrossReplicas(t *testing.T) {
	t.Parallel()
	rs := replicas(t, sharedStore(t), 3, ratelimit.SharedOptions{Group: "platform-backend", Heartbeat: 100 * time.Millisecond})
	rule := ratelimit.Rule{Name: "login_per_email", Limit: 10, Window: 15 * time.Minute}
	var allowed atomic.Int64
	var wg sync.WaitGroup
	for i := range 60 {
		wg.Go(func() {
			r, err := rs[i%3].AllowRule(context.Background(), rule, "a@example.com", time.Now())
			if err != nil {
				t.Error(err)
			}
			if r.Allowed {
				allowed.Add(1)
			} else if r.RetryAfter < 80*time.Second || r.RetryAfter > 90*time.Second {
				t.Errorf("refusal: %+v", r)
			}
		})
	}
	wg.Wait()
	if n := allowed.Load(); n != 10 {
		t.Fatalf("%d of 60 attempts on 3 replicas admitted, want exactly 10", n)
	}
}

// TestAllowLeasesAcrossReplicas drives one key on three replicas at five
// times its rate, round robin, after its burst is spent: the replicas
// together admit the key's rate (never more), and a busy key costs a
// store call only every few dozen requests.
func TestAllowLeasesAcrossReplicas(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		rpm  int
		for_ time.Duration
		// Admitted within rate·for - under … rate·for + 2: tokens a
		// replica holds at the end (at most one each at 60 RPM) and the
		// store's refill during a replica's last wait are admitted after
		// the end.
		under int
	}{
		{rpm: 60, for_: 4 * time.Second, under: 2},
		{rpm: 6000, for_: 3 * time.Second, under: 30},
	} {
		store := &counting{Store: sharedStore(t)}
		rs := replicas(t, store, 3, ratelimit.SharedOptions{Group: "gateway", Heartbeat: 200 * time.Millisecond})
		key := "key-" + time.Now().Format("150405.000000")
		interval := time.Minute / time.Duration(tc.rpm)
		every := interval / 5
		// Spend the burst through the replicas (so that they hold no
		// budget), then take what the store refilled meanwhile: the run
		// starts on an empty allowance.
		drainFrom := time.Now()
		drain := drainFrom.Add(20 * time.Second)
		for refused := 0; (refused < 2000 || time.Since(drainFrom) < time.Second) && time.Now().Before(drain); {
			refused++
			for _, s := range rs {
				if s.Allow(key, tc.rpm, time.Now()).Allowed {
					refused = 0
				}
			}
		}
		steal := []ratelimit.Lease{{Rule: ratelimit.Rule{Limit: tc.rpm, Window: time.Minute}, Key: key, Want: tc.rpm}}
		if err := store.Store.Lease(context.Background(), "gateway", steal); err != nil {
			t.Fatal(err)
		}
		calls0 := store.calls.Load()
		start := time.Now()
		admitted := 0
		sent := 0
		for i := 0; time.Since(start) < tc.for_; i++ {
			if rs[i%3].Allow(key, tc.rpm, time.Now()).Allowed {
				admitted++
			}
			sent++
			if d := time.Until(start.Add(time.Duration(i+1) * every)); d > 0 {
				time.Sleep(d)
			}
		}
		elapsed := time.Since(start)
		want := int(elapsed / interval)
		calls := store.calls.Load() - calls0
		t.Logf("rpm %d: %d sent, %d admitted in %v (rate allows %d), %d store calls, degraded %v", tc.rpm, sent, admitted, elapsed.Round(time.Millisecond), want, calls, rs[0].Degraded())
		if admitted > want+2 || admitted < want-tc.under {
			t.Errorf("rpm %d: admitted %d, want %d - %d … %d + 2", tc.rpm, admitted, want, tc.under, want)
		}
		if tc.rpm == 6000 && calls*20 > int64(sent) {
			t.Errorf("rpm 6000: %d store calls for %d requests, want one per 20 or fewer", calls, sent)
		}
	}
}

type counting struct {
	ratelimit.Store
	calls atomic.Int64
}

func (c *counting) Lease(ctx context.Context, group string, l []ratelimit.Lease) error {
	c.calls.Add(1)
	return c.Store.Lease(ctx, group, l)
}

// TestOutageFallsBackToReplicaShare stops a private redis-server under
// three replicas: each admits its share of every limit (never unlimited,
// never nothing), and shared limits resume when the server is back,
// without a restart.
func TestOutageFallsBackToReplicaShare(t *testing.T) {
	t.Parallel()
	srv := redistest.Start(t)
	store := redisstore.New(open(t, srv.URL()), "outage")
	rs := replicas(t, store, 3, ratelimit.SharedOptions{Group: "gateway", Heartbeat: 50 * time.Millisecond, StoreTimeout: 100 * time.Millisecond})
	ctx := context.Background()
	rule := ratelimit.Rule{Name: "m", Limit: 30, Window: time.Hour}
	if r, _ := rs[0].AllowRule(ctx, rule, "u", time.Now()); !r.Allowed {
		t.Fatal("store up: refused")
	}

	srv.Stop()
	waitFor(t, 5*time.Second, func() bool { return rs[0].Degraded() && rs[1].Degraded() && rs[2].Degraded() })
	now := time.Now()
	for i, s := range rs {
		n := 0
		for range 50 {
			if r, err := s.AllowRule(ctx, rule, "u", now); err != nil {
				t.Fatal(err)
			} else if r.Allowed {
				n++
			}
		}
		// Replica 0 had one admitted by the store before: recorded in its
		// share, so the outage does not hand it a fresh one.
		if want := 10 - map[int]int{0: 1}[i]; n != want {
			t.Errorf("replica %d admitted %d of 50 during the outage, want its share of 30 ÷ 3 = 10 less what it used: %d", i, n, want)
		}
		m := 0
		for range 100 {
			if s.Allow("key", 60, now).Allowed {
				m++
			}
		}
		if m != 20 {
			t.Errorf("replica %d admitted %d requests of a 60 RPM key during the outage, want 20", i, m)
		}
		if !s.Allow("unlimited", 0, now).Allowed {
			t.Error("a key without a limit refused during the outage")
		}
	}
	// A limit smaller than the replica count still admits one per replica.
	if r, _ := rs[0].AllowRule(ctx, ratelimit.Rule{Name: "tiny", Limit: 2, Window: time.Hour}, "u", now); !r.Allowed {
		t.Error("a limit below the replica count refuses everything")
	}

	srv.Restart()
	waitFor(t, 5*time.Second, func() bool { return !rs[0].Degraded() && !rs[1].Degraded() && !rs[2].Degraded() })
	// The restarted store is empty: shared limits start afresh, exactly.
	n := 0
	for i := range 45 {
		if r, _ := rs[i%3].AllowRule(ctx, rule, "u", time.Now()); r.Allowed {
			n++
		}
	}
	if n != 30 {
		t.Errorf("after recovery %d of 45 admitted, want the shared 30", n)
	}
}

// TestSharedAllowDoesNotAllocate guards the proxy's allocation budget: a
// known key is admitted or refused from the replica's budget without
// allocating (and without I/O).
func TestSharedAllowAllocs(t *testing.T) {
	rs := replicas(t, sharedStore(t), 1, ratelimit.SharedOptions{Group: "gateway"})
	s := rs[0]
	key := "0190a1b2-c3d4-7e5f-8a9b-0c1d2e3f4a5b"
	now := time.Now()
	_ = s.Allow(key, 1_000_000, now)
	waitFor(t, 2*time.Second, func() bool { return s.Allow(key, 1_000_000, time.Now()).Allowed })
	if n := testing.AllocsPerRun(1000, func() {
		now = now.Add(time.Microsecond)
		_ = s.Allow(key, 1_000_000, now)
	}); n != 0 {
		t.Errorf("Shared.Allow allocates %.1f times per call", n)
	}
}

// BenchmarkSharedAllow: the proxy's per-key check on leased budgets (a
// 6 000 000 RPM key: the loop refills in the background), against the
// in-memory limiter's; reports store calls per request.
func BenchmarkSharedAllow(b *testing.B) {
	c, err := redisstore.Open(redistest.URL(b))
	if err != nil {
		b.Fatal(err)
	}
	defer c.Close()
	store := &counting{Store: redisstore.New(c, redistest.Prefix(b))}
	s := ratelimit.NewShared(store, ratelimit.SharedOptions{Group: "gateway"})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); s.Run(ctx) }()
	defer func() { cancel(); <-done }()
	key := "0190a1b2-c3d4-7e5f-8a9b-0c1d2e3f4a5b"
	s.Allow(key, 6_000_000, time.Now())
	time.Sleep(20 * time.Millisecond)
	calls0 := store.calls.Load()
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		s.Allow(key, 6_000_000, time.Now())
	}
	b.ReportMetric(float64(store.calls.Load()-calls0)/float64(b.N), "storecalls/op")
}

func BenchmarkLocalAllow(b *testing.B) {
	l := ratelimit.New()
	key := "0190a1b2-c3d4-7e5f-8a9b-0c1d2e3f4a5b"
	b.ReportAllocs()
	for b.Loop() {
		l.Allow(key, 6_000_000, time.Now())
	}
}

// TestRefundAcrossReplicas: a request AllowRule admitted and Refund gave
// back (a successful login's charge) leaves room for another on any
// replica: the store's count goes down, not only one replica's.
func TestRefundAcrossReplicas(t *testing.T) {
	t.Parallel()
	rs := replicas(t, sharedStore(t), 2, ratelimit.SharedOptions{Group: "platform-backend", Heartbeat: 100 * time.Millisecond})
	rule := ratelimit.Rule{Name: "login_per_ip", Limit: 3, Window: 15 * time.Minute}
	ctx, now := context.Background(), time.Now()
	for i := range 3 {
		if r, _ := rs[i%2].AllowRule(ctx, rule, "10.0.0.1", now); !r.Allowed {
			t.Fatalf("attempt %d refused", i)
		}
	}
	if r, _ := rs[1].AllowRule(ctx, rule, "10.0.0.1", now); r.Allowed {
		t.Fatal("a fourth attempt was admitted")
	}
	if err := rs[0].Refund(ctx, rule, "10.0.0.1", now); err != nil {
		t.Fatal(err)
	}
	if r, _ := rs[1].AllowRule(ctx, rule, "10.0.0.1", now); !r.Allowed {
		t.Fatal("the refunded slot is not usable on the other replica")
	}
	if r, _ := rs[0].AllowRule(ctx, rule, "10.0.0.1", now); r.Allowed {
		t.Fatal("a refund gave back more than one slot")
	}
}
