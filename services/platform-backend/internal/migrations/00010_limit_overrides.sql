-- Enterprise deals: plans without a maximum (NULL: no maximum), custom plans
-- offered to one tenant, and per-tenant limit overrides set by platform
-- admins. Numbered 00010 to leave room for migrations other branches add.
-- +goose Up
ALTER TABLE plans
    ALTER COLUMN monthly_requests DROP NOT NULL,
    ALTER COLUMN max_api_keys DROP NOT NULL,
    ALTER COLUMN max_members DROP NOT NULL,
    ALTER COLUMN max_rpm_per_key DROP NOT NULL,
    ADD COLUMN offered_to uuid REFERENCES tenants (id) ON DELETE CASCADE,
    ADD COLUMN created_at timestamptz NOT NULL DEFAULT now();

-- limits: {"monthly_requests"|"max_api_keys"|"max_members"|"max_rpm_per_key": n
-- (0: no maximum), "retention_days": n}; a key left out keeps the plan's.
CREATE TABLE tenant_limit_overrides (
    tenant_id  uuid PRIMARY KEY REFERENCES tenants (id) ON DELETE CASCADE,
    limits     jsonb NOT NULL,
    updated_at timestamptz NOT NULL DEFAULT now()
);

-- +goose Down
DROP TABLE tenant_limit_overrides;
DELETE FROM plans WHERE offered_to IS NOT NULL OR monthly_requests IS NULL OR max_api_keys IS NULL
    OR max_members IS NULL OR max_rpm_per_key IS NULL;
ALTER TABLE plans DROP COLUMN offered_to, DROP COLUMN created_at,
    ALTER COLUMN monthly_requests SET NOT NULL, ALTER COLUMN max_api_keys SET NOT NULL,
    ALTER COLUMN max_members SET NOT NULL, ALTER COLUMN max_rpm_per_key SET NOT NULL;
