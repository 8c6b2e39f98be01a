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

// marshal writes ev's binary form.
func marshal(ev *Event) ([]byte, error) {
	pb, err := proto.Marshal(toProto(ev))
	if err != nil {
		return nil, err
	}
	out := make([]byte, 1+b64.EncodedLen(len(pb)))
	out[0] = binaryMark
	b64.Encode(out[1:], pb)
	return out, nil
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

func toProto(ev *Event) *usagev1.UsageEvent {
	m := &usagev1.UsageEvent{
		RequestId: ev.RequestID, CreatedAtUs: ev.CreatedAt.UnixMicro(), TenantId: ev.TenantID, Env: ev.Env,
		KeyId: ev.KeyID, KeyName: ev.KeyName, Provider: ev.Provider, Model: ev.Model, Path: ev.Path,
		StatusCode: int32(ev.StatusCode), Stream: ev.Stream, LatencyMs: ev.LatencyMS, TtfbMs: ev.TTFBMS,
		PromptTokens: ev.PromptTokens, CompletionTokens: ev.CompletionTokens, TotalTokens: ev.TotalTokens,
		CachedTokens: ev.CachedTokens, Outcome: ev.Outcome, Error: ev.Error, ViolationIds: ev.ViolationIDs,
		RequestBody: ev.RequestBody, ResponseBody: ev.ResponseBody,
	}
	if ev.CostUSD != nil {
		c := int64(*ev.CostUSD)
		m.CostUsdE10 = &c
	}
	if len(ev.Violations) > 0 {
		m.Violations = make([]*usagev1.Violation, len(ev.Violations))
		for i, v := range ev.Violations {
			pv := &usagev1.Violation{Id: v.ID, PolicyId: v.PolicyID, PolicyName: v.PolicyName, Type: v.Type, Action: v.Action,
				Severity: v.Severity, Shadow: v.Shadow, Direction: v.Direction}
			if len(v.Matches) > 0 {
				pv.Matches = make([]*usagev1.Match, len(v.Matches))
				for j, mt := range v.Matches {
					pv.Matches[j] = &usagev1.Match{Kind: mt.Kind, Snippet: mt.Snippet, Offset: int64(mt.Offset)}
				}
			}
			m.Violations[i] = pv
		}
	}
	return m
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
