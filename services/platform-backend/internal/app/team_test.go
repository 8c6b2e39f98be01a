package app

import (
	"crypto/sha256"
	"encoding/hex"
	"net/http"
	"strings"
	"testing"
	"time"

	roles "trueportai/services/internal/role"
)

// teamRoute is one of the team/billing/storage routes with what each caller
// needs: path and body may create fresh targets in tenant A.
type teamRoute struct {
	name    string
	method  string
	minRole string
	status  int
	// idOfA: the path names an object of tenant A (callers of other tenants get 404).
	idOfA bool
	path  func(t *testing.T) string
	body  func(who string) any
}

func TestTeamBillingRoleMatrix(t *testing.T) {
	t.Parallel()
	gw := startFakeGateway(t)
	s := startServer(t, "GATEWAY_GRPC_ADDR="+gw.addr, "PLATFORM_ADMIN_EMAILS=root@platform.example")

	owner := s.quickUser(t, "owner@a.example")
	a := s.newTenant(t, owner, "Tenant A", "tenant-a")
	ownerTok := s.scoped(t, owner, a.ID)
	// Room for the targets the matrix creates (free allows 3 members).
	decode[obj](t, s.post(t, "/platform/api/service/subscriptions", ownerTok, obj{"plan_id": "enterprise"}), http.StatusCreated)

	tokens := map[string]string{"owner": ownerTok}
	for _, role := range []string{"viewer", "member", "admin"} {
		u := s.quickUser(t, role+"@a.example")
		s.addMember(t, a.ID, u.ID, role)
		tokens[role] = s.scoped(t, u, a.ID)
	}
	outsider := s.quickUser(t, "outsider@b.example")
	b := s.newTenant(t, outsider, "Tenant B", "tenant-b")
	tokens["non-member"] = s.scoped(t, outsider, b.ID)
	root := s.newAdmin(t, "root@platform.example")
	c := s.newTenant(t, root, "Tenant C", "tenant-c")
	tokens["platform-admin"] = s.scoped(t, root, c.ID)

	n := 0
	freshMember := func(t *testing.T, role string) user {
		n++
		u := s.quickUser(t, "target"+strings.Repeat("x", n)+"@a.example")
		s.addMember(t, a.ID, u.ID, role)
		return u
	}
	routes := []teamRoute{
		{name: "DELETE members/{id}", method: http.MethodDelete, minRole: "admin", status: http.StatusNoContent, idOfA: true,
			path: func(t *testing.T) string { return "/platform/api/service/members/" + freshMember(t, "viewer").ID }},
		{name: "PUT members/{id}/role", method: http.MethodPut, minRole: "admin", status: http.StatusOK, idOfA: true,
			path: func(t *testing.T) string {
				return "/platform/api/service/members/" + freshMember(t, "viewer").ID + "/role"
			},
			body: func(string) any { return obj{"role": "member"} }},
		{name: "POST invites", method: http.MethodPost, minRole: "admin", status: http.StatusCreated,
			path: func(*testing.T) string { return "/platform/api/service/invites" },
			body: func(who string) any { return obj{"email": "invitee-" + who + "@x.example", "role": "viewer"} }},
		{name: "GET invites", method: http.MethodGet, minRole: "admin", status: http.StatusOK,
			path: func(*testing.T) string { return "/platform/api/service/invites" }},
		{name: "DELETE invites/{id}", method: http.MethodDelete, minRole: "admin", status: http.StatusNoContent, idOfA: true,
			path: func(t *testing.T) string {
				n++
				return "/platform/api/service/invites/" + s.invite(t, ownerTok, "revokee"+strings.Repeat("x", n)+"@x.example", "member")
			}},
		{name: "POST subscriptions", method: http.MethodPost, minRole: "admin", status: http.StatusCreated,
			path: func(*testing.T) string { return "/platform/api/service/subscriptions" },
			body: func(who string) any {
				if who == "owner" {
					return obj{"plan_id": "enterprise"} // after admin's move to pro
				}
				return obj{"plan_id": "pro"}
			}},
		{name: "GET subscriptions", method: http.MethodGet, minRole: "admin", status: http.StatusOK,
			path: func(*testing.T) string { return "/platform/api/service/subscriptions" }},
		{name: "PUT storage", method: http.MethodPut, minRole: "admin", status: http.StatusOK,
			path: func(*testing.T) string { return "/platform/api/service/storage" },
			body: func(string) any { return obj{"retention_days": 5, "log_request_bodies": true} }},
	}
	callers := []string{"viewer", "member", "admin", "owner", "non-member", "platform-admin", "no-token", "global-token"}
	for _, rt := range routes {
		for _, who := range callers {
			t.Run(rt.name+"/"+who, func(t *testing.T) {
				var body any
				if rt.body != nil {
					body = rt.body(who)
				}
				tok := tokens[who]
				if who == "global-token" {
					tok = owner.Global
				}
				r := s.do(t, req{Method: rt.method, Path: rt.path(t), Token: tok, Body: body})
				switch {
				case who == "no-token":
					wantError(t, r, http.StatusUnauthorized, "missing_token")
				case who == "global-token":
					wantError(t, r, http.StatusUnauthorized, "scoped_token_required")
				case who == "non-member" || who == "platform-admin":
					// Owners of their own tenant: acting there, never on A.
					if rt.idOfA {
						wantError(t, r, http.StatusNotFound, "")
					} else if r.Status != rt.status {
						t.Errorf("status = %s, want %d (own tenant)", r, rt.status)
					}
					if strings.Contains(string(r.Body), a.ID) || strings.Contains(string(r.Body), "@a.example") {
						t.Errorf("another tenant's caller sees tenant A: %s", r.Body)
					}
				case !roles.AtLeast(who, rt.minRole):
					env := wantError(t, r, http.StatusForbidden, "insufficient_role")
					if env.Details["required_role"] != rt.minRole {
						t.Errorf("details should name the required role: %s", r.Body)
					}
				default:
					if r.Status != rt.status {
						t.Errorf("status = %s, want %d", r, rt.status)
					}
				}
			})
		}
	}

	// The matrix's successful writes landed in A (and only the allowed ones).
	if info := decode[obj](t, s.get(t, "/platform/api/service/info", ownerTok), http.StatusOK); info["plan"] != "enterprise" {
		t.Errorf("A's plan = %v, want enterprise (admin → pro, then owner → enterprise)", info["plan"])
	}
	subs := wantEnvelope(t, s.get(t, "/platform/api/service/subscriptions", ownerTok))
	if subs.Total != 4 { // free (creation), enterprise (setup), pro (admin), enterprise (owner)
		t.Errorf("A has %d subscriptions, want 4: %+v", subs.Total, subs.Items)
	}
	if st := decode[obj](t, s.get(t, "/platform/api/service/storage", ownerTok), http.StatusOK); st["retention_days"] != 5.0 || st["log_request_bodies"] != true {
		t.Errorf("A's storage = %v", st)
	}
	invited := map[string]bool{}
	for _, it := range wantEnvelope(t, s.do(t, req{Method: http.MethodGet, Path: "/platform/api/service/invites?limit=200", Token: ownerTok})).Items {
		if e := it["email"].(string); strings.HasPrefix(e, "invitee-") {
			invited[e] = true
		}
	}
	if len(invited) != 2 || !invited["invitee-admin@x.example"] || !invited["invitee-owner@x.example"] {
		t.Errorf("A's pending invites from the matrix = %v, want the admin's and the owner's", invited)
	}
}

