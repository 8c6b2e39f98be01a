package usage

import (
	"errors"
	"math"
	"strconv"
	"time"
	"unicode/utf8"
)

// appendEvent appends ev's JSON to dst, byte for byte what json.Marshal(ev)
// produces (TestAppendEventMatchesMarshal, FuzzAppendEvent), in about a
// fifth of its instructions: Publish runs it on the request path (to
// journal the event), where reflection was the largest part of its cost.
// Keep it in step with Event's fields and tags.
func appendEvent(dst []byte, ev *Event) ([]byte, error) {
	var err error
	b := append(dst, `{"request_id":`...)
	b = appendJSONString(b, ev.RequestID)
	b = append(b, `,"created_at":`...)
	if b, err = appendJSONTime(b, ev.CreatedAt); err != nil {
		return dst, err
	}
	b = append(b, `,"tenant_id":`...)
	b = appendJSONString(b, ev.TenantID)
	b = append(b, `,"env":`...)
	b = appendJSONString(b, ev.Env)
	if ev.KeyID != "" {
		b = append(b, `,"key_id":`...)
		b = appendJSONString(b, ev.KeyID)
	}
	if ev.KeyName != "" {
		b = append(b, `,"key_name":`...)
		b = appendJSONString(b, ev.KeyName)
	}
	b = append(b, `,"provider":`...)
	b = appendJSONString(b, ev.Provider)
	if ev.Model != "" {
		b = append(b, `,"model":`...)
		b = appendJSONString(b, ev.Model)
	}
	b = append(b, `,"path":`...)
	b = appendJSONString(b, ev.Path)
	b = append(b, `,"status_code":`...)
	b = strconv.AppendInt(b, int64(ev.StatusCode), 10)
	b = append(b, `,"stream":`...)
	b = strconv.AppendBool(b, ev.Stream)
	b = append(b, `,"latency_ms":`...)
	if b, err = appendJSONFloat(b, ev.LatencyMS); err != nil {
		return dst, err
	}
	if ev.TTFBMS != nil {
		b = append(b, `,"ttfb_ms":`...)
		if b, err = appendJSONFloat(b, *ev.TTFBMS); err != nil {
			return dst, err
		}
	}
	for _, f := range [...]struct {
		key string
		v   *int64
	}{{`,"prompt_tokens":`, ev.PromptTokens}, {`,"completion_tokens":`, ev.CompletionTokens},
		{`,"total_tokens":`, ev.TotalTokens}, {`,"cached_tokens":`, ev.CachedTokens}} {
		if f.v != nil {
			b = append(b, f.key...)
			b = strconv.AppendInt(b, *f.v, 10)
		}
	}
	if ev.CostUSD != nil {
		b = append(b, `,"cost_usd":`...)
		if b, err = appendJSONFloat(b, *ev.CostUSD); err != nil {
			return dst, err
		}
	}
	b = append(b, `,"outcome":`...)
	b = appendJSONString(b, ev.Outcome)
	if ev.Error != "" {
		b = append(b, `,"error":`...)
		b = appendJSONString(b, ev.Error)
	}
	if len(ev.ViolationIDs) > 0 {
		b = append(b, `,"violation_ids":[`...)
		for i, id := range ev.ViolationIDs {
			if i > 0 {
				b = append(b, ',')
			}
			b = appendJSONString(b, id)
		}
		b = append(b, ']')
	}
	if len(ev.Violations) > 0 {
		b = append(b, `,"violations":[`...)
		for i := range ev.Violations {
			if i > 0 {
				b = append(b, ',')
			}
			b = appendViolation(b, &ev.Violations[i])
		}
		b = append(b, ']')
	}
	if ev.RequestBody != nil {
		b = append(b, `,"request_body":`...)
		b = appendJSONString(b, *ev.RequestBody)
	}
	if ev.ResponseBody != nil {
		b = append(b, `,"response_body":`...)
		b = appendJSONString(b, *ev.ResponseBody)
	}
	return append(b, '}'), nil
}

func appendViolation(b []byte, v *Violation) []byte {
	b = append(b, `{"id":`...)
	b = appendJSONString(b, v.ID)
	b = append(b, `,"policy_id":`...)
	b = appendJSONString(b, v.PolicyID)
	b = append(b, `,"policy_name":`...)
	b = appendJSONString(b, v.PolicyName)
	b = append(b, `,"type":`...)
	b = appendJSONString(b, v.Type)
	b = append(b, `,"action":`...)
	b = appendJSONString(b, v.Action)
	b = append(b, `,"severity":`...)
	b = appendJSONString(b, v.Severity)
	if v.Shadow {
		b = append(b, `,"shadow":true`...)
	}
	b = append(b, `,"direction":`...)
	b = appendJSONString(b, v.Direction)
	b = append(b, `,"matches":`...)
	if v.Matches == nil {
		b = append(b, "null"...)
	} else {
		b = append(b, '[')
		for i, m := range v.Matches {
			if i > 0 {
				b = append(b, ',')
			}
			b = append(b, `{"kind":`...)
			b = appendJSONString(b, m.Kind)
			b = append(b, `,"snippet":`...)
			b = appendJSONString(b, m.Snippet)
			b = append(b, `,"offset":`...)
			b = strconv.AppendInt(b, int64(m.Offset), 10)
			b = append(b, '}')
		}
		b = append(b, ']')
	}
	return append(b, '}')
}

