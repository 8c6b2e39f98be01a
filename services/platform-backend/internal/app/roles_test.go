package app

import (
	"encoding/base64"
	"encoding/json"
	"net/http"
	"strings"
	"testing"

	roles "trueportai/services/internal/role"
)

// scopedRoute is one /platform/api/service route that exists now.
type scopedRoute struct {
	name    string
	method  string
	path    string
	body    any
	minRole string
	status  int // success status
}

var scopedRoutes = []scopedRoute{
	{"info", http.MethodGet, "/platform/api/service/info", nil, "viewer", http.StatusOK},
	{"switch-environment", http.MethodPost, "/platform/api/service/auth/switch-environment", obj{"env": "staging"}, "viewer", http.StatusOK},
	{"members", http.MethodGet, "/platform/api/service/members", nil, "viewer", http.StatusOK},
	{"catalog/plans", http.MethodGet, "/platform/api/service/catalog/plans", nil, "viewer", http.StatusOK},
	{"configs GET", http.MethodGet, "/platform/api/service/configs", nil, "viewer", http.StatusOK},
	{"configs PUT", http.MethodPut, "/platform/api/service/configs/gateway.default_rpm", obj{"value": 77}, "admin", http.StatusOK},
	{"storage GET", http.MethodGet, "/platform/api/service/storage", nil, "admin", http.StatusOK},
}

// tamper rewrites a JWT's payload claim without re-signing it.
func tamper(t *testing.T, tok, claim string, value any) string {
	t.Helper()
	parts := strings.Split(tok, ".")
	if len(parts) != 3 {
		t.Fatalf("not a JWT: %q", tok)
	}
	raw, err := base64.RawURLEncoding.DecodeString(parts[1])
	if err != nil {
		t.Fatal(err)
	}
	var claims obj
	if err := json.Unmarshal(raw, &claims); err != nil {
		t.Fatal(err)
	}
	claims[claim] = value
	b, _ := json.Marshal(claims)
	parts[1] = base64.RawURLEncoding.EncodeToString(b)
	return strings.Join(parts, ".")
}

func TestRoleMatrix(t *testing.T) {
	t.Parallel()
	s := startServer(t)

	owner := s.newUser(t, "owner@a.example")
	a := s.newTenant(t, owner, "Tenant A", "tenant-a")
	const aSecret = "sk-ant-TenantASecretCredential-7777"
	ownerTok := s.scoped(t, owner, a.ID)
	decode[obj](t, s.put(t, "/platform/api/service/configs/providers.anthropic.api_key", ownerTok, obj{"value": aSecret}), http.StatusOK)

	tokens := map[string]string{"owner": ownerTok}
	for _, role := range []string{"viewer", "member", "admin"} {
		u := s.newUser(t, role+"@a.example")
		s.addMember(t, a.ID, u.ID, role)
		tokens[role] = s.scoped(t, u, a.ID)
	}

	// An outsider: owner of tenant B with a scoped token for B.
	outsider := s.newUser(t, "outsider@b.example")
	b := s.newTenant(t, outsider, "Tenant B", "tenant-b")
	outsiderTok := s.scoped(t, outsider, b.ID)
	// The outsider cannot select A either.
	wantError(t, s.post(t, "/platform/api/global/auth/select-tenant", outsider.Global, obj{"tenant_id": a.ID}), http.StatusNotFound, "tenant_not_found")
	wantError(t, s.post(t, "/platform/api/global/auth/select-tenant", outsider.Global, obj{"tenant_slug": a.Slug}), http.StatusNotFound, "tenant_not_found")

	viewerGlobal := s.login(t, "viewer@a.example", testPassword)

	// Parallel subtests run inside a group so the checks after it see their effects.
	t.Run("matrix", func(t *testing.T) {
		roleMatrix(t, s, a, b, owner, outsider, tokens, outsiderTok, viewerGlobal, aSecret)
	})

	// The matrix's PUT by admin/owner set the value; it is tenant A's only.
	if got := listConfigs(t, s, tokens["viewer"])["gateway.default_rpm"]["value"]; got != 77.0 {
		t.Errorf("A default_rpm = %v, want 77", got)
	}
	if got := listConfigs(t, s, outsiderTok)["gateway.default_rpm"]["value"]; got != 77.0 {
		t.Errorf("B default_rpm = %v, want 77 (set by B's own PUT)", got)
	}
}

