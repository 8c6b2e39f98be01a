package ingest

import (
	"bytes"
	"context"
	"encoding/json"
	"log/slog"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"trueportai/services/gateway/internal/usage"
)

// KeyToucher records when keys were last used.
type KeyToucher interface {
	TouchLastUsed(ctx context.Context, last map[string]time.Time) error
}

// Writer stores a batch of events idempotently and tells how many were new
// (analytics.Store).
type Writer interface {
	Insert(ctx context.Context, evs []usage.Event) (fresh int, err error)
}

// Ingester is a durable pull consumer writing usage events to Postgres.
type Ingester struct {
	store   Writer
	js      jetstream.JetStream
	stream  string
	durable string
	keys    KeyToucher
	log     *slog.Logger
	// batch bounds the messages of one fetch, fetchBytes their total size
	// (a message may carry up to maxBatchEvents events).
	batch      int
	fetchBytes int
	// MaxDeliver bounds redeliveries of a message that keeps failing.
	maxDeliver int
	ackWait    time.Duration
	metrics    *IngestMetrics
	// crashAfterCommit (tests only) simulates a process dying between the
	// commit and the acks: when it returns true, no ack is sent.
	crashAfterCommit func() bool
}

// NewIngester builds an ingester for stream.
func NewIngester(store Writer, js jetstream.JetStream, stream string, keys KeyToucher, log *slog.Logger) *Ingester {
	return &Ingester{store: store, js: js, stream: stream, durable: "usage-ingester", keys: keys, log: log, batch: 4000, fetchBytes: 3 << 20, maxDeliver: 10, ackWait: 10 * time.Second}
}

// SetFetchBytes bounds the bytes of one fetch (the ingester's batch memory);
// n <= 0 keeps the default (3 MiB).
func (in *Ingester) SetFetchBytes(n int) {
	if n > 0 {
		in.fetchBytes = n
	}
}

// SetMetrics makes the ingester report to m.
func (in *Ingester) SetMetrics(m *IngestMetrics) { in.metrics = m }

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
		batch, err := cons.Fetch(in.batch, jetstream.FetchMaxBytes(in.fetchBytes), jetstream.FetchMaxWait(500*time.Millisecond))
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
	evs := make([]usage.Event, 0, len(msgs))
	good := make([]jetstream.Msg, 0, len(msgs))
	for _, m := range msgs {
		// A message holds one or more newline-separated events (the
		// publisher batches under load); a line that is not a valid event
		// is dropped, a message without any valid event is terminated.
		n := 0
		for data := m.Data(); len(data) > 0; {
			line := data
			if i := bytes.IndexByte(data, '\n'); i >= 0 {
				line, data = data[:i], data[i+1:]
			} else {
				data = nil
			}
			var ev usage.Event
			if err := json.Unmarshal(line, &ev); err != nil || ev.RequestID == "" || ev.TenantID == "" {
				in.log.Error("ingester: poison usage event dropped", "bytes", len(line), "err", err)
				in.metrics.poison()
				continue
			}
			evs = append(evs, ev)
			n++
		}
		if n == 0 {
			_ = m.Term()
			continue
		}
		good = append(good, m)
	}
	if len(evs) == 0 {
		return
	}
	if md, err := msgs[len(msgs)-1].Metadata(); err == nil {
		in.metrics.pending(md.NumPending)
	}
	start := time.Now()
	fresh, err := in.store.Insert(ctx, evs)
	in.metrics.batch(time.Since(start), fresh, len(evs)-fresh, err)
	if err != nil {
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
