// Package metering extracts exact token usage and the serving model from LLM
// provider responses (OpenAI, Azure OpenAI, Anthropic, Google Gemini), both
// complete JSON bodies and server-sent-event streams, and prepares OpenAI-style
// streaming requests so that the provider reports usage at all.
//
// Only the standard library is used. Decoding is restricted to the few fields
// that matter (small structs with json tags), and stream events that cannot
// carry usage are skipped with a cheap byte check before any decoding.
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
)

// Provider identifies the wire format of an upstream LLM API.
type Provider string

// Supported providers. Azure OpenAI uses the OpenAI wire format.
const (
	OpenAI    Provider = "openai"
	Anthropic Provider = "anthropic"
	Google    Provider = "google"
	Azure     Provider = "azure"
)

// Usage is what was metered. Known=false means the provider did not report
// usage (record as unknown, never as 0).
type Usage struct {
	Model            string
	PromptTokens     int64 // all input tokens, including cached / cache-write tokens
	CompletionTokens int64 // all output tokens, including reasoning / thinking tokens
	TotalTokens      int64
	CachedTokens     int64 // cached input tokens (OpenAI prompt_tokens_details.cached_tokens, Anthropic cache_read_input_tokens, Gemini cachedContentTokenCount)
	Known            bool
}

// FromJSON reads usage from a complete non-streamed response body.
//
// For Google a top-level JSON array (the non-SSE form of
// streamGenerateContent) is accepted; the last element that carries
// usageMetadata wins. Unknown providers, invalid JSON and bodies without
// usage yield Known=false.
func FromJSON(p Provider, body []byte) Usage {
	switch p {
	case OpenAI, Azure:
		var u openAIUsage
		model, ok := topLevel(body, "model", "usage", &u)
		if !ok {
			return Usage{}
		}
		return u.usage(model)
	case Anthropic:
		var u anthropicUsage
		model, ok := topLevel(body, "model", "usage", &u)
		if !ok {
			return Usage{}
		}
		var acc anthropicUsage
		acc.merge(&u)
		return acc.usage(model)
	case Google:
		return geminiFromJSON(body)
	}
	return Usage{}
}

// topLevel reads a JSON object's top-level string member modelKey and
// decodes its member usageKey into usage, skipping every other member
// without decoding it (a completion's content is most of the body). Keys
// match exactly, as providers send them; the last occurrence wins, as with
// encoding/json. ok=false when body is not one valid JSON object (checked by
// validJSON, a faster equivalent of json.Valid).
func topLevel(body []byte, modelKey, usageKey string, usage memberSink) (model string, ok bool) {
	i := skipWS(body, 0)
	if i >= len(body) || body[i] != '{' || !validJSON(body) {
		return "", false
	}
	eachMember(body, func(key, val []byte) {
		switch string(key) {
		case modelKey:
			if s := unquote(val); s != "" {
				model = s
			}
		case usageKey:
			eachMember(val, usage.member)
		}
	})
	return model, true
}

// memberSink takes the members of a usage object one by one.
type memberSink interface{ member(key, val []byte) }

// eachMember calls f with the unquoted key and raw value of every member of
// obj, which must be valid JSON (anything but an object yields no calls).
func eachMember(obj []byte, f func(key, val []byte)) {
	i := skipWS(obj, 0)
	if i >= len(obj) || obj[i] != '{' {
		return
	}
	pos, first := i+1, true
	for {
		m, next, done, ok := nextMember(obj, pos, first)
		if !ok || done {
			return
		}
		f(keyName(m.key), obj[m.start:m.end])
		pos, first = next, false
	}
}

func (u *openAIUsage) member(key, val []byte) {
	switch string(key) {
	case "prompt_tokens":
		_ = u.PromptTokens.UnmarshalJSON(val)
	case "completion_tokens":
		_ = u.CompletionTokens.UnmarshalJSON(val)
	case "total_tokens":
		_ = u.TotalTokens.UnmarshalJSON(val)
	case "input_tokens":
		_ = u.InputTokens.UnmarshalJSON(val)
	case "output_tokens":
		_ = u.OutputTokens.UnmarshalJSON(val)
	case "prompt_tokens_details":
		eachMember(val, func(k, v []byte) {
			if string(k) == "cached_tokens" {
				_ = u.PromptTokensDetails.CachedTokens.UnmarshalJSON(v)
			}
		})
	case "input_tokens_details":
		eachMember(val, func(k, v []byte) {
			if string(k) == "cached_tokens" {
				_ = u.InputTokensDetails.CachedTokens.UnmarshalJSON(v)
			}
		})
	}
}

