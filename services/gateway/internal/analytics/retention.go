package analytics

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
)

// RetentionPolicy tells how long a tenant's logs are kept (days; ok=false:
// unknown tenant, whose rows are left alone rather than guessed at).
type RetentionPolicy func(tenantID string) (days int64, ok bool)

// Retention enforces each tenant's retention_days on usage logs and
// violations; package ingest runs its Cycle every RETENTION_INTERVAL. Rollups (aggregates, no content) are kept. One replica runs a
// cycle at a time (advisory lock). A cycle:
//
//  1. creates the monthly partitions of the previous, current and next two
//     months when missing (EnsurePartitions);
//  2. drops a month partition (DETACH + DROP) when it is older than that
//     window and every tenant with rows in it has a known retention whose
//     cutoff is at least dropMargin past the partition's end: the drop then
//     removes exactly rows that row deletes would remove. One tenant of
//     unknown retention (or none: retention_days <= 0) keeps the partition;
//  3. deletes, partition by partition, the expired rows of every tenant of
//     known retention, in batches of 5000 rows;
//  4. compacts the oldest month partition that ended at least compactGrace
//     ago and was not compacted yet: its indexes, left about half full by
//     the inserts, are rebuilt packed (compact), one partition a cycle;
//  5. orders the rollup periods that closed at least orderGrace ago (a day
//     of an hourly table, a month of a daily one), newest first, for at
//     most orderBudget (orderRollups).
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

// dropMargin: a partition is dropped only when its newest possible row is
// this much older than the cutoff of every tenant in it (clock skew between
// replicas, a retention_days lowered and raised again); meanwhile row
// deletes apply.
const dropMargin = 24 * time.Hour

// deleteBatch bounds the rows one DELETE statement removes.
const deleteBatch = 5000

// Cycle maintains the partitions and deletes expired rows; it returns the
// rows deleted by row deletes (dropped partitions are logged, not counted).
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

	now := r.now()
	created, err := EnsurePartitions(ctx, conn, now)
	for _, p := range created {
		r.log.Info("retention: created partition", "partition", p)
	}
	if err != nil {
		// Not fatal: the default partition takes rows of a missing month.
		r.log.Warn("retention: partition maintenance failed, retried next cycle", "err", err)
	}

	// Each tenant's cutoff, asked once per cycle (ok=false: keep its rows).
	type cutoff struct {
		at time.Time
		ok bool
	}
	cutoffs := map[string]cutoff{}
	cutoffOf := func(id string) cutoff {
		c, seen := cutoffs[id]
		if !seen {
			if days, ok := r.policy(id); ok && days > 0 {
				c = cutoff{now.Add(-time.Duration(days) * 24 * time.Hour), true}
			}
			cutoffs[id] = c
		}
		return c
	}
	// droppable: p is past the window EnsurePartitions keeps and every
	// tenant in it is known to have expired all of p's rows.
	droppable := func(p partition, tenants []string) bool {
		if p.def || p.hi.After(monthStart(now, -1)) {
			return false
		}
		for _, id := range tenants {
			if c := cutoffOf(id); !c.ok || p.hi.Add(dropMargin).After(c.at) {
				return false
			}
		}
		return true
	}

	var total int64
	var closed []partition // month partitions to compact, oldest first per table
	compacting := true
	for _, table := range PartitionedTables {
		parts, err := listPartitions(ctx, conn, table)
		if err != nil {
			return total, fmt.Errorf("retention: partitions of %s: %w", table, err)
		}
		for _, p := range parts {
			tenants, err := partitionTenants(ctx, conn, p.name)
			if err != nil {
				return total, fmt.Errorf("retention: tenants of %s: %w", p.name, err)
			}
			if droppable(p, tenants) {
				dropped, err := r.drop(ctx, conn, table, p, droppable)
				if err != nil {
					r.log.Warn("retention: dropping partition failed, row deletes apply", "partition", p.name, "err", err)
				}
				if dropped {
					continue
				}
			}
			if compacting {
				// Compaction is upkeep: when its state cannot be read (a
				// database not migrated to 00017), retention goes on without it.
				if ok, err := compactable(ctx, conn, p, now); err != nil {
					r.log.Warn("retention: compaction state unreadable, no compaction this cycle", "partition", p.name, "err", err)
					compacting, closed = false, nil
				} else if ok {
					closed = append(closed, p)
				}
			}
			for _, id := range tenants {
				c := cutoffOf(id)
				if !c.ok || (!p.def && !p.lo.Before(c.at)) {
					continue // unknown retention, or nothing of p expired yet
				}
				for {
					tag, err := conn.Exec(ctx, `DELETE FROM `+p.name+` WHERE ctid IN (SELECT ctid FROM `+p.name+`
						WHERE tenant_id = $1::uuid AND created_at < $2 LIMIT `+fmt.Sprint(deleteBatch)+`)`, id, c.at)
					if err != nil {
						return total, fmt.Errorf("retention %s: %w", p.name, err)
					}
					total += tag.RowsAffected()
					if tag.RowsAffected() < deleteBatch || ctx.Err() != nil {
						break
					}
				}
			}
		}
	}
	// One compaction per cycle: a rebuild reads and writes the whole
	// partition, and a first cycle may find a year of them.
	if len(closed) > 0 {
		p := closed[0]
		start := time.Now()
		before, after, err := compact(ctx, conn, p)
		if err != nil {
			r.log.Warn("retention: compacting partition failed, retried next cycle", "partition", p.name, "err", err)
		} else {
			r.log.Info("retention: compacted partition", "partition", p.name, "index_bytes_before", before,
				"index_bytes_after", after, "took", time.Since(start).Round(time.Millisecond))
		}
	}
	// Ordering is upkeep too: a failure (a database not migrated to 00018,
	// a late increment holding a row) leaves the period to the next cycle.
	n, err := orderRollups(ctx, conn, now, time.Now().Add(orderBudget), func(o OrderReport) {
		r.log.Debug("retention: ordered rollup period", "table", o.Table, "period", o.Period, "rows", o.Rows, "took", o.Took)
	})
	if err != nil {
		r.log.Warn("retention: ordering rollup periods failed, retried next cycle", "ordered", n, "err", err)
	} else if n > 0 {
		r.log.Info("retention: ordered rollup periods", "periods", n)
	}
	return total, nil
}

