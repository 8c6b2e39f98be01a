package store

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
)

// Team rule violations (membership changes run under a lock on the tenant row,
// so the rules hold under concurrent requests).
var (
	ErrLastOwner           = errors.New("the last owner cannot leave or be removed or demoted")
	ErrOwnerProtected      = errors.New("only an owner can remove an owner")
	ErrOwnerRequired       = errors.New("only an owner can grant or revoke the owner role")
	ErrInsufficientRole    = errors.New("the actor's role is too low")
	ErrAlreadyMember       = errors.New("already a member")
	ErrInviteEmailMismatch = errors.New("invite is for another email address")
	ErrInviteUsed          = errors.New("invite already accepted")
	ErrInviteRevoked       = errors.New("invite revoked")
	ErrInviteExpired       = errors.New("invite expired")
	ErrTenantSuspended     = errors.New("tenant suspended")
)

// LimitExceeded is one plan limit the tenant's usage is above.
type LimitExceeded struct {
	Limit   string // e.g. "max_members", "max_api_keys"
	Max     int64
	Current int64
}

// LimitError reports plan limits that an operation would exceed.
type LimitError struct {
	PlanID   string
	Exceeded []LimitExceeded
}

func (e *LimitError) Error() string {
	parts := make([]string, 0, len(e.Exceeded))
	for _, x := range e.Exceeded {
		parts = append(parts, fmt.Sprintf("%s %d > %d", x.Limit, x.Current, x.Max))
	}
	return "plan " + e.PlanID + " limits exceeded: " + strings.Join(parts, ", ")
}

// roleRank orders tenant roles (viewer < member < admin < owner).
var roleRank = map[string]int{"viewer": 1, "member": 2, "admin": 3, "owner": 4}

// lockTenant locks a tenant row for the rest of tx (every membership change
// takes this lock first, so they serialise per tenant) and returns its status
// and current plan.
func lockTenant(ctx context.Context, tx pgx.Tx, tenantID string) (string, Plan, error) {
	var status string
	var p Plan
	if !validUUID(tenantID) {
		return "", p, ErrNotFound
	}
	err := tx.QueryRow(ctx, `SELECT t.status, p.id, p.name, p.price_usd_month::float8, p.monthly_requests, p.max_api_keys, p.max_members,
		p.max_rpm_per_key, p.retention_days FROM tenants t JOIN plans p ON p.id = t.plan_id WHERE t.id = $1 FOR UPDATE OF t`, tenantID).
		Scan(&status, &p.ID, &p.Name, &p.PriceUSDMonth, &p.MonthlyRequests, &p.MaxAPIKeys, &p.MaxMembers, &p.MaxRPMPerKey, &p.RetentionDays)
	if errors.Is(err, pgx.ErrNoRows) {
		return "", p, ErrNotFound
	}
	return status, p, err
}

