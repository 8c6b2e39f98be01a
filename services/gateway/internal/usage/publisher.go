package usage

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"hash/fnv"
	"log/slog"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"golang.org/x/sync/semaphore"

	"trueportai/services/gateway/internal/journal"
)

// Publisher sends events to JetStream off the request path with async
// publishes (bounded pending acks). Publish never blocks on the network:
// events queue in memory, and whatever JetStream does not acknowledge (error,
// timeout, disconnect) goes to the spool, replayed when NATS is back.
//
// With a journal (SetJournal), Publish also copies each encoded event into
// it before queueing it, and releases it once JetStream acknowledged it or
// the spool holds it: a process killed outright leaves its unacknowledged
// events in the journal, which the next start replays (docs/decisions.md,
// "Usage journal").
type Publisher struct {
	nc      *nats.Conn
	js      jetstream.JetStream
	subject string
	spool   *Spool
	log     *slog.Logger
	queue   chan queued
	journal *journal.Journal
	// limit caches MessageLimit(nc) for Publish (reading it takes the
	// connection's lock, which its writer holds while it writes to the
	// socket); the sender refreshes it.
	limit atomic.Int64

	// acks holds the journal references of each message awaiting its
	// JetStream ack, by Nats-Msg-Id.
	acksMu sync.Mutex
	acks   map[string]journal.Refs

	mu     sync.RWMutex // guards closed against Publish racing Close
	closed bool
	wg     sync.WaitGroup

	// inflight bounds the bytes of messages awaiting their JetStream ack
	// (batches make the message count a poor bound on memory).
	inflight *semaphore.Weighted

	// deadLetters is the subject of the dead-letter stream, where spooled
	// lines that cannot be made publishable go (empty: they are logged and
	// dropped).
	deadLetters string
	// streams, when set, are ensured from the replay tick until that
	// succeeds once (NATS unreachable at start: nobody else creates them).
	streams       *Streams
	streamsExist  atomic.Bool
	lastEnsureLog time.Time // replay tick only

	published, spooled, lost, sanitised, deadLettered atomic.Int64
	lastSpoolLog, lastSanitiseLog                     atomic.Int64 // unix ns
}

// queued is an event on its way to JetStream: encoded, with its journal
// reference.
type queued struct {
	data []byte
	id   string
	ref  journal.Ref
	tp   string // the event's trace context when sampled (trace.go)
}

// queueEvents is the capacity of the queue between Publish and the sender.
// The sender takes what arrived within batchLinger (at most
// maxBatchEvents) at a time, so in normal operation the queue holds one
// linger's events (about 70 at 7 000 req/s); the rest of its room absorbs a
// sender stalled on the in-flight budget (stallWait) before Publish spools
// on the request goroutine. It was 16 384: the buffer (64 bytes a slot) is
// one live 1 MiB object whose every page a ring buffer touches in turn,
// which with GOGC's 100 % of garbage on top cost the process about 2 MiB of
// RSS (docs/benchmarks.md, "Issue 13: RSS, fourth session"); 4 096 is
// 16 batches and 256 KiB.
const queueEvents = 16 * maxBatchEvents

// ackTimeout bounds the wait for one JetStream ack before the event spools.
const ackTimeout = 5 * time.Second

// maxInflightBytes bounds the message bytes awaiting acks; a send waits for
// room up to stallWait, then spools.
const (
	maxInflightBytes = 16 << 20
	stallWait        = time.Second
)

// weight is what a message of n bytes holds of the in-flight budget.
func weight(n int) int64 { return int64(min(n, maxInflightBytes)) }

