package app

import (
	"context"
	"encoding/json"
	"net/http"
	"strings"
	"testing"
	"time"

	gatewayv1 "trueportai/proto/gen/trueport/gateway/v1"
	platformv1 "trueportai/proto/gen/trueport/platform/v1"
)

func TestAdminRoleMatrix(t *testing.T) {
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

	routes := []struct {
		method, path string
		body         any
	}{
		{http.MethodGet, "/platform/api/admin/tenants", nil},
		{http.MethodGet, "/platform/api/admin/tenants/" + a.ID, nil},
		{http.MethodPut, "/platform/api/admin/tenants/" + a.ID + "/status", obj{"status": "active"}},
		{http.MethodGet, "/platform/api/admin/users", nil},
		{http.MethodGet, "/platform/api/admin/stats", nil},
		{http.MethodGet, "/platform/api/admin/configs", nil},
		{http.MethodPut, "/platform/api/admin/configs/signup.enabled", obj{"value": true}},
		{http.MethodGet, "/platform/api/admin/audit", nil},
	}
	for _, r := range routes {
		for _, who := range []string{"viewer", "member", "admin", "owner", "owner-global", "platform-admin-global", "platform-admin-scoped", "no-token", "bad-token"} {
			t.Run(r.method+" "+r.path+"/"+who, func(t *testing.T) {
				t.Parallel()
				tok := tokens[who]
				if who == "bad-token" {
					tok = "not.a.jwt"
				}
				got := s.do(t, req{Method: r.method, Path: r.path, Token: tok, Body: r.body})
				switch {
				case who == "no-token":
					wantError(t, got, http.StatusUnauthorized, "missing_token")
				case who == "bad-token":
					wantError(t, got, http.StatusUnauthorized, "invalid_token")
				case strings.HasPrefix(who, "platform-admin"):
					if got.Status != http.StatusOK {
						t.Errorf("status = %s, want 200", got)
					}
				default:
					wantError(t, got, http.StatusForbidden, "platform_admin_required")
				}
			})
		}
	}
}

