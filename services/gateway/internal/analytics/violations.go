package analytics

import (
	"context"
	"encoding/json"
	"errors"
	"time"

	"github.com/jackc/pgx/v5"
)

// ViolationFilter selects the violations of one tenant environment. Zero
// fields do not filter.
type ViolationFilter struct {
	TenantID, Env string
	From, To      time.Time // [From, To)
	PolicyID      string
	KeyID         string
	Type          string
	Action        string
}

// Violation is one stored policy violation.
type Violation struct {
	ID         string
	RequestID  string
	KeyID      *string
	Env        string
	PolicyID   *string
	PolicyName string
	Type       string
	Action     string
	Severity   string
	Shadow     bool
	Direction  string
	Matches    json.RawMessage // the masked matches, as stored
	Provider   string
	Model      string
	CreatedAt  time.Time // UTC
}

const violationCols = `id::text, request_id, key_id::text, env, policy_id::text, policy_name, type, action, severity, shadow, direction, matches, provider, model, created_at`

func scanViolation(row pgx.Row) (Violation, error) {
	var v Violation
	err := row.Scan(&v.ID, &v.RequestID, &v.KeyID, &v.Env, &v.PolicyID, &v.PolicyName, &v.Type, &v.Action, &v.Severity, &v.Shadow, &v.Direction,
		&v.Matches, &v.Provider, &v.Model, &v.CreatedAt)
	v.CreatedAt = v.CreatedAt.UTC()
	return v, err
}

// Violations returns a page of the violations f selects, newest first, and
// how many match in all.
func (s *Store) Violations(ctx context.Context, f ViolationFilter, limit, offset int) ([]Violation, int, error) {
	w := scoped(f.TenantID, f.Env, f.From, f.To)
	if f.PolicyID != "" {
		w.add("policy_id = ?::uuid", f.PolicyID)
	}
	if f.KeyID != "" {
		w.add("key_id = ?::uuid", f.KeyID)
	}
	if f.Type != "" {
		w.add("type = ?", f.Type)
	}
	if f.Action != "" {
		w.add("action = ?", f.Action)
	}
	var total int
	if err := s.pool.QueryRow(ctx, `SELECT count(*) FROM violations WHERE `+w.String(), w.args...).Scan(&total); err != nil {
		return nil, 0, err
	}
	limitOffset, args := w.page(limit, offset)
	rows, err := s.pool.Query(ctx, `SELECT `+violationCols+` FROM violations WHERE `+w.String()+` ORDER BY created_at DESC, id DESC `+limitOffset, args...)
	if err != nil {
		return nil, 0, err
	}
	defer rows.Close()
	items := []Violation{}
	for rows.Next() {
		v, err := scanViolation(rows)
		if err != nil {
			return nil, 0, err
		}
		items = append(items, v)
	}
	return items, total, rows.Err()
}

// Violation returns one violation of a tenant environment by id (a UUID),
// or ErrNotFound. It probes the primary key index of each month partition.
func (s *Store) Violation(ctx context.Context, tenantID, env, id string) (Violation, error) {
	v, err := scanViolation(s.pool.QueryRow(ctx, `SELECT `+violationCols+` FROM violations WHERE id = $1::uuid AND tenant_id = $2::uuid AND env = $3`,
		id, tenantID, env))
	if errors.Is(err, pgx.ErrNoRows) {
		return Violation{}, ErrNotFound
	}
	return v, err
}
