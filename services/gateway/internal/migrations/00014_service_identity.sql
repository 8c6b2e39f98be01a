-- The gateway's service identity (the service tokens it signs for its
-- calls to the platform): in dev its signing key is generated once and
-- kept here (dev_keys, as on the platform); revoked instances and keys
-- ("gateway revoke-instance ID" / "revoke-key KID") are refused by its
-- introspection, and a NATS event tells the platform at once.
-- Numbered 00014 to leave room for migrations other branches add.
-- +goose Up
CREATE TABLE dev_keys (
    name       text PRIMARY KEY,
    material   text NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE service_revocations (
    kind       text NOT NULL CHECK (kind IN ('instance', 'key')),
    value      text NOT NULL,
    revoked_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (kind, value)
);

-- +goose Down
DROP TABLE service_revocations, dev_keys;
