// Package ratelimit implements per-key requests-per-minute limits with GCRA
// (generic cell rate algorithm): one timestamp per key, smooth refill, bursts
// up to the full minute's allowance.
package ratelimit

import (
	"hash/maphash"
	"sync"
	"time"
)

const window = time.Minute

// Result is the outcome of one Allow call.
type Result struct {
	Allowed   bool
	Limit     int
	Remaining int
	// Reset is when the allowance is fully restored.
	Reset time.Duration
	// RetryAfter is set when not allowed.
	RetryAfter time.Duration
}

type shard struct {
	mu  sync.Mutex
	tat map[string]time.Time
}

// Limiter holds theoretical arrival times per key in sharded maps.
type Limiter struct {
	seed   maphash.Seed
	shards [32]shard
}

// New returns an empty limiter.
func New() *Limiter {
	l := &Limiter{seed: maphash.MakeSeed()}
	for i := range l.shards {
		l.shards[i].tat = map[string]time.Time{}
	}
	return l
}

// Allow admits one request for key under a limit of rpm per minute.
func (l *Limiter) Allow(key string, rpm int, now time.Time) Result {
	if rpm <= 0 {
		return Result{Allowed: true}
	}
	interval := window / time.Duration(rpm)
	sh := &l.shards[maphash.String(l.seed, key)%uint64(len(l.shards))]
	sh.mu.Lock()
	tat, ok := sh.tat[key]
	if !ok || tat.Before(now) {
		tat = now
	}
	newTat := tat.Add(interval)
	allowAt := newTat.Add(-window)
	if now.Before(allowAt) {
		sh.mu.Unlock()
		return Result{Allowed: false, Limit: rpm, Remaining: 0, Reset: tat.Sub(now), RetryAfter: allowAt.Sub(now)}
	}
	sh.tat[key] = newTat
	sh.mu.Unlock()
	remaining := int((window - newTat.Sub(now)) / interval)
	return Result{Allowed: true, Limit: rpm, Remaining: max(remaining, 0), Reset: newTat.Sub(now)}
}

// Sweep forgets keys whose allowance is fully restored.
func (l *Limiter) Sweep(now time.Time) {
	for i := range l.shards {
		sh := &l.shards[i]
		sh.mu.Lock()
		for k, t := range sh.tat {
			if t.Before(now) {
				delete(sh.tat, k)
			}
		}
		sh.mu.Unlock()
	}
}
