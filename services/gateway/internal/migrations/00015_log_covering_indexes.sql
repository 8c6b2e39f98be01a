-- +goose Up
-- usage_logs' filter indexes become covering ones (issue 16; docs/decisions.md,
-- "Log filter indexes"): every filter of the logs API is checked inside one
-- index (an index-only scan) instead of on heap rows, and four indexes per
-- row become two plus a partial one.
--
--   time:   (tenant_id, env, created_at DESC) with every filterable column
--           and id included: the unfiltered page, provider, model, stream,
--           2xx, time ranges, and any combination of them.
--   key:    (tenant_id, env, key_id, created_at DESC), the same included.
--   status: (tenant_id, env, status_code, created_at DESC) only for rows
--           with status_code >= 300 (a few percent of the traffic: errors,
--           refusals, client hang-ups), the same included. A filter on a
--           status (or class) of 300 or more uses it when the status is a
--           constant at planning time (the gateway's pool plans every
--           statement with its values: plan_cache_mode=force_custom_plan).
--
-- The model index goes: model filters read the time index. The old time
-- and status indexes are replaced. Each statement builds the index on every
-- month partition while holding a SHARE lock on usage_logs (reads go on,
-- the ingester's inserts wait, their events stay in JetStream). On a large
-- table build them beforehand without blocking writes (IF NOT EXISTS then
-- skips them): the statements are in docs/decisions.md.
CREATE INDEX IF NOT EXISTS usage_logs_tenant_env_time_cover_idx ON usage_logs (tenant_id, env, created_at DESC)
    INCLUDE (key_id, provider, model, status_code, stream, id);
CREATE INDEX IF NOT EXISTS usage_logs_tenant_env_key_time_cover_idx ON usage_logs (tenant_id, env, key_id, created_at DESC)
    INCLUDE (provider, model, status_code, stream, id);
CREATE INDEX IF NOT EXISTS usage_logs_tenant_env_error_status_time_idx ON usage_logs (tenant_id, env, status_code, created_at DESC)
    INCLUDE (key_id, provider, model, stream, id) WHERE status_code >= 300;
DROP INDEX IF EXISTS usage_logs_tenant_env_time_idx, usage_logs_tenant_env_key_time_idx, usage_logs_tenant_env_model_time_idx,
    usage_logs_tenant_env_status_time_idx;

-- +goose Down
CREATE INDEX usage_logs_tenant_env_time_idx ON usage_logs (tenant_id, env, created_at DESC);
CREATE INDEX usage_logs_tenant_env_key_time_idx ON usage_logs (tenant_id, env, key_id, created_at DESC);
CREATE INDEX usage_logs_tenant_env_model_time_idx ON usage_logs (tenant_id, env, model, created_at DESC);
CREATE INDEX usage_logs_tenant_env_status_time_idx ON usage_logs (tenant_id, env, status_code, created_at DESC);
DROP INDEX usage_logs_tenant_env_time_cover_idx, usage_logs_tenant_env_key_time_cover_idx, usage_logs_tenant_env_error_status_time_idx;
