// Package token issues and verifies the platform's JWTs (EdDSA or ES256 via
// lestrrat-go/jwx v2, with a kid) and publishes the public keys as a JWKS.
package token

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/lestrrat-go/jwx/v2/jwa"
	"github.com/lestrrat-go/jwx/v2/jwk"
	"github.com/lestrrat-go/jwx/v2/jwt"
)

// Token types.
const (
	TypeGlobal = "global"
	TypeScoped = "scoped"
)

// Claims is what the platform puts in (and reads from) its tokens.
type Claims struct {
	Subject   string
	Type      string
	TenantID  string
	Role      string
	Env       string
	ID        string
	Version   int
	IssuedAt  time.Time
	ExpiresAt time.Time
}

// ErrInvalid is returned for every token that must not be accepted; Reason
// says why (for logs and introspection answers, never for authorization).
type ErrInvalid struct{ Reason string }

func (e *ErrInvalid) Error() string { return "invalid token: " + e.Reason }

// Issuer signs with one private key and verifies with all published keys.
type Issuer struct {
	signing  jwk.Key
	alg      jwa.SignatureAlgorithm
	public   jwk.Set
	issuer   string
	audience string
	now      func() time.Time
}

// ParsePrivateKeyPEM reads an Ed25519 or P-256 private key in PEM form.
func ParsePrivateKeyPEM(pemBytes []byte) (crypto.Signer, error) {
	k, err := jwk.ParseKey(pemBytes, jwk.WithPEM(true))
	if err != nil {
		return nil, fmt.Errorf("parse signing key: %w", err)
	}
	var raw any
	if err := k.Raw(&raw); err != nil {
		return nil, fmt.Errorf("signing key: %w", err)
	}
	switch r := raw.(type) {
	case ed25519.PrivateKey:
		return r, nil
	case *ecdsa.PrivateKey:
		return r, nil
	default:
		return nil, fmt.Errorf("signing key type %T not supported (want Ed25519 or ECDSA P-256)", raw)
	}
}

// GenerateKeyPEM makes a new Ed25519 private key in PEM form (dev mode).
func GenerateKeyPEM() ([]byte, error) {
	_, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		return nil, err
	}
	return jwk.EncodePEM(priv)
}

// NewIssuer builds an issuer from the signing key plus older public keys that
// tokens may still be signed with (rotation).
func NewIssuer(signer crypto.Signer, older []crypto.PublicKey, issuer, audience string, now func() time.Time) (*Issuer, error) {
	priv, err := jwk.FromRaw(signer)
	if err != nil {
		return nil, fmt.Errorf("signing key: %w", err)
	}
	alg, err := algFor(signer.Public())
	if err != nil {
		return nil, err
	}
	if err := setKID(priv, alg); err != nil {
		return nil, err
	}
	pub, err := jwk.PublicKeyOf(priv)
	if err != nil {
		return nil, err
	}
	set := jwk.NewSet()
	if err := set.AddKey(pub); err != nil {
		return nil, err
	}
	for _, o := range older {
		k, err := jwk.FromRaw(o)
		if err != nil {
			return nil, fmt.Errorf("verification key: %w", err)
		}
		a, err := algFor(o)
		if err != nil {
			return nil, err
		}
		if err := setKID(k, a); err != nil {
			return nil, err
		}
		if err := set.AddKey(k); err != nil {
			return nil, err
		}
	}
	return &Issuer{signing: priv, alg: alg, public: set, issuer: issuer, audience: audience, now: now}, nil
}

func algFor(pub crypto.PublicKey) (jwa.SignatureAlgorithm, error) {
	switch p := pub.(type) {
	case ed25519.PublicKey:
		return jwa.EdDSA, nil
	case *ecdsa.PublicKey:
		if p.Curve.Params().Name != "P-256" {
			return "", fmt.Errorf("ecdsa curve %s not supported", p.Curve.Params().Name)
		}
		return jwa.ES256, nil
	default:
		return "", fmt.Errorf("key type %T not supported", pub)
	}
}

