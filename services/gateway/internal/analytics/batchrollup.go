package analytics

import (
	"math"
	"time"

	"trueportai/services/gateway/internal/usage"
)

// The ingester's batches are folded into the hourly rollups here, in Go,
// when every event of the batch is new (foldedRollupsSQL): the groups, a few
// hundred for thousands of events, are copied into rollup_staging, and
// Postgres adds them to the rollup tables without aggregating a row. This
// is rowMeasures computed per event, and must equal it to the unit:
// TestRollupUpsertAccumulates compares these increments with the oracle
// and with a rebuild from the logs (rowMeasures in SQL). A batch whose
// values Postgres would refuse or compute differently (a latency that is
// not finite or whose microseconds do not fit a bigint, a sum past a
// bigint) is not folded here: it takes the SQL path (ingestNewSQL), which
// refuses it as before.

// rollupGroup is one hourly group of one dimension (its dim's columns set,
// the others zero).
type rollupGroup struct {
	dim      int16 // index in dimensions
	tenant   string
	env      string
	hour     int64 // Unix seconds of the UTC hour
	provider string
	model    string
	keyID    string
	status   int
}

// measures are measureCols' values.
type measures [8 + histBuckets]int64

// foldBatch folds evs into hourly groups of every dimension. ok is false
// when a value would make the SQL aggregation fail or differ (see above).
func foldBatch(evs []*usage.Event) (groups map[rollupGroup]*measures, ok bool) {
	groups = make(map[rollupGroup]*measures, 64)
	var m eventMeasures
	for _, e := range evs {
		if !m.set(e) {
			return nil, false
		}
		hour := e.CreatedAt.Truncate(time.Hour).Unix()
		key := e.KeyID
		if key == "" {
			key = zeroUUID
		}
		// One group per dimension, in the order of dimensions (dim is the
		// index fromStaging selects by).
		for _, g := range [...]rollupGroup{
			{dim: 0, provider: e.Provider, model: e.Model},
			{dim: 1, keyID: key},
			{dim: 2, status: e.StatusCode},
		} {
			g.tenant, g.env, g.hour = e.TenantID, e.Env, hour
			acc := groups[g]
			if acc == nil {
				acc = new(measures)
				groups[g] = acc
			}
			if !m.addTo(acc) {
				return nil, false
			}
		}
	}
	return groups, true
}

// eventMeasures is one event's contribution to measureCols: the values to
// add, and the histogram bucket to count.
type eventMeasures struct {
	add    [8]int64
	bucket int
}

// set computes e's contribution as rowMeasures does in SQL: errors are a
// status ≥ 400 or the error outcome, unknown usage a missing total, a
// missing token count or cost adds nothing, the latency adds its
// microseconds rounded half to even (Postgres's round of a float8).
func (m *eventMeasures) set(e *usage.Event) bool {
	us := e.LatencyMS * 1000
	// Postgres casts the rounded float8 to bigint only within its range;
	// NaN and infinities fail the cast.
	if math.IsNaN(us) || math.IsInf(us, 0) || math.Abs(us) >= 1<<63 {
		return false
	}
	m.add = [8]int64{1, 0, 0, 0, 0, 0, 0, int64(math.RoundToEven(us))}
	if e.StatusCode >= 400 || e.Outcome == usage.OutcomeError {
		m.add[1] = 1
	}
	if e.TotalTokens == nil {
		m.add[2] = 1
	} else {
		m.add[5] = *e.TotalTokens
	}
	if e.PromptTokens != nil {
		m.add[3] = *e.PromptTokens
	}
	if e.CompletionTokens != nil {
		m.add[4] = *e.CompletionTokens
	}
	if e.CostUSD != nil {
		m.add[6] = int64(*e.CostUSD)
	}
	m.bucket = latencyBucket(e.LatencyMS)
	return true
}

// addTo adds the contribution to acc; false on a bigint overflow (where
// Postgres's sum would fail the insert).
func (m *eventMeasures) addTo(acc *measures) bool {
	for i, v := range m.add {
		s := acc[i] + v
		if (v > 0 && s < acc[i]) || (v < 0 && s > acc[i]) {
			return false
		}
		acc[i] = s
	}
	acc[8+m.bucket]++
	return true
}

// rollupStagingCols are rollup_staging's columns, in the order of
// rollupStagingRows' values.
var rollupStagingCols = append([]string{"dim", "tenant_id", "env", "bucket", "provider", "model", "key_id", "status_code"}, measureCols...)

// rollupStagingRows turns the groups into rows for COPY.
func rollupStagingRows(groups map[rollupGroup]*measures) [][]any {
	rows := make([][]any, 0, len(groups))
	for g, m := range groups {
		row := make([]any, 0, len(rollupStagingCols))
		row = append(row, g.dim, g.tenant, g.env, time.Unix(g.hour, 0).UTC(), g.provider, g.model, g.keyID, int32(g.status))
		for _, v := range m {
			row = append(row, v)
		}
		rows = append(rows, row)
	}
	return rows
}
