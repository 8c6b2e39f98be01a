-- +goose Up
-- Exact money and rollups per query dimension (docs/decisions.md, "Money"
-- and "Usage rollups").
--
-- 1. usage_logs.cost_usd_e10: the cost in units of 1e-10 USD (money.USD).
--    Adding a nullable column without a default rewrites nothing, so this
--    is instant however many rows the table holds. The ingester writes it
--    and leaves the old float column cost_usd NULL; readers take
--    COALESCE(cost_usd_e10, round(cost_usd * 1e10)), which gives older
--    rows the decimal they stood for.
ALTER TABLE usage_logs ADD COLUMN cost_usd_e10 bigint;

-- 2. usage_logs loses its primary key index on (id, created_at): id is a
--    UUIDv7 the ingester makes (unique by construction), nothing looks a
--    row up by it, and (created_at, request_id) stays the unique key the
--    ingester's idempotency rests on. The index was a sixth of the table's
--    index bytes and one of six index insertions per ingested row.
ALTER TABLE usage_logs DROP CONSTRAINT usage_logs_pkey;

-- 3. One rollup table per group-by dimension and granularity instead of one
--    table keyed by every dimension at once: a stats query reads only the
--    rows of its own dimension (a key breakdown reads one row per key and
--    hour, not one per key x model x status x hour). The provider
--    breakdown reads the model tables (a model belongs to one provider per
--    row). Money is exact (cost_usd_e10), the latency sum is integer
--    microseconds and the histogram is 14 columns h0..h13 (bounds in
--    analytics.LatencyBounds; h13 is the open bucket), so every measure is
--    an integer sum: rollups rebuilt from usage_logs equal the
--    incremental ones exactly, whatever the order of the additions.

CREATE TABLE usage_rollups_model_hourly (
    tenant_id         uuid NOT NULL,
    env               text NOT NULL,
    bucket            timestamptz NOT NULL,
    provider text NOT NULL,
    model text NOT NULL,
    requests          bigint NOT NULL,
    errors            bigint NOT NULL,
    unknown_usage     bigint NOT NULL,
    prompt_tokens     bigint NOT NULL,
    completion_tokens bigint NOT NULL,
    total_tokens      bigint NOT NULL,
    cost_usd_e10      bigint NOT NULL,
    latency_sum_us    bigint NOT NULL,
    h0 bigint NOT NULL,
    h1 bigint NOT NULL,
    h2 bigint NOT NULL,
    h3 bigint NOT NULL,
    h4 bigint NOT NULL,
    h5 bigint NOT NULL,
    h6 bigint NOT NULL,
    h7 bigint NOT NULL,
    h8 bigint NOT NULL,
    h9 bigint NOT NULL,
    h10 bigint NOT NULL,
    h11 bigint NOT NULL,
    h12 bigint NOT NULL,
    h13 bigint NOT NULL,
    PRIMARY KEY (tenant_id, env, bucket, provider, model)
);

CREATE TABLE usage_rollups_model_daily (
    tenant_id         uuid NOT NULL,
    env               text NOT NULL,
    bucket            timestamptz NOT NULL,
    provider text NOT NULL,
    model text NOT NULL,
    requests          bigint NOT NULL,
    errors            bigint NOT NULL,
    unknown_usage     bigint NOT NULL,
    prompt_tokens     bigint NOT NULL,
    completion_tokens bigint NOT NULL,
    total_tokens      bigint NOT NULL,
    cost_usd_e10      bigint NOT NULL,
    latency_sum_us    bigint NOT NULL,
    h0 bigint NOT NULL,
    h1 bigint NOT NULL,
    h2 bigint NOT NULL,
    h3 bigint NOT NULL,
    h4 bigint NOT NULL,
    h5 bigint NOT NULL,
    h6 bigint NOT NULL,
    h7 bigint NOT NULL,
    h8 bigint NOT NULL,
    h9 bigint NOT NULL,
    h10 bigint NOT NULL,
    h11 bigint NOT NULL,
    h12 bigint NOT NULL,
    h13 bigint NOT NULL,
    PRIMARY KEY (tenant_id, env, bucket, provider, model)
);

