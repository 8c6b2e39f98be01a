package token

import (
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"time"
)

func newIssuer(t *testing.T, now func() time.Time) *Issuer {
	t.Helper()
	_, priv, _ := ed25519.GenerateKey(rand.Reader)
	iss, err := NewIssuer(priv, nil, "iss", "aud", now)
	if err != nil {
		t.Fatal(err)
	}
	return iss
}

func TestIssueParseRoundTrip(t *testing.T) {
	iss := newIssuer(t, time.Now)
	s, _, err := iss.Issue(Claims{Subject: "u1", Type: TypeScoped, TenantID: "t1", Role: "admin", Env: "production", Version: 3}, time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	c, err := iss.Parse(s)
	if err != nil {
		t.Fatal(err)
	}
	if c.Subject != "u1" || c.TenantID != "t1" || c.Role != "admin" || c.Env != "production" || c.Version != 3 || c.Type != TypeScoped || c.ID == "" {
		t.Fatalf("claims = %+v", c)
	}
	hdr, _ := base64.RawURLEncoding.DecodeString(strings.Split(s, ".")[0])
	if !strings.Contains(string(hdr), `"kid"`) || !strings.Contains(string(hdr), `"EdDSA"`) {
		t.Fatalf("header lacks kid/alg: %s", hdr)
	}
}

func TestRejectsForgedTokens(t *testing.T) {
	now := time.Now()
	iss := newIssuer(t, func() time.Time { return now })
	good, _, _ := iss.Issue(Claims{Subject: "u1", Type: TypeGlobal}, time.Minute)
	parts := strings.Split(good, ".")
	enc := func(v any) string { b, _ := json.Marshal(v); return base64.RawURLEncoding.EncodeToString(b) }
	jwks, _ := iss.JWKS()

	// HS256 signed with the public JWKS bytes as secret (key confusion).
	hsHeader := enc(map[string]string{"alg": "HS256", "typ": "JWT"})
	mac := hmac.New(sha256.New, jwks)
	mac.Write([]byte(hsHeader + "." + parts[1]))
	hs := hsHeader + "." + parts[1] + "." + base64.RawURLEncoding.EncodeToString(mac.Sum(nil))

	other := newIssuer(t, time.Now)
	foreign, _, _ := other.Issue(Claims{Subject: "u1", Type: TypeGlobal}, time.Minute)

	_, ecPriv, _ := func() (any, *ecdsa.PrivateKey, error) {
		k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		return nil, k, err
	}()
	ecIss, err := NewIssuer(ecPriv, nil, "iss", "aud", time.Now)
	if err != nil {
		t.Fatal(err)
	}
	ecTok, _, _ := ecIss.Issue(Claims{Subject: "u1", Type: TypeGlobal}, time.Minute)
	if _, err := ecIss.Parse(ecTok); err != nil {
		t.Fatalf("ES256 round trip: %v", err)
	}

	cases := map[string]string{
		"alg none":     enc(map[string]string{"alg": "none"}) + "." + parts[1] + ".",
		"hs256 pubkey": hs,
		"unknown kid":  foreign,
		"tampered":     parts[0] + "." + enc(map[string]any{"sub": "admin", "typ": "global", "iss": "iss", "aud": "aud", "exp": now.Add(time.Hour).Unix()}) + "." + parts[2],
		"garbage":      "not.a.jwt",
		"empty":        "",
		"other issuer": ecTok,
	}
	for name, tok := range cases {
		if _, err := iss.Parse(tok); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}

	expired, _, _ := iss.Issue(Claims{Subject: "u1", Type: TypeGlobal}, time.Second)
	later := newIssuerAt(iss, now.Add(2*time.Minute))
	_, err = later.Parse(expired)
	var inv *ErrInvalid
	if !errors.As(err, &inv) || inv.Reason != "expired" {
		t.Fatalf("expired token: %v", err)
	}
}

func newIssuerAt(i *Issuer, at time.Time) *Issuer {
	c := *i
	c.now = func() time.Time { return at }
	return &c
}
