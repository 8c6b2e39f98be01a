package httpapi

import (
	"net/http"
	"sort"
	"strconv"
	"time"

	"github.com/labstack/echo/v4"

	"trueportai/services/gateway/internal/usage"
	"trueportai/services/internal/apperr"
)

type statsTotals struct {
	Requests         int64   `json:"requests"`
	Errors           int64   `json:"errors"`
	UnknownUsage     int64   `json:"unknown_usage"`
	PromptTokens     int64   `json:"prompt_tokens"`
	CompletionTokens int64   `json:"completion_tokens"`
	TotalTokens      int64   `json:"total_tokens"`
	CostUSD          float64 `json:"cost_usd"`
	AvgLatencyMS     float64 `json:"avg_latency_ms"`
	P95LatencyMS     float64 `json:"p95_latency_ms"`
}

type statsPoint struct {
	Bucket      time.Time `json:"bucket"`
	Requests    int64     `json:"requests"`
	Errors      int64     `json:"errors"`
	TotalTokens int64     `json:"total_tokens"`
	CostUSD     float64   `json:"cost_usd"`
}

type statsGroup struct {
	Key         string  `json:"key"`
	Requests    int64   `json:"requests"`
	TotalTokens int64   `json:"total_tokens"`
	CostUSD     float64 `json:"cost_usd"`
}

// groupColumns whitelists group_by values.
var groupColumns = map[string]string{"model": "model", "provider": "provider", "key": "key_id::text", "status": "status_code::text"}

// stats answers from the hourly rollups (never by scanning raw logs):
// from is rounded down to its hour.
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
	case "hour", "day":
	default:
		return apperr.InvalidField("interval", "interval must be hour or day")
	}
	if interval == "hour" && to.Sub(from) > 31*24*time.Hour {
		return apperr.InvalidField("interval", "hourly series are limited to 31 days; use interval=day")
	}
	groupBy := c.QueryParam("group_by")
	if groupBy == "" {
		groupBy = "model"
	}
	col, ok := groupColumns[groupBy]
	if !ok {
		return apperr.InvalidField("group_by", "group_by must be model, provider, key or status")
	}
	ctx := c.Request().Context()
	src, args := rollupSource(p.TenantID, p.Env, from, to, interval)

	// One pass over the rollup rows, grouped by (bucket, group); totals,
	// series, breakdown and the latency histogram are folded here.
	histCols := ""
	for i := 1; i <= len(usage.LatencyBounds)+1; i++ {
		histCols += ", sum(r.latency_hist[" + strconv.Itoa(i) + "])"
	}
	rows, err := a.pool.Query(ctx, `SELECT date_trunc('`+interval+`', r.bucket), `+col+`, sum(r.requests), sum(r.errors), sum(r.unknown_usage),
		sum(r.prompt_tokens), sum(r.completion_tokens), sum(r.total_tokens), sum(r.cost_usd), sum(r.latency_sum_ms)`+histCols+`
		FROM `+src+` GROUP BY 1, 2 ORDER BY 1`, args...)
	if err != nil {
		return err
	}
	defer rows.Close()
	var t statsTotals
	var latSum float64
	hist := make([]int64, len(usage.LatencyBounds)+1)
	series := []statsPoint{}
	groups := map[string]*statsGroup{}
	for rows.Next() {
		var b time.Time
		var g string
		var req, errs, unknown, prompt, completion, total int64
		var cost, lat float64
		h := make([]int64, len(hist))
		dst := []any{&b, &g, &req, &errs, &unknown, &prompt, &completion, &total, &cost, &lat}
		for i := range h {
			dst = append(dst, &h[i])
		}
		if err := rows.Scan(dst...); err != nil {
			return err
		}
		t.Requests += req
		t.Errors += errs
		t.UnknownUsage += unknown
		t.PromptTokens += prompt
		t.CompletionTokens += completion
		t.TotalTokens += total
		t.CostUSD += cost
		latSum += lat
		for i, v := range h {
			hist[i] += v
		}
		b = b.UTC()
		if n := len(series); n == 0 || !series[n-1].Bucket.Equal(b) {
			series = append(series, statsPoint{Bucket: b})
		}
		pt := &series[len(series)-1]
		pt.Requests += req
		pt.Errors += errs
		pt.TotalTokens += total
		pt.CostUSD += cost
		gr, ok := groups[g]
		if !ok {
			gr = &statsGroup{Key: g}
			groups[g] = gr
		}
		gr.Requests += req
		gr.TotalTokens += total
		gr.CostUSD += cost
	}
	if err := rows.Err(); err != nil {
		return err
	}
	if t.Requests > 0 {
		t.AvgLatencyMS = latSum / float64(t.Requests)
		t.P95LatencyMS = usage.Percentile(hist, 0.95)
	}
	breakdown := make([]statsGroup, 0, len(groups))
	for _, g := range groups {
		breakdown = append(breakdown, *g)
	}
	sort.Slice(breakdown, func(i, j int) bool {
		if breakdown[i].Requests != breakdown[j].Requests {
			return breakdown[i].Requests > breakdown[j].Requests
		}
		return breakdown[i].Key < breakdown[j].Key
	})
	if len(breakdown) > 200 {
		breakdown = breakdown[:200]
	}
	return c.JSON(http.StatusOK, map[string]any{
		"from": from.UTC(), "to": to.UTC(), "interval": interval, "group_by": groupBy,
		"totals": t, "series": series, "breakdown": breakdown,
	})
}

// rollupSource returns a FROM source (aliased r) of rollup rows covering
// [from, to) at hour precision: whole UTC days from the daily table and the
// partial first and last days from the hourly table, so long ranges read
// ~24× fewer rows. Hourly series read the hourly table alone.
func rollupSource(tenantID, env string, from, to time.Time, interval string) (string, []any) {
	const cols = `bucket, provider, model, key_id, status_code, requests, errors, unknown_usage, prompt_tokens, completion_tokens,
		total_tokens, cost_usd, latency_sum_ms, latency_hist`
	fromHour := from.UTC().Truncate(time.Hour)
	if interval == "hour" {
		return `(SELECT ` + cols + ` FROM usage_rollups_hourly WHERE tenant_id = $1::uuid AND env = $2 AND bucket >= $3 AND bucket < $4) r`,
			[]any{tenantID, env, fromHour, to}
	}
	day := 24 * time.Hour
	firstDay := fromHour.Truncate(day)
	if firstDay.Before(fromHour) {
		firstDay = firstDay.Add(day) // first whole day
	}
	lastDay := to.UTC().Truncate(day) // end of the whole days
	if lastDay.Before(firstDay) {
		lastDay = firstDay
	}
	return `(SELECT ` + cols + ` FROM usage_rollups_daily WHERE tenant_id = $1::uuid AND env = $2 AND bucket >= $3 AND bucket < $4
		UNION ALL
		SELECT ` + cols + ` FROM usage_rollups_hourly WHERE tenant_id = $1::uuid AND env = $2
			AND ((bucket >= $5 AND bucket < $3) OR (bucket >= $6 AND bucket < $7))) r`,
		[]any{tenantID, env, firstDay, lastDay, fromHour, maxTime(lastDay, fromHour), to}
}

func maxTime(a, b time.Time) time.Time {
	if a.After(b) {
		return a
	}
	return b
}
