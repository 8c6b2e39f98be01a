package openai

import (
	"errors"

	"trueportai/services/gateway/internal/jsonscan"
)

var (
	// ErrNotJSON is returned by EnsureStreamUsage for a body that is not valid JSON.
	ErrNotJSON = errors.New("openai: request body is not valid JSON")
	// ErrBadStreamOptions is returned by EnsureStreamUsage when stream_options
	// is present but neither an object nor null, so include_usage cannot be added.
	ErrBadStreamOptions = errors.New("openai: stream_options is not a JSON object")
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
	// One pass checks the body (json.Valid's grammar, fuzzed) and finds the
	// two members: a prompt can be most of a megabyte.
	var stream, opts jsonscan.Member
	var haveStream, haveOpts bool
	lastEnd := -1 // end of the last top-level value
	if !jsonscan.ValidMemberBounds(body, func(m jsonscan.Member) {
		switch {
		case jsonscan.KeyIs(m.Key, "stream"):
			stream, haveStream = m, true
		case jsonscan.KeyIs(m.Key, "stream_options"):
			opts, haveOpts = m, true
		}
		lastEnd = m.End
	}) {
		return body, false, ErrNotJSON
	}
	if !haveStream || string(body[stream.Start:stream.End]) != "true" {
		return body, false, nil
	}
	if !haveOpts {
		return jsonscan.Splice(body, lastEnd, lastEnd, `,"stream_options":{"include_usage":true}`), false, nil
	}
	switch body[opts.Start] {
	case 'n': // null
		return jsonscan.Splice(body, opts.Start, opts.End, `{"include_usage":true}`), false, nil
	case '{':
	default:
		return body, false, ErrBadStreamOptions
	}
	var inc jsonscan.Member
	var haveInc bool
	innerEnd := -1
	for pos, first := opts.Start+1, true; ; first = false {
		m, next, done, ok := jsonscan.NextMember(body, pos, first)
		if !ok {
			return body, false, ErrNotJSON
		}
		if done {
			break
		}
		if jsonscan.KeyIs(m.Key, "include_usage") {
			inc, haveInc = m, true
		}
		innerEnd = m.End
		pos = next
	}
	switch {
	case haveInc && string(body[inc.Start:inc.End]) == "true":
		return body, true, nil
	case haveInc:
		return jsonscan.Splice(body, inc.Start, inc.End, `true`), false, nil
	case innerEnd < 0: // empty object
		return jsonscan.Splice(body, opts.Start+1, opts.Start+1, `"include_usage":true`), false, nil
	default:
		return jsonscan.Splice(body, innerEnd, innerEnd, `,"include_usage":true`), false, nil
	}
}