func roleMatrix(t *testing.T, s *server, a, b tenant, owner, outsider user, tokens map[string]string, outsiderTok, viewerGlobal, aSecret string) {
	ownerTok := tokens["owner"]
	forgedRole := tamper(t, tokens["viewer"], "role", "owner")
	forgedTenant := tamper(t, outsiderTok, "tid", a.ID)
	badSig := ownerTok[:len(ownerTok)-4] + "AAAA"
	for _, rt := range scopedRoutes {
		for _, role := range []string{"viewer", "member", "admin", "owner"} {
			t.Run(rt.name+"/"+role, func(t *testing.T) {
				t.Parallel()
				r := s.do(t, req{Method: rt.method, Path: rt.path, Token: tokens[role], Body: rt.body})
				if !roles.AtLeast(role, rt.minRole) {
					env := wantError(t, r, http.StatusForbidden, "insufficient_role")
					if env.Details["required_role"] != rt.minRole {
						t.Errorf("details should name the required role: %s", r.Body)
					}
					return
				}
				if r.Status != rt.status {
					t.Fatalf("status = %s, want %d", r, rt.status)
				}
				if rt.name == "info" {
					info := decode[obj](t, r, rt.status)
					if info["id"] != a.ID || info["role"] != role {
						t.Errorf("info = %s", r.Body)
					}
				}
				wantNoSecret(t, r, aSecret)
			})
		}
		t.Run(rt.name+"/non-member", func(t *testing.T) {
			t.Parallel()
			r := s.do(t, req{Method: rt.method, Path: rt.path, Token: outsiderTok, Body: rt.body})
			if r.Status != rt.status {
				t.Fatalf("status = %s, want %d (own tenant B)", r, rt.status)
			}
			body := string(r.Body)
			for _, leak := range []string{a.ID, a.Slug, a.Name, owner.Email, "TenantA", "…7777"} {
				if strings.Contains(body, leak) {
					t.Errorf("tenant B's caller sees %q of tenant A: %s", leak, body)
				}
			}
			if rt.name == "info" {
				if info := decode[obj](t, r, rt.status); info["id"] != b.ID {
					t.Errorf("info = %s, want tenant B", r.Body)
				}
			}
		})
		for _, tc := range []struct {
			name, tok, code string
			hdr             map[string]string
		}{
			{"no-token", "", "missing_token", nil},
			{"global-token", owner.Global, "scoped_token_required", nil},
			{"forged-role", forgedRole, "invalid_token", nil},
			{"forged-tenant", forgedTenant, "invalid_token", nil},
			{"bad-signature", badSig, "invalid_token", nil},
			{"garbage", "not.a.jwt", "invalid_token", nil},
			{"basic-auth", "", "missing_token", map[string]string{"Authorization": "Basic b3duZXI6cHc="}},
			{"empty-bearer", "", "missing_token", map[string]string{"Authorization": "Bearer "}},
			// Dev mode: a global token plus X-Tenant-Slug of a tenant the user is not in.
			{"dev-slug-non-member", outsider.Global, "tenant_not_found", map[string]string{"X-Tenant-Slug": a.Slug}},
		} {
			t.Run(rt.name+"/"+tc.name, func(t *testing.T) {
				t.Parallel()
				r := s.do(t, req{Method: rt.method, Path: rt.path, Token: tc.tok, Body: rt.body, Header: tc.hdr})
				want := http.StatusUnauthorized
				if tc.code == "tenant_not_found" {
					want = http.StatusNotFound
				}
				wantError(t, r, want, tc.code)
				wantNoSecret(t, r, aSecret)
			})
		}
		// The auth scheme is case-insensitive (RFC 7235).
		t.Run(rt.name+"/lowercase-bearer", func(t *testing.T) {
			t.Parallel()
			r := s.do(t, req{Method: rt.method, Path: rt.path, Body: rt.body, Header: map[string]string{"Authorization": "bearer " + ownerTok}})
			if r.Status != rt.status {
				t.Errorf("status = %s, want %d", r, rt.status)
			}
		})
		// Dev mode: a global token plus X-Tenant-Slug acts with the real role.
		t.Run(rt.name+"/dev-slug-member", func(t *testing.T) {
			t.Parallel()
			r := s.do(t, req{Method: rt.method, Path: rt.path, Token: viewerGlobal, Body: rt.body, Header: map[string]string{"X-Tenant-Slug": a.Slug}})
			if rt.minRole == "viewer" {
				if r.Status != rt.status {
					t.Errorf("status = %s, want %d", r, rt.status)
				}
				return
			}
			wantError(t, r, http.StatusForbidden, "insufficient_role")
		})
	}
}

