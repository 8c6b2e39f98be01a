package store

import (
	"context"
	"encoding/json"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"trueportai/services/platform-backend/internal/audit"
)

// dbtx is what both the pool and a transaction offer, so helpers run on either.
type dbtx interface {
	Exec(ctx context.Context, sql string, args ...any) (pgconn.CommandTag, error)
	Query(ctx context.Context, sql string, args ...any) (pgx.Rows, error)
	QueryRow(ctx context.Context, sql string, args ...any) pgx.Row
}

// AuditRow is a stored audit entry.
type AuditRow struct {
	ID string
	At time.Time
	audit.Entry
}

func nullIfEmpty(s string) any {
	if s == "" {
		return nil
	}
	return s
}

// insertAudit writes e on q (the pool or the transaction making the change).
func insertAudit(ctx context.Context, q dbtx, e audit.Entry) error {
	details := e.Details
	if details == nil {
		details = map[string]any{}
	}
	b, err := json.Marshal(details)
	if err != nil {
		return fmt.Errorf("audit details: %w", err)
	}
	_, err = q.Exec(ctx, `INSERT INTO audit_log (actor_id, actor_email, action, target_type, target_id, tenant_id, details)
		VALUES ($1, $2, $3, $4, $5, $6, $7)`,
		nullIfEmpty(e.Actor.UserID), e.Actor.Email, e.Action, e.TargetType, e.TargetID, nullIfEmpty(e.TenantID), string(b))
	if err != nil {
		return fmt.Errorf("insert audit row %s: %w", e.Action, err)
	}
	return nil
}

// AuditFilter narrows AuditLog; zero fields match everything.
type AuditFilter struct {
	TenantID string
	ActorID  string
	Action   string
	From, To time.Time
}

// AuditLog lists audit rows, newest first.
func (s *Store) AuditLog(ctx context.Context, f AuditFilter, limit, offset int) ([]AuditRow, int, error) {
	var where []string
	var args []any
	add := func(cond string, v any) {
		args = append(args, v)
		where = append(where, strings.ReplaceAll(cond, "?", "$"+strconv.Itoa(len(args))))
	}
	if f.TenantID != "" {
		if !validUUID(f.TenantID) {
			return nil, 0, nil
		}
		add("tenant_id = ?", f.TenantID)
	}
	if f.ActorID != "" {
		if !validUUID(f.ActorID) {
			return nil, 0, nil
		}
		add("actor_id = ?", f.ActorID)
	}
	if f.Action != "" {
		if !validText(f.Action) {
			return nil, 0, nil
		}
		add("action = ?", f.Action)
	}
	if !f.From.IsZero() {
		add("at >= ?", f.From)
	}
	if !f.To.IsZero() {
		add("at < ?", f.To)
	}
	cond := ""
	if len(where) > 0 {
		cond = " WHERE " + strings.Join(where, " AND ")
	}
	var total int
	if err := s.pool.QueryRow(ctx, `SELECT count(*) FROM audit_log`+cond, args...).Scan(&total); err != nil {
		return nil, 0, err
	}
	args = append(args, limit, offset)
	rows, err := s.pool.Query(ctx, `SELECT id::text, at, COALESCE(actor_id::text, ''), actor_email, action, target_type, target_id,
		COALESCE(tenant_id::text, ''), details FROM audit_log`+cond+
		fmt.Sprintf(` ORDER BY at DESC, id LIMIT $%d OFFSET $%d`, len(args)-1, len(args)), args...)
	if err != nil {
		return nil, 0, err
	}
	defer rows.Close()
	var out []AuditRow
	for rows.Next() {
		var r AuditRow
		var details []byte
		if err := rows.Scan(&r.ID, &r.At, &r.Actor.UserID, &r.Actor.Email, &r.Action, &r.TargetType, &r.TargetID, &r.TenantID, &details); err != nil {
			return nil, 0, err
		}
		if err := json.Unmarshal(details, &r.Details); err != nil {
			return nil, 0, fmt.Errorf("audit details of %s: %w", r.ID, err)
		}
		out = append(out, r)
	}
	return out, total, rows.Err()
}
