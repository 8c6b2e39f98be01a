package app

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5/pgxpool"

	"trueportai/services/gateway/internal/analytics"
	"trueportai/services/gateway/internal/config"
	"trueportai/services/internal/pgdb"
)

const rollupsUsage = "usage: gateway rollups rebuild --tenant UUID --from RFC3339 --to RFC3339 | gateway rollups order"

// rollupsCommand is "gateway rollups rebuild --tenant ID --from T --to T":
// it recomputes the tenant's hourly and daily rollups of the whole UTC days
// covering [from, to) from usage_logs (analytics.Store.RebuildRollups),
// printing one line a day. The database is the server's
// (GATEWAY_DATABASE_URL); the schema must be migrated.
//
// "gateway rollups order" orders, now, every closed rollup period the
// retention job has not ordered yet (analytics.Store.OrderRollups): after
// an upgrade, a backlog the job would spread over many cycles.
func rollupsCommand(ctx context.Context, args []string, getenv func(string) string, stdout io.Writer) error {
	if len(args) == 2 && args[1] == "order" {
		return orderCommand(ctx, getenv, stdout)
	}
	if len(args) < 2 || args[1] != "rebuild" {
		return errors.New(rollupsUsage)
	}
	fs := flag.NewFlagSet("rollups rebuild", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	tenant := fs.String("tenant", "", "tenant id")
	fromS := fs.String("from", "", "start (RFC 3339)")
	toS := fs.String("to", "", "end (RFC 3339)")
	if err := fs.Parse(args[2:]); err != nil || fs.NArg() > 0 {
		return errors.New(rollupsUsage)
	}
	if _, err := uuid.Parse(*tenant); err != nil {
		return fmt.Errorf("--tenant must be a UUID; %s", rollupsUsage)
	}
	from, err1 := time.Parse(time.RFC3339, *fromS)
	to, err2 := time.Parse(time.RFC3339, *toS)
	if err1 != nil || err2 != nil || !from.Before(to) {
		return fmt.Errorf("--from and --to must be RFC 3339 times, from before to; %s", rollupsUsage)
	}
	pool, err := commandPool(ctx, getenv)
	if err != nil {
		return err
	}
	defer pool.Close()
	start := time.Now()
	res, err := analytics.New(pool).RebuildRollups(ctx, *tenant, from, to, func(day time.Time, rows int64) {
		fmt.Fprintf(stdout, "rebuilt %s: %d log rows\n", day.Format(time.DateOnly), rows)
	})
	if err != nil {
		return err
	}
	_, err = fmt.Fprintf(stdout, "rebuilt the rollups of tenant %s for %d days [%s, %s) from %d log rows in %s\n", *tenant, res.Days,
		res.From.Format(time.RFC3339), res.To.Format(time.RFC3339), res.Rows, time.Since(start).Round(time.Millisecond))
	return err
}

// orderCommand is "gateway rollups order".
func orderCommand(ctx context.Context, getenv func(string) string, stdout io.Writer) error {
	pool, err := commandPool(ctx, getenv)
	if err != nil {
		return err
	}
	defer pool.Close()
	start := time.Now()
	var rows int64
	n, err := analytics.New(pool).OrderRollups(ctx, func(o analytics.OrderReport) {
		rows += o.Rows
		fmt.Fprintf(stdout, "ordered %s %s: %d rows in %s\n", o.Table, o.Period.Format(time.DateOnly), o.Rows, o.Took.Round(time.Millisecond))
	})
	if err != nil {
		return err
	}
	_, err = fmt.Fprintf(stdout, "ordered %d rollup periods, %d rows, in %s\n", n, rows, time.Since(start).Round(time.Millisecond))
	return err
}

// commandPool opens the server's database (GATEWAY_DATABASE_URL).
func commandPool(ctx context.Context, getenv func(string) string) (*pgxpool.Pool, error) {
	cfg, err := config.Load(getenv)
	if err != nil {
		return nil, fmt.Errorf("config: %w", err)
	}
	pool, err := pgdb.Open(ctx, cfg.DatabaseURL, slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		return nil, fmt.Errorf("database: %w", err)
	}
	return pool, nil
}
