package svcauth

import (
	"context"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/lestrrat-go/jwx/v2/jwa"
	"github.com/lestrrat-go/jwx/v2/jwk"
	"github.com/lestrrat-go/jwx/v2/jws"
)

var t0 = time.Date(2026, 5, 1, 12, 0, 0, 0, time.UTC)

func newRing(t testing.TB, service string) *KeyRing {
	t.Helper()
	_, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	r, err := NewKeyRing(service, priv)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

func b64(v any) string {
	b, _ := json.Marshal(v)
	return base64.RawURLEncoding.EncodeToString(b)
}

// craft signs header and claims (as given) with key and alg, bypassing
// every rule of Mint.
func craft(t testing.TB, alg jwa.SignatureAlgorithm, key any, header, claims map[string]any) string {
	t.Helper()
	h := jws.NewHeaders()
	for k, v := range header {
		if err := h.Set(k, v); err != nil {
			t.Fatal(err)
		}
	}
	payload, _ := json.Marshal(claims)
	out, err := jws.Sign(payload, jws.WithKey(alg, key, jws.WithProtectedHeaders(h)))
	if err != nil {
		t.Fatal(err)
	}
	return string(out)
}

func goodClaims(now time.Time) map[string]any {
	return map[string]any{"iss": Gateway, "aud": []string{Platform}, "sub": "gw-1", "jti": "j1",
		"iat": now.Unix(), "nbf": now.Unix(), "exp": now.Add(MaxTTL).Unix()}
}

func with(m map[string]any, k string, v any) map[string]any {
	out := map[string]any{}
	for kk, vv := range m {
		out[kk] = vv
	}
	if v == nil {
		delete(out, k)
	} else {
		out[k] = v
	}
	return out
}

// TestParseUnverifiedRules: one case per rule a token must pass before any
// key is involved.
func TestParseUnverifiedRules(t *testing.T) {
	ring := newRing(t, Gateway)
	_, priv, _ := ed25519.GenerateKey(rand.Reader)
	hdr := map[string]any{"typ": TokenType, "kid": ring.KeyID()}
	expect := Expect{Issuers: []string{Gateway}, Audience: Platform, Now: t0}
	good := craft(t, jwa.EdDSA, priv, hdr, goodClaims(t0))
	if _, err := ParseUnverified(good, expect); err != nil {
		t.Fatalf("good token refused: %v", err)
	}
	minted, _, err := ring.Mint("gw-1", Platform, t0, MaxTTL)
	if err != nil {
		t.Fatal(err)
	}
	if c, err := ParseUnverified(minted, expect); err != nil || c.Subject != "gw-1" || c.KeyID != ring.KeyID() {
		t.Fatalf("minted token: %+v, %v", c, err)
	}
	hs := craft(t, jwa.HS256, []byte("public-key-as-a-secret"), hdr, goodClaims(t0))
	none := b64(map[string]any{"alg": "none", "typ": TokenType, "kid": "k"}) + "." + b64(goodClaims(t0)) + "."
	userJWT := craft(t, jwa.EdDSA, priv, map[string]any{"kid": "k"}, map[string]any{"iss": "trueportai-platform", "aud": []string{"trueportai"},
		"sub": "user", "typ": "scoped", "iat": t0.Unix(), "exp": t0.Add(30 * time.Minute).Unix(), "jti": "u"})
	userJWTAsService := craft(t, jwa.EdDSA, priv, map[string]any{"kid": "k"}, goodClaims(t0))
	ecKey, _ := ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
	es384 := craft(t, jwa.ES384, ecKey, hdr, goodClaims(t0))
	parts := strings.Split(good, ".")
	cases := []struct {
		name, token, want string
	}{
		{"empty", "", ReasonNoToken},
		{"too-large", good + strings.Repeat("A", MaxTokenBytes), ReasonTooLarge},
		{"garbage", "garbage", ReasonMalformed},
		{"two-parts", parts[0] + "." + parts[1], ReasonMalformed},
		{"json-serialization", `{"payload":"` + parts[1] + `","signatures":[{"protected":"` + parts[0] + `","signature":"` + parts[2] + `"}]}`, ReasonMalformed},
		{"payload-not-json", parts[0] + "." + base64.RawURLEncoding.EncodeToString([]byte("nope")) + "." + parts[2], ReasonMalformed},
		{"alg-none", none, ReasonAlgorithm},
		{"alg-hs256", hs, ReasonAlgorithm},
		{"alg-es384", es384, ReasonAlgorithm},
		{"user-jwt", userJWT, ReasonNotService},
		{"no-typ", userJWTAsService, ReasonNotService},
		{"wrong-typ", craft(t, jwa.EdDSA, priv, map[string]any{"typ": "JWT", "kid": "k"}, goodClaims(t0)), ReasonNotService},
		{"no-kid", craft(t, jwa.EdDSA, priv, map[string]any{"typ": TokenType}, goodClaims(t0)), ReasonMissingKID},
		{"unknown-issuer", craft(t, jwa.EdDSA, priv, hdr, with(goodClaims(t0), "iss", "mallory")), ReasonUnknownIssuer},
		{"no-issuer", craft(t, jwa.EdDSA, priv, hdr, with(goodClaims(t0), "iss", nil)), ReasonUnknownIssuer},
		{"wrong-audience", craft(t, jwa.EdDSA, priv, hdr, with(goodClaims(t0), "aud", []string{Gateway})), ReasonWrongAudience},
		{"no-audience", craft(t, jwa.EdDSA, priv, hdr, with(goodClaims(t0), "aud", nil)), ReasonWrongAudience},
		{"no-sub", craft(t, jwa.EdDSA, priv, hdr, with(goodClaims(t0), "sub", nil)), ReasonMissingClaims},
		{"no-jti", craft(t, jwa.EdDSA, priv, hdr, with(goodClaims(t0), "jti", nil)), ReasonMissingClaims},
		{"no-exp", craft(t, jwa.EdDSA, priv, hdr, with(goodClaims(t0), "exp", nil)), ReasonMissingClaims},
		{"no-iat", craft(t, jwa.EdDSA, priv, hdr, with(goodClaims(t0), "iat", nil)), ReasonMissingClaims},
		{"expired", craft(t, jwa.EdDSA, priv, hdr, goodClaims(t0.Add(-MaxTTL-time.Minute))), ReasonExpired},
		{"not-yet-valid-iat", craft(t, jwa.EdDSA, priv, hdr, goodClaims(t0.Add(time.Minute))), ReasonNotYetValid},
		{"not-yet-valid-nbf", craft(t, jwa.EdDSA, priv, hdr, with(goodClaims(t0), "nbf", t0.Add(time.Minute).Unix())), ReasonNotYetValid},
		{"lifetime-too-long", craft(t, jwa.EdDSA, priv, hdr, with(goodClaims(t0), "exp", t0.Add(time.Hour).Unix())), ReasonLifetime},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, err := ParseUnverified(tc.token, expect)
			if got := ReasonOf(err); got != tc.want {
				t.Errorf("reason = %q (%v), want %q", got, err, tc.want)
			}
		})
	}
	// Within the skew: still accepted.
	if _, err := ParseUnverified(craft(t, jwa.EdDSA, priv, hdr, goodClaims(t0.Add(-MaxTTL+time.Second))), expect); err != nil {
		t.Errorf("token one second before expiry refused: %v", err)
	}
}

