package usage

import (
	"math"

	"google.golang.org/protobuf/encoding/protowire"
)

// The protobuf encoding of an Event, written by hand: the bytes proto.Marshal
// writes for the trueport.usage.v1.UsageEvent of the event
// (proto/trueport/usage/v1/usage.proto; the mapping is encoding.go's
// fromProto, read backwards), without building the message. proto.Marshal
// of the generated type cost the request goroutine three allocations more
// per event than the one of the encoded line (the message, its optional
// cost, the marshalled bytes); appendEvent allocates nothing when b has
// room (docs/decisions.md, "Usage event encoding").
//
// Byte for byte what proto.Marshal writes (TestAppendEventIsProtoMarshal,
// FuzzAppendEvent): known fields in field-number order; proto3 scalars
// without presence omitted when zero (a double only when +0, as the
// generated code does: -0 is written), optional ones written when set,
// even to zero; every element of a repeated field, empty messages as an
// empty length-delimited field. Strings must be valid UTF-8, which
// proto.Marshal checks and appendEvent does not: Encode sanitises every
// event first (Sanitize), and Decode (readEvent, as proto.Unmarshal)
// refuses the line otherwise.

// Field numbers of UsageEvent.
const (
	fEvRequestID        = 1
	fEvCreatedAtUs      = 2
	fEvTenantID         = 3
	fEvEnv              = 4
	fEvKeyID            = 5
	fEvKeyName          = 6
	fEvProvider         = 7
	fEvModel            = 8
	fEvPath             = 9
	fEvStatusCode       = 10
	fEvStream           = 11
	fEvLatencyMs        = 12
	fEvTtfbMs           = 13
	fEvPromptTokens     = 14
	fEvCompletionTokens = 15
	fEvTotalTokens      = 16
	fEvCachedTokens     = 17
	fEvCostUsdE10       = 18
	fEvOutcome          = 19
	fEvError            = 20
	fEvViolationIDs     = 21
	fEvViolations       = 22
	fEvRequestBody      = 23
	fEvResponseBody     = 24
)

// Field numbers of Violation and Match.
const (
	fViID         = 1
	fViPolicyID   = 2
	fViPolicyName = 3
	fViType       = 4
	fViAction     = 5
	fViSeverity   = 6
	fViShadow     = 7
	fViDirection  = 8
	fViMatches    = 9

	fMaKind    = 1
	fMaSnippet = 2
	fMaOffset  = 3
)

// appendEvent appends ev's protobuf encoding to b.
func appendEvent(b []byte, ev *Event) []byte {
	b = appendStr(b, fEvRequestID, ev.RequestID)
	b = appendInt(b, fEvCreatedAtUs, ev.CreatedAt.UnixMicro())
	b = appendStr(b, fEvTenantID, ev.TenantID)
	b = appendStr(b, fEvEnv, ev.Env)
	b = appendStr(b, fEvKeyID, ev.KeyID)
	b = appendStr(b, fEvKeyName, ev.KeyName)
	b = appendStr(b, fEvProvider, ev.Provider)
	b = appendStr(b, fEvModel, ev.Model)
	b = appendStr(b, fEvPath, ev.Path)
	b = appendInt(b, fEvStatusCode, int64(int32(ev.StatusCode))) // an int32 field: what toProto's conversion keeps
	if ev.Stream {
		b = protowire.AppendTag(b, fEvStream, protowire.VarintType)
		b = append(b, 1)
	}
	if math.Float64bits(ev.LatencyMS) != 0 { // +0 only
		b = appendDouble(b, fEvLatencyMs, ev.LatencyMS)
	}
	if ev.TTFBMS != nil {
		b = appendDouble(b, fEvTtfbMs, *ev.TTFBMS)
	}
	b = appendOptInt(b, fEvPromptTokens, ev.PromptTokens)
	b = appendOptInt(b, fEvCompletionTokens, ev.CompletionTokens)
	b = appendOptInt(b, fEvTotalTokens, ev.TotalTokens)
	b = appendOptInt(b, fEvCachedTokens, ev.CachedTokens)
	if ev.CostUSD != nil {
		b = protowire.AppendTag(b, fEvCostUsdE10, protowire.VarintType)
		b = protowire.AppendVarint(b, uint64(*ev.CostUSD))
	}
	b = appendStr(b, fEvOutcome, ev.Outcome)
	b = appendStr(b, fEvError, ev.Error)
	for _, id := range ev.ViolationIDs {
		b = protowire.AppendTag(b, fEvViolationIDs, protowire.BytesType)
		b = protowire.AppendString(b, id)
	}
	for i := range ev.Violations {
		v := &ev.Violations[i]
		b = protowire.AppendTag(b, fEvViolations, protowire.BytesType)
		b = protowire.AppendVarint(b, uint64(violationSize(v)))
		b = appendViolation(b, v)
	}
	if ev.RequestBody != nil {
		b = protowire.AppendTag(b, fEvRequestBody, protowire.BytesType)
		b = protowire.AppendString(b, *ev.RequestBody)
	}
	if ev.ResponseBody != nil {
		b = protowire.AppendTag(b, fEvResponseBody, protowire.BytesType)
		b = protowire.AppendString(b, *ev.ResponseBody)
	}
	return b
}

