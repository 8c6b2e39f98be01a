package provider

import "trueportai/services/gateway/internal/jsonscan"

// BodyModelAndStream reads the top-level "model" string and "stream":true of
// a JSON object body, the way most LLM APIs name them (OpenAI, Anthropic and
// their relatives). Invalid JSON or a non-object yields the zero Request.
// With duplicate keys the last occurrence wins, as with encoding/json.
func BodyModelAndStream(body []byte) Request {
	i := jsonscan.SkipWS(body, 0)
	if i >= len(body) || body[i] != '{' {
		return Request{}
	}
	// One pass checks the body and reads its top-level members (a prompt
	// can be most of a megabyte: it is read once, not twice).
	var modelRaw []byte
	var r Request
	if !jsonscan.ValidMembers(body, func(key, val []byte) {
		switch {
		case jsonscan.KeyIs(key, "model"):
			modelRaw = val
		case jsonscan.KeyIs(key, "stream"):
			r.Stream = string(val) == "true"
		}
	}) {
		return Request{}
	}
	r.Model = jsonscan.Unquote(modelRaw)
	return r
}
