package ingest

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"go.opentelemetry.io/otel/trace"

	"trueportai/services/gateway/internal/analytics"
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

// batchWriter is a Writer that prepares a batch apart from storing it
// (analytics.Store): the fetch stage prepares the next batch while the
// store stage waits for the database. Writers without it (tests' wrappers
// that inject faults) get Insert.
type batchWriter interface {
	Writer
	Prepare(evs []usage.Event) *analytics.Batch
	InsertBatch(ctx context.Context, b *analytics.Batch) (fresh int, err error)
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
	// maxDeliver is the consumer's MaxDeliver: -1, unlimited. A message is
	// never dropped by JetStream: events Postgres refuses are dead-lettered
	// by the ingester itself, and while Postgres (or the dead-letter stream)
	// is unreachable a loop keeps its batch and retries, so no redelivery
	// budget can run out during an outage.
	maxDeliver int
	ackWait    time.Duration
	// retryMin and retryMax bound the backoff between attempts at a batch
	// while the database is unreachable.
	retryMin, retryMax time.Duration
	metrics            *IngestMetrics
	// duty (0 < duty ≤ 1) is the share of time a loop may spend on batches
	// while its backlog is under maxLag events: after a batch that took d
	// it pauses d·(1/duty − 1). In a process that also proxies, this leaves
	// the CPU to the proxy during bursts; the events wait in the stream and
	// above maxLag the loop runs flat out. 1: never pauses.
	duty   float64
	maxLag int
	// busyRate (usage messages a second) and maxDelay are the deferral
	// (traffic.go): while messages arrive at busyRate or more, a loop waits
	// up to maxDelay before it fetches. maxDelay 0: it never waits.
	busyRate float64
	maxDelay time.Duration
	// touched is when each key's last_used_at was last written: a key is
	// written again only touchEvery later, not at every batch (400 keys in
	// traffic were 400 row updates, and as many dead tuples, per batch).
	touchMu sync.Mutex
	touched map[string]time.Time
	// cycle is held for reading by each loop from its fetch to its acks,
	// and for writing by the trim on a nats-server whose partial purge
	// loses ack-pending state (see trim).
	cycle sync.RWMutex
	// deadLetters is the subject of the dead-letter stream.
	deadLetters string
	// ensure creates the streams when the consumer cannot be created
	// (NATS was unreachable when the process started); nil: never.
	ensure func(context.Context) error
	// crashAfterCommit (tests only) simulates a process dying between the
	// commit and the acks: when it returns true, no ack is sent.
	crashAfterCommit func() bool
	// tracer records insert spans (trace.go); nil: tracing off.
	tracer trace.Tracer
}

// NewIngester builds an ingester for stream.
func NewIngester(store Writer, js jetstream.JetStream, stream string, keys KeyToucher, log *slog.Logger) *Ingester {
	return &Ingester{store: store, js: js, stream: stream, durable: "usage-ingester", keys: keys, log: log, batch: 4000, fetchBytes: 3 << 20,
		maxDeliver: -1, ackWait: 10 * time.Second, retryMin: 250 * time.Millisecond, retryMax: 5 * time.Second, duty: 1}
}

// touchEvery is the precision of a key's last_used_at.
const touchEvery = time.Minute

// dueTouches removes from last the keys whose last_used_at was written
// less than touchEvery before their new time, and notes the others as
// written.
func (in *Ingester) dueTouches(last map[string]time.Time) map[string]time.Time {
	in.touchMu.Lock()
	defer in.touchMu.Unlock()
	if in.touched == nil {
		in.touched = map[string]time.Time{}
	}
	for id, t := range last {
		if prev, ok := in.touched[id]; ok && t.Sub(prev) < touchEvery {
			delete(last, id)
			continue
		}
		in.touched[id] = t
	}
	return last
}

// SetPacing makes each loop spend at most duty of its time on batches
// while fewer than maxLag events wait in the stream (duty ≥ 1 or ≤ 0: no
// pause).
func (in *Ingester) SetPacing(duty float64, maxLag int) {
	if duty <= 0 || duty > 1 {
		duty = 1
	}
	in.duty, in.maxLag = duty, maxLag
}

