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

func (r *reader) more() bool { return r.pos < r.end }

func (r *reader) tag() (protowire.Number, protowire.Type, error) {
	num, typ, n := protowire.ConsumeTag(r.buf[r.pos:r.end])
	if n < 0 || num > protowire.MaxValidNumber {
		return 0, 0, errWire
	}
	r.pos += n
	return num, typ, nil
}

func (r *reader) varint() (uint64, error) {
	v, n := protowire.ConsumeVarint(r.buf[r.pos:r.end])
	if n < 0 {
		return 0, errWire
	}
	r.pos += n
	return v, nil
}

func (r *reader) fixed64() (uint64, error) {
	v, n := protowire.ConsumeFixed64(r.buf[r.pos:r.end])
	if n < 0 {
		return 0, errWire
	}
	r.pos += n
	return v, nil
}

// embedded reads a length-delimited value and returns a reader of it.
func (r *reader) embedded() (reader, error) {
	v, n := protowire.ConsumeBytes(r.buf[r.pos:r.end])
	if n < 0 {
		return reader{}, errWire
	}
	start := r.pos + n - len(v)
	r.pos += n
	return reader{buf: r.buf, pos: start, end: start + len(v)}, nil
}

// str reads a string value (valid UTF-8, as proto3 requires) and returns
// it as a slice of s, buf's string copy.
func (r *reader) str(s string) (string, error) {
	v, err := r.embedded()
	if err != nil {
		return "", err
	}
	if !utf8.Valid(r.buf[v.pos:v.end]) {
		return "", errUTF8
	}
	return s[v.pos:v.end], nil
}

// skip skips the value of a field this schema does not know with this wire
// type.
func (r *reader) skip(num protowire.Number, typ protowire.Type) error {
	n := protowire.ConsumeFieldValue(num, typ, r.buf[r.pos:r.end])
	if n < 0 {
		return errWire
	}
	r.pos += n
	return nil
}

// readEvent decodes pb, a UsageEvent's protobuf bytes. pb is not kept: the
// event's strings are slices of one copy of it.
func readEvent(pb []byte) (ev Event, err error) {
	r, s := reader{buf: pb, end: len(pb)}, string(pb)
	var opt *eventOptionals
	optional := func() *eventOptionals {
		if opt == nil {
			opt = new(eventOptionals)
		}
		return opt
	}
	var createdUs int64
	for r.more() {
		num, typ, err := r.tag()
		if err != nil {
			return Event{}, err
		}
		switch {
		case typ == protowire.BytesType && isEventString(num):
			s, err := r.str(s)
			if err != nil {
				return Event{}, err
			}
			switch num {
			case fEvRequestID:
				ev.RequestID = s
			case fEvTenantID:
				ev.TenantID = s
			case fEvEnv:
				ev.Env = s
			case fEvKeyID:
				ev.KeyID = s
			case fEvKeyName:
				ev.KeyName = s
			case fEvProvider:
				ev.Provider = s
			case fEvModel:
				ev.Model = s
			case fEvPath:
				ev.Path = s
			case fEvOutcome:
				ev.Outcome = s
			case fEvError:
				ev.Error = s
			case fEvViolationIDs:
				ev.ViolationIDs = append(ev.ViolationIDs, s)
			case fEvRequestBody:
				o := optional()
				o.requestBody, ev.RequestBody = s, &o.requestBody
			case fEvResponseBody:
				o := optional()
				o.responseBody, ev.ResponseBody = s, &o.responseBody
			}
		case typ == protowire.BytesType && num == fEvViolations:
			m, err := r.embedded()
			if err != nil {
				return Event{}, err
			}
			var v Violation
			if err := m.violation(s, &v); err != nil {
				return Event{}, err
			}
			ev.Violations = append(ev.Violations, v)
		case typ == protowire.VarintType && isEventVarint(num):
			v, err := r.varint()
			if err != nil {
				return Event{}, err
			}
			switch num {
			case fEvCreatedAtUs:
				createdUs = int64(v)
			case fEvStatusCode:
				ev.StatusCode = int(int32(v))
			case fEvStream:
				ev.Stream = v != 0
			case fEvPromptTokens:
				o := optional()
				o.prompt, ev.PromptTokens = int64(v), &o.prompt
			case fEvCompletionTokens:
				o := optional()
				o.completion, ev.CompletionTokens = int64(v), &o.completion
			case fEvTotalTokens:
				o := optional()
				o.total, ev.TotalTokens = int64(v), &o.total
			case fEvCachedTokens:
				o := optional()
				o.cached, ev.CachedTokens = int64(v), &o.cached
			case fEvCostUsdE10:
				o := optional()
				o.cost, ev.CostUSD = money.USD(int64(v)), &o.cost
			}
		case typ == protowire.Fixed64Type && (num == fEvLatencyMs || num == fEvTtfbMs):
			v, err := r.fixed64()
			if err != nil {
				return Event{}, err
			}
			if num == fEvLatencyMs {
				ev.LatencyMS = math.Float64frombits(v)
			} else {
				o := optional()
				o.ttfb, ev.TTFBMS = math.Float64frombits(v), &o.ttfb
			}
		default:
			if err := r.skip(num, typ); err != nil {
				return Event{}, err
			}
		}
	}
	ev.CreatedAt = time.UnixMicro(createdUs).UTC()
	return ev, nil
}

