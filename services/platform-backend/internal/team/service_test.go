package team

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"trueportai/services/internal/role"
	"trueportai/services/platform-backend/internal/audit"
	"trueportai/services/platform-backend/internal/billing"
)

var t0 = time.Date(2026, 12, 6, 12, 0, 0, 0, time.UTC)

func actor(uid string) audit.Actor { return audit.Actor{UserID: uid, Email: uid + "@x.example"} }

func newService(f *fakeStore, now *time.Time) *Service {
	return NewService(f, func() time.Time { return *now })
}

func wantErr(t *testing.T, got, want error) {
	t.Helper()
	if want == nil && got != nil || !errors.Is(got, want) {
		t.Fatalf("err = %v, want %v", got, want)
	}
}

func TestRemoveMember(t *testing.T) {
	ctx := context.Background()
	tests := []struct {
		name       string
		actor      string
		target     string
		want       error
		wantAction string // audit action when it succeeds
	}{
		{"admin removes member", "ann", "mia", nil, audit.MemberRemove},
		{"viewer leaves", "vic", "vic", nil, audit.MemberLeave},
		{"viewer removes member", "vic", "mia", ErrInsufficientRole, ""},
		{"admin removes owner", "ann", "olga", ErrOwnerProtected, ""},
		{"last owner leaves", "olga", "olga", ErrLastOwner, ""},
		{"unknown target", "ann", "nobody", ErrNotFound, ""},
		{"actor no longer a member", "gone", "mia", ErrInsufficientRole, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFakeStore()
			f.addTenant("t1", free, map[string]role.Role{"olga": owner, "ann": admin, "mia": member, "vic": viewer})
			now := t0
			m, err := newService(f, &now).RemoveMember(ctx, "t1", actor(tt.actor), tt.target)
			wantErr(t, err, tt.want)
			log := f.auditLog()
			if tt.want != nil {
				if len(log) != 0 || (tt.target != "nobody" && f.roleOf("t1", tt.target) == "") {
					t.Errorf("a refused removal changed something: audit %v", log)
				}
				return
			}
			if m.UserID != tt.target || f.roleOf("t1", tt.target) != "" {
				t.Errorf("removed %+v; %s still has role %q", m, tt.target, f.roleOf("t1", tt.target))
			}
			if len(log) != 1 || log[0].Action != tt.wantAction || log[0].TargetID != tt.target || log[0].TenantID != "t1" || log[0].Actor.UserID != tt.actor {
				t.Errorf("audit = %+v", log)
			}
		})
	}
	t.Run("unknown tenant", func(t *testing.T) {
		now := t0
		_, err := newService(newFakeStore(), &now).RemoveMember(ctx, "t9", actor("ann"), "mia")
		wantErr(t, err, ErrNotFound)
	})
}

func TestChangeRole(t *testing.T) {
	ctx := context.Background()
	f := newFakeStore()
	f.addTenant("t1", free, map[string]role.Role{"olga": owner, "ann": admin, "mia": member})
	now := t0
	s := newService(f, &now)

	_, _, err := s.ChangeRole(ctx, "t1", actor("olga"), "mia", "superuser")
	wantErr(t, err, ErrInvalidRole)
	_, _, err = s.ChangeRole(ctx, "t1", actor("ann"), "mia", owner)
	wantErr(t, err, ErrOwnerRequired)
	_, _, err = s.ChangeRole(ctx, "t1", actor("olga"), "olga", admin)
	wantErr(t, err, ErrLastOwner)

	// Same role: nothing written, nothing audited.
	m, old, err := s.ChangeRole(ctx, "t1", actor("ann"), "mia", member)
	wantErr(t, err, nil)
	if m.Role != member || old != member || len(f.auditLog()) != 0 {
		t.Errorf("no-op change: %+v old %s, audit %v", m, old, f.auditLog())
	}

	m, old, err = s.ChangeRole(ctx, "t1", actor("olga"), "ann", owner)
	wantErr(t, err, nil)
	if m.Role != owner || old != admin || f.roleOf("t1", "ann") != owner {
		t.Errorf("promotion: %+v old %s", m, old)
	}
	log := f.auditLog()
	if len(log) != 1 || log[0].Action != audit.MemberRoleChange || log[0].Details["from"] != admin || log[0].Details["to"] != owner {
		t.Errorf("audit = %+v", log)
	}
	// Two owners now: the first may step down.
	if _, _, err := s.ChangeRole(ctx, "t1", actor("olga"), "olga", member); err != nil {
		t.Errorf("owner stepping down with another owner: %v", err)
	}
}

