package app

import (
	"context"
	"net/http"
	"strings"
	"testing"

	platformv1 "trueportai/proto/gen/trueport/platform/v1"
)

// Enterprise deals: per-tenant limit overrides and custom plans (admin
// routes), seen by the gateway through the tenant context.

func TestLimitsRoleMatrix(t *testing.T) {
	t.Parallel()
	gw := startFakeGateway(t)
	s := startServer(t, "GATEWAY_GRPC_ADDR="+gw.addr, "PLATFORM_ADMIN_EMAILS=root@platform.example")
	owner := s.newUser(t, "owner@a.example")
	a := s.newTenant(t, owner, "Tenant A", "tenant-a")
	tokens := map[string]string{"owner": s.scoped(t, owner, a.ID), "owner-global": owner.Global}
	for _, role := range []string{"viewer", "member", "admin"} {
		u := s.newUser(t, role+"@a.example")
		s.addMember(t, a.ID, u.ID, role)
		tokens[role] = s.scoped(t, u, a.ID)
	}
	root := s.newAdmin(t, "root@platform.example")
	rt := s.newTenant(t, root, "Root Org", "root-org")
	tokens["platform-admin-global"] = root.Global
	tokens["platform-admin-scoped"] = s.scoped(t, root, rt.ID)
	planBody := func(who string) any {
		return obj{"id": "deal-" + strings.ReplaceAll(who, "-", ""), "name": "Deal", "price_usd_month": 5000, "offered_to": a.ID,
			"limits": obj{"monthly_requests": nil, "max_api_keys": 100, "max_members": 50, "max_rpm_per_key": nil, "retention_days": 90}}
	}
	routes := []struct {
		method, path string
		body         func(who string) any
		ok           int
	}{
		{http.MethodGet, "/platform/api/admin/tenants/" + a.ID + "/limits", nil, http.StatusOK},
		{http.MethodPut, "/platform/api/admin/tenants/" + a.ID + "/limits", func(string) any { return obj{"max_rpm_per_key": 12000} }, http.StatusOK},
		{http.MethodGet, "/platform/api/admin/plans", nil, http.StatusOK},
		{http.MethodPost, "/platform/api/admin/plans", planBody, http.StatusCreated},
	}
	for _, r := range routes {
		for _, who := range []string{"viewer", "member", "admin", "owner", "owner-global", "platform-admin-global", "platform-admin-scoped", "no-token", "bad-token"} {
			t.Run(r.method+" "+r.path+"/"+who, func(t *testing.T) {
				t.Parallel()
				tok := tokens[who]
				if who == "bad-token" {
					tok = "not.a.jwt"
				}
				var body any
				if r.body != nil {
					body = r.body(who)
				}
				got := s.do(t, req{Method: r.method, Path: r.path, Token: tok, Body: body})
				switch {
				case who == "no-token":
					wantError(t, got, http.StatusUnauthorized, "missing_token")
				case who == "bad-token":
					wantError(t, got, http.StatusUnauthorized, "invalid_token")
				case strings.HasPrefix(who, "platform-admin"):
					if got.Status != r.ok {
						t.Errorf("status = %s, want %d", got, r.ok)
					}
				default:
					wantError(t, got, http.StatusForbidden, "platform_admin_required")
				}
			})
		}
	}
}

