package platform

import (
	"context"
	"crypto/sha256"
	"errors"
	"sync"
	"time"

	platformv1 "trueportai/proto/gen/trueport/platform/v1"
)

// Principal is the caller of a management route.
type Principal struct {
	UserID    string
	TenantID  string
	Role      string
	Env       string
	TokenType string
	ExpiresAt time.Time
}

// Errors of Introspect.
var (
	ErrInvalidToken = errors.New("invalid token")
	ErrUnavailable  = errors.New("platform unavailable")
)

type entry struct {
	p      Principal
	reason string
	until  time.Time
}

// Introspector validates tokens through the platform, caching answers by
// token hash until min(exp, maxAge); revocation events drop entries.
type Introspector struct {
	client platformv1.AuthServiceClient
	maxAge time.Duration
	now    func() time.Time

	mu sync.Mutex
	m  map[[32]byte]entry
}

// NewIntrospector returns an introspector with an empty cache.
func NewIntrospector(client platformv1.AuthServiceClient, maxAge time.Duration) *Introspector {
	return &Introspector{client: client, maxAge: maxAge, now: time.Now, m: map[[32]byte]entry{}}
}

// Introspect returns the principal of an active token, ErrInvalidToken, or
// ErrUnavailable when the platform cannot be asked (never "allow").
func (in *Introspector) Introspect(ctx context.Context, token string) (Principal, error) {
	h := sha256.Sum256([]byte(token))
	now := in.now()
	in.mu.Lock()
	e, ok := in.m[h]
	in.mu.Unlock()
	if ok && now.Before(e.until) {
		if e.reason != "" {
			return Principal{}, ErrInvalidToken
		}
		return e.p, nil
	}
	ctx, cancel := context.WithTimeout(ctx, 3*time.Second)
	defer cancel()
	resp, err := in.client.IntrospectToken(ctx, &platformv1.IntrospectTokenRequest{Token: token})
	if err != nil {
		return Principal{}, ErrUnavailable
	}
	e = entry{until: now.Add(in.maxAge)}
	if !resp.GetActive() {
		e.reason = resp.GetReason()
		e.until = now.Add(min(in.maxAge, 10*time.Second))
	} else {
		e.p = Principal{UserID: resp.GetUserId(), TenantID: resp.GetTenantId(), Role: resp.GetRole(), Env: resp.GetEnv(),
			TokenType: resp.GetTokenType(), ExpiresAt: resp.GetExpiresAt().AsTime()}
		if e.p.ExpiresAt.Before(e.until) {
			e.until = e.p.ExpiresAt
		}
	}
	in.mu.Lock()
	if len(in.m) > 100_000 {
		in.sweepLocked(now)
	}
	in.m[h] = e
	in.mu.Unlock()
	if e.reason != "" {
		return Principal{}, ErrInvalidToken
	}
	return e.p, nil
}

func (in *Introspector) sweepLocked(now time.Time) {
	for k, e := range in.m {
		if !now.Before(e.until) {
			delete(in.m, k)
		}
	}
}

// Revoke drops cached answers for a user and/or tenant (empty matches all).
// Negative answers carry no ids, so every change event drops them all: a
// tenant reactivated or a member re-added is not refused from the cache.
func (in *Introspector) Revoke(userID, tenantID string) {
	in.mu.Lock()
	defer in.mu.Unlock()
	for k, e := range in.m {
		if e.reason != "" || (userID == "" || e.p.UserID == userID) && (tenantID == "" || e.p.TenantID == tenantID) {
			delete(in.m, k)
		}
	}
}
