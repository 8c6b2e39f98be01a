package pgdb_test

import (
	"context"
	"io"
	"log/slog"
	"testing"

	"trueportai/services/internal/dbtest"
	"trueportai/services/internal/pgdb"
)

func TestOpenCreatesDatabaseAndAppliesRuntimeParams(t *testing.T) {
	ctx := context.Background()
	pool, err := pgdb.Open(ctx, dbtest.NewURL(t, "pgdb"), slog.New(slog.NewTextHandler(io.Discard, nil)),
		pgdb.WithRuntimeParam("plan_cache_mode", "force_custom_plan"))
	if err != nil {
		t.Fatal(err)
	}
	defer pool.Close()
	var mode string
	if err := pool.QueryRow(ctx, "SHOW plan_cache_mode").Scan(&mode); err != nil || mode != "force_custom_plan" {
		t.Fatalf("plan_cache_mode = %q (%v)", mode, err)
	}
}