// TestKeyRingVerify: the issuer's rules, which need its keys and its
// revocation list.
func TestKeyRingVerify(t *testing.T) {
	ctx := context.Background()
	ring := newRing(t, Gateway)
	other := newRing(t, Gateway)
	tok, _, err := ring.Mint("gw-1", Platform, t0, MaxTTL)
	if err != nil {
		t.Fatal(err)
	}
	if c, err := ring.Verify(ctx, tok, Platform, t0, nil); err != nil || c.Issuer != Gateway || c.Subject != "gw-1" {
		t.Fatalf("own token: %+v, %v", c, err)
	}
	forged, _, _ := other.Mint("gw-1", Platform, t0, MaxTTL)
	// A forged token that claims the real kid: the signature fails.
	parts := strings.Split(forged, ".")
	var h map[string]any
	raw, _ := base64.RawURLEncoding.DecodeString(parts[0])
	_ = json.Unmarshal(raw, &h)
	h["kid"] = ring.KeyID()
	forgedKID := b64(h) + "." + parts[1] + "." + parts[2]
	tp := strings.Split(tok, ".")
	var claims map[string]any
	raw, _ = base64.RawURLEncoding.DecodeString(tp[1])
	_ = json.Unmarshal(raw, &claims)
	claims["sub"] = "gw-other"
	tampered := tp[0] + "." + b64(claims) + "." + tp[2]
	rev := revList{instance: "gw-revoked", kid: "kid-revoked"}
	revokedTok, _, _ := ring.Mint("gw-revoked", Platform, t0, MaxTTL)
	for _, tc := range []struct {
		name, token, aud, want string
		rev                    Revocations
	}{
		{"other-key", forged, Platform, ReasonUnknownKey, nil},
		{"other-key-real-kid", forgedKID, Platform, ReasonBadSignature, nil},
		{"tampered", tampered, Platform, ReasonBadSignature, nil},
		{"wrong-audience", tok, Gateway, ReasonWrongAudience, nil},
		{"revoked-instance", revokedTok, Platform, ReasonRevoked, rev},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := ring.Verify(ctx, tc.token, tc.aud, t0, tc.rev)
			if got := ReasonOf(err); got != tc.want {
				t.Errorf("reason = %q (%v), want %q", got, err, tc.want)
			}
		})
	}
	t.Run("revoked-key", func(t *testing.T) {
		_, err := ring.Verify(ctx, tok, Platform, t0, revList{kid: ring.KeyID()})
		if ReasonOf(err) != ReasonRevoked {
			t.Errorf("err = %v, want revoked", err)
		}
	})
	t.Run("revocation-list-down", func(t *testing.T) {
		_, err := ring.Verify(ctx, tok, Platform, t0, revList{fail: true})
		if err == nil || ReasonOf(err) != "" {
			t.Errorf("err = %v, want an error that is not a refusal", err)
		}
	})
}