// TestLimitOverrides: overrides change one tenant's effective limits (its
// tenant context, its seats), no other tenant's; they are validated,
// audited and announced.
func TestLimitOverrides(t *testing.T) {
	t.Parallel()
	gw := startFakeGateway(t)
	s := startServer(t, "GATEWAY_GRPC_ADDR="+gw.addr, "PLATFORM_ADMIN_EMAILS=root@platform.example")
	root := s.newAdmin(t, "root@platform.example")
	ua, ub := s.newUser(t, "a@a.example"), s.newUser(t, "b@b.example")
	ta, tb := s.newTenant(t, ua, "Alpha", "alpha"), s.newTenant(t, ub, "Beta", "beta")
	path := "/platform/api/admin/tenants/" + ta.ID + "/limits"
	changed := s.events(t, "tenant.changed")

	got := decode[obj](t, s.put(t, path, root.Global, obj{"max_rpm_per_key": nil, "monthly_requests": 5_000_000, "max_members": 1}), http.StatusOK)
	if ov := got["overrides"].(map[string]any); len(ov) != 3 || ov["max_rpm_per_key"] != nil || ov["monthly_requests"] != float64(5_000_000) {
		t.Errorf("overrides = %v", ov)
	}
	eff := got["effective"].(map[string]any)
	if eff["max_rpm_per_key"] != nil || eff["monthly_requests"] != float64(5_000_000) || eff["max_api_keys"] != float64(3) || eff["retention_days"] != float64(7) {
		t.Errorf("effective = %v (free plan under the overrides)", eff)
	}
	if pl := got["plan"].(map[string]any); pl["max_rpm_per_key"] != float64(60) {
		t.Errorf("plan = %v", pl)
	}
	wantEvent(t, changed, map[string]string{"tenant_id": ta.ID, "reason": "limits"})
	if rows := s.auditRows(t, "tenant.limits_update"); len(rows) != 1 || rows[0]["tenant_id"] != ta.ID || rows[0]["actor_id"] != root.ID {
		t.Errorf("audit rows = %v", rows)
	}

	// The gateway sees the effective limits; the other tenant keeps its plan's.
	_, tenants := s.grpcClients(t)
	ctx := context.Background()
	ca, err := tenants.GetTenantContext(ctx, &platformv1.GetTenantContextRequest{TenantId: ta.ID})
	if err != nil {
		t.Fatal(err)
	}
	if l := ca.GetTenant().GetLimits(); l.GetMaxRpmPerKey() != 0 || l.GetMonthlyRequests() != 5_000_000 || l.GetMaxMembers() != 1 || l.GetMaxApiKeys() != 3 {
		t.Errorf("tenant A limits = %v, want no RPM maximum, 5M requests, 1 member, 3 keys", l)
	}
	cb, err := tenants.GetTenantContext(ctx, &platformv1.GetTenantContextRequest{TenantId: tb.ID})
	if err != nil {
		t.Fatal(err)
	}
	if l := cb.GetTenant().GetLimits(); l.GetMaxRpmPerKey() != 60 || l.GetMonthlyRequests() != 10000 || l.GetMaxMembers() != 3 {
		t.Errorf("tenant B limits = %v, want the free plan's", l)
	}
	// Seats: A allows one member now (its owner); B still three.
	wantError(t, s.post(t, "/platform/api/service/invites", s.scoped(t, ua, ta.ID), obj{"email": "x@a.example", "role": "viewer"}), http.StatusConflict, "plan_limit_exceeded")
	if r := s.post(t, "/platform/api/service/invites", s.scoped(t, ub, tb.ID), obj{"email": "x@b.example", "role": "viewer"}); r.Status != http.StatusCreated {
		t.Errorf("tenant B invite: %s", r)
	}
	// B's admin routes show B untouched.
	if eb := decode[obj](t, s.get(t, "/platform/api/admin/tenants/"+tb.ID+"/limits", root.Global), http.StatusOK); len(eb["overrides"].(map[string]any)) != 0 {
		t.Errorf("tenant B overrides = %v", eb["overrides"])
	}

	// Bad input names the field; unknown and malformed tenants are 404.
	for _, c := range []struct {
		body  obj
		field string
	}{
		{obj{"max_rpm_per_key": 0}, "max_rpm_per_key"},
		{obj{"max_members": -3}, "max_members"},
		{obj{"monthly_requests": 1.5}, "monthly_requests"},
		{obj{"monthly_requests": "lots"}, "monthly_requests"},
		{obj{"retention_days": nil}, "retention_days"},
		{obj{"retention_days": 4000}, "retention_days"},
		{obj{"rpm": 5}, "rpm"},
	} {
		wantField(t, s.put(t, path, root.Global, c.body), c.field)
	}
	wantError(t, s.put(t, "/platform/api/admin/tenants/00000000-0000-4000-8000-000000000000/limits", root.Global, obj{}), http.StatusNotFound, "tenant_not_found")
	wantError(t, s.get(t, "/platform/api/admin/tenants/nope/limits", root.Global), http.StatusNotFound, "tenant_not_found")

	// {} removes every override: the plan's limits again.
	got = decode[obj](t, s.put(t, path, root.Global, obj{}), http.StatusOK)
	if got["effective"].(map[string]any)["max_rpm_per_key"] != float64(60) {
		t.Errorf("after removing the overrides: %v", got["effective"])
	}

	// Overrides stay across plan changes, and the change is checked
	// against them: four members do not fit a two-seat plan, unless an
	// override gives the tenant more seats.
	decode[obj](t, s.post(t, "/platform/api/admin/plans", root.Global, obj{"id": "tiny-a", "name": "Tiny", "price_usd_month": 1, "offered_to": ta.ID,
		"limits": obj{"monthly_requests": 100, "max_api_keys": 3, "max_members": 2, "max_rpm_per_key": 10, "retention_days": 7}}), http.StatusCreated)
	for i := range 3 {
		s.addMember(t, ta.ID, s.newUser(t, "m"+itoa(i)+"@a.example").ID, "viewer")
	}
	sa := s.scoped(t, ua, ta.ID)
	wantError(t, s.post(t, "/platform/api/service/subscriptions", sa, obj{"plan_id": "tiny-a"}), http.StatusConflict, "plan_limit_exceeded")
	decode[obj](t, s.put(t, path, root.Global, obj{"max_members": 100}), http.StatusOK)
	if r := s.post(t, "/platform/api/service/subscriptions", sa, obj{"plan_id": "tiny-a"}); r.Status != http.StatusCreated {
		t.Errorf("plan change under an override: %s", r)
	}
}

