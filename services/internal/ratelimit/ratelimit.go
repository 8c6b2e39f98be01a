// Package ratelimit is the request rate limiter of both services: the
// gateway's per-key RPM on the proxy path and its management/analytics
// limits, and the platform's login, OTP, reset and management limits.
//
// It implements GCRA (generic cell rate algorithm): one timestamp per key
// (the theoretical arrival time), smooth refill. A limit of N per window W
// admits a burst of up to N at once, then one more every W/N; over any span
// of length d at most N + d·N/W requests pass. Refused requests are not
// recorded, so hammering a closed limit does not prolong it. Refund gives an
// admitted request back, for limits that count only some outcomes (failed
// logins): charge first, refund when the attempt does not count.
//
// Limiter keeps that state in this process's memory, sharded, without
// allocating on the per-key path. A backend holding the state in a shared
// store (limits across replicas) can implement AllowRule's signature, which
// already carries a context and an error for it; consumers declare the
// interface they need (the platform's httpapi.RateLimiter).
package ratelimit

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"hash/maphash"
	"sync"
	"time"
)

// Rule is one named limit: Limit requests per Window (see the package doc
// for what GCRA admits). A rule with Limit or Window <= 0 admits everything.
type Rule struct {
	// Name separates the rule's keys from other rules' and names the limit
	// in 429 answers (snake_case).
	Name   string
	Limit  int
	Window time.Duration
}

// Result is the outcome of one Allow or AllowRule call.
type Result struct {
	Allowed   bool
	Limit     int
	Remaining int
	// Reset is when the allowance is fully restored.
	Reset time.Duration
	// RetryAfter is set when not allowed: when one more request passes.
	RetryAfter time.Duration
}

const (
	// sweepEvery bounds how often a shard is scanned for idle keys.
	sweepEvery = time.Minute
	// maxKeyLen is the longest key kept as is; longer ones (keys made of
	// client input, such as an email as typed) are kept as their SHA-256.
	maxKeyLen = 256
)

// shard holds theoretical arrival times by key: Allow's in tat, each rule's
// in its own map (plain string keys: a struct key of rule and key hashes
// slower on the proxy path).
type shard struct {
	mu        sync.Mutex
	tat       map[string]time.Time
	rules     map[string]map[string]time.Time
	lastSweep time.Time
}

// Limiter holds theoretical arrival times per rule and key in sharded maps.
// Keys whose allowance is fully restored are forgotten (a shard is swept at
// most once a minute while it is used, and by Sweep); forgetting them changes
// no answer.
type Limiter struct {
	seed   maphash.Seed
	shards [32]shard
}

// New returns an empty limiter.
func New() *Limiter {
	l := &Limiter{seed: maphash.MakeSeed()}
	for i := range l.shards {
		l.shards[i].tat = map[string]time.Time{}
		l.shards[i].rules = map[string]map[string]time.Time{}
	}
	return l
}

// Allow admits one request for key under a limit of rpm per minute (the
// proxy's per-key RPM). It does not allocate.
func (l *Limiter) Allow(key string, rpm int, now time.Time) Result {
	return l.allow("", key, rpm, time.Minute, now)
}

// AllowRule admits one request for key under rule; each rule name has its
// own keys (a rule named "" shares Allow's). The in-memory limiter never
// fails; the context and error are there for shared-store backends.
func (l *Limiter) AllowRule(_ context.Context, rule Rule, key string, now time.Time) (Result, error) {
	return l.allow(rule.Name, key, rule.Limit, rule.Window, now), nil
}

func (l *Limiter) allow(rule, key string, limit int, window time.Duration, now time.Time) Result {
	if limit <= 0 || window <= 0 {
		return Result{Allowed: true}
	}
	key = storedKey(key)
	interval := window / time.Duration(limit)
	sh := &l.shards[maphash.String(l.seed, key)%uint64(len(l.shards))]
	sh.mu.Lock()
	if now.Sub(sh.lastSweep) >= sweepEvery {
		sh.sweep(now)
	}
	m := sh.tat
	if rule != "" {
		if m = sh.rules[rule]; m == nil {
			m = map[string]time.Time{}
			sh.rules[rule] = m
		}
	}
	tat, ok := m[key]
	if !ok || tat.Before(now) {
		tat = now
	}
	newTat := tat.Add(interval)
	allowAt := newTat.Add(-window)
	if now.Before(allowAt) {
		sh.mu.Unlock()
		return Result{Allowed: false, Limit: limit, Remaining: 0, Reset: tat.Sub(now), RetryAfter: allowAt.Sub(now)}
	}
	m[key] = newTat
	sh.mu.Unlock()
	remaining := int((window - newTat.Sub(now)) / interval)
	return Result{Allowed: true, Limit: limit, Remaining: max(remaining, 0), Reset: newTat.Sub(now)}
}

// Refund gives back one request that AllowRule admitted for key under rule:
// the theoretical arrival time moves back one interval, never before now (a
// refund restores at most what the charge took, and nothing once the charge
// has already drained). With it a caller limits only some outcomes ("failed
// logins only"): charge before the attempt, refund when the attempt turns
// out not to count. Charging first keeps the limit exact under concurrency:
// concurrent attempts each hold a charge, so no more than the limit can be
// in flight and failed at once; a peek before and a charge after the attempt
// would let every concurrent attempt through a limit with one slot left. The
// in-memory limiter never fails.
func (l *Limiter) Refund(_ context.Context, rule Rule, key string, now time.Time) error {
	if rule.Limit <= 0 || rule.Window <= 0 {
		return nil
	}
	key = storedKey(key)
	interval := rule.Window / time.Duration(rule.Limit)
	sh := &l.shards[maphash.String(l.seed, key)%uint64(len(l.shards))]
	sh.mu.Lock()
	defer sh.mu.Unlock()
	m := sh.tat
	if rule.Name != "" {
		m = sh.rules[rule.Name]
	}
	tat, ok := m[key]
	if !ok {
		return nil
	}
	if tat = tat.Add(-interval); tat.After(now) {
		m[key] = tat
	} else {
		delete(m, key)
	}
	return nil
}

// storedKey is key as kept: itself, or its SHA-256 when longer than maxKeyLen.
func storedKey(key string) string {
	if len(key) <= maxKeyLen {
		return key
	}
	sum := sha256.Sum256([]byte(key))
	return "sha256:" + hex.EncodeToString(sum[:])
}

// Sweep forgets keys whose allowance is fully restored, in every shard.
func (l *Limiter) Sweep(now time.Time) {
	for i := range l.shards {
		sh := &l.shards[i]
		sh.mu.Lock()
		sh.sweep(now)
		sh.mu.Unlock()
	}
}

// sweep forgets the shard's keys restored by now (caller holds mu).
func (sh *shard) sweep(now time.Time) {
	sweepMap(sh.tat, now)
	for name, m := range sh.rules {
		if sweepMap(m, now); len(m) == 0 {
			delete(sh.rules, name)
		}
	}
	sh.lastSweep = now
}

func sweepMap(m map[string]time.Time, now time.Time) {
	for k, t := range m {
		if t.Before(now) {
			delete(m, k)
		}
	}
}

// Len reports how many keys are tracked (tests, metrics).
func (l *Limiter) Len() int {
	n := 0
	for i := range l.shards {
		sh := &l.shards[i]
		sh.mu.Lock()
		n += len(sh.tat)
		for _, m := range sh.rules {
			n += len(m)
		}
		sh.mu.Unlock()
	}
	return n
}
