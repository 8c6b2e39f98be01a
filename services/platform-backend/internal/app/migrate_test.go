package app

import (
	"bytes"
	"context"
	"io"
	"log/slog"
	"strings"
	"testing"

	"trueportai/services/internal/dbtest"
	"trueportai/services/internal/pgdb"
)

// `platform-backend migrate` applies the migrations even with
// MIGRATE_ON_START=false (which only governs the server's start), so its
// "migrations applied" is true.
func TestMigrateCommandIgnoresMigrateOnStart(t *testing.T) {
	t.Parallel()
	dbURL := dbtest.NewURL(t, "pbtest")
	env := map[string]string{"APP_ENV": "dev", "PLATFORM_DATABASE_URL": dbURL, "MIGRATE_ON_START": "false", "LOG_LEVEL": "error"}
	var out bytes.Buffer
	if err := Run(context.Background(), []string{"migrate"}, func(k string) string { return env[k] }, &out); err != nil {
		t.Fatalf("migrate: %v\n%s", err, out.String())
	}
	if !strings.Contains(out.String(), "migrations applied") {
		t.Errorf("output = %q", out.String())
	}
	pool, err := pgdb.Open(context.Background(), dbURL, slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		t.Fatal(err)
	}
	defer pool.Close()
	var plans int
	if err := pool.QueryRow(context.Background(), `SELECT count(*) FROM plans`).Scan(&plans); err != nil || plans != 3 {
		t.Errorf("plans after migrate = %d, %v; want the 3 seeded by the migrations", plans, err)
	}

	// Other commands still follow MIGRATE_ON_START: on an empty database
	// grant-admin fails instead of migrating.
	other := dbtest.NewURL(t, "pbtest")
	env["PLATFORM_DATABASE_URL"] = other
	if err := Run(context.Background(), []string{"grant-admin", "a@x.example"}, func(k string) string { return env[k] }, io.Discard); err == nil {
		t.Error("grant-admin on an unmigrated database with MIGRATE_ON_START=false succeeded")
	}
}
