package svcauth

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/lestrrat-go/jwx/v2/jwa"
	"github.com/lestrrat-go/jwx/v2/jwk"
	"github.com/lestrrat-go/jwx/v2/jws"
	"github.com/lestrrat-go/jwx/v2/jwt"
)

// ParsePrivateKeyPEM reads an Ed25519 or P-256 private key in PEM form.
func ParsePrivateKeyPEM(pemBytes []byte) (crypto.Signer, error) {
	k, err := jwk.ParseKey(pemBytes, jwk.WithPEM(true))
	if err != nil {
		return nil, fmt.Errorf("parse service key: %w", err)
	}
	var raw any
	if err := k.Raw(&raw); err != nil {
		return nil, fmt.Errorf("service key: %w", err)
	}
	switch r := raw.(type) {
	case ed25519.PrivateKey:
		return r, nil
	case *ecdsa.PrivateKey:
		if _, err := algFor(r.Public()); err != nil {
			return nil, err
		}
		return r, nil
	default:
		return nil, fmt.Errorf("service key type %T not supported (want Ed25519 or ECDSA P-256)", raw)
	}
}

// GenerateKeyPEM makes a new Ed25519 private key in PEM form (dev mode,
// tests).
func GenerateKeyPEM() ([]byte, error) {
	_, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		return nil, err
	}
	return jwk.EncodePEM(priv)
}

func algFor(pub crypto.PublicKey) (jwa.SignatureAlgorithm, error) {
	switch p := pub.(type) {
	case ed25519.PublicKey:
		return jwa.EdDSA, nil
	case *ecdsa.PublicKey:
		if p.Curve.Params().Name != "P-256" {
			return "", fmt.Errorf("ecdsa curve %s not supported (want P-256)", p.Curve.Params().Name)
		}
		return jwa.ES256, nil
	default:
		return "", fmt.Errorf("key type %T not supported", pub)
	}
}

// publicJWK is pub as a JWK with alg, use and kid (the RFC 7638
// thumbprint).
func publicJWK(pub crypto.PublicKey) (jwk.Key, jwa.SignatureAlgorithm, error) {
	alg, err := algFor(pub)
	if err != nil {
		return nil, "", err
	}
	k, err := jwk.FromRaw(pub)
	if err != nil {
		return nil, "", err
	}
	tp, err := k.Thumbprint(crypto.SHA256)
	if err != nil {
		return nil, "", err
	}
	for name, v := range map[string]any{jwk.KeyIDKey: base64.RawURLEncoding.EncodeToString(tp), jwk.AlgorithmKey: alg, jwk.KeyUsageKey: "sig"} {
		if err := k.Set(name, v); err != nil {
			return nil, "", err
		}
	}
	return k, alg, nil
}

// KeyID returns the kid a public key gets in tokens and the JWKS.
func KeyID(pub crypto.PublicKey) (string, error) {
	k, _, err := publicJWK(pub)
	if err != nil {
		return "", err
	}
	return k.KeyID(), nil
}

type publicKey struct {
	key jwk.Key
	// until: accepted and published until then (zero: as long as
	// configured, the previous keys of a file rotation).
	until time.Time
}

// KeyRing is one service's service-token keys: the signing key, and the
// public keys whose tokens it still accepts (the current one, and previous
// ones after a rotation, until their last token has expired).
type KeyRing struct {
	service string

	mu      sync.RWMutex
	signing jwk.Key
	alg     jwa.SignatureAlgorithm
	public  []publicKey
}

// NewKeyRing returns the key ring of service signing with signer and still
// accepting previous (their tokens stay valid until they expire: a
// rotation through files keeps the old key listed until no token of it
// can be alive, MaxTTL after the last instance using it stopped).
func NewKeyRing(service string, signer crypto.Signer, previous ...crypto.PublicKey) (*KeyRing, error) {
	if service == "" {
		return nil, errors.New("service name is required")
	}
	r := &KeyRing{service: service}
	if err := r.setSigning(signer); err != nil {
		return nil, err
	}
	for _, p := range previous {
		k, _, err := publicJWK(p)
		if err != nil {
			return nil, fmt.Errorf("previous service key: %w", err)
		}
		r.public = append(r.public, publicKey{key: k})
	}
	return r, nil
}

func (r *KeyRing) setSigning(signer crypto.Signer) error {
	pub, alg, err := publicJWK(signer.Public())
	if err != nil {
		return fmt.Errorf("service key: %w", err)
	}
	priv, err := jwk.FromRaw(signer)
	if err != nil {
		return fmt.Errorf("service key: %w", err)
	}
	if err := priv.Set(jwk.KeyIDKey, pub.KeyID()); err != nil {
		return err
	}
	r.signing, r.alg = priv, alg
	r.public = append([]publicKey{{key: pub}}, r.public...)
	return nil
}

