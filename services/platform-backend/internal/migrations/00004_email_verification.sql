-- +goose Up
-- Address verification. An address is proven by spending something mailed to
-- it (a sign-in code, a verification token, a reset token); only then does
-- PLATFORM_ADMIN_EMAILS make its user a platform admin. Existing users start
-- unverified; existing admins keep the flag (GET /admin/users shows which of
-- them never proved their address).
ALTER TABLE users ADD COLUMN email_verified boolean NOT NULL DEFAULT false;

-- Mailed codes per purpose: the sign-in code and the verification token each
-- have one row per user. attempts counts wrong tries until tries_reset_at: a
-- new code sent before then keeps the count (a resend buys no tries), and a
-- code out of tries is kept, dead, until it expires for the same reason.
-- tries_reset_at is never after expires_at, so expired rows can be purged.
ALTER TABLE otp_codes
    ADD COLUMN purpose text NOT NULL DEFAULT 'sign_in' CHECK (purpose IN ('sign_in', 'verify_email')),
    ADD COLUMN tries_reset_at timestamptz;
UPDATE otp_codes SET tries_reset_at = expires_at;
ALTER TABLE otp_codes
    ALTER COLUMN purpose DROP DEFAULT,
    ALTER COLUMN tries_reset_at SET NOT NULL,
    DROP CONSTRAINT otp_codes_pkey,
    ADD PRIMARY KEY (user_id, purpose);

-- +goose Down
DELETE FROM otp_codes WHERE purpose <> 'sign_in';
ALTER TABLE otp_codes
    DROP CONSTRAINT otp_codes_pkey,
    ADD PRIMARY KEY (user_id),
    DROP COLUMN tries_reset_at,
    DROP COLUMN purpose;
ALTER TABLE users DROP COLUMN email_verified;
