package ratelimit

import (
	"context"
	"strings"
	"sync"
	"testing"
	"time"
)

type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *clock) advance(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

func TestSlidingWindow(t *testing.T) {
	t.Parallel()
	clk := &clock{t: time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)}
	m := NewMemory(clk.now)
	ctx := context.Background()
	rule := Rule{Name: "login", Limit: 3, Window: 15 * time.Minute}

	for i := range 3 {
		d, _ := m.Allow(ctx, rule, "a")
		if !d.Allowed || d.Remaining != 2-i {
			t.Fatalf("request %d: %+v", i+1, d)
		}
		clk.advance(time.Minute)
	}
	// t=3m: the window holds hits at 0m, 1m, 2m; the 0m one leaves at 15m.
	d, _ := m.Allow(ctx, rule, "a")
	if d.Allowed || d.RetryAfter != 12*time.Minute {
		t.Fatalf("4th request: %+v, want denied with RetryAfter 12m", d)
	}
	// Other keys and other rules are independent.
	if d, _ := m.Allow(ctx, rule, "b"); !d.Allowed {
		t.Fatalf("other key denied: %+v", d)
	}
	if d, _ := m.Allow(ctx, Rule{Name: "otp", Limit: 1, Window: time.Minute}, "a"); !d.Allowed {
		t.Fatalf("other rule denied: %+v", d)
	}
	// Denied requests are not recorded: at exactly 15m one slot frees.
	clk.advance(12*time.Minute - time.Nanosecond)
	if d, _ := m.Allow(ctx, rule, "a"); d.Allowed || d.RetryAfter != time.Nanosecond {
		t.Fatalf("just before the oldest leaves: %+v", d)
	}
	clk.advance(time.Nanosecond)
	if d, _ := m.Allow(ctx, rule, "a"); !d.Allowed || d.Remaining != 0 {
		t.Fatalf("after the oldest left: %+v", d)
	}
	if d, _ := m.Allow(ctx, rule, "a"); d.Allowed || d.RetryAfter != time.Minute {
		t.Fatalf("window full again: %+v, want RetryAfter 1m (hit at 1m leaves at 16m)", d)
	}
}

func TestNeverMoreThanLimitInAnyWindow(t *testing.T) {
	t.Parallel()
	clk := &clock{t: time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)}
	m := NewMemory(clk.now)
	rule := Rule{Name: "mgmt", Limit: 5, Window: time.Minute}
	var admitted []time.Time
	for range 600 { // one request every 7 s for 70 minutes
		if d, _ := m.Allow(context.Background(), rule, "u"); d.Allowed {
			admitted = append(admitted, clk.now())
		}
		clk.advance(7 * time.Second)
	}
	for i := range admitted {
		n := 0
		for _, a := range admitted[i:] {
			if a.Sub(admitted[i]) < time.Minute {
				n++
			}
		}
		if n > rule.Limit {
			t.Fatalf("%d requests admitted in the minute from %v", n, admitted[i])
		}
	}
	if len(admitted) < 300 {
		t.Errorf("only %d admitted; a steady 1/7s stream is under 5/min and should mostly pass", len(admitted))
	}
}

func TestConcurrentAllowIsExact(t *testing.T) {
	t.Parallel()
	m := NewMemory(time.Now)
	rule := Rule{Name: "race", Limit: 50, Window: time.Hour}
	var wg sync.WaitGroup
	var mu sync.Mutex
	allowed := 0
	for range 200 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if d, _ := m.Allow(context.Background(), rule, "k"); d.Allowed {
				mu.Lock()
				allowed++
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	if allowed != rule.Limit {
		t.Errorf("allowed %d of 200 concurrent requests, want exactly %d", allowed, rule.Limit)
	}
}

func TestSweepForgetsIdleKeys(t *testing.T) {
	t.Parallel()
	clk := &clock{t: time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)}
	m := NewMemory(clk.now)
	rule := Rule{Name: "otp", Limit: 5, Window: time.Minute}
	for i := range 100 {
		_, _ = m.Allow(context.Background(), rule, string(rune('a'+i%26))+string(rune('a'+i/26)))
	}
	if m.Len() != 100 {
		t.Fatalf("Len = %d, want 100", m.Len())
	}
	clk.advance(2 * time.Minute)
	// Touch every shard so each sweeps.
	for i := range 1000 {
		_, _ = m.Allow(context.Background(), Rule{Name: "other", Limit: 1, Window: time.Second}, string(rune(i)))
	}
	clk.advance(2 * time.Minute)
	for i := range 1000 {
		_, _ = m.Allow(context.Background(), Rule{Name: "other", Limit: 1, Window: time.Second}, string(rune(i)))
	}
	if n := m.Len(); n > 1000 {
		t.Errorf("Len = %d after the windows passed; idle keys were not swept", n)
	}
}

func TestZeroLimitAdmitsAll(t *testing.T) {
	t.Parallel()
	m := NewMemory(time.Now)
	for range 10 {
		if d, _ := m.Allow(context.Background(), Rule{Name: "off"}, "k"); !d.Allowed {
			t.Fatal("a zero rule denied")
		}
	}
}

func TestLongKeysAreHashed(t *testing.T) {
	t.Parallel()
	m := NewMemory(time.Now)
	rule := Rule{Name: "otp", Limit: 1, Window: time.Minute}
	long := strings.Repeat("x", 1<<20) + "@example.com"
	if d, _ := m.Allow(context.Background(), rule, long); !d.Allowed {
		t.Fatal("first request denied")
	}
	if d, _ := m.Allow(context.Background(), rule, long); d.Allowed {
		t.Fatal("a long key is not limited")
	}
	if d, _ := m.Allow(context.Background(), rule, long+"y"); !d.Allowed {
		t.Fatal("distinct long keys collide")
	}
	for i := range m.shards {
		for k := range m.shards[i].entries {
			if len(k) > 300 {
				t.Errorf("key of %d bytes kept", len(k))
			}
		}
	}
}
