package store

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"

	"trueportai/services/platform-backend/internal/audit"
	"trueportai/services/platform-backend/internal/billing"
	"trueportai/services/platform-backend/internal/identity"
	"trueportai/services/platform-backend/internal/team"
)

// TenantSummary is a tenant with its member count (platform admin views).
type TenantSummary struct {
	team.Tenant
	MemberCount int64
}

// TenantFilter narrows AllTenants; zero fields match everything.
type TenantFilter struct {
	Status string // active | suspended
	Query  string // substring of name or slug, case-insensitive
}

// likePattern escapes s for a LIKE/ILIKE substring match.
func likePattern(s string) string {
	return "%" + strings.NewReplacer(`\`, `\\`, `%`, `\%`, `_`, `\_`).Replace(s) + "%"
}

// AllTenants lists every tenant, newest first, with member counts.
func (s *Store) AllTenants(ctx context.Context, f TenantFilter, limit, offset int) ([]TenantSummary, int, error) {
	if !validText(f.Query) {
		return nil, 0, nil
	}
	const cond = ` FROM tenants t WHERE ($1 = '' OR t.status = $1) AND ($2 = '' OR t.name ILIKE $3 OR t.slug ILIKE $3)`
	args := []any{f.Status, f.Query, likePattern(f.Query)}
	var total int
	if err := s.pool.QueryRow(ctx, `SELECT count(*)`+cond, args...).Scan(&total); err != nil {
		return nil, 0, err
	}
	rows, err := s.pool.Query(ctx, `SELECT `+tenantCols+`, (SELECT count(*) FROM memberships m WHERE m.tenant_id = t.id)`+cond+
		` ORDER BY t.created_at DESC, t.id LIMIT $4 OFFSET $5`, append(args, limit, offset)...)
	if err != nil {
		return nil, 0, err
	}
	defer rows.Close()
	var out []TenantSummary
	for rows.Next() {
		var ts TenantSummary
		if ts.Tenant, err = scanTenant(rows, &ts.MemberCount); err != nil {
			return nil, 0, err
		}
		out = append(out, ts)
	}
	return out, total, rows.Err()
}

// TenantOwners lists a tenant's owners, oldest membership first.
func (s *Store) TenantOwners(ctx context.Context, tenantID string) ([]team.Member, error) {
	rows, err := s.pool.Query(ctx, `SELECT u.id::text, u.email, u.name, m.role, m.joined_at FROM memberships m JOIN users u ON u.id = m.user_id
		WHERE m.tenant_id = $1 AND m.role = 'owner' ORDER BY m.joined_at, u.id`, tenantID)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []team.Member
	for rows.Next() {
		var m team.Member
		if err := rows.Scan(&m.UserID, &m.Email, &m.Name, &m.Role, &m.JoinedAt); err != nil {
			return nil, err
		}
		out = append(out, m)
	}
	return out, rows.Err()
}

// ActiveSubscription returns the tenant's active subscription.
func (s *Store) ActiveSubscription(ctx context.Context, tenantID string) (billing.Subscription, error) {
	var sub billing.Subscription
	err := s.pool.QueryRow(ctx, `SELECT id::text, tenant_id::text, plan_id, status, started_at, ended_at FROM subscriptions
		WHERE tenant_id = $1 AND status = 'active'`, tenantID).Scan(&sub.ID, &sub.TenantID, &sub.PlanID, &sub.Status, &sub.StartedAt, &sub.EndedAt)
	if errors.Is(err, pgx.ErrNoRows) {
		return sub, ErrNotFound
	}
	return sub, err
}

// SetTenantStatus sets a tenant's status (active | suspended) and returns the
// tenant and its previous status.
func (s *Store) SetTenantStatus(ctx context.Context, tenantID, status string, actor audit.Actor) (team.Tenant, string, error) {
	var t team.Tenant
	var prev string
	err := s.withTenantLocked(ctx, tenantID, func(l lockedTx) error {
		prev = l.tenant.Status
		var err error
		if t, err = scanTenant(l.tx.QueryRow(ctx, `UPDATE tenants AS t SET status = $2 WHERE t.id = $1 RETURNING `+tenantCols, tenantID, status)); err != nil {
			return err
		}
		return l.Audit(ctx, audit.Entry{Actor: actor, Action: audit.TenantStatus, TargetType: "tenant", TargetID: tenantID, TenantID: tenantID,
			Details: map[string]any{"from": prev, "to": status, "slug": t.Slug}})
	})
	return t, prev, err
}

// UserSummary is a user with the number of tenants they belong to.
type UserSummary struct {
	identity.User
	TenantCount int64
}

// AllUsers lists every user, newest first; query matches email or name
// (substring, case-insensitive).
func (s *Store) AllUsers(ctx context.Context, query string, limit, offset int) ([]UserSummary, int, error) {
	if !validText(query) {
		return nil, 0, nil
	}
	const cond = ` FROM users WHERE ($1 = '' OR email ILIKE $2 OR name ILIKE $2)`
	var total int
	if err := s.pool.QueryRow(ctx, `SELECT count(*)`+cond, query, likePattern(query)).Scan(&total); err != nil {
		return nil, 0, err
	}
	rows, err := s.pool.Query(ctx, `SELECT `+userCols+`, (SELECT count(*) FROM memberships m WHERE m.user_id = users.id)`+cond+
		` ORDER BY created_at DESC, id LIMIT $3 OFFSET $4`, query, likePattern(query), limit, offset)
	if err != nil {
		return nil, 0, err
	}
	defer rows.Close()
	var out []UserSummary
	for rows.Next() {
		var u UserSummary
		if err := rows.Scan(&u.ID, &u.Email, &u.Name, &u.PasswordHash, &u.PlatformAdmin, &u.EmailVerified, &u.TokenVersion, &u.CreatedAt, &u.TenantCount); err != nil {
			return nil, 0, err
		}
		out = append(out, u)
	}
	return out, total, rows.Err()
}

// PlatformCounts are the platform-wide totals of the admin stats.
type PlatformCounts struct {
	Users            int64
	PlatformAdmins   int64
	Tenants          int64
	ActiveTenants    int64
	SuspendedTenants int64
	TenantsByPlan    map[string]int64
}

// Counts reads the platform-wide totals.
func (s *Store) Counts(ctx context.Context) (PlatformCounts, error) {
	c := PlatformCounts{TenantsByPlan: map[string]int64{}}
	if err := s.pool.QueryRow(ctx, `SELECT (SELECT count(*) FROM users), (SELECT count(*) FROM users WHERE platform_admin),
		(SELECT count(*) FROM tenants), (SELECT count(*) FROM tenants WHERE status = 'active'), (SELECT count(*) FROM tenants WHERE status = 'suspended')`).
		Scan(&c.Users, &c.PlatformAdmins, &c.Tenants, &c.ActiveTenants, &c.SuspendedTenants); err != nil {
		return c, err
	}
	rows, err := s.pool.Query(ctx, `SELECT p.id, count(t.id) FROM plans p LEFT JOIN tenants t ON t.plan_id = p.id GROUP BY p.id`)
	if err != nil {
		return c, err
	}
	defer rows.Close()
	for rows.Next() {
		var id string
		var n int64
		if err := rows.Scan(&id, &n); err != nil {
			return c, err
		}
		c.TenantsByPlan[id] = n
	}
	return c, rows.Err()
}

// GlobalConfigRow is a stored global config value (JSON text).
type GlobalConfigRow struct {
	Key       string
	Value     string
	UpdatedAt time.Time
	UpdatedBy string
}

// GlobalConfigs lists the stored global configs.
func (s *Store) GlobalConfigs(ctx context.Context) ([]GlobalConfigRow, error) {
	rows, err := s.pool.Query(ctx, `SELECT key, value, updated_at, COALESCE(updated_by::text, '') FROM global_configs ORDER BY key`)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []GlobalConfigRow
	for rows.Next() {
		var r GlobalConfigRow
		if err := rows.Scan(&r.Key, &r.Value, &r.UpdatedAt, &r.UpdatedBy); err != nil {
			return nil, err
		}
		out = append(out, r)
	}
	return out, rows.Err()
}

// GlobalConfig reads one stored global config (ErrNotFound when unset).
func (s *Store) GlobalConfig(ctx context.Context, key string) (GlobalConfigRow, error) {
	r := GlobalConfigRow{Key: key}
	err := s.pool.QueryRow(ctx, `SELECT value, updated_at, COALESCE(updated_by::text, '') FROM global_configs WHERE key = $1`, key).
		Scan(&r.Value, &r.UpdatedAt, &r.UpdatedBy)
	if errors.Is(err, pgx.ErrNoRows) {
		return r, ErrNotFound
	}
	return r, err
}

// PutGlobalConfig upserts a global config value (canonical JSON text).
func (s *Store) PutGlobalConfig(ctx context.Context, key, value string, actor audit.Actor) (GlobalConfigRow, error) {
	r := GlobalConfigRow{Key: key, Value: value, UpdatedBy: actor.UserID}
	err := pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		var prev *string
		if err := tx.QueryRow(ctx, `SELECT value FROM global_configs WHERE key = $1 FOR UPDATE`, key).Scan(&prev); err != nil && !errors.Is(err, pgx.ErrNoRows) {
			return err
		}
		if err := tx.QueryRow(ctx, `INSERT INTO global_configs (key, value, updated_by) VALUES ($1, $2, $3)
			ON CONFLICT (key) DO UPDATE SET value = EXCLUDED.value, updated_by = EXCLUDED.updated_by, updated_at = now()
			RETURNING updated_at`, key, value, nullIfEmpty(actor.UserID)).Scan(&r.UpdatedAt); err != nil {
			return fmt.Errorf("upsert global config: %w", err)
		}
		details := map[string]any{"key": key, "value": json.RawMessage(value)}
		if prev != nil {
			details["previous"] = json.RawMessage(*prev)
		}
		return insertAudit(ctx, tx, audit.Entry{Actor: actor, Action: audit.GlobalConfigUpdate, TargetType: "global_config", TargetID: key, Details: details})
	})
	return r, err
}
