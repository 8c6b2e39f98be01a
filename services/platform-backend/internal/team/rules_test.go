package team

import (
	"errors"
	"testing"
	"time"

	"trueportai/services/internal/role"
)

const (
	viewer = role.Viewer
	member = role.Member
	admin  = role.Admin
	owner  = role.Owner
)

func TestCheckRemove(t *testing.T) {
	tests := []struct {
		name   string
		actor  role.Role
		self   bool
		target role.Role
		owners int64
		want   error
	}{
		// Leaving: any role, except the last owner.
		{"viewer leaves", viewer, true, viewer, 1, nil},
		{"member leaves", member, true, member, 1, nil},
		{"admin leaves", admin, true, admin, 1, nil},
		{"owner leaves with another owner", owner, true, owner, 2, nil},
		{"last owner leaves", owner, true, owner, 1, ErrLastOwner},
		// Removing someone else: admin or higher.
		{"viewer removes member", viewer, false, member, 1, ErrInsufficientRole},
		{"member removes viewer", member, false, viewer, 1, ErrInsufficientRole},
		{"member removes owner", member, false, owner, 2, ErrInsufficientRole},
		{"admin removes viewer", admin, false, viewer, 1, nil},
		{"admin removes member", admin, false, member, 1, nil},
		{"admin removes admin", admin, false, admin, 1, nil},
		{"owner removes admin", owner, false, admin, 1, nil},
		// Owners: only by owners, and one always stays.
		{"admin removes owner", admin, false, owner, 2, ErrOwnerProtected},
		{"admin removes last owner", admin, false, owner, 1, ErrOwnerProtected},
		{"owner removes owner", owner, false, owner, 2, nil},
		{"owner removes owner of three", owner, false, owner, 3, nil},
		// A count of one means the target is the last owner (the actor is
		// then not an owner, or is the target).
		{"owner removes the last owner", owner, false, owner, 1, ErrLastOwner},
		// An unknown role (never stored; CHECK constraint) acts as nothing.
		{"unknown role removes viewer", "root", false, viewer, 1, ErrInsufficientRole},
		{"unknown role leaves", "root", true, "root", 1, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := CheckRemove(tt.actor, tt.self, tt.target, tt.owners); !errors.Is(got, tt.want) || (tt.want == nil && got != nil) {
				t.Errorf("CheckRemove(%s, self=%v, %s, owners=%d) = %v, want %v", tt.actor, tt.self, tt.target, tt.owners, got, tt.want)
			}
		})
	}
}

func TestCheckRoleChange(t *testing.T) {
	tests := []struct {
		name        string
		actor       role.Role
		from, to    role.Role
		owners      int64
		wantChanged bool
		want        error
	}{
		{"invalid target role", owner, member, "superuser", 2, false, ErrInvalidRole},
		{"empty target role", owner, member, "", 2, false, ErrInvalidRole},
		{"invalid role beats a low actor", viewer, member, "god", 1, false, ErrInvalidRole},
		{"viewer changes", viewer, member, admin, 1, false, ErrInsufficientRole},
		{"member changes", member, viewer, member, 1, false, ErrInsufficientRole},
		{"member sets the same role", member, viewer, viewer, 1, false, ErrInsufficientRole},
		{"admin promotes viewer to member", admin, viewer, member, 1, true, nil},
		{"admin promotes member to admin", admin, member, admin, 1, true, nil},
		{"admin demotes admin to viewer", admin, admin, viewer, 1, true, nil},
		{"admin sets the same role", admin, member, member, 1, false, nil},
		{"admin sets an owner's role to owner (no-op)", admin, owner, owner, 1, false, nil},
		{"admin promotes to owner", admin, member, owner, 1, false, ErrOwnerRequired},
		{"admin promotes self to owner", admin, admin, owner, 1, false, ErrOwnerRequired},
		{"admin demotes an owner", admin, owner, admin, 2, false, ErrOwnerRequired},
		{"owner promotes to owner", owner, admin, owner, 1, true, nil},
		{"owner demotes an owner", owner, owner, member, 2, true, nil},
		{"owner demotes the last owner", owner, owner, admin, 1, false, ErrLastOwner},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			changed, err := CheckRoleChange(tt.actor, tt.from, tt.to, tt.owners)
			if changed != tt.wantChanged || !errors.Is(err, tt.want) || (tt.want == nil && err != nil) {
				t.Errorf("CheckRoleChange(%s, %s → %s, owners=%d) = %v, %v; want %v, %v",
					tt.actor, tt.from, tt.to, tt.owners, changed, err, tt.wantChanged, tt.want)
			}
		})
	}
}

