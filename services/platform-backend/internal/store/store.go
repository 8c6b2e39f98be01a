// Package store is the platform's Postgres data layer. SQL stays next to the
// method that runs it; driver errors are translated here and go no further.
//
// It persists and takes locks; it decides nothing. The rules live in the
// domain packages (identity, team, billing, configs), which declare the store
// interfaces they need; the types here implement them (TeamStore,
// BillingStore, ConfigStore, and *Store itself for identity). Changes guarded
// by a rule run in a unit of work: WithTenantLocked opens a transaction, locks
// the tenant row (FOR UPDATE) and hands the domain a Tx whose reads see the
// locked state, so the rule is evaluated and the change written in the same
// transaction.
package store

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"unicode/utf8"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"trueportai/services/internal/pgdb"
	"trueportai/services/platform-backend/internal/billing"
	"trueportai/services/platform-backend/internal/configs"
	"trueportai/services/platform-backend/internal/identity"
	"trueportai/services/platform-backend/internal/team"
)

// Sentinel errors callers branch on.
var (
	// ErrNotFound is what every lookup returns for a missing row. It also
	// matches the not-found sentinel of each domain package (errors.Is(err,
	// team.ErrNotFound) holds), so a domain service branches on its own
	// sentinel without importing store.
	ErrNotFound   error = notFound{}
	ErrEmailTaken       = errors.New("email taken")
	ErrSlugTaken        = errors.New("slug taken")
)

type notFound struct{}

func (notFound) Error() string { return "not found" }

func (notFound) Is(target error) bool {
	switch target {
	case identity.ErrNotFound, team.ErrNotFound, billing.ErrNotFound, configs.ErrNotFound:
		return true
	}
	return false
}

// Store wraps the pool.
type Store struct{ pool *pgxpool.Pool }

// New returns a store on pool.
func New(pool *pgxpool.Pool) *Store { return &Store{pool: pool} }

// Ping checks the database.
func (s *Store) Ping(ctx context.Context) error { return s.pool.Ping(ctx) }

// validUUID reports whether s is a UUID in canonical form. Ids from clients
// (request bodies, token claims, gRPC) are checked before they reach a uuid
// column: a malformed one matches nothing instead of failing the query.
func validUUID(s string) bool {
	if len(s) != 36 {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch i {
		case 8, 13, 18, 23:
			if c != '-' {
				return false
			}
		default:
			if !('0' <= c && c <= '9' || 'a' <= c && c <= 'f' || 'A' <= c && c <= 'F') {
				return false
			}
		}
	}
	return true
}

// validText reports whether s can be a Postgres text value (valid UTF-8, no
// NUL); anything else cannot match a stored value.
func validText(s string) bool { return utf8.ValidString(s) && !strings.ContainsRune(s, 0) }

const userCols = `id::text, email, name, password_hash, platform_admin, email_verified, token_version, created_at`

func scanUser(row pgx.Row) (identity.User, error) {
	var u identity.User
	err := row.Scan(&u.ID, &u.Email, &u.Name, &u.PasswordHash, &u.PlatformAdmin, &u.EmailVerified, &u.TokenVersion, &u.CreatedAt)
	if errors.Is(err, pgx.ErrNoRows) {
		return u, ErrNotFound
	}
	return u, err
}

// CreateUser inserts a user, unverified and not a platform admin (only a
// proven address makes an admin); a taken email (case-insensitive) is
// ErrEmailTaken.
func (s *Store) CreateUser(ctx context.Context, email, name, hash string) (identity.User, error) {
	u, err := scanUser(s.pool.QueryRow(ctx,
		`INSERT INTO users (email, name, password_hash) VALUES ($1, $2, $3) RETURNING `+userCols,
		email, name, hash))
	if pgdb.IsUniqueViolation(err) {
		return u, ErrEmailTaken
	}
	return u, err
}

// UserByEmail finds a user case-insensitively.
func (s *Store) UserByEmail(ctx context.Context, email string) (identity.User, error) {
	if !validText(email) {
		return identity.User{}, ErrNotFound
	}
	return scanUser(s.pool.QueryRow(ctx, `SELECT `+userCols+` FROM users WHERE lower(email) = lower($1)`, email))
}

