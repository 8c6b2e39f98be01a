package proxy

import (
	"encoding/json"
	"net/http"

	"trueportai/services/gateway/internal/metering"
)

// refusal is an answer the gateway itself gives, rendered in the provider's
// own error shape so SDKs surface it.
type refusal struct {
	status  int
	code    string // snake_case, e.g. invalid_api_key
	message string
}

func (r refusal) write(w http.ResponseWriter, p metering.Provider) {
	var body any
	switch p {
	case metering.Anthropic:
		body = map[string]any{"type": "error", "error": map[string]any{"type": anthropicType(r.status), "message": r.message}}
	case metering.Google:
		body = map[string]any{"error": map[string]any{"code": r.status, "message": r.message, "status": googleStatus(r.status)}}
	default: // OpenAI and Azure
		body = map[string]any{"error": map[string]any{"message": r.message, "type": openAIType(r.status), "code": r.code, "param": nil}}
	}
	b, _ := json.Marshal(body)
	h := w.Header()
	h.Set("Content-Type", "application/json")
	h.Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(r.status)
	_, _ = w.Write(b)
}

func openAIType(status int) string {
	switch status {
	case http.StatusUnauthorized:
		return "authentication_error"
	case http.StatusForbidden:
		return "permission_error"
	case http.StatusTooManyRequests:
		return "rate_limit_error"
	case http.StatusBadGateway, http.StatusServiceUnavailable, http.StatusGatewayTimeout:
		return "api_error"
	default:
		return "invalid_request_error"
	}
}

func anthropicType(status int) string {
	switch status {
	case http.StatusUnauthorized:
		return "authentication_error"
	case http.StatusForbidden:
		return "permission_error"
	case http.StatusNotFound:
		return "not_found_error"
	case http.StatusRequestEntityTooLarge:
		return "request_too_large"
	case http.StatusTooManyRequests:
		return "rate_limit_error"
	case http.StatusServiceUnavailable:
		return "overloaded_error"
	case http.StatusBadGateway, http.StatusGatewayTimeout:
		return "api_error"
	default:
		return "invalid_request_error"
	}
}

func googleStatus(status int) string {
	switch status {
	case http.StatusUnauthorized:
		return "UNAUTHENTICATED"
	case http.StatusForbidden:
		return "PERMISSION_DENIED"
	case http.StatusNotFound:
		return "NOT_FOUND"
	case http.StatusTooManyRequests:
		return "RESOURCE_EXHAUSTED"
	case http.StatusServiceUnavailable, http.StatusBadGateway:
		return "UNAVAILABLE"
	case http.StatusGatewayTimeout:
		return "DEADLINE_EXCEEDED"
	default:
		return "INVALID_ARGUMENT"
	}
}
