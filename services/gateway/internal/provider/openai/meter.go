package openai

import (
	"bytes"

	"trueportai/services/gateway/internal/jsonscan"
	"trueportai/services/gateway/internal/metering"
)

// usage covers chat completions / legacy completions / embeddings
// (prompt_tokens, completion_tokens) and the Responses API (input_tokens,
// output_tokens). Reasoning tokens are already part of completion/output
// tokens and are not added again.
type usage struct {
	PromptTokens       metering.Count
	CompletionTokens   metering.Count
	TotalTokens        metering.Count
	PromptCachedTokens metering.Count // prompt_tokens_details.cached_tokens
	InputTokens        metering.Count
	OutputTokens       metering.Count
	InputCachedTokens  metering.Count // input_tokens_details.cached_tokens
}

// Member reads one member of a usage object.
func (u *usage) Member(key, val []byte) {
	switch string(key) {
	case "prompt_tokens":
		u.PromptTokens.Read(val)
	case "completion_tokens":
		u.CompletionTokens.Read(val)
	case "total_tokens":
		u.TotalTokens.Read(val)
	case "input_tokens":
		u.InputTokens.Read(val)
	case "output_tokens":
		u.OutputTokens.Read(val)
	case "prompt_tokens_details":
		jsonscan.EachMember(val, func(k, v []byte) {
			if string(k) == "cached_tokens" {
				u.PromptCachedTokens.Read(v)
			}
		})
	case "input_tokens_details":
		jsonscan.EachMember(val, func(k, v []byte) {
			if string(k) == "cached_tokens" {
				u.InputCachedTokens.Read(v)
			}
		})
	}
}

func (u *usage) present() bool {
	return u.PromptTokens.Reported() || u.CompletionTokens.Reported() || u.TotalTokens.Reported() ||
		u.InputTokens.Reported() || u.OutputTokens.Reported()
}

func (u *usage) usage(model string) metering.Usage {
	return metering.MakeUsage(model,
		metering.FirstReported(u.PromptTokens, u.InputTokens),
		metering.FirstReported(u.CompletionTokens, u.OutputTokens),
		u.TotalTokens,
		metering.FirstReported(u.PromptCachedTokens, u.InputCachedTokens))
}

// MeterJSON reads usage from a complete response body: the top-level
// "model" and "usage" members (chat, completions, embeddings, Responses).
func MeterJSON(body []byte) metering.Usage {
	var u usage
	model, ok := metering.TopLevel(body, "model", "usage", &u)
	if !ok {
		return metering.Usage{}
	}
	return u.usage(model)
}

// eventType decodes the "type" discriminator of the Responses API stream
// events this package cares about without allocating; others decode as "".
type eventType string

const (
	evResponseCompleted  eventType = "response.completed"
	evResponseIncomplete eventType = "response.incomplete"
	evResponseFailed     eventType = "response.failed"
)

func readEventType(b []byte) eventType {
	if len(b) < 2 || b[0] != '"' {
		return ""
	}
	switch inner := string(b[1 : len(b)-1]); eventType(inner) {
	case evResponseCompleted, evResponseIncomplete, evResponseFailed:
		return eventType(inner)
	}
	return ""
}

func (t eventType) terminal() bool {
	return t == evResponseCompleted || t == evResponseIncomplete || t == evResponseFailed
}

// StreamMeter meters an OpenAI-format stream:
//   - Chat Completions: the last chunk whose "usage" is non-null (the
//     stream_options.include_usage chunk) wins; "data: [DONE]" ends.
//   - Responses API: the response.usage of response.completed (or
//     response.incomplete / response.failed, which also end the stream; the
//     Responses API sends no [DONE]).
type StreamMeter struct {
	model string
	done  bool
	hide  bool
	last  usage
	// chat is set once a chunk with "choices" was seen: a Chat Completions
	// stream, so Responses API terminal events need not be looked for.
	chat bool
}

// NewStreamMeter returns a meter; with hideUsage, usage-only chunks are not
// forwarded (the gateway asked for them, the client did not).
func NewStreamMeter(hideUsage bool) *StreamMeter { return &StreamMeter{hide: hideUsage} }

// chunk is what one event says.
type chunk struct {
	typ           eventType
	choices       choices
	usage         usage
	responseUsage usage
}