func TestAdminTenantsUsersStats(t *testing.T) {
	t.Parallel()
	gw := startFakeGateway(t)
	s := startServer(t, "GATEWAY_GRPC_ADDR="+gw.addr, "PLATFORM_ADMIN_EMAILS=root@platform.example")
	root := s.newAdmin(t, "root@platform.example")
	ua, ub := s.newUser(t, "a@a.example"), s.newUser(t, "b@b.example")
	ta, tb := s.newTenant(t, ua, "Alpha", "alpha"), s.newTenant(t, ub, "Beta", "beta")
	s.addMember(t, ta.ID, ub.ID, "viewer")
	gw.setUsage(ta.ID, &gatewayv1.GetUsageSummaryResponse{Requests: 120, Errors: 3, TotalTokens: 4567, CostUsd: 1.25})
	// The platform total comes from a current gateway: the exact cost wins
	// over the float (0.1 + 0.2 as a float is 0.30000000000000004).
	exact := int64(3_000_000_001) // 0.3000000001 USD
	gw.setUsage("", &gatewayv1.GetUsageSummaryResponse{Requests: 999, Errors: 9, TotalTokens: 88888, CostUsd: 0.1 + 0.2, CostUsdE10: &exact})

	list := wantEnvelope(t, s.get(t, "/platform/api/admin/tenants", root.Global))
	if list.Total != 2 || len(list.Items) != 2 {
		t.Fatalf("tenants = %+v", list)
	}
	byID := map[string]obj{}
	for _, it := range list.Items {
		wantKeys(t, "admin tenant", it, "id", "name", "slug", "status", "plan", "created_at", "member_count", "usage_this_month")
		byID[it["id"].(string)] = it
	}
	if it := byID[ta.ID]; it["plan"] != "free" || it["member_count"] != 2.0 {
		t.Errorf("alpha = %v", it)
	}
	if u, _ := byID[ta.ID]["usage_this_month"].(obj); u == nil || u["requests"] != 120.0 || u["total_tokens"] != 4567.0 || u["cost_usd"] != 1.25 || u["errors"] != 3.0 {
		t.Errorf("alpha usage = %v", byID[ta.ID]["usage_this_month"])
	}
	if u, _ := byID[tb.ID]["usage_this_month"].(obj); u == nil || u["requests"] != 0.0 {
		t.Errorf("beta usage = %v", byID[tb.ID]["usage_this_month"])
	}
	// The window is this calendar month (UTC).
	now := time.Now().UTC()
	if w := gw.window(); w[0].Day() != 1 || w[0].Month() != now.Month() || w[0].Hour() != 0 || !w[1].After(now) || w[1].Sub(w[0]) < 28*24*time.Hour {
		t.Errorf("usage window = %v", w)
	}
	// Filters.
	if l := wantEnvelope(t, s.get(t, "/platform/api/admin/tenants?q=ALP", root.Global)); l.Total != 1 || l.Items[0]["slug"] != "alpha" {
		t.Errorf("q=ALP → %+v", l.Items)
	}
	if l := wantEnvelope(t, s.get(t, "/platform/api/admin/tenants?q=%25", root.Global)); l.Total != 0 {
		t.Errorf("q=%% matched %d tenants (LIKE wildcard not escaped)", l.Total)
	}
	wantField(t, s.get(t, "/platform/api/admin/tenants?status=deleted", root.Global), "status")
	wantField(t, s.get(t, "/platform/api/admin/tenants?limit=-1", root.Global), "limit")

	// Detail.
	d := decode[obj](t, s.get(t, "/platform/api/admin/tenants/"+ta.ID, root.Global), http.StatusOK)
	owners, _ := d["owners"].([]any)
	if d["slug"] != "alpha" || d["member_count"] != 2.0 || len(owners) != 1 || owners[0].(obj)["user_id"] != ua.ID {
		t.Errorf("detail = %v", d)
	}
	if l, _ := d["limits"].(obj); l == nil || l["max_members"] != 3.0 {
		t.Errorf("detail limits = %v", d["limits"])
	}
	if sub, _ := d["subscription"].(obj); sub == nil || sub["plan_id"] != "free" {
		t.Errorf("detail subscription = %v", d["subscription"])
	}
	if u, _ := d["usage_this_month"].(obj); u == nil || u["requests"] != 120.0 {
		t.Errorf("detail usage = %v", d["usage_this_month"])
	}
	wantError(t, s.get(t, "/platform/api/admin/tenants/00000000-0000-0000-0000-000000000000", root.Global), http.StatusNotFound, "tenant_not_found")
	wantError(t, s.get(t, "/platform/api/admin/tenants/nope", root.Global), http.StatusNotFound, "tenant_not_found")

	// Users.
	users := wantEnvelope(t, s.get(t, "/platform/api/admin/users", root.Global))
	if users.Total != 3 {
		t.Errorf("users = %+v", users)
	}
	for _, u := range users.Items {
		wantKeys(t, "admin user", u, "id", "email", "name", "platform_admin", "email_verified", "created_at", "tenant_count")
		if strings.Contains(strings.ToLower(string(mustJSON(t, u))), "password") {
			t.Errorf("user item leaks the password hash: %v", u)
		}
		if u["id"] == ub.ID && u["tenant_count"] != 2.0 {
			t.Errorf("b's tenant_count = %v", u["tenant_count"])
		}
		if u["id"] == root.ID && u["platform_admin"] != true {
			t.Errorf("root is not flagged: %v", u)
		}
	}
	if l := wantEnvelope(t, s.get(t, "/platform/api/admin/users?q=b%40B&limit=1", root.Global)); l.Total != 1 || l.Limit != 1 || l.Items[0]["email"] != "b@b.example" {
		t.Errorf("users?q=b@B → %+v", l)
	}

	// Stats.
	st := decode[obj](t, s.get(t, "/platform/api/admin/stats", root.Global), http.StatusOK)
	if st["users"] != 3.0 || st["tenants"] != 2.0 || st["active_tenants"] != 2.0 || st["requests_this_month"] != 999.0 {
		t.Errorf("stats = %v", st)
	}
	if u, _ := st["usage_this_month"].(obj); u == nil || u["total_tokens"] != 88888.0 || u["cost_usd"] != 0.3000000001 {
		t.Errorf("stats usage = %v", st["usage_this_month"])
	}
	if raw := s.get(t, "/platform/api/admin/stats", root.Global); !strings.Contains(string(raw.Body), `"cost_usd":0.3000000001`) {
		t.Errorf("stats cost is not the exact decimal: %s", raw.Body)
	}

	// Gateway down: lists still answer, usage is null.
	gw.srv.Stop()
	list = wantEnvelope(t, s.get(t, "/platform/api/admin/tenants", root.Global))
	for _, it := range list.Items {
		if v, ok := it["usage_this_month"]; !ok || v != nil {
			t.Errorf("usage with the gateway down = %v, want null", v)
		}
	}
	d = decode[obj](t, s.get(t, "/platform/api/admin/tenants/"+tb.ID, root.Global), http.StatusOK)
	if v, ok := d["usage_this_month"]; !ok || v != nil {
		t.Errorf("detail usage with the gateway down = %v", v)
	}
	st = decode[obj](t, s.get(t, "/platform/api/admin/stats", root.Global), http.StatusOK)
	if v, ok := st["requests_this_month"]; !ok || v != nil || st["users"] != 3.0 {
		t.Errorf("stats with the gateway down = %v", st)
	}
}