func TestTeamCrossTenant(t *testing.T) {
	t.Parallel()
	s := startServer(t, "GATEWAY_GRPC_ADDR="+deadAddr(t))
	ua, ub := s.newUser(t, "a@a.example"), s.newUser(t, "b@b.example")
	ta, tb := s.newTenant(t, ua, "Tenant A", "tenant-a"), s.newTenant(t, ub, "Tenant B", "tenant-b")
	aTok, bTok := s.scoped(t, ua, ta.ID), s.scoped(t, ub, tb.ID)
	victim := s.newUser(t, "victim@a.example")
	s.addMember(t, ta.ID, victim.ID, "member")
	invID := s.invite(t, aTok, "pending@a.example", "viewer")

	for _, rq := range []req{
		{Method: http.MethodDelete, Path: "/platform/api/service/members/" + victim.ID},
		{Method: http.MethodDelete, Path: "/platform/api/service/members/" + ua.ID},
		{Method: http.MethodPut, Path: "/platform/api/service/members/" + victim.ID + "/role", Body: obj{"role": "admin"}},
		{Method: http.MethodPut, Path: "/platform/api/service/members/" + ua.ID + "/role", Body: obj{"role": "viewer"}},
		{Method: http.MethodDelete, Path: "/platform/api/service/invites/" + invID},
		// Malformed ids are unknown ids.
		{Method: http.MethodDelete, Path: "/platform/api/service/members/not-a-uuid"},
		{Method: http.MethodDelete, Path: "/platform/api/service/invites/%00"},
	} {
		t.Run(rq.Method+" "+rq.Path, func(t *testing.T) {
			rq.Token = bTok
			// X-Tenant-Slug never redirects a scoped token.
			rq.Header = map[string]string{"X-Tenant-Slug": ta.Slug}
			wantError(t, s.do(t, rq), http.StatusNotFound, "")
		})
	}
	if s.memberRole(t, ta.ID, victim.ID) != "member" || s.memberRole(t, ta.ID, ua.ID) != "owner" {
		t.Errorf("tenant B's token changed tenant A's members")
	}
	if l := wantEnvelope(t, s.get(t, "/platform/api/service/invites", aTok)); l.Total != 1 {
		t.Errorf("A's invite was revoked by B: %+v", l)
	}
	if l := wantEnvelope(t, s.get(t, "/platform/api/service/invites", bTok)); l.Total != 0 {
		t.Errorf("B sees A's invites: %+v", l)
	}
	if rows := s.auditRows(t, "invite.revoke"); len(rows) != 0 {
		t.Errorf("audit rows of refused actions: %v", rows)
	}
}

