// Package team owns organisations (tenants) as groups of people: their
// memberships and roles, invites, and the rules about who may change what.
//
//   - An organisation always keeps at least one owner: the last owner cannot
//     leave, be removed or be demoted (ErrLastOwner).
//   - Removing someone else needs admin or higher; anyone may leave. Only an
//     owner removes an owner (ErrOwnerProtected).
//   - Changing a role needs admin or higher; only an owner grants or revokes
//     the owner role (ErrOwnerRequired); setting the current role again is a
//     no-op.
//   - Inviting needs admin or higher; only an owner invites an owner. Seats
//     (members plus open, unexpired invites) stay within the plan's
//     max_members (billing.CheckMembers). An invite is accepted once, by the
//     address it was sent to, before it expires, while the organisation is
//     active and has a free seat.
//
// The rules are plain functions (rules.go). Service evaluates them with data
// read inside the transaction that holds the tenant's row lock
// (Store.WithTenantLocked), the same transaction that makes the change, so
// two concurrent requests cannot both pass a check that only one of them may
// pass (two last owners leaving at once: one succeeds, one gets
// ErrLastOwner).
package team

import (
	"errors"
	"time"

	"trueportai/services/internal/role"
	"trueportai/services/platform-backend/internal/billing"
)

// Tenant statuses.
const (
	StatusActive    = "active"
	StatusSuspended = "suspended"
)

// Tenant is an organisation.
type Tenant struct {
	ID        string
	Name      string
	Slug      string
	Status    string
	PlanID    string
	CreatedAt time.Time
}

// Membership is a tenant with one user's role in it.
type Membership struct {
	Tenant
	Role role.Role
}

// Member is a user's membership in a tenant.
type Member struct {
	UserID   string
	Email    string
	Name     string
	Role     role.Role
	JoinedAt time.Time
}

// Invite is an invitation to join a tenant.
type Invite struct {
	ID         string
	TenantID   string
	Email      string
	Role       role.Role
	InvitedBy  string
	CreatedAt  time.Time
	ExpiresAt  time.Time
	AcceptedAt *time.Time
	RevokedAt  *time.Time
}

// NewInvite is what an invite is stored as; TokenHash is HashInviteToken of
// the mailed token (the token itself is never stored).
type NewInvite struct {
	TenantID  string
	Email     string
	Role      role.Role
	TokenHash string
	InvitedBy string // user id
	CreatedAt time.Time
	ExpiresAt time.Time
}

// Locked is the tenant row and its plan, read with the tenant's row lock.
type Locked struct {
	Tenant
	Plan billing.Plan
}

// Rule violations and lookups.
var (
	// ErrNotFound: no such tenant, member or invite.
	ErrNotFound            = errors.New("not found")
	ErrInvalidRole         = errors.New("role must be one of viewer, member, admin, owner")
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