func (a *anthropicUsage) member(key, val []byte) {
	switch string(key) {
	case "input_tokens":
		_ = a.InputTokens.UnmarshalJSON(val)
	case "output_tokens":
		_ = a.OutputTokens.UnmarshalJSON(val)
	case "cache_creation_input_tokens":
		_ = a.CacheCreationInputTokens.UnmarshalJSON(val)
	case "cache_read_input_tokens":
		_ = a.CacheReadInputTokens.UnmarshalJSON(val)
	}
}

func (g *geminiUsage) member(key, val []byte) {
	switch string(key) {
	case "promptTokenCount":
		_ = g.PromptTokenCount.UnmarshalJSON(val)
	case "candidatesTokenCount":
		_ = g.CandidatesTokenCount.UnmarshalJSON(val)
	case "totalTokenCount":
		_ = g.TotalTokenCount.UnmarshalJSON(val)
	case "cachedContentTokenCount":
		_ = g.CachedContentTokenCount.UnmarshalJSON(val)
	case "thoughtsTokenCount":
		_ = g.ThoughtsTokenCount.UnmarshalJSON(val)
	case "toolUsePromptTokenCount":
		_ = g.ToolUsePromptTokenCount.UnmarshalJSON(val)
	}
}

// geminiResponse is the subset of a GenerateContentResponse needed for a
// non-streamed body.
type geminiResponse struct {
	ModelVersion  string      `json:"modelVersion"`
	UsageMetadata geminiUsage `json:"usageMetadata"`
}

