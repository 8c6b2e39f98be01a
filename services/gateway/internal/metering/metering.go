// Package metering holds the provider-agnostic rules of token metering: the
// Usage a request is billed on, how a reported counter is read (Count), and
// when a usage report is trustworthy at all (MakeUsage). Each provider
// package (internal/provider/...) reads its own response and stream formats
// with these pieces; this package knows no provider.
//
// Usage counters that a provider reported in a malformed way (negative,
// fractional, not a number, or beyond int64) make the whole result unknown
// rather than guessed: metering never records a fabricated number.
package metering

import (
	"bytes"
	"encoding/json"
	"errors"
	"math"
	"strconv"

	"trueportai/services/gateway/internal/jsonscan"
)

// Usage is what was metered. Known=false means the provider did not report
// usage (record as unknown, never as 0).
type Usage struct {
	Model            string
	PromptTokens     int64 // all input tokens, including cached / cache-write tokens
	CompletionTokens int64 // all output tokens, including reasoning / thinking tokens
	TotalTokens      int64
	CachedTokens     int64 // cached input tokens (read from the provider's cache)
	Known            bool
}

// StreamMeter accumulates usage from the events of one stream. Event takes
// one event: its name (empty if the framing has none) and its payload. It
// reports whether the event is forwarded to the client (false only for an
// event the gateway itself asked for, e.g. an injected usage chunk).
// Implementations are not safe for concurrent use and must not retain data.
type StreamMeter interface {
	Event(name, data []byte) (forward bool)
	// Usage returns the usage metered so far; Model is filled in whenever
	// the stream named it, even if usage itself is unknown.
	Usage() Usage
	// Done reports whether the stream reached its proper final event.
	Done() bool
}

// MemberSink takes the members of a usage object one by one.
type MemberSink interface{ Member(key, val []byte) }

// TopLevel reads a JSON object's top-level string member modelKey and feeds
// the members of its member usageKey to usage, skipping every other member
// without decoding it (a completion's content is most of the body). Keys
// match exactly, as providers send them; the last occurrence wins, as with
// encoding/json. ok=false when body is not one valid JSON object.
func TopLevel(body []byte, modelKey, usageKey string, usage MemberSink) (model string, ok bool) {
	i := jsonscan.SkipWS(body, 0)
	if i >= len(body) || body[i] != '{' {
		return "", false
	}
	// One pass checks the body and finds the two members; a body naming
	// usage twice is read again member by member, as before.
	var modelVal, usageVal []byte
	usages := 0
	if !jsonscan.ValidMembers(body, func(raw, val []byte) {
		switch key := jsonscan.KeyName(raw); {
		case string(key) == modelKey:
			if len(val) > 2 && val[0] == '"' {
				modelVal = val
			}
		case string(key) == usageKey:
			usageVal = val
			usages++
		}
	}) {
		return "", false
	}
	if usages <= 1 {
		if modelVal != nil {
			model = jsonscan.Unquote(modelVal)
		}
		if usageVal != nil {
			jsonscan.EachMember(usageVal, usage.Member)
		}
		return model, true
	}
	jsonscan.EachMember(body, func(key, val []byte) {
		switch string(key) {
		case modelKey:
			if s := jsonscan.Unquote(val); s != "" {
				model = s
			}
		case usageKey:
			jsonscan.EachMember(val, usage.Member)
		}
	})
	return model, true
}

// Decode unmarshals data into v and reports whether v may be used. Type
// mismatches in fields that do not matter (e.g. a numeric "model") leave the
// other fields decoded, so they are tolerated; syntax errors are not.
func Decode(data []byte, v any) bool {
	err := json.Unmarshal(data, v)
	if err == nil {
		return true
	}
	var te *json.UnmarshalTypeError
	return errors.As(err, &te)
}

// Count is one usage counter as reported by a provider: absent (null or
// missing), set to a valid non-negative integer, or bad (reported but not a
// usable token count).
type Count struct {
	v   int64
	set bool
	bad bool
}