func TestCheckInvite(t *testing.T) {
	tests := []struct {
		actor, invited role.Role
		want           error
	}{
		{owner, "boss", ErrInvalidRole},
		{viewer, viewer, ErrInsufficientRole},
		{member, viewer, ErrInsufficientRole},
		{admin, viewer, nil},
		{admin, member, nil},
		{admin, admin, nil},
		{admin, owner, ErrOwnerRequired},
		{owner, owner, nil},
		{owner, admin, nil},
	}
	for _, tt := range tests {
		if got := CheckInvite(tt.actor, tt.invited); !errors.Is(got, tt.want) || (tt.want == nil && got != nil) {
			t.Errorf("CheckInvite(%s, %s) = %v, want %v", tt.actor, tt.invited, got, tt.want)
		}
	}
}

func TestCheckAcceptable(t *testing.T) {
	now := time.Date(2026, 12, 6, 12, 0, 0, 0, time.UTC)
	earlier := now.Add(-time.Hour)
	open := Invite{ExpiresAt: now.Add(time.Minute)}
	with := func(f func(*Invite)) Invite { i := open; f(&i); return i }
	tests := []struct {
		name   string
		inv    Invite
		status string
		want   error
	}{
		{"open", open, StatusActive, nil},
		{"accepted", with(func(i *Invite) { i.AcceptedAt = &earlier }), StatusActive, ErrInviteUsed},
		{"revoked", with(func(i *Invite) { i.RevokedAt = &earlier }), StatusActive, ErrInviteRevoked},
		{"accepted beats revoked", with(func(i *Invite) { i.AcceptedAt, i.RevokedAt = &earlier, &earlier }), StatusActive, ErrInviteUsed},
		{"expires now", with(func(i *Invite) { i.ExpiresAt = now }), StatusActive, ErrInviteExpired},
		{"expired", with(func(i *Invite) { i.ExpiresAt = earlier }), StatusActive, ErrInviteExpired},
		{"revoked beats expired", with(func(i *Invite) { i.RevokedAt, i.ExpiresAt = &earlier, earlier }), StatusActive, ErrInviteRevoked},
		{"suspended tenant", open, StatusSuspended, ErrTenantSuspended},
		{"expired beats suspended", with(func(i *Invite) { i.ExpiresAt = earlier }), StatusSuspended, ErrInviteExpired},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := CheckAcceptable(tt.inv, now, tt.status); !errors.Is(got, tt.want) || (tt.want == nil && got != nil) {
				t.Errorf("CheckAcceptable = %v, want %v", got, tt.want)
			}
		})
	}
}

func TestAddressedTo(t *testing.T) {
	inv := Invite{Email: "alice@x.example"}
	for email, want := range map[string]bool{"alice@x.example": true, "Alice@X.Example": true, "bob@x.example": false, "alice@x.example ": false, "": false} {
		if got := AddressedTo(inv, email); got != want {
			t.Errorf("AddressedTo(%q) = %v, want %v", email, got, want)
		}
	}
}

func TestSlugProblem(t *testing.T) {
	for slug, want := range map[string]string{
		"acme": "", "tenant-a": "", "a1b": "", "abc-def-123": "",
		"ab": SlugInvalid, "Acme": SlugInvalid, "-acme": SlugInvalid, "acme-": SlugInvalid, "ac--me": SlugInvalid,
		"ac_me": SlugInvalid, "": SlugInvalid, "a23456789012345678901234567890123456789012": SlugInvalid,
		"admin": SlugReserved, "api": SlugReserved, "trueportai": SlugReserved, "billing": SlugReserved,
	} {
		if got := SlugProblem(slug); got != want {
			t.Errorf("SlugProblem(%q) = %q, want %q", slug, got, want)
		}
	}
}

func TestInviteToken(t *testing.T) {
	tok, hash, err := NewInviteToken()
	if err != nil {
		t.Fatal(err)
	}
	if len(tok) != 43 || len(hash) != 64 || HashInviteToken(tok) != hash {
		t.Errorf("token %q (%d), hash %q", tok, len(tok), hash)
	}
	if tok2, _, _ := NewInviteToken(); tok2 == tok {
		t.Error("two tokens are equal")
	}
}
