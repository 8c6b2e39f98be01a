package metering

import "bytes"

// StreamMeter accumulates usage from the SSE events of one stream. It is not
// safe for concurrent use. The zero value is not usable; call NewStreamMeter.
//
// Per provider:
//   - OpenAI/Azure chat completions: the last chunk whose "usage" is non-null
//     (the stream_options.include_usage chunk) wins; "data: [DONE]" ends.
//   - OpenAI/Azure Responses API: the response.usage of response.completed
//     (or response.incomplete / response.failed, which also end the stream;
//     the Responses API sends no [DONE]).
//   - Anthropic: message_start's message.usage, then every counter reported by
//     message_delta's usage replaces the earlier one (they are cumulative);
//     message_stop ends.
//   - Gemini: the last chunk carrying usageMetadata wins; a candidate with a
//     finishReason (or promptFeedback.blockReason) ends.
type StreamMeter struct {
	p      Provider
	model  string
	events int
	done   bool

	oa openAIUsage    // OpenAI/Azure: last reported usage
	an anthropicUsage // Anthropic: merged cumulative counters
	gm geminiUsage    // Google: last reported usageMetadata

	// chat is set once a chunk with "choices" was seen: a Chat Completions
	// stream, so Responses API terminal events need not be looked for.
	chat bool
}

// NewStreamMeter returns a meter for one stream of provider p. Unknown
// providers are accepted; their events are counted but never metered.
func NewStreamMeter(p Provider) *StreamMeter {
	return &StreamMeter{p: p}
}

// Event feeds one SSE event: name is the `event:` field ("" if none), data
// the joined `data:` payload (without the "data: " prefix). Events without
// data (comments, keep-alives) are ignored.
func (m *StreamMeter) Event(name string, data []byte) {
	if len(data) == 0 {
		return
	}
	m.events++
	switch m.p {
	case OpenAI, Azure:
		m.openAIEvent(name, data)
	case Anthropic:
		m.anthropicEvent(name, data)
	case Google:
		m.geminiEvent(data)
	}
}

// Usage returns the usage metered so far. Model is filled in whenever the
// stream named it, even if usage itself is unknown.
func (m *StreamMeter) Usage() Usage {
	switch m.p {
	case OpenAI, Azure:
		return m.oa.usage(m.model)
	case Anthropic:
		return m.an.usage(m.model)
	case Google:
		return m.gm.usage(m.model)
	}
	return Usage{Model: m.model}
}

// Events returns how many data events were seen (including a final [DONE]).
func (m *StreamMeter) Events() int { return m.events }

// Done reports whether the stream reached its proper end ([DONE] or a
// terminal response.* event for OpenAI/Azure, message_stop for Anthropic, a
// candidate with finishReason or a blocked prompt for Gemini).
func (m *StreamMeter) Done() bool { return m.done }

// eventType decodes the "type" discriminator of the stream events this
// package cares about without allocating; other values decode as "".
type eventType string

const (
	evMessageStart       eventType = "message_start"
	evMessageDelta       eventType = "message_delta"
	evMessageStop        eventType = "message_stop"
	evResponseCompleted  eventType = "response.completed"
	evResponseIncomplete eventType = "response.incomplete"
	evResponseFailed     eventType = "response.failed"
)

func (t *eventType) UnmarshalJSON(b []byte) error {
	*t = ""
	if len(b) < 2 || b[0] != '"' {
		return nil
	}
	inner := string(b[1 : len(b)-1])
	for _, k := range [...]eventType{evMessageStart, evMessageDelta, evMessageStop,
		evResponseCompleted, evResponseIncomplete, evResponseFailed} {
		if inner == string(k) {
			*t = k
			return nil
		}
	}
	return nil
}

func (t eventType) responsesTerminal() bool {
	return t == evResponseCompleted || t == evResponseIncomplete || t == evResponseFailed
}

// openAIChunk is a chat.completion.chunk or a Responses API stream event.
type openAIChunk struct {
	Type     eventType   `json:"type"`
	Choices  choices     `json:"choices"`
	Model    stringSink  `json:"model"`
	Usage    openAIUsage `json:"usage"`
	Response struct {
		Model stringSink  `json:"model"`
		Usage openAIUsage `json:"usage"`
	} `json:"response"`
}

