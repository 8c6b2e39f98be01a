// Package identity owns platform accounts (User) and the flows around
// passwords and addresses: email sign-in codes (OTP), address verification,
// forgotten-password reset tokens and password changes.
//
// The rule of a code try (judgeCode: single use, a bounded number of wrong
// tries, expiry) is decided here and applied by the store in the transaction
// that locks the code's row (Store.ConsumeCode), so concurrent tries cannot
// both spend one code or exceed the tries. The wrong-try count belongs to the
// user and purpose, not to one code: a new code sent within the count's
// window (renewCode) keeps it, so asking for codes again buys no tries.
//
// An address is proven by spending something mailed to it: a sign-in code,
// a verification token or a reset token. Proving it sets email_verified and,
// for an address listed in PLATFORM_ADMIN_EMAILS, the platform-admin flag
// (proofOf), in the same transaction. Registering an address proves nothing,
// so it never makes anyone an admin.
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
	"slices"
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
	// EmailVerified: the address was proven (see the package doc).
	EmailVerified bool
	TokenVersion  int
	CreatedAt     time.Time
}

// ErrNotFound: no such user (or live reset token, or the password changed
// concurrently).
var ErrNotFound = errors.New("not found")

// Store is the data the flows need (implemented by *store.Store).
type Store interface {
	UserByEmail(ctx context.Context, email string) (User, error)
	// PutCode stores the user's one code for purpose: renew gets the stored
	// row (found false when there is none) under its row lock and returns
	// the row to store in its place. Other users' expired codes are purged.
	PutCode(ctx context.Context, userID string, purpose Purpose, now time.Time, renew func(old StoredCode, found bool) StoredCode) error
	// ConsumeCode locks the user, then their code for purpose, asks judge
	// what becomes of the code and applies the answer, in one transaction
	// (concurrent tries are serialised on the code). CodeSpent deletes the
	// code and applies prove's Proof (asked with the locked user) to the
	// user; the user is returned as it then is. Without a code judge is not
	// called.
	ConsumeCode(ctx context.Context, userID string, purpose Purpose, judge func(StoredCode) CodeFate, prove func(User) Proof) (User, error)
	PutPasswordReset(ctx context.Context, userID string, tokenHash []byte, expiresAt, now time.Time) error
	// ResetPassword spends the live, unexpired reset token with tokenHash:
	// the token is deleted, the password replaced, the token version bumped,
	// the user's other codes and tokens deleted and prove's Proof applied
	// (the token was mailed to the address) (ErrNotFound for an unknown, used
	// or expired token).
	ResetPassword(ctx context.Context, tokenHash []byte, newHash string, now time.Time, prove func(User) Proof) (User, error)
	// ChangePassword replaces the password of userID if it still is oldHash
	// (ErrNotFound otherwise), like ResetPassword.
	ChangePassword(ctx context.Context, userID, oldHash, newHash string) (User, error)
}

// Purpose separates a user's codes: each purpose has its own code and its
// own wrong-try count (stored as the text value).
type Purpose string

// Purposes of mailed codes.
const (
	// PurposeSignIn: the 6-digit sign-in code (otp/request, otp/verify).
	PurposeSignIn Purpose = "sign_in"
	// PurposeVerifyEmail: the address verification token.
	PurposeVerifyEmail Purpose = "verify_email"
)

// StoredCode is a user's code for one purpose as stored.
type StoredCode struct {
	Hash      []byte
	Tries     int // wrong tries counted since the window began
	ExpiresAt time.Time
	// TriesResetAt ends the window of the wrong-try count: a code sent
	// before it keeps the count (renewCode). It is never after ExpiresAt.
	TriesResetAt time.Time
}

// CodeFate is what becomes of a stored code after a try.
type CodeFate int

// Fates of a code.
const (
	// CodeCountTry keeps the code and counts one more wrong try.
	CodeCountTry CodeFate = iota
	// CodeKeep changes nothing: a code out of tries stays, dead, until it
	// expires, so that its count survives a new code sent meanwhile.
	CodeKeep
	// CodeDelete deletes an expired code (its try window is over as well).
	CodeDelete
	// CodeSpent deletes the code and proves the user's address.
	CodeSpent
)

// judgeCode decides a try of hash against c at now. It succeeds when hash
// matches a live code (unexpired, fewer than maxTries wrong tries); the code
// is then spent (single use). A wrong try at a live code is counted; the
// maxTries-th leaves the code dead, so afterwards even the right code fails.
// A dead code is kept (its count must outlive it), an expired one deleted.
func judgeCode(c StoredCode, hash []byte, now time.Time, maxTries int) (ok bool, fate CodeFate) {
	match := subtle.ConstantTimeCompare(c.Hash, hash) == 1
	switch {
	case !now.Before(c.ExpiresAt):
		return false, CodeDelete
	case c.Tries >= maxTries:
		return false, CodeKeep
	case match:
		return true, CodeSpent
	}
	return false, CodeCountTry
}

