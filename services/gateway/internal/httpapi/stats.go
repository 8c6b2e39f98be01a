package httpapi

import (
	"net/http"
	"time"

	"github.com/labstack/echo/v4"

	"trueportai/services/gateway/internal/analytics"
	"trueportai/services/internal/apperr"
	"trueportai/services/internal/money"
)

type statsTotals struct {
	Requests         int64     `json:"requests"`
	Errors           int64     `json:"errors"`
	UnknownUsage     int64     `json:"unknown_usage"`
	PromptTokens     int64     `json:"prompt_tokens"`
	CompletionTokens int64     `json:"completion_tokens"`
	TotalTokens      int64     `json:"total_tokens"`
	CostUSD          money.USD `json:"cost_usd"`
	AvgLatencyMS     float64   `json:"avg_latency_ms"`
	P95LatencyMS     float64   `json:"p95_latency_ms"`
}

type statsPoint struct {
	Bucket       time.Time `json:"bucket"`
	Requests     int64     `json:"requests"`
	Errors       int64     `json:"errors"`
	TotalTokens  int64     `json:"total_tokens"`
	CostUSD      money.USD `json:"cost_usd"`
	AvgLatencyMS float64   `json:"avg_latency_ms"`
	P95LatencyMS float64   `json:"p95_latency_ms"`
}

type statsGroup struct {
	Key         string    `json:"key"`
	Requests    int64     `json:"requests"`
	TotalTokens int64     `json:"total_tokens"`
	CostUSD     money.USD `json:"cost_usd"`
}

// stats answers from the rollups (never by scanning raw logs): from is
// rounded down to its hour.
func (a *API) stats(c echo.Context) error {
	p := caller(c)
	now := time.Now().UTC()
	to, from := now, now.Add(-24*time.Hour)
	var err error
	if s := c.QueryParam("to"); s != "" {
		if to, err = time.Parse(time.RFC3339, s); err != nil {
			return apperr.InvalidField("to", "to must be an RFC 3339 time")
		}
	}
	if s := c.QueryParam("from"); s != "" {
		if from, err = time.Parse(time.RFC3339, s); err != nil {
			return apperr.InvalidField("from", "from must be an RFC 3339 time")
		}
	} else {
		from = to.Add(-24 * time.Hour)
	}
	if !from.Before(to) {
		return apperr.InvalidField("from", "from must be before to")
	}
	if to.Sub(from) > 400*24*time.Hour {
		return apperr.InvalidField("from", "the range may span at most 400 days")
	}
	interval := c.QueryParam("interval")
	switch interval {
	case "":
		interval = "hour"
		if to.Sub(from) > 48*time.Hour {
			interval = "day"
		}
	case "hour", "day", "month":
	default:
		return apperr.InvalidField("interval", "interval must be hour, day or month")
	}
	if interval == "hour" && to.Sub(from) > 31*24*time.Hour {
		return apperr.InvalidField("interval", "hourly series are limited to 31 days; use interval=day")
	}
	groupBy := c.QueryParam("group_by")
	if groupBy == "" {
		groupBy = "model"
	}
	switch groupBy {
	case "model", "provider", "key", "status":
	default:
		return apperr.InvalidField("group_by", "group_by must be model, provider, key or status")
	}
	st, err := a.analytics.Stats(c.Request().Context(), analytics.StatsQuery{TenantID: p.TenantID, Env: p.Env, From: from, To: to, Interval: interval, GroupBy: groupBy})
	if err != nil {
		return err
	}
	series := make([]statsPoint, len(st.Series))
	for i, pt := range st.Series {
		series[i] = statsPoint(pt)
	}
	breakdown := make([]statsGroup, len(st.Breakdown))
	for i, g := range st.Breakdown {
		breakdown[i] = statsGroup(g)
	}
	return c.JSON(http.StatusOK, map[string]any{
		"from": from.UTC(), "to": to.UTC(), "interval": interval, "group_by": groupBy,
		"totals": statsTotals(st.Totals), "series": series, "breakdown": breakdown,
	})
}