CREATE TABLE usage_rollups_key_hourly (
    tenant_id         uuid NOT NULL,
    env               text NOT NULL,
    bucket            timestamptz NOT NULL,
    key_id uuid NOT NULL,
    requests          bigint NOT NULL,
    errors            bigint NOT NULL,
    unknown_usage     bigint NOT NULL,
    prompt_tokens     bigint NOT NULL,
    completion_tokens bigint NOT NULL,
    total_tokens      bigint NOT NULL,
    cost_usd_e10      bigint NOT NULL,
    latency_sum_us    bigint NOT NULL,
    h0 bigint NOT NULL,
    h1 bigint NOT NULL,
    h2 bigint NOT NULL,
    h3 bigint NOT NULL,
    h4 bigint NOT NULL,
    h5 bigint NOT NULL,
    h6 bigint NOT NULL,
    h7 bigint NOT NULL,
    h8 bigint NOT NULL,
    h9 bigint NOT NULL,
    h10 bigint NOT NULL,
    h11 bigint NOT NULL,
    h12 bigint NOT NULL,
    h13 bigint NOT NULL,
    PRIMARY KEY (tenant_id, env, bucket, key_id)
);

CREATE TABLE usage_rollups_key_daily (
    tenant_id         uuid NOT NULL,
    env               text NOT NULL,
    bucket            timestamptz NOT NULL,
    key_id uuid NOT NULL,
    requests          bigint NOT NULL,
    errors            bigint NOT NULL,
    unknown_usage     bigint NOT NULL,
    prompt_tokens     bigint NOT NULL,
    completion_tokens bigint NOT NULL,
    total_tokens      bigint NOT NULL,
    cost_usd_e10      bigint NOT NULL,
    latency_sum_us    bigint NOT NULL,
    h0 bigint NOT NULL,
    h1 bigint NOT NULL,
    h2 bigint NOT NULL,
    h3 bigint NOT NULL,
    h4 bigint NOT NULL,
    h5 bigint NOT NULL,
    h6 bigint NOT NULL,
    h7 bigint NOT NULL,
    h8 bigint NOT NULL,
    h9 bigint NOT NULL,
    h10 bigint NOT NULL,
    h11 bigint NOT NULL,
    h12 bigint NOT NULL,
    h13 bigint NOT NULL,
    PRIMARY KEY (tenant_id, env, bucket, key_id)
);

CREATE TABLE usage_rollups_status_hourly (
    tenant_id         uuid NOT NULL,
    env               text NOT NULL,
    bucket            timestamptz NOT NULL,
    status_code integer NOT NULL,
    requests          bigint NOT NULL,
    errors            bigint NOT NULL,
    unknown_usage     bigint NOT NULL,
    prompt_tokens     bigint NOT NULL,
    completion_tokens bigint NOT NULL,
    total_tokens      bigint NOT NULL,
    cost_usd_e10      bigint NOT NULL,
    latency_sum_us    bigint NOT NULL,
    h0 bigint NOT NULL,
    h1 bigint NOT NULL,
    h2 bigint NOT NULL,
    h3 bigint NOT NULL,
    h4 bigint NOT NULL,
    h5 bigint NOT NULL,
    h6 bigint NOT NULL,
    h7 bigint NOT NULL,
    h8 bigint NOT NULL,
    h9 bigint NOT NULL,
    h10 bigint NOT NULL,
    h11 bigint NOT NULL,
    h12 bigint NOT NULL,
    h13 bigint NOT NULL,
    PRIMARY KEY (tenant_id, env, bucket, status_code)
);

CREATE TABLE usage_rollups_status_daily (
    tenant_id         uuid NOT NULL,
    env               text NOT NULL,
    bucket            timestamptz NOT NULL,
    status_code integer NOT NULL,
    requests          bigint NOT NULL,
    errors            bigint NOT NULL,
    unknown_usage     bigint NOT NULL,
    prompt_tokens     bigint NOT NULL,
    completion_tokens bigint NOT NULL,
    total_tokens      bigint NOT NULL,
    cost_usd_e10      bigint NOT NULL,
    latency_sum_us    bigint NOT NULL,
    h0 bigint NOT NULL,
    h1 bigint NOT NULL,
    h2 bigint NOT NULL,
    h3 bigint NOT NULL,
    h4 bigint NOT NULL,
    h5 bigint NOT NULL,
    h6 bigint NOT NULL,
    h7 bigint NOT NULL,
    h8 bigint NOT NULL,
    h9 bigint NOT NULL,
    h10 bigint NOT NULL,
    h11 bigint NOT NULL,
    h12 bigint NOT NULL,
    h13 bigint NOT NULL,
    PRIMARY KEY (tenant_id, env, bucket, status_code)
);

