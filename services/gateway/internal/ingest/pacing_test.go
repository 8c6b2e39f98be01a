package ingest

import (
	"testing"
	"time"
)

// TestPause: a loop pausing at duty 0.5 rests as long as its batch took,
// not at all once the backlog reaches maxLag events, and never at duty 1.
func TestPause(t *testing.T) {
	in := &Ingester{}
	in.SetPacing(0.5, 1000)
	if got := in.pause(40*time.Millisecond, 200, 2, 5); got != 40*time.Millisecond {
		t.Errorf("behind by 500 events: pause %v, want 40ms", got)
	}
	if got := in.pause(40*time.Millisecond, 200, 2, 10); got != 0 {
		t.Errorf("behind by 1000 events (the bound): pause %v, want none", got)
	}
	if got := in.pause(time.Minute, 1, 1, 0); got != 2*time.Second {
		t.Errorf("a long batch: pause %v, want the 2 s cap", got)
	}
	in.SetPacing(0.25, 1000)
	if got := in.pause(10*time.Millisecond, 1, 1, 0); got != 30*time.Millisecond {
		t.Errorf("duty 0.25: pause %v, want 30ms", got)
	}
	for _, d := range []float64{1, 0, 2} {
		in.SetPacing(d, 1000)
		if got := in.pause(time.Second, 1, 1, 0); got != 0 {
			t.Errorf("duty %v: pause %v, want none", d, got)
		}
	}
}

// TestDueTouches: a key's last_used_at is written at its first use and then
// once a minute at most, whatever the number of batches in between.
func TestDueTouches(t *testing.T) {
	in := &Ingester{}
	t0 := time.Date(2026, 12, 6, 10, 0, 0, 0, time.UTC)
	if got := in.dueTouches(map[string]time.Time{"a": t0, "b": t0}); len(got) != 2 {
		t.Fatalf("first batch: %v, want both keys", got)
	}
	if got := in.dueTouches(map[string]time.Time{"a": t0.Add(30 * time.Second), "c": t0}); len(got) != 1 || got["c"] != t0 {
		t.Fatalf("30 s later: %v, want the new key only", got)
	}
	if got := in.dueTouches(map[string]time.Time{"a": t0.Add(time.Minute), "b": t0.Add(59 * time.Second)}); len(got) != 1 || got["a"] != t0.Add(time.Minute) {
		t.Fatalf("a minute later: %v, want a only", got)
	}
}
