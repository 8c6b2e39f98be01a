package analytics

import (
	"context"
	"time"
)

// CountSince counts logged requests per tenant since t (the monthly quota's
// seed). Refusals by the gateway's own limits are not counted: they never
// reached a provider.
func (s *Store) CountSince(ctx context.Context, t time.Time) (map[string]int64, error) {
	rows, err := s.pool.Query(ctx, `SELECT tenant_id::text, count(*) FROM usage_logs
		WHERE created_at >= $1 AND error NOT IN ('rate_limit_exceeded', 'quota_exceeded') GROUP BY tenant_id`, t)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	out := map[string]int64{}
	for rows.Next() {
		var id string
		var n int64
		if err := rows.Scan(&id, &n); err != nil {
			return nil, err
		}
		out[id] = n
	}
	return out, rows.Err()
}
