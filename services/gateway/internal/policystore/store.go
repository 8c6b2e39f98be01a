// Package policystore keeps tenants' policy rules in Postgres and serves the
// proxy an in-memory snapshot of compiled rule sets, refreshed by NATS events.
package policystore

import (
	"context"
	"encoding/json"
	"errors"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"trueportai/services/gateway/internal/policy"
)

// ErrNotFound: no such policy (or another tenant's / env's).
var ErrNotFound = errors.New("policy not found")

// Row is a stored rule with its ownership.
type Row struct {
	policy.Rule
	TenantID  string
	Env       string
	CreatedBy string
	CreatedAt time.Time
	UpdatedAt time.Time
}

// Store is the policies table.
type Store struct{ pool *pgxpool.Pool }

// NewStore returns a store on pool.
func NewStore(pool *pgxpool.Pool) *Store { return &Store{pool: pool} }

const cols = `id::text, tenant_id::text, env, name, description, type, config, action, enabled, priority, mode, scope, direction, created_by::text, created_at, updated_at`

func scan(row pgx.Row) (*Row, error) {
	var r Row
	var scope []byte
	err := row.Scan(&r.ID, &r.TenantID, &r.Env, &r.Name, &r.Description, &r.Type, &r.Config, &r.Action, &r.Enabled, &r.Priority, &r.Mode, &scope,
		&r.Direction, &r.CreatedBy, &r.CreatedAt, &r.UpdatedAt)
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, ErrNotFound
	}
	if err != nil {
		return nil, err
	}
	if err := json.Unmarshal(scope, &r.Scope); err != nil {
		return nil, err
	}
	return &r, nil
}

func scanAll(rows pgx.Rows) ([]*Row, error) {
	defer rows.Close()
	var out []*Row
	for rows.Next() {
		r, err := scan(rows)
		if err != nil {
			return nil, err
		}
		out = append(out, r)
	}
	return out, rows.Err()
}

// Create inserts a rule.
func (s *Store) Create(ctx context.Context, r *Row) (*Row, error) {
	scope, _ := json.Marshal(r.Scope)
	return scan(s.pool.QueryRow(ctx, `INSERT INTO policies (tenant_id, env, name, description, type, config, action, enabled, priority, mode, scope, direction, created_by)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13) RETURNING `+cols,
		r.TenantID, r.Env, r.Name, r.Description, r.Type, r.Config, r.Action, r.Enabled, r.Priority, r.Mode, scope, r.Direction, r.CreatedBy))
}

// Update replaces a rule's definition.
func (s *Store) Update(ctx context.Context, r *Row) (*Row, error) {
	scope, _ := json.Marshal(r.Scope)
	return scan(s.pool.QueryRow(ctx, `UPDATE policies SET name = $4, description = $5, type = $6, config = $7, action = $8, enabled = $9, priority = $10,
		mode = $11, scope = $12, direction = $13, updated_at = now() WHERE id = $1::uuid AND tenant_id = $2::uuid AND env = $3 RETURNING `+cols,
		r.ID, r.TenantID, r.Env, r.Name, r.Description, r.Type, r.Config, r.Action, r.Enabled, r.Priority, r.Mode, scope, r.Direction))
}

// Get reads one rule of a tenant and env.
func (s *Store) Get(ctx context.Context, tenantID, env, id string) (*Row, error) {
	return scan(s.pool.QueryRow(ctx, `SELECT `+cols+` FROM policies WHERE id = $1::uuid AND tenant_id = $2::uuid AND env = $3`, id, tenantID, env))
}

// Delete removes a rule.
func (s *Store) Delete(ctx context.Context, tenantID, env, id string) error {
	tag, err := s.pool.Exec(ctx, `DELETE FROM policies WHERE id = $1::uuid AND tenant_id = $2::uuid AND env = $3`, id, tenantID, env)
	if err != nil {
		return err
	}
	if tag.RowsAffected() == 0 {
		return ErrNotFound
	}
	return nil
}

// List pages a tenant's rules in one env, highest priority first.
func (s *Store) List(ctx context.Context, tenantID, env string, limit, offset int) ([]*Row, int, error) {
	var total int
	if err := s.pool.QueryRow(ctx, `SELECT count(*) FROM policies WHERE tenant_id = $1::uuid AND env = $2`, tenantID, env).Scan(&total); err != nil {
		return nil, 0, err
	}
	rows, err := s.pool.Query(ctx, `SELECT `+cols+` FROM policies WHERE tenant_id = $1::uuid AND env = $2
		ORDER BY priority DESC, created_at, id LIMIT $3 OFFSET $4`, tenantID, env, limit, offset)
	if err != nil {
		return nil, 0, err
	}
	out, err := scanAll(rows)
	return out, total, err
}

// ForTenant reads every rule of a tenant (all envs), for the snapshot.
func (s *Store) ForTenant(ctx context.Context, tenantID string) ([]*Row, error) {
	rows, err := s.pool.Query(ctx, `SELECT `+cols+` FROM policies WHERE tenant_id = $1::uuid ORDER BY priority DESC, created_at, id`, tenantID)
	if err != nil {
		return nil, err
	}
	return scanAll(rows)
}

// All reads every rule (snapshot warm-up and periodic reload).
func (s *Store) All(ctx context.Context) ([]*Row, error) {
	rows, err := s.pool.Query(ctx, `SELECT `+cols+` FROM policies ORDER BY priority DESC, created_at, id`)
	if err != nil {
		return nil, err
	}
	return scanAll(rows)
}
