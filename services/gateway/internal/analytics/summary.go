package analytics

import (
	"context"
	"time"

	"trueportai/services/internal/money"
)

// Summary totals the usage of a time range.
type Summary struct {
	Requests    int64
	Errors      int64 // status >= 400
	TotalTokens int64
	CostUSD     money.USD
}

// Summary totals the usage of one tenant, all its environments (every
// tenant when tenantID is empty), in [from, to) from the status rollups
// (from rounded down to its hour): a month of a big tenant is a few
// hundred rows, where counting its logs read millions.
func (s *Store) Summary(ctx context.Context, tenantID string, from, to time.Time) (Summary, error) {
	src, args := rollupSource("status", tenantID, "", from, to, "day")
	var out Summary
	var cost int64
	err := s.pool.QueryRow(ctx, `SELECT COALESCE(sum(requests), 0)::bigint, COALESCE(sum(requests) FILTER (WHERE status_code >= 400), 0)::bigint,
		COALESCE(sum(total_tokens), 0)::bigint, COALESCE(sum(cost_usd_e10), 0)::bigint FROM `+src, args...).Scan(&out.Requests, &out.Errors, &out.TotalTokens, &cost)
	out.CostUSD = money.USD(cost)
	return out, err
}
