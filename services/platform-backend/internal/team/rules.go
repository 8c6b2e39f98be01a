package team

import (
	"regexp"
	"strings"
	"time"

	"trueportai/services/internal/role"
)

// InviteTTL is how long an invite can be accepted.
const InviteTTL = 7 * 24 * time.Hour

// CheckRemove decides whether actor may remove a member whose role is target;
// self is true when the actor is that member (leaving). owners is the
// organisation's owner count, consulted only when target is an owner.
func CheckRemove(actor role.Role, self bool, target role.Role, owners int64) error {
	if !self && !actor.AtLeast(role.Admin) {
		return ErrInsufficientRole
	}
	if target == role.Owner {
		if !self && actor != role.Owner {
			return ErrOwnerProtected
		}
		if owners <= 1 {
			return ErrLastOwner
		}
	}
	return nil
}

// CheckRoleChange decides whether actor may change a member's role from to
// to; changed is false (and err nil) when the role stays the same. owners is
// the organisation's owner count, consulted only when from is owner.
func CheckRoleChange(actor, from, to role.Role, owners int64) (changed bool, err error) {
	if !to.Valid() {
		return false, ErrInvalidRole
	}
	if !actor.AtLeast(role.Admin) {
		return false, ErrInsufficientRole
	}
	if from == to {
		return false, nil
	}
	if (from == role.Owner || to == role.Owner) && actor != role.Owner {
		return false, ErrOwnerRequired
	}
	if from == role.Owner && owners <= 1 {
		return false, ErrLastOwner
	}
	return true, nil
}

// CheckInvite decides whether actor may invite someone as invited.
func CheckInvite(actor, invited role.Role) error {
	if !invited.Valid() {
		return ErrInvalidRole
	}
	if !actor.AtLeast(role.Admin) {
		return ErrInsufficientRole
	}
	if invited == role.Owner && actor != role.Owner {
		return ErrOwnerRequired
	}
	return nil
}

// AddressedTo reports whether inv was sent to email (case-insensitive).
func AddressedTo(inv Invite, email string) bool { return strings.EqualFold(inv.Email, email) }

// CheckAcceptable decides whether inv can be accepted at now into a tenant
// whose status is tenantStatus (the seat and membership checks come after).
func CheckAcceptable(inv Invite, now time.Time, tenantStatus string) error {
	switch {
	case inv.AcceptedAt != nil:
		return ErrInviteUsed
	case inv.RevokedAt != nil:
		return ErrInviteRevoked
	case !now.Before(inv.ExpiresAt):
		return ErrInviteExpired
	case tenantStatus != StatusActive:
		return ErrTenantSuspended
	}
	return nil
}

var slugRE = regexp.MustCompile(`^[a-z0-9](-?[a-z0-9]){2,39}$`)

// reservedSlugs cannot be used by tenants (routes, brand, infrastructure).
var reservedSlugs = map[string]bool{
	"admin": true, "api": true, "app": true, "www": true, "platform": true, "gateway": true, "trueport": true,
	"trueportai": true, "support": true, "help": true, "status": true, "billing": true, "login": true,
	"signup": true, "auth": true, "root": true, "system": true, "internal": true, "health": true, "metrics": true,
	"static": true, "docs": true, "mail": true, "security": true, "null": true, "undefined": true,
}

// Slug problems (SlugProblem).
const (
	SlugInvalid  = "invalid"
	SlugReserved = "reserved"
)

// SlugProblem returns why slug cannot name a tenant ("" if it can, ignoring
// uniqueness): SlugInvalid unless it is 3-40 lowercase letters, digits or
// single inner hyphens, SlugReserved for names the platform keeps.
func SlugProblem(slug string) string {
	switch {
	case !slugRE.MatchString(slug):
		return SlugInvalid
	case reservedSlugs[slug]:
		return SlugReserved
	}
	return ""
}