// pacing is the pause after the batch msgs that took took.
func (in *Ingester) pacing(took time.Duration, msgs []jetstream.Msg) time.Duration {
	if in.duty >= 1 {
		return 0
	}
	events := 0
	for _, m := range msgs {
		events += bytes.Count(m.Data(), []byte{'\n'}) + 1
	}
	var pending uint64
	if md, err := msgs[len(msgs)-1].Metadata(); err == nil {
		pending = md.NumPending
	}
	return in.pause(took, events, len(msgs), pending)
}

// pause is how long a loop rests after a batch of events events (out of
// msgs messages) that took took, with pending messages still in the stream.
func (in *Ingester) pause(took time.Duration, events, msgs int, pending uint64) time.Duration {
	if in.duty >= 1 || msgs == 0 {
		return 0
	}
	// The backlog in events, estimated from this batch's events per message.
	if lag := float64(pending) * float64(events) / float64(msgs); lag >= float64(in.maxLag) {
		return 0
	}
	return min(time.Duration(float64(took)*(1/in.duty-1)), 2*time.Second)
}

// SetFetchBytes bounds the bytes of one fetch (the ingester's batch memory);
// n <= 0 keeps the default (3 MiB).
func (in *Ingester) SetFetchBytes(n int) {
	if n > 0 {
		in.fetchBytes = n
	}
}

// SetDeadLetters makes the ingester park the events it cannot store (lines
// that are not events, events Postgres refuses) in the dead-letter stream
// on subject; without it they are logged and dropped.
func (in *Ingester) SetDeadLetters(subject string) { in.deadLetters = subject }

// SetStreams makes the ingester consume s's usage stream, park what it
// cannot store in s's dead-letter stream, and create both (EnsureStreams)
// when its consumer cannot be created.
func (in *Ingester) SetStreams(s usage.Streams) {
	in.stream, in.deadLetters = s.Name, s.DeadLetterSubject
	in.ensure = func(ctx context.Context) error { return usage.EnsureStreams(ctx, in.js, s) }
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
		if in.ensure != nil {
			ectx, cancel := context.WithTimeout(ctx, 5*time.Second)
			if err := in.ensure(ectx); err != nil {
				in.log.Warn("ingester: usage streams not ensured", "err", err)
			}
			cancel()
		}
		select {
		case <-ctx.Done():
			return nil
		case <-time.After(time.Second):
		}
	}
	// One loop in two stages: while a batch is stored, the next one is
	// fetched and decoded (one batch ahead at most, its messages kept in
	// progress), so the database's work overlaps NATS's and the decoding.
	next := make(chan *fetched)
	var wg sync.WaitGroup
	wg.Go(func() {
		defer close(next)
		in.fetchLoop(ctx, cons, next)
	})
	for b := range next {
		if d := in.storeBatch(ctx, b); d > 0 {
			select {
			case <-ctx.Done():
			case <-time.After(d):
			}
		}
	}
	wg.Wait()
	return nil
}

// fetched is a batch fetched and decoded, waiting to be stored. Its loop
// holds cycle for reading from the fetch until the batch is acked (or
// handed back).
type fetched struct {
	msgs []jetstream.Msg
	evs  []usage.Event
	from []origin
	dead []deadLetter
	// prep is evs prepared for a batchWriter (nil for other writers).
	prep *analytics.Batch
	// stopKeepAlive ends the in-progress signals that keep the batch's
	// messages from redelivery while it waits and while it is stored.
	stopKeepAlive func()
}

// fetchLoop fetches and decodes batches and hands them to out, one at a
// time, until ctx ends. A batch it cannot hand over is handed back to
// JetStream for redelivery.
func (in *Ingester) fetchLoop(ctx context.Context, cons jetstream.Consumer, out chan<- *fetched) {
	var t traffic
	for ctx.Err() == nil {
		if !in.awaitQuiet(ctx, cons, &t) {
			return
		}
		in.cycle.RLock()
		b, wait := in.fetch(cons)
		if b == nil {
			if wait == 0 {
				t.fetchedNothing(time.Now())
			}
			in.cycle.RUnlock()
			if wait > 0 {
				select {
				case <-ctx.Done():
				case <-time.After(wait):
				}
			}
			continue
		}
		select {
		case out <- b:
		case <-ctx.Done():
			b.stopKeepAlive()
			nakAll(b.msgs)
			in.cycle.RUnlock()
			return
		}
	}
}

