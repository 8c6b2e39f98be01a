package usage

import (
	"bytes"
	"fmt"
	"math"
	"reflect"
	"strings"
	"testing"
	"time"

	"google.golang.org/protobuf/encoding/protowire"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"

	usagev1 "trueportai/proto/gen/trueport/usage/v1"
	"trueportai/services/internal/money"
)

// fromProto is the reference mapping of a message to its Event (what
// readEvent must give for the message's bytes); toProto is its inverse.
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

// toProto is the reference mapping of an Event to its message, the inverse
// of fromProto: appendEvent must write what proto.Marshal writes for it.
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

// wireCases are events covering every field, zero and non-zero, absent and
// present, and the encodings' edges (10-byte varints, multi-byte lengths,
// -0 and NaN, empty repeated elements).
func wireCases() map[string]Event {
	zero, neg, negZero := int64(0), int64(-5), math.Copysign(0, -1)
	big := money.USD(math.MaxInt64)
	empty := ""
	long := strings.Repeat("é", 20_000)
	full := fullEvent()
	clean := cleanEvent()
	cases := map[string]Event{
		"full":  full,
		"proxy": *proxyEvent(),
		"clean": clean,
		"empty": {},
		"negatives": {RequestID: "r", Error: "upstream_timeout", CreatedAt: time.Date(1960, 1, 1, 0, 0, 0, 1000, time.UTC), StatusCode: -1, LatencyMS: -1.5,
			TTFBMS: &negZero, PromptTokens: &neg, CostUSD: new(money.USD(-1)),
			Violations: []Violation{{Matches: []Match{{Offset: -3}}}}},
		"zeros set": {LatencyMS: negZero, TTFBMS: new(0.0), PromptTokens: &zero, CompletionTokens: &zero, TotalTokens: &zero,
			CachedTokens: &zero, CostUSD: new(money.USD(0)), RequestBody: &empty, ResponseBody: &empty},
		"empty elements": {ViolationIDs: []string{"", "", "x"}, Violations: []Violation{{}, {Matches: []Match{{}, {}}}, {Shadow: true}}},
		"NaN and inf":    {LatencyMS: math.NaN(), TTFBMS: new(math.Inf(-1))},
		"large": {RequestID: "r", StatusCode: math.MaxInt32 + 1, CostUSD: &big, RequestBody: &long, ResponseBody: &long,
			Violations: []Violation{{PolicyName: long[:300], Matches: []Match{{Kind: "k", Snippet: long[:200], Offset: math.MaxInt64}}}}},
	}
	return cases
}

// TestAppendEventIsProtoMarshal: appendEvent writes exactly the bytes of
// proto.Marshal, after whatever the buffer already held, and they decode to
// the event.
func TestAppendEventIsProtoMarshal(t *testing.T) {
	for name, ev := range wireCases() {
		t.Run(name, func(t *testing.T) {
			checkWire(t, &ev)
		})
	}
}

func checkWire(t *testing.T, ev *Event) {
	t.Helper()
	want, err := proto.Marshal(toProto(ev))
	if err != nil {
		t.Fatal(err)
	}
	got := appendEvent(nil, ev)
	if !bytes.Equal(got, want) {
		t.Fatalf("appendEvent differs from proto.Marshal:\n got %x\nwant %x", got, want)
	}
	prefixed := appendEvent([]byte("prefix"), ev)
	if string(prefixed[:6]) != "prefix" || !bytes.Equal(prefixed[6:], want) {
		t.Fatalf("appendEvent after a prefix: %x", prefixed)
	}
	var m usagev1.UsageEvent
	if err := proto.Unmarshal(got, &m); err != nil {
		t.Fatalf("proto.Unmarshal: %v", err)
	}
	if !proto.Equal(&m, toProto(ev)) {
		t.Fatalf("decoded message differs:\n got %v\nwant %v", &m, toProto(ev))
	}
	// The line: marshal's stack buffer or heap buffer, same bytes.
	line := marshal(ev)
	if line[0] != binaryMark || b64.EncodeToString(want) != string(line[1:]) {
		t.Fatalf("marshal: %q", line)
	}
}