func TestRoleChangesApplyToExistingTokens(t *testing.T) {
	t.Parallel()
	s := startServer(t)
	owner := s.newUser(t, "owner@a.example")
	a := s.newTenant(t, owner, "Tenant A", "tenant-a")
	u := s.newUser(t, "admin@a.example")
	s.addMember(t, a.ID, u.ID, "admin")
	tok := s.scoped(t, u, a.ID)
	decode[obj](t, s.get(t, "/platform/api/service/storage", tok), http.StatusOK)

	// Demoted: the old admin token no longer passes admin routes.
	if _, err := s.db.Exec(t.Context(), `UPDATE memberships SET role = 'viewer' WHERE tenant_id = $1 AND user_id = $2`, a.ID, u.ID); err != nil {
		t.Fatal(err)
	}
	wantError(t, s.get(t, "/platform/api/service/storage", tok), http.StatusForbidden, "insufficient_role")
	if info := decode[obj](t, s.get(t, "/platform/api/service/info", tok), http.StatusOK); info["role"] != "viewer" {
		t.Errorf("info role = %v, want the current role viewer", info["role"])
	}

	// Removed: the token is dead.
	if _, err := s.db.Exec(t.Context(), `DELETE FROM memberships WHERE tenant_id = $1 AND user_id = $2`, a.ID, u.ID); err != nil {
		t.Fatal(err)
	}
	wantError(t, s.get(t, "/platform/api/service/info", tok), http.StatusUnauthorized, "invalid_token")

	// Suspended tenant: 403 on service routes, select-tenant refused.
	ownerTok := s.scoped(t, owner, a.ID)
	if _, err := s.db.Exec(t.Context(), `UPDATE tenants SET status = 'suspended' WHERE id = $1`, a.ID); err != nil {
		t.Fatal(err)
	}
	wantError(t, s.get(t, "/platform/api/service/info", ownerTok), http.StatusForbidden, "tenant_suspended")
	wantError(t, s.post(t, "/platform/api/global/auth/select-tenant", owner.Global, obj{"tenant_id": a.ID}), http.StatusForbidden, "tenant_suspended")

	// Token version bump (password change/reset) revokes global and scoped tokens.
	if _, err := s.db.Exec(t.Context(), `UPDATE users SET token_version = token_version + 1 WHERE id = $1`, owner.ID); err != nil {
		t.Fatal(err)
	}
	wantError(t, s.get(t, "/platform/api/global/tenants", owner.Global), http.StatusUnauthorized, "invalid_token")
}

