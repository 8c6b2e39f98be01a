-- +goose Up
CREATE TABLE api_keys (
    id             uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    tenant_id      uuid NOT NULL,
    env            text NOT NULL,
    name           text NOT NULL,
    prefix         text NOT NULL,
    key_hash       bytea NOT NULL UNIQUE,
    enabled        boolean NOT NULL DEFAULT true,
    rpm_limit      integer NOT NULL,
    allowed_models text[] NOT NULL DEFAULT '{}',
    expires_at     timestamptz,
    last_used_at   timestamptz,
    created_by     uuid NOT NULL,
    created_at     timestamptz NOT NULL DEFAULT now(),
    updated_at     timestamptz NOT NULL DEFAULT now(),
    deleted_at     timestamptz
);
CREATE INDEX api_keys_tenant_env_idx ON api_keys (tenant_id, env, created_at DESC) WHERE deleted_at IS NULL;

-- Token counts are NULL when the provider did not report usage (unknown, not 0).
CREATE TABLE usage_logs (
    id                uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    request_id        text NOT NULL UNIQUE,
    created_at        timestamptz NOT NULL,
    tenant_id         uuid NOT NULL,
    env               text NOT NULL,
    key_id            uuid,
    key_name          text NOT NULL DEFAULT '',
    provider          text NOT NULL,
    model             text NOT NULL DEFAULT '',
    path              text NOT NULL,
    status_code       integer NOT NULL,
    stream            boolean NOT NULL DEFAULT false,
    latency_ms        double precision NOT NULL,
    ttfb_ms           double precision,
    prompt_tokens     bigint,
    completion_tokens bigint,
    total_tokens      bigint,
    cached_tokens     bigint,
    cost_usd          double precision,
    outcome           text NOT NULL,
    error             text NOT NULL DEFAULT '',
    violation_ids     text[] NOT NULL DEFAULT '{}',
    request_body      text,
    response_body     text,
    ingested_at       timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX usage_logs_tenant_env_time_idx ON usage_logs (tenant_id, env, created_at DESC);

-- +goose Down
DROP TABLE usage_logs, api_keys;