// NewPublisher builds a publisher on nc; call Run to start it.
func NewPublisher(nc *nats.Conn, subject string, spool *Spool, log *slog.Logger) (*Publisher, error) {
	p := &Publisher{nc: nc, subject: subject, spool: spool, log: log, queue: make(chan queued, queueEvents),
		inflight: semaphore.NewWeighted(maxInflightBytes), acks: map[string]journal.Refs{}}
	p.limit.Store(int64(MessageLimit(nc)))
	js, err := jetstream.New(nc,
		jetstream.WithPublishAsyncMaxPending(8192),
		jetstream.WithPublishAsyncTimeout(ackTimeout),
		jetstream.WithPublishAsyncAckHandler(func(_ jetstream.JetStream, m *nats.Msg, _ *jetstream.PubAck) {
			p.inflight.Release(weight(len(m.Data)))
			p.published.Add(int64(eventCount(m.Data)))
			p.takeRefs(m.Header.Get(jetstream.MsgIDHeader)).Release()
		}),
		jetstream.WithPublishAsyncErrHandler(func(_ jetstream.JetStream, m *nats.Msg, err error) {
			p.inflight.Release(weight(len(m.Data)))
			id := m.Header.Get(jetstream.MsgIDHeader)
			p.spoolRaw(id, m.Data, p.takeRefs(id), err)
		}),
	)
	if err != nil {
		return nil, fmt.Errorf("jetstream: %w", err)
	}
	p.js = js
	return p, nil
}

// Publish encodes ev (sanitised, fitted to the server's message size),
// journals it when there is a journal, and queues it; when the queue is
// full, or the publisher is closing, it is spooled synchronously (never
// dropped). Publish owns ev: it may change it (Sanitize).
func (p *Publisher) Publish(ev *Event) {
	b, ok := p.encode(ev, int(p.limit.Load()))
	if !ok {
		return
	}
	ref := p.journal.Append(b)
	p.mu.RLock()
	defer p.mu.RUnlock()
	if p.closed {
		p.toSpool(queued{b, ev.RequestID, ref, ev.Traceparent}, errors.New("publisher closed"))
		return
	}
	select {
	case p.queue <- queued{b, ev.RequestID, ref, ev.Traceparent}:
	default:
		p.toSpool(queued{b, ev.RequestID, ref, ev.Traceparent}, errors.New("queue full"))
	}
}

// SetJournal makes Publish journal every event in j (before Run).
func (p *Publisher) SetJournal(j *journal.Journal) { p.journal = j }

// SetDeadLetters makes spool replay send the lines it cannot publish to the
// dead-letter stream on subject instead of dropping them.
func (p *Publisher) SetDeadLetters(subject string) { p.deadLetters = subject }

// SetStreams makes the publisher create or update s (EnsureStreams) once
// NATS is reachable, retrying every second until it succeeds, and use s's
// dead-letter stream for spooled lines it cannot publish. Without it, a
// gateway that started while NATS was down published into streams nobody
// created, and spooled every event until the spool was full.
func (p *Publisher) SetStreams(s Streams) {
	p.streams = &s
	p.deadLetters = s.DeadLetterSubject
}

// Stats reports counters (acknowledged by JetStream, spooled, lost).
func (p *Publisher) Stats() (published, spooled, lost int64) {
	return p.published.Load(), p.spooled.Load(), p.lost.Load()
}

// Counters are the publisher's totals since start.
type Counters struct {
	Published    int64 // acknowledged by JetStream
	Spooled      int64 // written to the spool (NATS unreachable, slow or refusing)
	Lost         int64 // neither published nor spooled (spool full, disk full)
	Sanitised    int64 // events cut or cleaned to be storable (Event.Sanitize, Encode)
	DeadLettered int64 // spooled lines sent to the dead-letter stream
}

// Counters reports the publisher's totals.
func (p *Publisher) Counters() Counters {
	return Counters{Published: p.published.Load(), Spooled: p.spooled.Load(), Lost: p.lost.Load(),
		Sanitised: p.sanitised.Load(), DeadLettered: p.deadLettered.Load()}
}

// Run starts the sender and the spool replayer; it returns after Close
// once every queued event is acknowledged or spooled.
func (p *Publisher) Run(ctx context.Context) {
	p.wg.Add(1)
	go func() { defer p.wg.Done(); p.sendLoop() }()
	tick := time.NewTicker(time.Second)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			p.Close()
			p.wg.Wait()
			// Every pending ack resolves within ackTimeout (acked or spooled).
			select {
			case <-p.js.PublishAsyncComplete():
			case <-time.After(ackTimeout + time.Second):
				p.log.Warn("usage acks still pending at shutdown", "pending", p.js.PublishAsyncPending())
			}
			p.replay()
			_ = p.spool.Close()
			return
		case <-tick.C:
			p.replay()
		}
	}
}

