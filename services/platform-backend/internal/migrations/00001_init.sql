-- +goose Up
CREATE TABLE users (
    id             uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    email          text NOT NULL,
    name           text NOT NULL DEFAULT '',
    password_hash  text NOT NULL,
    platform_admin boolean NOT NULL DEFAULT false,
    token_version  integer NOT NULL DEFAULT 0,
    created_at     timestamptz NOT NULL DEFAULT now()
);
CREATE UNIQUE INDEX users_email_lower_key ON users (lower(email));

CREATE TABLE plans (
    id               text PRIMARY KEY,
    name             text NOT NULL,
    price_usd_month  numeric(10,2) NOT NULL,
    monthly_requests bigint NOT NULL,
    max_api_keys     integer NOT NULL,
    max_members      integer NOT NULL,
    max_rpm_per_key  integer NOT NULL,
    retention_days   integer NOT NULL,
    sort_order       integer NOT NULL
);
INSERT INTO plans VALUES
    ('free',       'Free',          0.00,      10000,    3,    3,   60,   7, 1),
    ('pro',        'Pro',          49.00,    1000000,   50,   25,  600,  30, 2),
    ('enterprise', 'Enterprise',  999.00,  100000000, 1000, 1000, 6000, 365, 3);

CREATE TABLE tenants (
    id         uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    name       text NOT NULL,
    slug       text NOT NULL UNIQUE,
    status     text NOT NULL DEFAULT 'active' CHECK (status IN ('active', 'suspended')),
    plan_id    text NOT NULL REFERENCES plans (id),
    created_at timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE memberships (
    tenant_id uuid NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    user_id   uuid NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    role      text NOT NULL CHECK (role IN ('viewer', 'member', 'admin', 'owner')),
    joined_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (tenant_id, user_id)
);
CREATE INDEX memberships_user_idx ON memberships (user_id);

CREATE TABLE subscriptions (
    id         uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    tenant_id  uuid NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    plan_id    text NOT NULL REFERENCES plans (id),
    status     text NOT NULL CHECK (status IN ('active', 'ended')),
    started_at timestamptz NOT NULL DEFAULT now(),
    ended_at   timestamptz
);
CREATE UNIQUE INDEX subscriptions_one_active ON subscriptions (tenant_id) WHERE status = 'active';

-- Values are JSON text; secret values are AES-256-GCM ciphertext (see secretbox).
CREATE TABLE tenant_configs (
    tenant_id  uuid NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    key        text NOT NULL,
    value      text NOT NULL,
    secret     boolean NOT NULL DEFAULT false,
    updated_at timestamptz NOT NULL DEFAULT now(),
    updated_by uuid,
    PRIMARY KEY (tenant_id, key)
);

CREATE TABLE storage_settings (
    tenant_id            uuid PRIMARY KEY REFERENCES tenants (id) ON DELETE CASCADE,
    log_request_bodies   boolean NOT NULL DEFAULT false,
    log_response_bodies  boolean NOT NULL DEFAULT false,
    redact_logged_bodies boolean NOT NULL DEFAULT true,
    retention_days       integer NOT NULL DEFAULT 7,
    updated_at           timestamptz NOT NULL DEFAULT now()
);

-- Dev-mode generated key material (APP_ENV=dev only); prod reads it from env/files.
CREATE TABLE dev_keys (
    name       text PRIMARY KEY,
    material   text NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now()
);

-- +goose Down
DROP TABLE dev_keys, storage_settings, tenant_configs, subscriptions, memberships, tenants, plans, users;
