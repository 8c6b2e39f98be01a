package usage

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
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
	return &Ingester{pool: pool, js: js, stream: stream, durable: "usage-ingester", keys: keys, log: log, batch: 1000, maxDeliver: 10, ackWait: 10 * time.Second}
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

const insertSQL = `INSERT INTO usage_logs (request_id, created_at, tenant_id, env, key_id, key_name, provider, model, path, status_code, stream,
	latency_ms, ttfb_ms, prompt_tokens, completion_tokens, total_tokens, cached_tokens, cost_usd, outcome, error, violation_ids, request_body, response_body)
VALUES ($1, $2, $3, $4, NULLIF($5, '')::uuid, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18, $19, $20, $21, $22, $23)
ON CONFLICT (request_id) DO NOTHING`

// insert writes events in one transaction; duplicates are ignored.
func (in *Ingester) insert(ctx context.Context, evs []Event) error {
	return pgx.BeginFunc(ctx, in.pool, func(tx pgx.Tx) error {
		b := &pgx.Batch{}
		for _, e := range evs {
			vids := e.ViolationIDs
			if vids == nil {
				vids = []string{}
			}
			b.Queue(insertSQL, e.RequestID, e.CreatedAt, e.TenantID, e.Env, e.KeyID, e.KeyName, e.Provider, e.Model, e.Path, e.StatusCode, e.Stream,
				e.LatencyMS, e.TTFBMS, e.PromptTokens, e.CompletionTokens, e.TotalTokens, e.CachedTokens, e.CostUSD, e.Outcome, e.Error, vids, e.RequestBody, e.ResponseBody)
		}
		br := tx.SendBatch(ctx, b)
		for range evs {
			if _, err := br.Exec(); err != nil {
				_ = br.Close()
				return fmt.Errorf("insert usage: %w", err)
			}
		}
		return br.Close()
	})
}
