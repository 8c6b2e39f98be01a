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

// PutCode stores the user's one code for purpose in the transaction that
// locks its row: renew is handed the stored row (found false when there was
// none) and returns the row to store. Other users' expired codes are purged
// (a row's try window never outlasts its code, so nothing counted is lost).
func (s *Store) PutCode(ctx context.Context, userID string, purpose identity.Purpose, now time.Time, renew func(old identity.StoredCode, found bool) identity.StoredCode) error {
	return pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, `DELETE FROM otp_codes WHERE expires_at < $2 AND user_id <> $1`, userID, now); err != nil {
			return fmt.Errorf("purge codes: %w", err)
		}
		// A placeholder row (no valid hash, long expired) gives a first
		// code a row to lock, so two concurrent puts serialise as resends.
		var inserted bool
		err := tx.QueryRow(ctx, `INSERT INTO otp_codes (user_id, purpose, code_hash, expires_at, tries_reset_at)
			VALUES ($1, $2, '', 'epoch', 'epoch') ON CONFLICT (user_id, purpose) DO NOTHING RETURNING true`, userID, string(purpose)).Scan(&inserted)
		if err != nil && !errors.Is(err, pgx.ErrNoRows) {
			return fmt.Errorf("insert code row: %w", err)
		}
		var old identity.StoredCode
		if !inserted {
			err = tx.QueryRow(ctx, `SELECT code_hash, attempts, expires_at, tries_reset_at FROM otp_codes WHERE user_id = $1 AND purpose = $2 FOR UPDATE`,
				userID, string(purpose)).Scan(&old.Hash, &old.Tries, &old.ExpiresAt, &old.TriesResetAt)
			if err != nil {
				return fmt.Errorf("lock code: %w", err)
			}
		}
		c := renew(old, !inserted)
		_, err = tx.Exec(ctx, `UPDATE otp_codes SET code_hash = $3, attempts = $4, expires_at = $5, tries_reset_at = $6, created_at = now()
			WHERE user_id = $1 AND purpose = $2`, userID, string(purpose), c.Hash, c.Tries, c.ExpiresAt, c.TriesResetAt)
		return err
	})
}

// ConsumeCode locks the user (first, as password changes do, so the two
// never deadlock), then their code for purpose, asks judge what becomes of
// the code and applies it in one transaction: concurrent tries serialise on
// the rows. CodeSpent deletes the code and applies prove's Proof to the user
// (proveEmail). The user is returned as it then is; a missing user is
// ErrNotFound. Without a code judge is not called.
func (s *Store) ConsumeCode(ctx context.Context, userID string, purpose identity.Purpose, judge func(identity.StoredCode) identity.CodeFate,
	prove func(identity.User) identity.Proof) (identity.User, error) {
	var u identity.User
	if !validUUID(userID) {
		return u, ErrNotFound
	}
	err := pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		var err error
		if u, err = scanUser(tx.QueryRow(ctx, `SELECT `+userCols+` FROM users WHERE id = $1 FOR NO KEY UPDATE`, userID)); err != nil {
			return err
		}
		var c identity.StoredCode
		err = tx.QueryRow(ctx, `SELECT code_hash, attempts, expires_at, tries_reset_at FROM otp_codes WHERE user_id = $1 AND purpose = $2 FOR UPDATE`,
			userID, string(purpose)).Scan(&c.Hash, &c.Tries, &c.ExpiresAt, &c.TriesResetAt)
		if errors.Is(err, pgx.ErrNoRows) {
			return nil
		}
		if err != nil {
			return fmt.Errorf("read code: %w", err)
		}
		switch judge(c) {
		case identity.CodeCountTry:
			_, err = tx.Exec(ctx, `UPDATE otp_codes SET attempts = attempts + 1 WHERE user_id = $1 AND purpose = $2`, userID, string(purpose))
		case identity.CodeDelete:
			_, err = tx.Exec(ctx, `DELETE FROM otp_codes WHERE user_id = $1 AND purpose = $2`, userID, string(purpose))
		case identity.CodeSpent:
			if _, err = tx.Exec(ctx, `DELETE FROM otp_codes WHERE user_id = $1 AND purpose = $2`, userID, string(purpose)); err == nil {
				u, err = proveEmail(ctx, tx, u.ID, prove(u))
			}
		}
		return err
	})
	return u, err
}

// proveEmail marks the user's address proven and applies p: the admin flag
// (never cleared here), and for a reclaim an unusable password and a token
// version bump.
func proveEmail(ctx context.Context, tx pgx.Tx, userID string, p identity.Proof) (identity.User, error) {
	u, err := scanUser(tx.QueryRow(ctx, `UPDATE users SET email_verified = true, platform_admin = platform_admin OR $2,
		password_hash = CASE WHEN $3 THEN '' ELSE password_hash END,
		token_version = token_version + CASE WHEN $3 THEN 1 ELSE 0 END
		WHERE id = $1 RETURNING `+userCols, userID, p.GrantAdmin, p.Reclaim))
	if err != nil {
		return u, fmt.Errorf("prove email: %w", err)
	}
	return u, nil
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
// version bumped (every issued JWT stops working), the user's other codes
// and tokens deleted and the address proven with prove's Proof (the token
// was mailed to it). An unknown, used or expired token is ErrNotFound.
func (s *Store) ResetPassword(ctx context.Context, tokenHash []byte, newHash string, now time.Time, prove func(identity.User) identity.Proof) (identity.User, error) {
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
		if u, err = setPassword(ctx, tx, userID, newHash); err != nil {
			return err
		}
		u, err = proveEmail(ctx, tx, userID, prove(u))
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