// member reads one membership with its user.
func member(ctx context.Context, q dbtx, tenantID, userID string) (Member, error) {
	var m Member
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

// actorRole is the actor's current role in the tenant (ErrInsufficientRole
// when the actor is no longer a member).
func actorRole(ctx context.Context, q dbtx, tenantID string, a Actor) (string, error) {
	m, err := member(ctx, q, tenantID, a.UserID)
	if errors.Is(err, ErrNotFound) {
		return "", ErrInsufficientRole
	}
	return m.Role, err
}

func countOwners(ctx context.Context, q dbtx, tenantID string) (int64, error) {
	var n int64
	err := q.QueryRow(ctx, `SELECT count(*) FROM memberships WHERE tenant_id = $1 AND role = 'owner'`, tenantID).Scan(&n)
	return n, err
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

// RemoveMember removes target from the tenant. The actor must be an admin or
// owner, or be the target (leaving); only an owner removes an owner, and the
// last owner stays.
func (s *Store) RemoveMember(ctx context.Context, tenantID string, actor Actor, targetID string) (Member, error) {
	var m Member
	err := pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		if _, _, err := lockTenant(ctx, tx, tenantID); err != nil {
			return err
		}
		role, err := actorRole(ctx, tx, tenantID, actor)
		if err != nil {
			return err
		}
		if m, err = member(ctx, tx, tenantID, targetID); err != nil {
			return err
		}
		self := actor.UserID == m.UserID
		if !self && roleRank[role] < roleRank["admin"] {
			return ErrInsufficientRole
		}
		if m.Role == "owner" {
			if !self && role != "owner" {
				return ErrOwnerProtected
			}
			owners, err := countOwners(ctx, tx, tenantID)
			if err != nil {
				return err
			}
			if owners <= 1 {
				return ErrLastOwner
			}
		}
		if _, err := tx.Exec(ctx, `DELETE FROM memberships WHERE tenant_id = $1 AND user_id = $2`, tenantID, m.UserID); err != nil {
			return fmt.Errorf("delete membership: %w", err)
		}
		action := AuditMemberRemove
		if self {
			action = AuditMemberLeave
		}
		return insertAudit(ctx, tx, AuditEntry{Actor: actor, Action: action, TargetType: "user", TargetID: m.UserID, TenantID: tenantID,
			Details: map[string]any{"email": m.Email, "role": m.Role}})
	})
	return m, err
}

// ChangeRole sets target's role. Only an owner grants or revokes the owner
// role, and the last owner cannot be demoted. It returns the member after the
// change and the previous role (equal to the new one when nothing changed;
// then nothing is written).
func (s *Store) ChangeRole(ctx context.Context, tenantID string, actor Actor, targetID, newRole string) (Member, string, error) {
	var m Member
	var old string
	err := pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		if _, _, err := lockTenant(ctx, tx, tenantID); err != nil {
			return err
		}
		role, err := actorRole(ctx, tx, tenantID, actor)
		if err != nil {
			return err
		}
		if m, err = member(ctx, tx, tenantID, targetID); err != nil {
			return err
		}
		if roleRank[role] < roleRank["admin"] {
			return ErrInsufficientRole
		}
		old = m.Role
		if old == newRole {
			return nil
		}
		if (old == "owner" || newRole == "owner") && role != "owner" {
			return ErrOwnerRequired
		}
		if old == "owner" {
			owners, err := countOwners(ctx, tx, tenantID)
			if err != nil {
				return err
			}
			if owners <= 1 {
				return ErrLastOwner
			}
		}
		if _, err := tx.Exec(ctx, `UPDATE memberships SET role = $3 WHERE tenant_id = $1 AND user_id = $2`, tenantID, m.UserID, newRole); err != nil {
			return fmt.Errorf("update role: %w", err)
		}
		m.Role = newRole
		return insertAudit(ctx, tx, AuditEntry{Actor: actor, Action: AuditMemberRoleChange, TargetType: "user", TargetID: m.UserID, TenantID: tenantID,
			Details: map[string]any{"email": m.Email, "from": old, "to": newRole}})
	})
	return m, old, err
}

// Invite is an invitation to join a tenant.
type Invite struct {
	ID         string
	TenantID   string
	Email      string
	Role       string
	InvitedBy  string
	CreatedAt  time.Time
	ExpiresAt  time.Time
	AcceptedAt *time.Time
	RevokedAt  *time.Time
}

const inviteCols = `id::text, tenant_id::text, email, role, COALESCE(invited_by::text, ''), created_at, expires_at, accepted_at, revoked_at`

func scanInvite(row pgx.Row) (Invite, error) {
	var i Invite
	err := row.Scan(&i.ID, &i.TenantID, &i.Email, &i.Role, &i.InvitedBy, &i.CreatedAt, &i.ExpiresAt, &i.AcceptedAt, &i.RevokedAt)
	if errors.Is(err, pgx.ErrNoRows) {
		return i, ErrNotFound
	}
	return i, err
}