// renewCode is the row that replaces old (found: there is one) when a new
// code with hash is sent at now, valid for ttl. The new code starts a fresh
// wrong-try window unless old's window is still open: then it inherits
// old's count and window, so a resend never resets the count (the code
// itself still lives its full ttl).
func renewCode(old StoredCode, found bool, hash []byte, now time.Time, ttl time.Duration) StoredCode {
	c := StoredCode{Hash: hash, ExpiresAt: now.Add(ttl), TriesResetAt: now.Add(ttl)}
	if found && now.Before(old.TriesResetAt) {
		c.Tries, c.TriesResetAt = old.Tries, old.TriesResetAt
	}
	return c
}

// Proof is what proving a user's address changes, beyond setting
// email_verified.
type Proof struct {
	// GrantAdmin: the address is listed in PLATFORM_ADMIN_EMAILS.
	GrantAdmin bool
	// Reclaim: the address was unproven and is now proven without the
	// password (a sign-in code). The password was set by whoever registered
	// the address first, who need not own it: it stops working, and every
	// token of the user is revoked (token version bump). The owner sets a
	// password of their own with forgot-password.
	Reclaim bool
}

// proofOf is the Proof of proving u's address; withoutPassword: the proof
// came with no password (a sign-in code).
func (s *Service) proofOf(u User, withoutPassword bool) Proof {
	return Proof{
		GrantAdmin: slices.Contains(s.cfg.AdminEmails, strings.ToLower(u.Email)),
		Reclaim:    withoutPassword && !u.EmailVerified,
	}
}

// Revoker announces that a user's tokens were revoked (NATS TokensRevoked;
// the gateway drops its cached introspections of them).
type Revoker interface {
	TokensRevoked(ctx context.Context, ev events.TokensRevokedEvent)
}

// ConsoleLinkPrefix starts the path of every link mailed to a user (after
// PUBLIC_BASE_URL): a route of the web console, whose page takes the token.
// The token rides in the URL fragment, which browsers never send to a
// server (nor in a Referer), so no access log or proxy on the way sees it;
// the console removes it from the address bar once read.
const ConsoleLinkPrefix = "/console/#/"