// orderBudget bounds the time one cycle spends ordering rollup periods: an
// upgraded database's backlog is ordered over several cycles.
const orderBudget = 2 * time.Minute

// drop detaches and drops partition p of table when droppable still holds
// once p is detached (no insert can reach it then); otherwise it changes
// nothing. The detach takes ACCESS EXCLUSIVE on the table for a moment,
// its wait bounded by partitionLockTimeout.
func (r *Retention) drop(ctx context.Context, conn beginner, table string, p partition, droppable func(partition, []string) bool) (bool, error) {
	errKept := errors.New("kept")
	var tenants []string
	var estimate float64
	err := pgx.BeginFunc(ctx, conn, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, `SELECT set_config('lock_timeout', $1, true)`, partitionLockTimeout); err != nil {
			return err
		}
		if _, err := tx.Exec(ctx, `ALTER TABLE `+table+` DETACH PARTITION `+p.name); err != nil {
			return err
		}
		var err error
		if tenants, err = partitionTenants(ctx, tx, p.name); err != nil {
			return err
		}
		if !droppable(p, tenants) {
			return errKept // rolls the detach back
		}
		if err := tx.QueryRow(ctx, `SELECT reltuples FROM pg_class WHERE oid = $1::regclass`, p.name).Scan(&estimate); err != nil {
			return err
		}
		if _, err := tx.Exec(ctx, `DROP TABLE `+p.name); err != nil {
			return err
		}
		// Its compaction record goes with it (none to remove on a database
		// not migrated to 00017: the drop goes on).
		var tracked bool
		if err := tx.QueryRow(ctx, `SELECT to_regclass('partition_compactions') IS NOT NULL`).Scan(&tracked); err != nil || !tracked {
			return err
		}
		_, err = tx.Exec(ctx, `DELETE FROM partition_compactions WHERE partition = $1`, p.name)
		return err
	})
	if errors.Is(err, errKept) {
		return false, nil
	}
	if err != nil {
		return false, err
	}
	r.log.Info("retention: dropped partition", "table", table, "partition", p.name, "from", p.lo, "to", p.hi,
		"tenants", len(tenants), "rows_estimate", int64(max(estimate, 0)))
	return true, nil
}
