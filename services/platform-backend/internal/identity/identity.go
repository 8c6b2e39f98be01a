// Package identity owns platform accounts (User) and the flows around
// passwords: email sign-in codes (OTP), forgotten-password reset tokens and
// password changes.
//
// The rule of a sign-in try (judgeCode: single use, a bounded number of wrong
// tries, expiry) is decided here and applied by the store in the transaction
// that locks the code's row (Store.ConsumeOTP), so concurrent tries cannot
// both spend one code or exceed the tries.
//
// Codes and tokens are random, stored only as HMAC-SHA256 under a server-side
// pepper, expire, and are single use. The two flows that mail something
// (otp/request, forgot-password) do all their work — user lookup, code
// creation, delivery — in a background job, so the caller's answer and its
// timing are the same whether or not the email belongs to an account.
package identity

import (
	"context"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"errors"
	"fmt"
	"log/slog"
	"math/big"
	"strings"
	"time"

	"trueportai/services/internal/apperr"
	"trueportai/services/internal/events"
	"trueportai/services/platform-backend/internal/mail"
	"trueportai/services/platform-backend/internal/password"
	"trueportai/services/platform-backend/internal/worker"
)

// User is a platform account.
type User struct {
	ID            string
	Email         string
	Name          string
	PasswordHash  string
	PlatformAdmin bool
	TokenVersion  int
	CreatedAt     time.Time
}

// ErrNotFound: no such user (or live reset token, or the password changed
// concurrently).
var ErrNotFound = errors.New("not found")

// Store is the data the flows need (implemented by *store.Store).
type Store interface {
	UserByEmail(ctx context.Context, email string) (User, error)
	PutOTP(ctx context.Context, userID string, codeHash []byte, expiresAt, now time.Time) error
	// ConsumeOTP locks the user's live sign-in code, asks judge what
	// becomes of it and applies the answer in the same transaction
	// (concurrent tries are serialised on the code). Without a code judge
	// is not called.
	ConsumeOTP(ctx context.Context, userID string, judge func(StoredCode) CodeFate) error
	PutPasswordReset(ctx context.Context, userID string, tokenHash []byte, expiresAt, now time.Time) error
	// ResetPassword spends the live, unexpired reset token with tokenHash:
	// the token is deleted, the password replaced, the token version bumped
	// and the user's other codes and tokens deleted (ErrNotFound for an
	// unknown, used or expired token).
	ResetPassword(ctx context.Context, tokenHash []byte, newHash string, now time.Time) (User, error)
	// ChangePassword replaces the password of userID if it still is oldHash
	// (ErrNotFound otherwise), like ResetPassword.
	ChangePassword(ctx context.Context, userID, oldHash, newHash string) (User, error)
}

// StoredCode is a user's live sign-in code as stored.
type StoredCode struct {
	Hash      []byte
	Tries     int // wrong tries so far
	ExpiresAt time.Time
}

// CodeFate is what becomes of a stored code after a try.
type CodeFate int

// Fates of a code.
const (
	// CodeCountTry keeps the code and counts one more wrong try.
	CodeCountTry CodeFate = iota
	// CodeDelete deletes the code.
	CodeDelete
)

// judgeCode decides a try of hash against c at now. It succeeds when hash
// matches a live code (unexpired, fewer than maxTries wrong tries). The code
// is deleted when it is spent (single use), dead (expired or out of tries) or
// this was its last allowed wrong try, so afterwards even the right code
// fails; any other wrong try is counted.
func judgeCode(c StoredCode, hash []byte, now time.Time, maxTries int) (ok bool, fate CodeFate) {
	match := subtle.ConstantTimeCompare(c.Hash, hash) == 1
	live := now.Before(c.ExpiresAt) && c.Tries < maxTries
	ok = match && live
	if ok || !live || c.Tries+1 >= maxTries {
		return ok, CodeDelete
	}
	return false, CodeCountTry
}

// Revoker announces that a user's tokens were revoked (NATS TokensRevoked;
// the gateway drops its cached introspections of them).
type Revoker interface {
	TokensRevoked(ctx context.Context, ev events.TokensRevokedEvent)
}

// Config holds the flows' parameters.
type Config struct {
	// Pepper keys the HMAC of stored codes and tokens (32 bytes).
	Pepper []byte
	// PublicBaseURL is the base of links in mails (never the Host header).
	PublicBaseURL string
	OTPTTL        time.Duration // default 10 min
	OTPMaxTries   int           // wrong tries before a code dies; default 5
	ResetTTL      time.Duration // default 30 min
}

// Service runs the flows.
type Service struct {
	log  *slog.Logger
	st   Store
	mail mail.Sender
	jobs *worker.Pool
	rev  Revoker
	cfg  Config
	now  func() time.Time
}