// TestWireCasesSetEveryField: the cases give every field of the messages a
// value, so a field added to usage.proto fails TestAppendEventIsProtoMarshal
// until appendEvent (and toProto) write it.
func TestWireCasesSetEveryField(t *testing.T) {
	seen := map[protoreflect.FullName]bool{}
	var walk func(m protoreflect.Message)
	walk = func(m protoreflect.Message) {
		m.Range(func(fd protoreflect.FieldDescriptor, v protoreflect.Value) bool {
			seen[fd.FullName()] = true
			if fd.Message() != nil && fd.IsList() {
				for i := range v.List().Len() {
					walk(v.List().Get(i).Message())
				}
			}
			return true
		})
	}
	for _, ev := range wireCases() {
		walk(toProto(&ev).ProtoReflect())
	}
	for _, md := range []protoreflect.MessageDescriptor{(&usagev1.UsageEvent{}).ProtoReflect().Descriptor(),
		(&usagev1.Violation{}).ProtoReflect().Descriptor(), (&usagev1.Match{}).ProtoReflect().Descriptor()} {
		for i := range md.Fields().Len() {
			if fd := md.Fields().Get(i); !seen[fd.FullName()] {
				t.Errorf("no case sets %s", fd.FullName())
			}
		}
	}
}

// FuzzAppendEvent: for any event, appendEvent is proto.Marshal (on the
// sanitised event when proto.Marshal refuses its invalid UTF-8, as Encode
// only ever marshals sanitised events), and proto.Unmarshal reads it back.
func FuzzAppendEvent(f *testing.F) {
	f.Add("req-1", "openai", "{\"a\":1}", 200, int64(1764000000000000), int64(21), 1.5, 0.25, uint16(0xffff), int64(7))
	f.Add("", "", "", 0, int64(0), int64(0), 0.0, 0.0, uint16(0), int64(0))
	f.Add("\xff\x00", "é", strings.Repeat("x", 300), -1, int64(-1), int64(-1), math.Copysign(0, -1), math.NaN(), uint16(0x5555), int64(-1))
	f.Fuzz(func(t *testing.T, id, label, body string, status int, created, tokens int64, latency, ttfb float64, flags uint16, offset int64) {
		bit := func(i int) bool { return flags&(1<<i) != 0 }
		ev := Event{RequestID: id, CreatedAt: time.UnixMicro(created), TenantID: label, Env: label, KeyID: id, KeyName: body,
			Provider: label, Model: body, Path: id, StatusCode: status, Stream: bit(0), LatencyMS: latency, Outcome: label, Error: body}
		if bit(1) {
			ev.TTFBMS = &ttfb
		}
		if bit(2) {
			ev.PromptTokens, ev.CachedTokens = &tokens, &offset
		}
		if bit(3) {
			ev.CompletionTokens, ev.TotalTokens = &offset, &tokens
		}
		if bit(4) {
			c := money.USD(tokens)
			ev.CostUSD = &c
		}
		if bit(5) {
			ev.RequestBody = &body
		}
		if bit(6) {
			ev.ResponseBody = &label
		}
		if bit(7) {
			ev.ViolationIDs = []string{id, label}
		}
		for i := range int(flags>>8) & 3 {
			v := Violation{ID: id, PolicyID: label, PolicyName: body, Type: label, Action: id, Severity: label, Shadow: bit(10 + i), Direction: id}
			for range int(flags>>12) & 3 {
				v.Matches = append(v.Matches, Match{Kind: label, Snippet: body, Offset: int(offset)})
			}
			ev.Violations = append(ev.Violations, v)
		}
		if _, err := proto.Marshal(toProto(&ev)); err != nil {
			ev.Sanitize()
		}
		checkWire(t, &ev)
	})
}

