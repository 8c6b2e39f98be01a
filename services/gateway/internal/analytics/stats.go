package analytics

import (
	"context"
	"fmt"
	"sort"
	"strconv"
	"time"
)

// StatsQuery asks for the usage of one tenant environment in [From, To),
// as a series per Interval ("hour" or "day") and a breakdown by GroupBy
// ("model", "provider", "key" or "status").
type StatsQuery struct {
	TenantID, Env string
	From, To      time.Time
	Interval      string
	GroupBy       string
}

// Totals are the sums over the whole range.
type Totals struct {
	Requests         int64
	Errors           int64
	UnknownUsage     int64
	PromptTokens     int64
	CompletionTokens int64
	TotalTokens      int64
	CostUSD          float64
	AvgLatencyMS     float64
	P95LatencyMS     float64 // estimated from the rollups' latency histogram
}

// Point is one bucket of the series.
type Point struct {
	Bucket       time.Time // UTC
	Requests     int64
	Errors       int64
	TotalTokens  int64
	CostUSD      float64
	AvgLatencyMS float64
	P95LatencyMS float64 // estimated from the bucket's latency histogram
}

// Group is one entry of the breakdown.
type Group struct {
	Key         string
	Requests    int64
	TotalTokens int64
	CostUSD     float64
}

// Stats is the answer to a StatsQuery.
type Stats struct {
	Totals    Totals
	Series    []Point // by bucket
	Breakdown []Group // by requests (descending), then key; at most MaxGroups
}

// MaxGroups bounds the breakdown.
const MaxGroups = 200

// groupColumns maps a StatsQuery.GroupBy to its rollup column.
var groupColumns = map[string]string{"model": "model", "provider": "provider", "key": "key_id::text", "status": "status_code::text"}

// Stats answers from the rollups, never by scanning raw logs: From is
// rounded down to its hour.
func (s *Store) Stats(ctx context.Context, q StatsQuery) (Stats, error) {
	col, ok := groupColumns[q.GroupBy]
	if !ok {
		return Stats{}, fmt.Errorf("analytics: unknown group %q", q.GroupBy)
	}
	if q.Interval != "hour" && q.Interval != "day" {
		return Stats{}, fmt.Errorf("analytics: unknown interval %q", q.Interval)
	}
	src, args := rollupSource(q.TenantID, q.Env, q.From, q.To, q.Interval)

	// One pass over the rollup rows, grouped by (bucket, group); totals,
	// series, breakdown and the latency histogram are folded here.
	histCols := ""
	for i := 1; i <= len(LatencyBounds)+1; i++ {
		histCols += ", sum(r.latency_hist[" + strconv.Itoa(i) + "])"
	}
	rows, err := s.pool.Query(ctx, `SELECT date_trunc('`+q.Interval+`', r.bucket), `+col+`, sum(r.requests), sum(r.errors), sum(r.unknown_usage),
		sum(r.prompt_tokens), sum(r.completion_tokens), sum(r.total_tokens), sum(r.cost_usd), sum(r.latency_sum_ms)`+histCols+`
		FROM `+src+` GROUP BY 1, 2 ORDER BY 1`, args...)
	if err != nil {
		return Stats{}, err
	}
	defer rows.Close()
	var t Totals
	var latSum float64
	hist := make([]int64, len(LatencyBounds)+1)
	series := []Point{}
	// The open bucket's latency sum and histogram (rows come by bucket).
	var ptLat float64
	ptHist := make([]int64, len(hist))
	closePoint := func() {
		if n := len(series); n > 0 && series[n-1].Requests > 0 {
			series[n-1].AvgLatencyMS = ptLat / float64(series[n-1].Requests)
			series[n-1].P95LatencyMS = Percentile(ptHist, 0.95)
		}
		ptLat = 0
		clear(ptHist)
	}
	groups := map[string]*Group{}
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
			return Stats{}, err
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
			closePoint()
			series = append(series, Point{Bucket: b})
		}
		pt := &series[len(series)-1]
		pt.Requests += req
		pt.Errors += errs
		pt.TotalTokens += total
		pt.CostUSD += cost
		ptLat += lat
		for i, v := range h {
			ptHist[i] += v
		}
		gr, ok := groups[g]
		if !ok {
			gr = &Group{Key: g}
			groups[g] = gr
		}
		gr.Requests += req
		gr.TotalTokens += total
		gr.CostUSD += cost
	}
	if err := rows.Err(); err != nil {
		return Stats{}, err
	}
	closePoint()
	if t.Requests > 0 {
		t.AvgLatencyMS = latSum / float64(t.Requests)
		t.P95LatencyMS = Percentile(hist, 0.95)
	}
	breakdown := make([]Group, 0, len(groups))
	for _, g := range groups {
		breakdown = append(breakdown, *g)
	}
	sort.Slice(breakdown, func(i, j int) bool {
		if breakdown[i].Requests != breakdown[j].Requests {
			return breakdown[i].Requests > breakdown[j].Requests
		}
		return breakdown[i].Key < breakdown[j].Key
	})
	if len(breakdown) > MaxGroups {
		breakdown = breakdown[:MaxGroups]
	}
	return Stats{Totals: t, Series: series, Breakdown: breakdown}, nil
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
