package analytics

import (
	"context"
	"fmt"
	"sort"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"

	"trueportai/services/internal/money"
)

// StatsQuery asks for the usage of one tenant environment in [From, To),
// as a series per Interval ("hour", "day" or "month", UTC) and a breakdown
// by GroupBy ("model", "provider", "key" or "status").
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
	CostUSD          money.USD
	AvgLatencyMS     float64
	P95LatencyMS     float64 // estimated from the rollups' latency histogram
}

// Point is one bucket of the series.
type Point struct {
	Bucket       time.Time // UTC
	Requests     int64
	Errors       int64
	TotalTokens  int64
	CostUSD      money.USD
	AvgLatencyMS float64
	P95LatencyMS float64 // estimated from the bucket's latency histogram
}

// Group is one entry of the breakdown.
type Group struct {
	Key         string
	Requests    int64
	TotalTokens int64
	CostUSD     money.USD
}

// Stats is the answer to a StatsQuery.
type Stats struct {
	Totals    Totals
	Series    []Point // by bucket
	Breakdown []Group // by requests (descending), then key; at most MaxGroups
}

// MaxGroups bounds the breakdown.
const MaxGroups = 200

// groupBys maps a StatsQuery.GroupBy to its rollup dimension and the
// column (expression) it groups by.
var groupBys = map[string]struct{ dim, col string }{
	"model":    {"model", "model"},
	"provider": {"model", "provider"},
	"key":      {"key", "key_id::text"},
	"status":   {"status", "status_code::text"},
}

// statsSumCols are the sums every stats query reads, in scan order.
var statsSumCols = func() string {
	var b strings.Builder
	for _, c := range measureCols {
		b.WriteString(", sum(r." + c + ")::bigint")
	}
	return b.String()
}()

// Stats answers from the rollups of the group-by's dimension, never by
// scanning raw logs: From is rounded down to its hour.
func (s *Store) Stats(ctx context.Context, q StatsQuery) (Stats, error) {
	g, ok := groupBys[q.GroupBy]
	if !ok {
		return Stats{}, fmt.Errorf("analytics: unknown group %q", q.GroupBy)
	}
	if q.Interval != "hour" && q.Interval != "day" && q.Interval != "month" {
		return Stats{}, fmt.Errorf("analytics: unknown interval %q", q.Interval)
	}
	src, args := rollupSource(g.dim, q.TenantID, q.Env, q.From, q.To, q.Interval)
	// One pass over the rollup rows with two grouping sets: one row per
	// bucket (the series; the totals and the latency histogram are their
	// sums) and one per group (the breakdown), not one per (bucket, group):
	// an hourly month by key is 744 + 20 rows, not 744 × 20.
	bucket := `date_trunc('` + q.Interval + `', r.bucket, 'UTC')`
	if q.Interval == "hour" {
		bucket = `r.bucket` // hourly rows are hours already: no sort on an expression
	}
	var out Stats
	// Sorting is off for the statement (its own transaction): the planner
	// would read an hourly series' rollup rows with a bitmap scan and sort
	// them by bucket (12 978 rows of 216 bytes for 30 days by key: half of
	// the statement's time) rather than read them in bucket order from the
	// primary key or hash both grouping sets; the final ORDER BY, a few
	// hundred rows, still sorts (docs/benchmarks.md, "Stats: no sort").
	err := pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, `SELECT set_config('enable_sort', 'off', true)`); err != nil {
			return err
		}
		rows, err := tx.Query(ctx, `SELECT `+bucket+`, `+g.col+`, GROUPING(`+bucket+`)`+statsSumCols+`
			FROM `+src+` GROUP BY GROUPING SETS ((`+bucket+`), (`+g.col+`)) ORDER BY 3, 1`, args...)
		if err != nil {
			return err
		}
		out, err = readStats(rows)
		return err
	})
	return out, err
}

