// Package svcauth is the identity of the two services towards each other:
// each signs the internal calls it makes with a short-lived service JWT
// (iss = the calling service, aud = the called service, sub = the calling
// instance, ≤ MaxTTL, jti; EdDSA or ES256 via lestrrat-go/jwx, with a kid
// and the header typ "svc+jwt"), and the called side validates it through
// the issuer's gRPC introspection (ServiceAuthService), cached by token hash
// until min(exp, 60 s) and dropped at once by a NATS revocation event.
//
// KeyRing holds a service's signing key and the public keys it still
// accepts; Minter mints and renews tokens (gRPC per-call credentials);
// Introspection answers ServiceAuthService for the tokens a KeyRing
// signed; Verifier validates a peer's tokens through that peer's
// introspection; ServerOptions turn a Verifier and an ACL into gRPC
// interceptors; PeerState reports whether the peer accepts our tokens.
package svcauth

import (
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/lestrrat-go/jwx/v2/jwa"
	"github.com/lestrrat-go/jwx/v2/jws"
	"github.com/lestrrat-go/jwx/v2/jwt"
)

// Service names: the iss of the tokens a service mints, the aud of the
// tokens minted for it.
const (
	Platform = "platform-backend"
	Gateway  = "gateway"
)

// TokenType is the JOSE typ header of service tokens: the platform's user
// JWTs carry none, so neither can pass for the other.
const TokenType = "svc+jwt"

// Limits of a service token.
const (
	// MaxTTL is the longest lifetime (exp - iat) a service token may have.
	MaxTTL = 5 * time.Minute
	// Skew is the clock difference tolerated between the services.
	Skew = 5 * time.Second
	// MaxTokenBytes bounds what is parsed at all.
	MaxTokenBytes = 4096
)

// Reasons a token is refused (introspection answers, logs, errors). They
// say why, for operators; callers only ever learn "unauthenticated".
const (
	ReasonMalformed       = "malformed"
	ReasonTooLarge        = "too_large"
	ReasonAlgorithm       = "algorithm_not_allowed"
	ReasonNotService      = "not_a_service_token"
	ReasonMissingKID      = "missing_kid"
	ReasonUnknownIssuer   = "unknown_issuer"
	ReasonWrongAudience   = "wrong_audience"
	ReasonExpired         = "expired"
	ReasonNotYetValid     = "not_yet_valid"
	ReasonLifetime        = "lifetime_too_long"
	ReasonMissingClaims   = "missing_claims"
	ReasonUnknownKey      = "unknown_key"
	ReasonBadSignature    = "bad_signature"
	ReasonRevoked         = "revoked"
	ReasonIssuerMismatch  = "issuer_mismatch"
	ReasonNoToken         = "missing_token"
	ReasonIssuerDisagrees = "introspection_mismatch"
)

// InvalidError is a refused token; Reason is one of the Reason* constants.
type InvalidError struct{ Reason string }

func (e *InvalidError) Error() string { return "invalid service token: " + e.Reason }

func invalid(reason string) error { return &InvalidError{Reason: reason} }

// ReasonOf returns the reason of an InvalidError ("" for other errors).
func ReasonOf(err error) string {
	var inv *InvalidError
	if errors.As(err, &inv) {
		return inv.Reason
	}
	return ""
}

// Claims are what a service token says (before or after verification).
type Claims struct {
	Issuer    string
	Audience  []string
	Subject   string // the calling instance
	ID        string // jti
	KeyID     string
	IssuedAt  time.Time
	NotBefore time.Time
	ExpiresAt time.Time
}

// Expect is what the receiving side requires of a token before any key
// is involved.
type Expect struct {
	// Issuers are the services whose tokens may be presented.
	Issuers []string
	// Audience is the receiving service: it must be among the token's aud.
	Audience string
	// Now is the validation time.
	Now time.Time
}

// ParseUnverified reads a service token and checks every rule that needs
// no key: size, compact form with one signature, alg EdDSA or ES256, typ,
// kid, iss among e.Issuers, e.Audience among aud, sub and jti present,
// exp after e.Now, nbf/iat not after it, and exp - iat ≤ MaxTTL (Skew
// tolerated on each clock comparison). Its answer is never a reason to
// accept a token, only to refuse one early: the signature and revocation
// are the issuer's introspection's.
func ParseUnverified(token string, e Expect) (Claims, error) {
	if token == "" {
		return Claims{}, invalid(ReasonNoToken)
	}
	if len(token) > MaxTokenBytes {
		return Claims{}, invalid(ReasonTooLarge)
	}
	msg, err := jws.Parse([]byte(token), jws.WithCompact())
	if err != nil || len(msg.Signatures()) != 1 {
		return Claims{}, invalid(ReasonMalformed)
	}
	h := msg.Signatures()[0].ProtectedHeaders()
	if alg := h.Algorithm(); alg != jwa.EdDSA && alg != jwa.ES256 {
		return Claims{}, invalid(ReasonAlgorithm)
	}
	if h.Type() != TokenType {
		return Claims{}, invalid(ReasonNotService)
	}
	if h.KeyID() == "" {
		return Claims{}, invalid(ReasonMissingKID)
	}
	tok := jwt.New()
	if err := json.Unmarshal(msg.Payload(), tok); err != nil {
		return Claims{}, invalid(ReasonMalformed)
	}
	c := Claims{Issuer: tok.Issuer(), Audience: tok.Audience(), Subject: tok.Subject(), ID: tok.JwtID(), KeyID: h.KeyID(),
		IssuedAt: tok.IssuedAt(), NotBefore: tok.NotBefore(), ExpiresAt: tok.Expiration()}
	if err := c.check(e); err != nil {
		return Claims{}, err
	}
	return c, nil
}

// check applies the claim rules of ParseUnverified.
func (c Claims) check(e Expect) error {
	if c.Issuer == "" || !slices.Contains(e.Issuers, c.Issuer) {
		return invalid(ReasonUnknownIssuer)
	}
	if e.Audience == "" || !slices.Contains(c.Audience, e.Audience) {
		return invalid(ReasonWrongAudience)
	}
	if c.Subject == "" || c.ID == "" || c.ExpiresAt.IsZero() || c.IssuedAt.IsZero() {
		return invalid(ReasonMissingClaims)
	}
	if !e.Now.Before(c.ExpiresAt.Add(Skew)) {
		return invalid(ReasonExpired)
	}
	if c.IssuedAt.After(e.Now.Add(Skew)) || c.NotBefore.After(e.Now.Add(Skew)) {
		return invalid(ReasonNotYetValid)
	}
	if c.ExpiresAt.Sub(c.IssuedAt) > MaxTTL+Skew {
		return invalid(ReasonLifetime)
	}
	return nil
}

// String names a token in logs without its signature.
func (c Claims) String() string {
	return fmt.Sprintf("iss=%s sub=%s kid=%s jti=%s exp=%s", c.Issuer, c.Subject, c.KeyID, c.ID, c.ExpiresAt.Format(time.RFC3339))
}