// NewInvite is what CreateInvite stores; TokenHash is the hex SHA-256 of the
// mailed token (the token itself is never stored).
type NewInvite struct {
	TenantID  string
	Email     string
	Role      string
	TokenHash string
	ExpiresAt time.Time
}

// CreateInvite stores an invite (replacing an open one for the same address)
// and calls deliver before committing: if delivery fails nothing is kept.
// The tenant's seats (members plus open, unexpired invites) must stay within
// the plan's max_members.
func (s *Store) CreateInvite(ctx context.Context, in NewInvite, actor Actor, now time.Time, deliver func(Invite) error) (Invite, error) {
	var inv Invite
	err := pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		_, plan, err := lockTenant(ctx, tx, in.TenantID)
		if err != nil {
			return err
		}
		role, err := actorRole(ctx, tx, in.TenantID, actor)
		if err != nil {
			return err
		}
		if roleRank[role] < roleRank["admin"] {
			return ErrInsufficientRole
		}
		if in.Role == "owner" && role != "owner" {
			return ErrOwnerRequired
		}
		var isMember bool
		if err := tx.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM memberships m JOIN users u ON u.id = m.user_id
			WHERE m.tenant_id = $1 AND lower(u.email) = lower($2))`, in.TenantID, in.Email).Scan(&isMember); err != nil {
			return err
		}
		if isMember {
			return ErrAlreadyMember
		}
		var replaced string
		err = tx.QueryRow(ctx, `UPDATE invites SET revoked_at = $3 WHERE tenant_id = $1 AND lower(email) = lower($2)
			AND accepted_at IS NULL AND revoked_at IS NULL RETURNING id::text`, in.TenantID, in.Email, now).Scan(&replaced)
		if err != nil && !errors.Is(err, pgx.ErrNoRows) {
			return fmt.Errorf("revoke previous invite: %w", err)
		}
		var members, pending int64
		if err := tx.QueryRow(ctx, `SELECT (SELECT count(*) FROM memberships WHERE tenant_id = $1),
			(SELECT count(*) FROM invites WHERE tenant_id = $1 AND accepted_at IS NULL AND revoked_at IS NULL AND expires_at > $2)`,
			in.TenantID, now).Scan(&members, &pending); err != nil {
			return err
		}
		if members+pending+1 > plan.MaxMembers {
			return &LimitError{PlanID: plan.ID, Exceeded: []LimitExceeded{{Limit: "max_members", Max: plan.MaxMembers, Current: members + pending}}}
		}
		inv, err = scanInvite(tx.QueryRow(ctx, `INSERT INTO invites (tenant_id, email, role, token_hash, invited_by, created_at, expires_at)
			VALUES ($1, $2, $3, $4, $5, $6, $7) RETURNING `+inviteCols,
			in.TenantID, in.Email, in.Role, in.TokenHash, nullIfEmpty(actor.UserID), now, in.ExpiresAt))
		if err != nil {
			return fmt.Errorf("insert invite: %w", err)
		}
		details := map[string]any{"email": in.Email, "role": in.Role}
		if replaced != "" {
			details["replaced_invite_id"] = replaced
		}
		if err := insertAudit(ctx, tx, AuditEntry{Actor: actor, Action: AuditInviteCreate, TargetType: "invite", TargetID: inv.ID,
			TenantID: in.TenantID, Details: details}); err != nil {
			return err
		}
		return deliver(inv)
	})
	return inv, err
}

// PendingInvites lists a tenant's open, unexpired invites, newest first.
func (s *Store) PendingInvites(ctx context.Context, tenantID string, now time.Time, limit, offset int) ([]Invite, int, error) {
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
	var out []Invite
	for rows.Next() {
		i, err := scanInvite(rows)
		if err != nil {
			return nil, 0, err
		}
		out = append(out, i)
	}
	return out, total, rows.Err()
}

// RevokeInvite revokes an open invite of the tenant (ErrNotFound when there is
// none with that id, or it was accepted or revoked already).
func (s *Store) RevokeInvite(ctx context.Context, tenantID, inviteID string, actor Actor, now time.Time) (Invite, error) {
	var inv Invite
	if !validUUID(inviteID) {
		return inv, ErrNotFound
	}
	err := pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		var err error
		inv, err = scanInvite(tx.QueryRow(ctx, `UPDATE invites SET revoked_at = $3 WHERE id = $1 AND tenant_id = $2
			AND accepted_at IS NULL AND revoked_at IS NULL RETURNING `+inviteCols, inviteID, tenantID, now))
		if err != nil {
			return err
		}
		return insertAudit(ctx, tx, AuditEntry{Actor: actor, Action: AuditInviteRevoke, TargetType: "invite", TargetID: inv.ID,
			TenantID: tenantID, Details: map[string]any{"email": inv.Email, "role": inv.Role}})
	})
	return inv, err
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

// AcceptInvite makes u a member of the invite's tenant with the invited role.
// The invite must be addressed to u's email, open and unexpired, the tenant
// active, and a seat free under the plan's max_members.
func (s *Store) AcceptInvite(ctx context.Context, tokenHash string, u User, now time.Time) (TenantRole, Invite, error) {
	var tr TenantRole
	inv, err := scanInvite(s.pool.QueryRow(ctx, `SELECT `+inviteCols+` FROM invites WHERE token_hash = $1`, tokenHash))
	if err != nil {
		return tr, inv, err
	}
	if !strings.EqualFold(inv.Email, u.Email) {
		return tr, inv, ErrInviteEmailMismatch
	}
	err = pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		status, plan, err := lockTenant(ctx, tx, inv.TenantID)
		if err != nil {
			return err
		}
		if inv, err = scanInvite(tx.QueryRow(ctx, `SELECT `+inviteCols+` FROM invites WHERE id = $1 FOR UPDATE`, inv.ID)); err != nil {
			return err
		}
		switch {
		case inv.AcceptedAt != nil:
			return ErrInviteUsed
		case inv.RevokedAt != nil:
			return ErrInviteRevoked
		case !now.Before(inv.ExpiresAt):
			return ErrInviteExpired
		case status != "active":
			return ErrTenantSuspended
		}
		if _, err := member(ctx, tx, inv.TenantID, u.ID); err == nil {
			return ErrAlreadyMember
		} else if !errors.Is(err, ErrNotFound) {
			return err
		}
		members, err := countMembers(ctx, tx, inv.TenantID)
		if err != nil {
			return err
		}
		if members+1 > plan.MaxMembers {
			return &LimitError{PlanID: plan.ID, Exceeded: []LimitExceeded{{Limit: "max_members", Max: plan.MaxMembers, Current: members}}}
		}
		if _, err := tx.Exec(ctx, `INSERT INTO memberships (tenant_id, user_id, role) VALUES ($1, $2, $3)`, inv.TenantID, u.ID, inv.Role); err != nil {
			return fmt.Errorf("insert membership: %w", err)
		}
		if _, err := tx.Exec(ctx, `UPDATE invites SET accepted_at = $2, accepted_by = $3 WHERE id = $1`, inv.ID, now, u.ID); err != nil {
			return fmt.Errorf("mark invite accepted: %w", err)
		}
		inv.AcceptedAt = &now
		if tr.Tenant, err = scanTenant(tx.QueryRow(ctx, `SELECT `+tenantCols+` FROM tenants t WHERE t.id = $1`, inv.TenantID)); err != nil {
			return err
		}
		tr.Role = inv.Role
		return insertAudit(ctx, tx, AuditEntry{Actor: Actor{UserID: u.ID, Email: u.Email}, Action: AuditInviteAccept, TargetType: "user",
			TargetID: u.ID, TenantID: inv.TenantID, Details: map[string]any{"invite_id": inv.ID, "role": inv.Role, "invited_by": inv.InvitedBy}})
	})
	return tr, inv, err
}
