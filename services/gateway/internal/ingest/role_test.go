package ingest

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"trueportai/services/gateway/internal/platform"
)

type fakeTenants struct {
	known      map[string]int64
	prefetched []string
}

func (f *fakeTenants) Get(id string) (*platform.Tenant, bool) {
	days, ok := f.known[id]
	if !ok {
		return nil, false
	}
	return &platform.Tenant{RetentionDays: days}, true
}

func (f *fakeTenants) Prefetch(id string) { f.prefetched = append(f.prefetched, id) }

func TestRetentionFromCachedTenants(t *testing.T) {
	f := &fakeTenants{known: map[string]int64{"a": 30, "b": 0}}
	policy := RetentionFrom(f)
	if days, ok := policy("a"); !ok || days != 30 {
		t.Errorf("known tenant: %d, %v", days, ok)
	}
	if days, ok := policy("b"); !ok || days != 0 {
		t.Errorf("tenant without retention: %d, %v", days, ok)
	}
	if _, ok := policy("c"); ok {
		t.Error("an uncached tenant's retention was guessed")
	}
	if len(f.prefetched) != 1 || f.prefetched[0] != "c" {
		t.Errorf("prefetched %v, want [c]", f.prefetched)
	}
}

func TestRetentionRunsAtStartAndEveryInterval(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var cycles atomic.Int32
		cycle := func(context.Context) (int64, error) {
			if cycles.Add(1) == 2 {
				return 0, errors.New("lock timeout") // logged; the next tick tries again
			}
			return 3, nil
		}
		ctx, cancel := context.WithCancel(context.Background())
		defer cancel()
		done := make(chan struct{})
		go func() {
			defer close(done)
			runRetention(ctx, cycle, time.Hour, slog.New(slog.NewTextHandler(io.Discard, nil)))
		}()
		synctest.Wait()
		if n := cycles.Load(); n != 1 {
			t.Fatalf("%d cycles at start, want 1", n)
		}
		time.Sleep(2*time.Hour + time.Minute)
		synctest.Wait()
		if n := cycles.Load(); n != 3 {
			t.Fatalf("%d cycles after two intervals, want 3", n)
		}
		cancel()
		<-done
	})
}

func TestRoleWithNothingEnabledReturns(t *testing.T) {
	r := New(Config{}, nil, nil, nil, slog.New(slog.NewTextHandler(io.Discard, nil)))
	r.Run(context.Background()) // no pool opened, nothing started
}
