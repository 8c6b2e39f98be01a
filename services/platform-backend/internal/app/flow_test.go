package app

import (
	"context"
	"encoding/json"
	"net/http"
	"regexp"
	"strings"
	"testing"
	"time"
)

var uuidRE = regexp.MustCompile(`^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$`)

func wantUUID(t *testing.T, what, s string) {
	t.Helper()
	if !uuidRE.MatchString(s) {
		t.Errorf("%s = %q, want a UUID", what, s)
	}
}

func wantRFC3339UTC(t *testing.T, what string, v any) {
	t.Helper()
	s, _ := v.(string)
	ts, err := time.Parse(time.RFC3339Nano, s)
	if err != nil || !strings.HasSuffix(s, "Z") {
		t.Errorf("%s = %v, want an RFC 3339 UTC time", what, v)
		return
	}
	if d := time.Since(ts); d < -time.Minute || d > time.Hour {
		t.Errorf("%s = %s is not recent", what, s)
	}
}

// wantKeys asserts m has exactly the given keys.
func wantKeys(t *testing.T, what string, m obj, keys ...string) {
	t.Helper()
	for _, k := range keys {
		if _, ok := m[k]; !ok {
			t.Errorf("%s lacks %q: %v", what, k, m)
		}
	}
	if len(m) != len(keys) {
		t.Errorf("%s has keys %v, want exactly %v", what, keysOf(m), keys)
	}
}

func keysOf(m obj) []string {
	var out []string
	for k := range m {
		out = append(out, k)
	}
	return out
}

type list struct {
	Items  []obj `json:"items"`
	Total  int   `json:"total"`
	Limit  int   `json:"limit"`
	Offset int   `json:"offset"`
}

// wantEnvelope asserts the pagination envelope (httpserver.List) and decodes it.
func wantEnvelope(t *testing.T, r resp) list {
	t.Helper()
	raw := decode[obj](t, r, http.StatusOK)
	wantKeys(t, "list envelope", raw, "items", "total", "limit", "offset")
	if _, ok := raw["items"].([]any); !ok {
		t.Errorf("items is not an array: %s", r.Body)
	}
	return decode[list](t, r, http.StatusOK)
}

