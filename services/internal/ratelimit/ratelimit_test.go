package ratelimit

import (
	"context"
	"math/rand/v2"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

var t0 = time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)

func TestAllowBurstThenRefill(t *testing.T) {
	t.Parallel()
	l := New()
	now := t0
	for i := range 60 {
		r := l.Allow("k", 60, now)
		want := Result{Allowed: true, Limit: 60, Remaining: 59 - i, Reset: time.Duration(i+1) * time.Second}
		if r != want {
			t.Fatalf("request %d: %+v, want %+v", i, r, want)
		}
	}
	r := l.Allow("k", 60, now)
	if want := (Result{Limit: 60, Reset: time.Minute, RetryAfter: time.Second}); r != want {
		t.Fatalf("61st request: %+v, want %+v", r, want)
	}
	if r := l.Allow("other", 60, now); !r.Allowed {
		t.Fatal("limits leak across keys")
	}
	if r := l.Allow("k", 60, now.Add(time.Second)); !r.Allowed || r.Remaining != 0 {
		t.Fatalf("one interval later a request must pass: %+v", r)
	}
	if r := l.Allow("k", 60, now.Add(time.Second)); r.Allowed {
		t.Fatal("only one request per interval refills")
	}
	l.Sweep(now.Add(2 * time.Minute))
	if n := l.Len(); n != 0 {
		t.Fatalf("sweep kept %d expired keys", n)
	}
}

func TestAllowRule(t *testing.T) {
	t.Parallel()
	l := New()
	ctx := context.Background()
	rule := Rule{Name: "login", Limit: 3, Window: 15 * time.Minute} // one every 5 min
	now := t0
	for i := range 3 {
		r, err := l.AllowRule(ctx, rule, "a", now)
		if err != nil || !r.Allowed || r.Remaining != 2-i || r.Limit != 3 {
			t.Fatalf("request %d: %+v, %v", i+1, r, err)
		}
		now = now.Add(time.Minute)
	}
	// t=3m: the burst is spent; the next slot opens at 5m.
	if r, _ := l.AllowRule(ctx, rule, "a", now); r.Allowed || r.RetryAfter != 2*time.Minute || r.Reset != 12*time.Minute {
		t.Fatalf("4th request: %+v, want refused, RetryAfter 2m, Reset 12m", r)
	}
	// Other keys, other rules and Allow's per-minute keys are independent.
	if r, _ := l.AllowRule(ctx, rule, "b", now); !r.Allowed {
		t.Fatalf("other key refused: %+v", r)
	}
	if r, _ := l.AllowRule(ctx, Rule{Name: "otp", Limit: 1, Window: time.Minute}, "a", now); !r.Allowed {
		t.Fatalf("other rule refused: %+v", r)
	}
	if r := l.Allow("a", 1, now); !r.Allowed {
		t.Fatalf("Allow shares a rule's key: %+v", r)
	}
	// Refused requests are not recorded: exactly at 5m one passes.
	now = t0.Add(5*time.Minute - time.Nanosecond)
	if r, _ := l.AllowRule(ctx, rule, "a", now); r.Allowed || r.RetryAfter != time.Nanosecond {
		t.Fatalf("just before the slot: %+v", r)
	}
	now = now.Add(time.Nanosecond)
	if r, _ := l.AllowRule(ctx, rule, "a", now); !r.Allowed || r.Remaining != 0 {
		t.Fatalf("at the slot: %+v", r)
	}
	if r, _ := l.AllowRule(ctx, rule, "a", now); r.Allowed || r.RetryAfter != 5*time.Minute {
		t.Fatalf("after the slot: %+v, want RetryAfter 5m", r)
	}
	// After a full window the whole burst is back.
	now = now.Add(15 * time.Minute)
	for i := range 3 {
		if r, _ := l.AllowRule(ctx, rule, "a", now); !r.Allowed {
			t.Fatalf("burst after a quiet window, request %d refused", i+1)
		}
	}
}