func TestCreateInvite(t *testing.T) {
	ctx := context.Background()
	now := t0
	deliveries := 0
	deliver := func(inv Invite, tok string) error {
		if HashInviteToken(tok) == "" || inv.ID == "" {
			return errors.New("bad delivery")
		}
		deliveries++
		return nil
	}
	f := newFakeStore()
	f.addTenant("t1", free, map[string]role.Role{"olga": owner, "ann": admin, "vic": viewer}) // 3 of free's 3 seats
	s := newService(f, &now)

	// Refusals in order: role, rights, membership, seats.
	_, err := s.CreateInvite(ctx, InviteRequest{TenantID: "t1", Email: "x@x.example", Role: "god"}, actor("olga"), deliver)
	wantErr(t, err, ErrInvalidRole)
	_, err = s.CreateInvite(ctx, InviteRequest{TenantID: "t1", Email: "x@x.example", Role: viewer}, actor("vic"), deliver)
	wantErr(t, err, ErrInsufficientRole)
	_, err = s.CreateInvite(ctx, InviteRequest{TenantID: "t1", Email: "x@x.example", Role: owner}, actor("ann"), deliver)
	wantErr(t, err, ErrOwnerRequired)
	_, err = s.CreateInvite(ctx, InviteRequest{TenantID: "t1", Email: "VIC@x.example", Role: viewer}, actor("ann"), deliver)
	wantErr(t, err, ErrAlreadyMember)
	_, err = s.CreateInvite(ctx, InviteRequest{TenantID: "t1", Email: "x@x.example", Role: viewer}, actor("ann"), deliver)
	var le *billing.LimitError
	if !errors.As(err, &le) || le.Exceeded[0].Limit != billing.LimitMembers || le.Exceeded[0].Current != 3 || le.Exceeded[0].Max != 3 {
		t.Fatalf("full tenant: err = %v", err)
	}
	if deliveries != 0 || len(f.auditLog()) != 0 {
		t.Fatalf("refused invites were delivered (%d) or audited (%v)", deliveries, f.auditLog())
	}

	// On pro, seats count open invites; re-inviting an address replaces its
	// invite without taking a seat.
	g := newFakeStore()
	g.addTenant("t2", billing.Plan{ID: "small", MaxMembers: 3}, map[string]role.Role{"olga": owner})
	s = newService(g, &now)
	first, err := s.CreateInvite(ctx, InviteRequest{TenantID: "t2", Email: "alice@x.example", Role: member}, actor("olga"), deliver)
	wantErr(t, err, nil)
	if !first.ExpiresAt.Equal(t0.Add(InviteTTL)) || first.InvitedBy != "olga" {
		t.Errorf("invite = %+v", first)
	}
	_, err = s.CreateInvite(ctx, InviteRequest{TenantID: "t2", Email: "bob@x.example", Role: member}, actor("olga"), deliver)
	wantErr(t, err, nil)
	_, err = s.CreateInvite(ctx, InviteRequest{TenantID: "t2", Email: "carol@x.example", Role: member}, actor("olga"), deliver)
	if !errors.As(err, &le) || le.Exceeded[0].Current != 3 {
		t.Fatalf("seats with open invites: err = %v", err)
	}
	second, err := s.CreateInvite(ctx, InviteRequest{TenantID: "t2", Email: "Alice@X.example", Role: admin}, actor("olga"), deliver)
	wantErr(t, err, nil)
	if open := g.openInvites("t2"); len(open) != 2 {
		t.Errorf("open invites = %+v, want bob's and alice's new one", open)
	}
	log := g.auditLog()
	if last := log[len(log)-1]; last.Details["replaced_invite_id"] != first.ID || last.TargetID != second.ID {
		t.Errorf("replacing audit = %+v", last)
	}
	// An expired invite frees its seat.
	now = t0.Add(InviteTTL + time.Second)
	_, err = s.CreateInvite(ctx, InviteRequest{TenantID: "t2", Email: "carol@x.example", Role: member}, actor("olga"), deliver)
	wantErr(t, err, nil)

	// A failed delivery keeps nothing, not even the replacement's revoke.
	before := g.openInvites("t2")
	_, err = s.CreateInvite(ctx, InviteRequest{TenantID: "t2", Email: "carol@x.example", Role: admin}, actor("olga"),
		func(Invite, string) error { return errors.New("smtp down") })
	if err == nil || err.Error() != "smtp down" {
		t.Fatalf("failed delivery: err = %v", err)
	}
	if after := g.openInvites("t2"); len(after) != len(before) {
		t.Errorf("a failed delivery changed the open invites: %d → %d", len(before), len(after))
	}
}

