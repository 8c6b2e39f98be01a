package ratelimit

import (
	"testing"
	"time"
)

func TestAllowBurstThenRefill(t *testing.T) {
	l := New()
	now := time.Unix(1_700_000_000, 0)
	for i := 0; i < 60; i++ {
		r := l.Allow("k", 60, now)
		if !r.Allowed {
			t.Fatalf("request %d refused within the burst", i)
		}
		if r.Remaining != 59-i {
			t.Fatalf("request %d: remaining = %d, want %d", i, r.Remaining, 59-i)
		}
	}
	r := l.Allow("k", 60, now)
	if r.Allowed || r.RetryAfter != time.Second {
		t.Fatalf("61st request: %+v, want refused with RetryAfter 1s", r)
	}
	if r := l.Allow("other", 60, now); !r.Allowed {
		t.Fatal("limits leak across keys")
	}
	if r := l.Allow("k", 60, now.Add(time.Second)); !r.Allowed {
		t.Fatal("one interval later a request must pass")
	}
	if r := l.Allow("k", 60, now.Add(time.Second)); r.Allowed {
		t.Fatal("only one request per interval refills")
	}
	l.Sweep(now.Add(2 * time.Minute))
	if n := len(l.shards[0].tat) + len(l.shards[1].tat); n != 0 {
		for i := range l.shards {
			if len(l.shards[i].tat) != 0 {
				t.Fatal("sweep kept an expired key")
			}
		}
	}
}
