package analytics

import (
	"context"
	"crypto/rand"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgtype"

	"trueportai/services/gateway/internal/usage"
)

// insertSQL inserts a batch from column arrays; rows whose (request_id,
// created_at) exists are skipped and only the newly inserted ones are
// returned (rollups and violations are written for those alone, so
// redeliveries never double count). created_at is part of the key because
// usage_logs is partitioned on it (migration 00005); a redelivered event
// carries the created_at the gateway gave it, so the pair identifies it.
const insertSQL = `INSERT INTO usage_logs (id, request_id, created_at, tenant_id, env, key_id, key_name, provider, model, path, status_code, stream,
	latency_ms, ttfb_ms, prompt_tokens, completion_tokens, total_tokens, cached_tokens, cost_usd, outcome, error, violation_ids, request_body, response_body)
SELECT id, r, c, t::uuid, e, NULLIF(k, '')::uuid, kn, p, m, pa, s, st, l, tt, pt, ct, tot, ca, co, o, er,
	COALESCE(string_to_array(NULLIF(v, ''), ','), '{}'), rb, sb
FROM unnest($1::uuid[], $2::text[], $3::timestamptz[], $4::text[], $5::text[], $6::text[], $7::text[], $8::text[], $9::text[], $10::text[], $11::int[], $12::bool[],
	$13::float8[], $14::float8[], $15::int8[], $16::int8[], $17::int8[], $18::int8[], $19::float8[], $20::text[], $21::text[], $22::text[], $23::text[], $24::text[])
	AS x(id, r, c, t, e, k, kn, p, m, pa, s, st, l, tt, pt, ct, tot, ca, co, o, er, v, rb, sb)
ON CONFLICT (request_id, created_at) DO NOTHING
RETURNING request_id, created_at`

// rollupSQL upserts a whole batch of rollup rows in one statement; %s is the
// table (hourly or daily). The rows come pre-aggregated (one per key: a
// statement may not update a row twice) and sorted, and are applied in that
// order (a stable lock order for concurrent ingesters). latency_hist travels
// flattened in $16, $17 buckets per row; row i's histogram is its slice.
const rollupSQL = `INSERT INTO %s AS r (tenant_id, env, bucket, provider, model, key_id, status_code, requests, errors, unknown_usage,
	prompt_tokens, completion_tokens, total_tokens, cost_usd, latency_sum_ms, latency_hist)
SELECT t::uuid, e, b, p, m, k::uuid, s, rq, er, un, pt, ct, tt, co, ls, ($16::int8[])[((i - 1) * $17 + 1)::int:(i * $17)::int]
FROM unnest($1::text[], $2::text[], $3::timestamptz[], $4::text[], $5::text[], $6::text[], $7::int[], $8::int8[], $9::int8[], $10::int8[],
	$11::int8[], $12::int8[], $13::int8[], $14::float8[], $15::float8[]) WITH ORDINALITY AS x(t, e, b, p, m, k, s, rq, er, un, pt, ct, tt, co, ls, i)
ORDER BY i
ON CONFLICT (tenant_id, env, bucket, provider, model, key_id, status_code) DO UPDATE SET
	requests = r.requests + EXCLUDED.requests, errors = r.errors + EXCLUDED.errors, unknown_usage = r.unknown_usage + EXCLUDED.unknown_usage,
	prompt_tokens = r.prompt_tokens + EXCLUDED.prompt_tokens, completion_tokens = r.completion_tokens + EXCLUDED.completion_tokens,
	total_tokens = r.total_tokens + EXCLUDED.total_tokens, cost_usd = r.cost_usd + EXCLUDED.cost_usd,
	latency_sum_ms = r.latency_sum_ms + EXCLUDED.latency_sum_ms,
	latency_hist = ARRAY(SELECT a + b FROM unnest(r.latency_hist, EXCLUDED.latency_hist) AS h(a, b))`

// violationSQL inserts the violations of a batch's new rows in one statement.
const violationSQL = `INSERT INTO violations (id, request_id, created_at, tenant_id, env, key_id, policy_id, policy_name, type, action, severity, shadow, direction,
	matches, provider, model)
SELECT id::uuid, r, c, t::uuid, e, NULLIF(k, '')::uuid, NULLIF(pi, '')::uuid, pn, ty, a, sv, sh, d, mt::jsonb, p, m
FROM unnest($1::text[], $2::text[], $3::timestamptz[], $4::text[], $5::text[], $6::text[], $7::text[], $8::text[], $9::text[], $10::text[], $11::text[],
	$12::bool[], $13::text[], $14::text[], $15::text[], $16::text[]) AS x(id, r, c, t, e, k, pi, pn, ty, a, sv, sh, d, mt, p, m)
ON CONFLICT (id, created_at) DO NOTHING`

