package cachesync

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"trueportai/services/gateway/internal/keys"
	"trueportai/services/gateway/internal/policystore"
)

// fakes records what the reloader did; its sources fail while told to.
type fakes struct {
	mu                    sync.Mutex
	keyErr, policyErr     error
	keyLoads, policyLoads int
	keysHeld              []*keys.Key
	rowsHeld              []*policystore.Row
	sweeps                []time.Time
	nextKeys              []*keys.Key
	nextRows              []*policystore.Row
}

type keySrc struct{ *fakes }

func (f keySrc) All(context.Context) ([]*keys.Key, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.keyLoads++
	return f.nextKeys, f.keyErr
}

type keyCache struct{ *fakes }

func (f keyCache) Replace(all []*keys.Key) { f.mu.Lock(); f.keysHeld = all; f.mu.Unlock() }

type policySrc struct{ *fakes }

func (f policySrc) All(context.Context) ([]*policystore.Row, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.policyLoads++
	return f.nextRows, f.policyErr
}

type snapshot struct{ *fakes }

func (f snapshot) ReplaceAll(rows []*policystore.Row) { f.mu.Lock(); f.rowsHeld = rows; f.mu.Unlock() }

type sweeper struct{ *fakes }

func (f sweeper) Sweep(now time.Time) { f.mu.Lock(); f.sweeps = append(f.sweeps, now); f.mu.Unlock() }

func newReloader(f *fakes) *Reloader {
	return New(keySrc{f}, keyCache{f}, policySrc{f}, snapshot{f}, sweeper{f}, slog.New(slog.NewTextHandler(io.Discard, nil)))
}

func TestLoadFillsBothOrFails(t *testing.T) {
	f := &fakes{nextKeys: []*keys.Key{{ID: "k1"}, {ID: "k2"}}, nextRows: []*policystore.Row{{TenantID: "t1"}}}
	r := newReloader(f)
	n, err := r.Load(context.Background())
	if err != nil || n != 2 || len(f.keysHeld) != 2 || len(f.rowsHeld) != 1 {
		t.Fatalf("Load = %d, %v; held %d keys, %d rules", n, err, len(f.keysHeld), len(f.rowsHeld))
	}
	f.policyErr = errors.New("db down")
	if _, err := r.Load(context.Background()); err == nil || err.Error() != "load policies: db down" {
		t.Fatalf("Load with policies failing = %v", err)
	}
	f.keyErr = errors.New("db down")
	if _, err := r.Load(context.Background()); err == nil || err.Error() != "load keys: db down" {
		t.Fatalf("Load with keys failing = %v", err)
	}
}

func TestReloadKeepsCachesOnFailure(t *testing.T) {
	f := &fakes{nextKeys: []*keys.Key{{ID: "k1"}}, nextRows: []*policystore.Row{{TenantID: "t1"}}}
	r := newReloader(f)
	now := time.Date(2026, 12, 1, 10, 0, 0, 0, time.UTC)
	r.Reload(context.Background(), now)
	if len(f.keysHeld) != 1 || len(f.rowsHeld) != 1 || len(f.sweeps) != 1 || !f.sweeps[0].Equal(now) {
		t.Fatalf("after a reload: %d keys, %d rules, sweeps %v", len(f.keysHeld), len(f.rowsHeld), f.sweeps)
	}
	// Policies failing: keys reload, the snapshot in force stays.
	f.nextKeys, f.nextRows, f.policyErr = []*keys.Key{{ID: "k1"}, {ID: "k2"}}, nil, errors.New("db down")
	r.Reload(context.Background(), now)
	if len(f.keysHeld) != 2 || len(f.rowsHeld) != 1 {
		t.Fatalf("policies failing: %d keys, %d rules; want 2 and the old 1", len(f.keysHeld), len(f.rowsHeld))
	}
	// Keys failing: nothing else happens this period.
	f.keyErr, f.policyErr = errors.New("db down"), nil
	policyLoads := f.policyLoads
	r.Reload(context.Background(), now)
	if len(f.keysHeld) != 2 || f.policyLoads != policyLoads || len(f.sweeps) != 2 {
		t.Fatalf("keys failing: %d keys, %d policy loads (was %d), %d sweeps", len(f.keysHeld), f.policyLoads, policyLoads, len(f.sweeps))
	}
}

func TestRunReloadsEveryTTL(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		f := &fakes{}
		r := newReloader(f)
		ctx, cancel := context.WithCancel(context.Background())
		defer cancel()
		done := make(chan struct{})
		go func() { defer close(done); r.Run(ctx, time.Minute) }()
		synctest.Wait()
		f.mu.Lock()
		early := f.keyLoads
		f.mu.Unlock()
		if early != 0 {
			t.Fatalf("%d reloads before the first period", early)
		}
		time.Sleep(3*time.Minute + time.Second)
		synctest.Wait()
		f.mu.Lock()
		loads := f.keyLoads
		f.mu.Unlock()
		if loads != 3 {
			t.Fatalf("%d reloads in 3 periods, want 3", loads)
		}
		cancel()
		<-done
	})
}