// fetchWait is how long a fetch waits for messages to arrive (deferPoll
// with a deferral: traffic.go).
const fetchWait = 500 * time.Millisecond

// fetch fetches a batch and decodes it; with no batch it returns how long
// to wait before the next fetch.
//
// A batch holds at most fetchBytes of messages, or one message when the
// next one alone is larger (a usage message may be up to the server's
// max_payload, 1 MiB by default, while role all fetches less): JetStream
// then ends the fetch at once with nothing (409 "Message Size Exceeds
// MaxBytes", which nats.go's Fetch does not report as an error), and every
// later fetch would too, stalling ingestion behind that message. An empty
// fetch that ended early without an error is that case: the next message
// is fetched alone, with no byte bound.
func (in *Ingester) fetch(cons jetstream.Consumer) (*fetched, time.Duration) {
	wait := fetchWait
	if in.maxDelay > 0 { // deferring: see a burst soon (traffic.go)
		wait = deferPoll
	}
	start := time.Now()
	batch, err := cons.Fetch(in.batch, jetstream.FetchMaxBytes(in.fetchBytes), jetstream.FetchMaxWait(wait))
	if err != nil {
		return nil, 200 * time.Millisecond
	}
	msgs := received(batch)
	if len(msgs) == 0 && batch.Error() == nil && time.Since(start) < wait/2 {
		if batch, err = cons.Fetch(1, jetstream.FetchMaxWait(fetchWait)); err == nil {
			msgs = received(batch)
		}
	}
	if len(msgs) == 0 {
		return nil, 0
	}
	return in.decodeBatch(msgs), 0
}

// received collects a fetch's messages.
func received(batch jetstream.MessageBatch) []jetstream.Msg {
	var msgs []jetstream.Msg
	for m := range batch.Messages() {
		msgs = append(msgs, m)
	}
	return msgs
}

// storeBatch stores and acks a fetched batch and releases the loop's hold on
// cycle; it returns how long to wait before the next batch (pacing).
func (in *Ingester) storeBatch(ctx context.Context, b *fetched) time.Duration {
	defer in.cycle.RUnlock()
	start := time.Now()
	in.handle(context.WithoutCancel(ctx), ctx, b)
	return in.pacing(time.Since(start), b.msgs)
}

// origin is where an event of a batch came from: its line as received and
// the usage stream sequence of its message.
type origin struct {
	line []byte
	seq  uint64
}

// deadLetter is an event (or a line that is not one) to park in the
// dead-letter stream.
type deadLetter struct {
	stage string
	origin
	err error
}

// decodeBatch decodes the events of msgs and starts keeping the messages
// in progress (a batch may wait for the one before it, and an outage may
// last minutes).
func (in *Ingester) decodeBatch(msgs []jetstream.Msg) *fetched {
	// A message holds up to the publisher's 256 events, one a line: sized
	// once, the slices do not grow through copies of themselves (a batch's
	// events are hundreds of KB).
	n := 0
	for _, m := range msgs {
		n += bytes.Count(m.Data(), []byte{'\n'}) + 1
	}
	b := &fetched{msgs: msgs, evs: make([]usage.Event, 0, n), from: make([]origin, 0, n)}
	for _, m := range msgs {
		var seq uint64
		if md, err := m.Metadata(); err == nil {
			seq = md.Sequence.Stream
		}
		// A message holds one or more newline-separated events (the
		// publisher batches under load). A line that is not a valid event
		// goes to the dead-letter stream; the others are stored.
		for data := m.Data(); len(data) > 0; {
			line := data
			if i := bytes.IndexByte(data, '\n'); i >= 0 {
				line, data = data[:i], data[i+1:]
			} else {
				data = nil
			}
			if len(line) == 0 {
				continue
			}
			ev, err := decode(line)
			if err != nil {
				b.dead = append(b.dead, deadLetter{usage.StageDecode, origin{line, seq}, err})
				continue
			}
			b.evs = append(b.evs, ev)
			b.from = append(b.from, origin{line, seq})
		}
	}
	if md, err := msgs[len(msgs)-1].Metadata(); err == nil {
		in.metrics.pending(md.NumPending)
	}
	if bw, ok := in.store.(batchWriter); ok {
		b.prep = bw.Prepare(b.evs)
	}
	b.stopKeepAlive = keepAlive(msgs, in.ackWait/2)
	return b
}

