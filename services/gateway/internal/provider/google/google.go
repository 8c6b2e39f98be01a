// Package google is the Google Gemini API (generativelanguage.googleapis.com
// v1beta: generateContent, streamGenerateContent, embedContent and the rest),
// and Vertex AI's publisher-model paths of the same format.
package google

import (
	"bytes"
	"encoding/json"
	"net/http"
	"net/url"
	"strings"

	"trueportai/services/gateway/internal/jsonscan"
	"trueportai/services/gateway/internal/metering"
	"trueportai/services/gateway/internal/provider"
	"trueportai/services/gateway/internal/sse"
	"trueportai/services/gateway/internal/textpath"
)

// EnvUpstream names the operator's Gemini base URL variable.
const EnvUpstream = "UPSTREAM_GOOGLE_URL"

// Provider is the Gemini API.
type Provider struct {
	provider.Upstream
	provider.Paths
	provider.AsIs
}

// New returns the provider with the operator's default base URL.
func New(base string) *Provider {
	return &Provider{Upstream: provider.Upstream{Base: strings.TrimRight(base, "/")}, Paths: provider.Paths{Request: requestPaths, Response: responsePaths}}
}

// FromEnv reads UPSTREAM_GOOGLE_URL (default
// https://generativelanguage.googleapis.com/v1beta).
func FromEnv(getenv func(string) string) (provider.Provider, error) {
	base, err := provider.EnvURL(getenv, EnvUpstream, "https://generativelanguage.googleapis.com/v1beta")
	if err != nil {
		return nil, err
	}
	return New(base), nil
}

var (
	requestPaths = textpath.Compile([]textpath.Spec{
		{Path: "contents[].parts[].text", Flags: textpath.Text},
		// tool results are arbitrary JSON: every string value in them
		{Path: "contents[].parts[].functionResponse.response", Flags: textpath.Text | textpath.Deep},
		{Path: "contents[].parts[].function_response.response", Flags: textpath.Text | textpath.Deep},
		{Path: "systemInstruction.parts[].text", Flags: textpath.Text | textpath.System},
		{Path: "system_instruction.parts[].text", Flags: textpath.Text | textpath.System},
		// embedContent / batchEmbedContents
		{Path: "content.parts[].text", Flags: textpath.Text},
		{Path: "requests[].content.parts[].text", Flags: textpath.Text},
		{Path: "generationConfig.maxOutputTokens", Flags: textpath.MaxOut},
		{Path: "generation_config.max_output_tokens", Flags: textpath.MaxOut},
		{Path: "model", Flags: textpath.Model},
	})
	responsePaths = textpath.Compile([]textpath.Spec{
		{Path: "candidates[].content.parts[].text", Flags: textpath.Text},
		{Path: "[].candidates[].content.parts[].text", Flags: textpath.Text}, // non-SSE streamGenerateContent array
	})
	headers = provider.NewHeaderSet(provider.CommonHeaders, []string{"X-Goog-Api-Client"})
)

// Name implements provider.Provider.
func (*Provider) Name() string { return "google" }

// Prefix implements provider.Provider.
func (*Provider) Prefix() string { return provider.RoutePrefix + "google/v1beta/" }

// Route implements provider.Provider; the model and the streaming flag come
// from the path (models/{model}:streamGenerateContent).
func (p *Provider) Route(rest string) (provider.Target, error) {
	t, err := provider.SimpleRoute(p.Name(), rest)
	if err != nil {
		return t, err
	}
	t.Model, t.Stream = ModelAndStream(rest)
	return t, nil
}

// MissingCredential implements provider.Provider.
func (*Provider) MissingCredential(_ *provider.Target, c provider.Credential) string {
	if c.APIKey == "" {
		return "providers.google.api_key"
	}
	return ""
}

// Inspect returns what the path says: Gemini bodies name neither the model
// nor streaming.
func (*Provider) Inspect(t *provider.Target, _ provider.Credential, _ []byte) provider.Request {
	return provider.Request{Model: t.Model, Stream: t.Stream}
}

// ModelFree: only the model list.
func (*Provider) ModelFree(t *provider.Target, method string) bool {
	return provider.ListsModels(t, method)
}

// ForwardHeader allows the common headers and x-goog-api-client.
func (*Provider) ForwardHeader(name string) bool { return headers.Allows(name) }

// Authorize sends the key in x-goog-api-key (never in the URL).
func (*Provider) Authorize(r *http.Request, c provider.Credential, _ []byte) error {
	r.Header.Set("X-Goog-Api-Key", c.APIKey)
	return nil
}

