package ingest

import (
	"context"
	"time"

	"github.com/nats-io/nats.go/jetstream"
)

// Deferral: an ingester that shares its machine with the proxy (role all)
// leaves the CPU to requests while traffic is heavy. The ingestion of an
// event costs the machine tens of microseconds, most of it in Postgres,
// in bursts of a batch at a time; on the two cores that also proxy, those
// bursts are the requests' tail (docs/benchmarks.md, "Where role all's tail
// at 2 000 req/s comes from"). So while usage messages arrive at busyRate
// a second or more, a loop does not fetch; the events wait in the stream,
// which is durable, for at most maxDelay. Then the loop catches up: it
// fetches (paced by duty, as always) until the stream is drained, without
// deferring again, so that under sustained traffic the rows are never more
// than about maxDelay plus a catch-up behind. When traffic falls below
// busyRate, it fetches at once.
//
// The arrival rate is the usage stream's, read from the consumer's info
// (its last delivered stream sequence plus the messages pending after it),
// one JetStream API request per check: before each fetch (but after a fetch
// that found nothing: nothing arrived), and every deferPoll while deferring. With a deferral, a fetch waits deferPoll at
// most for messages (500 ms without), so that a burst is seen within about
// 100 ms of its start: a loop then stores at most what arrived before it
// saw the burst. The rate counts messages, not events: a publisher
// sends one message per event when it is idle and gathers what arrives
// within its linger (10 ms) when busy, so one gateway's messages saturate
// near 100 a second, and 50 a second means about 100 requests a second.

// minSpan is the least span over which the arrival rate is measured: a
// sample closer than that to the last one leaves the rate as it was.
const minSpan = 50 * time.Millisecond

// deferPoll is how often a deferring loop looks at the stream again.
const deferPoll = 100 * time.Millisecond

// arrivals is a sample of the usage stream: at t, seq messages had arrived
// (the stream's last sequence), pending of them not yet delivered.
type arrivals struct {
	t       time.Time
	seq     uint64
	pending uint64
}

// traffic is one loop's view of the stream's arrivals and its deferral.
type traffic struct {
	ref     arrivals  // the sample the rate is measured from
	rate    float64   // messages a second between the last two samples (minSpan apart)
	since   time.Time // when the loop began deferring; zero: it is not
	catchUp bool      // a deferral ran out: fetch until the stream is drained
	// idle: the last fetch found nothing, so nothing arrived since the last
	// sample and the next check fetches without reading the consumer's
	// info (an idle loop makes one request per deferPoll, not two).
	idle bool
}

// fetchedNothing notes a fetch that found nothing at now: the stream's
// last sequence sampled still holds, as of now.
func (t *traffic) fetchedNothing(now time.Time) {
	if !t.ref.t.IsZero() {
		t.ref.t = now
	}
	t.rate, t.since, t.catchUp, t.idle = 0, time.Time{}, false, true
}

// fetchNow tells whether a loop fetches now, given the sample s, or waits
// (deferPoll) and asks again. busyRate is in messages a second.
func (t *traffic) fetchNow(s arrivals, busyRate float64, maxDelay time.Duration) bool {
	switch d := s.t.Sub(t.ref.t); {
	case t.ref.t.IsZero() || s.seq < t.ref.seq: // the first sample, or a consumer recreated
		t.ref, t.rate = s, 0
	case d >= minSpan:
		t.rate, t.ref = float64(s.seq-t.ref.seq)/d.Seconds(), s
	}
	if s.pending == 0 {
		t.catchUp = false
	}
	if t.catchUp {
		return true
	}
	if t.rate < busyRate {
		t.since = time.Time{}
		return true
	}
	if t.since.IsZero() {
		t.since = s.t
	}
	if s.t.Sub(t.since) >= maxDelay {
		t.since, t.catchUp = time.Time{}, true
		return true
	}
	return false
}

// SetDeferral makes each loop defer its fetches while usage messages arrive
// at busyRate a second or more, for at most maxDelay at a time (maxDelay
// ≤ 0: never defers).
func (in *Ingester) SetDeferral(busyRate float64, maxDelay time.Duration) {
	in.busyRate, in.maxDelay = busyRate, maxDelay
}

// awaitQuiet returns when the loop whose view is t may fetch: at once
// without deferral, or when the consumer's info cannot be read (the fetch
// meets the same trouble and handles it); false when ctx ends first.
func (in *Ingester) awaitQuiet(ctx context.Context, cons jetstream.Consumer, t *traffic) bool {
	if in.maxDelay <= 0 {
		return true
	}
	if t.idle {
		t.idle = false
		return true
	}
	for deferred := false; ; deferred = true {
		ictx, cancel := context.WithTimeout(ctx, time.Second)
		info, err := cons.Info(ictx)
		cancel()
		if err != nil {
			return ctx.Err() == nil
		}
		in.metrics.pending(info.NumPending)
		now := time.Now()
		if t.fetchNow(arrivals{now, info.Delivered.Stream + info.NumPending, info.NumPending}, in.busyRate, in.maxDelay) {
			return true
		}
		if !deferred {
			in.metrics.deferral()
		}
		select {
		case <-ctx.Done():
			return false
		case <-time.After(deferPoll):
		}
		in.metrics.deferred(time.Since(now))
	}
}