func TestTeamOwnerRules(t *testing.T) {
	t.Parallel()
	s := startServer(t, "GATEWAY_GRPC_ADDR="+deadAddr(t))
	revoked := s.events(t, "tokens.revoked")
	owner := s.newUser(t, "owner@a.example")
	tn := s.newTenant(t, owner, "Tenant A", "tenant-a")
	// Pro: room for the members below.
	ownerTok := s.scoped(t, owner, tn.ID)
	decode[obj](t, s.post(t, "/platform/api/service/subscriptions", ownerTok, obj{"plan_id": "pro"}), http.StatusCreated)
	admin := s.newUser(t, "admin@a.example")
	s.addMember(t, tn.ID, admin.ID, "admin")
	adminTok := s.scoped(t, admin, tn.ID)
	viewer := s.newUser(t, "viewer@a.example")
	s.addMember(t, tn.ID, viewer.ID, "viewer")
	viewerTok := s.scoped(t, viewer, tn.ID)
	other := s.newUser(t, "other@a.example")
	s.addMember(t, tn.ID, other.ID, "member")
	stranger := s.newUser(t, "stranger@x.example")

	members := "/platform/api/service/members/"
	role := func(u user) string { return members + u.ID + "/role" }

	// An admin cannot touch an owner, nor grant the owner role.
	wantError(t, s.do(t, req{Method: http.MethodDelete, Path: members + owner.ID, Token: adminTok}), http.StatusForbidden, "owner_protected")
	wantError(t, s.put(t, role(owner), adminTok, obj{"role": "admin"}), http.StatusForbidden, "owner_required")
	wantError(t, s.put(t, role(other), adminTok, obj{"role": "owner"}), http.StatusForbidden, "owner_required")
	wantError(t, s.put(t, role(admin), adminTok, obj{"role": "owner"}), http.StatusForbidden, "owner_required")
	wantError(t, s.post(t, "/platform/api/service/invites", adminTok, obj{"email": "boss@x.example", "role": "owner"}), http.StatusForbidden, "owner_required")
	// Viewers cannot remove others, and bad input is named.
	wantError(t, s.do(t, req{Method: http.MethodDelete, Path: members + other.ID, Token: viewerTok}), http.StatusForbidden, "insufficient_role")
	wantField(t, s.put(t, role(other), ownerTok, obj{"role": "superuser"}), "role")
	wantField(t, s.put(t, role(other), ownerTok, obj{"role": 3}), "role")
	wantError(t, s.put(t, role(stranger), ownerTok, obj{"role": "member"}), http.StatusNotFound, "member_not_found")
	wantError(t, s.do(t, req{Method: http.MethodDelete, Path: members + stranger.ID, Token: ownerTok}), http.StatusNotFound, "member_not_found")

	// The sole owner can neither leave nor be demoted.
	wantError(t, s.do(t, req{Method: http.MethodDelete, Path: members + owner.ID, Token: ownerTok}), http.StatusConflict, "last_owner")
	wantError(t, s.put(t, role(owner), ownerTok, obj{"role": "admin"}), http.StatusConflict, "last_owner")
	wantNoEvent(t, revoked)

	// Role changes: admin may set viewer/member/admin; the change reaches the
	// member's existing token at once and is announced.
	otherTok := s.scoped(t, other, tn.ID)
	m := decode[obj](t, s.put(t, role(other), adminTok, obj{"role": "admin"}), http.StatusOK)
	wantKeys(t, "member", m, "user_id", "email", "name", "role", "joined_at")
	if m["role"] != "admin" || m["user_id"] != other.ID {
		t.Errorf("role change answer = %v", m)
	}
	wantEvent(t, revoked, map[string]string{"user_id": other.ID, "tenant_id": tn.ID, "reason": "role_changed"})
	decode[obj](t, s.get(t, "/platform/api/service/storage", otherTok), http.StatusOK) // now admin
	decode[obj](t, s.put(t, role(other), adminTok, obj{"role": "admin"}), http.StatusOK)
	wantNoEvent(t, revoked) // no change, no event

	// The owner makes the admin an owner; then the first owner may leave.
	decode[obj](t, s.put(t, role(admin), ownerTok, obj{"role": "owner"}), http.StatusOK)
	wantEvent(t, revoked, map[string]string{"user_id": admin.ID, "tenant_id": tn.ID})
	if r := s.do(t, req{Method: http.MethodDelete, Path: members + owner.ID, Token: ownerTok}); r.Status != http.StatusNoContent {
		t.Fatalf("owner leaving with a second owner = %s", r)
	}
	wantEvent(t, revoked, map[string]string{"user_id": owner.ID, "tenant_id": tn.ID, "reason": "member_removed"})
	wantError(t, s.get(t, "/platform/api/service/info", ownerTok), http.StatusUnauthorized, "invalid_token")
	// Now admin is the last owner.
	wantError(t, s.put(t, role(admin), adminTok, obj{"role": "member"}), http.StatusConflict, "last_owner")

	// An owner removes a member; a viewer leaves on their own.
	if r := s.do(t, req{Method: http.MethodDelete, Path: members + other.ID, Token: adminTok}); r.Status != http.StatusNoContent {
		t.Fatalf("remove member = %s", r)
	}
	wantEvent(t, revoked, map[string]string{"user_id": other.ID, "tenant_id": tn.ID, "reason": "member_removed"})
	wantError(t, s.get(t, "/platform/api/service/info", otherTok), http.StatusUnauthorized, "invalid_token")
	if r := s.do(t, req{Method: http.MethodDelete, Path: members + viewer.ID, Token: viewerTok}); r.Status != http.StatusNoContent {
		t.Fatalf("viewer leaving = %s", r)
	}
	if got := wantEnvelope(t, s.get(t, "/platform/api/service/members", adminTok)); got.Total != 1 {
		t.Errorf("members left = %+v, want only the new owner", got.Items)
	}

	// Every role change and removal is audited with actor, target and tenant.
	changes := s.auditRows(t, "member.role_change")
	if len(changes) != 2 {
		t.Fatalf("role_change audit rows = %v, want 2", changes)
	}
	if r := changes[0]; r["actor_id"] != admin.ID || r["target_id"] != other.ID || r["tenant_id"] != tn.ID ||
		r["details"].(map[string]any)["from"] != "member" || r["details"].(map[string]any)["to"] != "admin" {
		t.Errorf("role_change row = %v", r)
	}
	if rows := s.auditRows(t, "member.remove"); len(rows) != 1 || rows[0]["actor_id"] != admin.ID || rows[0]["target_id"] != other.ID {
		t.Errorf("member.remove rows = %v", rows)
	}
	if rows := s.auditRows(t, "member.leave"); len(rows) != 2 {
		t.Errorf("member.leave rows = %v, want the owner's and the viewer's", rows)
	}
}

