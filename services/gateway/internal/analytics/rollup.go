package analytics

import (
	"trueportai/services/gateway/internal/usage"

	"sort"
	"time"
)

// LatencyBounds are the upper bounds (ms) of the rollup latency histogram;
// the last bucket is open-ended.
var LatencyBounds = []float64{5, 10, 25, 50, 100, 250, 500, 1000, 2500, 5000, 10000, 30000, 60000}

// latencyBucket returns the histogram index of ms.
func latencyBucket(ms float64) int {
	for i, b := range LatencyBounds {
		if ms <= b {
			return i
		}
	}
	return len(LatencyBounds)
}

// rollupKey identifies one hourly rollup row.
type rollupKey struct {
	tenant, env string
	bucket      time.Time
	provider    string
	model       string
	keyID       string
	status      int
}

type rollup struct {
	rollupKey
	requests, errors, unknown int64
	prompt, completion, total int64
	cost, latencySum          float64
	hist                      []int64
}

const zeroUUID = "00000000-0000-0000-0000-000000000000"

// aggregate folds events into rollup rows of the given span (an hour or a
// UTC day), sorted by key (a stable lock order for concurrent ingesters).
func aggregate(evs []*usage.Event, span time.Duration) []*rollup {
	m := map[rollupKey]*rollup{}
	for _, e := range evs {
		k := rollupKey{e.TenantID, e.Env, e.CreatedAt.UTC().Truncate(span), e.Provider, e.Model, e.KeyID, e.StatusCode}
		if k.keyID == "" {
			k.keyID = zeroUUID
		}
		r, ok := m[k]
		if !ok {
			r = &rollup{rollupKey: k, hist: make([]int64, len(LatencyBounds)+1)}
			m[k] = r
		}
		r.requests++
		if e.StatusCode >= 400 || e.Outcome == usage.OutcomeError {
			r.errors++
		}
		if e.TotalTokens == nil {
			r.unknown++
		} else {
			r.total += *e.TotalTokens
		}
		if e.PromptTokens != nil {
			r.prompt += *e.PromptTokens
		}
		if e.CompletionTokens != nil {
			r.completion += *e.CompletionTokens
		}
		if e.CostUSD != nil {
			r.cost += *e.CostUSD
		}
		r.latencySum += e.LatencyMS
		r.hist[latencyBucket(e.LatencyMS)]++
	}
	out := make([]*rollup, 0, len(m))
	for _, r := range m {
		out = append(out, r)
	}
	sort.Slice(out, func(i, j int) bool {
		a, b := out[i], out[j]
		switch {
		case a.tenant != b.tenant:
			return a.tenant < b.tenant
		case a.env != b.env:
			return a.env < b.env
		case !a.bucket.Equal(b.bucket):
			return a.bucket.Before(b.bucket)
		case a.provider != b.provider:
			return a.provider < b.provider
		case a.model != b.model:
			return a.model < b.model
		case a.keyID != b.keyID:
			return a.keyID < b.keyID
		}
		return a.status < b.status
	})
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
