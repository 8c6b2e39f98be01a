package team

// An in-memory team.Store for the service tests (a test double, not a second
// implementation): one mutex plays the tenant row lock, and a failed unit of
// work is rolled back by restoring a copy of the state taken before it.

import (
	"context"
	"fmt"
	"maps"
	"strings"
	"sync"
	"time"

	"trueportai/services/internal/role"
	"trueportai/services/platform-backend/internal/audit"
	"trueportai/services/platform-backend/internal/billing"
)

type fakeInvite struct {
	Invite
	hash string
}

type fakeState struct {
	tenants map[string]Locked
	members map[string]map[string]Member // tenant id → user id → member
	invites map[string]fakeInvite        // id → invite
	audit   []audit.Entry
	nextID  int
}

func (s fakeState) clone() fakeState {
	c := fakeState{tenants: maps.Clone(s.tenants), members: map[string]map[string]Member{}, invites: maps.Clone(s.invites),
		audit: append([]audit.Entry(nil), s.audit...), nextID: s.nextID}
	for t, m := range s.members {
		c.members[t] = maps.Clone(m)
	}
	return c
}

type fakeStore struct {
	mu sync.Mutex // the "row lock": held for a whole unit of work
	st fakeState
}

func newFakeStore() *fakeStore {
	return &fakeStore{st: fakeState{tenants: map[string]Locked{}, members: map[string]map[string]Member{}, invites: map[string]fakeInvite{}}}
}

var free = billing.Plan{ID: "free", MaxMembers: 3, MaxAPIKeys: 3, RetentionDays: 7}

// addTenant creates a tenant on plan with the given members (user id = email
// before the @, for readable tests).
func (f *fakeStore) addTenant(id string, plan billing.Plan, members map[string]role.Role) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.st.tenants[id] = Locked{Tenant: Tenant{ID: id, Name: "Tenant " + id, Slug: id, Status: StatusActive, PlanID: plan.ID}, Plan: plan}
	f.st.members[id] = map[string]Member{}
	for uid, r := range members {
		f.st.members[id][uid] = Member{UserID: uid, Email: uid + "@x.example", Name: uid, Role: r}
	}
}

func (f *fakeStore) setStatus(id, status string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	l := f.st.tenants[id]
	l.Status = status
	f.st.tenants[id] = l
}

func (f *fakeStore) roleOf(tenantID, userID string) role.Role {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.st.members[tenantID][userID].Role
}

func (f *fakeStore) auditLog() []audit.Entry {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]audit.Entry(nil), f.st.audit...)
}

func (f *fakeStore) openInvites(tenantID string) []Invite {
	f.mu.Lock()
	defer f.mu.Unlock()
	var out []Invite
	for _, i := range f.st.invites {
		if i.TenantID == tenantID && i.AcceptedAt == nil && i.RevokedAt == nil {
			out = append(out, i.Invite)
		}
	}
	return out
}

func (f *fakeStore) WithTenantLocked(ctx context.Context, tenantID string, fn func(Tx) error) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if _, ok := f.st.tenants[tenantID]; !ok {
		return ErrNotFound
	}
	saved := f.st.clone()
	if err := fn(&fakeTx{f: f, id: tenantID}); err != nil {
		f.st = saved
		return err
	}
	return nil
}

func (f *fakeStore) InviteByTokenHash(ctx context.Context, hash string) (Invite, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	for _, i := range f.st.invites {
		if i.hash == hash {
			return i.Invite, nil
		}
	}
	return Invite{}, ErrNotFound
}

// fakeTx runs with f.mu held.
type fakeTx struct {
	f  *fakeStore
	id string
}

func (t *fakeTx) Tenant() Locked { return t.f.st.tenants[t.id] }

func (t *fakeTx) Member(_ context.Context, userID string) (Member, error) {
	m, ok := t.f.st.members[t.id][userID]
	if !ok {
		return m, ErrNotFound
	}
	return m, nil
}

func (t *fakeTx) CountOwners(context.Context) (int64, error) {
	var n int64
	for _, m := range t.f.st.members[t.id] {
		if m.Role == role.Owner {
			n++
		}
	}
	return n, nil
}

func (t *fakeTx) CountMembers(context.Context) (int64, error) {
	return int64(len(t.f.st.members[t.id])), nil
}

func (t *fakeTx) HasMemberWithEmail(_ context.Context, email string) (bool, error) {
	for _, m := range t.f.st.members[t.id] {
		if strings.EqualFold(m.Email, email) {
			return true, nil
		}
	}
	return false, nil
}

func (t *fakeTx) CountOpenInvites(_ context.Context, now time.Time, except string) (int64, error) {
	var n int64
	for _, i := range t.f.st.invites {
		if i.TenantID == t.id && i.AcceptedAt == nil && i.RevokedAt == nil && i.ExpiresAt.After(now) && !strings.EqualFold(i.Email, except) {
			n++
		}
	}
	return n, nil
}

func (t *fakeTx) AddMember(_ context.Context, userID string, r role.Role) error {
	t.f.st.members[t.id][userID] = Member{UserID: userID, Email: userID + "@x.example", Name: userID, Role: r}
	return nil
}

func (t *fakeTx) SetRole(_ context.Context, userID string, r role.Role) error {
	m := t.f.st.members[t.id][userID]
	m.Role = r
	t.f.st.members[t.id][userID] = m
	return nil
}

func (t *fakeTx) DeleteMember(_ context.Context, userID string) error {
	delete(t.f.st.members[t.id], userID)
	return nil
}

func (t *fakeTx) RevokeOpenInvite(_ context.Context, email string, now time.Time) (string, error) {
	for id, i := range t.f.st.invites {
		if i.TenantID == t.id && strings.EqualFold(i.Email, email) && i.AcceptedAt == nil && i.RevokedAt == nil {
			i.RevokedAt = &now
			t.f.st.invites[id] = i
			return id, nil
		}
	}
	return "", nil
}

func (t *fakeTx) InsertInvite(_ context.Context, in NewInvite) (Invite, error) {
	t.f.st.nextID++
	inv := Invite{ID: fmt.Sprintf("inv-%d", t.f.st.nextID), TenantID: in.TenantID, Email: in.Email, Role: in.Role,
		InvitedBy: in.InvitedBy, CreatedAt: in.CreatedAt, ExpiresAt: in.ExpiresAt}
	t.f.st.invites[inv.ID] = fakeInvite{Invite: inv, hash: in.TokenHash}
	return inv, nil
}

func (t *fakeTx) RevokeInvite(_ context.Context, id string, now time.Time) (Invite, error) {
	i, ok := t.f.st.invites[id]
	if !ok || i.TenantID != t.id || i.AcceptedAt != nil || i.RevokedAt != nil {
		return Invite{}, ErrNotFound
	}
	i.RevokedAt = &now
	t.f.st.invites[id] = i
	return i.Invite, nil
}

func (t *fakeTx) LockInvite(_ context.Context, id string) (Invite, error) {
	i, ok := t.f.st.invites[id]
	if !ok || i.TenantID != t.id {
		return Invite{}, ErrNotFound
	}
	return i.Invite, nil
}

func (t *fakeTx) MarkInviteAccepted(_ context.Context, id, _ string, now time.Time) error {
	i := t.f.st.invites[id]
	i.AcceptedAt = &now
	t.f.st.invites[id] = i
	return nil
}

func (t *fakeTx) Audit(_ context.Context, e audit.Entry) error {
	t.f.st.audit = append(t.f.st.audit, e)
	return nil
}

var (
	_ Store = (*fakeStore)(nil)
	_ Tx    = (*fakeTx)(nil)
)