// scan fills c from one event's JSON (exact key matches, the last
// occurrence wins); model names go to *model. ok=false for invalid JSON.
// One pass validates the event and visits its top-level members; nested
// objects (usage, response) are read from the already checked value. The
// model is taken only once the whole event proved valid.
func (c *chunk) scan(data []byte, model *string) bool {
	var modelVal []byte // the last model name a valid event would set
	ok := jsonscan.ValidMembers(data, func(raw, val []byte) {
		switch string(jsonscan.KeyName(raw)) {
		case "type":
			c.typ = readEventType(val)
		case "choices":
			c.choices.read(val)
		case "model":
			if setsModel(val) {
				modelVal = val
			}
		case "usage":
			jsonscan.EachMember(val, c.usage.Member)
		case "response":
			jsonscan.EachMember(val, func(k, v []byte) {
				switch string(k) {
				case "model":
					if setsModel(v) {
						modelVal = v
					}
				case "usage":
					jsonscan.EachMember(v, c.responseUsage.Member)
				}
			})
		}
	})
	if !ok {
		return false
	}
	if modelVal != nil {
		sink := metering.StringSink{Dst: model}
		_ = sink.UnmarshalJSON(modelVal)
	}
	return true
}

// setsModel reports whether metering.StringSink would take the raw value,
// valid JSON: a string of at least one character (an escape always
// decodes to one).
func setsModel(val []byte) bool { return len(val) >= 3 && val[0] == '"' }

// Event implements metering.StreamMeter.
func (m *StreamMeter) Event(name, data []byte) bool {
	if len(data) == 0 {
		return true
	}
	if bytes.Equal(bytes.TrimSpace(data), []byte("[DONE]")) {
		m.done = true
		return true
	}
	maybeTerminal := false
	switch eventType(name) {
	case evResponseCompleted, evResponseIncomplete, evResponseFailed:
		m.done = true
	case "":
		// Unnamed events (a relay dropped the event: field): a Responses
		// terminal event is recognised by its type, confirmed by decoding.
		maybeTerminal = !m.chat && bytes.Contains(data, []byte(`"response.`)) &&
			(bytes.Contains(data, []byte(`"response.completed"`)) ||
				bytes.Contains(data, []byte(`"response.incomplete"`)) ||
				bytes.Contains(data, []byte(`"response.failed"`)))
	}
	hasUsage := jsonscan.HasNonNullKey(data, `"usage"`)
	// Decode only while the model is still unknown, when usage is present,
	// or to confirm an unnamed terminal Responses event.
	if m.model != "" && !maybeTerminal && !hasUsage {
		return true
	}
	var c chunk
	if !c.scan(data, &m.model) {
		return true
	}
	switch {
	case c.usage.present():
		m.last = c.usage
	case c.responseUsage.present():
		m.last = c.responseUsage
	}
	if c.choices.seen {
		m.chat = true
	}
	if len(name) == 0 && c.typ.terminal() {
		m.done = true
	}
	// The extra chunk of stream_options.include_usage: choices empty and
	// usage non-null. Azure's leading prompt_filter_results chunk (empty
	// choices, no usage) is not one.
	if m.hide && hasUsage && !c.choices.nonEmpty && c.usage.present() {
		return false
	}
	return true
}

// Usage implements metering.StreamMeter.
func (m *StreamMeter) Usage() metering.Usage { return m.last.usage(m.model) }

// Done implements metering.StreamMeter.
func (m *StreamMeter) Done() bool { return m.done }

// IsUsageOnlyChunk reports whether a stream data payload is the extra usage
// chunk produced by stream_options.include_usage (choices empty and usage
// non-null).
func IsUsageOnlyChunk(data []byte) bool {
	if !jsonscan.HasNonNullKey(data, `"usage"`) {
		return false
	}
	var c chunk
	var model string
	if !c.scan(data, &model) {
		return false
	}
	return !c.choices.nonEmpty && c.usage.present()
}

// choices records whether a JSON "choices" member was seen and whether it
// holds anything; null and [] are empty.
type choices struct{ seen, nonEmpty bool }

func (c *choices) read(b []byte) {
	c.seen = true
	if string(b) == "null" {
		c.nonEmpty = false
		return
	}
	if len(b) > 0 && b[0] == '[' {
		i := jsonscan.SkipWS(b, 1)
		c.nonEmpty = i < len(b) && b[i] != ']'
		return
	}
	c.nonEmpty = true // not an array: not a usage-only chunk
}
