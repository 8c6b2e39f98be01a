// Package openai is the OpenAI API (api.openai.com/v1: Chat Completions,
// Completions, Embeddings, Responses and the rest, passed through), and the
// OpenAI wire format that Azure OpenAI and OpenAI-compatible upstreams share
// (Format).
package openai

import (
	"encoding/json"
	"net/http"
	"net/url"
	"strings"

	"trueportai/services/gateway/internal/metering"
	"trueportai/services/gateway/internal/provider"
	"trueportai/services/gateway/internal/sse"
	"trueportai/services/gateway/internal/textpath"
)

// Format is the OpenAI wire format: request facts, policy text paths,
// stream-usage preparation, metering, the error shape and the client
// headers it understands. Providers speaking it embed it.
type Format struct{}

// paths are the OpenAI format's text paths.
var paths = provider.Paths{Request: requestPaths, Response: responsePaths}

var (
	requestPaths = textpath.Compile([]textpath.Spec{
		// Chat Completions (also Azure): string content or content parts,
		// including tool results (role "tool").
		{Path: "messages[]", Flags: textpath.Msg},
		{Path: "messages[].role", Flags: textpath.Role},
		{Path: "messages[].content", Flags: textpath.Text},
		{Path: "messages[].content[].text", Flags: textpath.Text},
		// legacy Completions
		{Path: "prompt", Flags: textpath.Text},
		{Path: "prompt[]", Flags: textpath.Text},
		// Embeddings (string or array of strings) and Responses API (string
		// or items with content parts; function_call_output items).
		{Path: "input", Flags: textpath.Text},
		{Path: "input[]", Flags: textpath.Text | textpath.Msg},
		{Path: "input[].role", Flags: textpath.Role},
		{Path: "input[].content", Flags: textpath.Text},
		{Path: "input[].content[].text", Flags: textpath.Text},
		{Path: "input[].output", Flags: textpath.Text},
		{Path: "instructions", Flags: textpath.Text | textpath.System},
		{Path: "model", Flags: textpath.Model},
		{Path: "max_tokens", Flags: textpath.MaxOut},
		{Path: "max_completion_tokens", Flags: textpath.MaxOut},
		{Path: "max_output_tokens", Flags: textpath.MaxOut},
	})
	responsePaths = textpath.Compile([]textpath.Spec{
		{Path: "choices[].message.content", Flags: textpath.Text},
		{Path: "choices[].message.content[].text", Flags: textpath.Text},
		{Path: "choices[].text", Flags: textpath.Text},
		{Path: "output[].content[].text", Flags: textpath.Text}, // Responses API
		{Path: "model", Flags: textpath.Model},
	})
	headers = provider.NewHeaderSet(provider.CommonHeaders,
		[]string{"OpenAI-Organization", "OpenAI-Project", "OpenAI-Beta", "Idempotency-Key"})
)

// Inspect reads "model" and "stream" from the body; a body-less request
// for models/{id} names that model.
func (Format) Inspect(t *provider.Target, _ provider.Credential, body []byte) provider.Request {
	return InspectBody(t, body)
}

// InspectBody is Inspect for the OpenAI-style APIs (OpenAI, Anthropic,
// compatible upstreams): the body's "model" and "stream", else the model a
// models/{id} path names.
func InspectBody(t *provider.Target, body []byte) provider.Request {
	if len(body) == 0 {
		if id, ok := strings.CutPrefix(t.Rest, "models/"); ok && !strings.Contains(id, "/") {
			if m, err := url.PathUnescape(id); err == nil {
				return provider.Request{Model: m}
			}
		}
		return provider.Request{}
	}
	return provider.BodyModelAndStream(body)
}

// ModelFree: only the model list.
func (Format) ModelFree(t *provider.Target, method string) bool {
	return provider.ListsModels(t, method)
}

// TextPaths are the chat, completions, embeddings and Responses paths.
func (Format) TextPaths(response bool) *textpath.Trie { return paths.TextPaths(response) }

// Prepare asks streamed chat/completions requests to report usage
// (stream_options.include_usage); the usage chunk is hidden again when the
// client had not asked for it. The Responses API reports usage anyway.
func (Format) Prepare(t *provider.Target, req provider.Request, body []byte) ([]byte, bool) {
	if !req.Stream || !(strings.HasSuffix(t.Rest, "chat/completions") || t.Rest == "completions") {
		return body, false
	}
	out, asked, err := EnsureStreamUsage(body)
	if err != nil {
		return body, false
	}
	return out, !asked
}

// ForwardHeader allows the common headers and OpenAI's own.
func (Format) ForwardHeader(name string) bool { return headers.Allows(name) }

// MeterJSON implements provider.Provider.
func (Format) MeterJSON(body []byte) metering.Usage { return MeterJSON(body) }

// Framing is SSE.
func (Format) Framing(contentType string) provider.Framing { return sse.For(contentType) }

// KeepAlive implements provider.StreamKeepAlive: an SSE comment, which the
// SDKs skip (the API sends comments itself).
func (Format) KeepAlive(f provider.Framing) []byte {
	if _, ok := f.(sse.Framing); ok {
		return sse.CommentKeepAlive
	}
	return nil
}

// NewStreamMeter implements provider.Provider.
func (Format) NewStreamMeter(hideUsage bool) metering.StreamMeter { return NewStreamMeter(hideUsage) }

type errorBody struct {
	Error errorDetail `json:"error"`
}

type errorDetail struct {
	Message string  `json:"message"`
	Type    string  `json:"type"`
	Code    string  `json:"code"`
	Param   *string `json:"param"`
}

// ErrorBody is OpenAI's {"error":{"message","type","code","param"}}.
func (Format) ErrorBody(status int, code, message string) []byte {
	b, _ := json.Marshal(errorBody{Error: errorDetail{Message: message, Type: provider.OpenAIErrorType(status), Code: code}})
	return b
}

// Provider is the OpenAI API.
type Provider struct {
	Format
	provider.Upstream
}

// EnvUpstream names the operator's OpenAI base URL variable.
const EnvUpstream = "UPSTREAM_OPENAI_URL"

// New returns the provider with the operator's default base URL.
func New(base string) *Provider {
	return &Provider{Upstream: provider.Upstream{Base: strings.TrimRight(base, "/")}}
}

// FromEnv reads UPSTREAM_OPENAI_URL (default https://api.openai.com/v1).
func FromEnv(getenv func(string) string) (provider.Provider, error) {
	base, err := provider.EnvURL(getenv, EnvUpstream, "https://api.openai.com/v1")
	if err != nil {
		return nil, err
	}
	return New(base), nil
}

// Name implements provider.Provider.
func (*Provider) Name() string { return "openai" }

// Prefix implements provider.Provider.
func (*Provider) Prefix() string { return provider.RoutePrefix + "openai/v1/" }

// Route implements provider.Provider.
func (p *Provider) Route(rest string) (provider.Target, error) {
	return provider.SimpleRoute(p.Name(), rest)
}

// MissingCredential implements provider.Provider.
func (*Provider) MissingCredential(_ *provider.Target, c provider.Credential) string {
	if c.APIKey == "" {
		return "providers.openai.api_key"
	}
	return ""
}

// Authorize sends the key as a bearer token.
func (*Provider) Authorize(r *http.Request, c provider.Credential, _ []byte) error {
	r.Header.Set("Authorization", "Bearer "+c.APIKey)
	return nil
}
