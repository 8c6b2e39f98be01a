package analytics

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
)

// rebuildSQL recomputes every rollup table from the usage_logs rows of one
// tenant (all its environments) in [$2, $3), with the very aggregation the
// ingester applies to the rows it inserts (rollupCTEs), into ranges the
// caller emptied. It answers the number of log rows read.
var rebuildSQL = `WITH f AS (SELECT ` + logColsForRollups + `, ` + rollupDerived + ` FROM usage_logs
	WHERE tenant_id = $1::uuid AND created_at >= $2 AND created_at < $3),
` + rollupCTEs(fromLogs("f"), "insert") + `n AS (SELECT count(*) AS n FROM f)
SELECT n FROM n`

// RebuildResult tells what RebuildRollups did.
type RebuildResult struct {
	From, To time.Time // the whole UTC days rebuilt
	Days     int
	Rows     int64 // usage_logs rows read
}

// RebuildRollups recomputes the hourly and daily rollups of one tenant (all
// its environments) from usage_logs, for the whole UTC days covering
// [from, to): an operator's repair after a restore, a manual fix of logs,
// or a doubt. Each day is one transaction: it locks the rollup tables
// against writes (EXCLUSIVE: reads go on; the ingesters' inserts wait,
// their events stay in JetStream, for as long as one day takes), deletes
// the tenant's rollup rows of the day and inserts them anew from the logs,
// so the result equals what the ingester adds up, at any moment, however
// many ingesters run. Logs already expired by retention are gone: their
// day's rollups come back without them. progress, when set, is called
// after each day.
func (s *Store) RebuildRollups(ctx context.Context, tenantID string, from, to time.Time, progress func(day time.Time, rows int64)) (RebuildResult, error) {
	if !from.Before(to) {
		return RebuildResult{}, errors.New("analytics: rebuild range is empty")
	}
	day := 24 * time.Hour
	res := RebuildResult{From: from.UTC().Truncate(day), To: to.UTC().Truncate(day)}
	if res.To.Before(to.UTC()) {
		res.To = res.To.Add(day)
	}
	tables := RollupTables()
	for d := res.From; d.Before(res.To); d = d.Add(day) {
		var n int64
		err := pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
			if _, err := tx.Exec(ctx, `LOCK TABLE `+strings.Join(tables, ", ")+` IN EXCLUSIVE MODE`); err != nil {
				return err
			}
			for _, t := range tables {
				if _, err := tx.Exec(ctx, `DELETE FROM `+t+` WHERE tenant_id = $1::uuid AND bucket >= $2 AND bucket < $3`, tenantID, d, d.Add(day)); err != nil {
					return err
				}
			}
			return tx.QueryRow(ctx, rebuildSQL, tenantID, d, d.Add(day)).Scan(&n)
		})
		if err != nil {
			return res, fmt.Errorf("rebuild %s: %w", d.Format(time.DateOnly), err)
		}
		res.Days++
		res.Rows += n
		if progress != nil {
			progress(d, n)
		}
	}
	return res, nil
}
