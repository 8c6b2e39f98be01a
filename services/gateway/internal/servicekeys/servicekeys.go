// Package servicekeys keeps the gateway's service identity state in its
// database: the dev signing key (generated once, like the platform's) and
// the revoked instances and keys its introspection refuses.
package servicekeys

import (
	"context"
	"fmt"

	"github.com/jackc/pgx/v5/pgxpool"
)

// Revocation kinds (service_revocations.kind).
const (
	Instance = "instance"
	Key      = "key"
)

// Store reads and writes dev_keys and service_revocations.
type Store struct{ pool *pgxpool.Pool }

// New returns a store on pool.
func New(pool *pgxpool.Pool) *Store { return &Store{pool: pool} }

// DevKey returns the dev-mode key material stored under name, creating it
// with gen on first use (concurrent starts agree on one value).
func (s *Store) DevKey(ctx context.Context, name string, gen func() (string, error)) (string, error) {
	v, err := gen()
	if err != nil {
		return "", err
	}
	if _, err := s.pool.Exec(ctx, `INSERT INTO dev_keys (name, material) VALUES ($1, $2) ON CONFLICT (name) DO NOTHING`, name, v); err != nil {
		return "", fmt.Errorf("store dev key: %w", err)
	}
	var out string
	err = s.pool.QueryRow(ctx, `SELECT material FROM dev_keys WHERE name = $1`, name).Scan(&out)
	return out, err
}

// Revoked reports whether an instance or a key was revoked
// (svcauth.Revocations).
func (s *Store) Revoked(ctx context.Context, instance, keyID string) (bool, error) {
	var n int
	err := s.pool.QueryRow(ctx, `SELECT count(*) FROM service_revocations
		WHERE (kind = 'instance' AND value = $1) OR (kind = 'key' AND value = $2)`, instance, keyID).Scan(&n)
	return n > 0, err
}

// Revoke records a revoked instance or key (idempotent).
func (s *Store) Revoke(ctx context.Context, kind, value string) error {
	if _, err := s.pool.Exec(ctx, `INSERT INTO service_revocations (kind, value) VALUES ($1, $2) ON CONFLICT DO NOTHING`, kind, value); err != nil {
		return fmt.Errorf("revoke %s %s: %w", kind, value, err)
	}
	return nil
}
