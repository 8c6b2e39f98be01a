package app

import (
	"context"
	"crypto/ed25519"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"trueportai/services/platform-backend/internal/token"
)

func TestHostileBodies(t *testing.T) {
	t.Parallel()
	s := startServer(t)
	u := s.newUser(t, "hostile@example.com")
	s.newTenant(t, u, "Hostile", "hostile")

	big := `{"email":"x@example.com","password":"` + strings.Repeat("a", 1<<20) + `"}`
	huge := `{"name":"` + strings.Repeat("n", 8<<20) + `"}`
	deep := `{"email":` + strings.Repeat("[", 20000) + strings.Repeat("]", 20000) + `}`
	routes := []struct {
		name, method, path string
		global             bool
	}{
		{"register", http.MethodPost, "/platform/api/global/auth/register", false},
		{"login", http.MethodPost, "/platform/api/global/auth/login", false},
		{"select-tenant", http.MethodPost, "/platform/api/global/auth/select-tenant", true},
		{"create-tenant", http.MethodPost, "/platform/api/global/tenants", true},
	}
	for _, rt := range routes {
		tok := ""
		if rt.global {
			tok = u.Global
		}
		for _, tc := range []struct {
			name   string
			body   string
			ct     string
			status int
			code   string
		}{
			{"malformed", `{"email":`, "", 400, "invalid_json"},
			{"not-json", `email=a@b.c`, "", 400, "invalid_json"},
			{"array", `[1,2]`, "", 400, "invalid_json"},
			{"trailing-garbage", `{"email":"a@b.co"} x`, "", 400, "invalid_json"},
			{"empty", ``, "", 400, "invalid_json"},
			{"too-deep", deep, "", 400, ""},
			{"text-plain", `{"email":"a@b.co"}`, "text/plain", 415, "unsupported_media_type"},
			{"form", `email=a@b.co`, "application/x-www-form-urlencoded", 415, "unsupported_media_type"},
			{"no-content-type", `{"email":"a@b.co"}`, "-", 415, "unsupported_media_type"},
			{"json-lookalike", `{"email":"a@b.co"}`, "application/jsonp", 415, "unsupported_media_type"},
			{"oversize", big, "", 413, "body_too_large"},
			{"oversize-no-json", strings.Repeat("x", 1<<20+10), "", 413, "body_too_large"},
			{"oversize-8mib", huge, "", 413, "body_too_large"},
		} {
			t.Run(rt.name+"/"+tc.name, func(t *testing.T) {
				t.Parallel()
				r := s.do(t, req{Method: rt.method, Path: rt.path, Token: tok, Body: tc.body, ContentType: tc.ct})
				wantError(t, r, tc.status, tc.code)
			})
		}
	}
	// Charset parameter and case are fine.
	r := s.do(t, req{Method: http.MethodPost, Path: "/platform/api/global/auth/login", Body: `{"email":"hostile@example.com","password":"` + testPassword + `"}`, ContentType: "Application/JSON; charset=utf-8"})
	decode[obj](t, r, http.StatusOK)
}

