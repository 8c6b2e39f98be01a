package proxy

import (
	"net/http"

	"trueportai/services/gateway/internal/provider"
	"trueportai/services/gateway/internal/provider/openai"
)

// refusal is an answer the gateway itself gives, rendered in the provider's
// own error shape so SDKs surface it.
type refusal struct {
	status  int
	code    string // snake_case, e.g. invalid_api_key
	message string
}

// write renders the refusal; a request no provider route matched gets the
// OpenAI shape, the most widely understood.
func (r refusal) write(w http.ResponseWriter, p provider.Provider) {
	var b []byte
	if p != nil {
		b = p.ErrorBody(r.status, r.code, r.message)
	} else {
		b = openai.Format{}.ErrorBody(r.status, r.code, r.message)
	}
	h := w.Header()
	h.Set("Content-Type", "application/json")
	h.Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(r.status)
	_, _ = w.Write(b)
}
