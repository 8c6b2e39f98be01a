package analytics

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
)

// A rollup row stays on the heap page its hour's first increment put it on,
// among the rows every other tenant started in that hour; so a tenant's
// long series reads about one page per row (docs/benchmarks.md: 5 784
// buffers for 5 768 rows, 563 ms from a cold cache). Once its period is
// closed a row takes no more increments but late ones, and its period is
// rewritten once in key order (tenant, env, bucket, dimension): a tenant's
// rows of a day (hourly tables) or of a month (daily tables) then share a
// few pages (docs/decisions.md, "Closed rollup periods are ordered").

// orderGrace is how long after its end a period is ordered: the events of
// an outage reach the ingester late (journal and spool replay), as for the
// partitions' compaction.
const orderGrace = compactGrace

// orderHorizon bounds how far back periods are ordered: the stats API
// answers ranges of up to 400 days, and the periods that closed since the
// gateway orders rollups are ordered within orderGrace; only an upgrade's
// older backlog is left as it is.
const orderHorizon = 14 // months

// orderLockTimeout bounds the rewrite's waits for row locks: an ingester
// incrementing a late row of the period, whose lock the rewrite meets,
// goes first, and the period is ordered at the next cycle. Both lock rows
// in key order (rollupCTEs, orderPeriodTx), so an ingest statement and a
// rewrite do not deadlock; should Postgres break one anyway (an ingester
// transaction of several statements), the rewrite is skipped like a lock
// timeout, or the ingester's batch is redelivered.
const orderLockTimeout = "500ms"

// orderTable is a rollup table and the period its rows are ordered by.
type orderTable struct {
	name    string
	monthly bool     // daily tables: a month; hourly tables: a day
	keys    []string // primary key, in order
}

// orderTables are every rollup table's.
func orderTables() []orderTable {
	var out []orderTable
	for _, d := range dimensions {
		keys := append([]string{"tenant_id", "env", "bucket"}, d.cols...)
		out = append(out, orderTable{"usage_rollups_" + d.name + "_hourly", false, keys},
			orderTable{"usage_rollups_" + d.name + "_daily", true, keys})
	}
	return out
}

// period is one table's rows of [lo, hi).
type period struct {
	table  orderTable
	lo, hi time.Time
}

// duePeriods lists the periods of t to order at now: ended at least
// orderGrace ago, begun within orderHorizon months, not in done (their
// starts), newest first.
func duePeriods(t orderTable, now time.Time, done map[time.Time]bool) []period {
	now = now.UTC()
	horizon := monthStart(now, -orderHorizon)
	var out []period
	step := func(lo time.Time) time.Time { return lo.AddDate(0, 0, -1) }
	next := func(lo time.Time) time.Time { return lo.AddDate(0, 0, 1) }
	lo := now.Truncate(24 * time.Hour)
	if t.monthly {
		step = func(lo time.Time) time.Time { return lo.AddDate(0, -1, 0) }
		next = func(lo time.Time) time.Time { return lo.AddDate(0, 1, 0) }
		lo = monthStart(now, 0)
	}
	for ; !lo.Before(horizon); lo = step(lo) {
		hi := next(lo)
		if hi.Add(orderGrace).After(now) || done[lo] {
			continue
		}
		out = append(out, period{t, lo, hi})
	}
	return out
}

// orderedPeriods reads the starts of t's periods already ordered since
// horizon.
func orderedPeriods(ctx context.Context, q querier, t string, horizon time.Time) (map[time.Time]bool, error) {
	rows, err := q.Query(ctx, `SELECT period FROM rollup_orderings WHERE rollup = $1 AND period >= $2`, t, horizon)
	if err != nil {
		return nil, err
	}
	starts, err := pgx.CollectRows(rows, pgx.RowTo[time.Time])
	done := make(map[time.Time]bool, len(starts))
	for _, s := range starts {
		done[s.UTC()] = true
	}
	return done, err
}

// OrderReport is one ordered period.
type OrderReport struct {
	Table  string
	Period time.Time
	Rows   int64
	Took   time.Duration
}

