-- +goose Up
-- Daily rollups: the same shape as the hourly ones, maintained by the
-- ingester in the same transaction; stats over long ranges read whole days
-- here and only the partial edge hours from the hourly table.
CREATE TABLE usage_rollups_daily (LIKE usage_rollups_hourly INCLUDING ALL);

WITH h AS (
    SELECT tenant_id, env, date_trunc('day', bucket) AS d, provider, model, key_id, status_code, x.i, sum(x.v)::bigint AS v
    FROM usage_rollups_hourly, unnest(latency_hist) WITH ORDINALITY AS x(v, i)
    GROUP BY 1, 2, 3, 4, 5, 6, 7, 8
), hist AS (
    SELECT tenant_id, env, d, provider, model, key_id, status_code, array_agg(v ORDER BY i) AS a
    FROM h GROUP BY 1, 2, 3, 4, 5, 6, 7
), sums AS (
    SELECT tenant_id, env, date_trunc('day', bucket) AS d, provider, model, key_id, status_code,
        sum(requests) AS requests, sum(errors) AS errors, sum(unknown_usage) AS unknown_usage, sum(prompt_tokens) AS prompt_tokens,
        sum(completion_tokens) AS completion_tokens, sum(total_tokens) AS total_tokens, sum(cost_usd) AS cost_usd,
        sum(latency_sum_ms) AS latency_sum_ms
    FROM usage_rollups_hourly GROUP BY 1, 2, 3, 4, 5, 6, 7
)
INSERT INTO usage_rollups_daily (tenant_id, env, bucket, provider, model, key_id, status_code, requests, errors, unknown_usage,
    prompt_tokens, completion_tokens, total_tokens, cost_usd, latency_sum_ms, latency_hist)
SELECT s.tenant_id, s.env, s.d, s.provider, s.model, s.key_id, s.status_code, s.requests, s.errors, s.unknown_usage,
    s.prompt_tokens, s.completion_tokens, s.total_tokens, s.cost_usd, s.latency_sum_ms, h.a
FROM sums s JOIN hist h USING (tenant_id, env, d, provider, model, key_id, status_code);

-- +goose Down
DROP TABLE usage_rollups_daily;