// logKey identifies a stored log row: request id and created_at to the
// microsecond (what Postgres keeps of it).
type logKey struct {
	requestID string
	micros    int64
}

// Insert writes a batch of events in one transaction: the new log rows, then
// the rollups and violations of exactly those rows. It returns how many
// events were new; the rest were already stored (redeliveries, spool
// replays) and change nothing.
func (s *Store) Insert(ctx context.Context, evs []usage.Event) (fresh int, err error) {
	n := len(evs)
	cols := struct {
		r, t, e, k, kn, p, m, pa, o, er, v []string
		rb, sb                             []*string
		c                                  []time.Time
		s                                  []int32
		st                                 []bool
		l                                  []float64
		tt, co                             []*float64
		pt, ct, tot, ca                    []*int64
	}{}
	ids := timeOrderedIDs(evs)
	for i := range evs {
		e := &evs[i]
		vids := e.ViolationIDs
		if len(vids) == 0 {
			for _, v := range e.Violations {
				vids = append(vids, v.ID)
			}
		}
		cols.r = append(cols.r, e.RequestID)
		cols.c = append(cols.c, e.CreatedAt)
		cols.t = append(cols.t, e.TenantID)
		cols.e = append(cols.e, e.Env)
		cols.k = append(cols.k, e.KeyID)
		cols.kn = append(cols.kn, e.KeyName)
		cols.p = append(cols.p, e.Provider)
		cols.m = append(cols.m, e.Model)
		cols.pa = append(cols.pa, e.Path)
		cols.s = append(cols.s, int32(e.StatusCode))
		cols.st = append(cols.st, e.Stream)
		cols.l = append(cols.l, e.LatencyMS)
		cols.tt = append(cols.tt, e.TTFBMS)
		cols.pt = append(cols.pt, e.PromptTokens)
		cols.ct = append(cols.ct, e.CompletionTokens)
		cols.tot = append(cols.tot, e.TotalTokens)
		cols.ca = append(cols.ca, e.CachedTokens)
		cols.co = append(cols.co, e.CostUSD)
		cols.o = append(cols.o, e.Outcome)
		cols.er = append(cols.er, e.Error)
		cols.v = append(cols.v, strings.Join(vids, ","))
		cols.rb = append(cols.rb, e.RequestBody)
		cols.sb = append(cols.sb, e.ResponseBody)
	}
	err = pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		fresh = 0
		rows, err := tx.Query(ctx, insertSQL, ids, cols.r, cols.c, cols.t, cols.e, cols.k, cols.kn, cols.p, cols.m, cols.pa, cols.s, cols.st,
			cols.l, cols.tt, cols.pt, cols.ct, cols.tot, cols.ca, cols.co, cols.o, cols.er, cols.v, cols.rb, cols.sb)
		if err != nil {
			return fmt.Errorf("insert usage: %w", err)
		}
		inserted := make(map[logKey]bool, n)
		for rows.Next() {
			var id string
			var at time.Time
			if err := rows.Scan(&id, &at); err != nil {
				rows.Close()
				return err
			}
			inserted[logKey{id, at.UnixMicro()}] = true
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return fmt.Errorf("insert usage: %w", err)
		}
		fresh = len(inserted)
		if len(inserted) == 0 {
			return nil
		}
		newEvs := make([]*usage.Event, 0, len(inserted))
		for i := range evs {
			k := logKey{evs[i].RequestID, evs[i].CreatedAt.UnixMicro()}
			if inserted[k] {
				newEvs = append(newEvs, &evs[i])
				delete(inserted, k) // a batch may hold one event twice
			}
		}
		b := &pgx.Batch{}
		for _, table := range []struct {
			name string
			span time.Duration
		}{{"usage_rollups_hourly", time.Hour}, {"usage_rollups_daily", 24 * time.Hour}} {
			b.Queue(fmt.Sprintf(rollupSQL, table.name), rollupArgs(aggregate(newEvs, table.span))...)
		}
		if args := violationArgs(newEvs); args != nil {
			b.Queue(violationSQL, args...)
		}
		if err := tx.SendBatch(ctx, b).Close(); err != nil {
			return fmt.Errorf("update rollups and violations: %w", err)
		}
		return nil
	})
	return fresh, classify(err)
}

