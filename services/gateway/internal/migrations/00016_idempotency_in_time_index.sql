-- +goose Up
-- The ingester's idempotency key moves into the time index (issue 16;
-- docs/decisions.md, "Idempotency in the time index"): one unique covering
-- index on (tenant_id, env, created_at DESC, request_id) replaces both the
-- unique constraint on (created_at, request_id) and the covering time index
-- on (tenant_id, env, created_at DESC) of migration 00015, so an ingested
-- row updates three indexes (two and the partial error index) instead of
-- four. A redelivered event carries the tenant, environment and created_at
-- the gateway gave it, so the wider key identifies it as the old one did;
-- the ingester's conflict target is now (tenant_id, env, created_at,
-- request_id). The time index serves every log filter it served, with
-- request_id in its key instead of beside it.
--
-- As with 00015, each statement builds on every month partition while
-- holding a SHARE lock on usage_logs: on a large table build the index
-- beforehand without blocking writes (docs/decisions.md gives the
-- statements) and IF NOT EXISTS skips it.
CREATE UNIQUE INDEX IF NOT EXISTS usage_logs_tenant_env_time_request_key ON usage_logs (tenant_id, env, created_at DESC, request_id)
    INCLUDE (key_id, provider, model, status_code, stream, id);
ALTER TABLE usage_logs DROP CONSTRAINT IF EXISTS usage_logs_created_request_key;
DROP INDEX IF EXISTS usage_logs_tenant_env_time_cover_idx;

-- +goose Down
CREATE INDEX usage_logs_tenant_env_time_cover_idx ON usage_logs (tenant_id, env, created_at DESC)
    INCLUDE (key_id, provider, model, status_code, stream, id);
ALTER TABLE usage_logs ADD CONSTRAINT usage_logs_created_request_key UNIQUE (created_at, request_id);
DROP INDEX usage_logs_tenant_env_time_request_key;