func itoa(i int) string { return string(rune('0' + i)) }

// TestCustomPlans: a plan offered to one tenant is in its catalog only, and
// only it may subscribe; a plan may have no RPM maximum.
func TestCustomPlans(t *testing.T) {
	t.Parallel()
	gw := startFakeGateway(t)
	s := startServer(t, "GATEWAY_GRPC_ADDR="+gw.addr, "PLATFORM_ADMIN_EMAILS=root@platform.example")
	root := s.newAdmin(t, "root@platform.example")
	ua, ub := s.newUser(t, "a@a.example"), s.newUser(t, "b@b.example")
	ta, tb := s.newTenant(t, ua, "Alpha", "alpha"), s.newTenant(t, ub, "Beta", "beta")
	sa, sb := s.scoped(t, ua, ta.ID), s.scoped(t, ub, tb.ID)
	limits := obj{"monthly_requests": nil, "max_api_keys": 5000, "max_members": nil, "max_rpm_per_key": nil, "retention_days": 400}
	p := decode[obj](t, s.post(t, "/platform/api/admin/plans", root.Global, obj{"id": "acme-deal", "name": "Acme deal", "price_usd_month": 25000,
		"limits": limits, "offered_to": ta.ID}), http.StatusCreated)
	if p["offered_to"] != ta.ID || p["limits"].(map[string]any)["max_rpm_per_key"] != nil {
		t.Errorf("plan = %v", p)
	}
	if rows := s.auditRows(t, "plan.create"); len(rows) != 1 || rows[0]["target_id"] != "acme-deal" {
		t.Errorf("audit rows = %v", rows)
	}
	inCatalog := func(tok string) bool {
		for _, it := range decode[obj](t, s.get(t, "/platform/api/service/catalog/plans", tok), http.StatusOK)["items"].([]any) {
			if it.(map[string]any)["id"] == "acme-deal" {
				return true
			}
		}
		return false
	}
	if !inCatalog(sa) || inCatalog(sb) {
		t.Errorf("catalog: tenant A sees the deal %v, tenant B %v; want true, false", inCatalog(sa), inCatalog(sb))
	}
	wantField(t, s.post(t, "/platform/api/service/subscriptions", sb, obj{"plan_id": "acme-deal"}), "plan_id")
	if r := s.post(t, "/platform/api/service/subscriptions", sa, obj{"plan_id": "acme-deal"}); r.Status != http.StatusCreated {
		t.Fatalf("tenant A subscribes to its deal: %s", r)
	}
	_, tenants := s.grpcClients(t)
	c, err := tenants.GetTenantContext(context.Background(), &platformv1.GetTenantContextRequest{TenantId: ta.ID})
	if err != nil {
		t.Fatal(err)
	}
	if l := c.GetTenant().GetLimits(); c.GetTenant().GetPlanId() != "acme-deal" || l.GetMaxRpmPerKey() != 0 || l.GetMonthlyRequests() != 0 || l.GetMaxApiKeys() != 5000 {
		t.Errorf("tenant context = %v %v, want acme-deal without RPM or request maximum", c.GetTenant().GetPlanId(), l)
	}
	// A plan offered to one tenant is no default plan for everyone.
	wantField(t, s.put(t, "/platform/api/admin/configs/default_plan", root.Global, obj{"value": "acme-deal"}), "value")
	all := decode[obj](t, s.get(t, "/platform/api/admin/plans", root.Global), http.StatusOK)
	if n := len(all["items"].([]any)); n != 4 {
		t.Errorf("admin plan list has %d plans, want 4", n)
	}

	// Conflicts and bad input.
	wantError(t, s.post(t, "/platform/api/admin/plans", root.Global, obj{"id": "acme-deal", "name": "again", "price_usd_month": 1, "limits": limits}), http.StatusConflict, "plan_exists")
	for _, c := range []struct {
		body  obj
		field string
	}{
		{obj{"id": "Bad Id", "name": "x", "price_usd_month": 1, "limits": limits}, "id"},
		{obj{"id": "ok-id", "name": "", "price_usd_month": 1, "limits": limits}, "name"},
		{obj{"id": "ok-id", "name": "x", "limits": limits}, "price_usd_month"},
		{obj{"id": "ok-id", "name": "x", "price_usd_month": 1}, "limits"},
		{obj{"id": "ok-id", "name": "x", "price_usd_month": 1, "limits": obj{"monthly_requests": 1}}, "limits.max_api_keys"},
		{obj{"id": "ok-id", "name": "x", "price_usd_month": 1, "limits": limits, "offered_to": "00000000-0000-4000-8000-000000000000"}, "offered_to"},
		{obj{"id": "ok-id", "name": "x", "price_usd_month": 1, "limits": limits, "offered_to": "acme"}, "offered_to"},
	} {
		wantField(t, s.post(t, "/platform/api/admin/plans", root.Global, c.body), c.field)
	}
}
