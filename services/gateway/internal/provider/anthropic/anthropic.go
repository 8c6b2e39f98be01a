// Package anthropic is the Anthropic Messages API (api.anthropic.com/v1).
package anthropic

import (
	"bytes"
	"encoding/json"
	"net/http"
	"strings"

	"trueportai/services/gateway/internal/jsonscan"
	"trueportai/services/gateway/internal/metering"
	"trueportai/services/gateway/internal/provider"
	"trueportai/services/gateway/internal/provider/openai"
	"trueportai/services/gateway/internal/sse"
	"trueportai/services/gateway/internal/textpath"
)

// EnvUpstream names the operator's Anthropic base URL variable.
const EnvUpstream = "UPSTREAM_ANTHROPIC_URL"

// Provider is the Anthropic API.
type Provider struct {
	provider.Upstream
	provider.Paths
	provider.AsIs
}

// New returns the provider with the operator's default base URL.
func New(base string) *Provider {
	return &Provider{Upstream: provider.Upstream{Base: strings.TrimRight(base, "/")}, Paths: provider.Paths{Request: requestPaths, Response: responsePaths}}
}

// FromEnv reads UPSTREAM_ANTHROPIC_URL (default https://api.anthropic.com/v1).
func FromEnv(getenv func(string) string) (provider.Provider, error) {
	base, err := provider.EnvURL(getenv, EnvUpstream, "https://api.anthropic.com/v1")
	if err != nil {
		return nil, err
	}
	return New(base), nil
}

var (
	requestPaths = textpath.Compile([]textpath.Spec{
		{Path: "system", Flags: textpath.Text | textpath.System},
		{Path: "system[].text", Flags: textpath.Text | textpath.System},
		{Path: "messages[]", Flags: textpath.Msg},
		{Path: "messages[].role", Flags: textpath.Role},
		{Path: "messages[].content", Flags: textpath.Text},
		{Path: "messages[].content[].text", Flags: textpath.Text},
		// tool_result blocks: string content or text blocks
		{Path: "messages[].content[].content", Flags: textpath.Text},
		{Path: "messages[].content[].content[].text", Flags: textpath.Text},
		// document blocks with inline text content
		{Path: "messages[].content[].source.content[].text", Flags: textpath.Text},
		{Path: "model", Flags: textpath.Model},
		{Path: "max_tokens", Flags: textpath.MaxOut},
	})
	responsePaths = textpath.Compile([]textpath.Spec{
		{Path: "content[].text", Flags: textpath.Text},
		{Path: "model", Flags: textpath.Model},
	})
	headers = provider.NewHeaderSet(provider.CommonHeaders, []string{"Anthropic-Version", "Anthropic-Beta"})
)

// Name implements provider.Provider.
func (*Provider) Name() string { return "anthropic" }

// Prefix implements provider.Provider.
func (*Provider) Prefix() string { return provider.RoutePrefix + "anthropic/v1/" }

// Route implements provider.Provider.
func (p *Provider) Route(rest string) (provider.Target, error) {
	return provider.SimpleRoute(p.Name(), rest)
}

// MissingCredential implements provider.Provider.
func (*Provider) MissingCredential(_ *provider.Target, c provider.Credential) string {
	if c.APIKey == "" {
		return "providers.anthropic.api_key"
	}
	return ""
}

// Inspect reads "model" and "stream" from the body (or the models/{id}
// path).
func (*Provider) Inspect(t *provider.Target, _ provider.Credential, body []byte) provider.Request {
	return openai.InspectBody(t, body)
}

// ModelFree: only the model list.
func (*Provider) ModelFree(t *provider.Target, method string) bool {
	return provider.ListsModels(t, method)
}

// ForwardHeader allows the common headers and anthropic-version/-beta.
func (*Provider) ForwardHeader(name string) bool { return headers.Allows(name) }

// Authorize sends the key in x-api-key.
func (*Provider) Authorize(r *http.Request, c provider.Credential, _ []byte) error {
	r.Header.Set("X-Api-Key", c.APIKey)
	return nil
}

type errorBody struct {
	Type  string      `json:"type"`
	Error errorDetail `json:"error"`
}

type errorDetail struct {
	Type    string `json:"type"`
	Message string `json:"message"`
}

// ErrorBody is Anthropic's {"type":"error","error":{"type","message"}}.
func (*Provider) ErrorBody(status int, _ string, message string) []byte {
	b, _ := json.Marshal(errorBody{Type: "error", Error: errorDetail{Type: provider.AnthropicErrorType(status), Message: message}})
	return b
}

// usage is the Messages API usage object. input_tokens excludes cache reads
// and cache writes, so prompt tokens are the sum of all three.
type usage struct {
	InputTokens              metering.Count
	OutputTokens             metering.Count
	CacheCreationInputTokens metering.Count
	CacheReadInputTokens     metering.Count
}

