package analytics

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"testing"
	"time"

	"trueportai/services/gateway/internal/usage"
)

func TestRetentionDeletesOnlyExpiredRowsOfKnownTenants(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	pool := migratedPool(t, "retention")
	known, unknown := "11111111-1111-1111-1111-111111111111", "22222222-2222-2222-2222-222222222222"
	now := time.Now().UTC()
	var evs []usage.Event
	for i, age := range []time.Duration{time.Hour, 10 * 24 * time.Hour} {
		for j, tenant := range []string{known, unknown} {
			evs = append(evs, usage.Event{RequestID: fmt.Sprintf("r%d%d", i, j), CreatedAt: now.Add(-age), TenantID: tenant, Env: "production",
				Provider: "openai", Path: "/x", StatusCode: 200, Outcome: usage.OutcomeOK,
				Violations: []usage.Violation{{ID: fmt.Sprintf("0000000%d-0000-0000-0000-00000000000%d", i, j), PolicyName: "p", Type: "pii", Action: "flag", Severity: "medium", Direction: "request"}}})
		}
	}
	if _, err := New(pool).Insert(ctx, evs); err != nil {
		t.Fatal(err)
	}
	r := NewRetention(pool, func(id string) (int64, bool) { return 7, id == known }, log)
	n, err := r.Cycle(ctx)
	if err != nil || n != 2 {
		t.Fatalf("deleted %d rows (%v), want 2 (one log, one violation)", n, err)
	}
	var logs, vios int
	_ = pool.QueryRow(ctx, `SELECT count(*) FROM usage_logs`).Scan(&logs)
	_ = pool.QueryRow(ctx, `SELECT count(*) FROM violations`).Scan(&vios)
	if logs != 3 || vios != 3 {
		t.Fatalf("left %d logs and %d violations, want 3 and 3", logs, vios)
	}
}