func TestAdminSuspendTenant(t *testing.T) {
	t.Parallel()
	s := startServer(t, "PLATFORM_ADMIN_EMAILS=root@platform.example")
	changed, revoked := s.events(t, "tenant.changed"), s.events(t, "tokens.revoked")
	auth, _ := s.grpcClients(t)
	root := s.newAdmin(t, "root@platform.example")
	ua, ub := s.newUser(t, "a@a.example"), s.newUser(t, "b@b.example")
	ta, tb := s.newTenant(t, ua, "Alpha", "alpha"), s.newTenant(t, ub, "Beta", "beta")
	aTok, bTok := s.scoped(t, ua, ta.ID), s.scoped(t, ub, tb.ID)
	status := "/platform/api/admin/tenants/" + ta.ID + "/status"

	wantField(t, s.put(t, status, root.Global, obj{"status": "deleted"}), "status")
	wantError(t, s.put(t, "/platform/api/admin/tenants/00000000-0000-0000-0000-000000000000/status", root.Global, obj{"status": "suspended"}), http.StatusNotFound, "tenant_not_found")
	wantNoEvent(t, changed)

	got := decode[obj](t, s.put(t, status, root.Global, obj{"status": "suspended"}), http.StatusOK)
	wantKeys(t, "tenant", got, "id", "name", "slug", "status", "plan", "created_at")
	if got["status"] != "suspended" || got["id"] != ta.ID {
		t.Errorf("suspend answer = %v", got)
	}
	wantEvent(t, changed, map[string]string{"tenant_id": ta.ID, "reason": "status"})
	wantEvent(t, revoked, map[string]string{"tenant_id": ta.ID, "user_id": "", "reason": "tenant_suspended"})

	// The tenant's scoped tokens are refused here and by introspection; others are not.
	wantError(t, s.get(t, "/platform/api/service/info", aTok), http.StatusForbidden, "tenant_suspended")
	wantError(t, s.post(t, "/platform/api/global/auth/select-tenant", ua.Global, obj{"tenant_id": ta.ID}), http.StatusForbidden, "tenant_suspended")
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if in, err := auth.IntrospectToken(ctx, &platformv1.IntrospectTokenRequest{Token: aTok}); err != nil || in.GetActive() || in.GetReason() != "tenant_suspended" {
		t.Errorf("introspection of a suspended tenant's token = %v, %v", in, err)
	}
	decode[obj](t, s.get(t, "/platform/api/service/info", bTok), http.StatusOK)
	if l := wantEnvelope(t, s.get(t, "/platform/api/admin/tenants?status=suspended", root.Global)); l.Total != 1 || l.Items[0]["id"] != ta.ID {
		t.Errorf("suspended tenants = %+v", l.Items)
	}

	// Reactivated: the same token works again.
	decode[obj](t, s.put(t, status, root.Global, obj{"status": "active"}), http.StatusOK)
	wantEvent(t, changed, map[string]string{"tenant_id": ta.ID, "reason": "status"})
	wantEvent(t, revoked, map[string]string{"tenant_id": ta.ID, "reason": "tenant_active"})
	decode[obj](t, s.get(t, "/platform/api/service/info", aTok), http.StatusOK)

	rows := s.auditRows(t, "tenant.status_change")
	if len(rows) != 2 || rows[0]["actor_id"] != root.ID || rows[0]["actor_email"] != "root@platform.example" || rows[0]["target_id"] != ta.ID ||
		rows[0]["tenant_id"] != ta.ID || rows[0]["details"].(map[string]any)["to"] != "suspended" || rows[0]["details"].(map[string]any)["from"] != "active" {
		t.Errorf("status audit rows = %v", rows)
	}
	// Read back through the API, filtered.
	audit := wantEnvelope(t, s.get(t, "/platform/api/admin/audit?action=tenant.status_change&tenant_id="+ta.ID, root.Global))
	if audit.Total != 2 || audit.Items[0]["details"].(obj)["to"] != "active" {
		t.Fatalf("audit = %+v", audit.Items)
	}
	wantKeys(t, "audit entry", audit.Items[0], "id", "at", "actor_id", "actor_email", "action", "target_type", "target_id", "tenant_id", "details")
	if l := wantEnvelope(t, s.get(t, "/platform/api/admin/audit?tenant_id="+tb.ID, root.Global)); l.Total != 0 {
		t.Errorf("audit of b = %+v", l.Items)
	}
	from := time.Now().Add(time.Hour).UTC().Format(time.RFC3339)
	if l := wantEnvelope(t, s.get(t, "/platform/api/admin/audit?from="+from, root.Global)); l.Total != 0 {
		t.Errorf("audit from the future = %+v", l.Items)
	}
	wantField(t, s.get(t, "/platform/api/admin/audit?tenant_id=nope", root.Global), "tenant_id")
	wantField(t, s.get(t, "/platform/api/admin/audit?from=yesterday", root.Global), "from")
}

