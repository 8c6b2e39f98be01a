-- +goose Up
-- Filtered log pages (model, status) walk these newest-first.
CREATE INDEX usage_logs_tenant_env_model_time_idx ON usage_logs (tenant_id, env, model, created_at DESC);
CREATE INDEX usage_logs_tenant_env_status_time_idx ON usage_logs (tenant_id, env, status_code, created_at DESC);

-- +goose Down
DROP INDEX usage_logs_tenant_env_model_time_idx;
DROP INDEX usage_logs_tenant_env_status_time_idx;
