package keys

import (
	"context"
	"errors"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
)

// ErrNotFound: no such key (or another tenant's).
var ErrNotFound = errors.New("key not found")

// Store persists keys in the gateway database.
type Store struct{ pool *pgxpool.Pool }

// NewStore returns a store on pool.
func NewStore(pool *pgxpool.Pool) *Store { return &Store{pool: pool} }

const cols = `id::text, tenant_id::text, env, name, prefix, key_hash, enabled, rpm_limit, allowed_models, expires_at, last_used_at, created_by::text, created_at, updated_at`

func scan(row pgx.Row) (*Key, error) {
	var k Key
	var hash []byte
	err := row.Scan(&k.ID, &k.TenantID, &k.Env, &k.Name, &k.Prefix, &hash, &k.Enabled, &k.RPMLimit, &k.AllowedModels, &k.ExpiresAt, &k.LastUsedAt, &k.CreatedBy, &k.CreatedAt, &k.UpdatedAt)
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, ErrNotFound
	}
	if err != nil {
		return nil, err
	}
	copy(k.Hash[:], hash)
	if k.AllowedModels == nil {
		k.AllowedModels = []string{}
	}
	return &k, nil
}

func scanAll(rows pgx.Rows) ([]*Key, error) {
	defer rows.Close()
	var out []*Key
	for rows.Next() {
		k, err := scan(rows)
		if err != nil {
			return nil, err
		}
		out = append(out, k)
	}
	return out, rows.Err()
}

// Create inserts k (ID, timestamps filled in).
func (s *Store) Create(ctx context.Context, k *Key) (*Key, error) {
	return scan(s.pool.QueryRow(ctx, `INSERT INTO api_keys (tenant_id, env, name, prefix, key_hash, enabled, rpm_limit, allowed_models, expires_at, created_by)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10) RETURNING `+cols,
		k.TenantID, k.Env, k.Name, k.Prefix, k.Hash[:], k.Enabled, k.RPMLimit, k.AllowedModels, k.ExpiresAt, k.CreatedBy))
}

// List returns a tenant's keys in one env, newest first.
func (s *Store) List(ctx context.Context, tenantID, env string, limit, offset int) ([]*Key, int, error) {
	var total int
	if err := s.pool.QueryRow(ctx, `SELECT count(*) FROM api_keys WHERE tenant_id::text = $1 AND env = $2 AND deleted_at IS NULL`, tenantID, env).Scan(&total); err != nil {
		return nil, 0, err
	}
	rows, err := s.pool.Query(ctx, `SELECT `+cols+` FROM api_keys WHERE tenant_id::text = $1 AND env = $2 AND deleted_at IS NULL
		ORDER BY created_at DESC, id LIMIT $3 OFFSET $4`, tenantID, env, limit, offset)
	if err != nil {
		return nil, 0, err
	}
	out, err := scanAll(rows)
	return out, total, err
}

// Get reads one key of a tenant and env.
func (s *Store) Get(ctx context.Context, tenantID, env, id string) (*Key, error) {
	return scan(s.pool.QueryRow(ctx, `SELECT `+cols+` FROM api_keys WHERE id::text = $1 AND tenant_id::text = $2 AND env = $3 AND deleted_at IS NULL`, id, tenantID, env))
}

// Update writes the mutable fields of k.
func (s *Store) Update(ctx context.Context, k *Key) (*Key, error) {
	return scan(s.pool.QueryRow(ctx, `UPDATE api_keys SET name = $4, enabled = $5, rpm_limit = $6, allowed_models = $7, expires_at = $8, updated_at = now()
		WHERE id::text = $1 AND tenant_id::text = $2 AND env = $3 AND deleted_at IS NULL RETURNING `+cols,
		k.ID, k.TenantID, k.Env, k.Name, k.Enabled, k.RPMLimit, k.AllowedModels, k.ExpiresAt))
}

// Delete soft-deletes a key (usage rows keep pointing at it).
func (s *Store) Delete(ctx context.Context, tenantID, env, id string) error {
	tag, err := s.pool.Exec(ctx, `UPDATE api_keys SET deleted_at = now(), enabled = false, updated_at = now()
		WHERE id::text = $1 AND tenant_id::text = $2 AND env = $3 AND deleted_at IS NULL`, id, tenantID, env)
	if err != nil {
		return err
	}
	if tag.RowsAffected() == 0 {
		return ErrNotFound
	}
	return nil
}

// All returns every live key (cache warm-up and periodic reload).
func (s *Store) All(ctx context.Context) ([]*Key, error) {
	rows, err := s.pool.Query(ctx, `SELECT `+cols+` FROM api_keys WHERE deleted_at IS NULL`)
	if err != nil {
		return nil, err
	}
	return scanAll(rows)
}

// ByID reads a live key regardless of tenant (cache refresh).
func (s *Store) ByID(ctx context.Context, id string) (*Key, error) {
	return scan(s.pool.QueryRow(ctx, `SELECT `+cols+` FROM api_keys WHERE id::text = $1 AND deleted_at IS NULL`, id))
}

// Count counts a tenant's live keys (all envs).
func (s *Store) Count(ctx context.Context, tenantID string) (int64, error) {
	var n int64
	err := s.pool.QueryRow(ctx, `SELECT count(*) FROM api_keys WHERE tenant_id::text = $1 AND deleted_at IS NULL`, tenantID).Scan(&n)
	return n, err
}

// TouchLastUsed advances last_used_at (never backwards).
func (s *Store) TouchLastUsed(ctx context.Context, last map[string]time.Time) error {
	if len(last) == 0 {
		return nil
	}
	ids := make([]string, 0, len(last))
	ts := make([]time.Time, 0, len(last))
	for id, t := range last {
		ids, ts = append(ids, id), append(ts, t)
	}
	_, err := s.pool.Exec(ctx, `UPDATE api_keys k SET last_used_at = v.t FROM unnest($1::uuid[], $2::timestamptz[]) AS v(id, t)
		WHERE k.id = v.id AND (k.last_used_at IS NULL OR k.last_used_at < v.t)`, ids, ts)
	return err
}
