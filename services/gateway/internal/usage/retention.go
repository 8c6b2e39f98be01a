package usage

import (
	"context"
	"fmt"
	"log/slog"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
)

// RetentionPolicy tells how long a tenant's logs are kept (days; ok=false:
// unknown tenant, whose rows are left alone rather than guessed at).
type RetentionPolicy func(tenantID string) (days int64, ok bool)

// Retention deletes usage logs and violations older than each tenant's
// retention_days. Rollups (aggregates, no content) are kept. One replica runs
// a cycle at a time (advisory lock); deletes go in small batches.
type Retention struct {
	pool   *pgxpool.Pool
	policy RetentionPolicy
	log    *slog.Logger
	now    func() time.Time
}

// NewRetention builds the job.
func NewRetention(pool *pgxpool.Pool, policy RetentionPolicy, log *slog.Logger) *Retention {
	return &Retention{pool: pool, policy: policy, log: log, now: time.Now}
}

const retentionLockID = 0x7472756570727401 // "trueprt\x01"

// Run runs a cycle every interval until ctx ends.
func (r *Retention) Run(ctx context.Context, interval time.Duration) {
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		if n, err := r.Cycle(ctx); err != nil {
			r.log.Warn("retention cycle failed", "err", err)
		} else if n > 0 {
			r.log.Info("retention deleted expired rows", "rows", n)
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// Cycle deletes expired rows of every known tenant; it returns rows deleted.
func (r *Retention) Cycle(ctx context.Context) (int64, error) {
	conn, err := r.pool.Acquire(ctx)
	if err != nil {
		return 0, err
	}
	defer conn.Release()
	var got bool
	if err := conn.QueryRow(ctx, `SELECT pg_try_advisory_lock($1)`, int64(retentionLockID)).Scan(&got); err != nil || !got {
		return 0, err
	}
	defer func() {
		_, _ = conn.Exec(context.WithoutCancel(ctx), `SELECT pg_advisory_unlock($1)`, int64(retentionLockID))
	}()

	rows, err := conn.Query(ctx, `SELECT DISTINCT tenant_id::text FROM usage_rollups_hourly`)
	if err != nil {
		return 0, err
	}
	var tenants []string
	for rows.Next() {
		var id string
		if err := rows.Scan(&id); err != nil {
			rows.Close()
			return 0, err
		}
		tenants = append(tenants, id)
	}
	rows.Close()
	var total int64
	for _, id := range tenants {
		days, ok := r.policy(id)
		if !ok || days <= 0 {
			continue
		}
		cutoff := r.now().Add(-time.Duration(days) * 24 * time.Hour)
		for _, table := range []string{"usage_logs", "violations"} {
			for {
				tag, err := conn.Exec(ctx, `DELETE FROM `+table+` WHERE ctid IN (SELECT ctid FROM `+table+`
					WHERE tenant_id = $1::uuid AND created_at < $2 LIMIT 5000)`, id, cutoff)
				if err != nil {
					return total, fmt.Errorf("retention %s: %w", table, err)
				}
				total += tag.RowsAffected()
				if tag.RowsAffected() < 5000 || ctx.Err() != nil {
					break
				}
			}
		}
	}
	return total, nil
}
