package usage

import (
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"google.golang.org/protobuf/proto"

	usagev1 "trueportai/proto/gen/trueport/usage/v1"
	"trueportai/services/internal/money"
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

// Decode reads one encoded event in either form. It checks nothing but the
// encoding: the caller checks the ids and sanitises.
func Decode(line []byte) (Event, error) {
	var ev Event
	switch {
	case len(line) == 0:
		return ev, errors.New("empty line")
	case line[0] == '{':
		err := json.Unmarshal(line, &ev)
		return ev, err
	case line[0] == binaryMark:
		pb := make([]byte, b64.DecodedLen(len(line)-1))
		n, err := b64.Decode(pb, line[1:])
		if err != nil {
			return ev, fmt.Errorf("binary usage event: %w", err)
		}
		var m usagev1.UsageEvent
		if err := (proto.UnmarshalOptions{}).Unmarshal(pb[:n], &m); err != nil {
			return ev, fmt.Errorf("binary usage event: %w", err)
		}
		fromProto(&m, &ev)
		return ev, nil
	}
	return ev, errors.New("neither a JSON nor a binary usage event")
}

func fromProto(m *usagev1.UsageEvent, ev *Event) {
	*ev = Event{
		RequestID: m.RequestId, CreatedAt: time.UnixMicro(m.CreatedAtUs).UTC(), TenantID: m.TenantId, Env: m.Env,
		KeyID: m.KeyId, KeyName: m.KeyName, Provider: m.Provider, Model: m.Model, Path: m.Path,
		StatusCode: int(m.StatusCode), Stream: m.Stream, LatencyMS: m.LatencyMs, TTFBMS: m.TtfbMs,
		PromptTokens: m.PromptTokens, CompletionTokens: m.CompletionTokens, TotalTokens: m.TotalTokens,
		CachedTokens: m.CachedTokens, Outcome: m.Outcome, Error: m.Error, ViolationIDs: m.ViolationIds,
		RequestBody: m.RequestBody, ResponseBody: m.ResponseBody,
	}
	if m.CostUsdE10 != nil {
		c := money.USD(*m.CostUsdE10)
		ev.CostUSD = &c
	}
	if len(m.Violations) > 0 {
		ev.Violations = make([]Violation, len(m.Violations))
		for i, pv := range m.Violations {
			v := Violation{ID: pv.Id, PolicyID: pv.PolicyId, PolicyName: pv.PolicyName, Type: pv.Type, Action: pv.Action,
				Severity: pv.Severity, Shadow: pv.Shadow, Direction: pv.Direction, Matches: []Match{}}
			if len(pv.Matches) > 0 {
				v.Matches = make([]Match, len(pv.Matches))
				for j, mt := range pv.Matches {
					v.Matches[j] = Match{Kind: mt.Kind, Snippet: mt.Snippet, Offset: int(mt.Offset)}
				}
			}
			ev.Violations[i] = v
		}
	}
}
