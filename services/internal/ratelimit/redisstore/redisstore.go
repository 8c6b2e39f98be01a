// Package redisstore keeps the rate limiter's shared state in Redis
// (ratelimit.Store and the counter leases of monthly quotas), so limits hold
// across every replica of a service.
//
// Each operation is one Lua script, atomic on the Redis server and timed by
// the server's clock (TIME), so replicas whose clocks differ still agree. A
// batch of leases is one pipelined round trip. Keys are
// PREFIX:rl:GROUP:RULE:KEY (GCRA: the theoretical arrival time in
// microseconds, expiring when the allowance is restored),
// PREFIX:q:GROUP:KEY (counters) and PREFIX:replicas:GROUP (a sorted set of
// live instances scored by their expiry).
package redisstore

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"

	"trueportai/services/internal/ratelimit"
)

// Store is a ratelimit.Store on a Redis server.
type Store struct {
	c      redis.UniversalClient
	prefix string
}

var _ ratelimit.Store = (*Store)(nil)

// New returns a store using c, its keys under prefix.
func New(c redis.UniversalClient, prefix string) *Store { return &Store{c: c, prefix: prefix} }

// Open returns a client for a redis:// or rediss:// URL, with short
// timeouts and no retries: a limiter that cannot reach its store falls
// back at once rather than wait.
func Open(url string) (*redis.Client, error) {
	opt, err := redis.ParseURL(url)
	if err != nil {
		return nil, fmt.Errorf("REDIS_URL: %w", err)
	}
	opt.DialTimeout = time.Second
	opt.ReadTimeout = time.Second
	opt.WriteTimeout = time.Second
	opt.MaxRetries = -1
	opt.ContextTimeoutEnabled = true
	return redis.NewClient(opt), nil
}

// leaseScript: KEYS[1] the key's TAT (µs); ARGV interval µs, window µs,
// force, want. Charges force (negative: gives back), then grants up to want
// of the tokens available now. Returns {granted, reset µs, wait µs}.
var leaseScript = redis.NewScript(`
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
local interval = tonumber(ARGV[1])
local window = tonumber(ARGV[2])
local force = tonumber(ARGV[3])
local want = tonumber(ARGV[4])
local tat = tonumber(redis.call('GET', KEYS[1]) or '0')
if tat < now then tat = now end
tat = tat + force * interval
if tat < now then tat = now end
local avail = math.floor((now + window - tat) / interval)
if avail < 0 then avail = 0 end
local g = want
if g > avail then g = avail end
if g < 0 then g = 0 end
tat = tat + g * interval
if tat > now then
  redis.call('SET', KEYS[1], string.format('%.0f', tat), 'PX', math.ceil((tat - now) / 1000) + 1000)
else
  redis.call('DEL', KEYS[1])
end
local wait = tat + interval - window - now
if wait < 0 then wait = 0 end
return {g, tat - now, wait}
`)

// heartbeatScript: KEYS[1] the group's sorted set; ARGV instance, ttl ms.
var heartbeatScript = redis.NewScript(`
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now)
redis.call('ZADD', KEYS[1], now + tonumber(ARGV[2]), ARGV[1])
redis.call('PEXPIRE', KEYS[1], tonumber(ARGV[2]) * 2)
return redis.call('ZCARD', KEYS[1])
`)

// counterScript: KEYS[1] the counter; ARGV limit (<= 0: none), seed,
// force, want, ttl ms. A missing counter starts at seed, and a counter
// below seed is raised to it (seed is a count the caller knows was
// used). Returns {granted, used after}.
var counterScript = redis.NewScript(`
local limit = tonumber(ARGV[1])
local seed = tonumber(ARGV[2])
local used = tonumber(redis.call('GET', KEYS[1]) or '-1')
if used < seed then used = seed end
used = used + tonumber(ARGV[3])
if used < 0 then used = 0 end
local want = tonumber(ARGV[4])
local g = want
if limit > 0 and used + g > limit then g = limit - used end
if g < 0 then g = 0 end
used = used + g
redis.call('SET', KEYS[1], used, 'PX', tonumber(ARGV[5]))
return {g, used}
`)

