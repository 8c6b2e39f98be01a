package ratelimit

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"hash/maphash"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"
)

// Store holds GCRA state shared by every replica (package redisstore is the
// Redis one). Its clock is the store's own, so replicas' clocks may differ.
type Store interface {
	// Lease applies each lease in one round trip: it charges Force
	// requests (admitted already; a negative Force gives unused tokens
	// back) and takes up to Want more tokens under the lease's rule,
	// filling Granted, Reset and Wait.
	Lease(ctx context.Context, group string, leases []Lease) error
	// Heartbeat records instance as alive in group for ttl and returns
	// how many instances of group are alive.
	Heartbeat(ctx context.Context, group, instance string, ttl time.Duration) (int, error)
}

// Lease is one key's exchange with a Store.
type Lease struct {
	Rule  Rule
	Key   string
	Force int
	Want  int

	// Filled by Store.Lease.
	Granted int
	// Reset is when the key's allowance is fully restored, after the lease.
	Reset time.Duration
	// Wait is when the next token can be taken (0: one is there).
	Wait time.Duration
}

// SharedOptions configure a Shared limiter.
type SharedOptions struct {
	// Group names the service: its replicas share keys and count each
	// other ("gateway", "platform-backend").
	Group string
	// FallbackReplicas is the replica count assumed while the store is
	// unreachable when the store never told a larger one (at least 1).
	FallbackReplicas int
	// StoreTimeout bounds one store round trip (default 500 ms); past it
	// the store counts as unreachable.
	StoreTimeout time.Duration
	// Heartbeat is how often the replica count is refreshed and, while the
	// store is unreachable, how often it is probed (default 1 s).
	Heartbeat time.Duration
	Log       *slog.Logger
}

// Lease sizing: a replica holds at most limit/(replicas·leaseDivisor) tokens
// of a key (at least 1, at most maxLease) and asks for more when it holds a
// quarter of that.
const (
	leaseDivisor = 48
	minLease     = 4
	maxLease     = 1024
	// idleReturn: tokens a replica holds for a key unused this long go back
	// to the store; idleForget: the key's entry is dropped.
	idleReturn = 5 * time.Second
	idleForget = 2 * time.Minute
	// maxSpread bounds how long a replica lets an exhausted key refill
	// before asking again: what the store holds meanwhile is admitted late
	// (within the window), so a short bound keeps per-window counts close.
	maxSpread = 250 * time.Millisecond
)

// Shared is a limiter whose state lives in a Store, so a limit holds across
// every replica of a service.
//
// AllowRule (management and sign-in limits, not on the proxy path) asks the
// store synchronously: exact.
//
// Allow (the proxy's per-key RPM) never waits for the store. Each replica
// keeps a small budget of tokens per active key, leased in advance from the
// store's GCRA by a background loop (Run): limit/(replicas·48) tokens, but
// at least min(4, limit/replicas) so that one request after another finds a
// token while the next lease is on its way (a 60 RPM key on 3 replicas: 4;
// a 6 000 RPM key: about 40, one store call per about 30 requests). A
// request takes a token from the budget, or is refused when it is empty;
// the next lease then also asks for as many tokens as were refused (a
// burst), at most the replica's share. The first request of a key on a
// replica is admitted on credit, charged by the lease the loop takes at
// once. Tokens are taken from the store before they are used, so the
// replicas together never admit more than the store's GCRA (plus that
// first request per replica); a token held and not used is given back
// after idleReturn.
//
// When the store is unreachable (an error or StoreTimeout) every limit
// falls back to this replica's memory at limit ÷ replicas (the count last
// learned from the store's heartbeats, or FallbackReplicas if larger; at
// least 1 per window): never unlimited, never all refused. Every request
// the store admits is also recorded there, so the fallback starts from
// what this replica has used (a hiccup does not hand each replica a fresh
// burst). The store is probed every Heartbeat and used again as soon as it
// answers.
type Shared struct {
	store    Store
	opts     SharedOptions
	instance string
	local    *Limiter // the fallback
	down     atomic.Bool
	replicas atomic.Int64
	seed     maphash.Seed
	shards   [32]leaseShard
	wake     chan struct{}
	now      func() time.Time

	storeCalls atomic.Int64
	fallbacks  atomic.Int64
}

type leaseShard struct {
	mu      sync.Mutex
	entries map[string]*leaseEntry
	pending []*leaseEntry
}

