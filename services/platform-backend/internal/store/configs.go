package store

import (
	"context"
	"errors"
	"fmt"

	"github.com/jackc/pgx/v5"

	"trueportai/services/platform-backend/internal/billing"
	"trueportai/services/platform-backend/internal/configs"
)

// ConfigStore persists tenant settings for package configs.
type ConfigStore struct{ s *Store }

// ConfigStore returns the configs domain's store.
func (s *Store) ConfigStore() ConfigStore { return ConfigStore{s: s} }

var _ configs.Store = ConfigStore{}

// Configs lists a tenant's stored configs.
func (cs ConfigStore) Configs(ctx context.Context, tenantID string) ([]configs.Entry, error) {
	return cs.s.Configs(ctx, tenantID)
}

// PutConfig upserts one config value.
func (cs ConfigStore) PutConfig(ctx context.Context, tenantID, userID string, e configs.Entry) (configs.Entry, error) {
	return cs.s.PutConfig(ctx, tenantID, userID, e)
}

// WithTenantLocked runs fn with the tenant locked (configs.Store).
func (cs ConfigStore) WithTenantLocked(ctx context.Context, tenantID string, fn func(configs.Tx) error) error {
	return cs.s.withTenantLocked(ctx, tenantID, func(l lockedTx) error { return fn(configTx{l}) })
}

// configTx is configs.Tx on a locked tenant.
type configTx struct{ lockedTx }

var _ configs.Tx = configTx{}

func (c configTx) Plan() billing.Plan { return c.tenant.Plan }

func (c configTx) Storage(ctx context.Context) (configs.Storage, bool, error) {
	var st configs.Storage
	err := c.tx.QueryRow(ctx, `SELECT log_request_bodies, log_response_bodies, redact_logged_bodies, retention_days
		FROM storage_settings WHERE tenant_id = $1`, c.tenant.ID).Scan(&st.LogRequestBodies, &st.LogResponseBodies, &st.RedactLoggedBodies, &st.RetentionDays)
	if errors.Is(err, pgx.ErrNoRows) {
		return st, false, nil
	}
	return st, err == nil, err
}

func (c configTx) PutStorage(ctx context.Context, st configs.Storage) error {
	if _, err := c.tx.Exec(ctx, `INSERT INTO storage_settings (tenant_id, log_request_bodies, log_response_bodies, redact_logged_bodies, retention_days)
		VALUES ($1, $2, $3, $4, $5) ON CONFLICT (tenant_id) DO UPDATE SET log_request_bodies = EXCLUDED.log_request_bodies,
		log_response_bodies = EXCLUDED.log_response_bodies, redact_logged_bodies = EXCLUDED.redact_logged_bodies,
		retention_days = EXCLUDED.retention_days, updated_at = now()`,
		c.tenant.ID, st.LogRequestBodies, st.LogResponseBodies, st.RedactLoggedBodies, st.RetentionDays); err != nil {
		return fmt.Errorf("upsert storage settings: %w", err)
	}
	return nil
}