// readStats folds the rows of the stats statement (one per bucket, then
// one per group) into Stats.
func readStats(rows pgx.Rows) (Stats, error) {
	defer rows.Close()
	var t Totals
	var latSum int64
	hist := make([]int64, histBuckets)
	series := []Point{}
	breakdown := []Group{}
	var b *time.Time
	var key *string
	var byGroup int32
	m := make([]int64, len(measureCols))
	dst := []any{&b, &key, &byGroup}
	for i := range m {
		dst = append(dst, &m[i])
	}
	for rows.Next() {
		if err := rows.Scan(dst...); err != nil {
			return Stats{}, err
		}
		req, cost := m[0], money.USD(m[6])
		if byGroup == 0 { // a bucket of the series
			t.Requests += req
			t.Errors += m[1]
			t.UnknownUsage += m[2]
			t.PromptTokens += m[3]
			t.CompletionTokens += m[4]
			t.TotalTokens += m[5]
			t.CostUSD += cost
			latSum += m[7]
			for i := range hist {
				hist[i] += m[8+i]
			}
			pt := Point{Bucket: b.UTC(), Requests: req, Errors: m[1], TotalTokens: m[5], CostUSD: cost}
			if req > 0 { // the bucket's own latency (the console's p95 chart)
				pt.AvgLatencyMS = float64(m[7]) / 1000 / float64(req)
				pt.P95LatencyMS = Percentile(m[8:8+histBuckets], 0.95)
			}
			series = append(series, pt)
			continue
		}
		k := ""
		if key != nil {
			k = *key
		}
		breakdown = append(breakdown, Group{Key: k, Requests: req, TotalTokens: m[5], CostUSD: cost})
	}
	if err := rows.Err(); err != nil {
		return Stats{}, err
	}
	if t.Requests > 0 {
		t.AvgLatencyMS = float64(latSum) / 1000 / float64(t.Requests)
		t.P95LatencyMS = Percentile(hist, 0.95)
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

// rollupSource returns a FROM source (aliased r) of dimension dim's rollup
// rows covering [from, to) at hour precision: whole UTC days from the daily
// table and the partial first and last days from the hourly table, so long
// ranges read ~24× fewer rows. Hourly series read the hourly table alone.
// An empty env means all of the tenant's, an empty tenantID every tenant
// (the platform's totals).
func rollupSource(dim, tenantID, env string, from, to time.Time, interval string) (string, []any) {
	cols := "bucket, " + strings.Join(dimensionByName(dim).cols, ", ") + ", " + strings.Join(measureCols, ", ")
	hourly, daily := "usage_rollups_"+dim+"_hourly", "usage_rollups_"+dim+"_daily"
	var who string
	switch {
	case tenantID == "":
		who = "$1 = '' AND $2 = ''"
	case env == "":
		who = "tenant_id = $1::uuid AND $2 = ''"
	default:
		who = "tenant_id = $1::uuid AND env = $2"
	}
	fromHour := from.UTC().Truncate(time.Hour)
	if interval == "hour" {
		return `(SELECT ` + cols + ` FROM ` + hourly + ` WHERE ` + who + ` AND bucket >= $3 AND bucket < $4) r`,
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
	// The hours before the first whole day end there, or at to when the
	// range begins and ends inside one day (then there is no whole day and
	// the hours after the last one are none).
	headEnd := firstDay
	if to.Before(headEnd) {
		headEnd = to
	}
	return `(SELECT ` + cols + ` FROM ` + daily + ` WHERE ` + who + ` AND bucket >= $3 AND bucket < $4
		UNION ALL
		SELECT ` + cols + ` FROM ` + hourly + ` WHERE ` + who + `
			AND ((bucket >= $5 AND bucket < $8) OR (bucket >= $6 AND bucket < $7))) r`,
		[]any{tenantID, env, firstDay, lastDay, fromHour, maxTime(lastDay, fromHour), to, headEnd}
}

func dimensionByName(name string) dimension {
	for _, d := range dimensions {
		if d.name == name {
			return d
		}
	}
	panic("analytics: unknown dimension " + name)
}

func maxTime(a, b time.Time) time.Time {
	if a.After(b) {
		return a
	}
	return b
}
