package usage

import (
	"errors"
	"math"
	"time"
	"unicode/utf8"

	"google.golang.org/protobuf/encoding/protowire"

	"trueportai/services/internal/money"
)

// The protobuf decoding of an Event, written by hand: what proto.Unmarshal
// of a trueport.usage.v1.UsageEvent followed by fromProto gives, without
// building the message (FuzzReadEvent holds the two equal, refusals
// included). The ingester decodes every event it stores; the strings of
// an event are slices of one copy of its bytes, and its optional values
// share one allocation (docs/benchmarks.md, "The ingester's event
// decoding").
//
// The rules are proto.Unmarshal's for this schema: fields in any order, the
// last occurrence of a singular field wins, repeated fields append, a
// known field number with another wire type is an unknown field, unknown
// fields (groups included) are skipped, strings must be valid UTF-8, and
// a malformed tag, length or varint is an error.

var (
	errWire = errors.New("invalid wire-format data")
	errUTF8 = errors.New("string field contains invalid UTF-8")
)

// eventOptionals holds an event's optional values: one allocation for all
// of an Event's pointers.
type eventOptionals struct {
	ttfb                              float64
	prompt, completion, total, cached int64
	cost                              money.USD
	requestBody, responseBody         string
}

// reader reads the message in buf[pos:end]. String values are given as
// their bounds in buf: the caller slices its string copy of buf (holding
// the string here would make buf escape with it).
type reader struct {
	buf      []byte
	pos, end int
}

// field is one field read: its number, its wire type and its value (v for a
// varint or a fixed64, body for a length-delimited value; fields of other
// wire types, which this schema does not use, are skipped).
type field struct {
	num  protowire.Number
	typ  protowire.Type
	v    uint64
	body reader
}

func (r *reader) more() bool { return r.pos < r.end }

// next reads the next field. Reading a value is what skipping it would do,
// so unknown fields cost nothing more.
func (r *reader) next() (f field, err error) {
	var n int
	f.num, f.typ, n = protowire.ConsumeTag(r.buf[r.pos:r.end])
	if n < 0 || f.num > protowire.MaxValidNumber {
		return f, errWire
	}
	r.pos += n
	b := r.buf[r.pos:r.end]
	switch f.typ {
	case protowire.VarintType:
		f.v, n = protowire.ConsumeVarint(b)
	case protowire.Fixed64Type:
		f.v, n = protowire.ConsumeFixed64(b)
	case protowire.BytesType:
		var v []byte
		v, n = protowire.ConsumeBytes(b)
		start := r.pos + n - len(v)
		f.body = reader{buf: r.buf, pos: start, end: start + len(v)}
	default:
		n = protowire.ConsumeFieldValue(f.num, f.typ, b)
	}
	if n < 0 {
		return f, errWire
	}
	r.pos += n
	return f, nil
}

// text is a length-delimited value as a string field's: valid UTF-8, as
// proto3 requires, and a slice of s, buf's string copy.
func (f field) text(s string) (string, error) {
	if !utf8.Valid(f.body.buf[f.body.pos:f.body.end]) {
		return "", errUTF8
	}
	return s[f.body.pos:f.body.end], nil
}