func (s *Store) key(kind, group, rest string) string {
	var b strings.Builder
	b.Grow(len(s.prefix) + len(kind) + len(group) + len(rest) + 3)
	b.WriteString(s.prefix)
	b.WriteByte(':')
	b.WriteString(kind)
	b.WriteByte(':')
	b.WriteString(group)
	b.WriteByte(':')
	b.WriteString(rest)
	return b.String()
}

// Lease implements ratelimit.Store.
func (s *Store) Lease(ctx context.Context, group string, leases []ratelimit.Lease) error {
	cmds, err := s.run(ctx, leaseScript, len(leases), func(i int) ([]string, []any) {
		l := &leases[i]
		interval := l.Rule.Window.Microseconds() / int64(max(l.Rule.Limit, 1))
		name := l.Rule.Name
		if name == "" {
			name = "rpm"
		}
		return []string{s.key("rl", group, name+":"+l.Key)}, []any{max(interval, 1), l.Rule.Window.Microseconds(), l.Force, l.Want}
	})
	if err != nil {
		return err
	}
	for i, c := range cmds {
		v, err := c.Int64Slice()
		if err != nil || len(v) != 3 {
			return fmt.Errorf("rate limit lease: unexpected reply %v: %w", c.Val(), err)
		}
		leases[i].Granted = int(v[0])
		leases[i].Reset = time.Duration(v[1]) * time.Microsecond
		leases[i].Wait = time.Duration(v[2]) * time.Microsecond
	}
	return nil
}

// LeaseCounters applies counter leases (monthly quotas) in one round trip.
func (s *Store) LeaseCounters(ctx context.Context, group string, leases []ratelimit.CounterLease) error {
	cmds, err := s.run(ctx, counterScript, len(leases), func(i int) ([]string, []any) {
		l := &leases[i]
		return []string{s.key("q", group, l.Key)}, []any{l.Limit, l.Seed, l.Force, l.Want, max(l.TTL.Milliseconds(), 1000)}
	})
	if err != nil {
		return err
	}
	for i, c := range cmds {
		v, err := c.Int64Slice()
		if err != nil || len(v) != 2 {
			return fmt.Errorf("counter lease: unexpected reply %v: %w", c.Val(), err)
		}
		leases[i].Granted, leases[i].Used = v[0], v[1]
	}
	return nil
}

// Heartbeat implements ratelimit.Store.
func (s *Store) Heartbeat(ctx context.Context, group, instance string, ttl time.Duration) (int, error) {
	n, err := heartbeatScript.Run(ctx, s.c, []string{s.key("replicas", group, "")}, instance, ttl.Milliseconds()).Int()
	if err != nil {
		return 0, fmt.Errorf("rate limit heartbeat: %w", err)
	}
	return n, nil
}

// run sends n invocations of script in one pipeline by its SHA, loading it
// once when the server does not know it (first use, or a restarted server).
func (s *Store) run(ctx context.Context, script *redis.Script, n int, args func(i int) ([]string, []any)) ([]*redis.Cmd, error) {
	if n == 0 {
		return nil, nil
	}
	for attempt := 0; ; attempt++ {
		pipe := s.c.Pipeline()
		cmds := make([]*redis.Cmd, n)
		for i := range n {
			keys, argv := args(i)
			cmds[i] = script.EvalSha(ctx, pipe, keys, argv...)
		}
		_, err := pipe.Exec(ctx)
		if err == nil {
			return cmds, nil
		}
		if attempt == 0 && redis.HasErrorPrefix(err, "NOSCRIPT") {
			if err := script.Load(ctx, s.c).Err(); err != nil {
				return nil, fmt.Errorf("load limiter script: %w", err)
			}
			continue
		}
		return nil, fmt.Errorf("rate limit store: %w", err)
	}
}

// Ping checks the connection (health checks).
func (s *Store) Ping(ctx context.Context) error {
	if err := s.c.Ping(ctx).Err(); err != nil {
		return errors.Join(errors.New("redis unreachable"), err)
	}
	return nil
}
