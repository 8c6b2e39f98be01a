// Package cachesync is the safety net behind change events: every
// CACHE_TTL it reloads the whole API key cache and the whole policy
// snapshot from Postgres, so a change event lost in transit is repaired
// within one period, and it sweeps idle rate-limit state. Change events
// themselves are applied by package changefeed.
package cachesync

import (
	"context"
	"fmt"
	"log/slog"
	"time"

	"trueportai/services/gateway/internal/keys"
	"trueportai/services/gateway/internal/policystore"
)

// KeySource lists every API key (keys.Store).
type KeySource interface {
	All(ctx context.Context) ([]*keys.Key, error)
}

// KeyCache holds the keys the proxy looks up (keys.Cache).
type KeyCache interface {
	Replace(all []*keys.Key)
}

// PolicySource lists every policy rule (policystore.Store).
type PolicySource interface {
	All(ctx context.Context) ([]*policystore.Row, error)
}

// PolicySnapshot holds the compiled policies (policystore.Snapshot).
type PolicySnapshot interface {
	ReplaceAll(rows []*policystore.Row)
}

// Sweeper drops idle rate-limit state (ratelimit.Limiter).
type Sweeper interface {
	Sweep(now time.Time)
}

// Reloader reloads the caches.
type Reloader struct {
	keySrc    KeySource
	keys      KeyCache
	policySrc PolicySource
	policies  PolicySnapshot
	limiter   Sweeper
	log       *slog.Logger
}

// New returns a Reloader filling keys from keySrc and policies from
// policySrc, sweeping limiter at each reload.
func New(keySrc KeySource, keys KeyCache, policySrc PolicySource, policies PolicySnapshot, limiter Sweeper, log *slog.Logger) *Reloader {
	return &Reloader{keySrc: keySrc, keys: keys, policySrc: policySrc, policies: policies, limiter: limiter, log: log}
}

// Load fills both caches once (at start, before serving); it returns the
// number of keys loaded.
func (r *Reloader) Load(ctx context.Context) (int, error) {
	all, err := r.keySrc.All(ctx)
	if err != nil {
		return 0, fmt.Errorf("load keys: %w", err)
	}
	r.keys.Replace(all)
	rows, err := r.policySrc.All(ctx)
	if err != nil {
		return 0, fmt.Errorf("load policies: %w", err)
	}
	r.policies.ReplaceAll(rows)
	return len(all), nil
}

// Reload is one period's work: the key cache, the rate-limit sweep, then
// the policy snapshot. A failed key load skips the rest until the next
// period (the caches in force stay); a failed policy load keeps the
// snapshot in force.
func (r *Reloader) Reload(ctx context.Context, now time.Time) {
	all, err := r.keySrc.All(ctx)
	if err != nil {
		r.log.Warn("key reload failed", "err", err)
		return
	}
	r.keys.Replace(all)
	r.limiter.Sweep(now)
	if rows, err := r.policySrc.All(ctx); err != nil {
		r.log.Warn("policy reload failed", "err", err)
	} else {
		r.policies.ReplaceAll(rows)
	}
}

// Run reloads every ttl until ctx ends.
func (r *Reloader) Run(ctx context.Context, ttl time.Duration) {
	tick := time.NewTicker(ttl)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case now := <-tick.C:
			r.Reload(ctx, now)
		}
	}
}
