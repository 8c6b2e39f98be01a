// Package usage is the hot-path side of usage metering: the event types the
// proxy fills (Event, Violation, Match, the Outcome* values) and the
// asynchronous JetStream publisher with its on-disk spool for NATS outages.
// Events go from here through the usage stream to package ingest, which
// stores them with package analytics (the owner of the usage tables).
package usage

import (
	"time"

	"trueportai/services/internal/money"
)

// Event is one proxied request as metered. Token fields are nil when the
// provider did not report usage: unknown is never recorded as 0.
type Event struct {
	RequestID        string      `json:"request_id"`
	CreatedAt        time.Time   `json:"created_at"`
	TenantID         string      `json:"tenant_id"`
	Env              string      `json:"env"`
	KeyID            string      `json:"key_id,omitempty"`
	KeyName          string      `json:"key_name,omitempty"`
	Provider         string      `json:"provider"`
	Model            string      `json:"model,omitempty"`
	Path             string      `json:"path"`
	StatusCode       int         `json:"status_code"`
	Stream           bool        `json:"stream"`
	LatencyMS        float64     `json:"latency_ms"`
	TTFBMS           *float64    `json:"ttfb_ms,omitempty"`
	PromptTokens     *int64      `json:"prompt_tokens,omitempty"`
	CompletionTokens *int64      `json:"completion_tokens,omitempty"`
	TotalTokens      *int64      `json:"total_tokens,omitempty"`
	CachedTokens     *int64      `json:"cached_tokens,omitempty"`
	CostUSD          *money.USD  `json:"cost_usd,omitempty"` // exact; older publishers' floats read rounded to 10 decimals
	Outcome          string      `json:"outcome"`
	Error            string      `json:"error,omitempty"`
	ViolationIDs     []string    `json:"violation_ids,omitempty"`
	Violations       []Violation `json:"violations,omitempty"`
	RequestBody      *string     `json:"request_body,omitempty"`
	ResponseBody     *string     `json:"response_body,omitempty"`
	// Traceparent is the W3C trace context of the proxied request's server
	// span when tracing is on and the request sampled: the publisher
	// carries it in the message headers to the ingester's insert span.
	// Never part of the stored event.
	Traceparent string `json:"-"`
}

// Violation is one policy match of a request, as stored (masked snippets only).
type Violation struct {
	ID         string  `json:"id"`
	PolicyID   string  `json:"policy_id"`
	PolicyName string  `json:"policy_name"`
	Type       string  `json:"type"`
	Action     string  `json:"action"`
	Severity   string  `json:"severity"`
	Shadow     bool    `json:"shadow,omitempty"`
	Direction  string  `json:"direction"`
	Matches    []Match `json:"matches"`
}

// Match is one masked match of a violation.
type Match struct {
	Kind    string `json:"kind"`
	Snippet string `json:"snippet"`
	Offset  int    `json:"offset"`
}

// Outcomes.
const (
	OutcomeOK           = "ok"
	OutcomeBlocked      = "blocked"
	OutcomeRedacted     = "redacted"
	OutcomeFlagged      = "flagged"
	OutcomeError        = "error"
	OutcomeClientClosed = "client_closed"
)