// New returns a service; mail goes out from jobs, which the caller runs.
func New(log *slog.Logger, st Store, sender mail.Sender, jobs *worker.Pool, rev Revoker, cfg Config, now func() time.Time) (*Service, error) {
	if len(cfg.Pepper) < 32 {
		return nil, errors.New("identity: pepper must be at least 32 bytes")
	}
	if cfg.OTPTTL <= 0 {
		cfg.OTPTTL = 10 * time.Minute
	}
	if cfg.OTPMaxTries <= 0 {
		cfg.OTPMaxTries = 5
	}
	if cfg.ResetTTL <= 0 {
		cfg.ResetTTL = 30 * time.Minute
	}
	cfg.PublicBaseURL = strings.TrimRight(cfg.PublicBaseURL, "/")
	return &Service{log: log, st: st, mail: sender, jobs: jobs, rev: rev, cfg: cfg, now: now}, nil
}

// Client-visible errors, built fresh for each use (an *apperr.Error is
// mutable; a shared one would be shared by concurrent requests).
func errInvalidCode() error {
	return apperr.New(apperr.Unauthenticated, "invalid_code", "the code is wrong, expired or already used; request a new one")
}

func errInvalidReset() error {
	return apperr.InvalidField("token", "the reset token is invalid, expired or already used; request a new one")
}

func errBusy() error {
	return apperr.New(apperr.Unavailable, "mail_busy", "too many mails are waiting to be sent; try again in a minute")
}

func errWrongCurrent() error {
	return apperr.InvalidField("current_password", "current_password is incorrect")
}

// mac is HMAC-SHA256(pepper, purpose ‖ 0 ‖ parts joined by 0).
func (s *Service) mac(purpose string, parts ...string) []byte {
	h := hmac.New(sha256.New, s.cfg.Pepper)
	h.Write([]byte(purpose))
	for _, p := range parts {
		h.Write([]byte{0})
		h.Write([]byte(p))
	}
	return h.Sum(nil)
}

// submit queues fn keyed by email (jobs for one address run in order, so a
// later request always supersedes an earlier one). fn's context carries the
// request's log attributes and ends with the worker's drain time.
func (s *Service) submit(ctx context.Context, email string, fn func(ctx context.Context)) error {
	vals := context.WithoutCancel(ctx)
	err := s.jobs.Submit(ctx, email, func(jobCtx context.Context) {
		c, cancel := context.WithCancel(vals)
		defer cancel()
		stop := context.AfterFunc(jobCtx, cancel)
		defer stop()
		fn(c)
	})
	if errors.Is(err, worker.ErrFull) || errors.Is(err, worker.ErrStopped) {
		return errBusy()
	}
	return err
}

// ---------------------------------------------------------------- OTP

// RequestOTP queues a sign-in code for email (normalised by the caller).
// Nothing about the account is looked at before the answer.
func (s *Service) RequestOTP(ctx context.Context, email string) error {
	return s.submit(ctx, email, func(ctx context.Context) { s.sendOTP(ctx, email) })
}

func (s *Service) sendOTP(ctx context.Context, email string) {
	u, ok := s.lookup(ctx, email, "sign-in code")
	if !ok {
		return
	}
	n, err := rand.Int(rand.Reader, big.NewInt(1_000_000))
	if err != nil {
		s.log.ErrorContext(ctx, "sign-in code: random", "err", err)
		return
	}
	code := fmt.Sprintf("%06d", n.Int64())
	now := s.now()
	if err := s.st.PutOTP(ctx, u.ID, s.mac("otp", u.ID, code), now.Add(s.cfg.OTPTTL), now); err != nil {
		s.log.ErrorContext(ctx, "sign-in code: store", "user_id", u.ID, "err", err)
		return
	}
	mins := int(s.cfg.OTPTTL.Minutes())
	s.deliver(ctx, u, mail.Message{
		To:      u.Email,
		Subject: "Your TruePortAI sign-in code",
		Text: fmt.Sprintf("Your TruePortAI sign-in code is:\n\n    %s\n\n"+
			"It works once and expires in %d minutes. If you did not ask to sign in, ignore this email: "+
			"nobody can sign in without the code.\n", code, mins),
	})
}

// VerifyOTP spends a sign-in code and returns its user. A wrong, expired,
// used or superseded code, or an unknown email, is 401 invalid_code.
func (s *Service) VerifyOTP(ctx context.Context, email, code string) (User, error) {
	code = strings.NewReplacer(" ", "", "-", "").Replace(code)
	if len(code) != 6 || strings.Trim(code, "0123456789") != "" {
		return User{}, errInvalidCode()
	}
	u, err := s.st.UserByEmail(ctx, email)
	if errors.Is(err, ErrNotFound) {
		return User{}, errInvalidCode()
	}
	if err != nil {
		return User{}, err
	}
	hash, now := s.mac("otp", u.ID, code), s.now()
	ok := false
	err = s.st.ConsumeOTP(ctx, u.ID, func(c StoredCode) CodeFate {
		var fate CodeFate
		ok, fate = judgeCode(c, hash, now, s.cfg.OTPMaxTries)
		return fate
	})
	if err != nil {
		return User{}, err
	}
	if !ok {
		return User{}, errInvalidCode()
	}
	return u, nil
}