// orderRollups orders the due periods of every rollup table, newest first,
// until until (zero: all of them), each in its own transaction; report is
// called after each. The due periods are taken orderChunk at a time: one
// query finds which of them hold rows, and the empty ones are recorded
// together (a first cycle finds a horizon of them). A period whose rows
// are locked (a late increment, see orderLockTimeout) is left to the next
// call and the others go on; its error is returned with the count. It
// forgets the records of periods past the horizon.
func orderRollups(ctx context.Context, c dbConn, now, until time.Time, report func(OrderReport)) (int, error) {
	horizon := monthStart(now, -orderHorizon)
	if _, err := c.Exec(ctx, `DELETE FROM rollup_orderings WHERE period < $1`, horizon); err != nil {
		return 0, err
	}
	n := 0
	var skipped []error
	spent := func() bool { return !until.IsZero() && time.Now().After(until) }
	for _, t := range orderTables() {
		done, err := orderedPeriods(ctx, c, t.name, horizon)
		if err != nil {
			return n, err
		}
		for due := duePeriods(t, now, done); len(due) > 0; due = due[min(orderChunk, len(due)):] {
			if spent() {
				return n, errors.Join(skipped...)
			}
			full, err := holdingRows(ctx, c, due[:min(orderChunk, len(due))])
			if err != nil {
				return n, err
			}
			for _, p := range full {
				if spent() {
					return n, errors.Join(skipped...)
				}
				start := time.Now()
				rows, err := orderPeriod(ctx, c, p)
				if err != nil {
					err = fmt.Errorf("order %s from %s: %w", t.name, p.lo.Format(time.DateOnly), err)
					if !lockRefused(err) {
						return n, errors.Join(append(skipped, err)...)
					}
					skipped = append(skipped, err)
					continue
				}
				n++
				if report != nil {
					report(OrderReport{t.name, p.lo, rows, time.Since(start)})
				}
			}
		}
	}
	return n, errors.Join(skipped...)
}

// lockRefused reports whether err is a lock wait given up (lock_timeout)
// or a deadlock Postgres broke.
func lockRefused(err error) bool {
	var pe *pgconn.PgError
	return errors.As(err, &pe) && (pe.Code == "55P03" || pe.Code == "40P01")
}

// orderChunk is how many due periods of a table one query checks for rows.
const orderChunk = 31

// tenantsCTE is a WITH RECURSIVE item, te, listing the (tenant_id, env)
// pairs of table from its primary key, one index descent each (a loose
// index scan: Postgres 15 has no skip scan). Every rollup primary key
// leads with (tenant_id, env, bucket): a period's rows are then found by
// one range scan per pair, with no index on bucket to maintain at every
// increment.
func tenantsCTE(table string) string {
	return `te AS ((SELECT tenant_id, env FROM ` + table + ` ORDER BY tenant_id, env LIMIT 1)
		UNION ALL SELECT n.tenant_id, n.env FROM te, LATERAL (SELECT tenant_id, env FROM ` + table + ` x
			WHERE (x.tenant_id, x.env) > (te.tenant_id, te.env) ORDER BY tenant_id, env LIMIT 1) n)`
}

