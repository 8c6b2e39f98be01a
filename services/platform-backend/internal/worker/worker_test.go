package worker

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"sync"
	"testing"
	"time"
)

func discard() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }

func TestSameKeyRunsInOrder(t *testing.T) {
	t.Parallel()
	p := New(discard(), Options{Lanes: 4, Queue: 200})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { p.Run(ctx); close(done) }()

	var mu sync.Mutex
	got := map[string][]int{}
	var wg sync.WaitGroup
	for i := range 100 {
		for _, k := range []string{"a@example.com", "b@example.com", "c@example.com"} {
			wg.Add(1)
			if err := p.Submit(context.Background(), k, func(context.Context) {
				defer wg.Done()
				mu.Lock()
				got[k] = append(got[k], i)
				mu.Unlock()
			}); err != nil {
				t.Fatal(err)
			}
		}
	}
	wg.Wait()
	for k, seq := range got {
		for i, v := range seq {
			if v != i {
				t.Fatalf("key %s ran out of order: %v", k, seq)
			}
		}
	}
	cancel()
	<-done
	if err := p.Submit(context.Background(), "a", func(context.Context) {}); !errors.Is(err, ErrStopped) {
		t.Errorf("Submit after stop = %v, want ErrStopped", err)
	}
}

func TestFullQueue(t *testing.T) {
	t.Parallel()
	p := New(discard(), Options{Lanes: 1, Queue: 1, SubmitWait: 20 * time.Millisecond})
	// Not running: the lane holds one job, the next waits and gives up.
	if err := p.Submit(context.Background(), "k", func(context.Context) {}); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	if err := p.Submit(context.Background(), "k", func(context.Context) {}); !errors.Is(err, ErrFull) {
		t.Fatalf("Submit on a full lane = %v, want ErrFull", err)
	}
	if time.Since(start) > time.Second {
		t.Errorf("Submit waited %v", time.Since(start))
	}
}

func TestShutdownDrainsThenDrops(t *testing.T) {
	t.Parallel()
	p := New(discard(), Options{Lanes: 1, Queue: 10, Drain: 100 * time.Millisecond})
	ctx, cancel := context.WithCancel(context.Background())
	release := make(chan struct{})
	var mu sync.Mutex
	ran := 0
	count := func(context.Context) { mu.Lock(); ran++; mu.Unlock() }
	_ = p.Submit(context.Background(), "k", func(context.Context) { <-release })
	for range 3 {
		_ = p.Submit(context.Background(), "k", count)
	}
	done := make(chan struct{})
	go func() { p.Run(ctx); close(done) }()
	cancel()
	close(release) // the queued jobs run during the drain time
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		t.Fatal("Run did not return")
	}
	if ran != 3 {
		t.Errorf("%d queued jobs ran during the drain, want 3", ran)
	}

	// A job that outlives the drain time sees its context end, and the
	// jobs behind it are dropped.
	p2 := New(discard(), Options{Lanes: 1, Queue: 10, Drain: 50 * time.Millisecond})
	ctx2, cancel2 := context.WithCancel(context.Background())
	ended := make(chan struct{})
	_ = p2.Submit(context.Background(), "k", func(ctx context.Context) { <-ctx.Done(); close(ended) })
	_ = p2.Submit(context.Background(), "k", func(context.Context) { t.Error("job ran after the drain time") })
	done2 := make(chan struct{})
	go func() { p2.Run(ctx2); close(done2) }()
	cancel2()
	select {
	case <-done2:
	case <-time.After(5 * time.Second):
		t.Fatal("Run did not return after the drain time")
	}
	select {
	case <-ended:
	default:
		t.Error("the running job's context did not end")
	}
}

func TestPanickingJobIsContained(t *testing.T) {
	t.Parallel()
	p := New(discard(), Options{Lanes: 1})
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go p.Run(ctx)
	ok := make(chan struct{})
	_ = p.Submit(context.Background(), "k", func(context.Context) { panic("boom") })
	_ = p.Submit(context.Background(), "k", func(context.Context) { close(ok) })
	select {
	case <-ok:
	case <-time.After(5 * time.Second):
		t.Fatal("lane died with the panicking job")
	}
}