func TestHostileFields(t *testing.T) {
	t.Parallel()
	s := startServer(t)
	u := s.newUser(t, "fields@example.com")
	s.newTenant(t, u, "Existing", "existing")
	const register = "/platform/api/global/auth/register"

	t.Run("group", func(t *testing.T) {
		for _, email := range []any{
			"", "plain", "a@b", "a@@b.com", "@example.com", "a@", "<a@b.com>", "Alice <a@b.com>", "a@b.com, c@d.com",
			"a b@c.com", "a@b.com\nBcc: x@y.com", "a\x00@b.com", strings.Repeat("a", 250) + "@b.com", "' OR '1'='1", "a@b.com' OR '1'='1",
			"x@y.com; DROP TABLE users;--", 42, true, []string{"a@b.com"}, obj{"$ne": ""}, nil,
		} {
			t.Run("register-email", func(t *testing.T) {
				t.Parallel()
				wantField(t, s.post(t, register, "", obj{"email": email, "password": testPassword}), "email")
			})
		}
		for _, pw := range []any{"", "short", strings.Repeat("p", 257), 1234567890, nil} {
			t.Run("register-password", func(t *testing.T) {
				t.Parallel()
				wantField(t, s.post(t, register, "", obj{"email": "pw@example.com", "password": pw}), "password")
			})
		}
		for _, name := range []any{strings.Repeat("n", 201), "bad\x00name", "line\nbreak", 7} {
			t.Run("register-name", func(t *testing.T) {
				t.Parallel()
				wantField(t, s.post(t, register, "", obj{"email": "name@example.com", "password": testPassword, "name": name}), "name")
			})
		}
		// Login: malformed emails answer like unknown ones (no enumeration, no 500).
		for _, email := range []any{"a\x00@b.com", "' OR 1=1 --", "x@y.com'; DROP TABLE users;--", strings.Repeat("e", 5000), "FIELDS@example.com\x00"} {
			t.Run("login-email", func(t *testing.T) {
				t.Parallel()
				wantError(t, s.post(t, "/platform/api/global/auth/login", "", obj{"email": email, "password": testPassword}), http.StatusUnauthorized, "invalid_credentials")
			})
		}
		for _, body := range []obj{{"password": testPassword}, {"email": 5, "password": testPassword}, {"email": "fields@example.com"}, {"email": "fields@example.com", "password": 5}} {
			t.Run("login-missing-or-typed", func(t *testing.T) {
				t.Parallel()
				wantError(t, s.post(t, "/platform/api/global/auth/login", "", body), http.StatusBadRequest, "")
			})
		}
		for _, slug := range []any{"", "A", "ab", "Acme", "a_b", "ab-", "-ab", "a--b", "../etc", "acme;drop", "' or 1=1--", "ácme", "acme\x00", strings.Repeat("a", 80), "admin", "www", 12, nil} {
			t.Run("tenant-slug", func(t *testing.T) {
				t.Parallel()
				wantField(t, s.post(t, "/platform/api/global/tenants", u.Global, obj{"name": "Name", "slug": slug}), "slug")
			})
		}
		for _, name := range []any{"", "   ", strings.Repeat("n", 101), "nul\x00byte", "tab\there", 3, nil} {
			t.Run("tenant-name", func(t *testing.T) {
				t.Parallel()
				wantField(t, s.post(t, "/platform/api/global/tenants", u.Global, obj{"name": name, "slug": "okay-slug"}), "name")
			})
		}
		for _, slug := range []string{"' OR '1'='1", "acme;DROP TABLE tenants", "%", "_", "existing%", "exist_ng", "\x00", "é", strings.Repeat("z", 5000)} {
			t.Run("check-availability", func(t *testing.T) {
				t.Parallel()
				r := s.get(t, "/platform/api/global/tenants/check-availability?slug="+url.QueryEscape(slug), "")
				got := decode[obj](t, r, http.StatusOK)
				if got["available"] != false || got["reason"] != "invalid" {
					t.Errorf("check %q = %s", slug, r.Body)
				}
			})
		}
		for _, body := range []obj{
			{"tenant_id": "not-a-uuid"}, {"tenant_id": "' OR 1=1 --"}, {"tenant_id": "\x00"}, {"tenant_id": 5},
			{"tenant_slug": "' OR 1=1 --"}, {"tenant_slug": "existing\x00"}, {"tenant_slug": "%"}, {"tenant_slug": []string{"existing"}},
			{"tenant_id": "00000000-0000-0000-0000-00000000000g"}, {"tenant_id": "{00000000-0000-0000-0000-000000000000}"},
		} {
			t.Run("select-tenant", func(t *testing.T) {
				t.Parallel()
				r := s.post(t, "/platform/api/global/auth/select-tenant", u.Global, body)
				if r.Status != http.StatusBadRequest && r.Status != http.StatusNotFound {
					t.Errorf("select %v = %s, want 400 or 404", body, r)
				}
				wantError(t, r, r.Status, "")
			})
		}
		for _, slug := range []string{"\xff\xfe", "existing'--", "%", strings.Repeat("s", 3000)} {
			t.Run("x-tenant-slug", func(t *testing.T) {
				t.Parallel()
				r := s.do(t, req{Method: http.MethodGet, Path: "/platform/api/service/info", Token: u.Global, Header: map[string]string{"X-Tenant-Slug": slug}})
				wantError(t, r, http.StatusNotFound, "tenant_not_found")
			})
		}
		for _, q := range []struct{ query, field string }{
			{"limit=1e9", "limit"}, {"limit=-1", "limit"}, {"limit=abc", "limit"}, {"limit=1.5", "limit"},
			{"limit=99999999999999999999", "limit"}, {"limit=1%3BDROP", "limit"}, {"limit=%00", "limit"},
			{"offset=-1", "offset"}, {"offset=abc", "offset"}, {"offset=1e3", "offset"}, {"offset=99999999999999999999", "offset"},
		} {
			t.Run("pagination", func(t *testing.T) {
				t.Parallel()
				wantField(t, s.get(t, "/platform/api/global/tenants?"+q.query, u.Global), q.field)
			})
		}
	})

	// SQL metacharacters that are valid data are stored verbatim, never executed.
	const evilName = `Robert'); DROP TABLE users;-- "x" \ %_`
	r := s.post(t, register, "", obj{"email": "o'brien+tag@example.com", "password": testPassword, "name": evilName})
	reg := decode[obj](t, r, http.StatusCreated)
	if got := reg["user"].(obj); got["name"] != evilName || got["email"] != "o'brien+tag@example.com" {
		t.Errorf("registered user = %s", r.Body)
	}
	tn := decode[obj](t, s.post(t, "/platform/api/global/tenants", u.Global, obj{"name": evilName, "slug": "evil-corp"}), http.StatusCreated)
	if tn["name"] != evilName {
		t.Errorf("tenant name = %v", tn["name"])
	}
	var users, tenants int
	if err := s.db.QueryRow(context.Background(), `SELECT (SELECT count(*) FROM users), (SELECT count(*) FROM tenants)`).Scan(&users, &tenants); err != nil {
		t.Fatalf("tables damaged: %v", err)
	}
	if users != 2 || tenants != 2 {
		t.Errorf("users = %d, tenants = %d; want 2 and 2 (nothing created by rejected input)", users, tenants)
	}
	// Pagination clamps large limits.
	if l := wantEnvelope(t, s.get(t, "/platform/api/global/tenants?limit=1000000000&offset=0", u.Global)); l.Limit != 200 || l.Offset != 0 {
		t.Errorf("clamped list = %+v", l)
	}
	if l := wantEnvelope(t, s.get(t, "/platform/api/service/members?limit=201", s.scoped(t, u, tn["id"].(string)))); l.Limit != 200 || l.Total != 1 {
		t.Errorf("clamped members = %+v", l)
	}
}