// Config holds the flows' parameters.
type Config struct {
	// Pepper keys the HMAC of stored codes and tokens (32 bytes).
	Pepper []byte
	// PublicBaseURL is the base of links in mails (never the Host header).
	PublicBaseURL string
	OTPTTL        time.Duration // default 10 min
	OTPMaxTries   int           // wrong tries per window before codes die; default 5
	ResetTTL      time.Duration // default 30 min
	VerifyTTL     time.Duration // address verification token; default 60 min
	// AdminEmails (PLATFORM_ADMIN_EMAILS, lower case) become platform
	// admins when they prove their address, never before.
	AdminEmails []string
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
	if cfg.VerifyTTL <= 0 {
		cfg.VerifyTTL = time.Hour
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

func errInvalidVerification() error {
	return apperr.InvalidField("token", "the verification token is wrong, expired or already used; request a new one")
}

func errAlreadyVerified() error {
	return apperr.New(apperr.Conflict, "email_already_verified", "this account's email address is already verified")
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
	if err := s.putCode(ctx, u.ID, PurposeSignIn, s.mac("otp", u.ID, code), s.cfg.OTPTTL); err != nil {
		s.log.ErrorContext(ctx, "sign-in code: store", "user_id", u.ID, "err", err)
		return
	}
	mins := int(s.cfg.OTPTTL.Minutes())
	text := fmt.Sprintf("Your TruePortAI sign-in code is:\n\n    %s\n\n"+
		"It works once and expires in %d minutes. If you did not ask to sign in, ignore this email: "+
		"nobody can sign in without the code.\n", code, mins)
	if !u.EmailVerified {
		text += "\nSigning in with this code confirms this address for your account. Because it was not confirmed " +
			"before, the password chosen at registration stops working then (anyone could have registered this " +
			"address); choose a new one with \"forgot password\".\n"
	}
	s.deliver(ctx, u, mail.Message{To: u.Email, Subject: "Your TruePortAI sign-in code", Text: text})
}

// putCode stores hash as u's code for purpose, valid for ttl from now; the
// wrong-try count survives within its window (renewCode).
func (s *Service) putCode(ctx context.Context, userID string, purpose Purpose, hash []byte, ttl time.Duration) error {
	now := s.now()
	return s.st.PutCode(ctx, userID, purpose, now, func(old StoredCode, found bool) StoredCode {
		return renewCode(old, found, hash, now, ttl)
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
	u, ok, proof, err := s.consume(ctx, u, PurposeSignIn, s.mac("otp", u.ID, code), true)
	if err != nil {
		return User{}, err
	}
	if !ok {
		return User{}, errInvalidCode()
	}
	if proof.Reclaim {
		s.log.InfoContext(ctx, "address proven by a sign-in code; the registration password and every token revoked", "user_id", u.ID)
		s.rev.TokensRevoked(ctx, events.TokensRevokedEvent{UserID: u.ID, Reason: "email_reclaimed"})
	}
	return u, nil
}

// consume tries hash against u's code for purpose; a right one proves u's
// address (withoutPassword: see proofOf). It returns the user as it then is,
// whether the code was spent, and the proof applied.
func (s *Service) consume(ctx context.Context, u User, purpose Purpose, hash []byte, withoutPassword bool) (User, bool, Proof, error) {
	now := s.now()
	ok := false
	var proof Proof
	got, err := s.st.ConsumeCode(ctx, u.ID, purpose, func(c StoredCode) CodeFate {
		var fate CodeFate
		ok, fate = judgeCode(c, hash, now, s.cfg.OTPMaxTries)
		return fate
	}, func(locked User) Proof {
		proof = s.proofOf(locked, withoutPassword)
		return proof
	})
	if errors.Is(err, ErrNotFound) {
		return User{}, false, Proof{}, nil // deleted meanwhile
	}
	if err != nil || !ok {
		return User{}, false, Proof{}, err
	}
	if proof.GrantAdmin {
		s.log.InfoContext(ctx, "address proven; platform admin (PLATFORM_ADMIN_EMAILS)", "user_id", got.ID)
	}
	return got, true, proof, nil
}

// ---------------------------------------------------------------- address verification

// verifyTokenLen is the base64url length of a 32-byte (256-bit) token.
const verifyTokenLen = 43

// RequestEmailVerification queues a mail with a verification token to u's
// address. An address already verified is 409 email_already_verified.
func (s *Service) RequestEmailVerification(ctx context.Context, u User) error {
	if u.EmailVerified {
		return errAlreadyVerified()
	}
	return s.submit(ctx, u.Email, func(ctx context.Context) { s.sendVerification(ctx, u.Email) })
}

func (s *Service) sendVerification(ctx context.Context, email string) {
	u, ok := s.lookup(ctx, email, "address verification")
	if !ok || u.EmailVerified {
		return
	}
	var raw [32]byte
	if _, err := rand.Read(raw[:]); err != nil {
		s.log.ErrorContext(ctx, "address verification: random", "err", err)
		return
	}
	tok := base64.RawURLEncoding.EncodeToString(raw[:])
	if err := s.putCode(ctx, u.ID, PurposeVerifyEmail, s.mac("verify_email", u.ID, tok), s.cfg.VerifyTTL); err != nil {
		s.log.ErrorContext(ctx, "address verification: store", "user_id", u.ID, "err", err)
		return
	}
	link := s.cfg.PublicBaseURL + ConsoleLinkPrefix + "verify-email?token=" + tok
	s.deliver(ctx, u, mail.Message{
		To:      u.Email,
		Subject: "Confirm your TruePortAI email address",
		Text: fmt.Sprintf("Confirm that this address belongs to your TruePortAI account here (signed in):\n\n    %s\n\n"+
			"or send this token to POST /platform/api/global/auth/verify-email/confirm with your sign-in token:\n\n    %s\n\n"+
			"It works once and expires in %d minutes. If you did not create a TruePortAI account, ignore this email: "+
			"nobody can confirm the address without it.\n", link, tok, int(s.cfg.VerifyTTL.Minutes())),
	})
}

// ConfirmEmail spends a verification token mailed to u's address: the
// address is proven (email_verified, and the platform-admin flag for a
// listed address). The token only works for the user it was sent to: its
// MAC covers the user id. The caller's session came from the password (an
// unverified account cannot have signed in with a code), so the password
// holder is the address owner and keeps it.
func (s *Service) ConfirmEmail(ctx context.Context, u User, token string) (User, error) {
	if u.EmailVerified {
		return User{}, errAlreadyVerified()
	}
	if len(token) != verifyTokenLen {
		return User{}, errInvalidVerification()
	}
	if _, err := base64.RawURLEncoding.DecodeString(token); err != nil {
		return User{}, errInvalidVerification()
	}
	got, ok, _, err := s.consume(ctx, u, PurposeVerifyEmail, s.mac("verify_email", u.ID, token), false)
	if err != nil {
		return User{}, err
	}
	if !ok {
		return User{}, errInvalidVerification()
	}
	s.log.InfoContext(ctx, "address verified", "user_id", got.ID)
	return got, nil
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
	link := s.cfg.PublicBaseURL + ConsoleLinkPrefix + "reset-password?token=" + tok
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
	u, err := s.st.ResetPassword(ctx, s.mac("reset", token), hash, s.now(), func(locked User) Proof {
		return s.proofOf(locked, false) // the new password is the address owner's
	})
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