type errorBody struct {
	Error errorDetail `json:"error"`
}

type errorDetail struct {
	Code    int    `json:"code"`
	Message string `json:"message"`
	Status  string `json:"status"`
}

// ErrorBody is Google's {"error":{"code","message","status"}}.
func (*Provider) ErrorBody(status int, _ string, message string) []byte {
	b, _ := json.Marshal(errorBody{Error: errorDetail{Code: status, Message: message, Status: provider.GoogleStatus(status)}})
	return b
}

// ModelAndStream extracts the model and the streaming flag from a Gemini /
// Vertex AI request path, e.g.
//
//	models/gemini-2.5-flash:streamGenerateContent
//	projects/p/locations/us-central1/publishers/google/models/gemini-2.5-pro:generateContent
//
// The path may be escaped or not; a query string, if included, is ignored.
// The model is the resource name after the last '/', before the ':method'
// suffix, unescaped ("%3A" is treated as ':').
func ModelAndStream(urlPath string) (model string, stream bool) {
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

// usage is GenerateContentResponse.usageMetadata. promptTokenCount already
// includes cachedContentTokenCount. Thinking tokens are billed as output and
// tool-use prompt tokens as input, so they are added to completion and
// prompt respectively (totalTokenCount already includes both).
type usage struct {
	PromptTokenCount        metering.Count `json:"promptTokenCount"`
	CandidatesTokenCount    metering.Count `json:"candidatesTokenCount"`
	TotalTokenCount         metering.Count `json:"totalTokenCount"`
	CachedContentTokenCount metering.Count `json:"cachedContentTokenCount"`
	ThoughtsTokenCount      metering.Count `json:"thoughtsTokenCount"`
	ToolUsePromptTokenCount metering.Count `json:"toolUsePromptTokenCount"`
}

// Member reads one member of a usageMetadata object.
func (g *usage) Member(key, val []byte) {
	switch string(key) {
	case "promptTokenCount":
		g.PromptTokenCount.Read(val)
	case "candidatesTokenCount":
		g.CandidatesTokenCount.Read(val)
	case "totalTokenCount":
		g.TotalTokenCount.Read(val)
	case "cachedContentTokenCount":
		g.CachedContentTokenCount.Read(val)
	case "thoughtsTokenCount":
		g.ThoughtsTokenCount.Read(val)
	case "toolUsePromptTokenCount":
		g.ToolUsePromptTokenCount.Read(val)
	}
}

func (g *usage) present() bool {
	return g.PromptTokenCount.Reported() || g.CandidatesTokenCount.Reported() || g.TotalTokenCount.Reported() ||
		g.CachedContentTokenCount.Reported() || g.ThoughtsTokenCount.Reported() || g.ToolUsePromptTokenCount.Reported()
}

func (g *usage) usage(model string) metering.Usage {
	prompt := metering.Sum(g.PromptTokenCount, g.ToolUsePromptTokenCount)
	completion := metering.Sum(g.CandidatesTokenCount, g.ThoughtsTokenCount)
	return metering.MakeUsage(model, prompt, completion, g.TotalTokenCount, g.CachedContentTokenCount)
}

// response is the subset of a GenerateContentResponse needed for a
// non-streamed body.
type response struct {
	ModelVersion  string `json:"modelVersion"`
	UsageMetadata usage  `json:"usageMetadata"`
}

// MeterJSON reads usage from a GenerateContentResponse, or from the top-level
// JSON array of the non-SSE streamGenerateContent form (the last element
// that carries usageMetadata wins).
func MeterJSON(body []byte) metering.Usage {
	i := jsonscan.SkipWS(body, 0)
	if i < len(body) && body[i] == '[' {
		var rs []response
		if !metering.Decode(body, &rs) {
			return metering.Usage{}
		}
		var model string
		var last usage
		for k := range rs {
			if rs[k].ModelVersion != "" {
				model = rs[k].ModelVersion
			}
			if rs[k].UsageMetadata.present() {
				last = rs[k].UsageMetadata
			}
		}
		return last.usage(model)
	}
	var u usage
	model, ok := metering.TopLevel(body, "modelVersion", "usageMetadata", &u)
	if !ok {
		return metering.Usage{}
	}
	return u.usage(model)
}

// MeterJSON implements provider.Provider.
func (*Provider) MeterJSON(body []byte) metering.Usage { return MeterJSON(body) }

// Framing is SSE.
func (*Provider) Framing(contentType string) provider.Framing { return sse.For(contentType) }

// KeepAlive implements provider.StreamKeepAlive: an empty event (CRLF
// CRLF), not a comment. The Go SDK splits the stream at blank lines and
// returns an error for any piece not starting with "data:" (a comment
// included), and the Python SDK parses every non-empty line as JSON; both
// skip empty pieces. CRLF, as the API ends its events: a "\n\n" read in one
// piece with a CRLF-terminated event before it would be split inside that
// event by the Go SDK.
func (*Provider) KeepAlive(f provider.Framing) []byte {
	if _, ok := f.(sse.Framing); ok {
		return sse.BlankKeepAlive
	}
	return nil
}

// NewStreamMeter implements provider.Provider.
func (*Provider) NewStreamMeter(bool) metering.StreamMeter { return new(StreamMeter) }

// StreamMeter meters a streamGenerateContent SSE stream: the last chunk
// carrying usageMetadata wins; a candidate with a finishReason (or
// promptFeedback.blockReason) ends.
type StreamMeter struct {
	model string
	done  bool
	last  usage
}

// Event implements metering.StreamMeter.
func (m *StreamMeter) Event(_, data []byte) bool {
	if len(data) > 0 {
		m.event(data)
	}
	return true
}

// Usage implements metering.StreamMeter.
func (m *StreamMeter) Usage() metering.Usage { return m.last.usage(m.model) }

// Done implements metering.StreamMeter.
func (m *StreamMeter) Done() bool { return m.done }

// geminiEvent handles one GenerateContentResponse of a streamGenerateContent
// SSE stream. Gemini puts usageMetadata on (nearly) every chunk, so the
// cheap pre-check rarely skips; instead of encoding/json (several
// allocations per chunk) the chunk is walked structurally, reading only the
// top-level usageMetadata, modelVersion, candidates[].finishReason and
// promptFeedback.blockReason. Keys are matched exactly at the top level, so
// a nested "usageMetadata" (e.g. inside model-generated functionCall args)
// is never metered. A chunk that is not a well-formed object is ignored.
func (m *StreamMeter) event(data []byte) {
	if !bytes.Contains(data, []byte(`usageMetadata"`)) &&
		!bytes.Contains(data, []byte(`finishReason"`)) &&
		!bytes.Contains(data, []byte(`blockReason"`)) &&
		(m.model != "" || !bytes.Contains(data, []byte(`modelVersion"`))) {
		return
	}
	i := jsonscan.SkipWS(data, 0)
	if i >= len(data) || data[i] != '{' {
		return
	}
	var (
		u        usage
		model    []byte
		finished bool
		pos      = i + 1
	)
	for first := true; ; first = false {
		mem, next, done, ok := jsonscan.NextMember(data, pos, first)
		if !ok {
			return
		}
		pos = next
		if done {
			break
		}
		v := data[mem.Start:mem.End]
		switch string(jsonscan.KeyName(mem.Key)) {
		case "usageMetadata":
			u = usage{}
			if !u.parse(v) {
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
	if jsonscan.SkipWS(data, pos) != len(data) {
		return // trailing garbage: not a single JSON value
	}
	if u.present() {
		m.last = u
	}
	if len(model) > 0 {
		sink := metering.StringSink{Dst: &m.model}
		_ = sink.UnmarshalJSON(model)
	}
	if finished {
		m.done = true
	}
}

// parse reads a usageMetadata value. null or a non-object leave u absent
// (as encoding/json would); ok=false only for malformed JSON.
func (g *usage) parse(v []byte) bool {
	if len(v) == 0 || v[0] != '{' {
		return true
	}
	for pos, first := 1, true; ; first = false {
		mem, next, done, ok := jsonscan.NextMember(v, pos, first)
		if !ok {
			return false
		}
		if done {
			return true
		}
		var c *metering.Count
		switch string(jsonscan.KeyName(mem.Key)) {
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
			_ = c.UnmarshalJSON(v[mem.Start:mem.End])
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
		start, end, next, done, ok := jsonscan.NextElement(v, pos, first)
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
		mem, next, done, ok := jsonscan.NextMember(v, pos, first)
		if !ok {
			return false, false
		}
		if done {
			return set, true
		}
		if string(jsonscan.KeyName(mem.Key)) == name {
			var f metering.Flag
			_ = f.UnmarshalJSON(v[mem.Start:mem.End])
			set = bool(f)
		}
		pos = next
	}
}
