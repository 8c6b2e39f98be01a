package provider

import "trueportai/services/gateway/internal/jsonscan"

// BodyModelAndStream reads the top-level "model" string and "stream":true of
// a JSON object body, the way most LLM APIs name them (OpenAI, Anthropic and
// their relatives). Invalid JSON or a non-object yields the zero Request.
// With duplicate keys the last occurrence wins, as with encoding/json.
func BodyModelAndStream(body []byte) Request {
	if !jsonscan.Valid(body) {
		return Request{}
	}
	i := jsonscan.SkipWS(body, 0)
	if i >= len(body) || body[i] != '{' {
		return Request{}
	}
	var modelRaw []byte
	var r Request
	for pos, first := i+1, true; ; first = false {
		m, next, done, ok := jsonscan.NextMember(body, pos, first)
		if !ok || done {
			break
		}
		switch {
		case jsonscan.KeyIs(m.Key, "model"):
			modelRaw = body[m.Start:m.End]
		case jsonscan.KeyIs(m.Key, "stream"):
			r.Stream = string(body[m.Start:m.End]) == "true"
		}
		pos = next
	}
	r.Model = jsonscan.Unquote(modelRaw)
	return r
}