// ---------------------------------------------------------------- reset

// resetTokenLen is the base64url length of a 32-byte (256-bit) token.
const resetTokenLen = 43

// ForgotPassword queues a reset mail for email (normalised by the caller).
func (s *Service) ForgotPassword(ctx context.Context, email string) error {
	return s.submit(ctx, email, func(ctx context.Context) { s.sendReset(ctx, email) })
}

func (s *Service) sendReset(ctx context.Context, email string) {
	u, ok := s.lookup(ctx, email, "password reset")
	if !ok {
		return
	}
	var raw [32]byte
	if _, err := rand.Read(raw[:]); err != nil {
		s.log.ErrorContext(ctx, "password reset: random", "err", err)
		return
	}
	tok := base64.RawURLEncoding.EncodeToString(raw[:])
	now := s.now()
	if err := s.st.PutPasswordReset(ctx, u.ID, s.mac("reset", tok), now.Add(s.cfg.ResetTTL), now); err != nil {
		s.log.ErrorContext(ctx, "password reset: store", "user_id", u.ID, "err", err)
		return
	}
	link := s.cfg.PublicBaseURL + "/reset-password?token=" + tok
	s.deliver(ctx, u, mail.Message{
		To:      u.Email,
		Subject: "Reset your TruePortAI password",
		Text: fmt.Sprintf("Someone (hopefully you) asked to reset the password of your TruePortAI account.\n\n"+
			"Choose a new password here:\n\n    %s\n\n"+
			"or send this reset token with your new password to POST /platform/api/global/auth/reset-password:\n\n    %s\n\n"+
			"The link works once and expires in %d minutes. Resetting signs you out everywhere. "+
			"If you did not ask for this, ignore this email; your password stays as it is.\n",
			link, tok, int(s.cfg.ResetTTL.Minutes())),
	})
}

// ResetPassword spends a reset token and sets the new password (validated by
// the caller). Every token of the user is revoked.
func (s *Service) ResetPassword(ctx context.Context, token, newPassword string) error {
	if len(token) != resetTokenLen {
		return errInvalidReset()
	}
	if _, err := base64.RawURLEncoding.DecodeString(token); err != nil {
		return errInvalidReset()
	}
	hash, err := password.Hash(newPassword)
	if err != nil {
		return err
	}
	u, err := s.st.ResetPassword(ctx, s.mac("reset", token), hash, s.now())
	if errors.Is(err, ErrNotFound) {
		return errInvalidReset()
	}
	if err != nil {
		return err
	}
	s.log.InfoContext(ctx, "password reset; tokens revoked", "user_id", u.ID)
	s.rev.TokensRevoked(ctx, events.TokensRevokedEvent{UserID: u.ID, Reason: "password_reset"})
	return nil
}

// ---------------------------------------------------------------- change

// ChangePassword checks u's current password and sets the new one
// (validated by the caller). Every token of the user — the caller's
// included — is revoked.
func (s *Service) ChangePassword(ctx context.Context, u User, current, newPassword string) error {
	if len(current) > password.MaxLength {
		return errWrongCurrent()
	}
	if ok, err := password.Verify(u.PasswordHash, current); err != nil || !ok {
		return errWrongCurrent()
	}
	hash, err := password.Hash(newPassword)
	if err != nil {
		return err
	}
	u, err = s.st.ChangePassword(ctx, u.ID, u.PasswordHash, hash)
	if errors.Is(err, ErrNotFound) {
		// Changed (or deleted) concurrently: the current password we
		// checked is no longer current.
		return errWrongCurrent()
	}
	if err != nil {
		return err
	}
	s.log.InfoContext(ctx, "password changed; tokens revoked", "user_id", u.ID)
	s.rev.TokensRevoked(ctx, events.TokensRevokedEvent{UserID: u.ID, Reason: "password_changed"})
	return nil
}

// ---------------------------------------------------------------- helpers

// lookup finds the account of email inside a job; false ends the job (an
// unknown email gets no mail and no trace beyond a debug line).
func (s *Service) lookup(ctx context.Context, email, what string) (User, bool) {
	u, err := s.st.UserByEmail(ctx, email)
	if errors.Is(err, ErrNotFound) {
		s.log.DebugContext(ctx, what+" requested for an unknown email")
		return u, false
	}
	if err != nil {
		s.log.ErrorContext(ctx, what+": user lookup", "err", err)
		return u, false
	}
	return u, true
}

func (s *Service) deliver(ctx context.Context, u User, m mail.Message) {
	if err := s.mail.Send(ctx, m); err != nil {
		s.log.ErrorContext(ctx, "mail not sent", "user_id", u.ID, "subject", m.Subject, "err", err)
		return
	}
	s.log.InfoContext(ctx, "mail sent", "user_id", u.ID)
}