// holdingRows returns the periods of chunk (one table's) that hold rows,
// and records the others as ordered, with no rows. A late event that lands
// in a period recorded empty stays where it lands.
func holdingRows(ctx context.Context, c dbConn, chunk []period) ([]period, error) {
	t := chunk[0].table
	los, his := make([]time.Time, len(chunk)), make([]time.Time, len(chunk))
	for i, p := range chunk {
		los[i], his[i] = p.lo, p.hi
	}
	rows, err := c.Query(ctx, `WITH RECURSIVE `+tenantsCTE(t.name)+`
		SELECT p.lo FROM unnest($1::timestamptz[], $2::timestamptz[]) p(lo, hi)
		WHERE EXISTS (SELECT 1 FROM te, LATERAL (SELECT 1 FROM `+t.name+` r WHERE r.tenant_id = te.tenant_id AND r.env = te.env
			AND r.bucket >= p.lo AND r.bucket < p.hi LIMIT 1) h)`, los, his)
	if err != nil {
		return nil, err
	}
	starts, err := pgx.CollectRows(rows, pgx.RowTo[time.Time])
	if err != nil {
		return nil, err
	}
	held := make(map[time.Time]bool, len(starts))
	for _, s := range starts {
		held[s.UTC()] = true
	}
	var full []period
	var empty []time.Time
	for _, p := range chunk {
		if held[p.lo] {
			full = append(full, p)
		} else {
			empty = append(empty, p.lo)
		}
	}
	if len(empty) > 0 {
		_, err = c.Exec(ctx, `INSERT INTO rollup_orderings (rollup, period, rows) SELECT $1, unnest($2::timestamptz[]), 0
			ON CONFLICT (rollup, period) DO NOTHING`, t.name, empty)
	}
	return full, err
}

// orderPeriod rewrites p's rows in key order in one transaction
// (orderPeriodTx) and records it.
func orderPeriod(ctx context.Context, c beginner, p period) (int64, error) {
	var rows int64
	err := pgx.BeginFunc(ctx, c, func(tx pgx.Tx) error {
		var err error
		rows, err = orderPeriodTx(ctx, tx, p)
		return err
	})
	return rows, err
}

// orderPeriodTx locks p's rows in key order, deletes them and inserts them
// again, sorted, so the inserts fill pages one after the other, and
// records p. Readers see the old rows until the commit. An ingester's late
// increment of one of them waits for the commit, then its ON CONFLICT
// finds the new row. The old versions are dead: vacuum frees their pages
// for the hours to come.
func orderPeriodTx(ctx context.Context, tx pgx.Tx, p period) (int64, error) {
	if _, err := tx.Exec(ctx, `SELECT set_config('lock_timeout', $1, true)`, orderLockTimeout); err != nil {
		return 0, err
	}
	t := p.table
	keys := strings.Join(t.keys, ", ")
	cond := `r.tenant_id = te.tenant_id AND r.env = te.env AND r.bucket >= $1 AND r.bucket < $2`
	if _, err := tx.Exec(ctx, `WITH RECURSIVE `+tenantsCTE(t.name)+`
		SELECT 1 FROM te JOIN `+t.name+` r ON `+cond+` ORDER BY r.`+strings.Join(t.keys, ", r.")+` FOR UPDATE OF r`, p.lo, p.hi); err != nil {
		return 0, err
	}
	tag, err := tx.Exec(ctx, `WITH RECURSIVE `+tenantsCTE(t.name)+`,
		moved AS (DELETE FROM `+t.name+` r USING te WHERE `+cond+` RETURNING r.*)
		INSERT INTO `+t.name+` SELECT * FROM moved ORDER BY `+keys, p.lo, p.hi)
	if err != nil {
		return 0, err
	}
	_, err = tx.Exec(ctx, `INSERT INTO rollup_orderings (rollup, period, rows) VALUES ($1, $2, $3)
		ON CONFLICT (rollup, period) DO UPDATE SET rows = EXCLUDED.rows, ordered_at = now()`, t.name, p.lo, tag.RowsAffected())
	return tag.RowsAffected(), err
}

// OrderRollups orders every due period now (the operator's command, after
// an upgrade: "gateway rollups order"), waiting for a running retention
// cycle to end first (they share its advisory lock).
func (s *Store) OrderRollups(ctx context.Context, report func(OrderReport)) (int, error) {
	conn, err := s.pool.Acquire(ctx)
	if err != nil {
		return 0, err
	}
	defer conn.Release()
	if _, err := conn.Exec(ctx, `SELECT pg_advisory_lock($1)`, int64(retentionLockID)); err != nil {
		return 0, err
	}
	defer func() {
		_, _ = conn.Exec(context.WithoutCancel(ctx), `SELECT pg_advisory_unlock($1)`, int64(retentionLockID))
	}()
	return orderRollups(ctx, conn, time.Now(), time.Time{}, report)
}
