package analytics

import (
	"fmt"
	"strconv"
	"strings"
)

// LatencyBounds are the upper bounds (ms) of the rollup latency histogram
// (columns h0…h12; h13 counts the rest).
var LatencyBounds = []float64{5, 10, 25, 50, 100, 250, 500, 1000, 2500, 5000, 10000, 30000, 60000}

// histBuckets is the number of histogram columns.
const histBuckets = 14

// latencyBucket returns the histogram index of ms: the first bound ms does
// not exceed (the SQL twin is latencyBucketSQL).
func latencyBucket(ms float64) int {
	for i, b := range LatencyBounds {
		if ms <= b {
			return i
		}
	}
	return len(LatencyBounds)
}

// latencyBucketSQL is latencyBucket over a latency_ms column: width_bucket
// of the negated value over the negated bounds counts the bounds ≥ ms.
func latencyBucketSQL(col string) string {
	neg := make([]string, len(LatencyBounds))
	for i, b := range LatencyBounds {
		neg[len(LatencyBounds)-1-i] = "-" + strconv.FormatFloat(b, 'f', -1, 64)
	}
	return fmt.Sprintf("(%d - width_bucket(-%s, '{%s}'::float8[]))", len(LatencyBounds), col, strings.Join(neg, ","))
}

// dimension is one group-by dimension of the rollups: its tables are
// usage_rollups_<name>_hourly and _daily, keyed by (tenant_id, env, bucket,
// cols…).
type dimension struct {
	name   string
	cols   []string // key columns after bucket
	expr   []string // their values from a usage_logs row
	staged []string // their values from a rollup_staging row (foldBatch)
}

// zeroUUID stands for "no key" in the key rollups (a key column is part of
// their primary key).
const zeroUUID = "00000000-0000-0000-0000-000000000000"

// foldBatch builds its groups in this order (rollupGroup.dim is the index).
var dimensions = []dimension{
	{"model", []string{"provider", "model"}, []string{"provider", "model"}, []string{"provider", "model"}},
	{"key", []string{"key_id"}, []string{"COALESCE(key_id, '" + zeroUUID + "'::uuid)"}, []string{"key_id::uuid"}},
	{"status", []string{"status_code"}, []string{"status_code"}, []string{"status_code"}},
}

// RollupTables lists every rollup table (hourly and daily of each dimension).
func RollupTables() []string {
	var out []string
	for _, d := range dimensions {
		out = append(out, "usage_rollups_"+d.name+"_hourly", "usage_rollups_"+d.name+"_daily")
	}
	return out
}

// measureCols are the summed columns of every rollup table, in order.
var measureCols = func() []string {
	out := []string{"requests", "errors", "unknown_usage", "prompt_tokens", "completion_tokens", "total_tokens", "cost_usd_e10", "latency_sum_us"}
	for i := range histBuckets {
		out = append(out, "h"+strconv.Itoa(i))
	}
	return out
}()

// rowMeasures aggregates usage_logs rows (a relation with its columns and
// lb, the latency bucket) into measureCols. Every measure is an integer,
// so sums are exact in any order: a rebuild equals the increments.
func rowMeasures() string {
	m := []string{
		"count(*)",
		"count(*) FILTER (WHERE status_code >= 400 OR outcome = 'error')",
		"count(*) FILTER (WHERE total_tokens IS NULL)",
		"COALESCE(sum(prompt_tokens), 0)",
		"COALESCE(sum(completion_tokens), 0)",
		"COALESCE(sum(total_tokens), 0)",
		"COALESCE(sum(COALESCE(cost_usd_e10, round(cost_usd * 1e10)::bigint)), 0)",
		"sum(round(latency_ms * 1000)::bigint)",
	}
	for i := range histBuckets {
		m = append(m, fmt.Sprintf("count(*) FILTER (WHERE lb = %d)", i))
	}
	return strings.Join(aliased(m, measureCols), ", ")
}

// sumMeasures re-aggregates rows that already hold measureCols.
func sumMeasures() []string {
	m := make([]string, len(measureCols))
	for i, c := range measureCols {
		m[i] = "sum(" + c + ")::bigint"
	}
	return m
}

// logColsForRollups are the usage_logs columns the rollups read.
const logColsForRollups = "tenant_id, env, created_at, provider, model, key_id, status_code, outcome, latency_ms, prompt_tokens, completion_tokens, total_tokens, cost_usd_e10, cost_usd"

// binOrigin is the origin of date_bin: on a UTC hour and day boundary, so
// date_bin('1 hour' | '1 day', t, binOrigin) is date_trunc('hour' | 'day',
// t, 'UTC') (also before the origin) in integer arithmetic, without the
// time zone lookups of date_trunc's zone argument (a twentieth of the
// ingest statement's instructions, three times per row).
const binOrigin = "timestamptz '2000-01-01 00:00:00+00'"

