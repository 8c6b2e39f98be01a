package team

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"time"

	"trueportai/services/internal/role"
	"trueportai/services/platform-backend/internal/audit"
	"trueportai/services/platform-backend/internal/billing"
)

// Store is what the team rules need from persistence (store.TeamStore).
type Store interface {
	// WithTenantLocked runs fn in one transaction holding the tenant's row
	// lock (every membership and plan change takes it first, so they
	// serialise per tenant). An error from fn rolls everything back and is
	// returned as is; ErrNotFound when there is no such tenant.
	WithTenantLocked(ctx context.Context, tenantID string, fn func(Tx) error) error
	// InviteByTokenHash finds an invite by HashInviteToken of its token.
	InviteByTokenHash(ctx context.Context, tokenHash string) (Invite, error)
}

// Tx is a tenant locked by Store.WithTenantLocked: reads see the data the
// lock protects, writes commit together. Lookups return ErrNotFound.
type Tx interface {
	Tenant() Locked
	Member(ctx context.Context, userID string) (Member, error)
	CountOwners(ctx context.Context) (int64, error)
	CountMembers(ctx context.Context) (int64, error)
	HasMemberWithEmail(ctx context.Context, email string) (bool, error)
	// CountOpenInvites counts open (not accepted, not revoked), unexpired
	// invites, leaving out those addressed to exceptEmail.
	CountOpenInvites(ctx context.Context, now time.Time, exceptEmail string) (int64, error)
	AddMember(ctx context.Context, userID string, r role.Role) error
	SetRole(ctx context.Context, userID string, r role.Role) error
	DeleteMember(ctx context.Context, userID string) error
	// RevokeOpenInvite revokes the open invite addressed to email and
	// returns its id ("" when there was none).
	RevokeOpenInvite(ctx context.Context, email string, now time.Time) (string, error)
	InsertInvite(ctx context.Context, in NewInvite) (Invite, error)
	// RevokeInvite revokes an open invite of the tenant (ErrNotFound when
	// there is none with that id).
	RevokeInvite(ctx context.Context, inviteID string, now time.Time) (Invite, error)
	// LockInvite reads an invite of the tenant and locks it.
	LockInvite(ctx context.Context, inviteID string) (Invite, error)
	MarkInviteAccepted(ctx context.Context, inviteID, userID string, now time.Time) error
	Audit(ctx context.Context, e audit.Entry) error
}

// Service runs membership changes and invites.
type Service struct {
	st  Store
	now func() time.Time
}

// NewService returns the team service.
func NewService(st Store, now func() time.Time) *Service { return &Service{st: st, now: now} }

// actorRole is the actor's current role in the locked tenant;
// ErrInsufficientRole when the actor is no longer a member.
func actorRole(ctx context.Context, tx Tx, a audit.Actor) (role.Role, error) {
	m, err := tx.Member(ctx, a.UserID)
	if errors.Is(err, ErrNotFound) {
		return "", ErrInsufficientRole
	}
	return m.Role, err
}

// ownersIf counts the owners when the rule will look at them.
func ownersIf(ctx context.Context, tx Tx, needed bool) (int64, error) {
	if !needed {
		return 0, nil
	}
	return tx.CountOwners(ctx)
}

// RemoveMember removes targetID from the tenant (CheckRemove) and returns
// the removed member.
func (s *Service) RemoveMember(ctx context.Context, tenantID string, actor audit.Actor, targetID string) (Member, error) {
	var m Member
	err := s.st.WithTenantLocked(ctx, tenantID, func(tx Tx) error {
		who, err := actorRole(ctx, tx, actor)
		if err != nil {
			return err
		}
		if m, err = tx.Member(ctx, targetID); err != nil {
			return err
		}
		self := actor.UserID == m.UserID
		owners, err := ownersIf(ctx, tx, m.Role == role.Owner)
		if err != nil {
			return err
		}
		if err := CheckRemove(who, self, m.Role, owners); err != nil {
			return err
		}
		if err := tx.DeleteMember(ctx, m.UserID); err != nil {
			return err
		}
		action := audit.MemberRemove
		if self {
			action = audit.MemberLeave
		}
		return tx.Audit(ctx, audit.Entry{Actor: actor, Action: action, TargetType: "user", TargetID: m.UserID, TenantID: tenantID,
			Details: map[string]any{"email": m.Email, "role": m.Role}})
	})
	return m, err
}

// ChangeRole sets targetID's role to to (CheckRoleChange). It returns the
// member after the change and the previous role (equal to to when nothing
// changed; then nothing is written).
func (s *Service) ChangeRole(ctx context.Context, tenantID string, actor audit.Actor, targetID string, to role.Role) (Member, role.Role, error) {
	if !to.Valid() {
		return Member{}, "", ErrInvalidRole
	}
	var m Member
	var old role.Role
	err := s.st.WithTenantLocked(ctx, tenantID, func(tx Tx) error {
		who, err := actorRole(ctx, tx, actor)
		if err != nil {
			return err
		}
		if m, err = tx.Member(ctx, targetID); err != nil {
			return err
		}
		old = m.Role
		owners, err := ownersIf(ctx, tx, old == role.Owner && old != to)
		if err != nil {
			return err
		}
		changed, err := CheckRoleChange(who, old, to, owners)
		if err != nil || !changed {
			return err
		}
		if err := tx.SetRole(ctx, m.UserID, to); err != nil {
			return err
		}
		m.Role = to
		return tx.Audit(ctx, audit.Entry{Actor: actor, Action: audit.MemberRoleChange, TargetType: "user", TargetID: m.UserID, TenantID: tenantID,
			Details: map[string]any{"email": m.Email, "from": old, "to": to}})
	})
	return m, old, err
}

