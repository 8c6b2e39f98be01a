// Package quota enforces a tenant's monthly request cap (calendar month, UTC)
// from in-memory counters: seeded from the usage table at start, resynced
// periodically (so other replicas' traffic is counted), incremented locally
// on every admitted request.
package quota

import (
	"context"
	"sync"
	"time"
)

// Counter counts requests per tenant for the current month.
type Counter struct {
	mu     sync.Mutex
	month  time.Time // first instant of the counted month (UTC)
	base   map[string]int64
	local  map[string]int64
	source Source
}

// Source reads per-tenant request counts since a time (the usage table).
type Source interface {
	CountSince(ctx context.Context, since time.Time) (map[string]int64, error)
}

// New returns a counter; call Sync before serving.
func New(src Source) *Counter {
	return &Counter{base: map[string]int64{}, local: map[string]int64{}, source: src}
}

func monthStart(t time.Time) time.Time {
	t = t.UTC()
	return time.Date(t.Year(), t.Month(), 1, 0, 0, 0, 0, time.UTC)
}

// Sync replaces the base counts with the database's and clears the local
// increments those counts now include.
func (c *Counter) Sync(ctx context.Context, now time.Time) error {
	m := monthStart(now)
	counts, err := c.source.CountSince(ctx, m)
	if err != nil {
		return err
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	c.month, c.base, c.local = m, counts, map[string]int64{}
	return nil
}

// Allow admits one request of tenant under a monthly limit (<= 0: no limit)
// and counts it; used is the count including this request.
func (c *Counter) Allow(tenant string, limit int64, now time.Time) (ok bool, used int64) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if m := monthStart(now); !m.Equal(c.month) {
		c.month, c.base, c.local = m, map[string]int64{}, map[string]int64{}
	}
	used = c.base[tenant] + c.local[tenant]
	if limit > 0 && used >= limit {
		return false, used
	}
	c.local[tenant]++
	return true, used + 1
}

// Run resyncs every interval until ctx ends.
func (c *Counter) Run(ctx context.Context, interval time.Duration, onErr func(error)) {
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
