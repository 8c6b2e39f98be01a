package bedrock

import (
	"bytes"
	"encoding/base64"
	"net/http"

	"trueportai/services/gateway/internal/jsonscan"
	"trueportai/services/gateway/internal/metering"
)

// usage gathers every usage shape a Bedrock answer may carry: Converse's
// camelCase usage, the Anthropic format of InvokeModel, Llama's counters,
// and the amazon-bedrock-invocationMetrics Bedrock appends to the last
// chunk of InvokeModelWithResponseStream.
type usage struct {
	// Converse: cache reads and writes are not part of inputTokens.
	InputTokens, OutputTokens, CacheRead, CacheWrite metering.Count
	// Anthropic format (snake_case).
	AInput, AOutput, ACacheRead, ACacheWrite metering.Count
	// Llama.
	PromptTokenCount, GenerationTokenCount metering.Count
	// invocation metrics.
	MInput, MOutput metering.Count
}

// Member reads one member of a "usage" object, in either casing.
func (u *usage) Member(key, val []byte) {
	switch string(key) {
	case "inputTokens":
		u.InputTokens.Read(val)
	case "outputTokens":
		u.OutputTokens.Read(val)
	case "cacheReadInputTokens":
		u.CacheRead.Read(val)
	case "cacheWriteInputTokens":
		u.CacheWrite.Read(val)
	case "input_tokens":
		u.AInput.Read(val)
	case "output_tokens":
		u.AOutput.Read(val)
	case "cache_read_input_tokens":
		u.ACacheRead.Read(val)
	case "cache_creation_input_tokens":
		u.ACacheWrite.Read(val)
	}
}

// metrics reads an amazon-bedrock-invocationMetrics object.
func (u *usage) metrics(key, val []byte) {
	switch string(key) {
	case "inputTokenCount":
		u.MInput.Read(val)
	case "outputTokenCount":
		u.MOutput.Read(val)
	}
}

// top reads the members of a response object that carry usage.
func (u *usage) top(model *string) func(key, val []byte) {
	return func(key, val []byte) {
		switch string(key) {
		case "usage":
			jsonscan.EachMember(val, u.Member)
		case "prompt_token_count":
			u.PromptTokenCount.Read(val)
		case "generation_token_count":
			u.GenerationTokenCount.Read(val)
		case "amazon-bedrock-invocationMetrics":
			jsonscan.EachMember(val, u.metrics)
		case "model":
			if s := jsonscan.Unquote(val); s != "" && model != nil {
				*model = s
			}
		}
	}
}

// usage picks the most authoritative shape that was reported.
func (u *usage) usage(model string) metering.Usage {
	switch {
	case u.MInput.Reported() || u.MOutput.Reported():
		return metering.MakeUsage(model, u.MInput, u.MOutput, metering.Count{}, metering.Count{})
	case u.InputTokens.Reported() || u.OutputTokens.Reported():
		return metering.MakeUsage(model, metering.Sum(u.InputTokens, u.CacheRead, u.CacheWrite), u.OutputTokens, metering.Count{}, u.CacheRead)
	case u.AInput.Reported() || u.AOutput.Reported():
		return metering.MakeUsage(model, metering.Sum(u.AInput, u.ACacheRead, u.ACacheWrite), u.AOutput, metering.Count{}, u.ACacheRead)
	default:
		return metering.MakeUsage(model, u.PromptTokenCount, u.GenerationTokenCount, metering.Count{}, metering.Count{})
	}
}

// MeterJSON reads usage from a Converse or InvokeModel response body.
func MeterJSON(body []byte) metering.Usage {
	i := jsonscan.SkipWS(body, 0)
	if i >= len(body) || body[i] != '{' || !jsonscan.Valid(body) {
		return metering.Usage{}
	}
	var u usage
	var model string
	jsonscan.EachMember(body, u.top(&model))
	return u.usage(model)
}

// MeterJSON implements provider.Provider.
func (*Provider) MeterJSON(body []byte) metering.Usage { return MeterJSON(body) }

