package analytics

import (
	"context"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
)

// PartitionedTables are the tables partitioned by UTC month of created_at
// (migration 00005): one partition per month, <table>_yYYYYmMM, plus
// <table>_default for rows outside all of them.
var PartitionedTables = []string{"usage_logs", "violations"}

// partitionLockTimeout bounds how long partition DDL waits for a lock (and
// so how long queries queued behind it wait); a timed-out attempt is
// retried at the next retention cycle.
const partitionLockTimeout = "2s"

// beginner is a pool or a connection.
type beginner interface {
	Begin(ctx context.Context) (pgx.Tx, error)
}

// querier runs queries on a pool, a connection or a transaction.
type querier interface {
	Query(ctx context.Context, sql string, args ...any) (pgx.Rows, error)
}

// monthStart is the start of t's UTC month plus add months.
func monthStart(t time.Time, add int) time.Time {
	t = t.UTC()
	return time.Date(t.Year(), t.Month()+time.Month(add), 1, 0, 0, 0, 0, time.UTC)
}

// EnsurePartitions creates the partitions of the month before now's, now's
// and the next two (UTC) of every partitioned table when they are missing,
// moving rows of those months out of the default partition
// (gateway_ensure_month_partition, migration 00005). It returns the
// partitions it created. Each one is its own short transaction, its lock
// waits bounded by partitionLockTimeout. It runs at every retention cycle:
// at gateway start (the first cycle) and on the retention ticker.
func EnsurePartitions(ctx context.Context, db beginner, now time.Time) ([]string, error) {
	var created []string
	for _, table := range PartitionedTables {
		for k := -1; k <= 2; k++ {
			var name *string
			err := pgx.BeginFunc(ctx, db, func(tx pgx.Tx) error {
				if _, err := tx.Exec(ctx, `SELECT set_config('lock_timeout', $1, true)`, partitionLockTimeout); err != nil {
					return err
				}
				return tx.QueryRow(ctx, `SELECT gateway_ensure_month_partition($1::regclass, $2)`, table, monthStart(now, k)).Scan(&name)
			})
			if err != nil {
				return created, fmt.Errorf("partition of %s for %s: %w", table, monthStart(now, k).Format("2006-01"), err)
			}
			if name != nil {
				created = append(created, *name)
			}
		}
	}
	return created, nil
}

// partition is one partition of a partitioned table.
type partition struct {
	name   string    // quoted as needed (regclass text)
	def    bool      // the DEFAULT partition (lo, hi zero)
	lo, hi time.Time // its range [lo, hi)
}

// listPartitions returns table's partitions, the default first, then by range.
func listPartitions(ctx context.Context, q querier, table string) ([]partition, error) {
	rows, err := q.Query(ctx, `SELECT c.oid::regclass::text, b[1]::timestamptz, b[2]::timestamptz
		FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid
		LEFT JOIN LATERAL regexp_match(pg_get_expr(c.relpartbound, c.oid), 'FROM \(''([^'']*)''\) TO \(''([^'']*)''\)') b ON true
		WHERE i.inhparent = $1::regclass
		ORDER BY 2 NULLS FIRST`, table)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []partition
	for rows.Next() {
		var p partition
		var lo, hi *time.Time
		if err := rows.Scan(&p.name, &lo, &hi); err != nil {
			return nil, err
		}
		if lo == nil || hi == nil {
			p.def = true
		} else {
			p.lo, p.hi = lo.UTC(), hi.UTC()
		}
		out = append(out, p)
	}
	return out, rows.Err()
}

// partitionTenants lists the tenants with rows in one partition: a loose
// index scan of its (tenant_id, env, created_at) index, one descent per
// tenant, however many rows each has.
func partitionTenants(ctx context.Context, q querier, name string) ([]string, error) {
	rows, err := q.Query(ctx, `WITH RECURSIVE t(id) AS (
			(SELECT tenant_id FROM `+name+` ORDER BY tenant_id LIMIT 1)
			UNION ALL
			SELECT (SELECT tenant_id FROM `+name+` WHERE tenant_id > t.id ORDER BY tenant_id LIMIT 1) FROM t WHERE t.id IS NOT NULL
		) SELECT id::text FROM t WHERE id IS NOT NULL`)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []string
	for rows.Next() {
		var id string
		if err := rows.Scan(&id); err != nil {
			return nil, err
		}
		out = append(out, id)
	}
	return out, rows.Err()
}