// BenchmarkMarshalEvent is the protobuf encoding of the proxy's typical
// event alone: appendEvent into a reused buffer, against proto.Marshal of
// the generated message (what marshal did before appendEvent).
func BenchmarkMarshalEvent(b *testing.B) {
	ev := proxyEvent()
	b.Run("appendEvent", func(b *testing.B) {
		b.ReportAllocs()
		buf := make([]byte, 0, marshalScratch)
		for b.Loop() {
			buf = appendEvent(buf[:0], ev)
		}
	})
	b.Run("proto.Marshal", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if _, err := proto.Marshal(toProto(ev)); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("line", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			_ = marshal(ev)
		}
	})
}

// protoDecode is the reference decoding readEvent must equal: proto.Unmarshal
// of the generated message, then fromProto.
func protoDecode(pb []byte) (Event, error) {
	var m usagev1.UsageEvent
	if err := proto.Unmarshal(pb, &m); err != nil {
		return Event{}, err
	}
	var ev Event
	fromProto(&m, &ev)
	return ev, nil
}

// checkRead: readEvent accepts pb exactly when proto.Unmarshal does, and
// then gives fromProto's event (floats compared by their bits: NaN too).
func checkRead(t *testing.T, pb []byte) {
	t.Helper()
	want, werr := protoDecode(pb)
	got, gerr := readEvent(pb)
	if (werr == nil) != (gerr == nil) {
		t.Fatalf("% x: proto.Unmarshal error %v, readEvent error %v", pb, werr, gerr)
	}
	if werr != nil {
		return
	}
	if math.Float64bits(got.LatencyMS) != math.Float64bits(want.LatencyMS) ||
		(got.TTFBMS == nil) != (want.TTFBMS == nil) ||
		(got.TTFBMS != nil && math.Float64bits(*got.TTFBMS) != math.Float64bits(*want.TTFBMS)) {
		t.Fatalf("% x: floats differ: got %v %v, want %v %v", pb, got.LatencyMS, got.TTFBMS, want.LatencyMS, want.TTFBMS)
	}
	got.LatencyMS, got.TTFBMS, want.LatencyMS, want.TTFBMS = 0, nil, 0, nil
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("% x:\n got %+v\nwant %+v", pb, got, want)
	}
}