// leaseEntry is one key's budget on this replica (guarded by its shard).
type leaseEntry struct {
	key    string
	limit  int
	budget int // tokens held
	credit int // requests admitted before the store charged them
	queued bool
	// notBefore: the store had no token; ask again then.
	notBefore time.Time
	// Store view after the last lease: allowance restored at resetAt.
	resetAt time.Time
	// misses counts requests refused for an empty budget since the last
	// lease: the next one asks for that many more (a burst).
	misses  int
	lastUse time.Time
}

// NewShared returns a limiter on store; call Run to lease and heartbeat.
func NewShared(store Store, opts SharedOptions) *Shared {
	if opts.FallbackReplicas < 1 {
		opts.FallbackReplicas = 1
	}
	if opts.StoreTimeout <= 0 {
		opts.StoreTimeout = 500 * time.Millisecond
	}
	if opts.Heartbeat <= 0 {
		opts.Heartbeat = time.Second
	}
	if opts.Log == nil {
		opts.Log = slog.New(slog.DiscardHandler)
	}
	var id [8]byte
	_, _ = rand.Read(id[:])
	s := &Shared{store: store, opts: opts, instance: hex.EncodeToString(id[:]), local: New(), seed: maphash.MakeSeed(),
		wake: make(chan struct{}, 1), now: time.Now}
	for i := range s.shards {
		s.shards[i].entries = map[string]*leaseEntry{}
	}
	return s
}

// Replicas is the replica count limits are divided by while the store is
// unreachable.
func (s *Shared) Replicas() int {
	return max(int(s.replicas.Load()), s.opts.FallbackReplicas)
}

// storeReplicas is the count the store last reported (1 before it did).
func (s *Shared) storeReplicas() int { return max(int(s.replicas.Load()), 1) }

// Degraded reports whether the store is unreachable (limits are local).
func (s *Shared) Degraded() bool { return s.down.Load() }

// Stats reports store round trips and requests decided by the fallback.
func (s *Shared) Stats() (storeCalls, fallbacks int64) {
	return s.storeCalls.Load(), s.fallbacks.Load()
}

func (s *Shared) fallbackLimit(limit int) int { return max(1, limit/s.Replicas()) }

// AllowRule admits one request for key under rule, asking the store (or,
// when it is unreachable, this replica's share of the limit). It never
// returns an error: a store failure is the fallback's to answer.
func (s *Shared) AllowRule(ctx context.Context, rule Rule, key string, now time.Time) (Result, error) {
	if rule.Limit <= 0 || rule.Window <= 0 {
		return Result{Allowed: true}, nil
	}
	if !s.down.Load() {
		l := []Lease{{Rule: rule, Key: storeKey(key), Want: 1}}
		cctx, cancel := context.WithTimeout(ctx, s.opts.StoreTimeout)
		err := s.store.Lease(cctx, s.opts.Group, l)
		cancel()
		s.storeCalls.Add(1)
		if err == nil {
			interval := rule.Window / time.Duration(rule.Limit)
			r := Result{Allowed: l[0].Granted == 1, Limit: rule.Limit, Reset: l[0].Reset}
			r.Remaining = max(0, int((rule.Window-l[0].Reset)/interval))
			if !r.Allowed {
				r.RetryAfter = max(l[0].Wait, time.Millisecond)
			} else {
				s.mirror(rule, key, now)
			}
			return r, nil
		}
		if ctx.Err() != nil {
			return Result{}, ctx.Err()
		}
		s.markDown(err)
	}
	s.fallbacks.Add(1)
	rule.Limit = s.fallbackLimit(rule.Limit)
	return s.local.AllowRule(ctx, rule, key, now)
}

// mirror records an admitted request in the fallback at this replica's
// share, so that a switch to the fallback continues from what the replica
// has used instead of granting every replica a fresh burst (a store hiccup
// would otherwise admit up to one extra limit).
func (s *Shared) mirror(rule Rule, key string, now time.Time) {
	if rule.Name == "" {
		s.local.Allow(key, s.fallbackLimit(rule.Limit), now)
		return
	}
	rule.Limit = s.fallbackLimit(rule.Limit)
	_, _ = s.local.AllowRule(context.Background(), rule, key, now)
}