func TestForgedTokens(t *testing.T) {
	t.Parallel()
	s := startServer(t)
	u := s.newUser(t, "victim@example.com")
	tn := s.newTenant(t, u, "Victim", "victim")
	good := s.scoped(t, u, tn.ID)

	// The published JWKS and the real kid.
	jr := s.get(t, "/platform/api/global/auth/.well-known/jwks.json", "")
	if jr.Status != http.StatusOK {
		t.Fatalf("jwks = %s", jr)
	}
	var jwks struct {
		Keys []map[string]any `json:"keys"`
	}
	if err := json.Unmarshal(jr.Body, &jwks); err != nil || len(jwks.Keys) == 0 {
		t.Fatalf("jwks = %s", jr.Body)
	}
	kid, _ := jwks.Keys[0]["kid"].(string)
	for _, k := range jwks.Keys {
		if _, ok := k["d"]; ok {
			t.Fatalf("JWKS publishes private key material: %s", jr.Body)
		}
	}

	enc := func(v any) string { b, _ := json.Marshal(v); return base64.RawURLEncoding.EncodeToString(b) }
	payload := strings.Split(good, ".")[1]
	hs := func(alg string, key []byte) string {
		h := enc(map[string]string{"alg": alg, "typ": "JWT", "kid": kid})
		mac := hmac.New(sha256.New, key)
		mac.Write([]byte(h + "." + payload))
		return h + "." + payload + "." + base64.RawURLEncoding.EncodeToString(mac.Sum(nil))
	}
	var pubX []byte
	if x, ok := jwks.Keys[0]["x"].(string); ok {
		pubX, _ = base64.RawURLEncoding.DecodeString(x)
	}

	// Another key: unknown kid, and the real kid on a foreign signature.
	_, otherPriv, _ := ed25519.GenerateKey(rand.Reader)
	other, err := token.NewIssuer(otherPriv, nil, "trueportai-platform", "trueportai", time.Now)
	if err != nil {
		t.Fatal(err)
	}
	claims := token.Claims{Subject: u.ID, Type: token.TypeScoped, TenantID: tn.ID, Role: "owner", Env: "production"}
	foreign, _, _ := other.Issue(claims, time.Hour)
	fp := strings.Split(foreign, ".")
	foreignRealKid := enc(map[string]string{"alg": "EdDSA", "typ": "JWT", "kid": kid}) + "." + fp[1] + "." + fp[2]

	// Real key, bad claims.
	mint := func(now time.Time, iss, aud string, c token.Claims, ttl time.Duration) string {
		t.Helper()
		i := s.issuer(t, func() time.Time { return now })
		if iss != "trueportai-platform" || aud != "trueportai" {
			signer, _ := token.ParsePrivateKeyPEM(s.devKey(t))
			var err error
			if i, err = token.NewIssuer(signer, nil, iss, aud, func() time.Time { return now }); err != nil {
				t.Fatal(err)
			}
		}
		tok, _, err := i.Issue(c, ttl)
		if err != nil {
			t.Fatal(err)
		}
		return tok
	}
	now := time.Now()
	// Control: a freshly minted token with the real key works.
	decode[obj](t, s.get(t, "/platform/api/service/info", mint(now, "trueportai-platform", "trueportai", claims, time.Hour)), http.StatusOK)

	forged := map[string]string{
		"alg-none":           enc(map[string]string{"alg": "none", "typ": "JWT"}) + "." + payload + ".",
		"alg-none-kid":       enc(map[string]string{"alg": "none", "typ": "JWT", "kid": kid}) + "." + payload + ".",
		"alg-None":           enc(map[string]string{"alg": "None"}) + "." + payload + ".",
		"hs256-jwks-secret":  hs("HS256", jr.Body),
		"hs256-pubkey-bytes": hs("HS256", pubX),
		"hs512-jwks-secret":  hs("HS512", jr.Body),
		"unknown-kid":        foreign,
		"real-kid-foreign":   foreignRealKid,
		"expired":            mint(now.Add(-2*time.Hour), "trueportai-platform", "trueportai", claims, 30*time.Minute),
		"not-yet-valid":      mint(now.Add(2*time.Hour), "trueportai-platform", "trueportai", claims, 30*time.Minute),
		"wrong-issuer":       mint(now, "evil", "trueportai", claims, time.Hour),
		"wrong-audience":     mint(now, "trueportai-platform", "other", claims, time.Hour),
		"unknown-subject":    mint(now, "trueportai-platform", "trueportai", token.Claims{Subject: "00000000-0000-0000-0000-000000000000", Type: token.TypeScoped, TenantID: tn.ID, Role: "owner", Env: "production"}, time.Hour),
		"garbage-subject":    mint(now, "trueportai-platform", "trueportai", token.Claims{Subject: "'; DROP TABLE users;--", Type: token.TypeScoped, TenantID: tn.ID, Role: "owner", Env: "production"}, time.Hour),
		"garbage-tenant":     mint(now, "trueportai-platform", "trueportai", token.Claims{Subject: u.ID, Type: token.TypeScoped, TenantID: "x\x00y", Role: "owner", Env: "production"}, time.Hour),
		"unknown-typ":        mint(now, "trueportai-platform", "trueportai", token.Claims{Subject: u.ID, Type: "service"}, time.Hour),
		"stale-version":      mint(now, "trueportai-platform", "trueportai", token.Claims{Subject: u.ID, Type: token.TypeScoped, TenantID: tn.ID, Role: "owner", Env: "production", Version: 7}, time.Hour),
		"two-parts":          strings.Join(strings.Split(good, ".")[:2], "."),
		"empty-sig":          strings.Join(strings.Split(good, ".")[:2], ".") + ".",
		"huge":               strings.Repeat("A", 16<<10),
		"json":               `{"alg":"none"}`,
	}
	for name, tok := range forged {
		for _, path := range []string{"/platform/api/service/info", "/platform/api/global/tenants"} {
			t.Run(name+path, func(t *testing.T) {
				t.Parallel()
				wantError(t, s.get(t, path, tok), http.StatusUnauthorized, "")
			})
		}
	}
}

// devKey returns the service's dev signing key PEM.
func (s *server) devKey(t *testing.T) []byte {
	t.Helper()
	var pemText string
	if err := s.db.QueryRow(context.Background(), `SELECT material FROM dev_keys WHERE name = 'jwt_signing_key'`).Scan(&pemText); err != nil {
		t.Fatal(err)
	}
	return []byte(pemText)
}

func TestRoutingErrors(t *testing.T) {
	t.Parallel()
	s := startServer(t)
	wantError(t, s.get(t, "/platform/api/global/nope", ""), http.StatusNotFound, "not_found")
	// Wrong method: a 4xx envelope (echo's 405 is mapped by the shared httpserver).
	for _, rq := range []req{
		{Method: http.MethodDelete, Path: "/platform/api/global/auth/login"},
		{Method: http.MethodGet, Path: "/platform/api/service/configs/gateway.default_rpm/extra"},
		{Method: http.MethodPatch, Path: "/platform/api/service/storage"},
	} {
		r := s.do(t, rq)
		if r.Status < 400 || r.Status >= 500 {
			t.Errorf("%s %s = %s, want 4xx", rq.Method, rq.Path, r)
		}
		wantError(t, r, r.Status, "")
	}
}