// UserByID finds a user.
func (s *Store) UserByID(ctx context.Context, id string) (identity.User, error) {
	if !validUUID(id) {
		return identity.User{}, ErrNotFound
	}
	return scanUser(s.pool.QueryRow(ctx, `SELECT `+userCols+` FROM users WHERE id = $1`, id))
}

// GrantPlatformAdmin flags the users with these emails (any case) as
// platform admins; with verifiedOnly only those whose address is proven
// (PLATFORM_ADMIN_EMAILS at start), else whatever their address (the
// operator's grant-admin command).
func (s *Store) GrantPlatformAdmin(ctx context.Context, emails []string, verifiedOnly bool) (int64, error) {
	lower := make([]string, 0, len(emails))
	for _, e := range emails {
		if validText(e) {
			lower = append(lower, strings.ToLower(strings.TrimSpace(e)))
		}
	}
	if len(lower) == 0 {
		return 0, nil
	}
	tag, err := s.pool.Exec(ctx, `UPDATE users SET platform_admin = true WHERE lower(email) = ANY($1) AND NOT platform_admin
		AND (email_verified OR NOT $2)`, lower, verifiedOnly)
	return tag.RowsAffected(), err
}

// planCols reads a plan; a limit without a maximum (NULL) reads as 0.
const planCols = `id, name, price_usd_month::float8, COALESCE(monthly_requests, 0), COALESCE(max_api_keys, 0), COALESCE(max_members, 0),
	COALESCE(max_rpm_per_key, 0), retention_days, COALESCE(offered_to::text, '')`

func scanPlan(row pgx.Row) (billing.Plan, error) {
	var p billing.Plan
	err := row.Scan(&p.ID, &p.Name, &p.PriceUSDMonth, &p.MonthlyRequests, &p.MaxAPIKeys, &p.MaxMembers, &p.MaxRPMPerKey, &p.RetentionDays, &p.OfferedTo)
	if errors.Is(err, pgx.ErrNoRows) {
		return p, ErrNotFound
	}
	return p, err
}

// PlanByID reads one plan.
func (s *Store) PlanByID(ctx context.Context, id string) (billing.Plan, error) {
	return scanPlan(s.pool.QueryRow(ctx, `SELECT `+planCols+` FROM plans WHERE id = $1`, id))
}

// Plans lists the public catalog.
func (s *Store) Plans(ctx context.Context) ([]billing.Plan, error) {
	return s.plans(ctx, `WHERE offered_to IS NULL`)
}

// PlansFor lists the plans tenantID may choose: the public catalog and the
// custom plans offered to it.
func (s *Store) PlansFor(ctx context.Context, tenantID string) ([]billing.Plan, error) {
	if !validUUID(tenantID) {
		return s.Plans(ctx)
	}
	return s.plans(ctx, `WHERE offered_to IS NULL OR offered_to = $1`, tenantID)
}

// AllPlans lists every plan, custom ones included (platform admins).
func (s *Store) AllPlans(ctx context.Context) ([]billing.Plan, error) { return s.plans(ctx, ``) }

