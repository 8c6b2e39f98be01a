-- +goose Up
-- Closed rollup periods are rewritten once in key order (issue 16;
-- docs/decisions.md, "Closed rollup periods are ordered"): a day of an
-- hourly table, a month of a daily table, two days after it ended, so that
-- a tenant's long series reads a few heap pages instead of one per row. The
-- retention job records here each period it ordered (rows 0: it held none).
-- A period's rows are found through the primary keys, one range scan per
-- (tenant, env): no index is added to the rollup tables.
CREATE TABLE rollup_orderings (
    rollup     text NOT NULL,
    period     timestamptz NOT NULL,
    rows       bigint NOT NULL,
    ordered_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (rollup, period)
);

-- +goose Down
DROP TABLE rollup_orderings;
