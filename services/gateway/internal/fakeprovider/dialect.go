package fakeprovider

import (
	"fmt"
	"net/http"
	"strconv"
	"strings"
)

// apiError is an error answer before it is rendered in a provider's shape.
type apiError struct {
	status  int
	message string
	code    string // provider error code, "" for the status default
	param   string // offending request parameter (OpenAI), "" for none
}

// injectedError is the error answered for x-fake-status.
func injectedError(status int) apiError {
	return apiError{
		status:  status,
		message: fmt.Sprintf("fake-provider: injected error (x-fake-status: %d)", status),
	}
}

// dialect describes how one provider authenticates requests and reports errors.
type dialect struct {
	// check validates credentials and required headers before the body is
	// read; a nil result means accepted. It may be nil.
	check func(r *http.Request) *apiError
	// checkSigned validates credentials that cover the body (request
	// signatures) once it has been read. It may be nil.
	checkSigned func(r *http.Request, body []byte) *apiError
	// writeError renders an error in the provider's own JSON shape.
	writeError func(w http.ResponseWriter, e apiError)
	// requestIDHeader names the response header carrying a request id.
	requestIDHeader string
}

// openAIDialect requires "Authorization: Bearer <key>".
func openAIDialect() *dialect {
	return &dialect{
		check:           checkBearer,
		writeError:      writeOpenAIError,
		requestIDHeader: "x-request-id",
	}
}

// checkBearer requires a non-empty bearer token.
func checkBearer(r *http.Request) *apiError {
	token, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
	if !ok || strings.TrimSpace(token) == "" {
		return &apiError{
			status: http.StatusUnauthorized,
			message: "You didn't provide an API key. You need to provide your API key in an Authorization header " +
				"using Bearer auth (i.e. Authorization: Bearer YOUR_KEY).",
			code: "invalid_api_key",
		}
	}
	return nil
}

// openAIErrorBody is the OpenAI error envelope.
type openAIErrorBody struct {
	Error openAIErrorDetail `json:"error"`
}

// openAIErrorDetail is the payload of an OpenAI error; param and code may be null.
type openAIErrorDetail struct {
	Message string  `json:"message"`
	Type    string  `json:"type"`
	Param   *string `json:"param"`
	Code    *string `json:"code"`
}

// writeOpenAIError renders {"error":{"message","type","param","code"}}.
func writeOpenAIError(w http.ResponseWriter, e apiError) {
	typ, code := openAIErrorKind(e.status)
	if e.code != "" {
		code = e.code
	}
	writeJSON(w, e.status, openAIErrorBody{Error: openAIErrorDetail{
		Message: e.message,
		Type:    typ,
		Param:   nullable(e.param),
		Code:    nullable(code),
	}})
}

// openAIErrorKind maps an HTTP status to OpenAI's error type and code.
func openAIErrorKind(status int) (typ, code string) {
	switch {
	case status == http.StatusUnauthorized:
		return "invalid_request_error", "invalid_api_key"
	case status == http.StatusForbidden:
		return "invalid_request_error", "unsupported_country_region_territory"
	case status == http.StatusNotFound:
		return "invalid_request_error", "not_found"
	case status == http.StatusTooManyRequests:
		return "requests", "rate_limit_exceeded"
	case status >= 500:
		return "server_error", ""
	default:
		return "invalid_request_error", ""
	}
}

// nullable returns nil for "" so that it encodes as JSON null.
func nullable(s string) *string {
	if s == "" {
		return nil
	}
	return &s
}

// azureDialect requires the "api-key" header and the api-version query parameter.
func azureDialect() *dialect {
	return &dialect{
		check:           checkAzure,
		writeError:      writeAzureError,
		requestIDHeader: "apim-request-id",
	}
}

// checkAzure requires an api-key header and an api-version query parameter.
func checkAzure(r *http.Request) *apiError {
	if strings.TrimSpace(r.Header.Get("api-key")) == "" {
		return &apiError{
			status: http.StatusUnauthorized,
			message: "Access denied due to invalid subscription key or wrong API endpoint. Make sure to provide " +
				"a valid key for an active subscription and use a correct regional API endpoint for your resource.",
		}
	}
	if r.URL.Query().Get("api-version") == "" {
		return &apiError{
			status:  http.StatusBadRequest,
			message: "Missing required query parameter: api-version.",
			code:    "MissingApiVersion",
		}
	}
	return nil
}

// azureErrorBody is the Azure OpenAI error envelope.
type azureErrorBody struct {
	Error azureErrorDetail `json:"error"`
}

// azureErrorDetail is the payload of an Azure OpenAI error.
type azureErrorDetail struct {
	Code    string `json:"code"`
	Message string `json:"message"`
}

// writeAzureError renders {"error":{"code","message"}}; code defaults to the status.
func writeAzureError(w http.ResponseWriter, e apiError) {
	code := e.code
	if code == "" {
		code = strconv.Itoa(e.status)
	}
	writeJSON(w, e.status, azureErrorBody{Error: azureErrorDetail{Code: code, Message: e.message}})
}

