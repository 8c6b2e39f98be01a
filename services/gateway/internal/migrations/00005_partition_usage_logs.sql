-- +goose Up
-- usage_logs and violations become range-partitioned on created_at, one
-- partition per UTC month (<table>_yYYYYmMM) plus a DEFAULT partition for rows
-- outside every month partition, so that retention can drop whole months
-- (docs/decisions.md, "Usage storage"). Keys must hold the partition key:
-- PRIMARY KEY (id, created_at), and for the ingester's idempotency
-- UNIQUE (created_at, request_id) (created_at first: new rows go to the end
-- of that index instead of a random page; ON CONFLICT (request_id,
-- created_at) infers it, column order does not matter). An event's
-- created_at is set by the gateway and travels in the event, so a
-- redelivered event carries the same one.

-- +goose StatementBegin
-- gateway_ensure_month_partition creates parent's partition for the UTC month
-- holding ts unless it exists, and returns its name (NULL when it existed).
-- Rows of that month already in the DEFAULT partition are moved into it (a
-- new partition cannot be attached while the default holds rows of its
-- range). The table is created on its own and then ATTACHed: that takes
-- SHARE UPDATE EXCLUSIVE on the parent (reads and inserts go on), where
-- CREATE TABLE … PARTITION OF would take ACCESS EXCLUSIVE. Callers may set
-- lock_timeout. Also used by scripts/bench-analytics.sh and
-- usage.EnsurePartitions (the gateway's monthly maintenance).
CREATE FUNCTION gateway_ensure_month_partition(parent regclass, ts timestamptz) RETURNS text
LANGUAGE plpgsql AS $$
DECLARE
    lo   timestamptz := date_trunc('month', ts, 'UTC');
    hi   timestamptz := ((date_trunc('month', ts, 'UTC') AT TIME ZONE 'UTC') + interval '1 month') AT TIME ZONE 'UTC';
    nsp  text;
    rel  text;
    part text;
    def  regclass;
BEGIN
    SELECT n.nspname, c.relname INTO nsp, rel FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace WHERE c.oid = parent;
    part := rel || '_y' || to_char(lo AT TIME ZONE 'UTC', 'YYYY') || 'm' || to_char(lo AT TIME ZONE 'UTC', 'MM');
    IF to_regclass(format('%I.%I', nsp, part)) IS NOT NULL THEN
        RETURN NULL;
    END IF;
    -- One creator at a time (replicas, the migration), then look again.
    PERFORM pg_advisory_xact_lock(hashtext('gateway_ensure_month_partition'));
    IF to_regclass(format('%I.%I', nsp, part)) IS NOT NULL THEN
        RETURN NULL;
    END IF;
    SELECT NULLIF(partdefid, 0)::regclass INTO def FROM pg_partitioned_table WHERE partrelid = parent;
    EXECUTE format('CREATE TABLE %I.%I (LIKE %s INCLUDING DEFAULTS)', nsp, part, parent);
    IF def IS NOT NULL THEN
        -- No new rows reach the default partition until the commit.
        EXECUTE format('LOCK TABLE %s IN SHARE ROW EXCLUSIVE MODE', def);
        EXECUTE format('WITH m AS (DELETE FROM %s WHERE created_at >= $1 AND created_at < $2 RETURNING *) INSERT INTO %I.%I SELECT * FROM m',
            def, nsp, part) USING lo, hi;
    END IF;
    -- The parent's indexes and keys are created on the new table here.
    EXECUTE format('ALTER TABLE %s ATTACH PARTITION %I.%I FOR VALUES FROM (%L) TO (%L)', parent, nsp, part, lo, hi);
    RETURN part;
END
$$;
-- +goose StatementEnd

-- The existing rows move into the new tables: partitions for every month
-- that holds some, and for the previous, current and next two months.
ALTER TABLE usage_logs RENAME TO usage_logs_unpartitioned;
CREATE TABLE usage_logs (LIKE usage_logs_unpartitioned INCLUDING DEFAULTS) PARTITION BY RANGE (created_at);
CREATE TABLE usage_logs_default PARTITION OF usage_logs DEFAULT;
SELECT gateway_ensure_month_partition('usage_logs', m) FROM (
    SELECT DISTINCT date_trunc('month', created_at, 'UTC') FROM usage_logs_unpartitioned
    UNION SELECT ((date_trunc('month', now(), 'UTC') AT TIME ZONE 'UTC') + k * interval '1 month') AT TIME ZONE 'UTC' FROM generate_series(-1, 2) k
) x(m) ORDER BY m;
INSERT INTO usage_logs SELECT * FROM usage_logs_unpartitioned ORDER BY created_at;
DROP TABLE usage_logs_unpartitioned;
ALTER TABLE usage_logs ADD CONSTRAINT usage_logs_pkey PRIMARY KEY (id, created_at);
ALTER TABLE usage_logs ADD CONSTRAINT usage_logs_created_request_key UNIQUE (created_at, request_id);
CREATE INDEX usage_logs_tenant_env_time_idx ON usage_logs (tenant_id, env, created_at DESC);
CREATE INDEX usage_logs_tenant_env_key_time_idx ON usage_logs (tenant_id, env, key_id, created_at DESC);
CREATE INDEX usage_logs_tenant_env_model_time_idx ON usage_logs (tenant_id, env, model, created_at DESC);
CREATE INDEX usage_logs_tenant_env_status_time_idx ON usage_logs (tenant_id, env, status_code, created_at DESC);

ALTER TABLE violations RENAME TO violations_unpartitioned;
CREATE TABLE violations (LIKE violations_unpartitioned INCLUDING DEFAULTS) PARTITION BY RANGE (created_at);
CREATE TABLE violations_default PARTITION OF violations DEFAULT;
SELECT gateway_ensure_month_partition('violations', m) FROM (
    SELECT DISTINCT date_trunc('month', created_at, 'UTC') FROM violations_unpartitioned
    UNION SELECT ((date_trunc('month', now(), 'UTC') AT TIME ZONE 'UTC') + k * interval '1 month') AT TIME ZONE 'UTC' FROM generate_series(-1, 2) k
) x(m) ORDER BY m;
INSERT INTO violations SELECT * FROM violations_unpartitioned ORDER BY created_at;
DROP TABLE violations_unpartitioned;
-- Detail by id probes each partition's primary key index (id first).
ALTER TABLE violations ADD CONSTRAINT violations_pkey PRIMARY KEY (id, created_at);
CREATE INDEX violations_tenant_env_time_idx ON violations (tenant_id, env, created_at DESC);

-- Autovacuum never analyzes a partitioned parent; the partitions get theirs.
ANALYZE usage_logs;
ANALYZE violations;

-- +goose Down
ALTER TABLE usage_logs RENAME TO usage_logs_partitioned;
CREATE TABLE usage_logs (LIKE usage_logs_partitioned INCLUDING DEFAULTS);
INSERT INTO usage_logs SELECT * FROM usage_logs_partitioned ORDER BY created_at;
DROP TABLE usage_logs_partitioned;
ALTER TABLE usage_logs ADD CONSTRAINT usage_logs_pkey PRIMARY KEY (id);
ALTER TABLE usage_logs ADD CONSTRAINT usage_logs_request_id_key UNIQUE (request_id);
CREATE INDEX usage_logs_tenant_env_time_idx ON usage_logs (tenant_id, env, created_at DESC);
CREATE INDEX usage_logs_tenant_env_key_time_idx ON usage_logs (tenant_id, env, key_id, created_at DESC);
CREATE INDEX usage_logs_tenant_env_model_time_idx ON usage_logs (tenant_id, env, model, created_at DESC);
CREATE INDEX usage_logs_tenant_env_status_time_idx ON usage_logs (tenant_id, env, status_code, created_at DESC);

ALTER TABLE violations RENAME TO violations_partitioned;
CREATE TABLE violations (LIKE violations_partitioned INCLUDING DEFAULTS);
INSERT INTO violations SELECT * FROM violations_partitioned ORDER BY created_at;
DROP TABLE violations_partitioned;
ALTER TABLE violations ADD CONSTRAINT violations_pkey PRIMARY KEY (id);
CREATE INDEX violations_tenant_env_time_idx ON violations (tenant_id, env, created_at DESC);

DROP FUNCTION gateway_ensure_month_partition(regclass, timestamptz);
