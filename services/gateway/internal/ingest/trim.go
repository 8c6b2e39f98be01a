package ingest

import (
	"context"
	"log/slog"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/nats-io/nats.go/jetstream"
)

// trimInterval is how often a process that ingests removes acknowledged
// messages from the usage stream.
const trimInterval = 10 * time.Second

// runTrim removes from the usage stream, every interval, the messages the
// ingester's durable consumer has acknowledged (those below its ack floor)
// until ctx ends. The stream keeps limits retention with DiscardNew, so
// without this it filled up with stored events (MaxBytes, e.g. 4 GiB, is
// about three hours at 1 000 req/s) and then refused every publish: every
// event spooled and replay could not make room. Interest or work-queue
// retention would do the same, but a stream's retention cannot be changed
// in place (NATS 2.9 refuses it outright), and interest retention drops
// what is published while no consumer exists. Several ingesters trimming
// at once purge the same range, which is harmless.
//
// quiesce, when not nil, is held for writing around a trim on a server whose
// partial purge loses ack-pending state (purgeLosesPending): the process's
// ingestion loops hold it for reading from each fetch to its acks.
func runTrim(ctx context.Context, js jetstream.JetStream, stream, durable string, interval time.Duration, quiesce sync.Locker, log *slog.Logger) {
	t := time.NewTicker(interval)
	defer t.Stop()
	var done uint64 // the ack floor already trimmed to
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		floor, err := trim(ctx, js, stream, durable, done, quiesce)
		if err != nil {
			log.Debug("usage stream trim failed", "err", err)
			continue
		}
		done = floor
	}
}

// trim purges the messages of stream below the consumer's ack floor when
// that floor moved past done; it returns the floor.
//
// nats-server before 2.9.15 forgets the consumer's ack-pending messages
// above the purge point on a partial purge (fixed by nats-server pull
// request 3892): a message delivered but not acknowledged — in a batch
// being stored, or delivered to a pull request that had expired on the
// client — is then never redelivered, and its event is lost (1 276 events
// in one 10-minute soak against Debian's 2.9.10; TestTrimKeepsPending
// reproduces it). On such a server trim purges only while nothing is
// pending: with quiesce locked, the process's own loops are between
// batches, and the consumer's info must show no pending acks (another
// replica's batch could still be in flight between the info and the purge:
// a window of one round trip, on servers every deployment here replaces).
func trim(ctx context.Context, js jetstream.JetStream, stream, durable string, done uint64, quiesce sync.Locker) (uint64, error) {
	guard := purgeLosesPending(js.Conn().ConnectedServerVersion())
	if guard && quiesce != nil {
		quiesce.Lock()
		defer quiesce.Unlock()
	}
	cctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	s, err := js.Stream(cctx, stream)
	if err != nil {
		return done, err
	}
	cons, err := s.Consumer(cctx, durable)
	if err != nil {
		return done, err
	}
	ci, err := cons.Info(cctx)
	if err != nil {
		return done, err
	}
	floor := ci.AckFloor.Stream
	if floor <= done || (guard && ci.NumAckPending > 0) {
		return done, nil
	}
	if err := s.Purge(cctx, jetstream.WithPurgeSequence(floor+1)); err != nil {
		return done, err
	}
	return floor, nil
}

// purgeLosesPending reports whether a nats-server of version v loses a
// consumer's ack-pending state on a partial purge: versions before 2.9.15.
// A version it cannot read counts as affected.
func purgeLosesPending(v string) bool {
	v, _, _ = strings.Cut(strings.TrimPrefix(v, "v"), "-")
	parts := strings.Split(v, ".")
	if len(parts) != 3 {
		return true
	}
	var n [3]int
	for i, p := range parts {
		x, err := strconv.Atoi(p)
		if err != nil {
			return true
		}
		n[i] = x
	}
	switch {
	case n[0] != 2:
		return n[0] < 2
	case n[1] != 9:
		return n[1] < 9
	default:
		return n[2] < 15
	}
}
