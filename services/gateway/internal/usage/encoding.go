package usage

import (
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
)

// An encoded event is one line of a usage message (messages hold one or more
// events separated by '\n'; the spool holds one a line). Two forms exist:
//
//   - binary (what Encode writes since the protobuf change): '#' followed by
//     the unpadded standard base64 of a trueport.usage.v1.UsageEvent
//     (proto/trueport/usage/v1/usage.proto). base64 keeps the line free of
//     '\n', so the message framing, the spool's lines and the publisher's
//     event count stay as they were;
//   - JSON (older publishers, dead letters, hand-written events): a line
//     starting with '{', the Event's JSON.
//
// Decode reads both, so a rolling deploy may mix old and new publishers
// and spool files written by an older gateway replay as they are
// (docs/decisions.md, "Usage event encoding").
const binaryMark = '#'

var b64 = base64.RawStdEncoding

// Binary reports whether line is in the binary form.
func Binary(line []byte) bool { return len(line) > 0 && line[0] == binaryMark }

// marshalScratch is the room marshal gives the protobuf bytes on its stack:
// a proxied event without logged bodies takes about 200 bytes. Events
// with longer logged bodies get a heap buffer of their size (an event
// larger than its buffer still encodes: the buffer grows).
const marshalScratch = 512

// marshal writes ev's binary form: one allocation, the line, for events
// whose protobuf fits marshalScratch.
func marshal(ev *Event) []byte {
	var scratch [marshalScratch]byte
	buf := scratch[:0]
	if n := bodiesLen(ev); n > marshalScratch/2 {
		buf = make([]byte, 0, marshalScratch+n)
	}
	pb := appendEvent(buf, ev)
	out := make([]byte, 1+b64.EncodedLen(len(pb)))
	out[0] = binaryMark
	b64.Encode(out[1:], pb)
	return out
}

// bodiesLen is the length of ev's logged bodies.
func bodiesLen(ev *Event) int {
	n := 0
	if ev.RequestBody != nil {
		n += len(*ev.RequestBody)
	}
	if ev.ResponseBody != nil {
		n += len(*ev.ResponseBody)
	}
	return n
}

// decodeScratch is the room Decode gives an event's protobuf bytes on its
// stack (a proxied event without logged bodies takes about 200 bytes).
const decodeScratch = 1024

// Decode reads one encoded event in either form. It checks nothing but the
// encoding: the caller checks the ids and sanitises.
func Decode(line []byte) (Event, error) {
	switch {
	case len(line) == 0:
		return Event{}, errors.New("empty line")
	case line[0] == '{':
		return decodeJSON(line)
	case line[0] == binaryMark:
		// The protobuf bytes go through scratch on the stack when they
		// fit: readEvent keeps one copy of them, the event's strings.
		var scratch [decodeScratch]byte
		pb := scratch[:]
		if n := b64.DecodedLen(len(line) - 1); n > len(scratch) {
			pb = make([]byte, n)
		}
		n, err := b64.Decode(pb, line[1:])
		if err != nil {
			return Event{}, fmt.Errorf("binary usage event: %w", err)
		}
		ev, err := readEvent(pb[:n])
		if err != nil {
			return Event{}, fmt.Errorf("binary usage event: %w", err)
		}
		return ev, nil
	}
	return Event{}, errors.New("neither a JSON nor a binary usage event")
}

// decodeJSON reads the JSON form (its own function: the event it decodes
// into escapes, the binary form's need not).
func decodeJSON(line []byte) (Event, error) {
	var ev Event
	err := json.Unmarshal(line, &ev)
	return ev, err
}