func TestRevokeInvite(t *testing.T) {
	ctx := context.Background()
	now := t0
	f := newFakeStore()
	f.addTenant("t1", free, map[string]role.Role{"olga": owner})
	f.addTenant("t2", free, map[string]role.Role{"bert": owner})
	s := newService(f, &now)
	inv, err := s.CreateInvite(ctx, InviteRequest{TenantID: "t1", Email: "a@x.example", Role: member}, actor("olga"), func(Invite, string) error { return nil })
	wantErr(t, err, nil)
	_, err = s.RevokeInvite(ctx, "t2", inv.ID, actor("bert"))
	wantErr(t, err, ErrNotFound) // another tenant's invite
	if _, err := s.RevokeInvite(ctx, "t1", inv.ID, actor("olga")); err != nil {
		t.Fatal(err)
	}
	_, err = s.RevokeInvite(ctx, "t1", inv.ID, actor("olga"))
	wantErr(t, err, ErrNotFound) // revoked already
	if log := f.auditLog(); log[len(log)-1].Action != audit.InviteRevoke {
		t.Errorf("audit = %+v", log)
	}
}

func TestAcceptInvite(t *testing.T) {
	ctx := context.Background()
	type setup struct {
		f   *fakeStore
		s   *Service
		now *time.Time
		tok string
	}
	// Each case starts from a tenant (small plan: 2 seats) with one owner
	// and an invite for alice as member.
	start := func(t *testing.T) setup {
		f := newFakeStore()
		f.addTenant("t1", billing.Plan{ID: "small", MaxMembers: 2}, map[string]role.Role{"olga": owner})
		now := t0
		s := newService(f, &now)
		var tok string
		if _, err := s.CreateInvite(ctx, InviteRequest{TenantID: "t1", Email: "alice@x.example", Role: member}, actor("olga"),
			func(_ Invite, tk string) error { tok = tk; return nil }); err != nil {
			t.Fatal(err)
		}
		return setup{f: f, s: s, now: &now, tok: tok}
	}
	tests := []struct {
		name    string
		prepare func(setup)
		token   func(setup) string
		user    string
		want    error
	}{
		{"accepted", func(setup) {}, nil, "alice", nil},
		{"unknown token", func(setup) {}, func(setup) string { return "nope" }, "alice", ErrNotFound},
		{"another address", func(setup) {}, nil, "bob", ErrInviteEmailMismatch},
		{"expired", func(x setup) { *x.now = t0.Add(InviteTTL) }, nil, "alice", ErrInviteExpired},
		{"suspended tenant", func(x setup) { x.f.setStatus("t1", StatusSuspended) }, nil, "alice", ErrTenantSuspended},
		{"revoked", func(x setup) {
			inv := x.f.openInvites("t1")[0]
			if _, err := x.s.RevokeInvite(ctx, "t1", inv.ID, actor("olga")); err != nil {
				panic(err)
			}
		}, nil, "alice", ErrInviteRevoked},
		{"already a member", func(x setup) {
			_ = x.f.WithTenantLocked(ctx, "t1", func(tx Tx) error { return tx.AddMember(ctx, "alice", viewer) })
		}, nil, "alice", ErrAlreadyMember},
		{"seat taken meanwhile", func(x setup) {
			_ = x.f.WithTenantLocked(ctx, "t1", func(tx Tx) error { return tx.AddMember(ctx, "bob", viewer) })
		}, nil, "alice", &billing.LimitError{}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			x := start(t)
			tt.prepare(x)
			tok := x.tok
			if tt.token != nil {
				tok = tt.token(x)
			}
			before := len(x.f.auditLog())
			ms, err := x.s.AcceptInvite(ctx, tok, actor(tt.user))
			if le := (*billing.LimitError)(nil); errors.As(tt.want, &le) {
				if !errors.As(err, &le) || le.Exceeded[0].Limit != billing.LimitMembers || le.Exceeded[0].Current != 2 {
					t.Fatalf("err = %v, want max_members exceeded", err)
				}
			} else {
				wantErr(t, err, tt.want)
			}
			if tt.want != nil {
				if tt.name != "already a member" && x.f.roleOf("t1", tt.user) != "" || len(x.f.auditLog()) != before {
					t.Errorf("a refused accept changed something")
				}
				return
			}
			if ms.ID != "t1" || ms.Role != member || x.f.roleOf("t1", "alice") != member {
				t.Errorf("membership = %+v", ms)
			}
			_, err = x.s.AcceptInvite(ctx, tok, actor("alice"))
			wantErr(t, err, ErrInviteUsed)
			log := x.f.auditLog()
			if a := log[len(log)-1]; a.Action != audit.InviteAccept || a.Actor.UserID != "alice" || a.TenantID != "t1" {
				t.Errorf("audit = %+v", a)
			}
		})
	}
}