// handle stores a fetched batch and acks it. ctx outlives shutdown (a batch
// being stored commits and acks); stop is the loop's own context: when it
// ends while the batch waits for the database, the batch is left to be
// redelivered.
func (in *Ingester) handle(ctx, stop context.Context, b *fetched) {
	msgs, evs, from, dead, stopKeepAlive := b.msgs, b.evs, b.from, b.dead, b.stopKeepAlive
	defer stopKeepAlive()
	// Tracing on: the batch's insert span in each sampled request's trace.
	spans := in.startInsertSpans(ctx, msgs, len(evs)) // trace.go
	nStored, failure := 0, "stopped before the batch was stored: left for redelivery"
	defer func() { endInsertSpans(spans, nStored, len(dead), failure) }()
	var refused []refusal
	if !in.retry(stop, "store usage events", func() (err error) {
		refused, err = in.insert(ctx, evs, b.prep, 0)
		return err
	}) {
		nakAll(msgs)
		return
	}
	stored := evs
	if len(refused) > 0 {
		stored = make([]usage.Event, 0, len(evs)-len(refused))
		bad := make(map[int]bool, len(refused))
		for _, r := range refused {
			bad[r.index] = true
			dead = append(dead, deadLetter{usage.StageInsert, from[r.index], r.err})
		}
		for i := range evs {
			if !bad[i] {
				stored = append(stored, evs[i])
			}
		}
	}
	if !in.retry(stop, "store dead letters", func() error { return in.deadLetter(ctx, dead) }) {
		nakAll(msgs)
		return
	}
	stopKeepAlive()
	if in.crashAfterCommit != nil && in.crashAfterCommit() {
		return
	}
	for _, m := range msgs {
		_ = m.Ack()
	}
	nStored, failure = len(stored), ""
	last := map[string]time.Time{}
	for _, ev := range stored {
		if ev.KeyID != "" && ev.CreatedAt.After(last[ev.KeyID]) {
			last[ev.KeyID] = ev.CreatedAt
		}
	}
	if last = in.dueTouches(last); len(last) > 0 {
		if err := in.keys.TouchLastUsed(ctx, last); err != nil {
			in.log.Warn("ingester: update last_used_at failed", "err", err)
		}
	}
}

// retry runs f until it succeeds, waiting between attempts from retryMin,
// doubling up to retryMax; it returns false, without waiting further, once
// stop ends. Errors f returns are never the events' fault (those are
// dead-lettered): a database or NATS outage, which retrying outlasts.
func (in *Ingester) retry(stop context.Context, what string, f func() error) bool {
	wait := in.retryMin
	for attempt := 1; ; attempt++ {
		err := f()
		if err == nil {
			if attempt > 1 {
				in.log.Info("ingester: "+what+" succeeded after retries", "attempts", attempt)
			}
			return true
		}
		in.metrics.waiting(true)
		if attempt == 1 || attempt%10 == 0 {
			in.log.Warn("ingester: "+what+" failed; keeping the batch and retrying", "attempt", attempt, "err", err)
		}
		select {
		case <-stop.Done():
			in.metrics.waiting(false)
			return false
		case <-time.After(wait):
		}
		in.metrics.waiting(false)
		wait = min(2*wait, in.retryMax)
	}
}