// Allow admits one request for key under rpm requests per minute from this
// replica's leased budget. It does no I/O and does not allocate once the
// key is known to the replica.
func (s *Shared) Allow(key string, rpm int, now time.Time) Result {
	if rpm <= 0 {
		return Result{Allowed: true}
	}
	if s.down.Load() {
		s.fallbacks.Add(1)
		return s.local.Allow(key, s.fallbackLimit(rpm), now)
	}
	interval := time.Minute / time.Duration(rpm)
	sh := &s.shards[maphash.String(s.seed, key)%uint64(len(s.shards))]
	sh.mu.Lock()
	e := sh.entries[key]
	if e == nil {
		// First sight on this replica: admitted on credit, charged by the
		// lease the loop takes now.
		e = &leaseEntry{key: key, limit: rpm, credit: 1, lastUse: now, resetAt: now.Add(interval)}
		sh.entries[key] = e
		s.enqueue(sh, e)
		sh.mu.Unlock()
		s.signal()
		s.mirror(Rule{Limit: rpm, Window: time.Minute}, key, now)
		return Result{Allowed: true, Limit: rpm, Remaining: rpm - 1, Reset: interval}
	}
	e.limit = rpm
	e.lastUse = now
	reset := max(e.resetAt.Sub(now), 0)
	// Tokens the store had left at the last lease, plus its refill since.
	storeLeft := min(rpm, max(0, int((time.Minute-reset)/interval)))
	if e.budget > 0 {
		e.budget--
		queued := false
		if !e.queued && e.budget <= s.leaseSize(rpm)/4 {
			s.enqueue(sh, e) // the loop asks once notBefore has passed
			queued = true
		}
		remaining := min(rpm, e.budget+storeLeft)
		sh.mu.Unlock()
		if queued {
			s.signal()
		}
		s.mirror(Rule{Limit: rpm, Window: time.Minute}, key, now)
		return Result{Allowed: true, Limit: rpm, Remaining: remaining, Reset: reset + interval}
	}
	e.misses = min(e.misses+1, rpm)
	retry := max(e.notBefore.Sub(now), interval)
	queued := false
	if !e.queued {
		s.enqueue(sh, e)
		queued = true
	}
	sh.mu.Unlock()
	if queued {
		s.signal()
	}
	return Result{Allowed: false, Limit: rpm, Remaining: 0, Reset: max(reset, retry), RetryAfter: retry}
}

// leaseSize is how many tokens a replica keeps at hand for a limit:
// limit/(replicas·48), but at least a few (up to 4, at most its share) so
// that a client sending one request after another finds a token while the
// next lease is on its way; at most maxLease.
func (s *Shared) leaseSize(limit int) int {
	r := s.storeReplicas()
	return min(max(1, limit/(r*leaseDivisor), min(minLease, limit/r)), maxLease)
}

func (s *Shared) enqueue(sh *leaseShard, e *leaseEntry) {
	e.queued = true
	sh.pending = append(sh.pending, e)
}

func (s *Shared) signal() {
	select {
	case s.wake <- struct{}{}:
	default:
	}
}

func (s *Shared) markDown(err error) {
	if !s.down.Swap(true) {
		s.opts.Log.Warn("rate limit store unreachable: limits fall back to this replica's share",
			"group", s.opts.Group, "replicas", s.Replicas(), "err", err)
	}
}

// Sweep forgets idle fallback state and idle keys that hold nothing.
func (s *Shared) Sweep(now time.Time) {
	s.local.Sweep(now)
	for i := range s.shards {
		sh := &s.shards[i]
		sh.mu.Lock()
		for k, e := range sh.entries {
			if !e.queued && e.budget == 0 && e.credit == 0 && now.Sub(e.lastUse) >= idleForget {
				delete(sh.entries, k)
			}
		}
		sh.mu.Unlock()
	}
}

// Len reports how many keys the replica tracks (tests, metrics).
func (s *Shared) Len() int {
	n := s.local.Len()
	for i := range s.shards {
		sh := &s.shards[i]
		sh.mu.Lock()
		n += len(sh.entries)
		sh.mu.Unlock()
	}
	return n
}

