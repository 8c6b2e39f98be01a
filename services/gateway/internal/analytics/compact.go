package analytics

import (
	"context"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
)

// compactGrace is how long after its month ended a partition is compacted:
// events reach the ingester late after an outage (the gateway's journal and
// spool replay them), and rows that arrive after the compaction split the
// packed pages again.
const compactGrace = 48 * time.Hour

// dbConn runs statements and queries on one connection.
type dbConn interface {
	querier
	beginner
	Exec(ctx context.Context, sql string, args ...any) (pgconn.CommandTag, error)
	QueryRow(ctx context.Context, sql string, args ...any) pgx.Row
}

// compactable reports whether p is a closed month partition, ended at least
// compactGrace before now, that has not been compacted yet.
func compactable(ctx context.Context, c dbConn, p partition, now time.Time) (bool, error) {
	if p.def || p.hi.Add(compactGrace).After(now) {
		return false, nil
	}
	var done bool
	err := c.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM partition_compactions WHERE partition = $1)`, p.name).Scan(&done)
	return !done, err
}

// compact rebuilds the indexes of partition p packed: every page full
// (fillfactor 100, since a closed month takes no more inserts but late
// ones), instead of the half-full pages its inserts left behind. The
// rebuild is REINDEX CONCURRENTLY: reads and late inserts go on while it
// runs. Invalid indexes left on p by an interrupted rebuild are dropped
// first. It records p in partition_compactions and returns the index bytes
// before and after.
func compact(ctx context.Context, c dbConn, p partition) (before, after int64, err error) {
	invalid, err := partitionIndexes(ctx, c, p.name, false)
	if err != nil {
		return 0, 0, err
	}
	for _, ix := range invalid {
		if _, err := c.Exec(ctx, `DROP INDEX CONCURRENTLY IF EXISTS `+ix); err != nil {
			return 0, 0, fmt.Errorf("drop leftover index %s: %w", ix, err)
		}
	}
	valid, err := partitionIndexes(ctx, c, p.name, true)
	if err != nil {
		return 0, 0, err
	}
	if before, err = indexBytes(ctx, c, p.name); err != nil {
		return 0, 0, err
	}
	// fillfactor takes SHARE UPDATE EXCLUSIVE: inserts go on; the wait for
	// it is bounded like the other partition DDL.
	err = pgx.BeginFunc(ctx, c, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, `SELECT set_config('lock_timeout', $1, true)`, partitionLockTimeout); err != nil {
			return err
		}
		for _, ix := range valid {
			if _, err := tx.Exec(ctx, `ALTER INDEX `+ix+` SET (fillfactor = 100)`); err != nil {
				return fmt.Errorf("fillfactor of %s: %w", ix, err)
			}
		}
		return nil
	})
	if err != nil {
		return before, 0, err
	}
	if _, err := c.Exec(ctx, `REINDEX TABLE CONCURRENTLY `+p.name); err != nil {
		return before, 0, fmt.Errorf("reindex %s: %w", p.name, err)
	}
	if after, err = indexBytes(ctx, c, p.name); err != nil {
		return before, 0, err
	}
	_, err = c.Exec(ctx, `INSERT INTO partition_compactions (partition, index_bytes_before, index_bytes_after) VALUES ($1, $2, $3)
		ON CONFLICT (partition) DO UPDATE SET compacted_at = now(), index_bytes_before = EXCLUDED.index_bytes_before,
			index_bytes_after = EXCLUDED.index_bytes_after`, p.name, before, after)
	return before, after, err
}

// partitionIndexes lists the valid (or the invalid) indexes of a partition.
func partitionIndexes(ctx context.Context, q querier, name string, valid bool) ([]string, error) {
	rows, err := q.Query(ctx, `SELECT indexrelid::regclass::text FROM pg_index WHERE indrelid = $1::regclass AND indisvalid = $2 ORDER BY 1`,
		name, valid)
	if err != nil {
		return nil, err
	}
	return pgx.CollectRows(rows, pgx.RowTo[string])
}

// indexBytes is the size of a partition's indexes.
func indexBytes(ctx context.Context, c dbConn, name string) (int64, error) {
	var n int64
	err := c.QueryRow(ctx, `SELECT pg_indexes_size($1::regclass)`, name).Scan(&n)
	return n, err
}