// keepAlive tells JetStream every interval that msgs are being worked on,
// until the returned function is called (idempotent; it waits for the
// last signal to be sent).
func keepAlive(msgs []jetstream.Msg, interval time.Duration) (stop func()) {
	done := make(chan struct{})
	var wg sync.WaitGroup
	wg.Go(func() {
		t := time.NewTicker(interval)
		defer t.Stop()
		for {
			select {
			case <-done:
				return
			case <-t.C:
				for _, m := range msgs {
					_ = m.InProgress()
				}
			}
		}
	})
	var once sync.Once
	return func() { once.Do(func() { close(done); wg.Wait() }) }
}

// nakAll hands msgs back for redelivery (a loop stopping mid-outage).
func nakAll(msgs []jetstream.Msg) {
	for _, m := range msgs {
		_ = m.Nak()
	}
}

// decode reads one line as a usage event, in either encoding (binary from
// current publishers, JSON from older ones during a rolling deploy, from
// their spool files and from replayed dead letters), and sanitises it
// (events of a gateway that did not sanitise, or written by another
// publisher, are stored the same way as current ones).
func decode(line []byte) (usage.Event, error) {
	ev, err := usage.Decode(line)
	if err != nil {
		return ev, fmt.Errorf("not a usage event: %w", err)
	}
	if ev.RequestID == "" || ev.TenantID == "" {
		return ev, errors.New("not a usage event: request_id or tenant_id missing")
	}
	ev.Sanitize()
	return ev, nil
}

// refusal is an event of a batch that Postgres refused, by its index.
type refusal struct {
	index int
	err   error
}

// insert stores evs (evs[0] being the batch's event number base; prep,
// when not nil, is evs prepared for a batchWriter). When
// Postgres refuses the batch for its data (analytics.ErrRefused), it halves
// the batch and stores each half, down to single events, so the events
// that are refused are found and the others stored: one bad event costs
// about 2·log2(n) more statements, never the batch. Other errors are
// returned as they are, with the halves stored so far kept (the insert is
// idempotent, a retry stores the rest).
func (in *Ingester) insert(ctx context.Context, evs []usage.Event, prep *analytics.Batch, base int) ([]refusal, error) {
	if len(evs) == 0 {
		return nil, nil
	}
	start := time.Now()
	var fresh int
	var err error
	if prep != nil { // only a batchWriter's batches are prepared
		fresh, err = in.store.(batchWriter).InsertBatch(ctx, prep)
	} else {
		fresh, err = in.store.Insert(ctx, evs)
	}
	in.metrics.batch(time.Since(start), fresh, len(evs)-fresh, err)
	switch {
	case err == nil:
		return nil, nil
	case !errors.Is(err, analytics.ErrRefused):
		return nil, err
	case len(evs) == 1:
		in.log.Warn("ingester: event refused by the database; dead-lettered", "request_id", evs[0].RequestID, "tenant_id", evs[0].TenantID, "err", err)
		return []refusal{{base, err}}, nil
	}
	mid := len(evs) / 2
	left, err := in.insert(ctx, evs[:mid], nil, base)
	if err != nil {
		return nil, err
	}
	right, err := in.insert(ctx, evs[mid:], nil, base+mid)
	if err != nil {
		return nil, err
	}
	return append(left, right...), nil
}

// deadLetter stores dead in the dead-letter stream (each waits for its
// ack; a redelivered message's dead letters are deduplicated by their
// Nats-Msg-Id). Without a dead-letter stream they are logged and dropped.
func (in *Ingester) deadLetter(ctx context.Context, dead []deadLetter) error {
	limit := usage.MessageLimit(in.js.Conn())
	for _, d := range dead {
		in.log.Error("ingester: usage event dead-lettered", "stage", d.stage, "stream_seq", d.seq, "bytes", len(d.line), "err", d.err)
		if in.deadLetters != "" {
			dl := usage.NewDeadLetter(d.stage, d.line, d.err, d.seq, limit)
			pctx, cancel := context.WithTimeout(ctx, 5*time.Second)
			err := usage.PublishDeadLetter(pctx, in.js, in.deadLetters, dl, usage.DeadLetterMsgID(d.stage, d.line, d.seq))
			cancel()
			if err != nil {
				return err
			}
		}
		in.metrics.deadLettered(d.stage)
	}
	return nil
}