func TestCrossTenantConfigs(t *testing.T) {
	t.Parallel()
	s := startServer(t)
	ua := s.newUser(t, "a@a.example")
	ub := s.newUser(t, "b@b.example")
	ta := s.newTenant(t, ua, "Tenant A", "tenant-a")
	tb := s.newTenant(t, ub, "Tenant B", "tenant-b")
	// B's admin (not owner) token.
	bAdmin := s.newUser(t, "admin@b.example")
	s.addMember(t, tb.ID, bAdmin.ID, "admin")
	aTok, bTok := s.scoped(t, ua, ta.ID), s.scoped(t, bAdmin, tb.ID)

	const aKey, bKey = "sk-AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAaaaa", "sk-BBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBbbbb"
	for _, tc := range []struct {
		tok, key string
		rpm      int
		models   []string
	}{{aTok, aKey, 11, []string{"model-a"}}, {bTok, bKey, 22, []string{"model-b"}}} {
		decode[obj](t, s.put(t, "/platform/api/service/configs/providers.openai.api_key", tc.tok, obj{"value": tc.key}), http.StatusOK)
		decode[obj](t, s.put(t, "/platform/api/service/configs/gateway.default_rpm", tc.tok, obj{"value": tc.rpm}), http.StatusOK)
		decode[obj](t, s.put(t, "/platform/api/service/configs/gateway.allowed_models", tc.tok, obj{"value": tc.models}), http.StatusOK)
	}

	// B's token acting on A: X-Tenant-Slug is ignored for scoped tokens;
	// writes land in B only.
	r := s.do(t, req{Method: http.MethodPut, Path: "/platform/api/service/configs/gateway.default_rpm", Token: bTok,
		Body: obj{"value": 33}, Header: map[string]string{"X-Tenant-Slug": ta.Slug}})
	decode[obj](t, r, http.StatusOK)
	r = s.do(t, req{Method: http.MethodGet, Path: "/platform/api/service/configs", Token: bTok, Header: map[string]string{"X-Tenant-Slug": ta.Slug}})
	wantNoSecret(t, r, aKey)
	if strings.Contains(string(r.Body), "aaaa") || strings.Contains(string(r.Body), "model-a") {
		t.Errorf("B sees A's configs: %s", r.Body)
	}

	ca, cb := listConfigs(t, s, aTok), listConfigs(t, s, bTok)
	if ca["gateway.default_rpm"]["value"] != 11.0 || cb["gateway.default_rpm"]["value"] != 33.0 {
		t.Errorf("default_rpm A = %v, B = %v; want 11 and 33", ca["gateway.default_rpm"]["value"], cb["gateway.default_rpm"]["value"])
	}
	if ca["providers.openai.api_key"]["value"] != "sk-…aaaa" || cb["providers.openai.api_key"]["value"] != "sk-…bbbb" {
		t.Errorf("api keys A = %v, B = %v", ca["providers.openai.api_key"]["value"], cb["providers.openai.api_key"]["value"])
	}
	ma, _ := json.Marshal(ca["gateway.allowed_models"]["value"])
	mb, _ := json.Marshal(cb["gateway.allowed_models"]["value"])
	if string(ma) != `["model-a"]` || string(mb) != `["model-b"]` {
		t.Errorf("allowed_models A = %s, B = %s", ma, mb)
	}

	// A ciphertext copied into another tenant's row does not open there.
	if _, err := s.db.Exec(t.Context(), `UPDATE tenant_configs SET value = (SELECT value FROM tenant_configs WHERE tenant_id = $1 AND key = 'providers.openai.api_key')
		WHERE tenant_id = $2 AND key = 'providers.openai.api_key'`, ta.ID, tb.ID); err != nil {
		t.Fatal(err)
	}
	r = s.get(t, "/platform/api/service/configs", bTok)
	wantNoSecret(t, r, aKey)
	if strings.Contains(string(r.Body), "aaaa") {
		t.Errorf("A's ciphertext opened under B: %s", r.Body)
	}
}
