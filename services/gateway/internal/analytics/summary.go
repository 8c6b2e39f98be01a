package analytics

import (
	"context"
	"time"
)

// Summary totals the usage of a time range.
type Summary struct {
	Requests    int64
	Errors      int64 // status >= 400
	TotalTokens int64
	CostUSD     float64
}

// Summary totals the logged usage of one tenant (every tenant when
// tenantID is empty) in [from, to).
func (s *Store) Summary(ctx context.Context, tenantID string, from, to time.Time) (Summary, error) {
	var out Summary
	err := s.pool.QueryRow(ctx, `SELECT count(*), count(*) FILTER (WHERE status_code >= 400), COALESCE(sum(total_tokens), 0), COALESCE(sum(cost_usd), 0)
		FROM usage_logs WHERE ($1 = '' OR tenant_id::text = $1) AND created_at >= $2 AND created_at < $3`,
		tenantID, from, to).Scan(&out.Requests, &out.Errors, &out.TotalTokens, &out.CostUSD)
	return out, err
}