type revList struct {
	instance, kid string
	fail          bool
}

func (r revList) Revoked(_ context.Context, instance, kid string) (bool, error) {
	if r.fail {
		return false, context.DeadlineExceeded
	}
	return instance == r.instance && r.instance != "" || kid == r.kid && r.kid != "", nil
}

// TestRotationKeepsPreviousKey: after a rotation the old key's tokens pass
// and the old key is published until they have all expired.
func TestRotationKeepsPreviousKey(t *testing.T) {
	ctx := context.Background()
	ring := newRing(t, Platform)
	oldKID := ring.KeyID()
	oldTok, _, _ := ring.Mint("p-1", Gateway, t0, MaxTTL)
	_, next, _ := ed25519.GenerateKey(rand.Reader)
	if err := ring.Rotate(next, t0); err != nil {
		t.Fatal(err)
	}
	if ring.KeyID() == oldKID {
		t.Fatal("kid unchanged by rotation")
	}
	newTok, _, _ := ring.Mint("p-1", Gateway, t0, MaxTTL)
	if c, _ := ParseUnverified(newTok, Expect{Issuers: []string{Platform}, Audience: Gateway, Now: t0}); c.KeyID != ring.KeyID() {
		t.Errorf("new token signed with %s, want %s", c.KeyID, ring.KeyID())
	}
	kids := func(at time.Time) []string {
		set, err := jwk.Parse(must(ring.JWKS(at)))
		if err != nil {
			t.Fatal(err)
		}
		var out []string
		for i := 0; i < set.Len(); i++ {
			k, _ := set.Key(i)
			out = append(out, k.KeyID())
		}
		return out
	}
	if got := kids(t0.Add(MaxTTL)); len(got) != 2 {
		t.Errorf("JWKS right after rotation = %v, want old and new", got)
	}
	if _, err := ring.Verify(ctx, oldTok, Gateway, t0.Add(MaxTTL-time.Second), nil); err != nil {
		t.Errorf("old key's token refused before it expired: %v", err)
	}
	later := t0.Add(MaxTTL + Skew + time.Second)
	if got := kids(later); len(got) != 1 || got[0] != ring.KeyID() {
		t.Errorf("JWKS once old tokens expired = %v, want only %s", got, ring.KeyID())
	}
	if _, err := ring.Verify(ctx, oldTok, Gateway, later, nil); ReasonOf(err) != ReasonExpired {
		t.Errorf("old key's token after expiry: %v", err)
	}
}

func must(b []byte, err error) []byte {
	if err != nil {
		panic(err)
	}
	return b
}