func TestAdminGlobalConfigs(t *testing.T) {
	t.Parallel()
	s := startServer(t, "GATEWAY_GRPC_ADDR="+deadAddr(t), "PLATFORM_ADMIN_EMAILS=root@platform.example,second@platform.example")
	root := s.newAdmin(t, "root@platform.example")
	const cfgs = "/platform/api/admin/configs/"

	l := wantEnvelope(t, s.get(t, "/platform/api/admin/configs", root.Global))
	vals := map[string]any{}
	for _, it := range l.Items {
		wantKeys(t, "global config", it, "key", "type", "value", "default", "description", "updated_at")
		vals[it["key"].(string)] = it["value"]
	}
	if len(vals) != 3 || vals["signup.enabled"] != true || vals["default_plan"] != "free" {
		t.Errorf("defaults = %v", vals)
	}

	// Validation.
	wantError(t, s.put(t, cfgs+"nope.key", root.Global, obj{"value": 1}), http.StatusBadRequest, "unknown_config_key")
	wantField(t, s.put(t, cfgs+"signup.enabled", root.Global, obj{"value": "no"}), "value")
	wantField(t, s.put(t, cfgs+"signup.enabled", root.Global, obj{}), "value")
	wantField(t, s.put(t, cfgs+"default_plan", root.Global, obj{"value": "platinum"}), "value")
	for _, bad := range []any{
		"cheap",
		[]any{1, 2},
		obj{"gpt-4o": obj{"input_per_1m": -1, "output_per_1m": 10}},
		obj{"gpt-4o": obj{"input_per_1m": 2.5}},
		obj{"gpt-4o": obj{"input_per_1m": 2.5, "output_per_1m": 10, "bogus": 1}},
		obj{"gpt-4o": obj{"input_per_1m": "2.5", "output_per_1m": 10}},
		obj{"": obj{"input_per_1m": 1, "output_per_1m": 1}},
		obj{"gpt-4o": 3},
	} {
		wantField(t, s.put(t, cfgs+"pricing.overrides", root.Global, obj{"value": bad}), "value")
	}

	// pricing.overrides
	p := decode[obj](t, s.put(t, cfgs+"pricing.overrides", root.Global, obj{"value": obj{
		"gpt-4o":          obj{"input_per_1m": 2.5, "output_per_1m": 10, "cached_input_per_1m": 1.25},
		"claude-sonnet-4": obj{"input_per_1m": 3, "output_per_1m": 15},
	}}), http.StatusOK)
	v, _ := p["value"].(obj)
	if g, _ := v["gpt-4o"].(obj); g == nil || g["cached_input_per_1m"] != 1.25 || g["output_per_1m"] != 10.0 {
		t.Errorf("pricing = %v", p)
	}
	if c, _ := v["claude-sonnet-4"].(obj); c == nil || len(c) != 2 {
		t.Errorf("pricing without cached price = %v", v["claude-sonnet-4"])
	}
	wantRFC3339UTC(t, "updated_at", p["updated_at"])

	// default_plan: new tenants start on it.
	decode[obj](t, s.put(t, cfgs+"default_plan", root.Global, obj{"value": "pro"}), http.StatusOK)
	u := s.newUser(t, "founder@x.example")
	if tn := decode[obj](t, s.post(t, "/platform/api/global/tenants", u.Global, obj{"name": "New", "slug": "new-org"}), http.StatusCreated); tn["plan"] != "pro" {
		t.Errorf("new tenant plan = %v, want pro", tn["plan"])
	}

	// signup.enabled=false: register refused, except invited addresses and
	// configured platform admins.
	decode[obj](t, s.put(t, cfgs+"signup.enabled", root.Global, obj{"value": false}), http.StatusOK)
	register := func(email string) resp {
		return s.post(t, "/platform/api/global/auth/register", "", obj{"email": email, "password": testPassword})
	}
	wantError(t, register("stranger@x.example"), http.StatusForbidden, "signup_disabled")
	wantError(t, register(""), http.StatusForbidden, "signup_disabled")
	decode[obj](t, register("Second@Platform.example"), http.StatusCreated)
	tok := s.scoped(t, u, s.tenantIDBySlug(t, "new-org"))
	s.invite(t, tok, "invitee@x.example", "member")
	decode[obj](t, register("invitee@x.example"), http.StatusCreated)
	invitee := user{Email: "invitee@x.example", Global: s.login(t, "invitee@x.example", testPassword)}
	decode[obj](t, s.post(t, "/platform/api/global/invites/accept", invitee.Global, obj{"token": s.inviteToken(t, "invitee@x.example")}), http.StatusOK)
	decode[obj](t, s.put(t, cfgs+"signup.enabled", root.Global, obj{"value": true}), http.StatusOK)
	decode[obj](t, register("stranger@x.example"), http.StatusCreated)

	rows := s.auditRows(t, "global_config.update")
	if len(rows) != 4 || rows[0]["actor_id"] != root.ID || rows[0]["target_id"] != "pricing.overrides" || rows[0]["tenant_id"] != "" {
		t.Errorf("global config audit rows = %v", rows)
	}
	if prev := rows[3]["details"].(map[string]any)["previous"]; prev != false {
		t.Errorf("audit should keep the previous value: %v", rows[3])
	}
}

func (s *server) tenantIDBySlug(t *testing.T, slug string) string {
	t.Helper()
	var id string
	if err := s.db.QueryRow(t.Context(), `SELECT id::text FROM tenants WHERE slug = $1`, slug).Scan(&id); err != nil {
		t.Fatal(err)
	}
	return id
}

func mustJSON(t *testing.T, v any) []byte {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return b
}