// scan fills c from one event's JSON with the scanner (no reflection): the
// same fields and semantics as decoding into the struct's tags, with exact
// key matches. ok=false when data is not valid JSON.
func (c *openAIChunk) scan(data []byte) bool {
	if !validJSON(data) {
		return false
	}
	eachMember(data, func(key, val []byte) {
		switch string(key) {
		case "type":
			_ = c.Type.UnmarshalJSON(val)
		case "choices":
			_ = c.Choices.UnmarshalJSON(val)
		case "model":
			_ = c.Model.UnmarshalJSON(val)
		case "usage":
			eachMember(val, c.Usage.member)
		case "response":
			eachMember(val, func(k, v []byte) {
				switch string(k) {
				case "model":
					_ = c.Response.Model.UnmarshalJSON(v)
				case "usage":
					eachMember(v, c.Response.Usage.member)
				}
			})
		}
	})
	return true
}

func (m *StreamMeter) openAIEvent(name string, data []byte) {
	if bytes.Equal(bytes.TrimSpace(data), []byte("[DONE]")) {
		m.done = true
		return
	}
	maybeTerminal := false
	switch eventType(name) {
	case evResponseCompleted, evResponseIncomplete, evResponseFailed:
		m.done = true
	case "":
		// Unnamed events (a relay dropped the event: field): a Responses
		// terminal event is recognised by its type, confirmed by decoding.
		maybeTerminal = !m.chat && (bytes.Contains(data, []byte(`"response.completed"`)) ||
			bytes.Contains(data, []byte(`"response.incomplete"`)) ||
			bytes.Contains(data, []byte(`"response.failed"`)))
	}
	// Decode only while the model is still unknown, when usage is present,
	// or to confirm an unnamed terminal Responses event.
	if m.model != "" && !maybeTerminal && !hasNonNullKey(data, `"usage"`) {
		return
	}
	c := new(openAIChunk) // decoded only a few times per stream
	c.Model.dst = &m.model
	c.Response.Model.dst = &m.model
	if !c.scan(data) {
		return
	}
	switch {
	case c.Usage.present():
		m.oa = c.Usage
	case c.Response.Usage.present():
		m.oa = c.Response.Usage
	}
	if c.Choices.seen {
		m.chat = true
	}
	if name == "" && c.Type.responsesTerminal() {
		m.done = true
	}
}

// anthropicChunk is a Messages API stream event.
type anthropicChunk struct {
	Type    eventType `json:"type"`
	Message struct {
		Model stringSink     `json:"model"`
		Usage anthropicUsage `json:"usage"`
	} `json:"message"`
	Usage anthropicUsage `json:"usage"`
}

func (m *StreamMeter) anthropicEvent(name string, data []byte) {
	switch eventType(name) {
	case evMessageStop:
		m.done = true
		return
	case evMessageStart:
		if m.model != "" && !bytes.Contains(data, []byte(`"usage"`)) {
			return
		}
	case evMessageDelta:
		if !bytes.Contains(data, []byte(`"usage"`)) {
			return
		}
	case "":
		if !bytes.Contains(data, []byte(`"usage"`)) && !bytes.Contains(data, []byte(`"message_stop"`)) {
			return
		}
	default: // ping, content_block_*, error: no usage
		return
	}
	c := new(anthropicChunk) // message_start and message_delta only
	c.Message.Model.dst = &m.model
	if !decode(data, c) {
		return
	}
	kind := eventType(name)
	if kind == "" {
		kind = c.Type
	}
	switch kind {
	case evMessageStart:
		m.an.merge(&c.Message.Usage)
	case evMessageDelta:
		m.an.merge(&c.Usage)
	case evMessageStop:
		m.done = true
	}
}