// readCases are the encodings of every wire case, and of what other
// writers may send: fields repeated or out of order (two messages
// concatenated, which protobuf reads as one, merged), unknown fields of
// every wire type, known field numbers with another wire type, invalid
// UTF-8, and every truncation of the full event.
func readCases(t testing.TB) map[string][]byte {
	cases := map[string][]byte{}
	for name, ev := range wireCases() {
		cases[name] = appendEvent(nil, &ev)
	}
	full, proxy := cases["full"], cases["proxy"]
	cases["full then proxy"] = append(bytes.Clone(full), proxy...)
	cases["proxy then full"] = append(bytes.Clone(proxy), full...)
	cases["large then negatives"] = append(bytes.Clone(cases["large"]), cases["negatives"]...)
	var unknown []byte
	unknown = protowire.AppendTag(unknown, 99, protowire.VarintType)
	unknown = protowire.AppendVarint(unknown, 1<<40)
	unknown = protowire.AppendTag(unknown, 100, protowire.Fixed32Type)
	unknown = protowire.AppendFixed32(unknown, 7)
	unknown = protowire.AppendTag(unknown, 101, protowire.BytesType)
	unknown = protowire.AppendString(unknown, "\xff not text")
	unknown = protowire.AppendTag(unknown, 102, protowire.StartGroupType)
	unknown = protowire.AppendTag(unknown, 1, protowire.VarintType)
	unknown = protowire.AppendVarint(unknown, 3)
	unknown = protowire.AppendTag(unknown, 102, protowire.EndGroupType)
	cases["unknown fields"] = append(bytes.Clone(unknown), full...)
	var wrongType []byte
	for _, num := range []protowire.Number{fEvRequestID, fEvViolations, fEvRequestBody} {
		wrongType = protowire.AppendTag(wrongType, num, protowire.VarintType)
		wrongType = protowire.AppendVarint(wrongType, 5)
	}
	for _, num := range []protowire.Number{fEvCreatedAtUs, fEvStream, fEvLatencyMs, fEvCostUsdE10} {
		wrongType = protowire.AppendTag(wrongType, num, protowire.BytesType)
		wrongType = protowire.AppendString(wrongType, "x")
	}
	wrongType = protowire.AppendTag(wrongType, fEvTtfbMs, protowire.Fixed32Type)
	wrongType = protowire.AppendFixed32(wrongType, 1)
	cases["known numbers, other wire types"] = append(bytes.Clone(full), wrongType...)
	var violation []byte
	violation = protowire.AppendTag(violation, fViMatches, protowire.VarintType)
	violation = protowire.AppendVarint(violation, 1)
	violation = protowire.AppendTag(violation, 50, protowire.BytesType)
	violation = protowire.AppendString(violation, "z")
	withViolation := protowire.AppendTag(bytes.Clone(proxy), fEvViolations, protowire.BytesType)
	cases["violation with unknown fields"] = protowire.AppendBytes(withViolation, violation)
	for _, s := range []struct {
		name string
		num  protowire.Number
	}{{"request id", fEvRequestID}, {"violation id", fEvViolationIDs}, {"request body", fEvRequestBody}} {
		b := protowire.AppendTag(bytes.Clone(proxy), s.num, protowire.BytesType)
		cases["invalid UTF-8 in "+s.name] = protowire.AppendString(b, "ok\xc3")
	}
	match := protowire.AppendTag(nil, fMaSnippet, protowire.BytesType)
	match = protowire.AppendString(match, "\xed\xa0\x80") // a surrogate half
	v := protowire.AppendTag(nil, fViMatches, protowire.BytesType)
	v = protowire.AppendBytes(v, match)
	b := protowire.AppendTag(bytes.Clone(proxy), fEvViolations, protowire.BytesType)
	cases["invalid UTF-8 in a match"] = protowire.AppendBytes(b, v)
	cases["end group alone"] = protowire.AppendTag(bytes.Clone(proxy), 7, protowire.EndGroupType)
	cases["field number 0"] = append(bytes.Clone(proxy), 0x02, 0x00)
	cases["field number above the maximum"] = protowire.AppendVarint(bytes.Clone(proxy), uint64(protowire.MaxValidNumber+1)<<3)
	cases["varint of 11 bytes"] = append(protowire.AppendTag(nil, fEvStatusCode, protowire.VarintType), bytes.Repeat([]byte{0xff}, 10)...)
	cases["varint of 11 bytes"] = append(cases["varint of 11 bytes"], 0x01)
	for i := range len(full) {
		cases[fmt.Sprintf("full cut at %d", i)] = full[:i]
	}
	return cases
}

// TestReadEventIsProtoUnmarshal: readEvent decodes what proto.Unmarshal
// decodes into the same event, and refuses what it refuses.
func TestReadEventIsProtoUnmarshal(t *testing.T) {
	refused := 0
	for name, pb := range readCases(t) {
		t.Run(name, func(t *testing.T) { checkRead(t, pb) })
		if _, err := protoDecode(pb); err != nil {
			refused++
		}
	}
	if refused < 8 {
		t.Fatalf("only %d cases are refused by proto.Unmarshal: the refusals are not covered", refused)
	}
}

// FuzzReadEvent: for any bytes, readEvent is proto.Unmarshal then fromProto.
func FuzzReadEvent(f *testing.F) {
	for _, pb := range readCases(f) {
		f.Add(pb)
	}
	f.Fuzz(func(t *testing.T, pb []byte) { checkRead(t, pb) })
}

// BenchmarkDecodeEvent is the ingester's decoding of the proxy's typical
// event line: Decode (base64, then readEvent) against base64 then
// proto.Unmarshal and fromProto (what Decode did before readEvent).
func BenchmarkDecodeEvent(b *testing.B) {
	line := marshal(proxyEvent())
	b.Run("Decode", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if _, err := Decode(line); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("proto.Unmarshal", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			pb := make([]byte, b64.DecodedLen(len(line)-1))
			n, err := b64.Decode(pb, line[1:])
			if err != nil {
				b.Fatal(err)
			}
			if _, err := protoDecode(pb[:n]); err != nil {
				b.Fatal(err)
			}
		}
	})
}