// Run leases tokens for the keys that need them, gives back idle ones,
// heartbeats and probes the store, until ctx ends.
func (s *Shared) Run(ctx context.Context) {
	s.heartbeat(ctx)
	beat := time.NewTicker(s.opts.Heartbeat)
	defer beat.Stop()
	timer := time.NewTimer(time.Hour)
	defer timer.Stop()
	var batch []Lease
	var owners []*leaseEntry
	for {
		select {
		case <-ctx.Done():
			return
		case <-beat.C:
			s.heartbeat(ctx)
			s.returnIdle(ctx)
		case <-s.wake:
		case <-timer.C:
		}
		if s.down.Load() {
			s.dropPending()
			continue
		}
		batch, owners = s.collect(batch[:0], owners[:0])
		if len(batch) > 0 {
			cctx, cancel := context.WithTimeout(ctx, s.opts.StoreTimeout)
			err := s.store.Lease(cctx, s.opts.Group, batch)
			cancel()
			s.storeCalls.Add(1)
			if err != nil {
				if ctx.Err() != nil {
					return
				}
				s.markDown(err)
				s.unqueue(owners)
				continue
			}
			s.apply(batch, owners)
		}
		if next := s.nextDue(); !next.IsZero() {
			timer.Reset(max(next.Sub(s.now()), 0))
		}
	}
}

// collect takes the pending entries that are due, leaving the others
// queued, and builds their leases.
func (s *Shared) collect(batch []Lease, owners []*leaseEntry) ([]Lease, []*leaseEntry) {
	now := s.now()
	for i := range s.shards {
		sh := &s.shards[i]
		sh.mu.Lock()
		keep := sh.pending[:0]
		for _, e := range sh.pending {
			if now.Before(e.notBefore) {
				keep = append(keep, e)
				continue
			}
			// Top the budget up to a lease, or to what was refused since
			// the last one (a burst), at most the replica's share.
			size := s.leaseSize(e.limit)
			want := max(max(size, min(e.misses, e.limit/s.storeReplicas()))-e.budget, 0)
			if want == 0 && e.credit == 0 {
				e.queued = false
				continue
			}
			batch = append(batch, Lease{Rule: Rule{Limit: e.limit, Window: time.Minute}, Key: storeKey(e.key), Force: e.credit, Want: want})
			owners = append(owners, e)
		}
		clear(sh.pending[len(keep):])
		sh.pending = keep
		sh.mu.Unlock()
	}
	return batch, owners
}

// apply books the store's answers; entries the store could not serve wait
// until enough tokens are there for a useful lease.
func (s *Shared) apply(batch []Lease, owners []*leaseEntry) {
	now := s.now()
	for i, l := range batch {
		e := owners[i]
		sh := &s.shards[maphash.String(s.seed, e.key)%uint64(len(s.shards))]
		sh.mu.Lock()
		e.credit -= l.Force
		e.budget += l.Granted
		e.resetAt = now.Add(l.Reset)
		e.misses = 0
		e.queued = false
		if l.Granted < l.Want {
			// The key is exhausted. Replicas share its refill, so each
			// waits until the store has refilled the missing tokens for
			// every replica rather than polling for each one: tokens not
			// taken meanwhile stay in the store (up to the burst), nothing
			// is lost, and a busy key costs few store calls.
			interval := time.Minute / time.Duration(max(e.limit, 1))
			missing := l.Want - l.Granted
			spread := time.Duration(0) // one token: ask when it is there
			if missing > 1 {
				spread = min(time.Duration(missing*s.storeReplicas()-1)*interval, maxSpread)
			}
			e.notBefore = now.Add(l.Wait + spread)
			if e.budget == 0 {
				s.enqueue(sh, e)
			}
		}
		sh.mu.Unlock()
	}
}

// nextDue is the earliest time a queued entry may ask again (zero: none).
func (s *Shared) nextDue() time.Time {
	var next time.Time
	for i := range s.shards {
		sh := &s.shards[i]
		sh.mu.Lock()
		for _, e := range sh.pending {
			if next.IsZero() || e.notBefore.Before(next) {
				next = e.notBefore
			}
		}
		sh.mu.Unlock()
	}
	return next
}

// unqueue clears the queued mark of entries whose lease failed; their
// credit stays (charged once the store answers again).
func (s *Shared) unqueue(owners []*leaseEntry) {
	for _, e := range owners {
		sh := &s.shards[maphash.String(s.seed, e.key)%uint64(len(s.shards))]
		sh.mu.Lock()
		e.queued = false
		sh.mu.Unlock()
	}
}

func (s *Shared) dropPending() {
	for i := range s.shards {
		sh := &s.shards[i]
		sh.mu.Lock()
		for _, e := range sh.pending {
			e.queued = false
		}
		clear(sh.pending)
		sh.pending = sh.pending[:0]
		sh.mu.Unlock()
	}
}

