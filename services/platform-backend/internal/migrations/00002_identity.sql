-- +goose Up
-- Email sign-in codes (OTP). One live code per user: a new request replaces
-- the row (older codes stop working). code_hash is HMAC-SHA256 under a
-- server-side pepper (never in this database in prod) of the user id and the
-- code. The row is deleted when used, and after the last allowed wrong try.
CREATE TABLE otp_codes (
    user_id    uuid PRIMARY KEY REFERENCES users (id) ON DELETE CASCADE,
    code_hash  bytea NOT NULL,
    attempts   integer NOT NULL DEFAULT 0,
    expires_at timestamptz NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX otp_codes_expires_idx ON otp_codes (expires_at);

-- Password reset tokens. One live token per user (a new request replaces it).
-- token_hash is HMAC-SHA256 of the mailed token under the same pepper. The row
-- is deleted when used; a password change or reset deletes the user's rows.
CREATE TABLE password_resets (
    user_id    uuid PRIMARY KEY REFERENCES users (id) ON DELETE CASCADE,
    token_hash bytea NOT NULL UNIQUE,
    expires_at timestamptz NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX password_resets_expires_idx ON password_resets (expires_at);

-- +goose Down
DROP TABLE password_resets, otp_codes;