// MeterHeaders reads the token counts InvokeModel reports in response
// headers, for models whose body format carries none.
func (*Provider) MeterHeaders(h http.Header, u metering.Usage) metering.Usage {
	in, out := h.Get("X-Amzn-Bedrock-Input-Token-Count"), h.Get("X-Amzn-Bedrock-Output-Token-Count")
	if in == "" && out == "" {
		return u
	}
	var ci, co metering.Count
	if in != "" {
		ci.Read([]byte(in))
	}
	if out != "" {
		co.Read([]byte(out))
	}
	return metering.MakeUsage(u.Model, ci, co, metering.Count{}, metering.Count{})
}

// NewStreamMeter implements provider.Provider.
func (*Provider) NewStreamMeter(bool) metering.StreamMeter { return new(StreamMeter) }

// StreamMeter meters an event stream. ConverseStream ends with a metadata
// event carrying usage; InvokeModelWithResponseStream sends chunk events
// whose base64 "bytes" hold the model's own stream events, the last one
// with amazon-bedrock-invocationMetrics.
type StreamMeter struct {
	model string
	done  bool
	acc   usage
	buf   []byte // decoded chunk bytes
}

// Event implements metering.StreamMeter.
func (m *StreamMeter) Event(name, data []byte) bool {
	switch string(name) {
	case "metadata":
		if jsonscan.Valid(data) {
			var u usage
			jsonscan.EachMember(data, u.top(nil))
			m.acc.InputTokens, m.acc.OutputTokens, m.acc.CacheRead, m.acc.CacheWrite = u.InputTokens, u.OutputTokens, u.CacheRead, u.CacheWrite
			m.done = true
		}
	case "chunk":
		m.chunk(data)
	}
	return true
}

// chunk meters one InvokeModelWithResponseStream chunk.
func (m *StreamMeter) chunk(data []byte) {
	if !jsonscan.Valid(data) {
		return
	}
	var raw []byte
	jsonscan.EachMember(data, func(k, v []byte) {
		if string(k) == "bytes" && len(v) >= 2 && v[0] == '"' {
			raw = v[1 : len(v)-1]
		}
	})
	if raw == nil {
		return
	}
	n := base64.StdEncoding.DecodedLen(len(raw))
	if cap(m.buf) < n {
		m.buf = make([]byte, n)
	}
	n, err := base64.StdEncoding.Decode(m.buf[:n], raw)
	if err != nil {
		return
	}
	inner := m.buf[:n]
	if !bytes.Contains(inner, []byte(`sage`)) && !bytes.Contains(inner, []byte(`Metrics`)) && !bytes.Contains(inner, []byte(`_count`)) {
		return // a content delta: nothing to meter
	}
	if !jsonscan.Valid(inner) {
		return
	}
	var u usage
	jsonscan.EachMember(inner, func(k, v []byte) {
		if string(k) == "message" { // Anthropic message_start
			jsonscan.EachMember(v, u.top(&m.model))
			return
		}
		u.top(&m.model)(k, v)
	})
	// Counters are cumulative: the latest reported value of each wins.
	for _, p := range []struct{ dst, src *metering.Count }{
		{&m.acc.AInput, &u.AInput}, {&m.acc.AOutput, &u.AOutput}, {&m.acc.ACacheRead, &u.ACacheRead}, {&m.acc.ACacheWrite, &u.ACacheWrite},
		{&m.acc.PromptTokenCount, &u.PromptTokenCount}, {&m.acc.GenerationTokenCount, &u.GenerationTokenCount},
		{&m.acc.MInput, &u.MInput}, {&m.acc.MOutput, &u.MOutput},
	} {
		if p.src.Reported() {
			*p.dst = *p.src
		}
	}
	if u.MInput.Reported() || u.MOutput.Reported() {
		m.done = true
	}
}

// Usage implements metering.StreamMeter.
func (m *StreamMeter) Usage() metering.Usage { return m.acc.usage(m.model) }

// Done implements metering.StreamMeter.
func (m *StreamMeter) Done() bool { return m.done }