// ErrRefused marks an Insert error caused by the events themselves:
// Postgres refused their data (SQLSTATE class 22, data exception: a value
// that is not a uuid, a NUL byte, a date out of range; 23, integrity
// constraint; 54, program limit: an index entry too large). Inserting the
// same events again fails again, so the ingester isolates the culprits
// (bisecting the batch) and dead-letters them. Any other error (connection
// lost, server shutting down, lock timeout, a schema problem) is not the
// events' fault and is worth retrying as it is.
var ErrRefused = errors.New("events refused by the database")

type refusedError struct{ err error }

func (e refusedError) Error() string   { return e.err.Error() }
func (e refusedError) Unwrap() []error { return []error{e.err, ErrRefused} }

// classify marks the errors of Insert that the events caused (ErrRefused).
func classify(err error) error {
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) && len(pgErr.Code) == 5 {
		switch pgErr.Code[:2] {
		case "22", "23", "54":
			return refusedError{err}
		}
	}
	return err
}

// rollupArgs are rollupSQL's parameters for rows.
func rollupArgs(rows []*rollup) []any {
	n, w := len(rows), len(LatencyBounds)+1
	var (
		tenant, env, provider, model, key = make([]string, n), make([]string, n), make([]string, n), make([]string, n), make([]string, n)
		bucket                            = make([]time.Time, n)
		status                            = make([]int32, n)
		requests, errs, unknown           = make([]int64, n), make([]int64, n), make([]int64, n)
		prompt, completion, total         = make([]int64, n), make([]int64, n), make([]int64, n)
		cost, latency                     = make([]float64, n), make([]float64, n)
		hist                              = make([]int64, 0, n*w)
	)
	for i, r := range rows {
		tenant[i], env[i], bucket[i], provider[i], model[i], key[i], status[i] = r.tenant, r.env, r.bucket, r.provider, r.model, r.keyID, int32(r.status)
		requests[i], errs[i], unknown[i] = r.requests, r.errors, r.unknown
		prompt[i], completion[i], total[i] = r.prompt, r.completion, r.total
		cost[i], latency[i] = r.cost, r.latencySum
		hist = append(hist, r.hist...)
	}
	return []any{tenant, env, bucket, provider, model, key, status, requests, errs, unknown, prompt, completion, total, cost, latency, hist, int32(w)}
}

// violationArgs are violationSQL's parameters for the violations of evs (nil
// when there are none).
func violationArgs(evs []*usage.Event) []any {
	var id, req, tenant, env, key, policy, name, typ, action, severity, dir, matches, provider, model []string
	var at []time.Time
	var shadow []bool
	for _, e := range evs {
		for _, v := range e.Violations {
			m, _ := json.Marshal(v.Matches)
			id, req, at, tenant, env, key = append(id, v.ID), append(req, e.RequestID), append(at, e.CreatedAt), append(tenant, e.TenantID),
				append(env, e.Env), append(key, e.KeyID)
			policy, name, typ, action, severity = append(policy, v.PolicyID), append(name, v.PolicyName), append(typ, v.Type), append(action, v.Action),
				append(severity, v.Severity)
			shadow, dir, matches, provider, model = append(shadow, v.Shadow), append(dir, v.Direction), append(matches, string(m)),
				append(provider, e.Provider), append(model, e.Model)
		}
	}
	if len(id) == 0 {
		return nil
	}
	return []any{id, req, at, tenant, env, key, policy, name, typ, action, severity, shadow, dir, matches, provider, model}
}

// timeOrderedIDs returns a UUIDv7 (RFC 9562) per event: the Unix
// milliseconds of its created_at, then 74 random bits. Rows then enter the
// primary key index (id, created_at) near its end, in time order, instead
// of on a random leaf page of an index far larger than shared_buffers (and
// a full-page image in the WAL for most of those pages after a checkpoint).
func timeOrderedIDs(evs []usage.Event) []pgtype.UUID {
	ids := make([]pgtype.UUID, len(evs))
	rnd := make([]byte, 10*len(evs))
	_, _ = rand.Read(rnd) // never fails (crypto/rand panics rather)
	var ms [8]byte
	for i := range evs {
		u := &ids[i].Bytes
		binary.BigEndian.PutUint64(ms[:], uint64(evs[i].CreatedAt.UnixMilli()))
		copy(u[:6], ms[2:])
		copy(u[6:], rnd[10*i:10*i+10])
		u[6] = u[6]&0x0f | 0x70 // version 7
		u[8] = u[8]&0x3f | 0x80 // variant RFC 9562
		ids[i].Valid = true
	}
	return ids
}