// anthropicDialect requires the x-api-key and anthropic-version headers.
func anthropicDialect() *dialect {
	return &dialect{
		check:           checkAnthropic,
		writeError:      writeAnthropicError,
		requestIDHeader: "request-id",
	}
}

// checkAnthropic requires x-api-key and anthropic-version.
func checkAnthropic(r *http.Request) *apiError {
	if strings.TrimSpace(r.Header.Get("x-api-key")) == "" {
		return &apiError{status: http.StatusUnauthorized, message: "x-api-key header is required"}
	}
	if strings.TrimSpace(r.Header.Get("anthropic-version")) == "" {
		return &apiError{status: http.StatusBadRequest, message: "anthropic-version: header is required"}
	}
	return nil
}

// anthropicErrorBody is the Anthropic error envelope.
type anthropicErrorBody struct {
	Type  string               `json:"type"`
	Error anthropicErrorDetail `json:"error"`
}

// anthropicErrorDetail is the payload of an Anthropic error.
type anthropicErrorDetail struct {
	Type    string `json:"type"`
	Message string `json:"message"`
}

// writeAnthropicError renders {"type":"error","error":{"type","message"}}.
func writeAnthropicError(w http.ResponseWriter, e apiError) {
	writeJSON(w, e.status, anthropicErrorBody{
		Type:  "error",
		Error: anthropicErrorDetail{Type: anthropicErrorType(e.status), Message: e.message},
	})
}

// anthropicErrorType maps an HTTP status to Anthropic's error type.
func anthropicErrorType(status int) string {
	switch status {
	case http.StatusUnauthorized:
		return "authentication_error"
	case http.StatusPaymentRequired:
		return "billing_error"
	case http.StatusForbidden:
		return "permission_error"
	case http.StatusNotFound:
		return "not_found_error"
	case http.StatusRequestEntityTooLarge:
		return "request_too_large"
	case http.StatusTooManyRequests:
		return "rate_limit_error"
	case http.StatusGatewayTimeout:
		return "timeout_error"
	case 529:
		return "overloaded_error"
	}
	if status >= 500 {
		return "api_error"
	}
	return "invalid_request_error"
}

// geminiDialect requires an x-goog-api-key header or a key query parameter.
func geminiDialect() *dialect {
	return &dialect{check: checkGemini, writeError: writeGeminiError}
}

// checkGemini requires x-goog-api-key or ?key=.
func checkGemini(r *http.Request) *apiError {
	if strings.TrimSpace(r.Header.Get("x-goog-api-key")) == "" && r.URL.Query().Get("key") == "" {
		return &apiError{
			status: http.StatusUnauthorized,
			message: "Method doesn't allow unregistered callers (callers without established identity). " +
				"Please use API Key or other form of API consumer identity to call this API.",
		}
	}
	return nil
}

// geminiErrorBody is the Google API error envelope.
type geminiErrorBody struct {
	Error geminiErrorDetail `json:"error"`
}

// geminiErrorDetail is the payload of a Google API error.
type geminiErrorDetail struct {
	Code    int    `json:"code"`
	Message string `json:"message"`
	Status  string `json:"status"`
}

// writeGeminiError renders {"error":{"code","message","status"}}.
func writeGeminiError(w http.ResponseWriter, e apiError) {
	writeJSON(w, e.status, geminiErrorBody{Error: geminiErrorDetail{
		Code:    e.status,
		Message: e.message,
		Status:  geminiStatus(e.status),
	}})
}

// geminiStatus maps an HTTP status to the google.rpc.Code name.
func geminiStatus(status int) string {
	switch status {
	case http.StatusBadRequest:
		return "INVALID_ARGUMENT"
	case http.StatusUnauthorized:
		return "UNAUTHENTICATED"
	case http.StatusForbidden:
		return "PERMISSION_DENIED"
	case http.StatusNotFound:
		return "NOT_FOUND"
	case http.StatusConflict:
		return "ABORTED"
	case http.StatusTooManyRequests:
		return "RESOURCE_EXHAUSTED"
	case 499:
		return "CANCELLED"
	case http.StatusNotImplemented:
		return "UNIMPLEMENTED"
	case http.StatusServiceUnavailable:
		return "UNAVAILABLE"
	case http.StatusGatewayTimeout:
		return "DEADLINE_EXCEEDED"
	}
	if status >= 500 {
		return "INTERNAL"
	}
	return "FAILED_PRECONDITION"
}

// providerNotFound answers an unknown path under a provider prefix in that
// provider's error shape.
func providerNotFound(d *dialect) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		d.writeError(w, apiError{
			status:  http.StatusNotFound,
			message: "Invalid URL (" + r.Method + " " + r.URL.Path + ")",
		})
	}
}