func TestPlatformFlow(t *testing.T) {
	t.Parallel()
	s := startServer(t)
	const (
		register = "/platform/api/global/auth/register"
		login    = "/platform/api/global/auth/login"
	)

	// Register: 201 {user:{id,email,name,created_at}}.
	r := s.post(t, register, "", obj{"email": "Alice@Example.com", "password": testPassword, "name": " Alice "})
	reg := decode[obj](t, r, http.StatusCreated)
	wantKeys(t, "register answer", reg, "user")
	u, _ := reg["user"].(obj)
	for _, k := range []string{"id", "email", "name", "created_at"} {
		if _, ok := u[k]; !ok {
			t.Errorf("user lacks %q: %s", k, r.Body)
		}
	}
	if _, ok := u["password_hash"]; ok || strings.Contains(string(r.Body), "argon2") || strings.Contains(string(r.Body), testPassword) {
		t.Errorf("register answer leaks the password or its hash: %s", r.Body)
	}
	wantUUID(t, "user.id", u["id"].(string))
	wantRFC3339UTC(t, "user.created_at", u["created_at"])
	if u["email"] != "alice@example.com" || u["name"] != "Alice" {
		t.Errorf("user = %v, want lower-cased email and trimmed name", u)
	}

	// Same email in another case: 409 email_taken.
	r = s.post(t, register, "", obj{"email": "ALICE@example.COM", "password": testPassword})
	wantError(t, r, http.StatusConflict, "email_taken")

	// Login (any case of the email).
	r = s.post(t, login, "", obj{"email": "alice@EXAMPLE.com", "password": testPassword})
	lg := decode[obj](t, r, http.StatusOK)
	wantKeys(t, "login answer", lg, "global_access_token", "token_type", "expires_in", "user")
	if lg["token_type"] != "Bearer" {
		t.Errorf("token_type = %v", lg["token_type"])
	}
	if exp, _ := lg["expires_in"].(float64); exp < 15*60-5 || exp > 60*60 {
		t.Errorf("expires_in = %v, want 15–60 min", lg["expires_in"])
	}
	alice := user{ID: u["id"].(string), Email: "alice@example.com", Global: lg["global_access_token"].(string)}

	// Wrong password and unknown email: identical 401 bodies except request_id.
	wrong := s.post(t, login, "", obj{"email": "alice@example.com", "password": "wrong-password-123"})
	unknown := s.post(t, login, "", obj{"email": "nobody@example.com", "password": "wrong-password-123"})
	ew := wantError(t, wrong, http.StatusUnauthorized, "invalid_credentials")
	eu := wantError(t, unknown, http.StatusUnauthorized, "invalid_credentials")
	if ew.RequestID == eu.RequestID {
		t.Errorf("request ids should differ")
	}
	if a, b := strings.Replace(string(wrong.Body), ew.RequestID, "", 1), strings.Replace(string(unknown.Body), eu.RequestID, "", 1); a != b {
		t.Errorf("login answers differ:\n wrong password: %s\n unknown email:  %s", wrong.Body, unknown.Body)
	}

	// Create tenant: 201 {id,name,slug,status,plan,role:"owner",created_at}.
	r = s.post(t, "/platform/api/global/tenants", alice.Global, obj{"name": "Acme Inc", "slug": "acme"})
	tn := decode[obj](t, r, http.StatusCreated)
	wantKeys(t, "tenant", tn, "id", "name", "slug", "status", "plan", "role", "created_at")
	wantUUID(t, "tenant.id", tn["id"].(string))
	wantRFC3339UTC(t, "tenant.created_at", tn["created_at"])
	if tn["name"] != "Acme Inc" || tn["slug"] != "acme" || tn["status"] != "active" || tn["plan"] != "free" || tn["role"] != "owner" {
		t.Errorf("tenant = %s", r.Body)
	}
	acmeID := tn["id"].(string)
	wantError(t, s.post(t, "/platform/api/global/tenants", alice.Global, obj{"name": "Other", "slug": "acme"}), http.StatusConflict, "slug_taken")
	s.newTenant(t, alice, "Beta", "beta-corp")

	// List tenants: envelope, caller's role, newest first, pagination.
	l := wantEnvelope(t, s.get(t, "/platform/api/global/tenants", alice.Global))
	if l.Total != 2 || len(l.Items) != 2 || l.Limit != 50 || l.Offset != 0 {
		t.Fatalf("tenants list = %+v", l)
	}
	if l.Items[0]["slug"] != "beta-corp" || l.Items[1]["slug"] != "acme" || l.Items[1]["role"] != "owner" {
		t.Errorf("tenants list items = %v", l.Items)
	}
	l = wantEnvelope(t, s.get(t, "/platform/api/global/tenants?limit=1&offset=1", alice.Global))
	if l.Total != 2 || len(l.Items) != 1 || l.Limit != 1 || l.Offset != 1 || l.Items[0]["slug"] != "acme" {
		t.Errorf("page 2 = %+v", l)
	}
	l = wantEnvelope(t, s.get(t, "/platform/api/global/tenants?limit=1000000000", alice.Global))
	if l.Limit != 200 {
		t.Errorf("limit=1000000000 should clamp to 200, got %d", l.Limit)
	}

	// Check availability (public).
	for _, tc := range []struct {
		slug      string
		available bool
		reason    string
	}{
		{"fresh-name", true, ""},
		{"acme", false, "taken"},
		{"admin", false, "reserved"},
		{"Bad_Slug", false, "invalid"},
		{"ab", false, "invalid"},
		{"-abc", false, "invalid"},
		{"a--b", false, "invalid"},
	} {
		r := s.get(t, "/platform/api/global/tenants/check-availability?slug="+tc.slug, "")
		got := decode[obj](t, r, http.StatusOK)
		if got["slug"] != tc.slug || got["available"] != tc.available {
			t.Errorf("check %q = %s", tc.slug, r.Body)
		}
		if reason, _ := got["reason"].(string); reason != tc.reason {
			t.Errorf("check %q reason = %q, want %q", tc.slug, reason, tc.reason)
		}
	}
	wantField(t, s.get(t, "/platform/api/global/tenants/check-availability", ""), "slug")

	// Select tenant by id and by slug.
	r = s.post(t, "/platform/api/global/auth/select-tenant", alice.Global, obj{"tenant_id": acmeID})
	sel := decode[obj](t, r, http.StatusOK)
	wantKeys(t, "select-tenant answer", sel, "scoped_access_token", "token_type", "expires_in", "tenant", "role", "env")
	if sel["role"] != "owner" || sel["env"] != "production" || sel["token_type"] != "Bearer" {
		t.Errorf("select-tenant = %s", r.Body)
	}
	if st, _ := sel["tenant"].(obj); st["id"] != acmeID || st["slug"] != "acme" {
		t.Errorf("select-tenant tenant = %v", sel["tenant"])
	}
	scoped := sel["scoped_access_token"].(string)
	r = s.post(t, "/platform/api/global/auth/select-tenant", alice.Global, obj{"tenant_slug": "acme"})
	if bySlug := decode[obj](t, r, http.StatusOK); bySlug["tenant"].(obj)["id"] != acmeID {
		t.Errorf("select by slug = %s", r.Body)
	}
	wantError(t, s.post(t, "/platform/api/global/auth/select-tenant", alice.Global, obj{"tenant_slug": "nope-nope"}), http.StatusNotFound, "tenant_not_found")
	wantError(t, s.post(t, "/platform/api/global/auth/select-tenant", alice.Global, obj{"tenant_id": "00000000-0000-0000-0000-000000000000"}), http.StatusNotFound, "tenant_not_found")
	wantField(t, s.post(t, "/platform/api/global/auth/select-tenant", alice.Global, obj{}), "tenant_id")

	// Global routes refuse scoped tokens.
	wantError(t, s.get(t, "/platform/api/global/tenants", scoped), http.StatusUnauthorized, "global_token_required")
	wantError(t, s.post(t, "/platform/api/global/tenants", scoped, obj{"name": "X", "slug": "x-corp"}), http.StatusUnauthorized, "global_token_required")
	wantError(t, s.post(t, "/platform/api/global/auth/select-tenant", scoped, obj{"tenant_id": acmeID}), http.StatusUnauthorized, "global_token_required")
	wantError(t, s.get(t, "/platform/api/global/tenants", ""), http.StatusUnauthorized, "missing_token")

	// Service info.
	r = s.get(t, "/platform/api/service/info", scoped)
	info := decode[obj](t, r, http.StatusOK)
	wantKeys(t, "info", info, "id", "name", "slug", "status", "plan", "role", "env", "environments")
	if info["id"] != acmeID || info["role"] != "owner" || info["env"] != "production" || info["plan"] != "free" || info["status"] != "active" {
		t.Errorf("info = %s", r.Body)
	}
	if envs, _ := json.Marshal(info["environments"]); string(envs) != `["production","staging","development"]` {
		t.Errorf("environments = %s", envs)
	}

	// Switch environment.
	r = s.post(t, "/platform/api/service/auth/switch-environment", scoped, obj{"env": "staging"})
	sw := decode[obj](t, r, http.StatusOK)
	wantKeys(t, "switch-environment answer", sw, "scoped_access_token", "token_type", "expires_in", "tenant", "role", "env")
	if sw["env"] != "staging" || sw["role"] != "owner" {
		t.Errorf("switch = %s", r.Body)
	}
	info = decode[obj](t, s.get(t, "/platform/api/service/info", sw["scoped_access_token"].(string)), http.StatusOK)
	if info["env"] != "staging" {
		t.Errorf("info after switch: env = %v", info["env"])
	}
	for _, bad := range []any{"prod", "", "PRODUCTION", 7, nil} {
		wantField(t, s.post(t, "/platform/api/service/auth/switch-environment", scoped, obj{"env": bad}), "env")
	}

	// Members.
	l = wantEnvelope(t, s.get(t, "/platform/api/service/members", scoped))
	if l.Total != 1 || len(l.Items) != 1 {
		t.Fatalf("members = %+v", l)
	}
	wantKeys(t, "member", l.Items[0], "user_id", "email", "name", "role", "joined_at")
	if m := l.Items[0]; m["user_id"] != alice.ID || m["email"] != "alice@example.com" || m["role"] != "owner" || m["name"] != "Alice" {
		t.Errorf("member = %v", m)
	}
	wantRFC3339UTC(t, "joined_at", l.Items[0]["joined_at"])

	// Plans catalog.
	l = wantEnvelope(t, s.get(t, "/platform/api/service/catalog/plans", scoped))
	if l.Total != 3 || len(l.Items) != 3 {
		t.Fatalf("plans = %+v", l)
	}
	for i, id := range []string{"free", "pro", "enterprise"} {
		p := l.Items[i]
		wantKeys(t, "plan", p, "id", "name", "price_usd_month", "limits")
		if p["id"] != id {
			t.Errorf("plan %d = %v, want %s", i, p["id"], id)
		}
		lim, _ := p["limits"].(obj)
		wantKeys(t, "plan limits", lim, "monthly_requests", "max_api_keys", "max_members", "max_rpm_per_key", "retention_days")
		for k, v := range lim {
			if n, ok := v.(float64); !ok || n <= 0 {
				t.Errorf("plan %s limit %s = %v", id, k, v)
			}
		}
	}
	if l.Items[0]["price_usd_month"] != 0.0 || l.Items[1]["price_usd_month"] != 49.0 {
		t.Errorf("prices = %v, %v", l.Items[0]["price_usd_month"], l.Items[1]["price_usd_month"])
	}

	// Configs: registry keys with defaults.
	cfgs := listConfigs(t, s, scoped)
	for _, k := range []string{"providers.openai.api_key", "providers.openai.base_url", "providers.anthropic.api_key", "providers.google.api_key", "providers.azure.api_key", "gateway.default_rpm", "gateway.allowed_models"} {
		if _, ok := cfgs[k]; !ok {
			t.Errorf("configs lack registry key %s", k)
		}
	}
	if c := cfgs["gateway.default_rpm"]; c["value"] != 60.0 || c["secret"] != false || c["updated_at"] != nil {
		t.Errorf("default_rpm default = %v", c)
	}
	if c := cfgs["providers.openai.api_key"]; c["value"] != nil || c["secret"] != true {
		t.Errorf("openai api_key default = %v", c)
	}
	if c := cfgs["gateway.allowed_models"]; c["value"] == nil {
		t.Errorf("allowed_models default = %v", c)
	}

	// Configs PUT: secret masked on read, encrypted at rest.
	const secret = "sk-proj-SuperSecretValue0123456789abcdXYZ9"
	r = s.put(t, "/platform/api/service/configs/providers.openai.api_key", scoped, obj{"value": secret})
	put := decode[obj](t, r, http.StatusOK)
	wantKeys(t, "config", put, "key", "value", "secret", "updated_at")
	if put["key"] != "providers.openai.api_key" || put["secret"] != true || put["value"] != "sk-…XYZ9" {
		t.Errorf("put secret = %s", r.Body)
	}
	wantRFC3339UTC(t, "config.updated_at", put["updated_at"])
	wantNoSecret(t, r, secret)
	r = s.get(t, "/platform/api/service/configs", scoped)
	wantNoSecret(t, r, secret)
	if c := listConfigs(t, s, scoped)["providers.openai.api_key"]; c["value"] != "sk-…XYZ9" {
		t.Errorf("secret on read = %v", c)
	}
	var stored string
	if err := s.db.QueryRow(context.Background(), `SELECT value FROM tenant_configs WHERE tenant_id = $1 AND key = 'providers.openai.api_key'`, acmeID).Scan(&stored); err != nil {
		t.Fatal(err)
	}
	if strings.Contains(stored, secret) || strings.Contains(stored, "SuperSecret") || !strings.HasPrefix(stored, "v1:") {
		t.Errorf("secret not encrypted at rest: %q", stored)
	}
	var n int
	_ = s.db.QueryRow(context.Background(), `SELECT count(*) FROM tenant_configs WHERE value LIKE '%SuperSecret%'`).Scan(&n)
	if n != 0 {
		t.Errorf("plaintext found in %d tenant_configs rows", n)
	}
	if strings.Contains(s.logs.String(), "SuperSecret") {
		t.Errorf("plaintext secret written to the log")
	}

	// Short secrets are masked too: at most half of a secret ever shows.
	for _, sec := range []string{"abcd-efgh", "sk-abcdefgh", "k_1234567", "0123456789ab", "AIza-xyz-12345678"} {
		r := s.put(t, "/platform/api/service/configs/providers.google.api_key", scoped, obj{"value": sec})
		masked, _ := decode[obj](t, r, http.StatusOK)["value"].(string)
		shown := strings.ReplaceAll(masked, "…", "")
		if 2*len(shown) > len(sec) || !strings.Contains(masked, "…") {
			t.Errorf("secret %q masked as %q shows too much", sec, masked)
		}
		if got := listConfigs(t, s, scoped)["providers.google.api_key"]["value"]; got != masked {
			t.Errorf("secret %q read back as %v, written answer %q", sec, got, masked)
		}
	}

	// Non-secret values round-trip typed.
	for _, tc := range []struct {
		key  string
		in   any
		want string
	}{
		{"gateway.default_rpm", 120, `120`},
		{"gateway.allowed_models", []string{" gpt-4o ", "claude-3"}, `["gpt-4o","claude-3"]`},
		{"providers.openai.base_url", "http://127.0.0.1:9999/v1/", `"http://127.0.0.1:9999/v1"`},
	} {
		r := s.put(t, "/platform/api/service/configs/"+tc.key, scoped, obj{"value": tc.in})
		got := decode[struct {
			Value  json.RawMessage `json:"value"`
			Secret bool            `json:"secret"`
		}](t, r, http.StatusOK)
		if string(got.Value) != tc.want || got.Secret {
			t.Errorf("put %s = %s, want value %s", tc.key, r.Body, tc.want)
		}
	}
	if c := listConfigs(t, s, scoped)["gateway.default_rpm"]; c["value"] != 120.0 || c["updated_at"] == nil {
		t.Errorf("default_rpm after put = %v", c)
	}

	// Unknown key and bad values → 400.
	wantError(t, s.put(t, "/platform/api/service/configs/providers.nope.api_key", scoped, obj{"value": "x"}), http.StatusBadRequest, "")
	for _, tc := range []struct {
		key string
		val any
	}{
		{"gateway.default_rpm", "sixty"},
		{"gateway.default_rpm", 1.5},
		{"gateway.default_rpm", 0},
		{"gateway.default_rpm", 100001},
		{"gateway.default_rpm", nil},
		{"gateway.allowed_models", "gpt-4o"},
		{"gateway.allowed_models", []any{1, 2}},
		{"gateway.allowed_models", []string{""}},
		{"providers.openai.api_key", 42},
		{"providers.openai.api_key", "   "},
		{"providers.openai.api_key", obj{"k": "v"}},
		{"providers.openai.base_url", "ftp://example.com"},
		{"providers.openai.base_url", "http://user:pw@example.com"},
		{"providers.openai.base_url", "not a url"},
	} {
		wantField(t, s.put(t, "/platform/api/service/configs/"+tc.key, scoped, obj{"value": tc.val}), "value")
	}
	wantField(t, s.put(t, "/platform/api/service/configs/gateway.default_rpm", scoped, obj{}), "value")
	if c := listConfigs(t, s, scoped)["gateway.default_rpm"]; c["value"] != 120.0 {
		t.Errorf("a rejected PUT changed the value: %v", c)
	}

	// Storage.
	r = s.get(t, "/platform/api/service/storage", scoped)
	stg := decode[obj](t, r, http.StatusOK)
	wantKeys(t, "storage", stg, "log_request_bodies", "log_response_bodies", "redact_logged_bodies", "retention_days")
	if stg["log_request_bodies"] != false || stg["log_response_bodies"] != false || stg["redact_logged_bodies"] != true || stg["retention_days"] != 7.0 {
		t.Errorf("storage defaults = %s", r.Body)
	}
}