// The rules are evaluated inside the unit of work: of two owners leaving at
// once exactly one leaves, and concurrent accepts never overfill the plan.
func TestRulesHoldUnderConcurrency(t *testing.T) {
	ctx := context.Background()
	now := t0
	for range 50 {
		f := newFakeStore()
		f.addTenant("t1", free, map[string]role.Role{"olga": owner, "otto": owner})
		s := newService(f, &now)
		var wg sync.WaitGroup
		errs := make([]error, 2)
		for i, who := range []string{"olga", "otto"} {
			wg.Go(func() { _, errs[i] = s.RemoveMember(ctx, "t1", actor(who), who) })
		}
		wg.Wait()
		if (errs[0] == nil) == (errs[1] == nil) || !errors.Is(errors.Join(errs...), ErrLastOwner) {
			t.Fatalf("two owners leaving: %v", errs)
		}
	}

	f := newFakeStore()
	f.addTenant("t1", billing.Plan{ID: "big", MaxMembers: 100}, map[string]role.Role{"olga": owner})
	s := newService(f, &now)
	users := []string{"u1", "u2", "u3", "u4", "u5", "u6"}
	toks := map[string]string{}
	for _, u := range users {
		if _, err := s.CreateInvite(ctx, InviteRequest{TenantID: "t1", Email: u + "@x.example", Role: viewer}, actor("olga"),
			func(_ Invite, tk string) error { toks[u] = tk; return nil }); err != nil {
			t.Fatal(err)
		}
	}
	f.mu.Lock()
	l := f.st.tenants["t1"]
	l.Plan.MaxMembers = 4 // room for 3 of the 6
	f.st.tenants["t1"] = l
	f.mu.Unlock()
	var wg sync.WaitGroup
	var mu sync.Mutex
	joined := 0
	for _, u := range users {
		wg.Go(func() {
			if _, err := s.AcceptInvite(ctx, toks[u], actor(u)); err == nil {
				mu.Lock()
				joined++
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	if joined != 3 {
		t.Errorf("%d joined, want 3 (max_members 4, one owner)", joined)
	}
}