func isEventString(num protowire.Number) bool {
	switch num {
	case fEvRequestID, fEvTenantID, fEvEnv, fEvKeyID, fEvKeyName, fEvProvider, fEvModel, fEvPath, fEvOutcome, fEvError,
		fEvViolationIDs, fEvRequestBody, fEvResponseBody:
		return true
	}
	return false
}

func isEventVarint(num protowire.Number) bool {
	switch num {
	case fEvCreatedAtUs, fEvStatusCode, fEvStream, fEvPromptTokens, fEvCompletionTokens, fEvTotalTokens, fEvCachedTokens, fEvCostUsdE10:
		return true
	}
	return false
}

// violation decodes a Violation message (fromProto's mapping: Matches is
// never nil).
func (r *reader) violation(s string, v *Violation) error {
	v.Matches = []Match{}
	for r.more() {
		num, typ, err := r.tag()
		if err != nil {
			return err
		}
		switch {
		case typ == protowire.BytesType && num >= fViID && num <= fViDirection && num != fViShadow:
			s, err := r.str(s)
			if err != nil {
				return err
			}
			switch num {
			case fViID:
				v.ID = s
			case fViPolicyID:
				v.PolicyID = s
			case fViPolicyName:
				v.PolicyName = s
			case fViType:
				v.Type = s
			case fViAction:
				v.Action = s
			case fViSeverity:
				v.Severity = s
			case fViDirection:
				v.Direction = s
			}
		case typ == protowire.VarintType && num == fViShadow:
			b, err := r.varint()
			if err != nil {
				return err
			}
			v.Shadow = b != 0
		case typ == protowire.BytesType && num == fViMatches:
			m, err := r.embedded()
			if err != nil {
				return err
			}
			var mt Match
			if err := m.match(s, &mt); err != nil {
				return err
			}
			v.Matches = append(v.Matches, mt)
		default:
			if err := r.skip(num, typ); err != nil {
				return err
			}
		}
	}
	return nil
}

// match decodes a Match message.
func (r *reader) match(s string, m *Match) error {
	for r.more() {
		num, typ, err := r.tag()
		if err != nil {
			return err
		}
		switch {
		case typ == protowire.BytesType && (num == fMaKind || num == fMaSnippet):
			s, err := r.str(s)
			if err != nil {
				return err
			}
			if num == fMaKind {
				m.Kind = s
			} else {
				m.Snippet = s
			}
		case typ == protowire.VarintType && num == fMaOffset:
			o, err := r.varint()
			if err != nil {
				return err
			}
			m.Offset = int(int64(o))
		default:
			if err := r.skip(num, typ); err != nil {
				return err
			}
		}
	}
	return nil
}