-- The old rollups carry over, regrouped by each dimension (their float
-- cost and latency sums rounded once).

INSERT INTO usage_rollups_model_hourly (tenant_id, env, bucket, provider, model, requests, errors, unknown_usage, prompt_tokens, completion_tokens,
    total_tokens, cost_usd_e10, latency_sum_us, h0, h1, h2, h3, h4, h5, h6, h7, h8, h9, h10, h11, h12, h13)
SELECT tenant_id, env, bucket, provider, model, sum(requests), sum(errors), sum(unknown_usage), sum(prompt_tokens), sum(completion_tokens),
    sum(total_tokens), round(sum(cost_usd) * 1e10)::bigint, round(sum(latency_sum_ms) * 1000)::bigint, sum(latency_hist[1]), sum(latency_hist[2]), sum(latency_hist[3]), sum(latency_hist[4]), sum(latency_hist[5]), sum(latency_hist[6]), sum(latency_hist[7]), sum(latency_hist[8]), sum(latency_hist[9]), sum(latency_hist[10]), sum(latency_hist[11]), sum(latency_hist[12]), sum(latency_hist[13]), sum(latency_hist[14])
FROM usage_rollups_hourly GROUP BY tenant_id, env, bucket, provider, model ORDER BY tenant_id, env, bucket, provider, model;

INSERT INTO usage_rollups_model_daily (tenant_id, env, bucket, provider, model, requests, errors, unknown_usage, prompt_tokens, completion_tokens,
    total_tokens, cost_usd_e10, latency_sum_us, h0, h1, h2, h3, h4, h5, h6, h7, h8, h9, h10, h11, h12, h13)
SELECT tenant_id, env, bucket, provider, model, sum(requests), sum(errors), sum(unknown_usage), sum(prompt_tokens), sum(completion_tokens),
    sum(total_tokens), round(sum(cost_usd) * 1e10)::bigint, round(sum(latency_sum_ms) * 1000)::bigint, sum(latency_hist[1]), sum(latency_hist[2]), sum(latency_hist[3]), sum(latency_hist[4]), sum(latency_hist[5]), sum(latency_hist[6]), sum(latency_hist[7]), sum(latency_hist[8]), sum(latency_hist[9]), sum(latency_hist[10]), sum(latency_hist[11]), sum(latency_hist[12]), sum(latency_hist[13]), sum(latency_hist[14])
FROM usage_rollups_daily GROUP BY tenant_id, env, bucket, provider, model ORDER BY tenant_id, env, bucket, provider, model;

INSERT INTO usage_rollups_key_hourly (tenant_id, env, bucket, key_id, requests, errors, unknown_usage, prompt_tokens, completion_tokens,
    total_tokens, cost_usd_e10, latency_sum_us, h0, h1, h2, h3, h4, h5, h6, h7, h8, h9, h10, h11, h12, h13)
SELECT tenant_id, env, bucket, key_id, sum(requests), sum(errors), sum(unknown_usage), sum(prompt_tokens), sum(completion_tokens),
    sum(total_tokens), round(sum(cost_usd) * 1e10)::bigint, round(sum(latency_sum_ms) * 1000)::bigint, sum(latency_hist[1]), sum(latency_hist[2]), sum(latency_hist[3]), sum(latency_hist[4]), sum(latency_hist[5]), sum(latency_hist[6]), sum(latency_hist[7]), sum(latency_hist[8]), sum(latency_hist[9]), sum(latency_hist[10]), sum(latency_hist[11]), sum(latency_hist[12]), sum(latency_hist[13]), sum(latency_hist[14])
FROM usage_rollups_hourly GROUP BY tenant_id, env, bucket, key_id ORDER BY tenant_id, env, bucket, key_id;

