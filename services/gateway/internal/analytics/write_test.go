package analytics

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"trueportai/services/gateway/internal/usage"
	"trueportai/services/internal/money"
)

// TestInsertRedeliveryMixedWithNewEvents: a batch first runs without ON
// CONFLICT; a batch holding events stored already (a redelivery) next to
// new ones fails that way and is written again skipping them: the new
// events are stored and counted once, the stored ones change nothing, in
// the logs, the rollups and the violations.
func TestInsertRedeliveryMixedWithNewEvents(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	pool := migratedPool(t, "insert")
	s := New(pool)
	at := time.Now().UTC().Truncate(time.Hour).Add(-time.Hour)
	batch := func(from, n int) []usage.Event {
		var evs []usage.Event
		for i := from; i < from+n; i++ {
			ev := testEvent(fmt.Sprintf("mix-%d", i), at.Add(time.Duration(i)*time.Second), tenantA, 40)
			ev.Violations = []usage.Violation{{ID: fmt.Sprintf("00000000-0000-4000-8000-%012d", i), PolicyName: "pii", Type: "pii",
				Action: "flag", Severity: "low", Direction: "request"}}
			evs = append(evs, ev)
		}
		return evs
	}
	if n, err := s.Insert(ctx, batch(0, 10)); err != nil || n != 10 {
		t.Fatalf("first batch: %d new, %v", n, err)
	}
	if n, err := s.Insert(ctx, batch(5, 10)); err != nil || n != 5 { // 5..9 stored, 10..14 new
		t.Fatalf("mixed batch: %d new, %v; want 5", n, err)
	}
	if n, err := s.Insert(ctx, batch(0, 15)); err != nil || n != 0 {
		t.Fatalf("whole redelivery: %d new, %v; want 0", n, err)
	}
	for q, want := range map[string]int64{
		`SELECT count(*) FROM usage_logs`:                                  15,
		`SELECT count(*) FROM violations`:                                  15,
		`SELECT sum(requests) FROM usage_rollups_model_hourly`:             15,
		`SELECT sum(requests) FROM usage_rollups_key_daily`:                15,
		`SELECT sum(h3) FROM usage_rollups_status_hourly`:                  15, // 40 ms: the (25, 50] bucket
		`SELECT sum(latency_sum_us) FROM usage_rollups_status_daily`:       15 * 40000,
		`SELECT count(DISTINCT request_id) FROM usage_logs`:                15,
		`SELECT count(*) FROM usage_rollups_model_hourly WHERE errors > 0`: 0,
	} {
		if got := queryInt(t, pool, q); got != want {
			t.Errorf("%s = %d, want %d", q, got, want)
		}
	}
}

// TestInsertKeyIsPerTenant: the idempotency key is (tenant_id, env,
// created_at, request_id) (migration 00016). With the old (created_at,
// request_id) key, an event of tenant B carrying the request id and time of
// one of tenant A's was taken for a redelivery and dropped: B's usage went
// unlogged and unbilled. Now both are stored, and a redelivery of either
// stores nothing.
func TestInsertKeyIsPerTenant(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	pool := migratedPool(t, "insertkey")
	s := New(pool)
	at := time.Now().UTC().Truncate(time.Hour).Add(-time.Hour)
	a := testEvent("same-id", at, tenantA, 40)
	b := testEvent("same-id", at, tenantB, 40)
	if n, err := s.Insert(ctx, []usage.Event{a}); err != nil || n != 1 {
		t.Fatalf("tenant A: %d new, %v", n, err)
	}
	if n, err := s.Insert(ctx, []usage.Event{b}); err != nil || n != 1 {
		t.Fatalf("tenant B, same request id and time: %d new, %v; want 1", n, err)
	}
	if n, err := s.Insert(ctx, []usage.Event{b, a}); err != nil || n != 0 {
		t.Fatalf("redelivery of both: %d new, %v; want 0", n, err)
	}
	// In one batch too: the batch's own deduplication uses the same key.
	c, d := testEvent("other-id", at, tenantA, 40), testEvent("other-id", at, tenantB, 40)
	if n, err := s.Insert(ctx, []usage.Event{c, d, c}); err != nil || n != 2 {
		t.Fatalf("one batch, two tenants, same request id and time (and one of them twice): %d new, %v; want 2", n, err)
	}
	for q, want := range map[string]int64{
		`SELECT count(*) FROM usage_logs WHERE tenant_id = '` + tenantB + `'`:                      2,
		`SELECT count(*) FROM usage_logs`:                                                          4,
		`SELECT sum(requests) FROM usage_rollups_model_hourly WHERE tenant_id = '` + tenantB + `'`: 2,
	} {
		if got := queryInt(t, pool, q); got != want {
			t.Errorf("%s = %d, want %d", q, got, want)
		}
	}
}