// Close stops queueing events (queued ones are still sent; later ones spool).
func (p *Publisher) Close() {
	p.mu.Lock()
	defer p.mu.Unlock()
	if !p.closed {
		p.closed = true
		close(p.queue)
	}
}

// maxBatchEvents and maxBatchBytes bound one usage message of several
// events (NATS's default max_payload is 1 MiB; a server with a smaller one
// lowers the byte bound, see MessageLimit). A single event may be larger,
// up to the server's limit: Encode fits it.
const (
	maxBatchEvents = 256
	maxBatchBytes  = 512 << 10
	// batchLinger is how long the sender waits for more events after the
	// first one of a message.
	batchLinger = 10 * time.Millisecond
)

// sendLoop is the one sender: it gathers what arrives within batchLinger
// of an event (at most maxBatchEvents) into one message, which divides
// JetStream's per-message work (store, publish ack, consumer delivery and
// ack) by the batch size. Events reach the stream at most batchLinger
// later. It returns when the queue is closed and drained.
//
// While the batch fills, the sender sleeps instead of waiting on the
// queue: the events sent meanwhile wait in the queue's buffer. A sender
// parked on the queue was handed every event directly, which made each
// Publish wake it (and the scheduler wake an idle thread to run it) on the
// request goroutine (docs/benchmarks.md, "Issue 13, hot path").
func (p *Publisher) sendLoop() {
	batch := make([]queued, 0, maxBatchEvents)
	for q := range p.queue {
		batch = append(batch[:0], q)
		if len(p.queue) < maxBatchEvents-1 {
			time.Sleep(batchLinger)
		}
	fill:
		for len(batch) < maxBatchEvents {
			select {
			case q, ok := <-p.queue:
				if !ok {
					break fill
				}
				batch = append(batch, q)
			default:
				break fill
			}
		}
		p.send(batch)
		clear(batch) // no event bytes kept past their message
	}
}

// send publishes events as one or more messages of newline-separated JSON
// events. A one-event message has Nats-Msg-Id = its request id; a batch has
// the first request id, "+" and the number of further events (redeliveries
// and replays are absorbed by the ingester's idempotent insert either way).
// Publish encoded each event for the server's message limit, so no event
// can make a message the stream refuses.
func (p *Publisher) send(evs []queued) {
	limit := MessageLimit(p.nc)
	p.limit.Store(int64(limit))
	batchBytes := min(maxBatchBytes, limit)
	var buf []byte
	var tps []string // trace contexts of the message's sampled events (trace.go)
	var refs journal.Refs
	first, n := "", 0
	flush := func() {
		if n == 0 {
			return
		}
		id := first
		if n > 1 {
			id = first + "+" + strconv.Itoa(n-1)
		}
		p.publishAsync(id, buf, tps, refs)
		buf, tps, refs, first, n = nil, nil, journal.Refs{}, "", 0
	}
	for _, q := range evs {
		if n > 0 && len(buf)+1+len(q.data) > batchBytes {
			flush()
		}
		if n > 0 {
			buf = append(buf, '\n')
		} else {
			first = q.id
		}
		buf = append(buf, q.data...)
		tps = appendTraceparent(tps, q.tp)
		refs.Add(q.ref)
		n++
	}
	flush()
}

// encode is Encode with the publisher's counters: sanitised events are
// counted (and logged at most every 10 s: Publish runs on the request
// path, and a key holder chooses how many poison events to send), an event
// that cannot be encoded is counted lost.
func (p *Publisher) encode(ev *Event, limit int) ([]byte, bool) {
	b, sanitised, err := Encode(ev, limit)
	if sanitised {
		p.sanitised.Add(1)
		if now := time.Now().UnixNano(); now-p.lastSanitiseLog.Load() > int64(10*time.Second) {
			p.lastSanitiseLog.Store(now)
			p.log.Warn("usage event sanitised (invalid UTF-8, NUL or oversized fields)", "request_id", ev.RequestID, "tenant_id", ev.TenantID,
				"sanitised_total", p.sanitised.Load())
		}
	}
	if err != nil {
		p.lost.Add(1)
		p.log.Error("usage event not serialisable", "request_id", ev.RequestID, "err", err)
		return nil, false
	}
	return b, true
}

