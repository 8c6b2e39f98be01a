package usage

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/nats-io/nats.go/jetstream"
)

// KeyToucher records when keys were last used.
type KeyToucher interface {
	TouchLastUsed(ctx context.Context, last map[string]time.Time) error
}

// Ingester is a durable pull consumer writing usage events to Postgres.
type Ingester struct {
	pool    *pgxpool.Pool
	js      jetstream.JetStream
	stream  string
	durable string
	keys    KeyToucher
	log     *slog.Logger
	batch   int
	// MaxDeliver bounds redeliveries of a message that keeps failing.
	maxDeliver int
	ackWait    time.Duration
	// crashAfterCommit (tests only) simulates a process dying between the
	// commit and the acks: when it returns true, no ack is sent.
	crashAfterCommit func() bool
}

// NewIngester builds an ingester for stream.
func NewIngester(pool *pgxpool.Pool, js jetstream.JetStream, stream string, keys KeyToucher, log *slog.Logger) *Ingester {
	return &Ingester{pool: pool, js: js, stream: stream, durable: "usage-ingester", keys: keys, log: log, batch: 4000, maxDeliver: 10, ackWait: 10 * time.Second}
}

// Run consumes until ctx ends.
func (in *Ingester) Run(ctx context.Context) error {
	var cons jetstream.Consumer
	for {
		var err error
		cons, err = in.js.CreateOrUpdateConsumer(ctx, in.stream, jetstream.ConsumerConfig{
			Durable: in.durable, AckPolicy: jetstream.AckExplicitPolicy, AckWait: in.ackWait,
			MaxDeliver: in.maxDeliver, MaxAckPending: 20000, DeliverPolicy: jetstream.DeliverAllPolicy,
		})
		if err == nil {
			break
		}
		in.log.Warn("ingester: create consumer failed, retrying", "err", err)
		select {
		case <-ctx.Done():
			return nil
		case <-time.After(time.Second):
		}
	}
	for ctx.Err() == nil {
		batch, err := cons.Fetch(in.batch, jetstream.FetchMaxWait(500*time.Millisecond))
		if err != nil {
			select {
			case <-ctx.Done():
			case <-time.After(200 * time.Millisecond):
			}
			continue
		}
		var msgs []jetstream.Msg
		for m := range batch.Messages() {
			msgs = append(msgs, m)
		}
		if len(msgs) > 0 {
			in.handle(context.WithoutCancel(ctx), msgs)
		}
	}
	return nil
}

func (in *Ingester) handle(ctx context.Context, msgs []jetstream.Msg) {
	evs := make([]Event, 0, len(msgs))
	good := make([]jetstream.Msg, 0, len(msgs))
	for _, m := range msgs {
		var ev Event
		if err := json.Unmarshal(m.Data(), &ev); err != nil || ev.RequestID == "" || ev.TenantID == "" {
			in.log.Error("ingester: poison usage message terminated", "err", err)
			_ = m.Term()
			continue
		}
		evs = append(evs, ev)
		good = append(good, m)
	}
	if len(evs) == 0 {
		return
	}
	if err := in.insert(ctx, evs); err != nil {
		in.log.Error("ingester: insert failed, will redeliver", "events", len(evs), "err", err)
		for _, m := range good {
			_ = m.NakWithDelay(2 * time.Second)
		}
		return
	}
	if in.crashAfterCommit != nil && in.crashAfterCommit() {
		return
	}
	for _, m := range good {
		_ = m.Ack()
	}
	last := map[string]time.Time{}
	for _, ev := range evs {
		if ev.KeyID != "" && ev.CreatedAt.After(last[ev.KeyID]) {
			last[ev.KeyID] = ev.CreatedAt
		}
	}
	if err := in.keys.TouchLastUsed(ctx, last); err != nil {
		in.log.Warn("ingester: update last_used_at failed", "err", err)
	}
}

// insertSQL inserts a batch from column arrays; existing request ids are
// skipped and only newly inserted ids are returned (rollups and violations
// are written for those alone, so redeliveries never double count).
const insertSQL = `INSERT INTO usage_logs (request_id, created_at, tenant_id, env, key_id, key_name, provider, model, path, status_code, stream,
	latency_ms, ttfb_ms, prompt_tokens, completion_tokens, total_tokens, cached_tokens, cost_usd, outcome, error, violation_ids, request_body, response_body)
SELECT r, c, t::uuid, e, NULLIF(k, '')::uuid, kn, p, m, pa, s, st, l, tt, pt, ct, tot, ca, co, o, er,
	COALESCE(string_to_array(NULLIF(v, ''), ','), '{}'), rb, sb
FROM unnest($1::text[], $2::timestamptz[], $3::text[], $4::text[], $5::text[], $6::text[], $7::text[], $8::text[], $9::text[], $10::int[], $11::bool[],
	$12::float8[], $13::float8[], $14::int8[], $15::int8[], $16::int8[], $17::int8[], $18::float8[], $19::text[], $20::text[], $21::text[], $22::text[], $23::text[])
	AS x(r, c, t, e, k, kn, p, m, pa, s, st, l, tt, pt, ct, tot, ca, co, o, er, v, rb, sb)
ON CONFLICT (request_id) DO NOTHING
RETURNING request_id`