// TestInsertIDForms: ids in the canonical form (either case) are COPYed
// straight into usage_logs; any other form Postgres accepts (braces, no
// hyphens) goes through the staging table and is stored alike; an id
// Postgres refuses is refused (ErrRefused) on either path.
func TestInsertIDForms(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	pool := migratedPool(t, "insertids")
	s := New(pool)
	at := time.Now().UTC().Truncate(time.Hour).Add(-time.Hour)
	upper := testEvent("upper", at, strings.ToUpper(tenantA), 40)
	upper.KeyID = "AAAAAAAA-BBBB-4CCC-8DDD-EEEEEEEEEEEE"
	braces := testEvent("braces", at, "{"+tenantA+"}", 40)
	bare := testEvent("bare", at, strings.ReplaceAll(tenantA, "-", ""), 40)
	for _, evs := range [][]usage.Event{{upper}, {braces, bare}} {
		if n, err := s.Insert(ctx, evs); err != nil || n != len(evs) {
			t.Fatalf("%s: %d new, %v", evs[0].RequestID, n, err)
		}
	}
	for _, tenant := range []string{"not-a-uuid", "aaaaaaaa-0000-4000-8000-00000000000g", "aaaaaaaa-0000-4000-8000+000000000001"} {
		if _, err := s.Insert(ctx, []usage.Event{testEvent("bad", at, tenant, 40)}); !errors.Is(err, ErrRefused) {
			t.Errorf("tenant %q: %v, want ErrRefused", tenant, err)
		}
	}
	// Text Postgres refuses (a NUL byte, bytes that are not UTF-8) is
	// refused on the binary COPY as through the staging table.
	for _, text := range []string{"a\x00b", "a\xffb"} {
		for _, tenant := range []string{tenantA, "{" + tenantA + "}"} {
			ev := testEvent("bad-text", at, tenant, 40)
			ev.Error = text
			if _, err := s.Insert(ctx, []usage.Event{ev}); !errors.Is(err, ErrRefused) {
				t.Errorf("error text %q, tenant %q: %v, want ErrRefused", text, tenant, err)
			}
		}
	}
	for q, want := range map[string]int64{
		`SELECT count(*) FROM usage_logs WHERE tenant_id = '` + tenantA + `'`:                      3,
		`SELECT sum(requests) FROM usage_rollups_model_hourly WHERE tenant_id = '` + tenantA + `'`: 3,
		`SELECT count(*) FROM usage_logs WHERE key_id = 'aaaaaaaa-bbbb-4ccc-8ddd-eeeeeeeeeeee'`:    1,
	} {
		if got := queryInt(t, pool, q); got != want {
			t.Errorf("%s = %d, want %d", q, got, want)
		}
	}
}