INSERT INTO usage_rollups_key_daily (tenant_id, env, bucket, key_id, requests, errors, unknown_usage, prompt_tokens, completion_tokens,
    total_tokens, cost_usd_e10, latency_sum_us, h0, h1, h2, h3, h4, h5, h6, h7, h8, h9, h10, h11, h12, h13)
SELECT tenant_id, env, bucket, key_id, sum(requests), sum(errors), sum(unknown_usage), sum(prompt_tokens), sum(completion_tokens),
    sum(total_tokens), round(sum(cost_usd) * 1e10)::bigint, round(sum(latency_sum_ms) * 1000)::bigint, sum(latency_hist[1]), sum(latency_hist[2]), sum(latency_hist[3]), sum(latency_hist[4]), sum(latency_hist[5]), sum(latency_hist[6]), sum(latency_hist[7]), sum(latency_hist[8]), sum(latency_hist[9]), sum(latency_hist[10]), sum(latency_hist[11]), sum(latency_hist[12]), sum(latency_hist[13]), sum(latency_hist[14])
FROM usage_rollups_daily GROUP BY tenant_id, env, bucket, key_id ORDER BY tenant_id, env, bucket, key_id;

INSERT INTO usage_rollups_status_hourly (tenant_id, env, bucket, status_code, requests, errors, unknown_usage, prompt_tokens, completion_tokens,
    total_tokens, cost_usd_e10, latency_sum_us, h0, h1, h2, h3, h4, h5, h6, h7, h8, h9, h10, h11, h12, h13)
SELECT tenant_id, env, bucket, status_code, sum(requests), sum(errors), sum(unknown_usage), sum(prompt_tokens), sum(completion_tokens),
    sum(total_tokens), round(sum(cost_usd) * 1e10)::bigint, round(sum(latency_sum_ms) * 1000)::bigint, sum(latency_hist[1]), sum(latency_hist[2]), sum(latency_hist[3]), sum(latency_hist[4]), sum(latency_hist[5]), sum(latency_hist[6]), sum(latency_hist[7]), sum(latency_hist[8]), sum(latency_hist[9]), sum(latency_hist[10]), sum(latency_hist[11]), sum(latency_hist[12]), sum(latency_hist[13]), sum(latency_hist[14])
FROM usage_rollups_hourly GROUP BY tenant_id, env, bucket, status_code ORDER BY tenant_id, env, bucket, status_code;

INSERT INTO usage_rollups_status_daily (tenant_id, env, bucket, status_code, requests, errors, unknown_usage, prompt_tokens, completion_tokens,
    total_tokens, cost_usd_e10, latency_sum_us, h0, h1, h2, h3, h4, h5, h6, h7, h8, h9, h10, h11, h12, h13)
SELECT tenant_id, env, bucket, status_code, sum(requests), sum(errors), sum(unknown_usage), sum(prompt_tokens), sum(completion_tokens),
    sum(total_tokens), round(sum(cost_usd) * 1e10)::bigint, round(sum(latency_sum_ms) * 1000)::bigint, sum(latency_hist[1]), sum(latency_hist[2]), sum(latency_hist[3]), sum(latency_hist[4]), sum(latency_hist[5]), sum(latency_hist[6]), sum(latency_hist[7]), sum(latency_hist[8]), sum(latency_hist[9]), sum(latency_hist[10]), sum(latency_hist[11]), sum(latency_hist[12]), sum(latency_hist[13]), sum(latency_hist[14])
FROM usage_rollups_daily GROUP BY tenant_id, env, bucket, status_code ORDER BY tenant_id, env, bucket, status_code;

DROP TABLE usage_rollups_hourly, usage_rollups_daily;

-- +goose Down

-- The wide rollups cannot be rebuilt from per-dimension ones: they come
-- back empty (rebuild them from usage_logs if needed).
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
CREATE TABLE usage_rollups_daily (LIKE usage_rollups_hourly INCLUDING ALL);

DROP TABLE usage_rollups_model_hourly, usage_rollups_model_daily, usage_rollups_key_hourly, usage_rollups_key_daily, usage_rollups_status_hourly, usage_rollups_status_daily;

ALTER TABLE usage_logs DROP COLUMN cost_usd_e10;
ALTER TABLE usage_logs ADD CONSTRAINT usage_logs_pkey PRIMARY KEY (id, created_at);
