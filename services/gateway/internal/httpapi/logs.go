package httpapi

import (
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/google/uuid"
	"github.com/labstack/echo/v4"

	"trueportai/services/gateway/internal/analytics"
	"trueportai/services/internal/apperr"
	"trueportai/services/internal/httpserver"
	"trueportai/services/internal/money"
)

type logResp struct {
	ID               string     `json:"id"`
	RequestID        string     `json:"request_id"`
	CreatedAt        time.Time  `json:"created_at"`
	KeyID            *string    `json:"key_id"`
	KeyName          string     `json:"key_name"`
	Env              string     `json:"env"`
	Provider         string     `json:"provider"`
	Model            string     `json:"model"`
	Path             string     `json:"path"`
	StatusCode       int        `json:"status_code"`
	Stream           bool       `json:"stream"`
	LatencyMS        float64    `json:"latency_ms"`
	TTFBMS           *float64   `json:"ttfb_ms"`
	PromptTokens     *int64     `json:"prompt_tokens"`
	CompletionTokens *int64     `json:"completion_tokens"`
	TotalTokens      *int64     `json:"total_tokens"`
	CachedTokens     *int64     `json:"cached_tokens"`
	CostUSD          *money.USD `json:"cost_usd"` // a JSON number, at most 10 decimals
	Outcome          string     `json:"outcome"`
	Error            string     `json:"error,omitempty"`
	ViolationIDs     []string   `json:"violation_ids"`
	RequestBody      *string    `json:"request_body,omitempty"`
	ResponseBody     *string    `json:"response_body,omitempty"`
}

func toLogResp(l analytics.Log) logResp {
	return logResp{ID: l.ID, RequestID: l.RequestID, CreatedAt: l.CreatedAt, KeyID: l.KeyID, KeyName: l.KeyName, Env: l.Env, Provider: l.Provider,
		Model: l.Model, Path: l.Path, StatusCode: l.StatusCode, Stream: l.Stream, LatencyMS: l.LatencyMS, TTFBMS: l.TTFBMS,
		PromptTokens: l.PromptTokens, CompletionTokens: l.CompletionTokens, TotalTokens: l.TotalTokens, CachedTokens: l.CachedTokens,
		CostUSD: l.CostUSD, Outcome: l.Outcome, Error: l.Error, ViolationIDs: l.ViolationIDs, RequestBody: l.RequestBody, ResponseBody: l.ResponseBody}
}

// parseRange reads the optional from and to query parameters (RFC 3339).
func parseRange(c echo.Context) (from, to time.Time, err error) {
	for _, p := range []struct {
		name string
		dst  *time.Time
	}{{"from", &from}, {"to", &to}} {
		if s := c.QueryParam(p.name); s != "" {
			if *p.dst, err = time.Parse(time.RFC3339, s); err != nil {
				return time.Time{}, time.Time{}, apperr.InvalidField(p.name, p.name+" must be an RFC 3339 time")
			}
		}
	}
	return from, to, nil
}

func parseLogFilter(c echo.Context, tenantID, env string, providers []string) (analytics.LogFilter, error) {
	f := analytics.LogFilter{TenantID: tenantID, Env: env}
	var err error
	if f.From, f.To, err = parseRange(c); err != nil {
		return f, err
	}
	if s := c.QueryParam("key_id"); s != "" {
		if _, err := uuid.Parse(s); err != nil {
			return f, apperr.InvalidField("key_id", "key_id must be a UUID")
		}
		f.KeyID = s
	}
	if s := c.QueryParam("provider"); s != "" {
		if !slices.Contains(providers, s) {
			return f, apperr.InvalidField("provider", "provider must be one of "+strings.Join(providers, ", "))
		}
		f.Provider = s
	}
	f.Model = c.QueryParam("model")
	if s := c.QueryParam("status"); s != "" {
		switch s {
		case "2xx", "3xx", "4xx", "5xx":
			f.StatusClass = int(s[0] - '0')
		default:
			n, err := strconv.Atoi(s)
			if err != nil || n < 100 || n > 599 {
				return f, apperr.InvalidField("status", "status must be an HTTP status code or 2xx/4xx/5xx")
			}
			f.StatusCode = n
		}
	}
	if s := c.QueryParam("stream"); s != "" {
		b, err := strconv.ParseBool(s)
		if err != nil {
			return f, apperr.InvalidField("stream", "stream must be true or false")
		}
		f.Stream = &b
	}
	return f, nil
}

// listLogs answers a page of logs. The total is exact up to
// analytics.LogTotalCap matching rows; beyond that it is reported as the
// cap with total_capped=true; a count that would take longer than
// analytics.LogCountBudget gives Postgres's estimate, total_estimated=true,
// unless the page itself tells the total (a page that is not full).
func (a *API) listLogs(c echo.Context) error {
	page, err := httpserver.ParsePage(c)
	if err != nil {
		return err
	}
	p := caller(c)
	f, err := parseLogFilter(c, p.TenantID, p.Env, a.providers)
	if err != nil {
		return err
	}
	res, err := a.analytics.Logs(c.Request().Context(), f, page.Limit, page.Offset)
	if err != nil {
		return err
	}
	items := make([]logResp, len(res.Items))
	for i, l := range res.Items {
		items[i] = toLogResp(l)
	}
	return c.JSON(http.StatusOK, cappedList[logResp]{List: httpserver.NewList(items, res.Total, page), TotalCapped: res.Capped,
		TotalEstimated: res.Estimated})
}

// cappedList is the overview's envelope plus total_capped (total is the
// cap: more rows match) and total_estimated (total is Postgres's estimate:
// counting would have taken longer than analytics.LogCountBudget).
type cappedList[T any] struct {
	httpserver.List[T]
	TotalCapped    bool `json:"total_capped"`
	TotalEstimated bool `json:"total_estimated"`
}
