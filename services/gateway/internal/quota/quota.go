// Package quota enforces a tenant's monthly request cap (calendar month, UTC).
//
// Alone (no shared store) it counts in memory: counters seeded from the
// usage table at start, resynced periodically (so other replicas' traffic is
// counted), incremented locally on every admitted request; a replica may
// overshoot by what the others served since the last resync.
//
// With a shared store (Shared: Redis) the month's count lives there, one
// counter per tenant, seeded from the usage table and raised to it at each
// resync (a store that lost its data heals). Replicas lease blocks of the
// remaining quota in the background (limit/(replicas·1000), 1…256 requests)
// and admit from them without I/O. While a block is being refilled a
// replica admits on credit (charged by the lease) up to its share of what
// the store's last answer left (left ÷ replicas), so the month's count
// overshoots only when replicas' views are a round trip apart near the end
// (a few requests); it refuses only when the store's answer says the quota
// is spent. When the store is unreachable a replica admits
// at most its share of what the usage table says is left:
// base + replicas × local < limit.
package quota

import (
	"context"
	"log/slog"
	"maps"
	"sync"
	"time"

	"trueportai/services/internal/ratelimit"
)

// Counter counts requests per tenant for the current month.
type Counter struct {
	mu     sync.Mutex
	month  time.Time // first instant of the counted month (UTC)
	base   map[string]int64
	local  map[string]int64
	source Source

	shared *shared // nil: in memory only
}

// Source reads per-tenant request counts since a time (the usage table).
type Source interface {
	CountSince(ctx context.Context, since time.Time) (map[string]int64, error)
}

// Store keeps counters shared by replicas (redisstore.Store).
type Store interface {
	LeaseCounters(ctx context.Context, group string, leases []ratelimit.CounterLease) error
}

// SharedOptions configure the shared mode.
type SharedOptions struct {
	// Group separates this service's counters in the store.
	Group string
	// Replicas is the replica count (the rate limiter's heartbeats).
	Replicas func() int
	// Timeout bounds one store round trip (default 250 ms).
	Timeout time.Duration
	Log     *slog.Logger
}

type shared struct {
	store   Store
	opts    SharedOptions
	down    bool
	tenants map[string]*tenantLease
	pending []string
	wake    chan struct{}
}

// tenantLease is a tenant's block of the month's quota on this replica.
type tenantLease struct {
	limit     int64
	budget    int64 // requests leased and not yet used
	credit    int64 // requests admitted before the store charged them
	used      int64 // the store's count at the last lease
	exhausted bool  // the store had nothing left under limit
	queued    bool
}

// maxCredit bounds the requests a replica admits on credit while a lease
// is late (a slow store).
const maxCredit = 4096

// New returns a counter; call Sync before serving.
func New(src Source) *Counter {
	return &Counter{base: map[string]int64{}, local: map[string]int64{}, source: src}
}

// Shared makes the counter keep the month's counts in store; call before
// serving, and Run to lease.
func (c *Counter) Shared(store Store, opts SharedOptions) {
	if opts.Timeout <= 0 {
		opts.Timeout = 250 * time.Millisecond
	}
	if opts.Replicas == nil {
		opts.Replicas = func() int { return 1 }
	}
	if opts.Log == nil {
		opts.Log = slog.New(slog.DiscardHandler)
	}
	c.mu.Lock()
	c.shared = &shared{store: store, opts: opts, tenants: map[string]*tenantLease{}, wake: make(chan struct{}, 1)}
	c.mu.Unlock()
}

func monthStart(t time.Time) time.Time {
	t = t.UTC()
	return time.Date(t.Year(), t.Month(), 1, 0, 0, 0, 0, time.UTC)
}

// Sync replaces the base counts with the database's and clears the local
// increments those counts now include. Within a month it never lowers a
// tenant's count: the usage table lags the requests by the ingestion's
// delay (up to INGESTER_MAX_DELAY and a catch-up while traffic is heavy),
// and a count taken from it alone would forget the requests admitted in
// that time, which a tenant bursting at its cap would then get again.
// What this replica admitted (base + local) is never more than the
// month's true count, so keeping the larger of the two overcounts nothing.
func (c *Counter) Sync(ctx context.Context, now time.Time) error {
	m := monthStart(now)
	counts, err := c.source.CountSince(ctx, m)
	if err != nil {
		return err
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	counts = maps.Clone(counts) // the base is ours to change; the source's map is not
	if !m.Equal(c.month) {
		if c.shared != nil {
			clear(c.shared.tenants)
		}
	} else {
		for tenant, n := range c.local {
			counts[tenant] = max(counts[tenant], c.base[tenant]+n)
		}
	}
	c.month, c.base, c.local = m, counts, map[string]int64{}
	return nil
}

// Degraded reports whether the shared store is unreachable.
func (c *Counter) Degraded() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.shared != nil && c.shared.down
}