// setKID sets alg, use and kid (the RFC 7638 thumbprint of the public key).
func setKID(k jwk.Key, alg jwa.SignatureAlgorithm) error {
	pub, err := jwk.PublicKeyOf(k)
	if err != nil {
		return err
	}
	tp, err := pub.Thumbprint(crypto.SHA256)
	if err != nil {
		return err
	}
	for name, v := range map[string]any{jwk.KeyIDKey: base64.RawURLEncoding.EncodeToString(tp), jwk.AlgorithmKey: alg, jwk.KeyUsageKey: "sig"} {
		if err := k.Set(name, v); err != nil {
			return err
		}
	}
	return nil
}

// Issue signs c with the given lifetime; it fills ID, IssuedAt and ExpiresAt.
func (i *Issuer) Issue(c Claims, ttl time.Duration) (string, Claims, error) {
	now := i.now().UTC().Truncate(time.Second)
	var jti [16]byte
	_, _ = rand.Read(jti[:])
	c.ID = base64.RawURLEncoding.EncodeToString(jti[:])
	c.IssuedAt, c.ExpiresAt = now, now.Add(ttl)
	b := jwt.NewBuilder().
		Issuer(i.issuer).Audience([]string{i.audience}).Subject(c.Subject).
		IssuedAt(now).NotBefore(now).Expiration(c.ExpiresAt).JwtID(c.ID).
		Claim("typ", c.Type).Claim("ver", c.Version)
	if c.Type == TypeScoped {
		b = b.Claim("tid", c.TenantID).Claim("role", c.Role).Claim("env", c.Env)
	}
	tok, err := b.Build()
	if err != nil {
		return "", Claims{}, fmt.Errorf("build token: %w", err)
	}
	signed, err := jwt.Sign(tok, jwt.WithKey(i.alg, i.signing))
	if err != nil {
		return "", Claims{}, fmt.Errorf("sign token: %w", err)
	}
	return string(signed), c, nil
}

// Parse verifies signature (only our algorithms, only known kids), issuer,
// audience and time claims, and returns the claims.
func (i *Issuer) Parse(s string) (Claims, error) {
	tok, err := jwt.Parse([]byte(s),
		jwt.WithKeySet(i.public),
		jwt.WithValidate(true),
		jwt.WithIssuer(i.issuer),
		jwt.WithAudience(i.audience),
		jwt.WithAcceptableSkew(30*time.Second),
		jwt.WithClock(jwt.ClockFunc(i.now)),
	)
	if err != nil {
		reason := "malformed_or_bad_signature"
		switch {
		case errors.Is(err, jwt.ErrTokenExpired()):
			reason = "expired"
		case errors.Is(err, jwt.ErrTokenNotYetValid()):
			reason = "not_yet_valid"
		case errors.Is(err, jwt.ErrInvalidIssuer()):
			reason = "wrong_issuer"
		case errors.Is(err, jwt.ErrInvalidAudience()):
			reason = "wrong_audience"
		}
		return Claims{}, &ErrInvalid{Reason: reason}
	}
	c := Claims{Subject: tok.Subject(), ID: tok.JwtID(), IssuedAt: tok.IssuedAt(), ExpiresAt: tok.Expiration()}
	pc := tok.PrivateClaims()
	c.Type, _ = pc["typ"].(string)
	c.TenantID, _ = pc["tid"].(string)
	c.Role, _ = pc["role"].(string)
	c.Env, _ = pc["env"].(string)
	if v, ok := pc["ver"].(float64); ok {
		c.Version = int(v)
	}
	if c.Subject == "" || c.ExpiresAt.IsZero() || (c.Type != TypeGlobal && c.Type != TypeScoped) {
		return Claims{}, &ErrInvalid{Reason: "missing_claims"}
	}
	if c.Type == TypeScoped && (c.TenantID == "" || c.Role == "" || c.Env == "") {
		return Claims{}, &ErrInvalid{Reason: "missing_claims"}
	}
	return c, nil
}

// JWKS returns the public key set as JSON.
func (i *Issuer) JWKS() ([]byte, error) {
	return json.Marshal(i.public)
}
