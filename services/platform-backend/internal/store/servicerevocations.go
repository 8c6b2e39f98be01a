package store

import (
	"context"
	"fmt"
)

// Service identity revocation kinds (service_revocations.kind).
const (
	RevokedInstance = "instance"
	RevokedKey      = "key"
)

// ServiceRevoked reports whether an instance or a key of the platform's
// service identity was revoked (svcauth.Revocations).
func (s *Store) ServiceRevoked(ctx context.Context, instance, keyID string) (bool, error) {
	var n int
	err := s.pool.QueryRow(ctx, `SELECT count(*) FROM service_revocations
		WHERE (kind = 'instance' AND value = $1) OR (kind = 'key' AND value = $2)`, instance, keyID).Scan(&n)
	return n > 0, err
}

// RevokeService records a revoked instance or key (idempotent).
func (s *Store) RevokeService(ctx context.Context, kind, value string) error {
	if _, err := s.pool.Exec(ctx, `INSERT INTO service_revocations (kind, value) VALUES ($1, $2) ON CONFLICT DO NOTHING`, kind, value); err != nil {
		return fmt.Errorf("revoke %s %s: %w", kind, value, err)
	}
	return nil
}
