// Package ratelimit counts requests per key in sliding windows ("at most N in
// any window of W"). Memory keeps the counts in this process (one replica);
// a shared store (Redis, Postgres) can replace it behind the same method set.
package ratelimit

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"hash/maphash"
	"sync"
	"time"
)

// Rule is one named limit: at most Limit requests per key in any Window.
type Rule struct {
	// Name identifies the limit in keys and in 429 answers (snake_case).
	Name   string
	Limit  int
	Window time.Duration
}

// Decision is the outcome of one Allow call.
type Decision struct {
	Allowed bool
	// Remaining is how many more requests the window admits (after this one).
	Remaining int
	// RetryAfter is, when not allowed, how long until one more is admitted.
	RetryAfter time.Duration
}

// entry is the sliding-window log of one key: the times of the admitted
// requests still inside the window, oldest first.
type entry struct {
	window time.Duration
	hits   []time.Time
}

type shard struct {
	mu        sync.Mutex
	entries   map[string]*entry
	lastSweep time.Time
}

// Memory is an in-process sliding-window-log limiter. It is exact (never
// more than Limit in any window) and holds at most Limit timestamps per key;
// keys whose window has passed are swept while it is used. Denied requests
// are not recorded, so hammering a closed window does not prolong it.
type Memory struct {
	now    func() time.Time
	seed   maphash.Seed
	shards [16]shard
}

const (
	// sweepEvery bounds how often a shard is scanned for expired keys.
	sweepEvery = time.Minute
	// maxKeyLen is the longest key kept as is; longer ones are hashed.
	maxKeyLen = 256
)

// NewMemory returns an empty limiter reading time from now.
func NewMemory(now func() time.Time) *Memory {
	m := &Memory{now: now, seed: maphash.MakeSeed()}
	for i := range m.shards {
		m.shards[i].entries = map[string]*entry{}
	}
	return m
}

// Allow records one request for key under rule when the rule admits it.
// A rule with Limit <= 0 admits everything. It never fails; the error is
// there for shared-store implementations.
func (m *Memory) Allow(_ context.Context, rule Rule, key string) (Decision, error) {
	if rule.Limit <= 0 || rule.Window <= 0 {
		return Decision{Allowed: true, Remaining: -1}, nil
	}
	now := m.now()
	if len(key) > maxKeyLen {
		// Keys come from clients (emails as typed): bound their memory.
		sum := sha256.Sum256([]byte(key))
		key = "sha256:" + hex.EncodeToString(sum[:])
	}
	k := rule.Name + "\x00" + key
	sh := &m.shards[maphash.String(m.seed, k)%uint64(len(m.shards))]
	sh.mu.Lock()
	defer sh.mu.Unlock()
	if now.Sub(sh.lastSweep) >= sweepEvery {
		sh.sweep(now)
	}
	e := sh.entries[k]
	if e == nil {
		e = &entry{window: rule.Window}
		sh.entries[k] = e
	}
	e.window = rule.Window
	e.prune(now)
	if len(e.hits) >= rule.Limit {
		// The oldest hit that must leave before one more fits.
		oldest := e.hits[len(e.hits)-rule.Limit]
		return Decision{Allowed: false, RetryAfter: oldest.Add(rule.Window).Sub(now)}, nil
	}
	e.hits = append(e.hits, now)
	return Decision{Allowed: true, Remaining: rule.Limit - len(e.hits)}, nil
}

// prune drops hits that left the window ending at now.
func (e *entry) prune(now time.Time) {
	cut := now.Add(-e.window)
	i := 0
	for i < len(e.hits) && !e.hits[i].After(cut) {
		i++
	}
	if i > 0 {
		e.hits = append(e.hits[:0], e.hits[i:]...)
	}
}

// sweep forgets keys with no hit left in their window (caller holds mu).
func (sh *shard) sweep(now time.Time) {
	for k, e := range sh.entries {
		if e.prune(now); len(e.hits) == 0 {
			delete(sh.entries, k)
		}
	}
	sh.lastSweep = now
}

// Len reports how many keys are tracked (for tests and metrics).
func (m *Memory) Len() int {
	n := 0
	for i := range m.shards {
		sh := &m.shards[i]
		sh.mu.Lock()
		n += len(sh.entries)
		sh.mu.Unlock()
	}
	return n
}
