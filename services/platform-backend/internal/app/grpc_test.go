package app

import (
	"context"
	"encoding/json"
	"net/http"
	"testing"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	platformv1 "trueportai/proto/gen/trueport/platform/v1"
	"trueportai/services/platform-backend/internal/token"
)

func TestGRPCIntrospectToken(t *testing.T) {
	t.Parallel()
	s := startServer(t)
	auth, _ := s.grpcClients(t)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()

	owner := s.newUser(t, "owner@example.com")
	tn := s.newTenant(t, owner, "Acme", "acme")
	member := s.newUser(t, "member@example.com")
	s.addMember(t, tn.ID, member.ID, "member")
	memberTok := s.scoped(t, member, tn.ID)
	sw := decode[struct {
		Token string `json:"scoped_access_token"`
	}](t, s.post(t, "/platform/api/service/auth/switch-environment", memberTok, obj{"env": "development"}), http.StatusOK).Token

	introspect := func(t *testing.T, tok string) *platformv1.IntrospectTokenResponse {
		t.Helper()
		r, err := auth.IntrospectToken(ctx, &platformv1.IntrospectTokenRequest{Token: tok})
		if err != nil {
			t.Fatalf("IntrospectToken: %v", err)
		}
		return r
	}

	t.Run("scoped", func(t *testing.T) {
		r := introspect(t, sw)
		if !r.GetActive() || r.GetTokenType() != "scoped" || r.GetTenantId() != tn.ID || r.GetRole() != "member" ||
			r.GetEnv() != "development" || r.GetUserId() != member.ID || r.GetEmail() != "member@example.com" {
			t.Errorf("introspect scoped = %v", r)
		}
		if exp := r.GetExpiresAt().AsTime(); time.Until(exp) < time.Minute {
			t.Errorf("expires_at = %v", exp)
		}
	})
	t.Run("global", func(t *testing.T) {
		r := introspect(t, owner.Global)
		if !r.GetActive() || r.GetTokenType() != "global" || r.GetUserId() != owner.ID || r.GetTenantId() != "" || r.GetRole() != "" {
			t.Errorf("introspect global = %v", r)
		}
	})
	t.Run("garbage", func(t *testing.T) {
		for _, tok := range []string{"garbage", "a.b.c", tamper(t, sw, "role", "owner"), tamper(t, sw, "tid", "00000000-0000-0000-0000-000000000000")} {
			if r := introspect(t, tok); r.GetActive() || r.GetReason() == "" || r.GetTenantId() != "" || r.GetRole() != "" {
				t.Errorf("introspect %q = %v, want inactive with a reason", tok, r)
			}
		}
		_, err := auth.IntrospectToken(ctx, &platformv1.IntrospectTokenRequest{})
		if status.Code(err) != codes.InvalidArgument {
			t.Errorf("empty token: err = %v, want InvalidArgument", err)
		}
	})
	t.Run("current-role", func(t *testing.T) {
		if _, err := s.db.Exec(ctx, `UPDATE memberships SET role = 'admin' WHERE tenant_id = $1 AND user_id = $2`, tn.ID, member.ID); err != nil {
			t.Fatal(err)
		}
		if r := introspect(t, sw); !r.GetActive() || r.GetRole() != "admin" {
			t.Errorf("after role change = %v, want the current role admin", r)
		}
	})
	t.Run("member-removed", func(t *testing.T) {
		if _, err := s.db.Exec(ctx, `DELETE FROM memberships WHERE tenant_id = $1 AND user_id = $2`, tn.ID, member.ID); err != nil {
			t.Fatal(err)
		}
		for _, tok := range []string{memberTok, sw} {
			if r := introspect(t, tok); r.GetActive() || r.GetRole() != "" {
				t.Errorf("after removal = %v, want inactive", r)
			}
		}
		// The member's global token is still fine.
		if r := introspect(t, member.Global); !r.GetActive() {
			t.Errorf("global token after removal = %v", r)
		}
	})
	t.Run("tenant-suspended", func(t *testing.T) {
		ownerTok := s.scoped(t, owner, tn.ID)
		if _, err := s.db.Exec(ctx, `UPDATE tenants SET status = 'suspended' WHERE id = $1`, tn.ID); err != nil {
			t.Fatal(err)
		}
		if r := introspect(t, ownerTok); r.GetActive() {
			t.Errorf("suspended tenant token = %v, want inactive", r)
		}
	})
	t.Run("revoked", func(t *testing.T) {
		if _, err := s.db.Exec(ctx, `UPDATE users SET token_version = token_version + 1 WHERE id = $1`, owner.ID); err != nil {
			t.Fatal(err)
		}
		if r := introspect(t, owner.Global); r.GetActive() || r.GetReason() != "revoked" {
			t.Errorf("revoked = %v", r)
		}
	})
	t.Run("expired", func(t *testing.T) {
		old, _, err := s.issuer(t, func() time.Time { return time.Now().Add(-3 * time.Hour) }).Issue(token.Claims{Subject: member.ID, Type: token.TypeGlobal}, time.Hour)
		if err != nil {
			t.Fatal(err)
		}
		if r := introspect(t, old); r.GetActive() || r.GetReason() != "expired" {
			t.Errorf("expired = %v", r)
		}
	})
	t.Run("jwks", func(t *testing.T) {
		r, err := auth.GetJWKS(ctx, &platformv1.GetJWKSRequest{})
		if err != nil {
			t.Fatal(err)
		}
		httpJWKS := s.get(t, "/platform/api/global/auth/.well-known/jwks.json", "")
		var a, b any
		_ = json.Unmarshal(r.GetJwksJson(), &a)
		_ = json.Unmarshal(httpJWKS.Body, &b)
		aj, _ := json.Marshal(a)
		bj, _ := json.Marshal(b)
		if string(aj) != string(bj) || len(aj) < 20 {
			t.Errorf("gRPC JWKS %s != HTTP JWKS %s", aj, bj)
		}
	})
}