// appendJSONTime is time.Time's MarshalJSON, appended.
func appendJSONTime(b []byte, t time.Time) ([]byte, error) {
	b = append(b, '"')
	n0 := len(b)
	b = t.AppendFormat(b, time.RFC3339Nano)
	// The checks of Time.MarshalJSON: what RFC 3339 cannot express.
	switch {
	case len(b)-n0 < len("2006-01-02T15:04:05Z") || b[n0+len("9999")] != '-':
		return b, errors.New("Time.MarshalJSON: year outside of range [0,9999]")
	case b[len(b)-1] != 'Z':
		c := b[len(b)-len("Z07:00")]
		hh := 10*(b[len(b)-len("07:00")]-'0') + (b[len(b)-len("7:00")] - '0')
		if ('0' <= c && c <= '9') || hh >= 24 {
			return b, errors.New("Time.MarshalJSON: timezone hour outside of range [0,23]")
		}
	}
	return append(b, '"'), nil
}

// appendJSONFloat is encoding/json's float64 encoding (ES6 number to
// string: %f between 1e-6 and 1e21, else %e without exponent padding).
func appendJSONFloat(b []byte, f float64) ([]byte, error) {
	if math.IsInf(f, 0) || math.IsNaN(f) {
		return b, errors.New("json: unsupported value: " + strconv.FormatFloat(f, 'g', -1, 64))
	}
	abs := math.Abs(f)
	format := byte('f')
	if abs != 0 && (abs < 1e-6 || abs >= 1e21) {
		format = 'e'
	}
	b = strconv.AppendFloat(b, f, format, -1, 64)
	if format == 'e' {
		// clean up e-09 to e-9
		n := len(b)
		if n >= 4 && b[n-4] == 'e' && b[n-3] == '-' && b[n-2] == '0' {
			b[n-2] = b[n-1]
			b = b[:n-1]
		}
	}
	return b, nil
}

const hexDigits = "0123456789abcdef"

// jsonSafe marks the ASCII bytes a JSON string holds as they are (with
// HTML escaping): not control characters, ", \\, <, > nor &. Bytes from
// 0x80 are false: they take the UTF-8 path.
var jsonSafe = func() (t [256]bool) {
	for c := 0x20; c < utf8.RuneSelf; c++ {
		t[c] = c != '"' && c != '\\' && c != '<' && c != '>' && c != '&'
	}
	return t
}()

// appendJSONString is encoding/json's string encoding with HTML escaping
// (json.Marshal's default): ", \ and control characters escaped, <, > and
// & as \u003c…, invalid UTF-8 as \ufffd, U+2028 and U+2029 escaped.
func appendJSONString(dst []byte, s string) []byte {
	dst = append(dst, '"')
	start := 0
	for i := 0; i < len(s); {
		for i < len(s) && jsonSafe[s[i]] { // the common case, tight
			i++
		}
		if i == len(s) {
			break
		}
		if c := s[i]; c < utf8.RuneSelf {
			dst = append(dst, s[start:i]...)
			switch c {
			case '\\', '"':
				dst = append(dst, '\\', c)
			case '\b':
				dst = append(dst, '\\', 'b')
			case '\f':
				dst = append(dst, '\\', 'f')
			case '\n':
				dst = append(dst, '\\', 'n')
			case '\r':
				dst = append(dst, '\\', 'r')
			case '\t':
				dst = append(dst, '\\', 't')
			default:
				dst = append(dst, '\\', 'u', '0', '0', hexDigits[c>>4], hexDigits[c&0xF])
			}
			i++
			start = i
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError && size == 1 {
			dst = append(dst, s[start:i]...)
			dst = append(dst, `\ufffd`...)
			i += size
			start = i
			continue
		}
		if r == '\u2028' || r == '\u2029' {
			dst = append(dst, s[start:i]...)
			dst = append(dst, '\\', 'u', '2', '0', '2', hexDigits[r&0xF])
			i += size
			start = i
			continue
		}
		i += size
	}
	dst = append(dst, s[start:]...)
	return append(dst, '"')
}