func TestInviteFlow(t *testing.T) {
	t.Parallel()
	s := startServer(t, "GATEWAY_GRPC_ADDR="+deadAddr(t))
	owner := s.newUser(t, "owner@a.example")
	tn := s.newTenant(t, owner, "Acme Org", "acme") // free: 3 members
	ownerTok := s.scoped(t, owner, tn.ID)
	alice := s.newUser(t, "alice@x.example")
	bob := s.newUser(t, "bob@x.example")
	const invites = "/platform/api/service/invites"

	r := s.post(t, invites, ownerTok, obj{"email": "Alice@X.example", "role": "member"})
	inv := decode[obj](t, r, http.StatusCreated)
	wantKeys(t, "invite", inv, "id", "email", "role", "expires_at")
	wantUUID(t, "invite id", inv["id"].(string))
	if inv["email"] != "alice@x.example" || inv["role"] != "member" {
		t.Errorf("invite = %v", inv)
	}
	exp, _ := time.Parse(time.RFC3339, inv["expires_at"].(string))
	if d := time.Until(exp); d < 7*24*time.Hour-time.Minute || d > 7*24*time.Hour+time.Minute {
		t.Errorf("expires_at = %v, want 7 days from now", inv["expires_at"])
	}
	aliceTok := s.inviteToken(t, "alice@x.example")
	// Stored hashed only.
	var hash string
	if err := s.db.QueryRow(t.Context(), `SELECT token_hash FROM invites WHERE id = $1`, inv["id"]).Scan(&hash); err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256([]byte(aliceTok))
	if hash != hex.EncodeToString(sum[:]) {
		t.Errorf("token_hash is not the SHA-256 of the mailed token")
	}

	// Input and conflicts.
	wantField(t, s.post(t, invites, ownerTok, obj{"email": "not-an-email", "role": "member"}), "email")
	wantField(t, s.post(t, invites, ownerTok, obj{"email": "x@x.example", "role": "god"}), "role")
	wantError(t, s.post(t, invites, ownerTok, obj{"email": "OWNER@a.example", "role": "viewer"}), http.StatusConflict, "already_member")

	// Seats: 1 member + alice + carol = 3 = free's max_members.
	s.invite(t, ownerTok, "carol@x.example", "viewer")
	firstCarol := s.inviteToken(t, "carol@x.example")
	env := wantError(t, s.post(t, invites, ownerTok, obj{"email": "dave@x.example", "role": "viewer"}), http.StatusConflict, "plan_limit_exceeded")
	if env.Details["limit"] != "max_members" || !strings.Contains(env.Message, "max_members") {
		t.Errorf("limit error should name max_members: %+v", env)
	}
	// Re-inviting carol replaces her invite (no extra seat); the old token dies.
	s.invite(t, ownerTok, "carol@x.example", "member")
	carolTok := s.inviteToken(t, "carol@x.example")
	if carolTok == firstCarol {
		t.Fatal("re-invite reused the token")
	}
	list := wantEnvelope(t, s.get(t, invites, ownerTok))
	if list.Total != 2 {
		t.Fatalf("pending invites = %+v, want alice and carol", list.Items)
	}
	for _, it := range list.Items {
		wantKeys(t, "pending invite", it, "id", "email", "role", "expires_at", "created_at", "invited_by")
		if it["invited_by"] != owner.ID {
			t.Errorf("invited_by = %v", it["invited_by"])
		}
	}
	carol := s.newUser(t, "carol@x.example")
	wantError(t, s.post(t, "/platform/api/global/invites/accept", carol.Global, obj{"token": firstCarol}), http.StatusBadRequest, "invite_revoked")
	// Expired.
	if _, err := s.db.Exec(t.Context(), `UPDATE invites SET expires_at = now() - interval '1 minute' WHERE lower(email) = 'carol@x.example' AND revoked_at IS NULL`); err != nil {
		t.Fatal(err)
	}
	wantError(t, s.post(t, "/platform/api/global/invites/accept", carol.Global, obj{"token": carolTok}), http.StatusBadRequest, "invite_expired")

	// Revoke.
	daveID := s.invite(t, ownerTok, "dave@x.example", "viewer") // carol's expired invite freed the seat
	daveTok := s.inviteToken(t, "dave@x.example")
	if r := s.do(t, req{Method: http.MethodDelete, Path: invites + "/" + daveID, Token: ownerTok}); r.Status != http.StatusNoContent {
		t.Fatalf("revoke = %s", r)
	}
	wantError(t, s.do(t, req{Method: http.MethodDelete, Path: invites + "/" + daveID, Token: ownerTok}), http.StatusNotFound, "invite_not_found")
	dave := s.newUser(t, "dave@x.example")
	wantError(t, s.post(t, "/platform/api/global/invites/accept", dave.Global, obj{"token": daveTok}), http.StatusBadRequest, "invite_revoked")

	// Accept: global token only, the invited address only.
	accept := "/platform/api/global/invites/accept"
	wantError(t, s.post(t, accept, "", obj{"token": aliceTok}), http.StatusUnauthorized, "missing_token")
	wantError(t, s.post(t, accept, ownerTok, obj{"token": aliceTok}), http.StatusUnauthorized, "global_token_required")
	wantError(t, s.post(t, accept, bob.Global, obj{"token": aliceTok}), http.StatusForbidden, "invite_email_mismatch")
	wantError(t, s.post(t, accept, alice.Global, obj{"token": "nope"}), http.StatusNotFound, "invite_not_found")
	wantField(t, s.post(t, accept, alice.Global, obj{}), "token")
	got := decode[obj](t, s.post(t, accept, alice.Global, obj{"token": aliceTok}), http.StatusOK)
	wantKeys(t, "accept", got, "tenant", "role")
	if got["role"] != "member" || got["tenant"].(obj)["id"] != tn.ID || got["tenant"].(obj)["slug"] != "acme" {
		t.Errorf("accept = %v", got)
	}
	if s.memberRole(t, tn.ID, alice.ID) != "member" {
		t.Errorf("alice is not a member after accepting")
	}
	decode[obj](t, s.get(t, "/platform/api/service/info", s.scoped(t, alice, tn.ID)), http.StatusOK)
	wantError(t, s.post(t, accept, alice.Global, obj{"token": aliceTok}), http.StatusBadRequest, "invite_used")
	wantError(t, s.post(t, invites, ownerTok, obj{"email": "alice@x.example", "role": "admin"}), http.StatusConflict, "already_member")

	// max_members at accept time: erin is invited while a seat is free, then
	// the seat is taken before she accepts.
	s.invite(t, ownerTok, "erin@x.example", "viewer")
	erinTok := s.inviteToken(t, "erin@x.example")
	s.addMember(t, tn.ID, bob.ID, "viewer")
	erin := s.newUser(t, "erin@x.example")
	env = wantError(t, s.post(t, accept, erin.Global, obj{"token": erinTok}), http.StatusConflict, "plan_limit_exceeded")
	if env.Details["limit"] != "max_members" {
		t.Errorf("accept over the limit should name max_members: %+v", env)
	}
	if s.memberRole(t, tn.ID, erin.ID) != "" {
		t.Errorf("erin joined beyond max_members")
	}

	// Audit: creations, the revoke, the accept.
	if n := len(s.auditRows(t, "invite.create")); n != 5 {
		t.Errorf("invite.create rows = %d, want 5", n)
	}
	if rows := s.auditRows(t, "invite.revoke"); len(rows) != 1 || rows[0]["target_id"] != daveID || rows[0]["actor_id"] != owner.ID {
		t.Errorf("invite.revoke rows = %v", rows)
	}
	if rows := s.auditRows(t, "invite.accept"); len(rows) != 1 || rows[0]["actor_id"] != alice.ID || rows[0]["tenant_id"] != tn.ID {
		t.Errorf("invite.accept rows = %v", rows)
	}
}
