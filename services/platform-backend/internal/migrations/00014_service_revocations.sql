-- Revoked instances and keys of this service's identity (the service
-- tokens it signs for its calls to the gateway): "platform-backend
-- revoke-instance ID" / "revoke-key KID". The service's introspection
-- refuses their tokens; a NATS event tells the gateway at once.
-- Numbered 00014 to leave room for migrations other branches add.
-- +goose Up
CREATE TABLE service_revocations (
    kind       text NOT NULL CHECK (kind IN ('instance', 'key')),
    value      text NOT NULL,
    revoked_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (kind, value)
);

-- +goose Down
DROP TABLE service_revocations;
