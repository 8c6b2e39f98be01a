package usage

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// Dead-letter stages: where an event was refused.
const (
	StageDecode = "decode" // the ingester found a line that is not a usage event
	StageInsert = "insert" // Postgres refused the event itself (bisected out of its batch)
	StageSpool  = "spool"  // a spooled line that could not be made into a publishable event
)

// DeadLetter is one message of the dead-letter stream (<PREFIX>_USAGE_DLQ):
// an event, or a line that is not one, that could not be stored, and why.
// The usage message it came in is acknowledged once the dead letter is
// stored, so one bad event never holds back the others; `gateway
// deadletter replay` sends Event back to the usage stream.
type DeadLetter struct {
	Stage     string    `json:"stage"`
	Error     string    `json:"error"`
	At        time.Time `json:"at"`
	RequestID string    `json:"request_id,omitempty"`
	TenantID  string    `json:"tenant_id,omitempty"`
	// StreamSeq is the usage stream sequence of the message the event came in.
	StreamSeq uint64 `json:"stream_seq,omitempty"`
	// Event is the line as received when it is JSON; Raw holds it
	// otherwise (invalid UTF-8 replaced).
	Event json.RawMessage `json:"event,omitempty"`
	Raw   string          `json:"raw,omitempty"`
	// Truncated: the line was longer than a message may be and was cut;
	// such a dead letter is kept for inspection and cannot be replayed.
	Truncated bool `json:"truncated,omitempty"`
}

// deadLetterSlack is room left in a dead-letter message for its other
// fields and headers.
const deadLetterSlack = 8 << 10

// NewDeadLetter builds the dead letter of line, refused at stage for cause,
// bounded to fit a message of limit bytes.
func NewDeadLetter(stage string, line []byte, cause error, seq uint64, limit int) DeadLetter {
	msg := "unknown"
	if cause != nil {
		msg = cause.Error()
	}
	errText, _ := cleanString(msg, MaxErrorBytes)
	dl := DeadLetter{Stage: stage, Error: errText, At: time.Now().UTC(), StreamSeq: seq}
	var head struct {
		RequestID string `json:"request_id"`
		TenantID  string `json:"tenant_id"`
	}
	if Binary(line) {
		// A binary event is kept as its JSON: readable in the list, and
		// replayable (the ingester reads both encodings).
		if ev, err := Decode(line); err == nil {
			if j, err := json.Marshal(&ev); err == nil {
				line = j
			}
		}
	}
	if json.Valid(line) {
		_ = json.Unmarshal(line, &head)
		dl.RequestID, _ = cleanString(head.RequestID, MaxIDBytes)
		dl.TenantID, _ = cleanString(head.TenantID, MaxIDBytes)
	}
	room := max(limit-deadLetterSlack, 1024)
	switch {
	case len(line) <= room && json.Valid(line):
		dl.Event = append(json.RawMessage(nil), line...)
	default:
		raw, _ := cleanString(string(line), len(line)*3) // no cut: only UTF-8 and NUL
		if len(raw) > room/6 {                           // JSON escaping may take six bytes per byte
			raw, dl.Truncated = cut(raw, room/6), true
		}
		dl.Raw = raw
	}
	return dl
}

// DeadLetterMsgID is the Nats-Msg-Id of a dead letter: the same line
// refused again from the same usage message (a redelivery) is stored once;
// once replayed it comes back in a new message and is stored anew if
// refused again.
func DeadLetterMsgID(stage string, line []byte, seq uint64) string {
	sum := sha256.Sum256(line)
	return "dlq-" + hex.EncodeToString(sum[:16]) + "-" + stage + "-" + strconv.FormatUint(seq, 10)
}

// PublishDeadLetter stores dl on subject and waits for the stream's ack.
func PublishDeadLetter(ctx context.Context, js jetstream.JetStream, subject string, dl DeadLetter, msgID string) error {
	b, err := json.Marshal(dl)
	if err != nil {
		return fmt.Errorf("encode dead letter: %w", err)
	}
	msg := &nats.Msg{Subject: subject, Data: b, Header: nats.Header{}}
	msg.Header.Set(jetstream.MsgIDHeader, msgID)
	if _, err := js.PublishMsg(ctx, msg); err != nil {
		return fmt.Errorf("publish dead letter: %w", err)
	}
	return nil
}

// MessageLimit is the largest usage message that nc's server accepts
// (max_payload less room for headers); 1 MiB less that room before the
// first connect.
func MessageLimit(nc *nats.Conn) int {
	mp := int64(1 << 20)
	if nc != nil {
		if v := nc.MaxPayload(); v > 0 {
			mp = v
		}
	}
	return int(mp) - headerSlack
}

