package store

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"

	"trueportai/services/internal/role"
	"trueportai/services/platform-backend/internal/audit"
	"trueportai/services/platform-backend/internal/team"
)

// lockedTx is a transaction holding one tenant's row lock.
type lockedTx struct {
	tx     pgx.Tx
	tenant team.Locked
}

// Audit writes e in the transaction making the change.
func (l lockedTx) Audit(ctx context.Context, e audit.Entry) error { return insertAudit(ctx, l.tx, e) }

// withTenantLocked runs fn in one transaction that first locks the tenant row
// (every membership, plan and storage change takes this lock first, so they
// serialise per tenant); fn's error rolls the transaction back.
func (s *Store) withTenantLocked(ctx context.Context, tenantID string, fn func(lockedTx) error) error {
	return pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		t, err := lockTenant(ctx, tx, tenantID)
		if err != nil {
			return err
		}
		return fn(lockedTx{tx: tx, tenant: t})
	})
}

// lockTenant locks a tenant row for the rest of tx and returns it with its
// current plan. The row is locked on its own and the plan read after: with
// the plan joined into the locking SELECT, a transaction that waited for the
// lock while another one moved the tenant to another plan found no row at all
// (Postgres rechecks the join against the old plan row), which read as "no
// such tenant".
func lockTenant(ctx context.Context, tx pgx.Tx, tenantID string) (team.Locked, error) {
	var l team.Locked
	if !validUUID(tenantID) {
		return l, ErrNotFound
	}
	t, err := scanTenant(tx.QueryRow(ctx, `SELECT `+tenantCols+` FROM tenants t WHERE t.id = $1 FOR UPDATE`, tenantID))
	if err != nil {
		return l, err
	}
	p, err := tenantPlan(ctx, tx, t.ID, t.PlanID)
	if err != nil {
		return l, fmt.Errorf("plan %s of tenant %s: %w", t.PlanID, t.ID, err)
	}
	return team.Locked{Tenant: t, Plan: p}, nil
}

// member reads one membership with its user.
func member(ctx context.Context, q dbtx, tenantID, userID string) (team.Member, error) {
	var m team.Member
	if !validUUID(tenantID) || !validUUID(userID) {
		return m, ErrNotFound
	}
	err := q.QueryRow(ctx, `SELECT u.id::text, u.email, u.name, m.role, m.joined_at FROM memberships m JOIN users u ON u.id = m.user_id
		WHERE m.tenant_id = $1 AND m.user_id = $2`, tenantID, userID).Scan(&m.UserID, &m.Email, &m.Name, &m.Role, &m.JoinedAt)
	if errors.Is(err, pgx.ErrNoRows) {
		return m, ErrNotFound
	}
	return m, err
}

func countMembers(ctx context.Context, q dbtx, tenantID string) (int64, error) {
	var n int64
	err := q.QueryRow(ctx, `SELECT count(*) FROM memberships WHERE tenant_id = $1`, tenantID).Scan(&n)
	return n, err
}

// MemberCount counts a tenant's members.
func (s *Store) MemberCount(ctx context.Context, tenantID string) (int64, error) {
	return countMembers(ctx, s.pool, tenantID)
}

// TeamStore persists memberships and invites for package team.
type TeamStore struct{ s *Store }

// TeamStore returns the team domain's store.
func (s *Store) TeamStore() TeamStore { return TeamStore{s: s} }

var _ team.Store = TeamStore{}

// WithTenantLocked runs fn with the tenant locked (team.Store).
func (ts TeamStore) WithTenantLocked(ctx context.Context, tenantID string, fn func(team.Tx) error) error {
	return ts.s.withTenantLocked(ctx, tenantID, func(l lockedTx) error { return fn(teamTx{l}) })
}

// InviteByTokenHash finds an invite by the hash of its token.
func (ts TeamStore) InviteByTokenHash(ctx context.Context, tokenHash string) (team.Invite, error) {
	if !validText(tokenHash) {
		return team.Invite{}, ErrNotFound
	}
	return scanInvite(ts.s.pool.QueryRow(ctx, `SELECT `+inviteCols+` FROM invites WHERE token_hash = $1`, tokenHash))
}

// teamTx is team.Tx on a locked tenant.
type teamTx struct{ lockedTx }

var _ team.Tx = teamTx{}

func (t teamTx) Tenant() team.Locked { return t.tenant }

func (t teamTx) Member(ctx context.Context, userID string) (team.Member, error) {
	return member(ctx, t.tx, t.tenant.ID, userID)
}

func (t teamTx) CountOwners(ctx context.Context) (int64, error) {
	var n int64
	err := t.tx.QueryRow(ctx, `SELECT count(*) FROM memberships WHERE tenant_id = $1 AND role = 'owner'`, t.tenant.ID).Scan(&n)
	return n, err
}

func (t teamTx) CountMembers(ctx context.Context) (int64, error) {
	return countMembers(ctx, t.tx, t.tenant.ID)
}

