package httpapi

import (
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/google/uuid"
	"github.com/labstack/echo/v4"

	"trueportai/services/internal/apperr"
	"trueportai/services/internal/httpserver"
)

type logResp struct {
	ID               string    `json:"id"`
	RequestID        string    `json:"request_id"`
	CreatedAt        time.Time `json:"created_at"`
	KeyID            *string   `json:"key_id"`
	KeyName          string    `json:"key_name"`
	Env              string    `json:"env"`
	Provider         string    `json:"provider"`
	Model            string    `json:"model"`
	Path             string    `json:"path"`
	StatusCode       int       `json:"status_code"`
	Stream           bool      `json:"stream"`
	LatencyMS        float64   `json:"latency_ms"`
	TTFBMS           *float64  `json:"ttfb_ms"`
	PromptTokens     *int64    `json:"prompt_tokens"`
	CompletionTokens *int64    `json:"completion_tokens"`
	TotalTokens      *int64    `json:"total_tokens"`
	CachedTokens     *int64    `json:"cached_tokens"`
	CostUSD          *float64  `json:"cost_usd"`
	Outcome          string    `json:"outcome"`
	Error            string    `json:"error,omitempty"`
	ViolationIDs     []string  `json:"violation_ids"`
	RequestBody      *string   `json:"request_body,omitempty"`
	ResponseBody     *string   `json:"response_body,omitempty"`
}

// logFilter builds the WHERE clause of a logs query from validated params.
type logFilter struct {
	where []string
	args  []any
}

func (f *logFilter) add(cond string, v any) {
	f.args = append(f.args, v)
	f.where = append(f.where, strings.ReplaceAll(cond, "?", "$"+strconv.Itoa(len(f.args))))
}

func parseLogFilter(c echo.Context, tenantID, env string) (*logFilter, error) {
	f := &logFilter{}
	f.add("tenant_id = ?::uuid", tenantID)
	f.add("env = ?", env)
	for _, name := range []string{"from", "to"} {
		if s := c.QueryParam(name); s != "" {
			t, err := time.Parse(time.RFC3339, s)
			if err != nil {
				return nil, apperr.InvalidField(name, name+" must be an RFC 3339 time")
			}
			if name == "from" {
				f.add("created_at >= ?", t)
			} else {
				f.add("created_at < ?", t)
			}
		}
	}
	if s := c.QueryParam("key_id"); s != "" {
		if _, err := uuid.Parse(s); err != nil {
			return nil, apperr.InvalidField("key_id", "key_id must be a UUID")
		}
		f.add("key_id = ?::uuid", s)
	}
	if s := c.QueryParam("provider"); s != "" {
		switch s {
		case "openai", "anthropic", "google", "azure":
			f.add("provider = ?", s)
		default:
			return nil, apperr.InvalidField("provider", "provider must be openai, anthropic, google or azure")
		}
	}
	if s := c.QueryParam("model"); s != "" {
		f.add("model = ?", s)
	}
	if s := c.QueryParam("status"); s != "" {
		switch s {
		case "2xx", "3xx", "4xx", "5xx":
			lo := int(s[0]-'0') * 100
			f.add("status_code >= ?", lo)
			f.add("status_code < ?", lo+100)
		default:
			n, err := strconv.Atoi(s)
			if err != nil || n < 100 || n > 599 {
				return nil, apperr.InvalidField("status", "status must be an HTTP status code or 2xx/4xx/5xx")
			}
			f.add("status_code = ?", n)
		}
	}
	if s := c.QueryParam("stream"); s != "" {
		b, err := strconv.ParseBool(s)
		if err != nil {
			return nil, apperr.InvalidField("stream", "stream must be true or false")
		}
		f.add("stream = ?", b)
	}
	return f, nil
}

func (a *API) listLogs(c echo.Context) error {
	page, err := httpserver.ParsePage(c)
	if err != nil {
		return err
	}
	p := caller(c)
	f, err := parseLogFilter(c, p.TenantID, p.Env)
	if err != nil {
		return err
	}
	where := strings.Join(f.where, " AND ")
	ctx := c.Request().Context()
	// The total is exact up to totalCap matching rows; beyond that it is
	// reported as totalCap with total_capped=true (an exact count of millions
	// of rows would cost seconds per page; stats give exact volumes).
	var total int
	if err := a.pool.QueryRow(ctx, `SELECT count(*) FROM (SELECT 1 FROM usage_logs WHERE `+where+` LIMIT `+strconv.Itoa(totalCap+1)+`) x`, f.args...).Scan(&total); err != nil {
		return err
	}
	capped := total > totalCap
	total = min(total, totalCap)
	args := append(f.args, page.Limit, page.Offset)
	rows, err := a.pool.Query(ctx, `SELECT id::text, request_id, created_at, key_id::text, key_name, env, provider, model, path, status_code, stream,
		latency_ms, ttfb_ms, prompt_tokens, completion_tokens, total_tokens, cached_tokens, cost_usd, outcome, error, violation_ids, request_body, response_body
		FROM usage_logs WHERE `+where+` ORDER BY created_at DESC, id DESC LIMIT $`+strconv.Itoa(len(args)-1)+` OFFSET $`+strconv.Itoa(len(args)), args...)
	if err != nil {
		return err
	}
	defer rows.Close()
	items := []logResp{}
	for rows.Next() {
		var l logResp
		if err := rows.Scan(&l.ID, &l.RequestID, &l.CreatedAt, &l.KeyID, &l.KeyName, &l.Env, &l.Provider, &l.Model, &l.Path, &l.StatusCode, &l.Stream,
			&l.LatencyMS, &l.TTFBMS, &l.PromptTokens, &l.CompletionTokens, &l.TotalTokens, &l.CachedTokens, &l.CostUSD, &l.Outcome, &l.Error,
			&l.ViolationIDs, &l.RequestBody, &l.ResponseBody); err != nil {
			return err
		}
		l.CreatedAt = l.CreatedAt.UTC()
		items = append(items, l)
	}
	if err := rows.Err(); err != nil {
		return err
	}
	return c.JSON(http.StatusOK, cappedList[logResp]{List: httpserver.NewList(items, total, page), TotalCapped: capped})
}

// totalCap bounds the exact count behind a logs page's total.
const totalCap = 10000

// cappedList is the overview's envelope plus total_capped.
type cappedList[T any] struct {
	httpserver.List[T]
	TotalCapped bool `json:"total_capped"`
}
