package store

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"

	"trueportai/services/platform-backend/internal/identity"
)

var _ identity.Store = (*Store)(nil)

// PutOTP makes codeHash the user's one live sign-in code (any older code
// stops working) and purges other users' expired codes.
func (s *Store) PutOTP(ctx context.Context, userID string, codeHash []byte, expiresAt, now time.Time) error {
	_, err := s.pool.Exec(ctx, `WITH purge AS (DELETE FROM otp_codes WHERE expires_at < $4 AND user_id <> $1)
		INSERT INTO otp_codes (user_id, code_hash, expires_at) VALUES ($1, $2, $3)
		ON CONFLICT (user_id) DO UPDATE SET code_hash = EXCLUDED.code_hash, attempts = 0, expires_at = EXCLUDED.expires_at, created_at = now()`,
		userID, codeHash, expiresAt, now)
	return err
}

// ConsumeOTP locks the user's live sign-in code, asks judge what becomes of
// it and deletes it or counts a wrong try accordingly, in one transaction
// (concurrent tries are serialised on the row). Without a live code judge is
// not called.
func (s *Store) ConsumeOTP(ctx context.Context, userID string, judge func(identity.StoredCode) identity.CodeFate) error {
	if !validUUID(userID) {
		return nil
	}
	return pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		var c identity.StoredCode
		err := tx.QueryRow(ctx, `SELECT code_hash, attempts, expires_at FROM otp_codes WHERE user_id = $1 FOR UPDATE`, userID).
			Scan(&c.Hash, &c.Tries, &c.ExpiresAt)
		if errors.Is(err, pgx.ErrNoRows) {
			return nil
		}
		if err != nil {
			return fmt.Errorf("read otp: %w", err)
		}
		if judge(c) == identity.CodeDelete {
			_, err = tx.Exec(ctx, `DELETE FROM otp_codes WHERE user_id = $1`, userID)
		} else {
			_, err = tx.Exec(ctx, `UPDATE otp_codes SET attempts = attempts + 1 WHERE user_id = $1`, userID)
		}
		return err
	})
}

// PutPasswordReset makes tokenHash the user's one live reset token (an older
// one stops working) and purges other users' expired tokens.
func (s *Store) PutPasswordReset(ctx context.Context, userID string, tokenHash []byte, expiresAt, now time.Time) error {
	_, err := s.pool.Exec(ctx, `WITH purge AS (DELETE FROM password_resets WHERE expires_at < $4 AND user_id <> $1)
		INSERT INTO password_resets (user_id, token_hash, expires_at) VALUES ($1, $2, $3)
		ON CONFLICT (user_id) DO UPDATE SET token_hash = EXCLUDED.token_hash, expires_at = EXCLUDED.expires_at, created_at = now()`,
		userID, tokenHash, expiresAt, now)
	return err
}

// ResetPassword spends the live, unexpired reset token with tokenHash: in
// one transaction the token is deleted, the password replaced, the token
// version bumped (every issued JWT stops working) and the user's other codes
// and tokens deleted. An unknown, used or expired token is ErrNotFound.
func (s *Store) ResetPassword(ctx context.Context, tokenHash []byte, newHash string, now time.Time) (identity.User, error) {
	var u identity.User
	err := pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		var userID string
		err := tx.QueryRow(ctx, `DELETE FROM password_resets WHERE token_hash = $1 AND expires_at > $2 RETURNING user_id::text`, tokenHash, now).Scan(&userID)
		if errors.Is(err, pgx.ErrNoRows) {
			return ErrNotFound
		}
		if err != nil {
			return fmt.Errorf("spend reset token: %w", err)
		}
		u, err = setPassword(ctx, tx, userID, newHash)
		return err
	})
	return u, err
}

// ChangePassword replaces the password of userID if it still is oldHash (a
// concurrent change in between is ErrNotFound), bumps the token version and
// deletes the user's pending codes and reset tokens, in one transaction.
func (s *Store) ChangePassword(ctx context.Context, userID, oldHash, newHash string) (identity.User, error) {
	var u identity.User
	if !validUUID(userID) {
		return u, ErrNotFound
	}
	err := pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		var same bool
		err := tx.QueryRow(ctx, `SELECT password_hash = $2 FROM users WHERE id = $1 FOR UPDATE`, userID, oldHash).Scan(&same)
		if errors.Is(err, pgx.ErrNoRows) || err == nil && !same {
			return ErrNotFound
		}
		if err != nil {
			return fmt.Errorf("lock user: %w", err)
		}
		u, err = setPassword(ctx, tx, userID, newHash)
		return err
	})
	return u, err
}

func setPassword(ctx context.Context, tx pgx.Tx, userID, newHash string) (identity.User, error) {
	u, err := scanUser(tx.QueryRow(ctx, `UPDATE users SET password_hash = $2, token_version = token_version + 1 WHERE id = $1 RETURNING `+userCols, userID, newHash))
	if err != nil {
		return u, fmt.Errorf("set password: %w", err)
	}
	if _, err := tx.Exec(ctx, `DELETE FROM otp_codes WHERE user_id = $1`, userID); err != nil {
		return u, fmt.Errorf("delete otp codes: %w", err)
	}
	if _, err := tx.Exec(ctx, `DELETE FROM password_resets WHERE user_id = $1`, userID); err != nil {
		return u, fmt.Errorf("delete reset tokens: %w", err)
	}
	return u, nil
}
