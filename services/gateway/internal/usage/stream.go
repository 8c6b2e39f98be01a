package usage

import (
	"context"
	"fmt"
	"time"

	"github.com/nats-io/nats.go/jetstream"
)

// Streams are the usage stream and its dead-letter stream, as configured.
type Streams struct {
	// Name and Subject: <PREFIX>_USAGE, <prefix>.usage.events.
	Name, Subject string
	// DeadLetterName and DeadLetterSubject: <PREFIX>_USAGE_DLQ,
	// <prefix>.usage.deadletter.
	DeadLetterName, DeadLetterSubject string
	// MaxBytes bounds the usage stream, DeadLetterMaxBytes the dead-letter
	// stream (file storage: JetStream reserves both when they are created).
	MaxBytes, DeadLetterMaxBytes int64
	// Replicas of both streams (1 on a single server; 3 on a cluster).
	Replicas int
}

// NewStreams names the streams of a usage stream name and subject, with
// the given bounds.
func NewStreams(name, subject string, maxBytes, deadLetterMaxBytes int64, replicas int) Streams {
	return Streams{Name: name, Subject: subject, DeadLetterName: name + "_DLQ", DeadLetterSubject: subject + ".deadletter",
		MaxBytes: maxBytes, DeadLetterMaxBytes: deadLetterMaxBytes, Replicas: max(replicas, 1)}
}

// StreamConfig is the usage stream: file storage, bounded, DiscardNew (a
// full stream refuses publishes, which then spool, rather than dropping
// old events), and a dedup window on Nats-Msg-Id.
func (s Streams) StreamConfig() jetstream.StreamConfig {
	return jetstream.StreamConfig{
		Name:       s.Name,
		Subjects:   []string{s.Subject},
		Storage:    jetstream.FileStorage,
		Retention:  jetstream.LimitsPolicy,
		Discard:    jetstream.DiscardNew,
		MaxBytes:   s.MaxBytes,
		MaxMsgs:    50_000_000,
		MaxAge:     14 * 24 * time.Hour,
		Duplicates: 30 * time.Minute,
		Replicas:   s.Replicas,
	}
}

// DeadLetterConfig is the dead-letter stream: file storage, bounded, and
// DiscardOld, so that a flood of dead letters drops the oldest ones rather
// than stopping ingestion (an ingester acks a message only once its dead
// letters are stored).
func (s Streams) DeadLetterConfig() jetstream.StreamConfig {
	return jetstream.StreamConfig{
		Name:       s.DeadLetterName,
		Subjects:   []string{s.DeadLetterSubject},
		Storage:    jetstream.FileStorage,
		Retention:  jetstream.LimitsPolicy,
		Discard:    jetstream.DiscardOld,
		MaxBytes:   s.DeadLetterMaxBytes,
		MaxAge:     30 * 24 * time.Hour,
		Duplicates: 30 * time.Minute,
		Replicas:   s.Replicas,
	}
}

// EnsureStreams creates or updates the usage and dead-letter streams.
func EnsureStreams(ctx context.Context, js jetstream.JetStream, s Streams) error {
	for _, cfg := range []jetstream.StreamConfig{s.StreamConfig(), s.DeadLetterConfig()} {
		if _, err := js.CreateOrUpdateStream(ctx, cfg); err != nil {
			return fmt.Errorf("ensure stream %s: %w", cfg.Name, err)
		}
	}
	return nil
}

// DeleteStreams deletes both streams (tests and benchmarks clean up with it).
func DeleteStreams(ctx context.Context, js jetstream.JetStream, s Streams) {
	_ = js.DeleteStream(ctx, s.Name)
	_ = js.DeleteStream(ctx, s.DeadLetterName)
}