// publishAsync publishes one message whose events have the journal
// references refs (released at the ack, or once spooled) and the trace
// contexts tps.
func (p *Publisher) publishAsync(id string, data []byte, tps []string, refs journal.Refs) {
	if p.nc.Status() != nats.CONNECTED {
		p.spoolRaw(id, data, refs, errors.New("nats not connected"))
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), stallWait)
	err := p.inflight.Acquire(ctx, weight(len(data)))
	cancel()
	if err != nil {
		p.spoolRaw(id, data, refs, errors.New("too many usage bytes awaiting JetStream acks"))
		return
	}
	msg := &nats.Msg{Subject: p.subject, Data: data, Header: nats.Header{}}
	msg.Header.Set(jetstream.MsgIDHeader, id)
	setTraceparents(msg.Header, tps)
	p.putRefs(id, refs)
	if _, err := p.js.PublishMsgAsync(msg, jetstream.WithStallWait(stallWait)); err != nil {
		p.inflight.Release(weight(len(data)))
		p.spoolRaw(id, data, p.takeRefs(id), err)
	}
}

// putRefs and takeRefs keep a message's journal references until its ack.
func (p *Publisher) putRefs(id string, refs journal.Refs) {
	if refs.Len() == 0 {
		return
	}
	p.acksMu.Lock()
	p.acks[id] = refs
	p.acksMu.Unlock()
}

func (p *Publisher) takeRefs(id string) journal.Refs {
	p.acksMu.Lock()
	defer p.acksMu.Unlock()
	refs, ok := p.acks[id]
	if ok {
		delete(p.acks, id)
	}
	return refs
}

