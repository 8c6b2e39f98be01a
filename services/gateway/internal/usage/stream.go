package usage

import (
	"context"
	"errors"
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

// EnsureStreams creates or updates the usage and dead-letter streams. When
// the server refuses one (no room for its MaxBytes, more replicas than it
// has peers, JetStream off), the error is a *StreamRefusedError naming the
// stream, its settings and what to change; other errors (NATS unreachable)
// are returned as they are.
func EnsureStreams(ctx context.Context, js jetstream.JetStream, s Streams) error {
	for _, cfg := range []jetstream.StreamConfig{s.StreamConfig(), s.DeadLetterConfig()} {
		if _, err := js.CreateOrUpdateStream(ctx, cfg); err != nil {
			var jsErr jetstream.JetStreamError
			if errors.As(err, &jsErr) && jsErr.APIError() != nil && !transientAPIError[jsErr.APIError().ErrorCode] {
				return &StreamRefusedError{Stream: cfg.Name, MaxBytes: cfg.MaxBytes, Replicas: cfg.Replicas, Err: err}
			}
			return fmt.Errorf("ensure stream %s: %w", cfg.Name, err)
		}
	}
	return nil
}

// transientAPIError are JetStream answers that a retry may turn around (a
// cluster electing its leader, a stream offline for a moment).
var transientAPIError = map[jetstream.ErrorCode]bool{
	10004: true, // incomplete results
	10008: true, // JetStream system temporarily unavailable
	10009: true, // cluster can not handle request
	10118: true, // stream is offline
	10194: true, // stream is offline: reason
}

// StreamRefusedError is a stream the NATS server refused to create or
// update: the server answered, so retrying as it is will not help.
type StreamRefusedError struct {
	Stream   string
	MaxBytes int64
	Replicas int
	Err      error
}

func (e *StreamRefusedError) Error() string {
	hint := "check the stream's settings against the server"
	var jsErr jetstream.JetStreamError
	if errors.As(e.Err, &jsErr) && jsErr.APIError() != nil {
		switch jsErr.APIError().ErrorCode {
		case 10047, 10023, 10028: // storage / resources / memory exceeded
			hint = "the server has no room for max_bytes: lower USAGE_STREAM_MAX_BYTES / USAGE_DLQ_MAX_BYTES, or give JetStream more storage (max_file_store) or delete unused streams"
		case 10074, 10005: // replicas > 1 on a single server; no peers for placement
			hint = "the server or cluster cannot place that many replicas: set USAGE_STREAM_REPLICAS to at most its number of JetStream servers"
		case 10076: // JetStream not enabled
			hint = "enable JetStream on the NATS server"
		}
	}
	return fmt.Sprintf("NATS refused usage stream %s (max_bytes %d, replicas %d): %v; %s", e.Stream, e.MaxBytes, e.Replicas, e.Err, hint)
}

func (e *StreamRefusedError) Unwrap() error { return e.Err }

// DeleteStreams deletes both streams (tests and benchmarks clean up with it).
func DeleteStreams(ctx context.Context, js jetstream.JetStream, s Streams) {
	_ = js.DeleteStream(ctx, s.Name)
	_ = js.DeleteStream(ctx, s.DeadLetterName)
}