// Member reads one member of a usage object.
func (a *usage) Member(key, val []byte) {
	switch string(key) {
	case "input_tokens":
		a.InputTokens.Read(val)
	case "output_tokens":
		a.OutputTokens.Read(val)
	case "cache_creation_input_tokens":
		a.CacheCreationInputTokens.Read(val)
	case "cache_read_input_tokens":
		a.CacheReadInputTokens.Read(val)
	}
}

// UnmarshalJSON reads a usage object (stream events are decoded whole).
func (a *usage) UnmarshalJSON(b []byte) error {
	*a = usage{}
	jsonscan.EachMember(b, a.Member)
	return nil
}

// merge overwrites the counters that src reports. Stream counters are
// cumulative, so the latest reported value of each wins.
func (a *usage) merge(src *usage) {
	if src.InputTokens.Reported() {
		a.InputTokens = src.InputTokens
	}
	if src.OutputTokens.Reported() {
		a.OutputTokens = src.OutputTokens
	}
	if src.CacheCreationInputTokens.Reported() {
		a.CacheCreationInputTokens = src.CacheCreationInputTokens
	}
	if src.CacheReadInputTokens.Reported() {
		a.CacheReadInputTokens = src.CacheReadInputTokens
	}
}

func (a *usage) usage(model string) metering.Usage {
	prompt := metering.Sum(a.InputTokens, a.CacheCreationInputTokens, a.CacheReadInputTokens)
	return metering.MakeUsage(model, prompt, a.OutputTokens, metering.Count{}, a.CacheReadInputTokens)
}

// MeterJSON reads a Message's model and usage.
func MeterJSON(body []byte) metering.Usage {
	var u usage
	model, ok := metering.TopLevel(body, "model", "usage", &u)
	if !ok {
		return metering.Usage{}
	}
	var acc usage
	acc.merge(&u)
	return acc.usage(model)
}

// MeterJSON implements provider.Provider.
func (*Provider) MeterJSON(body []byte) metering.Usage { return MeterJSON(body) }

// Framing is SSE.
func (*Provider) Framing(contentType string) provider.Framing { return sse.For(contentType) }

// KeepAlive implements provider.StreamKeepAlive: an SSE comment, which the
// SDKs skip. (The API's own ping event is not used: SDKs that hand raw
// events to the caller would show it.)
func (*Provider) KeepAlive(f provider.Framing) []byte {
	if _, ok := f.(sse.Framing); ok {
		return sse.CommentKeepAlive
	}
	return nil
}

// NewStreamMeter implements provider.Provider.
func (*Provider) NewStreamMeter(bool) metering.StreamMeter { return new(StreamMeter) }

// StreamMeter meters a Messages stream: message_start's message.usage, then
// every counter reported by message_delta's usage replaces the earlier one
// (they are cumulative); message_stop ends.
type StreamMeter struct {
	model string
	done  bool
	acc   usage
}

// eventType decodes the "type" discriminator of the events that matter.
type eventType string

const (
	evMessageStart eventType = "message_start"
	evMessageDelta eventType = "message_delta"
	evMessageStop  eventType = "message_stop"
)

func (t *eventType) UnmarshalJSON(b []byte) error {
	*t = ""
	if len(b) < 2 || b[0] != '"' {
		return nil
	}
	switch inner := eventType(b[1 : len(b)-1]); inner {
	case evMessageStart, evMessageDelta, evMessageStop:
		*t = inner
	}
	return nil
}

// chunk is a Messages API stream event.
type chunk struct {
	Type    eventType `json:"type"`
	Message struct {
		Model metering.StringSink `json:"model"`
		Usage usage               `json:"usage"`
	} `json:"message"`
	Usage usage `json:"usage"`
}

// Event implements metering.StreamMeter.
func (m *StreamMeter) Event(name, data []byte) bool {
	if len(data) == 0 {
		return true
	}
	switch eventType(name) {
	case evMessageStop:
		m.done = true
		return true
	case evMessageStart:
		if m.model != "" && !bytes.Contains(data, []byte(`"usage"`)) {
			return true
		}
	case evMessageDelta:
		if !bytes.Contains(data, []byte(`"usage"`)) {
			return true
		}
	case "":
		if !bytes.Contains(data, []byte(`"usage"`)) && !bytes.Contains(data, []byte(`"message_stop"`)) {
			return true
		}
	default: // ping, content_block_*, error: no usage
		return true
	}
	c := new(chunk) // message_start and message_delta only
	c.Message.Model.Dst = &m.model
	if !metering.Decode(data, c) {
		return true
	}
	kind := eventType(name)
	if kind == "" {
		kind = c.Type
	}
	switch kind {
	case evMessageStart:
		m.acc.merge(&c.Message.Usage)
	case evMessageDelta:
		m.acc.merge(&c.Usage)
	case evMessageStop:
		m.done = true
	}
	return true
}

// Usage implements metering.StreamMeter.
func (m *StreamMeter) Usage() metering.Usage { return m.acc.usage(m.model) }

// Done implements metering.StreamMeter.
func (m *StreamMeter) Done() bool { return m.done }