// publishRaw publishes synchronously (spool replay).
func (p *Publisher) publishRaw(id string, b []byte) error {
	if p.nc.Status() != nats.CONNECTED {
		return errors.New("nats not connected")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
	defer cancel()
	msg := &nats.Msg{Subject: p.subject, Data: b, Header: nats.Header{}}
	msg.Header.Set(jetstream.MsgIDHeader, id)
	_, err := p.js.PublishMsg(ctx, msg)
	return err
}

func (p *Publisher) toSpool(q queued, cause error) {
	var refs journal.Refs
	refs.Add(q.ref)
	p.spoolRaw(q.id, q.data, refs, cause)
}

// spoolRaw spools a message body: one line per event, so a batch replays
// as single events. Once spooled (synced), the events' journal references
// are released; events neither published nor spooled stay in the journal,
// for the next start.
func (p *Publisher) spoolRaw(id string, b []byte, refs journal.Refs, cause error) {
	n := int64(eventCount(b))
	if err := p.spool.Append(b); err != nil {
		p.lost.Add(n)
		p.log.Error("usage events lost: cannot publish nor spool", "msg_id", id, "events", n, "still_journaled", refs.Len(),
			"publish_err", cause, "spool_err", err)
		return
	}
	refs.Release()
	p.spooled.Add(n)
	// Say why, at most every 10 s: a full stream (DiscardNew), a server
	// without room or an unreachable NATS must not spool silently.
	if now := time.Now().UnixNano(); now-p.lastSpoolLog.Load() > int64(10*time.Second) {
		p.lastSpoolLog.Store(now)
		p.log.Warn("usage events spooled to disk: JetStream did not take them", "events", n, "cause", cause)
	}
}

// eventCount is the number of events in a message body.
func eventCount(b []byte) int { return bytes.Count(b, []byte{'\n'}) + 1 }

func (p *Publisher) replay() {
	if p.nc.Status() != nats.CONNECTED {
		return
	}
	p.ensureStreams()
	if p.spool.Empty() {
		return
	}
	// Spooled events go back as batches like live ones: one synchronous
	// publish per up to maxBatchEvents events. Each line is decoded and
	// encoded again for the server's current limit: a line the stream
	// cannot take is never sent as it is, and one that is not an event goes
	// to the dead-letter stream, so replay neither stops at a line nor skips
	// one.
	limit := MessageLimit(p.nc)
	p.limit.Store(int64(limit))
	n, err := p.spool.Replay(maxBatchEvents, min(maxBatchBytes, limit), func(lines [][]byte) error {
		evs := make([][]byte, 0, len(lines))
		ids := make([]string, 0, len(lines))
		for _, line := range lines {
			ev, err := Decode(line) // either encoding: spool files of an older gateway replay too
			if err != nil || ev.RequestID == "" || ev.TenantID == "" {
				if err == nil {
					err = errors.New("not a usage event: request_id or tenant_id missing")
				}
				if err := p.deadLetter(line, err); err != nil {
					return err
				}
				continue
			}
			b, sanitised, err := Encode(&ev, limit)
			if err != nil {
				if err := p.deadLetter(line, err); err != nil {
					return err
				}
				continue
			}
			if sanitised {
				p.sanitised.Add(1)
			}
			evs, ids = append(evs, b), append(ids, ev.RequestID)
		}
		return p.publishLines(ids, evs, limit)
	})
	if n > 0 || err != nil {
		p.log.Info("replayed spooled usage events", "events", n, "err", err)
	}
}

// ensureStreams creates or updates the streams set by SetStreams until
// that succeeds once (every replay tick: once a second).
func (p *Publisher) ensureStreams() {
	if p.streams == nil || p.streamsExist.Load() {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
	defer cancel()
	if err := EnsureStreams(ctx, p.js, *p.streams); err != nil {
		if time.Since(p.lastEnsureLog) > 10*time.Second {
			p.lastEnsureLog = time.Now()
			p.log.Error("usage streams not ensured; events spool until they are", "err", err)
		}
		return
	}
	p.streamsExist.Store(true)
}

// replayID is the Nats-Msg-Id of a replayed group: the first request id,
// "+" and the number of further events as for live messages, then "~" and
// a hash of the bytes. JetStream drops a message whose id it saw in its
// dedup window; a group named like a live message (same first event, same
// count) but holding other events — the journal's order is not the
// batches' order, so a recovered segment regroups events of several
// batches — was dropped whole, and the events only in it were lost. With
// the hash, only the same bytes are deduplicated (a replay cut short and
// sent again); anything else travelling twice is absorbed by the
// ingester's idempotent insert.
func replayID(first string, n int, body []byte) string {
	h := fnv.New64a()
	_, _ = h.Write(body)
	id := first
	if n > 1 {
		id += "+" + strconv.Itoa(n-1)
	}
	return id + "~" + strconv.FormatUint(h.Sum64(), 36)
}

// publishLines publishes spooled events synchronously as one message, or
// one by one when the server refuses the message for its size; a single
// event it refuses for its size goes to the dead-letter stream.
func (p *Publisher) publishLines(ids []string, lines [][]byte, limit int) error {
	if len(lines) == 0 {
		return nil
	}
	body := bytes.Join(lines, []byte{'\n'})
	err := p.publishRaw(replayID(ids[0], len(lines), body), body)
	switch {
	case err == nil:
		p.published.Add(int64(len(lines)))
		return nil
	case !permanentPublishError(err):
		return err
	case len(lines) > 1:
		for i := range lines {
			if err := p.publishLines(ids[i:i+1], lines[i:i+1], limit); err != nil {
				return err
			}
		}
		return nil
	default:
		return p.deadLetter(lines[0], err)
	}
}

// deadLetter stores a spooled line that cannot be published as an event in
// the dead-letter stream (synchronously: an error stops the replay, and the
// line is tried again at the next one).
func (p *Publisher) deadLetter(line []byte, cause error) error {
	p.log.Error("spooled usage line cannot be published; dead-lettered", "bytes", len(line), "err", cause)
	if p.deadLetters == "" {
		p.lost.Add(1)
		return nil
	}
	dl := NewDeadLetter(StageSpool, line, cause, 0, MessageLimit(p.nc))
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
	defer cancel()
	if err := PublishDeadLetter(ctx, p.js, p.deadLetters, dl, DeadLetterMsgID(StageSpool, line, 0)); err != nil {
		return err
	}
	p.deadLettered.Add(1)
	return nil
}