func appendViolation(b []byte, v *Violation) []byte {
	b = appendStr(b, fViID, v.ID)
	b = appendStr(b, fViPolicyID, v.PolicyID)
	b = appendStr(b, fViPolicyName, v.PolicyName)
	b = appendStr(b, fViType, v.Type)
	b = appendStr(b, fViAction, v.Action)
	b = appendStr(b, fViSeverity, v.Severity)
	if v.Shadow {
		b = protowire.AppendTag(b, fViShadow, protowire.VarintType)
		b = append(b, 1)
	}
	b = appendStr(b, fViDirection, v.Direction)
	for i := range v.Matches {
		m := &v.Matches[i]
		b = protowire.AppendTag(b, fViMatches, protowire.BytesType)
		b = protowire.AppendVarint(b, uint64(matchSize(m)))
		b = appendStr(b, fMaKind, m.Kind)
		b = appendStr(b, fMaSnippet, m.Snippet)
		b = appendInt(b, fMaOffset, int64(m.Offset))
	}
	return b
}

// violationSize and matchSize are the encoded sizes of a violation and a
// match (without their own tag and length), which precede them.
func violationSize(v *Violation) int {
	n := strSize(fViID, v.ID) + strSize(fViPolicyID, v.PolicyID) + strSize(fViPolicyName, v.PolicyName) +
		strSize(fViType, v.Type) + strSize(fViAction, v.Action) + strSize(fViSeverity, v.Severity) +
		strSize(fViDirection, v.Direction)
	if v.Shadow {
		n += protowire.SizeTag(fViShadow) + 1
	}
	for i := range v.Matches {
		m := matchSize(&v.Matches[i])
		n += protowire.SizeTag(fViMatches) + protowire.SizeBytes(m)
	}
	return n
}

func matchSize(m *Match) int {
	return strSize(fMaKind, m.Kind) + strSize(fMaSnippet, m.Snippet) + intSize(fMaOffset, int64(m.Offset))
}

// appendStr appends a string field without presence (omitted when empty).
func appendStr(b []byte, num protowire.Number, s string) []byte {
	if s == "" {
		return b
	}
	b = protowire.AppendTag(b, num, protowire.BytesType)
	return protowire.AppendString(b, s)
}

// appendInt appends an int64 or int32 field without presence (omitted when
// 0). Negative values take ten bytes, as int32 ones do in protobuf.
func appendInt(b []byte, num protowire.Number, v int64) []byte {
	if v == 0 {
		return b
	}
	b = protowire.AppendTag(b, num, protowire.VarintType)
	return protowire.AppendVarint(b, uint64(v))
}

// appendOptInt appends an optional int64 field when it is set.
func appendOptInt(b []byte, num protowire.Number, v *int64) []byte {
	if v == nil {
		return b
	}
	b = protowire.AppendTag(b, num, protowire.VarintType)
	return protowire.AppendVarint(b, uint64(*v))
}

func appendDouble(b []byte, num protowire.Number, v float64) []byte {
	b = protowire.AppendTag(b, num, protowire.Fixed64Type)
	return protowire.AppendFixed64(b, math.Float64bits(v))
}

func strSize(num protowire.Number, s string) int {
	if s == "" {
		return 0
	}
	return protowire.SizeTag(num) + protowire.SizeBytes(len(s))
}

func intSize(num protowire.Number, v int64) int {
	if v == 0 {
		return 0
	}
	return protowire.SizeTag(num) + protowire.SizeVarint(uint64(v))
}
