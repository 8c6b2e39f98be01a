package app

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"trueportai/services/gateway/internal/analytics"
	"trueportai/services/gateway/internal/migrations"
	"trueportai/services/gateway/internal/usage"
	"trueportai/services/internal/dbtest"
	"trueportai/services/internal/money"
	"trueportai/services/internal/pgdb"
)

// TestRollupsRebuildCommand: "gateway rollups rebuild" puts back, row for
// row, the rollups the ingester built incrementally, for the tenant and
// days asked only; bad arguments get the usage text.
func TestRollupsRebuildCommand(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	pool, getenv := commandDB(t, "rebuildcmd")
	const tenant, other = "aaaaaaaa-0000-4000-8000-0000000000a1", "bbbbbbbb-0000-4000-8000-0000000000b2"
	base := time.Now().UTC().Truncate(24*time.Hour).AddDate(0, 0, -2)
	var evs []usage.Event
	for i := range 400 {
		tok, cost := int64(i), money.USD(i*1000+7)
		ten := tenant
		if i%4 == 0 {
			ten = other
		}
		evs = append(evs, usage.Event{RequestID: fmt.Sprintf("r%d", i), CreatedAt: base.Add(time.Duration(i) * 7 * time.Minute), TenantID: ten,
			Env: "production", Provider: "openai", Model: []string{"gpt-4o", "gpt-4o-mini"}[i%2], Path: "/chat/completions",
			StatusCode: []int{200, 200, 429, 500}[i%4], Outcome: usage.OutcomeOK, LatencyMS: float64(i%97) * 13.7, TotalTokens: &tok, CostUSD: &cost})
	}
	st := analytics.New(pool)
	if _, err := st.Insert(ctx, evs); err != nil {
		t.Fatal(err)
	}
	snapshot := func() string {
		var b strings.Builder
		for _, table := range analytics.RollupTables() {
			rows, err := pool.Query(ctx, `SELECT t::text FROM `+table+` t ORDER BY t::text`)
			if err != nil {
				t.Fatal(err)
			}
			for rows.Next() {
				var s string
				_ = rows.Scan(&s)
				b.WriteString(table + s + "\n")
			}
			rows.Close()
		}
		return b.String()
	}
	want := snapshot()
	for _, table := range analytics.RollupTables() {
		if _, err := pool.Exec(ctx, `UPDATE `+table+` SET requests = requests * 3, cost_usd_e10 = 0`); err != nil {
			t.Fatal(err)
		}
	}
	var out bytes.Buffer
	args := []string{"rollups", "rebuild", "--tenant", tenant, "--from", base.Format(time.RFC3339), "--to", base.AddDate(0, 0, 2).Format(time.RFC3339)}
	if err := Command(ctx, args, getenv, &out); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(out.String(), "for 2 days") || strings.Count(out.String(), "rebuilt 20") != 2 {
		t.Fatalf("output:\n%s", out.String())
	}
	// The other tenant was not asked for: its damaged rows stay damaged.
	args[3] = other
	if err := Command(ctx, args, getenv, &out); err != nil {
		t.Fatal(err)
	}
	if got := snapshot(); got != want {
		t.Fatalf("rebuilt rollups differ from the incremental ones:\n got %s\nwant %s", got, want)
	}
	for _, bad := range [][]string{{"rollups"}, {"rollups", "rebuild"}, {"rollups", "rebuild", "--tenant", "x", "--from", "2026-01-01T00:00:00Z", "--to", "2026-01-02T00:00:00Z"},
		{"rollups", "rebuild", "--tenant", tenant, "--from", "yesterday", "--to", "2026-01-02T00:00:00Z"}} {
		if err := Command(ctx, bad, getenv, &out); err == nil || !strings.Contains(err.Error(), "usage: gateway rollups rebuild") {
			t.Errorf("%v: %v", bad, err)
		}
	}
}

// TestRollupsOrderCommand: "gateway rollups order" orders the closed
// periods not ordered yet, says which, and finds none the second time.
func TestRollupsOrderCommand(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	pool, getenv := commandDB(t, "ordercmd")
	day := time.Now().UTC().Truncate(24*time.Hour).AddDate(0, 0, -5)
	var evs []usage.Event
	for i := range 50 {
		evs = append(evs, usage.Event{RequestID: fmt.Sprintf("o%d", i), CreatedAt: day.Add(time.Duration(i) * 17 * time.Minute),
			TenantID: "aaaaaaaa-0000-4000-8000-0000000000a1", Env: "production", Provider: "openai", Model: "gpt-4o",
			Path: "/chat/completions", StatusCode: 200, Outcome: usage.OutcomeOK})
	}
	if _, err := analytics.New(pool).Insert(ctx, evs); err != nil {
		t.Fatal(err)
	}
	var out bytes.Buffer
	if err := Command(ctx, []string{"rollups", "order"}, getenv, &out); err != nil {
		t.Fatal(err)
	}
	// The day's rows are in the three hourly tables: 50 events over 14 hours.
	want := "ordered usage_rollups_model_hourly " + day.Format(time.DateOnly) + ": 14 rows"
	if !strings.Contains(out.String(), want) || !strings.Contains(out.String(), "ordered usage_rollups_status_hourly "+day.Format(time.DateOnly)) {
		t.Fatalf("output lacks %q:\n%s", want, out.String())
	}
	out.Reset()
	if err := Command(ctx, []string{"rollups", "order"}, getenv, &out); err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(out.String(), "ordered 0 rollup periods, 0 rows") {
		t.Fatalf("second run:\n%s", out.String())
	}
	if err := Command(ctx, []string{"rollups", "order", "now"}, getenv, &out); err == nil || !strings.Contains(err.Error(), "gateway rollups order") {
		t.Errorf("extra argument: %v", err)
	}
}

// commandDB is a migrated database of its own and the environment a
// command run on it sees.
func commandDB(t *testing.T, prefix string) (*pgxpool.Pool, func(string) string) {
	t.Helper()
	ctx := context.Background()
	url := dbtest.NewURL(t, prefix)
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	pool, err := pgdb.Open(ctx, url, log)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(pool.Close)
	if err := pgdb.Migrate(ctx, pool, migrations.FS, log); err != nil {
		t.Fatal(err)
	}
	return pool, func(k string) string {
		switch k {
		case "GATEWAY_DATABASE_URL":
			return url
		case "APP_ENV":
			return "dev"
		}
		return ""
	}
}
