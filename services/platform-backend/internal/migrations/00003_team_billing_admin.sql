-- +goose Up
-- Invitations to join a tenant. The token is mailed; only its SHA-256 (hex) is
-- kept. A pending invite has neither accepted_at nor revoked_at; it may still
-- have expired (expires_at is checked on accept).
CREATE TABLE invites (
    id          uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    tenant_id   uuid NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    email       text NOT NULL,
    role        text NOT NULL CHECK (role IN ('viewer', 'member', 'admin', 'owner')),
    token_hash  text NOT NULL UNIQUE,
    invited_by  uuid REFERENCES users (id) ON DELETE SET NULL,
    created_at  timestamptz NOT NULL DEFAULT now(),
    expires_at  timestamptz NOT NULL,
    accepted_at timestamptz,
    accepted_by uuid REFERENCES users (id) ON DELETE SET NULL,
    revoked_at  timestamptz
);
-- At most one open invite per tenant and address (a re-invite revokes the old one).
CREATE UNIQUE INDEX invites_one_open ON invites (tenant_id, lower(email)) WHERE accepted_at IS NULL AND revoked_at IS NULL;
CREATE INDEX invites_email_open_idx ON invites (lower(email)) WHERE accepted_at IS NULL AND revoked_at IS NULL;

-- Invoice-style payment records written by the shipped payment implementation
-- (no card data ever reaches the platform).
CREATE TABLE invoices (
    id           uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    tenant_id    uuid NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    plan_id      text NOT NULL REFERENCES plans (id),
    amount_usd   numeric(10,2) NOT NULL CHECK (amount_usd >= 0),
    currency     text NOT NULL DEFAULT 'USD',
    status       text NOT NULL CHECK (status IN ('issued', 'void')),
    period_start timestamptz NOT NULL,
    period_end   timestamptz NOT NULL,
    created_at   timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX invoices_tenant_idx ON invoices (tenant_id, created_at DESC);

ALTER TABLE subscriptions
    ADD COLUMN invoice_id uuid REFERENCES invoices (id),
    ADD COLUMN created_by uuid REFERENCES users (id) ON DELETE SET NULL;
CREATE INDEX subscriptions_tenant_idx ON subscriptions (tenant_id, started_at DESC);

-- Platform-wide settings (registry in package globalreg); values are JSON text.
CREATE TABLE global_configs (
    key        text PRIMARY KEY,
    value      text NOT NULL,
    updated_at timestamptz NOT NULL DEFAULT now(),
    updated_by uuid REFERENCES users (id) ON DELETE SET NULL
);

-- Every platform-admin action and every role-changing action. Ids are kept as
-- plain values (no foreign keys) so rows outlive the users and tenants they name.
CREATE TABLE audit_log (
    id          uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    at          timestamptz NOT NULL DEFAULT clock_timestamp(),
    actor_id    uuid,
    actor_email text NOT NULL DEFAULT '',
    action      text NOT NULL,
    target_type text NOT NULL,
    target_id   text NOT NULL DEFAULT '',
    tenant_id   uuid,
    details     jsonb NOT NULL DEFAULT '{}'::jsonb
);
CREATE INDEX audit_log_at_idx ON audit_log (at DESC, id);
CREATE INDEX audit_log_tenant_idx ON audit_log (tenant_id, at DESC);

-- +goose Down
DROP TABLE audit_log, global_configs;
ALTER TABLE subscriptions DROP COLUMN invoice_id, DROP COLUMN created_by;
DROP TABLE invoices, invites;