// returnIdle gives back tokens held for keys unused for idleReturn, and
// charges credit still owed (a lease that failed when the store went down).
func (s *Shared) returnIdle(ctx context.Context) {
	if s.down.Load() {
		return
	}
	now := s.now()
	var batch []Lease
	var owners []*leaseEntry
	var given []int
	for i := range s.shards {
		sh := &s.shards[i]
		sh.mu.Lock()
		for _, e := range sh.entries {
			if e.queued {
				continue
			}
			give := 0
			if e.budget > 0 && now.Sub(e.lastUse) >= idleReturn {
				give = e.budget
			}
			if give == 0 && e.credit == 0 {
				continue
			}
			// Given-back tokens leave the budget now, so the hot path
			// cannot use them meanwhile; a failed call restores them.
			e.budget -= give
			e.queued = true
			batch = append(batch, Lease{Rule: Rule{Limit: e.limit, Window: time.Minute}, Key: storeKey(e.key), Force: e.credit - give})
			owners = append(owners, e)
			given = append(given, give)
		}
		sh.mu.Unlock()
	}
	if len(batch) == 0 {
		return
	}
	cctx, cancel := context.WithTimeout(ctx, s.opts.StoreTimeout)
	err := s.store.Lease(cctx, s.opts.Group, batch)
	cancel()
	s.storeCalls.Add(1)
	for i, e := range owners {
		sh := &s.shards[maphash.String(s.seed, e.key)%uint64(len(s.shards))]
		sh.mu.Lock()
		if err != nil {
			e.budget += given[i]
		} else {
			e.credit -= batch[i].Force + given[i]
		}
		e.queued = false
		sh.mu.Unlock()
	}
	if err != nil && ctx.Err() == nil {
		s.markDown(err)
	}
}

// heartbeat registers the replica, learns the replica count and, after an
// outage, switches back to the store.
func (s *Shared) heartbeat(ctx context.Context) {
	cctx, cancel := context.WithTimeout(ctx, s.opts.StoreTimeout)
	n, err := s.store.Heartbeat(cctx, s.opts.Group, s.instance, 3*s.opts.Heartbeat+s.opts.StoreTimeout)
	cancel()
	if err != nil {
		if ctx.Err() == nil {
			s.markDown(err)
		}
		return
	}
	s.replicas.Store(int64(n))
	if s.down.Swap(false) {
		s.opts.Log.Info("rate limit store reachable again: shared limits resumed", "group", s.opts.Group, "replicas", n)
	}
}

// storeKey bounds keys made of client input like the in-memory limiter.
func storeKey(key string) string {
	if len(key) <= maxKeyLen {
		return key
	}
	sum := sha256.Sum256([]byte(key))
	return "sha256:" + hex.EncodeToString(sum[:])
}

// CounterLease is one counter's exchange with a shared store (the monthly
// quota): charge Force (negative: give back), then take up to Want of what
// is left under Limit (<= 0: no limit). A counter the store lost (or never
// had) starts from Seed, and one below Seed is raised to it.
type CounterLease struct {
	Key   string
	Limit int64
	Seed  int64
	Force int64
	Want  int64
	// TTL is how long the store keeps the counter after this lease.
	TTL time.Duration

	// Filled by the store.
	Granted int64
	Used    int64
}

// Refund gives back one request AllowRule admitted for key under rule (the
// platform charges a login attempt first and refunds it on success): to the
// store (a negative charge) and to this replica's fallback mirror.
func (s *Shared) Refund(ctx context.Context, rule Rule, key string, now time.Time) error {
	if rule.Limit <= 0 || rule.Window <= 0 {
		return nil
	}
	local := rule
	local.Limit = s.fallbackLimit(rule.Limit)
	if rule.Name == "" {
		local.Name = ""
	}
	_ = s.local.Refund(ctx, local, key, now)
	if s.down.Load() {
		return nil
	}
	l := []Lease{{Rule: rule, Key: storeKey(key), Force: -1}}
	cctx, cancel := context.WithTimeout(ctx, s.opts.StoreTimeout)
	defer cancel()
	s.storeCalls.Add(1)
	if err := s.store.Lease(cctx, s.opts.Group, l); err != nil {
		if ctx.Err() != nil {
			return ctx.Err()
		}
		s.markDown(err)
	}
	return nil
}