// TestGCRABound checks the package doc's promise on irregular traffic: over
// any span d at most Limit + d·Limit/Window requests pass, and a steady
// stream under the rate always passes.
func TestGCRABound(t *testing.T) {
	t.Parallel()
	rule := Rule{Name: "mgmt", Limit: 5, Window: time.Minute}
	interval := rule.Window / time.Duration(rule.Limit)
	l := New()
	rng := rand.New(rand.NewPCG(1, 2))
	now := t0
	var admitted []time.Time
	for range 5000 {
		// Bursts of up to 8 simultaneous requests, gaps up to 30 s.
		for range rng.IntN(8) + 1 {
			if r, _ := l.AllowRule(context.Background(), rule, "u", now); r.Allowed {
				admitted = append(admitted, now)
			}
		}
		now = now.Add(time.Duration(rng.Int64N(int64(30 * time.Second))))
	}
	for i := range admitted {
		for j := i; j < len(admitted); j++ {
			d := admitted[j].Sub(admitted[i])
			if d > 3*rule.Window {
				break
			}
			if n, bound := j-i+1, rule.Limit+int(d/interval); n > bound {
				t.Fatalf("%d admitted within %v from %v, bound %d", n, d, admitted[i], bound)
			}
		}
	}

	steady := New()
	for i := range 600 { // one request per interval: never refused
		if r, _ := steady.AllowRule(context.Background(), rule, "u", t0.Add(time.Duration(i)*interval)); !r.Allowed {
			t.Fatalf("steady request %d refused: %+v", i, r)
		}
	}
}