// Allow admits one request of tenant under a monthly limit (<= 0: no limit)
// and counts it; used is the count including this request.
func (c *Counter) Allow(tenant string, limit int64, now time.Time) (ok bool, used int64) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if m := monthStart(now); !m.Equal(c.month) {
		c.month, c.base, c.local = m, map[string]int64{}, map[string]int64{}
		if c.shared != nil {
			clear(c.shared.tenants)
		}
	}
	sh := c.shared
	if sh == nil || limit <= 0 {
		used = c.base[tenant] + c.local[tenant]
		if limit > 0 && used >= limit {
			return false, used
		}
		c.local[tenant]++
		return true, used + 1
	}
	if sh.down {
		// This replica's share of what the usage table says is left.
		r := int64(max(sh.opts.Replicas(), 1))
		base, n := c.base[tenant], c.local[tenant]
		if base+r*n >= limit {
			return false, base + r*n
		}
		c.local[tenant]++
		return true, base + r*(n+1)
	}
	c.local[tenant]++ // the usage table will count it: kept for the fallback
	t := sh.tenants[tenant]
	if t == nil {
		t = &tenantLease{limit: limit, used: c.base[tenant]}
		sh.tenants[tenant] = t
	}
	if t.limit != limit {
		t.limit, t.exhausted = limit, false
	}
	block := c.block(limit)
	switch {
	case t.budget > 0:
		t.budget--
	case !t.exhausted && t.credit < min(max((limit-t.used)/int64(max(sh.opts.Replicas(), 1)), 1), maxCredit):
		// The store's last answer leaves room: this replica's share of it
		// is admitted now, charged by the lease the loop is taking.
		t.credit++
	default:
		c.local[tenant]--
		c.enqueue(tenant, t)
		return false, max(t.used, limit)
	}
	if t.budget <= block/4 {
		c.enqueue(tenant, t)
	}
	return true, t.used + t.credit + 1
}

// block is the lease size for a monthly limit.
func (c *Counter) block(limit int64) int64 {
	r := int64(max(c.shared.opts.Replicas(), 1))
	return min(max(limit/(r*1000), 1), 256)
}

func (c *Counter) enqueue(tenant string, t *tenantLease) {
	if t.queued {
		return
	}
	t.queued = true
	c.shared.pending = append(c.shared.pending, tenant)
	select {
	case c.shared.wake <- struct{}{}:
	default:
	}
}

// Run resyncs every interval until ctx ends; in shared mode it also leases
// blocks for the tenants that need them and probes a store that failed.
func (c *Counter) Run(ctx context.Context, interval time.Duration, onErr func(error)) {
	c.mu.Lock()
	sh := c.shared
	c.mu.Unlock()
	var wg sync.WaitGroup
	defer wg.Wait()
	if sh != nil {
		wg.Go(func() { c.runLeases(ctx, sh) })
	}
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case now := <-t.C:
			if err := c.Sync(ctx, now); err != nil && onErr != nil {
				onErr(err)
			}
		}
	}
}

func (c *Counter) runLeases(ctx context.Context, sh *shared) {
	probe := time.NewTicker(time.Second)
	defer probe.Stop()
	var leases []ratelimit.CounterLease
	var owners []*tenantLease
	for {
		select {
		case <-ctx.Done():
			return
		case <-sh.wake:
		case <-probe.C:
			// Re-ask for spent quotas (a raised limit, a new block) and,
			// when the store is down, probe it.
			c.mu.Lock()
			for id, t := range sh.tenants {
				if t.exhausted || t.credit > 0 || sh.down {
					c.enqueue(id, t)
				}
			}
			c.mu.Unlock()
		}
		c.mu.Lock()
		leases, owners = leases[:0], owners[:0]
		month := c.month
		ttl := month.AddDate(0, 1, 1).Sub(time.Now())
		for _, id := range sh.pending {
			t := sh.tenants[id]
			if t == nil {
				continue
			}
			want := max(c.block(t.limit)-t.budget, 0)
			leases = append(leases, ratelimit.CounterLease{Key: id + ":" + month.Format("2006-01"), Limit: t.limit,
				Seed: c.base[id], Force: t.credit, Want: want, TTL: ttl})
			owners = append(owners, t)
		}
		clear(sh.pending)
		sh.pending = sh.pending[:0]
		c.mu.Unlock()
		if len(leases) == 0 {
			continue
		}
		cctx, cancel := context.WithTimeout(ctx, sh.opts.Timeout)
		err := sh.store.LeaseCounters(cctx, sh.opts.Group, leases)
		cancel()
		c.mu.Lock()
		if err != nil {
			if !sh.down && ctx.Err() == nil {
				sh.opts.Log.Warn("quota store unreachable: each replica admits its share of the quota left", "err", err)
			}
			sh.down = ctx.Err() == nil
		} else if sh.down {
			sh.down = false
			sh.opts.Log.Info("quota store reachable again")
		}
		for i, t := range owners {
			t.queued = false
			if err == nil && c.month.Equal(month) {
				l := leases[i]
				t.credit -= l.Force
				t.budget += l.Granted
				t.used = l.Used - t.budget
				t.exhausted = l.Granted < l.Want && l.Used >= l.Limit
			}
		}
		c.mu.Unlock()
	}
}
