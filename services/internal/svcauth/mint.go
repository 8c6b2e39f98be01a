package svcauth

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"os"
	"strings"
	"sync"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"
)

// NewInstanceID names a process for the sub of its tokens: the configured
// id (SERVICE_INSTANCE_ID, e.g. the pod name), else host name and 4 random
// bytes, so that each start is its own instance.
func NewInstanceID(configured string) string {
	if configured != "" {
		return configured
	}
	host, _ := os.Hostname()
	if host == "" {
		host = "host"
	}
	var b [4]byte
	_, _ = rand.Read(b[:])
	return strings.ToLower(host) + "-" + hex.EncodeToString(b[:])
}

type minted struct {
	token string
	renew time.Time
}

// Minter mints this instance's tokens and keeps one per audience until it
// is due for renewal (two thirds into its lifetime), so a call never
// carries a token about to expire and signing stays off most calls.
type Minter struct {
	ring     *KeyRing
	instance string
	ttl      time.Duration
	now      func() time.Time

	mu    sync.Mutex
	cache map[string]minted
}

// NewMinter returns a minter of tokens lasting ttl (MaxTTL when zero).
func NewMinter(ring *KeyRing, instance string, ttl time.Duration, now func() time.Time) (*Minter, error) {
	if ttl == 0 {
		ttl = MaxTTL
	}
	if ttl < 0 || ttl > MaxTTL {
		return nil, fmt.Errorf("service token lifetime %s not in (0, %s]", ttl, MaxTTL)
	}
	if instance == "" {
		return nil, fmt.Errorf("instance id is required")
	}
	if now == nil {
		now = time.Now
	}
	return &Minter{ring: ring, instance: instance, ttl: ttl, now: now, cache: map[string]minted{}}, nil
}

// Instance is the sub of the minted tokens.
func (m *Minter) Instance() string { return m.instance }

// Token returns a valid token for audience, minting one when none is
// cached or the cached one is due for renewal.
func (m *Minter) Token(audience string) (string, error) {
	now := m.now()
	m.mu.Lock()
	defer m.mu.Unlock()
	if c, ok := m.cache[audience]; ok && now.Before(c.renew) {
		return c.token, nil
	}
	tok, claims, err := m.ring.Mint(m.instance, audience, now, m.ttl)
	if err != nil {
		return "", err
	}
	m.cache[audience] = minted{token: tok, renew: claims.IssuedAt.Add(m.ttl * 2 / 3)}
	return tok, nil
}

// perRPC are the gRPC credentials carrying a token for one audience.
type perRPC struct {
	m        *Minter
	audience string
	secure   bool
}

func (p perRPC) GetRequestMetadata(context.Context, ...string) (map[string]string, error) {
	tok, err := p.m.Token(p.audience)
	if err != nil {
		return nil, fmt.Errorf("mint service token: %w", err)
	}
	return map[string]string{"authorization": "Bearer " + tok}, nil
}

func (p perRPC) RequireTransportSecurity() bool { return p.secure }

// DialOption makes every call of a connection to audience carry a token.
// requireTLS refuses to send it over a plaintext connection (prod).
func (m *Minter) DialOption(audience string, requireTLS bool) grpc.DialOption {
	return grpc.WithPerRPCCredentials(perRPC{m: m, audience: audience, secure: requireTLS})
}

var _ credentials.PerRPCCredentials = perRPC{}