func TestConcurrentAllowIsExact(t *testing.T) {
	t.Parallel()
	l := New()
	rule := Rule{Name: "race", Limit: 50, Window: time.Hour}
	now := t0
	var wg sync.WaitGroup
	var mu sync.Mutex
	allowed := 0
	for range 200 {
		wg.Go(func() {
			if r, _ := l.AllowRule(context.Background(), rule, "k", now); r.Allowed {
				mu.Lock()
				allowed++
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	if allowed != rule.Limit {
		t.Errorf("allowed %d of 200 concurrent requests, want exactly %d", allowed, rule.Limit)
	}
}

func TestUsedShardsSweepThemselves(t *testing.T) {
	t.Parallel()
	l := New()
	rule := Rule{Name: "otp", Limit: 5, Window: time.Minute}
	for i := range 100 {
		_, _ = l.AllowRule(context.Background(), rule, "user"+strconv.Itoa(i), t0)
	}
	if n := l.Len(); n != 100 {
		t.Fatalf("Len = %d, want 100", n)
	}
	// Two minutes on, every key's allowance is restored: using the shards
	// sweeps them without any Sweep call.
	later := t0.Add(2 * time.Minute)
	for i := range 1000 {
		_ = l.Allow("fresh"+strconv.Itoa(i), 1000, later)
	}
	if n := l.Len(); n != 1000 {
		t.Errorf("Len = %d, want the 1000 fresh keys only", n)
	}
}

func TestDisabledLimitsAdmitAll(t *testing.T) {
	t.Parallel()
	l := New()
	for range 10 {
		if r, _ := l.AllowRule(context.Background(), Rule{Name: "off"}, "k", t0); !r.Allowed {
			t.Fatal("a zero rule refused")
		}
		if r := l.Allow("k", 0, t0); !r.Allowed {
			t.Fatal("rpm 0 refused")
		}
	}
	if n := l.Len(); n != 0 {
		t.Errorf("disabled limits keep %d keys", n)
	}
}

func TestLongKeysAreHashed(t *testing.T) {
	t.Parallel()
	l := New()
	rule := Rule{Name: "otp", Limit: 1, Window: time.Minute}
	long := strings.Repeat("x", 1<<20) + "@example.com"
	if r, _ := l.AllowRule(context.Background(), rule, long, t0); !r.Allowed {
		t.Fatal("first request refused")
	}
	if r, _ := l.AllowRule(context.Background(), rule, long, t0); r.Allowed {
		t.Fatal("a long key is not limited")
	}
	if r, _ := l.AllowRule(context.Background(), rule, long+"y", t0); !r.Allowed {
		t.Fatal("distinct long keys collide")
	}
	for i := range l.shards {
		for k := range l.shards[i].rules[rule.Name] {
			if len(k) > maxKeyLen {
				t.Errorf("key of %d bytes kept", len(k))
			}
		}
	}
}

// TestAllowDoesNotAllocate guards the proxy's allocation budget.
func TestAllowDoesNotAllocate(t *testing.T) {
	l := New()
	now := t0
	_ = l.Allow("0190a1b2-c3d4-7e5f-8a9b-0c1d2e3f4a5b", 1_000_000, now)
	if n := testing.AllocsPerRun(1000, func() {
		now = now.Add(time.Millisecond)
		_ = l.Allow("0190a1b2-c3d4-7e5f-8a9b-0c1d2e3f4a5b", 1_000_000, now)
	}); n != 0 {
		t.Errorf("Allow allocates %.1f times per call", n)
	}
}

func BenchmarkAllow(b *testing.B) {
	l := New()
	now := time.Now()
	b.ReportAllocs()
	for b.Loop() {
		l.Allow("0190a1b2-c3d4-7e5f-8a9b-0c1d2e3f4a5b", 100_000_000, now)
	}
}

func BenchmarkAllowParallel(b *testing.B) {
	l := New()
	keys := make([]string, 1024)
	for i := range keys {
		keys[i] = "key-" + strconv.Itoa(i)
	}
	now := time.Now()
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		i := 0
		for pb.Next() {
			l.Allow(keys[i%len(keys)], 100_000_000, now)
			i++
		}
	})
}

func BenchmarkAllowRule(b *testing.B) {
	l := New()
	rule := Rule{Name: "management_per_user_tenant", Limit: 300, Window: time.Minute}
	ctx := context.Background()
	now := time.Now()
	b.ReportAllocs()
	for b.Loop() {
		_, _ = l.AllowRule(ctx, rule, "0190a1b2-c3d4-7e5f-8a9b-0c1d2e3f4a5b|0190a1b2-c3d4-7e5f-8a9b-0c1d2e3f4a5c", now)
	}
}

func TestRefund(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	l := New()
	rule := Rule{Name: "login_failures", Limit: 3, Window: 15 * time.Minute} // one every 5 min
	allow := func(now time.Time) bool {
		r, err := l.AllowRule(ctx, rule, "ip", now)
		if err != nil {
			t.Fatal(err)
		}
		return r.Allowed
	}
	refund := func(now time.Time) {
		if err := l.Refund(ctx, rule, "ip", now); err != nil {
			t.Fatal(err)
		}
	}
	// A refund of a key never charged gives no credit.
	refund(t0)
	refund(t0)
	for i := range 3 {
		if !allow(t0) {
			t.Fatalf("request %d refused", i+1)
		}
	}
	if allow(t0) {
		t.Fatal("refunds of nothing were credited")
	}
	// Each refund gives back exactly one request.
	refund(t0)
	if !allow(t0) {
		t.Fatal("refunded request not admitted")
	}
	if allow(t0) {
		t.Fatal("one refund admitted two requests")
	}
	// A refund never restores more than the full allowance.
	later := t0.Add(time.Hour)
	refund(later)
	refund(later)
	n := 0
	for allow(later) {
		n++
	}
	if n != rule.Limit {
		t.Errorf("after a quiet hour and two refunds %d requests passed, want %d", n, rule.Limit)
	}
	// Other rules' keys are untouched; a disabled rule is a no-op.
	if err := l.Refund(ctx, Rule{Name: "other", Limit: 1, Window: time.Minute}, "ip", later); err != nil {
		t.Fatal(err)
	}
	if err := l.Refund(ctx, Rule{Name: "off"}, "ip", later); err != nil {
		t.Fatal(err)
	}
	if allow(later) {
		t.Error("a refund under another rule credited this one")
	}
}

// TestChargeThenRefundUnderConcurrency: attempts charge before they run and
// the successful ones refund; however they interleave, no more failures than
// the limit are ever admitted, and every success's charge comes back.
func TestChargeThenRefundUnderConcurrency(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	l := New()
	rule := Rule{Name: "failures", Limit: 20, Window: time.Hour}
	var wg sync.WaitGroup
	var mu sync.Mutex
	failed, succeeded := 0, 0
	for i := range 200 {
		wg.Go(func() {
			r, _ := l.AllowRule(ctx, rule, "k", t0)
			if !r.Allowed {
				return
			}
			mu.Lock()
			defer mu.Unlock()
			if i%4 == 0 { // a success gives its charge back
				succeeded++
				_ = l.Refund(ctx, rule, "k", t0)
				return
			}
			failed++
		})
	}
	wg.Wait()
	if failed > rule.Limit {
		t.Fatalf("%d failures admitted, limit %d", failed, rule.Limit)
	}
	// What is left is exactly the limit minus the failures.
	left := 0
	for {
		if r, _ := l.AllowRule(ctx, rule, "k", t0); !r.Allowed {
			break
		}
		left++
	}
	if left != rule.Limit-failed {
		t.Errorf("%d failures and %d successes, then %d more admitted; want %d", failed, succeeded, left, rule.Limit-failed)
	}
}
