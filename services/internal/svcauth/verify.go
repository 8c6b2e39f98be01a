package svcauth

import (
	"context"
	"crypto/sha256"
	"errors"
	"log/slog"
	"slices"
	"sync"
	"time"

	"google.golang.org/grpc"

	svcauthv1 "trueportai/proto/gen/trueport/svcauth/v1"
)

// ErrUnavailable: the issuer could not be asked; the token is neither
// accepted nor refused (callers answer Unavailable, never "allow").
var ErrUnavailable = errors.New("service token issuer unavailable")

// Introspector asks an issuer about one of its tokens:
// svcauthv1.ServiceAuthServiceClient, or Introspection.Local for the
// service's own tokens.
type Introspector interface {
	IntrospectToken(ctx context.Context, in *svcauthv1.IntrospectTokenRequest, opts ...grpc.CallOption) (*svcauthv1.IntrospectTokenResponse, error)
}

// Local asks s directly (a service validating its own tokens).
func (s *Introspection) Local() Introspector { return localIntrospector{s} }

type localIntrospector struct{ s *Introspection }

func (l localIntrospector) IntrospectToken(ctx context.Context, in *svcauthv1.IntrospectTokenRequest, _ ...grpc.CallOption) (*svcauthv1.IntrospectTokenResponse, error) {
	return l.s.IntrospectToken(ctx, in)
}

// Cache lifetimes of a Verifier.
const (
	// MaxCacheAge bounds how long an issuer's "active" is reused.
	MaxCacheAge = 60 * time.Second
	// NegativeCacheAge bounds how long a refusal is reused.
	NegativeCacheAge = 10 * time.Second
	// maxCacheEntries: past it, expired entries are swept.
	maxCacheEntries = 100_000
)

type verdict struct {
	c      Claims
	reason string
	until  time.Time
}

type revokedKey struct{ issuer, kind, value string }

// Verifier validates the service tokens presented to one service (its
// audience) through their issuers' introspection, caching each answer by
// token hash until min(exp, MaxCacheAge). Revocation events (Revoke) drop
// the matching answers and refuse the instance or key from then on.
type Verifier struct {
	audience string
	issuers  map[string]Introspector
	names    []string
	timeout  time.Duration
	now      func() time.Time
	log      *slog.Logger

	mu      sync.Mutex
	cache   map[[32]byte]verdict
	revoked map[revokedKey]struct{}
}

// NewVerifier validates tokens addressed to audience, issued by the
// services in issuers (name → that service's introspection).
func NewVerifier(audience string, issuers map[string]Introspector, log *slog.Logger, now func() time.Time) *Verifier {
	if now == nil {
		now = time.Now
	}
	v := &Verifier{audience: audience, issuers: issuers, timeout: 3 * time.Second, now: now, log: log,
		cache: map[[32]byte]verdict{}, revoked: map[revokedKey]struct{}{}}
	for name := range issuers {
		v.names = append(v.names, name)
	}
	slices.Sort(v.names)
	return v
}

// Audience is the service the verifier validates tokens for.
func (v *Verifier) Audience() string { return v.audience }

// Verify returns the claims of a valid token, an *InvalidError, or
// ErrUnavailable.
func (v *Verifier) Verify(ctx context.Context, token string) (Claims, error) {
	now := v.now()
	c, err := ParseUnverified(token, Expect{Issuers: v.names, Audience: v.audience, Now: now})
	if err != nil {
		return Claims{}, err
	}
	h := sha256.Sum256([]byte(token))
	v.mu.Lock()
	if v.isRevokedLocked(c) {
		v.mu.Unlock()
		return Claims{}, invalid(ReasonRevoked)
	}
	e, ok := v.cache[h]
	v.mu.Unlock()
	if ok && now.Before(e.until) {
		if e.reason != "" {
			return Claims{}, invalid(e.reason)
		}
		return e.c, nil
	}
	ictx, cancel := context.WithTimeout(ctx, v.timeout)
	defer cancel()
	resp, err := v.issuers[c.Issuer].IntrospectToken(ictx, &svcauthv1.IntrospectTokenRequest{Token: token, Audience: v.audience})
	if err != nil {
		v.log.WarnContext(ctx, "service token introspection failed", "issuer", c.Issuer, "err", err)
		return Claims{}, ErrUnavailable
	}
	e = verdict{until: now.Add(MaxCacheAge)}
	switch {
	case !resp.GetActive():
		e.reason = resp.GetReason()
		if e.reason == "" {
			e.reason = ReasonIssuerDisagrees
		}
		e.until = now.Add(NegativeCacheAge)
	case resp.GetIssuer() != c.Issuer || resp.GetSubject() != c.Subject || resp.GetKeyId() != c.KeyID ||
		!slices.Contains(resp.GetAudience(), v.audience):
		// The issuer vouched for other claims than the token's: refuse.
		e.reason, e.until = ReasonIssuerDisagrees, now.Add(NegativeCacheAge)
	default:
		e.c = c
		if exp := resp.GetExpiresAt().AsTime(); exp.Before(c.ExpiresAt) {
			e.c.ExpiresAt = exp
		}
		if e.c.ExpiresAt.Before(e.until) {
			e.until = e.c.ExpiresAt
		}
	}
	v.mu.Lock()
	if len(v.cache) >= maxCacheEntries {
		for k, old := range v.cache {
			if !now.Before(old.until) {
				delete(v.cache, k)
			}
		}
	}
	// A revocation that arrived during the call wins.
	if e.reason == "" && v.isRevokedLocked(c) {
		e.reason, e.until = ReasonRevoked, now.Add(NegativeCacheAge)
	}
	v.cache[h] = e
	v.mu.Unlock()
	if e.reason != "" {
		return Claims{}, invalid(e.reason)
	}
	return e.c, nil
}

func (v *Verifier) isRevokedLocked(c Claims) bool {
	_, sub := v.revoked[revokedKey{c.Issuer, "instance", c.Subject}]
	_, kid := v.revoked[revokedKey{c.Issuer, "key", c.KeyID}]
	return sub || kid
}

// Revoke refuses, from now on, the tokens of issuer's instance or key (an
// empty one matches nothing) and drops their cached answers.
func (v *Verifier) Revoke(issuer, instance, keyID string) {
	v.mu.Lock()
	defer v.mu.Unlock()
	if instance != "" {
		v.revoked[revokedKey{issuer, "instance", instance}] = struct{}{}
	}
	if keyID != "" {
		v.revoked[revokedKey{issuer, "key", keyID}] = struct{}{}
	}
	for k, e := range v.cache {
		if e.c.Issuer == issuer && (instance != "" && e.c.Subject == instance || keyID != "" && e.c.KeyID == keyID) {
			delete(v.cache, k)
		}
	}
}