func geminiFromJSON(body []byte) Usage {
	i := skipWS(body, 0)
	if i < len(body) && body[i] == '[' {
		var rs []geminiResponse
		if !decode(body, &rs) {
			return Usage{}
		}
		var model string
		var last geminiUsage
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
	var u geminiUsage
	model, ok := topLevel(body, "modelVersion", "usageMetadata", &u)
	if !ok {
		return Usage{}
	}
	return u.usage(model)
}

// decode unmarshals data into v and reports whether v may be used. Type
// mismatches in fields that do not matter (e.g. a numeric "model") leave the
// other fields decoded, so they are tolerated; syntax errors are not.
func decode(data []byte, v any) bool {
	err := json.Unmarshal(data, v)
	if err == nil {
		return true
	}
	var te *json.UnmarshalTypeError
	return errors.As(err, &te)
}

// count is one usage counter as reported by a provider: absent (null or
// missing), set to a valid non-negative integer, or bad (reported but not a
// usable token count).
type count struct {
	v   int64
	set bool
	bad bool
}

// UnmarshalJSON never fails, so that one odd counter cannot abort decoding of
// the rest of the payload; it records bad instead.
func (c *count) UnmarshalJSON(b []byte) error {
	*c = count{}
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

// reported reports whether the provider sent the counter at all.
func (c count) reported() bool { return c.set || c.bad }

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

// sum combines counters that make up one Usage field.
func sum(cs ...count) count {
	var r count
	for _, c := range cs {
		r.v = satAdd(r.v, c.v)
		r.set = r.set || c.set
		r.bad = r.bad || c.bad
	}
	return r
}

// firstReported returns a if the provider sent it, else b.
func firstReported(a, b count) count {
	if a.reported() {
		return a
	}
	return b
}

// makeUsage applies the common rules: unknown unless prompt or completion
// counts were reported and every counter used is valid; total falls back to
// prompt+completion when the provider omitted it.
func makeUsage(model string, prompt, completion, total, cached count) Usage {
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

// openAIUsage covers chat completions / legacy completions / embeddings
// (prompt_tokens, completion_tokens) and the Responses API (input_tokens,
// output_tokens). Reasoning tokens are already part of completion/output
// tokens and are not added again.
type openAIUsage struct {
	PromptTokens        count `json:"prompt_tokens"`
	CompletionTokens    count `json:"completion_tokens"`
	TotalTokens         count `json:"total_tokens"`
	PromptTokensDetails struct {
		CachedTokens count `json:"cached_tokens"`
	} `json:"prompt_tokens_details"`
	InputTokens        count `json:"input_tokens"`
	OutputTokens       count `json:"output_tokens"`
	InputTokensDetails struct {
		CachedTokens count `json:"cached_tokens"`
	} `json:"input_tokens_details"`
}

func (u *openAIUsage) present() bool {
	return u.PromptTokens.reported() || u.CompletionTokens.reported() || u.TotalTokens.reported() ||
		u.InputTokens.reported() || u.OutputTokens.reported()
}

func (u *openAIUsage) usage(model string) Usage {
	return makeUsage(model,
		firstReported(u.PromptTokens, u.InputTokens),
		firstReported(u.CompletionTokens, u.OutputTokens),
		u.TotalTokens,
		firstReported(u.PromptTokensDetails.CachedTokens, u.InputTokensDetails.CachedTokens))
}

// anthropicUsage is the Messages API usage object. input_tokens excludes
// cache reads and cache writes, so prompt tokens are the sum of all three.
type anthropicUsage struct {
	InputTokens              count `json:"input_tokens"`
	OutputTokens             count `json:"output_tokens"`
	CacheCreationInputTokens count `json:"cache_creation_input_tokens"`
	CacheReadInputTokens     count `json:"cache_read_input_tokens"`
}

// merge overwrites the counters that src reports. Stream counters are
// cumulative, so the latest reported value of each wins.
func (a *anthropicUsage) merge(src *anthropicUsage) {
	if src.InputTokens.reported() {
		a.InputTokens = src.InputTokens
	}
	if src.OutputTokens.reported() {
		a.OutputTokens = src.OutputTokens
	}
	if src.CacheCreationInputTokens.reported() {
		a.CacheCreationInputTokens = src.CacheCreationInputTokens
	}
	if src.CacheReadInputTokens.reported() {
		a.CacheReadInputTokens = src.CacheReadInputTokens
	}
}

func (a *anthropicUsage) usage(model string) Usage {
	prompt := sum(a.InputTokens, a.CacheCreationInputTokens, a.CacheReadInputTokens)
	return makeUsage(model, prompt, a.OutputTokens, count{}, a.CacheReadInputTokens)
}

// geminiUsage is GenerateContentResponse.usageMetadata. promptTokenCount
// already includes cachedContentTokenCount. Thinking tokens are billed as
// output and tool-use prompt tokens as input, so they are added to
// completion and prompt respectively (totalTokenCount already includes both).
type geminiUsage struct {
	PromptTokenCount        count `json:"promptTokenCount"`
	CandidatesTokenCount    count `json:"candidatesTokenCount"`
	TotalTokenCount         count `json:"totalTokenCount"`
	CachedContentTokenCount count `json:"cachedContentTokenCount"`
	ThoughtsTokenCount      count `json:"thoughtsTokenCount"`
	ToolUsePromptTokenCount count `json:"toolUsePromptTokenCount"`
}

func (g *geminiUsage) present() bool {
	return g.PromptTokenCount.reported() || g.CandidatesTokenCount.reported() || g.TotalTokenCount.reported() ||
		g.CachedContentTokenCount.reported() || g.ThoughtsTokenCount.reported() || g.ToolUsePromptTokenCount.reported()
}

func (g *geminiUsage) usage(model string) Usage {
	prompt := sum(g.PromptTokenCount, g.ToolUsePromptTokenCount)
	completion := sum(g.CandidatesTokenCount, g.ThoughtsTokenCount)
	return makeUsage(model, prompt, completion, g.TotalTokenCount, g.CachedContentTokenCount)
}

// stringSink decodes a JSON string into *dst, allocating only when the value
// differs from what dst already holds; empty strings and null leave dst alone.
type stringSink struct{ dst *string }

func (s *stringSink) UnmarshalJSON(b []byte) error {
	if s.dst == nil || len(b) < 3 || b[0] != '"' || b[len(b)-1] != '"' {
		return nil
	}
	inner := b[1 : len(b)-1]
	if bytes.IndexByte(inner, '\\') < 0 {
		if string(inner) != *s.dst {
			*s.dst = string(inner)
		}
		return nil
	}
	var v string
	if json.Unmarshal(b, &v) == nil && v != "" {
		*s.dst = v
	}
	return nil
}

// flag records whether a JSON string field is present and non-empty.
type flag bool

func (f *flag) UnmarshalJSON(b []byte) error {
	*f = len(b) > 2 && b[0] == '"'
	return nil
}