// readEvent decodes pb, a UsageEvent's protobuf bytes. pb is not kept: the
// event's strings are slices of one copy of it.
func readEvent(pb []byte) (Event, error) {
	r, s := reader{buf: pb, end: len(pb)}, string(pb)
	var ev Event
	var opt *eventOptionals
	optional := func() *eventOptionals {
		if opt == nil {
			opt = new(eventOptionals)
		}
		return opt
	}
	var createdUs int64
	for r.more() {
		f, err := r.next()
		if err != nil {
			return Event{}, err
		}
		switch f.typ {
		case protowire.BytesType:
			if f.num == fEvViolations {
				var v Violation
				if err := f.body.violation(s, &v); err != nil {
					return Event{}, err
				}
				ev.Violations = append(ev.Violations, v)
			} else if dst := eventString(&ev, f.num, optional); dst != nil {
				if *dst, err = f.text(s); err != nil {
					return Event{}, err
				}
			} else if f.num == fEvViolationIDs {
				id, err := f.text(s)
				if err != nil {
					return Event{}, err
				}
				ev.ViolationIDs = append(ev.ViolationIDs, id)
			}
		case protowire.VarintType:
			switch f.num {
			case fEvCreatedAtUs:
				createdUs = int64(f.v)
			case fEvStatusCode:
				ev.StatusCode = int(int32(f.v))
			case fEvStream:
				ev.Stream = f.v != 0
			case fEvPromptTokens:
				o := optional()
				o.prompt, ev.PromptTokens = int64(f.v), &o.prompt
			case fEvCompletionTokens:
				o := optional()
				o.completion, ev.CompletionTokens = int64(f.v), &o.completion
			case fEvTotalTokens:
				o := optional()
				o.total, ev.TotalTokens = int64(f.v), &o.total
			case fEvCachedTokens:
				o := optional()
				o.cached, ev.CachedTokens = int64(f.v), &o.cached
			case fEvCostUsdE10:
				o := optional()
				o.cost, ev.CostUSD = money.USD(int64(f.v)), &o.cost
			}
		case protowire.Fixed64Type:
			switch f.num {
			case fEvLatencyMs:
				ev.LatencyMS = math.Float64frombits(f.v)
			case fEvTtfbMs:
				o := optional()
				o.ttfb, ev.TTFBMS = math.Float64frombits(f.v), &o.ttfb
			}
		}
	}
	ev.CreatedAt = time.UnixMicro(createdUs).UTC()
	return ev, nil
}

// eventString is where ev keeps its singular string field num (nil: num is
// not one); an optional one is set present.
func eventString(ev *Event, num protowire.Number, optional func() *eventOptionals) *string {
	switch num {
	case fEvRequestID:
		return &ev.RequestID
	case fEvTenantID:
		return &ev.TenantID
	case fEvEnv:
		return &ev.Env
	case fEvKeyID:
		return &ev.KeyID
	case fEvKeyName:
		return &ev.KeyName
	case fEvProvider:
		return &ev.Provider
	case fEvModel:
		return &ev.Model
	case fEvPath:
		return &ev.Path
	case fEvOutcome:
		return &ev.Outcome
	case fEvError:
		return &ev.Error
	case fEvRequestBody:
		ev.RequestBody = &optional().requestBody
		return ev.RequestBody
	case fEvResponseBody:
		ev.ResponseBody = &optional().responseBody
		return ev.ResponseBody
	}
	return nil
}

// violation decodes a Violation message (fromProto's mapping: Matches is
// never nil).
func (r *reader) violation(s string, v *Violation) error {
	v.Matches = []Match{}
	for r.more() {
		f, err := r.next()
		if err != nil {
			return err
		}
		switch {
		case f.typ == protowire.VarintType && f.num == fViShadow:
			v.Shadow = f.v != 0
		case f.typ == protowire.BytesType && f.num == fViMatches:
			var m Match
			if err := f.body.match(s, &m); err != nil {
				return err
			}
			v.Matches = append(v.Matches, m)
		case f.typ == protowire.BytesType:
			if dst := violationString(v, f.num); dst != nil {
				if *dst, err = f.text(s); err != nil {
					return err
				}
			}
		}
	}
	return nil
}

// violationString is where v keeps its string field num (nil: not one).
func violationString(v *Violation, num protowire.Number) *string {
	switch num {
	case fViID:
		return &v.ID
	case fViPolicyID:
		return &v.PolicyID
	case fViPolicyName:
		return &v.PolicyName
	case fViType:
		return &v.Type
	case fViAction:
		return &v.Action
	case fViSeverity:
		return &v.Severity
	case fViDirection:
		return &v.Direction
	}
	return nil
}

// match decodes a Match message.
func (r *reader) match(s string, m *Match) error {
	for r.more() {
		f, err := r.next()
		if err != nil {
			return err
		}
		switch {
		case f.typ == protowire.VarintType && f.num == fMaOffset:
			m.Offset = int(int64(f.v))
		case f.typ == protowire.BytesType && f.num == fMaKind:
			if m.Kind, err = f.text(s); err != nil {
				return err
			}
		case f.typ == protowire.BytesType && f.num == fMaSnippet:
			if m.Snippet, err = f.text(s); err != nil {
				return err
			}
		}
	}
	return nil
}