// Rotate makes signer the signing key; the previous one stays accepted and
// published until now + MaxTTL + Skew, when its last token has expired.
func (r *KeyRing) Rotate(signer crypto.Signer, now time.Time) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	if len(r.public) > 0 && r.public[0].until.IsZero() {
		r.public[0].until = now.Add(MaxTTL + Skew)
	}
	old, oldAlg, oldPublic := r.signing, r.alg, r.public
	if err := r.setSigning(signer); err != nil {
		r.signing, r.alg, r.public = old, oldAlg, oldPublic
		return err
	}
	return nil
}

// Service is the name the ring signs as (iss).
func (r *KeyRing) Service() string { return r.service }

// KeyID is the kid of the signing key.
func (r *KeyRing) KeyID() string {
	r.mu.RLock()
	defer r.mu.RUnlock()
	return r.signing.KeyID()
}

// set returns the public keys accepted at now.
func (r *KeyRing) set(now time.Time) jwk.Set {
	r.mu.RLock()
	defer r.mu.RUnlock()
	s := jwk.NewSet()
	for _, p := range r.public {
		if p.until.IsZero() || now.Before(p.until) {
			_ = s.AddKey(p.key)
		}
	}
	return s
}

// JWKS returns the accepted public keys at now as a JWK Set document.
func (r *KeyRing) JWKS(now time.Time) ([]byte, error) {
	return json.Marshal(r.set(now))
}

// Mint signs a token from the ring's service (iss) and instance (sub) for
// audience, valid from now for ttl (at most MaxTTL).
func (r *KeyRing) Mint(instance, audience string, now time.Time, ttl time.Duration) (string, Claims, error) {
	if ttl <= 0 || ttl > MaxTTL {
		return "", Claims{}, fmt.Errorf("service token lifetime %s not in (0, %s]", ttl, MaxTTL)
	}
	var jti [16]byte
	if _, err := rand.Read(jti[:]); err != nil {
		return "", Claims{}, err
	}
	now = now.UTC().Truncate(time.Second)
	r.mu.RLock()
	key, alg := r.signing, r.alg
	r.mu.RUnlock()
	c := Claims{Issuer: r.service, Audience: []string{audience}, Subject: instance, ID: base64.RawURLEncoding.EncodeToString(jti[:]),
		KeyID: key.KeyID(), IssuedAt: now, NotBefore: now, ExpiresAt: now.Add(ttl)}
	tok, err := jwt.NewBuilder().Issuer(c.Issuer).Audience(c.Audience).Subject(c.Subject).JwtID(c.ID).
		IssuedAt(c.IssuedAt).NotBefore(c.NotBefore).Expiration(c.ExpiresAt).Build()
	if err != nil {
		return "", Claims{}, err
	}
	h := jws.NewHeaders()
	if err := h.Set(jws.TypeKey, TokenType); err != nil {
		return "", Claims{}, err
	}
	signed, err := jwt.Sign(tok, jwt.WithKey(alg, key, jws.WithProtectedHeaders(h)))
	if err != nil {
		return "", Claims{}, fmt.Errorf("sign service token: %w", err)
	}
	return string(signed), c, nil
}

// Revocations tells whether an instance or a key of this service was
// revoked (an admin command; the service's own database).
type Revocations interface {
	Revoked(ctx context.Context, instance, keyID string) (bool, error)
}

// Verify is the issuer's full check of one of its own tokens for
// audience: ParseUnverified's rules with the ring's service as the only
// issuer, then the signature with an accepted key (the kid must be one),
// then rev (nil: nothing is revoked). A refused token is an
// *InvalidError; any other error means the answer is unknown.
func (r *KeyRing) Verify(ctx context.Context, token, audience string, now time.Time, rev Revocations) (Claims, error) {
	c, err := ParseUnverified(token, Expect{Issuers: []string{r.service}, Audience: audience, Now: now})
	if err != nil {
		return Claims{}, err
	}
	set := r.set(now)
	if _, ok := set.LookupKeyID(c.KeyID); !ok {
		return Claims{}, invalid(ReasonUnknownKey)
	}
	if _, err := jws.Verify([]byte(token), jws.WithKeySet(set, jws.WithRequireKid(true), jws.WithInferAlgorithmFromKey(false))); err != nil {
		return Claims{}, invalid(ReasonBadSignature)
	}
	if rev != nil {
		revoked, err := rev.Revoked(ctx, c.Subject, c.KeyID)
		if err != nil {
			return Claims{}, fmt.Errorf("revocation list: %w", err)
		}
		if revoked {
			return Claims{}, invalid(ReasonRevoked)
		}
	}
	return c, nil
}