// listConfigs returns the configs by key.
func listConfigs(t *testing.T, s *server, tok string) map[string]obj {
	t.Helper()
	r := s.get(t, "/platform/api/service/configs", tok)
	raw := decode[obj](t, r, http.StatusOK)
	if _, ok := raw["items"].([]any); !ok {
		t.Fatalf("configs answer lacks items: %s", r.Body)
	}
	var body struct {
		Items []obj `json:"items"`
	}
	_ = json.Unmarshal(r.Body, &body)
	out := map[string]obj{}
	for _, it := range body.Items {
		wantKeys(t, "config item", it, "key", "value", "secret", "updated_at")
		out[it["key"].(string)] = it
	}
	return out
}

// wantNoSecret asserts neither the secret nor a long chunk of it is in r.
func wantNoSecret(t *testing.T, r resp, secret string) {
	t.Helper()
	body := string(r.Body)
	for i := 0; i+10 <= len(secret); i++ {
		if strings.Contains(body, secret[i:i+10]) {
			t.Errorf("response contains part of the secret (%q): %s", secret[i:i+10], body)
			return
		}
	}
	for k, vs := range r.Header {
		for _, v := range vs {
			if strings.Contains(v, secret) {
				t.Errorf("header %s contains the secret", k)
			}
		}
	}
}
