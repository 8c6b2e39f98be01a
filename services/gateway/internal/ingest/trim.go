package ingest

import (
	"context"
	"log/slog"
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
func runTrim(ctx context.Context, js jetstream.JetStream, stream, durable string, interval time.Duration, log *slog.Logger) {
	t := time.NewTicker(interval)
	defer t.Stop()
	var done uint64 // the ack floor already trimmed to
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		floor, err := trim(ctx, js, stream, durable, done)
		if err != nil {
			log.Debug("usage stream trim failed", "err", err)
			continue
		}
		done = floor
	}
}

// trim purges the messages of stream below the consumer's ack floor when
// that floor moved past done; it returns the floor.
func trim(ctx context.Context, js jetstream.JetStream, stream, durable string, done uint64) (uint64, error) {
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
	if floor <= done {
		return done, nil
	}
	if err := s.Purge(cctx, jetstream.WithPurgeSequence(floor+1)); err != nil {
		return done, err
	}
	return floor, nil
}
