package metering

import (
	"encoding/json"
	"net/url"
	"strings"
)

// Error is the type of this package's sentinel errors.
type Error string

func (e Error) Error() string { return string(e) }

const (
	// ErrNotJSON is returned by EnsureStreamUsage for a body that is not valid JSON.
	ErrNotJSON Error = "metering: request body is not valid JSON"
	// ErrBadStreamOptions is returned by EnsureStreamUsage when stream_options
	// is present but neither an object nor null, so include_usage cannot be added.
	ErrBadStreamOptions Error = "metering: stream_options is not a JSON object"
)

// EnsureStreamUsage returns the request body with
// stream_options.include_usage=true added when "stream":true, and whether the
// client had asked for it itself (include_usage already true, in which case
// the body is returned unchanged).
//
// The body is edited in place at the byte level: every other field, its
// order, formatting and number text is preserved exactly. Non-streaming
// bodies and non-object JSON are returned unchanged (the same slice). On
// error out is always the original body, so a caller may forward it as is
// and let the upstream reject it.
//
// Use it for OpenAI/Azure Chat Completions (and legacy Completions) only.
// The Responses API always reports usage in response.completed and rejects
// an unknown stream_options.include_usage.
//
// With duplicate keys, the last occurrence is the one read and edited, as
// with encoding/json.
func EnsureStreamUsage(body []byte) (out []byte, clientAsked bool, err error) {
	if !json.Valid(body) {
		return body, false, ErrNotJSON
	}
	i := skipWS(body, 0)
	if i >= len(body) || body[i] != '{' {
		return body, false, nil
	}
	var stream, opts member
	var haveStream, haveOpts bool
	lastEnd := -1 // end of the last top-level value
	for pos, first := i+1, true; ; first = false {
		m, next, done, ok := nextMember(body, pos, first)
		if !ok {
			return body, false, ErrNotJSON
		}
		if done {
			break
		}
		switch {
		case keyIs(m.key, "stream"):
			stream, haveStream = m, true
		case keyIs(m.key, "stream_options"):
			opts, haveOpts = m, true
		}
		lastEnd = m.end
		pos = next
	}
	if !haveStream || string(body[stream.start:stream.end]) != "true" {
		return body, false, nil
	}
	if !haveOpts {
		return splice(body, lastEnd, lastEnd, `,"stream_options":{"include_usage":true}`), false, nil
	}
	switch body[opts.start] {
	case 'n': // null
		return splice(body, opts.start, opts.end, `{"include_usage":true}`), false, nil
	case '{':
	default:
		return body, false, ErrBadStreamOptions
	}
	var inc member
	var haveInc bool
	innerEnd := -1
	for pos, first := opts.start+1, true; ; first = false {
		m, next, done, ok := nextMember(body, pos, first)
		if !ok {
			return body, false, ErrNotJSON
		}
		if done {
			break
		}
		if keyIs(m.key, "include_usage") {
			inc, haveInc = m, true
		}
		innerEnd = m.end
		pos = next
	}
	switch {
	case haveInc && string(body[inc.start:inc.end]) == "true":
		return body, true, nil
	case haveInc:
		return splice(body, inc.start, inc.end, `true`), false, nil
	case innerEnd < 0: // empty object
		return splice(body, opts.start+1, opts.start+1, `"include_usage":true`), false, nil
	default:
		return splice(body, innerEnd, innerEnd, `,"include_usage":true`), false, nil
	}
}

// splice returns a new slice with b[from:to] replaced by s.
func splice(b []byte, from, to int, s string) []byte {
	out := make([]byte, 0, len(b)-(to-from)+len(s))
	out = append(out, b[:from]...)
	out = append(out, s...)
	return append(out, b[to:]...)
}

// RequestModelAndStream reads cheap facts from a request body: the requested
// "model" and whether it asks to stream ("stream":true), for OpenAI, Azure
// and Anthropic. Gemini request bodies carry neither (both come from the URL
// path), so for Google it returns "", false: use GeminiModelAndStream.
// Azure deployments usually omit "model" from the body; the deployment name
// is in the URL. Invalid JSON yields "", false.
func RequestModelAndStream(p Provider, body []byte) (model string, stream bool) {
	if p == Google || !json.Valid(body) {
		return "", false
	}
	i := skipWS(body, 0)
	if i >= len(body) || body[i] != '{' {
		return "", false
	}
	var modelRaw []byte
	for pos, first := i+1, true; ; first = false {
		m, next, done, ok := nextMember(body, pos, first)
		if !ok || done {
			break
		}
		switch {
		case keyIs(m.key, "model"):
			modelRaw = body[m.start:m.end]
		case keyIs(m.key, "stream"):
			stream = string(body[m.start:m.end]) == "true"
		}
		pos = next
	}
	return unquote(modelRaw), stream
}

// GeminiModelAndStream extracts the model and the streaming flag from a
// Gemini / Vertex AI request URL path, e.g.
//
//	/v1beta/models/gemini-2.5-flash:streamGenerateContent
//	/v1/projects/p/locations/us-central1/publishers/google/models/gemini-2.5-pro:generateContent
//
// The path may be escaped (r.URL.EscapedPath()) or not; a query string, if
// included, is ignored. The model is the resource name after the last '/',
// before the ':method' suffix, unescaped ("%3A" is treated as ':').
func GeminiModelAndStream(urlPath string) (model string, stream bool) {
	if q := strings.IndexAny(urlPath, "?#"); q >= 0 {
		urlPath = urlPath[:q]
	}
	seg := urlPath[strings.LastIndexByte(urlPath, '/')+1:]
	if strings.IndexByte(seg, '%') >= 0 {
		if u, err := url.PathUnescape(seg); err == nil {
			seg = u[strings.LastIndexByte(u, '/')+1:]
		}
	}
	method := ""
	if c := strings.LastIndexByte(seg, ':'); c >= 0 {
		seg, method = seg[:c], seg[c+1:]
	}
	return seg, method == "streamGenerateContent"
}

// IsUsageOnlyChunk reports whether an OpenAI/Azure stream data payload is the
// extra usage chunk produced by stream_options.include_usage (choices empty
// and usage non-null), so a gateway that injected include_usage can hide it
// from a client who did not ask. Azure's leading prompt_filter_results chunk
// (empty choices, no usage) is not a usage-only chunk.
func IsUsageOnlyChunk(data []byte) bool {
	if !hasNonNullKey(data, `"usage"`) {
		return false
	}
	var c struct {
		Choices choices     `json:"choices"`
		Usage   openAIUsage `json:"usage"`
	}
	if !decode(data, &c) {
		return false
	}
	return !c.Choices.nonEmpty && c.Usage.present()
}

// choices records whether a JSON "choices" member was seen and whether it
// holds anything; null and [] are empty.
type choices struct{ seen, nonEmpty bool }

func (c *choices) UnmarshalJSON(b []byte) error {
	c.seen = true
	if string(b) == "null" {
		c.nonEmpty = false
		return nil
	}
	if len(b) > 0 && b[0] == '[' {
		i := skipWS(b, 1)
		c.nonEmpty = i < len(b) && b[i] != ']'
		return nil
	}
	c.nonEmpty = true // not an array: not a usage-only chunk
	return nil
}