func TestGRPCTenantContext(t *testing.T) {
	t.Parallel()
	s := startServer(t)
	_, tenants := s.grpcClients(t)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()

	owner := s.newUser(t, "owner@example.com")
	tn := s.newTenant(t, owner, "Acme", "acme")
	other := s.newTenant(t, owner, "Other", "other-co")
	tok := s.scoped(t, owner, tn.ID)
	const openaiKey, anthropicKey = "sk-proj-TenantContextOpenAIKey0001", "sk-ant-TenantContextAnthropicKey02"
	for key, val := range map[string]any{
		"providers.openai.api_key":            openaiKey,
		"providers.anthropic.api_key":         anthropicKey,
		"providers.openai.base_url":           "http://127.0.0.1:1/v1/",
		"gateway.default_rpm":                 90,
		"gateway.allowed_models":              []string{"gpt-4o-mini"},
		"providers.bedrock.region":            "eu-west-3",
		"providers.bedrock.access_key_id":     "AKIATENANTCONTEXT001",
		"providers.bedrock.secret_access_key": "tenant-context-aws-secret-0001",
		"providers.compat.groq.base_url":      "https://api.groq.test/openai/v1",
		"providers.compat.groq.api_key":       "gsk_TenantContextGroqKey0001",
		"providers.compat.local.base_url":     "http://127.0.0.1:11434/v1",
		"providers.azure.resources":           []string{"acme-prod"},
		"providers.azure.deployments":         []string{"gpt4o-prod=gpt-4o"},
	} {
		decode[obj](t, s.put(t, "/platform/api/service/configs/"+key, tok, obj{"value": val}), http.StatusOK)
	}

	r, err := tenants.GetTenantContext(ctx, &platformv1.GetTenantContextRequest{TenantId: tn.ID})
	if err != nil {
		t.Fatalf("GetTenantContext: %v", err)
	}
	tc := r.GetTenant()
	if tc.GetTenantId() != tn.ID || tc.GetSlug() != "acme" || tc.GetStatus() != "active" || tc.GetPlanId() != "free" {
		t.Errorf("tenant context = %v", tc)
	}
	p := tc.GetProviders()
	if p["openai"].GetApiKey() != openaiKey || p["anthropic"].GetApiKey() != anthropicKey || p["google"].GetApiKey() != "" {
		t.Errorf("provider keys = %v", p)
	}
	if p["openai"].GetBaseUrl() != "http://127.0.0.1:1/v1" {
		t.Errorf("openai base_url = %q", p["openai"].GetBaseUrl())
	}
	if b := p["bedrock"]; b.GetRegion() != "eu-west-3" || b.GetAccessKeyId() != "AKIATENANTCONTEXT001" || b.GetSecretAccessKey() != "tenant-context-aws-secret-0001" {
		t.Errorf("bedrock = %v", b)
	}
	if g := p["compat.groq"]; g.GetBaseUrl() != "https://api.groq.test/openai/v1" || g.GetApiKey() != "gsk_TenantContextGroqKey0001" {
		t.Errorf("compat.groq = %v", g)
	}
	if l := p["compat.local"]; l.GetBaseUrl() != "http://127.0.0.1:11434/v1" || l.GetApiKey() != "" {
		t.Errorf("compat.local = %v", l)
	}
	if az := p["azure"]; len(az.GetResources()) != 1 || az.GetResources()[0] != "acme-prod" || az.GetDeployments()["gpt4o-prod"] != "gpt-4o" {
		t.Errorf("azure = %v", az)
	}
	if tc.GetDefaultRpm() != 90 || len(tc.GetAllowedModels()) != 1 || tc.GetAllowedModels()[0] != "gpt-4o-mini" {
		t.Errorf("default_rpm = %d, allowed_models = %v", tc.GetDefaultRpm(), tc.GetAllowedModels())
	}
	if l := tc.GetLimits(); l.GetMonthlyRequests() != 10000 || l.GetMaxApiKeys() != 3 || l.GetRetentionDays() != 7 {
		t.Errorf("limits = %v", l)
	}
	if st := tc.GetStorage(); st == nil || !st.GetRedactLoggedBodies() || st.GetRetentionDays() != 7 {
		t.Errorf("storage = %v", st)
	}

	// The other tenant has its own (empty) context.
	r, err = tenants.GetTenantContext(ctx, &platformv1.GetTenantContextRequest{TenantId: other.ID})
	if err != nil {
		t.Fatal(err)
	}
	if r.GetTenant().GetProviders()["openai"].GetApiKey() != "" || r.GetTenant().GetDefaultRpm() != 60 || r.GetTenant().GetProviders()["compat.groq"] != nil {
		t.Errorf("other tenant context = %v", r.GetTenant())
	}

	for _, id := range []string{"00000000-0000-0000-0000-000000000000", "not-a-uuid", "", "x\x00y"} {
		_, err := tenants.GetTenantContext(ctx, &platformv1.GetTenantContextRequest{TenantId: id})
		if status.Code(err) != codes.NotFound {
			t.Errorf("GetTenantContext(%q) err = %v, want NotFound", id, err)
		}
	}
}