// geminiEvent handles one GenerateContentResponse of a streamGenerateContent
// SSE stream. Gemini puts usageMetadata on (nearly) every chunk, so the
// cheap pre-check rarely skips; instead of encoding/json (several
// allocations per chunk) the chunk is walked structurally, reading only the
// top-level usageMetadata, modelVersion, candidates[].finishReason and
// promptFeedback.blockReason. Keys are matched exactly at the top level, so
// a nested "usageMetadata" (e.g. inside model-generated functionCall args)
// is never metered. A chunk that is not a well-formed object is ignored.
func (m *StreamMeter) geminiEvent(data []byte) {
	if !bytes.Contains(data, []byte(`usageMetadata"`)) &&
		!bytes.Contains(data, []byte(`finishReason"`)) &&
		!bytes.Contains(data, []byte(`blockReason"`)) &&
		(m.model != "" || !bytes.Contains(data, []byte(`modelVersion"`))) {
		return
	}
	i := skipWS(data, 0)
	if i >= len(data) || data[i] != '{' {
		return
	}
	var (
		usage    geminiUsage
		model    []byte
		finished bool
		pos      = i + 1
	)
	for first := true; ; first = false {
		mem, next, done, ok := nextMember(data, pos, first)
		if !ok {
			return
		}
		pos = next
		if done {
			break
		}
		v := data[mem.start:mem.end]
		switch string(keyName(mem.key)) {
		case "usageMetadata":
			usage = geminiUsage{}
			if !usage.parse(v) {
				return
			}
		case "modelVersion":
			model = v
		case "candidates":
			f, ok := candidatesFinished(v)
			if !ok {
				return
			}
			finished = finished || f
		case "promptFeedback":
			blocked, ok := stringMemberSet(v, "blockReason")
			if !ok {
				return
			}
			finished = finished || blocked
		}
	}
	if skipWS(data, pos) != len(data) {
		return // trailing garbage: not a single JSON value
	}
	if usage.present() {
		m.gm = usage
	}
	if len(model) > 0 {
		sink := stringSink{dst: &m.model}
		_ = sink.UnmarshalJSON(model)
	}
	if finished {
		m.done = true
	}
}

// parse reads a usageMetadata value. null or a non-object leave u absent
// (as encoding/json would); ok=false only for malformed JSON.
func (g *geminiUsage) parse(v []byte) bool {
	if len(v) == 0 || v[0] != '{' {
		return true
	}
	for pos, first := 1, true; ; first = false {
		mem, next, done, ok := nextMember(v, pos, first)
		if !ok {
			return false
		}
		if done {
			return true
		}
		var c *count
		switch string(keyName(mem.key)) {
		case "promptTokenCount":
			c = &g.PromptTokenCount
		case "candidatesTokenCount":
			c = &g.CandidatesTokenCount
		case "totalTokenCount":
			c = &g.TotalTokenCount
		case "cachedContentTokenCount":
			c = &g.CachedContentTokenCount
		case "thoughtsTokenCount":
			c = &g.ThoughtsTokenCount
		case "toolUsePromptTokenCount":
			c = &g.ToolUsePromptTokenCount
		}
		if c != nil {
			_ = c.UnmarshalJSON(v[mem.start:mem.end])
		}
		pos = next
	}
}

// candidatesFinished reports whether any candidate in the candidates array
// has a non-empty finishReason.
func candidatesFinished(v []byte) (finished, ok bool) {
	if len(v) == 0 || v[0] != '[' {
		return false, true
	}
	for pos, first := 1, true; ; first = false {
		start, end, next, done, ok := nextElement(v, pos, first)
		if !ok {
			return false, false
		}
		if done {
			return finished, true
		}
		set, ok := stringMemberSet(v[start:end], "finishReason")
		if !ok {
			return false, false
		}
		finished = finished || set
		pos = next
	}
}

// stringMemberSet reports whether object v has member name with a non-empty
// string value. Non-objects report false.
func stringMemberSet(v []byte, name string) (set, ok bool) {
	if len(v) == 0 || v[0] != '{' {
		return false, true
	}
	for pos, first := 1, true; ; first = false {
		mem, next, done, ok := nextMember(v, pos, first)
		if !ok {
			return false, false
		}
		if done {
			return set, true
		}
		if string(keyName(mem.key)) == name {
			var f flag
			_ = f.UnmarshalJSON(v[mem.start:mem.end])
			set = bool(f)
		}
		pos = next
	}
}