// rollupSQL upserts one rollup row; %s is the table (hourly or daily).
const rollupSQL = `INSERT INTO %s AS r (tenant_id, env, bucket, provider, model, key_id, status_code, requests, errors, unknown_usage,
	prompt_tokens, completion_tokens, total_tokens, cost_usd, latency_sum_ms, latency_hist)
VALUES ($1::uuid, $2, $3, $4, $5, $6::uuid, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16)
ON CONFLICT (tenant_id, env, bucket, provider, model, key_id, status_code) DO UPDATE SET
	requests = r.requests + EXCLUDED.requests, errors = r.errors + EXCLUDED.errors, unknown_usage = r.unknown_usage + EXCLUDED.unknown_usage,
	prompt_tokens = r.prompt_tokens + EXCLUDED.prompt_tokens, completion_tokens = r.completion_tokens + EXCLUDED.completion_tokens,
	total_tokens = r.total_tokens + EXCLUDED.total_tokens, cost_usd = r.cost_usd + EXCLUDED.cost_usd,
	latency_sum_ms = r.latency_sum_ms + EXCLUDED.latency_sum_ms,
	latency_hist = ARRAY(SELECT a + b FROM unnest(r.latency_hist, EXCLUDED.latency_hist) AS h(a, b))`

const violationSQL = `INSERT INTO violations (id, request_id, created_at, tenant_id, env, key_id, policy_id, policy_name, type, action, severity, shadow, direction, matches, provider, model)
VALUES ($1::uuid, $2, $3, $4::uuid, $5, NULLIF($6, '')::uuid, NULLIF($7, '')::uuid, $8, $9, $10, $11, $12, $13, $14, $15, $16)
ON CONFLICT (id) DO NOTHING`

// insert writes a batch in one transaction: new log rows, then rollups and
// violations of exactly those rows.
func (in *Ingester) insert(ctx context.Context, evs []Event) error {
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
	for i := range evs {
		e := &evs[i]
		ids := e.ViolationIDs
		if len(ids) == 0 {
			for _, v := range e.Violations {
				ids = append(ids, v.ID)
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
		cols.v = append(cols.v, strings.Join(ids, ","))
		cols.rb = append(cols.rb, e.RequestBody)
		cols.sb = append(cols.sb, e.ResponseBody)
	}
	return pgx.BeginFunc(ctx, in.pool, func(tx pgx.Tx) error {
		rows, err := tx.Query(ctx, insertSQL, cols.r, cols.c, cols.t, cols.e, cols.k, cols.kn, cols.p, cols.m, cols.pa, cols.s, cols.st,
			cols.l, cols.tt, cols.pt, cols.ct, cols.tot, cols.ca, cols.co, cols.o, cols.er, cols.v, cols.rb, cols.sb)
		if err != nil {
			return fmt.Errorf("insert usage: %w", err)
		}
		inserted := make(map[string]bool, n)
		for rows.Next() {
			var id string
			if err := rows.Scan(&id); err != nil {
				rows.Close()
				return err
			}
			inserted[id] = true
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return fmt.Errorf("insert usage: %w", err)
		}
		if len(inserted) == 0 {
			return nil
		}
		fresh := make([]*Event, 0, len(inserted))
		for i := range evs {
			if inserted[evs[i].RequestID] {
				fresh = append(fresh, &evs[i])
				delete(inserted, evs[i].RequestID) // a batch may hold one id twice
			}
		}
		b := &pgx.Batch{}
		for _, table := range []struct {
			name string
			span time.Duration
		}{{"usage_rollups_hourly", time.Hour}, {"usage_rollups_daily", 24 * time.Hour}} {
			q := fmt.Sprintf(rollupSQL, table.name)
			for _, r := range aggregate(fresh, table.span) {
				b.Queue(q, r.tenant, r.env, r.bucket, r.provider, r.model, r.keyID, r.status, r.requests, r.errors, r.unknown,
					r.prompt, r.completion, r.total, r.cost, r.latencySum, r.hist)
			}
		}
		for _, e := range fresh {
			for _, v := range e.Violations {
				matches, _ := json.Marshal(v.Matches)
				b.Queue(violationSQL, v.ID, e.RequestID, e.CreatedAt, e.TenantID, e.Env, e.KeyID, v.PolicyID, v.PolicyName, v.Type, v.Action,
					v.Severity, v.Shadow, v.Direction, matches, e.Provider, e.Model)
			}
		}
		if err := tx.SendBatch(ctx, b).Close(); err != nil {
			return fmt.Errorf("update rollups: %w", err)
		}
		return nil
	})
}
