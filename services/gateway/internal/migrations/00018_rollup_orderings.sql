-- +goose Up
-- Closed rollup periods are rewritten once in key order (issue 16;
-- docs/decisions.md, "Closed rollup periods are ordered"): a day of an
-- hourly table, a month of a daily table, two days after it ended, so that
-- a tenant's long series reads a few heap pages instead of one per row. The
-- retention job records here each period it ordered.
CREATE TABLE rollup_orderings (
    rollup     text NOT NULL,
    period     timestamptz NOT NULL,
    rows       bigint NOT NULL,
    ordered_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (rollup, period)
);

-- The rewrite finds a period's rows by bucket alone, which no primary key
-- leads with. A BRIN index costs a few pages per table and next to nothing
-- per increment (the summary changes only when a bucket outside a range's
-- bounds lands in it), and rollup rows lie in bucket order but for the
-- ordered periods, which are contiguous too. Each statement holds a SHARE
-- lock on its table while it reads it (the ingester's increments wait,
-- their events stay in JetStream): on a large database build them
-- beforehand with CREATE INDEX CONCURRENTLY (same names) and IF NOT EXISTS
-- skips them.
CREATE INDEX IF NOT EXISTS usage_rollups_model_hourly_bucket_brin ON usage_rollups_model_hourly USING brin (bucket);
CREATE INDEX IF NOT EXISTS usage_rollups_model_daily_bucket_brin ON usage_rollups_model_daily USING brin (bucket);
CREATE INDEX IF NOT EXISTS usage_rollups_key_hourly_bucket_brin ON usage_rollups_key_hourly USING brin (bucket);
CREATE INDEX IF NOT EXISTS usage_rollups_key_daily_bucket_brin ON usage_rollups_key_daily USING brin (bucket);
CREATE INDEX IF NOT EXISTS usage_rollups_status_hourly_bucket_brin ON usage_rollups_status_hourly USING brin (bucket);
CREATE INDEX IF NOT EXISTS usage_rollups_status_daily_bucket_brin ON usage_rollups_status_daily USING brin (bucket);

-- +goose Down
DROP INDEX usage_rollups_model_hourly_bucket_brin, usage_rollups_model_daily_bucket_brin, usage_rollups_key_hourly_bucket_brin,
    usage_rollups_key_daily_bucket_brin, usage_rollups_status_hourly_bucket_brin, usage_rollups_status_daily_bucket_brin;
DROP TABLE rollup_orderings;