func (t teamTx) HasMemberWithEmail(ctx context.Context, email string) (bool, error) {
	var ok bool
	err := t.tx.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM memberships m JOIN users u ON u.id = m.user_id
		WHERE m.tenant_id = $1 AND lower(u.email) = lower($2))`, t.tenant.ID, email).Scan(&ok)
	return ok, err
}

func (t teamTx) CountOpenInvites(ctx context.Context, now time.Time, exceptEmail string) (int64, error) {
	var n int64
	err := t.tx.QueryRow(ctx, `SELECT count(*) FROM invites WHERE tenant_id = $1 AND accepted_at IS NULL AND revoked_at IS NULL
		AND expires_at > $2 AND lower(email) <> lower($3)`, t.tenant.ID, now, exceptEmail).Scan(&n)
	return n, err
}

func (t teamTx) AddMember(ctx context.Context, userID string, r role.Role) error {
	if _, err := t.tx.Exec(ctx, `INSERT INTO memberships (tenant_id, user_id, role) VALUES ($1, $2, $3)`, t.tenant.ID, userID, string(r)); err != nil {
		return fmt.Errorf("insert membership: %w", err)
	}
	return nil
}

func (t teamTx) SetRole(ctx context.Context, userID string, r role.Role) error {
	if _, err := t.tx.Exec(ctx, `UPDATE memberships SET role = $3 WHERE tenant_id = $1 AND user_id = $2`, t.tenant.ID, userID, string(r)); err != nil {
		return fmt.Errorf("update role: %w", err)
	}
	return nil
}

func (t teamTx) DeleteMember(ctx context.Context, userID string) error {
	if _, err := t.tx.Exec(ctx, `DELETE FROM memberships WHERE tenant_id = $1 AND user_id = $2`, t.tenant.ID, userID); err != nil {
		return fmt.Errorf("delete membership: %w", err)
	}
	return nil
}

func (t teamTx) RevokeOpenInvite(ctx context.Context, email string, now time.Time) (string, error) {
	var id string
	err := t.tx.QueryRow(ctx, `UPDATE invites SET revoked_at = $3 WHERE tenant_id = $1 AND lower(email) = lower($2)
		AND accepted_at IS NULL AND revoked_at IS NULL RETURNING id::text`, t.tenant.ID, email, now).Scan(&id)
	if err != nil && !errors.Is(err, pgx.ErrNoRows) {
		return "", fmt.Errorf("revoke previous invite: %w", err)
	}
	return id, nil
}

func (t teamTx) InsertInvite(ctx context.Context, in team.NewInvite) (team.Invite, error) {
	inv, err := scanInvite(t.tx.QueryRow(ctx, `INSERT INTO invites (tenant_id, email, role, token_hash, invited_by, created_at, expires_at)
		VALUES ($1, $2, $3, $4, $5, $6, $7) RETURNING `+inviteCols,
		t.tenant.ID, in.Email, string(in.Role), in.TokenHash, nullIfEmpty(in.InvitedBy), in.CreatedAt, in.ExpiresAt))
	if err != nil {
		return inv, fmt.Errorf("insert invite: %w", err)
	}
	return inv, nil
}

func (t teamTx) RevokeInvite(ctx context.Context, inviteID string, now time.Time) (team.Invite, error) {
	if !validUUID(inviteID) {
		return team.Invite{}, ErrNotFound
	}
	return scanInvite(t.tx.QueryRow(ctx, `UPDATE invites SET revoked_at = $3 WHERE id = $1 AND tenant_id = $2
		AND accepted_at IS NULL AND revoked_at IS NULL RETURNING `+inviteCols, inviteID, t.tenant.ID, now))
}

func (t teamTx) LockInvite(ctx context.Context, inviteID string) (team.Invite, error) {
	if !validUUID(inviteID) {
		return team.Invite{}, ErrNotFound
	}
	return scanInvite(t.tx.QueryRow(ctx, `SELECT `+inviteCols+` FROM invites WHERE id = $1 AND tenant_id = $2 FOR UPDATE`, inviteID, t.tenant.ID))
}

func (t teamTx) MarkInviteAccepted(ctx context.Context, inviteID, userID string, now time.Time) error {
	if _, err := t.tx.Exec(ctx, `UPDATE invites SET accepted_at = $2, accepted_by = $3 WHERE id = $1`, inviteID, now, userID); err != nil {
		return fmt.Errorf("mark invite accepted: %w", err)
	}
	return nil
}

const inviteCols = `id::text, tenant_id::text, email, role, COALESCE(invited_by::text, ''), created_at, expires_at, accepted_at, revoked_at`

func scanInvite(row pgx.Row) (team.Invite, error) {
	var i team.Invite
	err := row.Scan(&i.ID, &i.TenantID, &i.Email, &i.Role, &i.InvitedBy, &i.CreatedAt, &i.ExpiresAt, &i.AcceptedAt, &i.RevokedAt)
	if errors.Is(err, pgx.ErrNoRows) {
		return i, ErrNotFound
	}
	return i, err
}

// PendingInvites lists a tenant's open, unexpired invites, newest first.
func (s *Store) PendingInvites(ctx context.Context, tenantID string, now time.Time, limit, offset int) ([]team.Invite, int, error) {
	const cond = ` FROM invites WHERE tenant_id = $1 AND accepted_at IS NULL AND revoked_at IS NULL AND expires_at > $2`
	var total int
	if err := s.pool.QueryRow(ctx, `SELECT count(*)`+cond, tenantID, now).Scan(&total); err != nil {
		return nil, 0, err
	}
	rows, err := s.pool.Query(ctx, `SELECT `+inviteCols+cond+` ORDER BY created_at DESC, id LIMIT $3 OFFSET $4`, tenantID, now, limit, offset)
	if err != nil {
		return nil, 0, err
	}
	defer rows.Close()
	var out []team.Invite
	for rows.Next() {
		i, err := scanInvite(rows)
		if err != nil {
			return nil, 0, err
		}
		out = append(out, i)
	}
	return out, total, rows.Err()
}

// HasOpenInvite reports whether an open, unexpired invite exists for email.
func (s *Store) HasOpenInvite(ctx context.Context, email string, now time.Time) (bool, error) {
	if !validText(email) {
		return false, nil
	}
	var ok bool
	err := s.pool.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM invites WHERE lower(email) = lower($1)
		AND accepted_at IS NULL AND revoked_at IS NULL AND expires_at > $2)`, email, now).Scan(&ok)
	return ok, err
}