func TestParseUUID(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		in string
		ok bool
	}{
		{"aaaaaaaa-0000-4000-8000-000000000001", true},
		{"AAAAAAAA-BBBB-4CCC-8DDD-EEEEEEEEEEEE", true},
		{"{aaaaaaaa-0000-4000-8000-000000000001}", false}, // Postgres decides (staging)
		{"aaaaaaaa000040008000000000000001", false},
		{"aaaaaaaa-0000-4000-8000+000000000001", false},
		{"aaaaaaa-a0000-4000-8000-000000000001", false},
		{"aaaaaaaa-0000-4000-8000-00000000000g", false},
		{"", false},
	} {
		u, ok := parseUUID(tc.in)
		if ok != tc.ok {
			t.Errorf("%q: ok %v, want %v", tc.in, ok, tc.ok)
		}
		if ok && u.String() != strings.ToLower(tc.in) {
			t.Errorf("%q parsed as %s", tc.in, u.String())
		}
	}
}

// TestInsertPathsStoreTheSame: a row COPYed straight into usage_logs
// (logCopy's binary encoding) equals, column for column, the same event
// written through the staging table (pgx's encoding and Postgres's casts),
// with every optional field set and with none.
func TestInsertPathsStoreTheSame(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	pool := migratedPool(t, "insertpaths")
	s := New(pool)
	at := time.Date(2026, 12, 6, 10, 59, 59, 999_999_999, time.FixedZone("X", -7200))
	full := func(id string) usage.Event {
		e := testEvent(id, at, tenantA, 1234.5678)
		ttfb, p, c, tot, cached, cost := 12.25, int64(10), int64(-3), int64(1<<40), int64(0), money.USD(-123456789012)
		req, resp := `{"messages":["héllo \u2028"]}`, ""
		e.KeyID, e.KeyName, e.Model, e.Path, e.StatusCode, e.Stream = "AAAAAAAA-BBBB-4CCC-8DDD-EEEEEEEEEEEE", "ключ", "gpt-4o", "/v1/chat/completions", 529, true
		e.TTFBMS, e.PromptTokens, e.CompletionTokens, e.TotalTokens, e.CachedTokens, e.CostUSD = &ttfb, &p, &c, &tot, &cached, &cost
		e.Outcome, e.Error, e.RequestBody, e.ResponseBody = usage.OutcomeError, "upstream: 529", &req, &resp
		e.ViolationIDs = []string{"v1", "", "v3"}
		return e
	}
	bare := func(id string) usage.Event { return testEvent(id, at.Add(-time.Hour), tenantB, 0) }
	for _, pair := range [][2]usage.Event{{full("full-direct"), full("full-staged")}, {bare("bare-direct"), bare("bare-staged")}} {
		direct, staged := pair[0], pair[1]
		staged.TenantID = "{" + staged.TenantID + "}" // not the canonical form: the staging path
		if n, err := s.Insert(ctx, []usage.Event{direct}); err != nil || n != 1 {
			t.Fatalf("%s: %d, %v", direct.RequestID, n, err)
		}
		if n, err := s.Insert(ctx, []usage.Event{staged}); err != nil || n != 1 {
			t.Fatalf("%s: %d, %v", staged.RequestID, n, err)
		}
		row := func(id string) string {
			var j string
			if err := pool.QueryRow(ctx, `SELECT (to_jsonb(u) - 'id' - 'request_id' - 'ingested_at')::text FROM usage_logs u WHERE request_id = $1`, id).Scan(&j); err != nil {
				t.Fatal(err)
			}
			return j
		}
		if d, st := row(direct.RequestID), row(staged.RequestID); d != st {
			t.Errorf("COPYed straight:\n %s\nthrough staging:\n %s", d, st)
		}
	}
	var n int64
	if err := pool.QueryRow(ctx, `SELECT count(*) FROM usage_logs WHERE created_at = $1 AND key_id = 'aaaaaaaa-bbbb-4ccc-8ddd-eeeeeeeeeeee'
		AND violation_ids = '{v1,"",v3}' AND cost_usd_e10 = -123456789012 AND total_tokens = 1099511627776`, at.Truncate(time.Microsecond)).Scan(&n); err != nil || n != 2 {
		t.Fatalf("rows with every value as given: %d, %v; want 2", n, err)
	}
}
