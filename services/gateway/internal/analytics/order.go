package analytics

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
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

// orderLockTimeout bounds the rewrite's waits for row locks. It is below
// Postgres's deadlock_timeout (1 s): an ingester incrementing a late row of
// the period, whose lock the rewrite meets, wins, and the period is
// ordered at the next cycle.
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
// together (a first cycle finds a horizon of them). It forgets the records
// of periods past the horizon, and returns the periods ordered.
func orderRollups(ctx context.Context, c dbConn, now, until time.Time, report func(OrderReport)) (int, error) {
	horizon := monthStart(now, -orderHorizon)
	if _, err := c.Exec(ctx, `DELETE FROM rollup_orderings WHERE period < $1`, horizon); err != nil {
		return 0, err
	}
	n := 0
	for _, t := range orderTables() {
		done, err := orderedPeriods(ctx, c, t.name, horizon)
		if err != nil {
			return n, err
		}
		for due := duePeriods(t, now, done); len(due) > 0; due = due[min(orderChunk, len(due)):] {
			if !until.IsZero() && time.Now().After(until) {
				return n, nil
			}
			chunk := due[:min(orderChunk, len(due))]
			full, err := holdingRows(ctx, c, chunk)
			if err != nil {
				return n, err
			}
			for _, p := range full {
				if !until.IsZero() && time.Now().After(until) {
					return n, nil
				}
				start := time.Now()
				rows, err := orderPeriod(ctx, c, p)
				if err != nil {
					return n, fmt.Errorf("order %s from %s: %w", t.name, p.lo.Format(time.DateOnly), err)
				}
				n++
				if report != nil {
					report(OrderReport{t.name, p.lo, rows, time.Since(start)})
				}
			}
		}
	}
	return n, nil
}

// orderChunk is how many due periods of a table one query checks for rows.
const orderChunk = 31

// holdingRows returns the periods of chunk (one table's, newest first)
// that hold rows, and records the others as ordered, with no rows.
func holdingRows(ctx context.Context, c dbConn, chunk []period) ([]period, error) {
	t := chunk[0].table
	unit := "day"
	if t.monthly {
		unit = "month"
	}
	rows, err := c.Query(ctx, `SELECT DISTINCT date_trunc('`+unit+`', bucket, 'UTC') FROM `+t.name+` WHERE bucket >= $1 AND bucket < $2`,
		chunk[len(chunk)-1].lo, chunk[0].hi)
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

// orderPeriod rewrites p's rows in key order in one transaction: they are
// deleted and inserted again, sorted, so the inserts fill pages one after
// the other. Readers see the old rows until it commits. An ingester's late
// increment of one of them waits for the commit and then applies to the
// new row (ON CONFLICT finds it). The rows' old versions are dead: vacuum
// frees their pages for the hours to come.
func orderPeriod(ctx context.Context, c beginner, p period) (int64, error) {
	var rows int64
	err := pgx.BeginFunc(ctx, c, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, `SELECT set_config('lock_timeout', $1, true)`, orderLockTimeout); err != nil {
			return err
		}
		t := p.table
		tag, err := tx.Exec(ctx, `WITH moved AS (DELETE FROM `+t.name+` WHERE bucket >= $1 AND bucket < $2 RETURNING *)
			INSERT INTO `+t.name+` SELECT * FROM moved ORDER BY `+strings.Join(t.keys, ", "), p.lo, p.hi)
		if err != nil {
			return err
		}
		rows = tag.RowsAffected()
		_, err = tx.Exec(ctx, `INSERT INTO rollup_orderings (rollup, period, rows) VALUES ($1, $2, $3)
			ON CONFLICT (rollup, period) DO UPDATE SET rows = EXCLUDED.rows, ordered_at = now()`, t.name, p.lo, rows)
		return err
	})
	return rows, err
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