func (s *Store) plans(ctx context.Context, where string, args ...any) ([]billing.Plan, error) {
	rows, err := s.pool.Query(ctx, `SELECT `+planCols+` FROM plans `+where+` ORDER BY sort_order, created_at, id`, args...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []billing.Plan
	for rows.Next() {
		p, err := scanPlan(rows)
		if err != nil {
			return nil, err
		}
		out = append(out, p)
	}
	return out, rows.Err()
}

const tenantCols = `t.id::text, t.name, t.slug, t.status, t.plan_id, t.created_at`

func scanTenant(row pgx.Row, extra ...any) (team.Tenant, error) {
	var t team.Tenant
	dst := append([]any{&t.ID, &t.Name, &t.Slug, &t.Status, &t.PlanID, &t.CreatedAt}, extra...)
	err := row.Scan(dst...)
	if errors.Is(err, pgx.ErrNoRows) {
		return t, ErrNotFound
	}
	return t, err
}

// CreateTenant creates a tenant on planID with owner as its owner, an active
// subscription and the given storage settings (configs.DefaultStorage), in
// one transaction.
func (s *Store) CreateTenant(ctx context.Context, name, slug, planID, ownerID string, st configs.Storage) (team.Tenant, error) {
	var t team.Tenant
	err := pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		var err error
		t, err = scanTenant(tx.QueryRow(ctx,
			`INSERT INTO tenants AS t (name, slug, plan_id) VALUES ($1, $2, $3) RETURNING `+tenantCols, name, slug, planID))
		if pgdb.IsUniqueViolation(err) {
			return ErrSlugTaken
		}
		if err != nil {
			return fmt.Errorf("insert tenant: %w", err)
		}
		if _, err := tx.Exec(ctx, `INSERT INTO memberships (tenant_id, user_id, role) VALUES ($1, $2, 'owner')`, t.ID, ownerID); err != nil {
			return fmt.Errorf("insert owner: %w", err)
		}
		if _, err := tx.Exec(ctx, `INSERT INTO subscriptions (tenant_id, plan_id, status) VALUES ($1, $2, 'active')`, t.ID, planID); err != nil {
			return fmt.Errorf("insert subscription: %w", err)
		}
		if _, err := tx.Exec(ctx, `INSERT INTO storage_settings (tenant_id, log_request_bodies, log_response_bodies, redact_logged_bodies, retention_days)
			VALUES ($1, $2, $3, $4, $5)`, t.ID, st.LogRequestBodies, st.LogResponseBodies, st.RedactLoggedBodies, st.RetentionDays); err != nil {
			return fmt.Errorf("insert storage settings: %w", err)
		}
		return nil
	})
	return t, err
}

