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

	"trueportai/services/gateway/internal/analytics"
	"trueportai/services/gateway/internal/config"
	"trueportai/services/internal/pgdb"
)

const rollupsUsage = "usage: gateway rollups rebuild --tenant UUID --from RFC3339 --to RFC3339"

// rollupsCommand is "gateway rollups rebuild --tenant ID --from T --to T":
// it recomputes the tenant's hourly and daily rollups of the whole UTC days
// covering [from, to) from usage_logs (analytics.Store.RebuildRollups),
// printing one line a day. The database is the server's
// (GATEWAY_DATABASE_URL); the schema must be migrated.
func rollupsCommand(ctx context.Context, args []string, getenv func(string) string, stdout io.Writer) error {
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
	cfg, err := config.Load(getenv)
	if err != nil {
		return fmt.Errorf("config: %w", err)
	}
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	pool, err := pgdb.Open(ctx, cfg.DatabaseURL, log)
	if err != nil {
		return fmt.Errorf("database: %w", err)
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