// InviteRequest asks for an invite of Email (normalised by the caller) as Role.
type InviteRequest struct {
	TenantID string
	Email    string
	Role     role.Role
}

// CreateInvite invites req.Email (CheckInvite, not a member yet, a free seat
// counting open invites; an open invite for the same address is replaced and
// takes no extra seat). The invite expires after InviteTTL. deliver gets the
// stored invite and its token before the transaction commits: if delivery
// fails nothing is kept.
func (s *Service) CreateInvite(ctx context.Context, req InviteRequest, actor audit.Actor, deliver func(inv Invite, token string) error) (Invite, error) {
	if !req.Role.Valid() {
		return Invite{}, ErrInvalidRole
	}
	tok, hash, err := NewInviteToken()
	if err != nil {
		return Invite{}, err
	}
	now := s.now().UTC()
	var inv Invite
	err = s.st.WithTenantLocked(ctx, req.TenantID, func(tx Tx) error {
		who, err := actorRole(ctx, tx, actor)
		if err != nil {
			return err
		}
		if err := CheckInvite(who, req.Role); err != nil {
			return err
		}
		isMember, err := tx.HasMemberWithEmail(ctx, req.Email)
		if err != nil {
			return err
		}
		if isMember {
			return ErrAlreadyMember
		}
		members, err := tx.CountMembers(ctx)
		if err != nil {
			return err
		}
		pending, err := tx.CountOpenInvites(ctx, now, req.Email)
		if err != nil {
			return err
		}
		if err := billing.CheckMembers(tx.Tenant().Plan, members+pending, 1); err != nil {
			return err
		}
		replaced, err := tx.RevokeOpenInvite(ctx, req.Email, now)
		if err != nil {
			return err
		}
		inv, err = tx.InsertInvite(ctx, NewInvite{TenantID: req.TenantID, Email: req.Email, Role: req.Role, TokenHash: hash,
			InvitedBy: actor.UserID, CreatedAt: now, ExpiresAt: now.Add(InviteTTL)})
		if err != nil {
			return err
		}
		details := map[string]any{"email": req.Email, "role": req.Role}
		if replaced != "" {
			details["replaced_invite_id"] = replaced
		}
		if err := tx.Audit(ctx, audit.Entry{Actor: actor, Action: audit.InviteCreate, TargetType: "invite", TargetID: inv.ID,
			TenantID: req.TenantID, Details: details}); err != nil {
			return err
		}
		return deliver(inv, tok)
	})
	return inv, err
}

// RevokeInvite revokes an open invite of the tenant.
func (s *Service) RevokeInvite(ctx context.Context, tenantID, inviteID string, actor audit.Actor) (Invite, error) {
	var inv Invite
	err := s.st.WithTenantLocked(ctx, tenantID, func(tx Tx) error {
		var err error
		if inv, err = tx.RevokeInvite(ctx, inviteID, s.now()); err != nil {
			return err
		}
		return tx.Audit(ctx, audit.Entry{Actor: actor, Action: audit.InviteRevoke, TargetType: "invite", TargetID: inv.ID,
			TenantID: tenantID, Details: map[string]any{"email": inv.Email, "role": inv.Role}})
	})
	return inv, err
}

// AcceptInvite makes user a member of the tenant of the invite with this
// token, with the invited role: the invite must be addressed to user's email
// (ErrInviteEmailMismatch), acceptable (CheckAcceptable), the user not a
// member yet and a seat free (billing.CheckMembers).
func (s *Service) AcceptInvite(ctx context.Context, token string, user audit.Actor) (Membership, error) {
	inv, err := s.st.InviteByTokenHash(ctx, HashInviteToken(token))
	if err != nil {
		return Membership{}, err
	}
	if !AddressedTo(inv, user.Email) {
		return Membership{}, ErrInviteEmailMismatch
	}
	now := s.now()
	var ms Membership
	err = s.st.WithTenantLocked(ctx, inv.TenantID, func(tx Tx) error {
		locked := tx.Tenant()
		var err error
		if inv, err = tx.LockInvite(ctx, inv.ID); err != nil {
			return err
		}
		if err := CheckAcceptable(inv, now, locked.Status); err != nil {
			return err
		}
		if _, err := tx.Member(ctx, user.UserID); err == nil {
			return ErrAlreadyMember
		} else if !errors.Is(err, ErrNotFound) {
			return err
		}
		members, err := tx.CountMembers(ctx)
		if err != nil {
			return err
		}
		if err := billing.CheckMembers(locked.Plan, members, 1); err != nil {
			return err
		}
		if err := tx.AddMember(ctx, user.UserID, inv.Role); err != nil {
			return err
		}
		if err := tx.MarkInviteAccepted(ctx, inv.ID, user.UserID, now); err != nil {
			return err
		}
		ms = Membership{Tenant: locked.Tenant, Role: inv.Role}
		return tx.Audit(ctx, audit.Entry{Actor: user, Action: audit.InviteAccept, TargetType: "user", TargetID: user.UserID, TenantID: inv.TenantID,
			Details: map[string]any{"invite_id": inv.ID, "role": inv.Role, "invited_by": inv.InvitedBy}})
	})
	return ms, err
}

// NewInviteToken returns a random 256-bit token (URL-safe) and
// HashInviteToken of it.
func NewInviteToken() (token, hash string, err error) {
	var b [32]byte
	if _, err := rand.Read(b[:]); err != nil {
		return "", "", fmt.Errorf("invite token: %w", err)
	}
	tok := base64.RawURLEncoding.EncodeToString(b[:])
	return tok, HashInviteToken(tok), nil
}

// HashInviteToken is the hex SHA-256 under which an invite token is stored.
func HashInviteToken(token string) string {
	sum := sha256.Sum256([]byte(token))
	return hex.EncodeToString(sum[:])
}