// UnmarshalJSON never fails, so that one odd counter cannot abort decoding of
// the rest of the payload; it records bad instead.
func (c *Count) UnmarshalJSON(b []byte) error {
	*c = Count{}
	if string(b) == "null" {
		return nil
	}
	// proto3 JSON encodes 64-bit integers as strings; accept "123" too.
	if len(b) >= 2 && b[0] == '"' && b[len(b)-1] == '"' {
		b = b[1 : len(b)-1]
	}
	v, ok := parseCount(b)
	c.v, c.set, c.bad = v, ok, !ok
	return nil
}

// Read sets c from a raw JSON value (UnmarshalJSON without the error).
func (c *Count) Read(b []byte) { _ = c.UnmarshalJSON(b) }

// Reported reports whether the provider sent the counter at all.
func (c Count) Reported() bool { return c.set || c.bad }

// parseCount parses a non-negative integer token count. Integral values in
// exponent or fractional notation ("12.0", "1e3") are accepted; negative,
// fractional, non-numeric and out-of-range values are rejected.
func parseCount(b []byte) (int64, bool) {
	if len(b) == 0 {
		return 0, false
	}
	var v int64
	for _, c := range b {
		if c < '0' || c > '9' {
			if c == '.' || c == 'e' || c == 'E' {
				return parseCountFloat(b)
			}
			return 0, false
		}
		d := int64(c - '0')
		if v > (math.MaxInt64-d)/10 {
			return 0, false
		}
		v = v*10 + d
	}
	return v, true
}

func parseCountFloat(b []byte) (int64, bool) {
	if b[0] < '0' || b[0] > '9' {
		return 0, false
	}
	f, err := strconv.ParseFloat(string(b), 64)
	// 1<<63 is exactly representable; anything at or above it overflows int64.
	if err != nil || f < 0 || f >= 1<<63 || f != math.Trunc(f) {
		return 0, false
	}
	return int64(f), true
}

// satAdd adds two non-negative counters, saturating instead of overflowing.
func satAdd(a, b int64) int64 {
	if a > math.MaxInt64-b {
		return math.MaxInt64
	}
	return a + b
}

// Sum combines counters that make up one Usage field.
func Sum(cs ...Count) Count {
	var r Count
	for _, c := range cs {
		r.v = satAdd(r.v, c.v)
		r.set = r.set || c.set
		r.bad = r.bad || c.bad
	}
	return r
}

// FirstReported returns a if the provider sent it, else b.
func FirstReported(a, b Count) Count {
	if a.Reported() {
		return a
	}
	return b
}

// MakeUsage applies the common rules: unknown unless prompt or completion
// counts were reported and every counter used is valid; total falls back to
// prompt+completion when the provider omitted it (pass a zero Count).
func MakeUsage(model string, prompt, completion, total, cached Count) Usage {
	u := Usage{Model: model}
	if prompt.bad || completion.bad || total.bad || cached.bad {
		return u
	}
	if !prompt.set && !completion.set {
		return u
	}
	u.PromptTokens = prompt.v
	u.CompletionTokens = completion.v
	u.CachedTokens = cached.v
	if total.set {
		u.TotalTokens = total.v
	} else {
		u.TotalTokens = satAdd(prompt.v, completion.v)
	}
	u.Known = true
	return u
}

// StringSink decodes a JSON string into *Dst, allocating only when the value
// differs from what Dst already holds; empty strings and null leave Dst alone.
type StringSink struct{ Dst *string }

// UnmarshalJSON implements json.Unmarshaler.
func (s *StringSink) UnmarshalJSON(b []byte) error {
	if s.Dst == nil || len(b) < 3 || b[0] != '"' || b[len(b)-1] != '"' {
		return nil
	}
	inner := b[1 : len(b)-1]
	if bytes.IndexByte(inner, '\\') < 0 {
		if string(inner) != *s.Dst {
			*s.Dst = string(inner)
		}
		return nil
	}
	var v string
	if json.Unmarshal(b, &v) == nil && v != "" {
		*s.Dst = v
	}
	return nil
}

// Flag records whether a JSON string field is present and non-empty.
type Flag bool

// UnmarshalJSON implements json.Unmarshaler.
func (f *Flag) UnmarshalJSON(b []byte) error {
	*f = len(b) > 2 && b[0] == '"'
	return nil
}
