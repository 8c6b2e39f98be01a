package migrations

import (
	"context"
	"io"
	"io/fs"
	"log/slog"
	"strings"
	"testing"
	"testing/fstest"

	"trueportai/services/internal/dbtest"
	"trueportai/services/internal/pgdb"
)

// TestPartitioningKeepsRows: migration 00005 moves the rows of an existing
// usage_logs and violations into monthly partitions unchanged (a month
// partition for every month holding rows, nothing left in the defaults).
func TestPartitioningKeepsRows(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	pool, err := pgdb.Open(ctx, dbtest.NewURL(t, "migrate"), log)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(pool.Close)

	before := upTo(t, "00005")
	if len(before) != 4 {
		t.Fatalf("expected migrations 00001..00004, got %d files", len(before))
	}
	if err := pgdb.Migrate(ctx, pool, before, log); err != nil {
		t.Fatal(err)
	}
	// Rows in 2024, this month and 2031.
	if _, err := pool.Exec(ctx, `
		INSERT INTO usage_logs (request_id, created_at, tenant_id, env, key_id, provider, model, path, status_code, latency_ms, total_tokens, outcome, violation_ids)
		SELECT 'r' || g, CASE g % 3 WHEN 0 THEN timestamptz '2024-03-31 23:59:59.999999+00' - g * interval '1 minute'
			WHEN 1 THEN now() - g * interval '1 second' ELSE timestamptz '2031-01-01 00:00:00+00' + g * interval '1 hour' END,
			'11111111-1111-1111-1111-111111111111', 'production', CASE WHEN g % 2 = 0 THEN gen_random_uuid() END,
			'openai', 'gpt-4o', '/chat/completions', 200, g, CASE WHEN g % 5 <> 0 THEN g END, 'ok', ARRAY['v' || g]
		FROM generate_series(1, 300) g;
		INSERT INTO violations (id, request_id, created_at, tenant_id, env, policy_name, type, action, severity, matches, provider)
		SELECT gen_random_uuid(), request_id, created_at, tenant_id, env, 'p', 'pii', 'flag', 'low', '[{"kind":"email"}]', provider
		FROM usage_logs WHERE latency_ms < 100`); err != nil {
		t.Fatal(err)
	}
	digest := func(table string) string {
		var s string
		if err := pool.QueryRow(ctx, `SELECT count(*) || ':' || md5(string_agg(t::text, ',' ORDER BY t::text)) FROM `+table+` t`).Scan(&s); err != nil {
			t.Fatal(err)
		}
		return s
	}
	logs, vios := digest("usage_logs"), digest("violations")

	if err := pgdb.Migrate(ctx, pool, upTo(t, "00006"), log); err != nil {
		t.Fatal(err)
	}
	if got := digest("usage_logs"); got != logs {
		t.Errorf("usage_logs changed: %s, was %s", got, logs)
	}
	if got := digest("violations"); got != vios {
		t.Errorf("violations changed: %s, was %s", got, vios)
	}
	for _, table := range []string{"usage_logs", "violations"} {
		var parts, inDefault int
		var kind string
		if err := pool.QueryRow(ctx, `SELECT relkind::text, (SELECT count(*) FROM pg_inherits WHERE inhparent = $1::regclass) FROM pg_class WHERE oid = $1::regclass`,
			table).Scan(&kind, &parts); err != nil {
			t.Fatal(err)
		}
		if kind != "p" || parts < 5 { // 2024-03, 2031-01, and this month's window of 4 (+ default)
			t.Errorf("%s: relkind %s with %d partitions", table, kind, parts)
		}
		if err := pool.QueryRow(ctx, `SELECT count(*) FROM `+table+`_default`).Scan(&inDefault); err != nil || inDefault != 0 {
			t.Errorf("%s_default holds %d rows (%v)", table, inDefault, err)
		}
		for _, month := range []string{"y2024m03", "y2031m01"} {
			var n int
			if err := pool.QueryRow(ctx, `SELECT count(*) FROM `+table+`_`+month).Scan(&n); err != nil || n == 0 {
				t.Errorf("%s_%s: %d rows (%v)", table, month, n, err)
			}
		}
	}
	// The ingester's conflict target exists.
	tag, err := pool.Exec(ctx, `INSERT INTO usage_logs (request_id, created_at, tenant_id, env, provider, path, status_code, latency_ms, outcome)
		SELECT request_id, created_at, tenant_id, env, provider, path, status_code, latency_ms, outcome FROM usage_logs
		ON CONFLICT (request_id, created_at) DO NOTHING`)
	if err != nil || tag.RowsAffected() != 0 {
		t.Fatalf("re-inserting every row: %v rows, %v", tag.RowsAffected(), err)
	}
	var def string
	if err := pool.QueryRow(ctx, `SELECT pg_get_constraintdef(oid) FROM pg_constraint WHERE conrelid = 'usage_logs'::regclass AND contype = 'p'`).Scan(&def); err != nil ||
		!strings.Contains(def, "(id, created_at)") {
		t.Fatalf("usage_logs primary key: %q (%v)", def, err)
	}

	// Migration 00006: the wide rollups carry over into the per-dimension
	// tables, regrouped, the float cost and latency sums converted once;
	// usage_logs gains cost_usd_e10 and loses its primary key, rows intact.
	if _, err := pool.Exec(ctx, `INSERT INTO usage_rollups_hourly (tenant_id, env, bucket, provider, model, key_id, status_code, requests, errors,
		unknown_usage, prompt_tokens, completion_tokens, total_tokens, cost_usd, latency_sum_ms, latency_hist)
		SELECT '11111111-1111-1111-1111-111111111111', 'production', timestamptz '2026-11-28 10:00:00+00', 'openai', 'gpt-4o',
			('00000000-0000-0000-0000-00000000000' || k)::uuid, s, 2, CASE WHEN s >= 400 THEN 2 ELSE 0 END, 0, 10, 5, 15,
			1.1700000000000001e-05, 12.3456, ARRAY[1,1,0,0,0,0,0,0,0,0,0,0,0,0]::bigint[]
		FROM generate_series(1, 3) k, unnest(ARRAY[200, 500]) s;
		INSERT INTO usage_rollups_daily SELECT * FROM usage_rollups_hourly`); err != nil {
		t.Fatal(err)
	}
	if err := pgdb.Migrate(ctx, pool, FS, log); err != nil {
		t.Fatal(err)
	}
	if got := digest("(SELECT id, request_id, created_at, tenant_id, env, key_id, key_name, provider, model, path, status_code, stream, latency_ms, " +
		"ttfb_ms, prompt_tokens, completion_tokens, total_tokens, cached_tokens, cost_usd, outcome, error, violation_ids, request_body, response_body, " +
		"ingested_at FROM usage_logs)"); got != logs {
		t.Errorf("usage_logs changed by 00006: %s, was %s", got, logs)
	}
	var pk int
	if err := pool.QueryRow(ctx, `SELECT count(*) FROM pg_constraint WHERE conrelid = 'usage_logs'::regclass AND contype = 'p'`).Scan(&pk); err != nil || pk != 0 {
		t.Errorf("usage_logs still has a primary key (%d, %v)", pk, err)
	}
	for table, want := range map[string]string{
		"usage_rollups_model_hourly":  "1 12 702000 74074 6 6", // one model row: 6 × 2 requests, 6 × 0.0000117 USD, 6 × 12.3456 ms
		"usage_rollups_key_daily":     "3 12 702000 74073 6 6", // each row rounds its own sum
		"usage_rollups_status_hourly": "2 12 702000 74074 6 6",
	} {
		var got string
		if err := pool.QueryRow(ctx, `SELECT count(*) || ' ' || sum(requests) || ' ' || sum(cost_usd_e10) || ' ' || sum(latency_sum_us) || ' ' || sum(h0) || ' ' || sum(h1)
			FROM `+table).Scan(&got); err != nil || got != want {
			t.Errorf("%s: %q (%v), want %q", table, got, err, want)
		}
	}
}

// upTo is the migrations before the one named next.
func upTo(t *testing.T, next string) fstest.MapFS {
	t.Helper()
	out := fstest.MapFS{}
	entries, err := fs.ReadDir(FS, ".")
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range entries {
		if e.Name() < next {
			b, _ := fs.ReadFile(FS, e.Name())
			out[e.Name()] = &fstest.MapFile{Data: b}
		}
	}
	return out
}
