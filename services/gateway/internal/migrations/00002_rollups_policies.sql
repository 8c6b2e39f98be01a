-- +goose Up
-- Hourly rollups maintained by the ingester (only for newly inserted events,
-- so redeliveries never double count). latency_hist counts requests per
-- latency bucket (bounds in internal/usage/rollup.go) for p95 from rollups.
CREATE TABLE usage_rollups_hourly (
    tenant_id         uuid NOT NULL,
    env               text NOT NULL,
    bucket            timestamptz NOT NULL,
    provider          text NOT NULL,
    model             text NOT NULL,
    key_id            uuid NOT NULL,
    status_code       integer NOT NULL,
    requests          bigint NOT NULL,
    errors            bigint NOT NULL,
    unknown_usage     bigint NOT NULL,
    prompt_tokens     bigint NOT NULL,
    completion_tokens bigint NOT NULL,
    total_tokens      bigint NOT NULL,
    cost_usd          double precision NOT NULL,
    latency_sum_ms    double precision NOT NULL,
    latency_hist      bigint[] NOT NULL,
    PRIMARY KEY (tenant_id, env, bucket, provider, model, key_id, status_code)
);

CREATE TABLE policies (
    id          uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    tenant_id   uuid NOT NULL,
    env         text NOT NULL,
    name        text NOT NULL,
    description text NOT NULL DEFAULT '',
    type        text NOT NULL,
    config      jsonb NOT NULL,
    action      text NOT NULL,
    enabled     boolean NOT NULL DEFAULT true,
    priority    integer NOT NULL DEFAULT 0,
    mode        text NOT NULL DEFAULT 'enforce',
    scope       jsonb NOT NULL DEFAULT '{}',
    direction   text NOT NULL DEFAULT 'request',
    created_by  uuid NOT NULL,
    created_at  timestamptz NOT NULL DEFAULT now(),
    updated_at  timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX policies_tenant_env_idx ON policies (tenant_id, env);

-- Violations travel with usage events; matches hold masked snippets only.
CREATE TABLE violations (
    id          uuid PRIMARY KEY,
    request_id  text NOT NULL,
    created_at  timestamptz NOT NULL,
    tenant_id   uuid NOT NULL,
    env         text NOT NULL,
    key_id      uuid,
    policy_id   uuid,
    policy_name text NOT NULL,
    type        text NOT NULL,
    action      text NOT NULL,
    severity    text NOT NULL,
    shadow      boolean NOT NULL DEFAULT false,
    direction   text NOT NULL DEFAULT 'request',
    matches     jsonb NOT NULL,
    provider    text NOT NULL,
    model       text NOT NULL DEFAULT ''
);
CREATE INDEX violations_tenant_env_time_idx ON violations (tenant_id, env, created_at DESC);
CREATE INDEX usage_logs_tenant_env_key_time_idx ON usage_logs (tenant_id, env, key_id, created_at DESC);

-- +goose Down
DROP TABLE violations, policies, usage_rollups_hourly;
DROP INDEX usage_logs_tenant_env_key_time_idx;