// rollupDerived are the columns the rollups derive from a usage_logs row
// (logColsForRollups): its latency bucket lb and its UTC hour.
var rollupDerived = latencyBucketSQL("latency_ms") + " AS lb, date_bin('1 hour', created_at, " + binOrigin + ") AS hour"

// fromLogs is the hour-grain aggregate of dimension d over relation src,
// usage_logs rows (logColsForRollups and rollupDerived), grouped by gb.
func fromLogs(src string) func(dim int, d dimension, gb string) string {
	return func(_ int, d dimension, gb string) string {
		return fmt.Sprintf("SELECT tenant_id, env, hour AS bucket, %s, %s FROM %s GROUP BY %s",
			strings.Join(aliased(d.expr, d.cols), ", "), rowMeasures(), src, gb)
	}
}

// fromStaging is the hour-grain aggregate of dimension d over the groups
// foldBatch computed (rollup_staging, dim = d's index in dimensions): they
// are grouped again after the casts, so that two spellings of one uuid make
// one row.
func fromStaging(dim int, d dimension, gb string) string {
	return fmt.Sprintf("SELECT tenant_id::uuid AS tenant_id, env, bucket, %s, %s FROM rollup_staging WHERE dim = %d GROUP BY %s",
		strings.Join(aliased(d.staged, d.cols), ", "), strings.Join(aliased(sumMeasures(), measureCols), ", "), dim, gb)
}

// rollupCTEs returns WITH items (each ending in a comma) that fold rows
// into every rollup table: for each dimension, the hour-grain aggregate
// (<dim>_h, hourly(its index, d, its GROUP BY): fromLogs or fromStaging; read by two
// inserts), its hourly upsert and the daily upsert of its regrouping by UTC
// day. mode is "add" (ON CONFLICT adds: ingestion) or "insert" (plain
// insert: a rebuild into emptied ranges). Rows are written in key order,
// the lock order every ingester shares.
func rollupCTEs(hourly func(dim int, d dimension, gb string) string, mode string) string {
	var b strings.Builder
	for dim, d := range dimensions {
		keyCols := "tenant_id, env, bucket, " + strings.Join(d.cols, ", ")
		n := 3 + len(d.cols)
		groupBy := make([]string, n)
		for i := range groupBy {
			groupBy[i] = strconv.Itoa(i + 1)
		}
		gb := strings.Join(groupBy, ", ")
		fmt.Fprintf(&b, "%s_h AS (%s),\n", d.name, hourly(dim, d, gb))
		for _, g := range []struct{ suffix, sel string }{
			{"hourly", fmt.Sprintf("SELECT * FROM %s_h ORDER BY %s", d.name, gb)},
			{"daily", fmt.Sprintf("SELECT tenant_id, env, date_bin('1 day', bucket, %s), %s, %s FROM %s_h GROUP BY %s ORDER BY %s",
				binOrigin, strings.Join(d.cols, ", "), strings.Join(sumMeasures(), ", "), d.name, gb, gb)},
		} {
			table := "usage_rollups_" + d.name + "_" + g.suffix
			fmt.Fprintf(&b, "%s_%s AS (INSERT INTO %s AS r (%s, %s) %s", d.name, g.suffix, table, keyCols, strings.Join(measureCols, ", "), g.sel)
			if mode == "add" {
				set := make([]string, len(measureCols))
				for i, c := range measureCols {
					set[i] = c + " = r." + c + " + EXCLUDED." + c
				}
				fmt.Fprintf(&b, " ON CONFLICT (%s) DO UPDATE SET %s", keyCols, strings.Join(set, ", "))
			}
			b.WriteString("),\n")
		}
	}
	return b.String()
}

func aliased(expr, cols []string) []string {
	out := make([]string, len(expr))
	for i := range expr {
		out[i] = expr[i] + " AS " + cols[i]
	}
	return out
}

// Percentile estimates the q-quantile (0..1) of a latency histogram by
// linear interpolation inside the bucket that holds it.
func Percentile(hist []int64, q float64) float64 {
	var n int64
	for _, c := range hist {
		n += c
	}
	if n == 0 {
		return 0
	}
	rank := q * float64(n)
	var cum float64
	for i, c := range hist {
		if c == 0 {
			continue
		}
		if cum+float64(c) >= rank {
			lo := 0.0
			if i > 0 {
				lo = LatencyBounds[i-1]
			}
			hi := lo * 2
			if i < len(LatencyBounds) {
				hi = LatencyBounds[i]
			}
			return lo + (hi-lo)*(rank-cum)/float64(c)
		}
		cum += float64(c)
	}
	return LatencyBounds[len(LatencyBounds)-1]
}