// SlugTaken reports whether a tenant uses slug.
func (s *Store) SlugTaken(ctx context.Context, slug string) (bool, error) {
	var taken bool
	err := s.pool.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM tenants WHERE slug = $1)`, slug).Scan(&taken)
	return taken, err
}

// TenantsForUser lists the tenants a user belongs to, newest first.
func (s *Store) TenantsForUser(ctx context.Context, userID string, limit, offset int) ([]team.Membership, int, error) {
	var total int
	if err := s.pool.QueryRow(ctx, `SELECT count(*) FROM memberships WHERE user_id = $1`, userID).Scan(&total); err != nil {
		return nil, 0, err
	}
	rows, err := s.pool.Query(ctx, `SELECT `+tenantCols+`, m.role FROM tenants t JOIN memberships m ON m.tenant_id = t.id
		WHERE m.user_id = $1 ORDER BY t.created_at DESC, t.id LIMIT $2 OFFSET $3`, userID, limit, offset)
	if err != nil {
		return nil, 0, err
	}
	defer rows.Close()
	var out []team.Membership
	for rows.Next() {
		var tr team.Membership
		tr.Tenant, err = scanTenant(rows, &tr.Role)
		if err != nil {
			return nil, 0, err
		}
		out = append(out, tr)
	}
	return out, total, rows.Err()
}

// Membership returns the tenant and the user's role in it; ErrNotFound when
// the tenant does not exist or the user is not a member (indistinguishable).
func (s *Store) Membership(ctx context.Context, tenantID, userID string) (team.Membership, error) {
	var tr team.Membership
	if !validUUID(tenantID) || !validUUID(userID) {
		return tr, ErrNotFound
	}
	var err error
	tr.Tenant, err = scanTenant(s.pool.QueryRow(ctx, `SELECT `+tenantCols+`, m.role FROM tenants t JOIN memberships m ON m.tenant_id = t.id
		WHERE t.id = $1 AND m.user_id = $2`, tenantID, userID), &tr.Role)
	return tr, err
}

// MembershipBySlug is Membership keyed by tenant slug.
func (s *Store) MembershipBySlug(ctx context.Context, slug, userID string) (team.Membership, error) {
	var tr team.Membership
	if !validText(slug) || !validUUID(userID) {
		return tr, ErrNotFound
	}
	var err error
	tr.Tenant, err = scanTenant(s.pool.QueryRow(ctx, `SELECT `+tenantCols+`, m.role FROM tenants t JOIN memberships m ON m.tenant_id = t.id
		WHERE t.slug = $1 AND m.user_id = $2`, slug, userID), &tr.Role)
	return tr, err
}

// TenantByID reads one tenant.
func (s *Store) TenantByID(ctx context.Context, id string) (team.Tenant, error) {
	if !validUUID(id) {
		return team.Tenant{}, ErrNotFound
	}
	return scanTenant(s.pool.QueryRow(ctx, `SELECT `+tenantCols+` FROM tenants t WHERE t.id = $1`, id))
}

// Members lists a tenant's members, oldest first.
func (s *Store) Members(ctx context.Context, tenantID string, limit, offset int) ([]team.Member, int, error) {
	var total int
	if err := s.pool.QueryRow(ctx, `SELECT count(*) FROM memberships WHERE tenant_id = $1`, tenantID).Scan(&total); err != nil {
		return nil, 0, err
	}
	rows, err := s.pool.Query(ctx, `SELECT u.id::text, u.email, u.name, m.role, m.joined_at FROM memberships m JOIN users u ON u.id = m.user_id
		WHERE m.tenant_id = $1 ORDER BY m.joined_at, u.id LIMIT $2 OFFSET $3`, tenantID, limit, offset)
	if err != nil {
		return nil, 0, err
	}
	defer rows.Close()
	var out []team.Member
	for rows.Next() {
		var m team.Member
		if err := rows.Scan(&m.UserID, &m.Email, &m.Name, &m.Role, &m.JoinedAt); err != nil {
			return nil, 0, err
		}
		out = append(out, m)
	}
	return out, total, rows.Err()
}

// Configs lists a tenant's stored configs.
func (s *Store) Configs(ctx context.Context, tenantID string) ([]configs.Entry, error) {
	rows, err := s.pool.Query(ctx, `SELECT key, value, secret, updated_at FROM tenant_configs WHERE tenant_id = $1 ORDER BY key`, tenantID)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []configs.Entry
	for rows.Next() {
		var c configs.Entry
		if err := rows.Scan(&c.Key, &c.Value, &c.Secret, &c.UpdatedAt); err != nil {
			return nil, err
		}
		out = append(out, c)
	}
	return out, rows.Err()
}

// PutConfig upserts one config value.
func (s *Store) PutConfig(ctx context.Context, tenantID, userID string, c configs.Entry) (configs.Entry, error) {
	err := s.pool.QueryRow(ctx, `INSERT INTO tenant_configs (tenant_id, key, value, secret, updated_by) VALUES ($1, $2, $3, $4, $5)
		ON CONFLICT (tenant_id, key) DO UPDATE SET value = EXCLUDED.value, secret = EXCLUDED.secret, updated_by = EXCLUDED.updated_by, updated_at = now()
		RETURNING updated_at`, tenantID, c.Key, c.Value, c.Secret, userID).Scan(&c.UpdatedAt)
	return c, err
}

// StorageSettings reads a tenant's storage settings.
func (s *Store) StorageSettings(ctx context.Context, tenantID string) (configs.Storage, error) {
	var st configs.Storage
	err := s.pool.QueryRow(ctx, `SELECT log_request_bodies, log_response_bodies, redact_logged_bodies, retention_days
		FROM storage_settings WHERE tenant_id = $1`, tenantID).Scan(&st.LogRequestBodies, &st.LogResponseBodies, &st.RedactLoggedBodies, &st.RetentionDays)
	if errors.Is(err, pgx.ErrNoRows) {
		return st, ErrNotFound
	}
	return st, err
}

// DevKey returns the dev-mode key material stored under name, creating it
// with gen on first use (concurrent starts agree on one value).
func (s *Store) DevKey(ctx context.Context, name string, gen func() (string, error)) (string, error) {
	v, err := gen()
	if err != nil {
		return "", err
	}
	if _, err := s.pool.Exec(ctx, `INSERT INTO dev_keys (name, material) VALUES ($1, $2) ON CONFLICT (name) DO NOTHING`, name, v); err != nil {
		return "", fmt.Errorf("store dev key: %w", err)
	}
	var out string
	err = s.pool.QueryRow(ctx, `SELECT material FROM dev_keys WHERE name = $1`, name).Scan(&out)
	return out, err
}
