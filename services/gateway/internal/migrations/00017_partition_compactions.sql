-- +goose Up
-- A closed month partition's indexes are rebuilt once, packed (issue 16;
-- docs/decisions.md, "Closed months are compacted"): the ingester's inserts
-- land in the middle of each tenant's key range, where B-tree pages split
-- in halves, so a month's indexes end up about half full. The retention job
-- records here each partition it compacted, with its index bytes before
-- and after.
CREATE TABLE partition_compactions (
    partition          text PRIMARY KEY,
    compacted_at       timestamptz NOT NULL DEFAULT now(),
    index_bytes_before bigint NOT NULL,
    index_bytes_after  bigint NOT NULL
);

-- +goose Down
DROP TABLE partition_compactions;