// headerSlack is room kept in a message for its headers (Nats-Msg-Id).
const headerSlack = 1 << 10

// permanentPublishError reports errors that publishing the same bytes again
// will meet again: the message is too large for the server or the stream.
func permanentPublishError(err error) bool {
	if errors.Is(err, nats.ErrMaxPayload) {
		return true
	}
	var apiErr *jetstream.APIError
	if errors.As(err, &apiErr) && apiErr.ErrorCode == jsErrMessageExceedsMaximum {
		return true
	}
	return err != nil && strings.Contains(err.Error(), "maximum payload exceeded")
}

// jsErrMessageExceedsMaximum is JetStream's "message size exceeds maximum
// allowed" (JSStreamMessageExceedsMaximumErr).
const jsErrMessageExceedsMaximum jetstream.ErrorCode = 10054

// StoredDeadLetter is a dead letter with its sequence in the dead-letter
// stream.
type StoredDeadLetter struct {
	Seq uint64 `json:"seq"`
	DeadLetter
}

// Replayable reports whether d holds a whole event to send back.
func (d DeadLetter) Replayable() bool { return len(d.Event) > 0 && !d.Truncated }

// ReadDeadLetters calls fn for the dead letters of s, oldest first, at most
// limit of them (0: all).
func ReadDeadLetters(ctx context.Context, js jetstream.JetStream, s Streams, limit int, fn func(StoredDeadLetter) error) error {
	stream, err := js.Stream(ctx, s.DeadLetterName)
	if err != nil {
		return fmt.Errorf("dead-letter stream %s: %w", s.DeadLetterName, err)
	}
	if stream.CachedInfo().State.Msgs == 0 {
		return nil
	}
	cons, err := stream.OrderedConsumer(ctx, jetstream.OrderedConsumerConfig{})
	if err != nil {
		return fmt.Errorf("read dead letters: %w", err)
	}
	for n := 0; limit <= 0 || n < limit; n++ {
		msg, err := cons.Next(jetstream.FetchMaxWait(5 * time.Second))
		if err != nil {
			return fmt.Errorf("read dead letters: %w", err)
		}
		md, err := msg.Metadata()
		if err != nil {
			return fmt.Errorf("read dead letters: %w", err)
		}
		d := StoredDeadLetter{Seq: md.Sequence.Stream}
		if err := json.Unmarshal(msg.Data(), &d.DeadLetter); err != nil {
			d.Stage, d.Error = "unknown", "not a dead letter: "+err.Error()
		}
		if err := fn(d); err != nil {
			return err
		}
		if md.NumPending == 0 {
			return nil
		}
	}
	return nil
}

// ReplayDeadLetters sends the events of up to limit dead letters (0: all)
// back to the usage stream, oldest first, and deletes each one once the
// usage stream has acknowledged its event; an event refused again comes
// back as a new dead letter. Dead letters without a whole event (a line
// that was not JSON, or was cut to fit) are kept and reported to fn with
// replayed false.
func ReplayDeadLetters(ctx context.Context, js jetstream.JetStream, s Streams, limit int, fn func(d StoredDeadLetter, replayed bool)) error {
	stream, err := js.Stream(ctx, s.DeadLetterName)
	if err != nil {
		return fmt.Errorf("dead-letter stream %s: %w", s.DeadLetterName, err)
	}
	var todo []StoredDeadLetter
	if err := ReadDeadLetters(ctx, js, s, limit, func(d StoredDeadLetter) error {
		todo = append(todo, d)
		return nil
	}); err != nil {
		return err
	}
	for _, d := range todo {
		if !d.Replayable() {
			fn(d, false)
			continue
		}
		msg := &nats.Msg{Subject: s.Subject, Data: d.Event, Header: nats.Header{}}
		// One id per dead letter: a replay run again after a crash between
		// the publish and the delete is deduplicated by the stream.
		msg.Header.Set(jetstream.MsgIDHeader, "replay-"+s.DeadLetterName+"-"+strconv.FormatUint(d.Seq, 10))
		if _, err := js.PublishMsg(ctx, msg); err != nil {
			return fmt.Errorf("replay dead letter %d: %w", d.Seq, err)
		}
		if err := stream.DeleteMsg(ctx, d.Seq); err != nil {
			return fmt.Errorf("delete replayed dead letter %d: %w", d.Seq, err)
		}
		fn(d, true)
	}
	return nil
}