func TestMintLimits(t *testing.T) {
	ring := newRing(t, Platform)
	if _, _, err := ring.Mint("p", Gateway, t0, MaxTTL+time.Second); err == nil {
		t.Error("lifetime over MaxTTL minted")
	}
	if _, err := NewMinter(ring, "", 0, nil); err == nil {
		t.Error("minter without instance")
	}
	ec, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	r2, err := NewKeyRing(Platform, ec)
	if err != nil {
		t.Fatal(err)
	}
	tok, _, err := r2.Mint("p", Gateway, t0, time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := r2.Verify(context.Background(), tok, Gateway, t0, nil); err != nil {
		t.Errorf("ES256 token refused: %v", err)
	}
	p384, _ := ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
	if _, err := NewKeyRing(Platform, p384); err == nil {
		t.Error("P-384 key accepted")
	}
	pemKey, err := GenerateKeyPEM()
	if err != nil {
		t.Fatal(err)
	}
	if _, err := ParsePrivateKeyPEM(pemKey); err != nil {
		t.Errorf("generated PEM: %v", err)
	}
}

func TestMinterRenews(t *testing.T) {
	ring := newRing(t, Gateway)
	now := t0
	m, err := NewMinter(ring, "gw-1", 0, func() time.Time { return now })
	if err != nil {
		t.Fatal(err)
	}
	a, _ := m.Token(Platform)
	if b, _ := m.Token(Platform); b != a {
		t.Error("token not reused")
	}
	if b, _ := m.Token(Gateway); b == a {
		t.Error("one token for two audiences")
	}
	now = t0.Add(MaxTTL * 2 / 3)
	b, _ := m.Token(Platform)
	if b == a {
		t.Error("token not renewed two thirds into its life")
	}
	if c, err := ParseUnverified(b, Expect{Issuers: []string{Gateway}, Audience: Platform, Now: now}); err != nil || !c.IssuedAt.Equal(now) {
		t.Errorf("renewed token: %+v %v", c, err)
	}
}

// FuzzParseUnverified: no input panics the parser, and whatever it
// accepts satisfies every rule it claims to check.
func FuzzParseUnverified(f *testing.F) {
	ring := newRing(f, Gateway)
	tok, _, _ := ring.Mint("gw-1", Platform, t0, MaxTTL)
	f.Add(tok)
	f.Add("a.b.c")
	f.Add("")
	f.Add(b64(map[string]any{"alg": "none"}) + "." + b64(goodClaims(t0)) + ".")
	f.Add(strings.Replace(tok, ".", "..", 1))
	expect := Expect{Issuers: []string{Gateway}, Audience: Platform, Now: t0}
	f.Fuzz(func(t *testing.T, s string) {
		c, err := ParseUnverified(s, expect)
		if err != nil {
			if ReasonOf(err) == "" {
				t.Fatalf("error without a reason: %v", err)
			}
			return
		}
		if c.Issuer != Gateway || c.Subject == "" || c.ID == "" || c.KeyID == "" || len(s) > MaxTokenBytes {
			t.Fatalf("accepted %q as %+v", s, c)
		}
		if !t0.Before(c.ExpiresAt.Add(Skew)) || c.ExpiresAt.Sub(c.IssuedAt) > MaxTTL+Skew {
			t.Fatalf("accepted out-of-time token %+v", c)
		}
		if _, err := ring.Verify(context.Background(), s, Platform, t0, nil); err == nil && s != tok {
			// Only Mint's output can carry the ring's signature.
			if c2, _ := ParseUnverified(tok, expect); c2.ID != c.ID {
				t.Fatalf("verified a token Mint never made: %q", s)
			}
		}
	})
}

// TestLoadKeyRing: a key file and previous key files (a rotation through
// files: both published, the old key's tokens accepted), or a dev key made
// once and kept by the store; neither in prod is an error.
func TestLoadKeyRing(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	write := func(name string) string {
		b, err := GenerateKeyPEM()
		if err != nil {
			t.Fatal(err)
		}
		p := dir + "/" + name
		if err := os.WriteFile(p, b, 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	oldFile, newFile := write("old.pem"), write("new.pem")
	old, err := LoadKeyRing(ctx, Gateway, oldFile, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	oldTok, _, _ := old.Mint("gw-1", Platform, t0, MaxTTL)
	ring, err := LoadKeyRing(ctx, Gateway, newFile, []string{oldFile}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if ring.KeyID() == old.KeyID() {
		t.Fatal("the new file did not become the signing key")
	}
	jwks := string(must(ring.JWKS(t0.Add(time.Hour))))
	if !strings.Contains(jwks, old.KeyID()) || !strings.Contains(jwks, ring.KeyID()) {
		t.Errorf("JWKS %s lacks the old or the new kid", jwks)
	}
	if _, err := ring.Verify(ctx, oldTok, Platform, t0, nil); err != nil {
		t.Errorf("previous key's token refused: %v", err)
	}
	if _, err := LoadKeyRing(ctx, Gateway, "", nil, nil); err == nil {
		t.Error("no key file and no dev store accepted")
	}
	if _, err := LoadKeyRing(ctx, Gateway, dir+"/missing.pem", nil, nil); err == nil {
		t.Error("missing key file accepted")
	}
	stored := map[string]string{}
	dev := func(_ context.Context, name string, gen func() (string, error)) (string, error) {
		if v, ok := stored[name]; ok {
			return v, nil
		}
		v, err := gen()
		stored[name] = v
		return v, err
	}
	a, err := LoadKeyRing(ctx, Gateway, "", nil, dev)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := LoadKeyRing(ctx, Gateway, "", nil, dev)
	if a.KeyID() != b.KeyID() {
		t.Error("dev key not kept across starts")
	}
}
