package httpapi

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/mail"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/labstack/echo/v4"

	"trueportai/services/internal/apperr"
	"trueportai/services/internal/ratelimit"
	"trueportai/services/platform-backend/internal/identity"
	"trueportai/services/platform-backend/internal/password"
	"trueportai/services/platform-backend/internal/store"
	"trueportai/services/platform-backend/internal/token"
)

type userResp struct {
	ID            string    `json:"id"`
	Email         string    `json:"email"`
	Name          string    `json:"name"`
	PlatformAdmin bool      `json:"platform_admin"`
	EmailVerified bool      `json:"email_verified"`
	CreatedAt     time.Time `json:"created_at"`
}

func toUserResp(u identity.User) userResp {
	return userResp{ID: u.ID, Email: u.Email, Name: u.Name, PlatformAdmin: u.PlatformAdmin, EmailVerified: u.EmailVerified, CreatedAt: u.CreatedAt.UTC()}
}

// normalizeEmail validates a bare address and lower-cases it.
func normalizeEmail(s string) (string, error) {
	s = strings.TrimSpace(s)
	a, err := mail.ParseAddress(s)
	if err != nil || a.Address != s || len(s) > 254 || !strings.Contains(s[strings.LastIndex(s, "@"):], ".") {
		return "", apperr.InvalidField("email", "email must be a valid address like name@example.com")
	}
	return strings.ToLower(s), nil
}

// cleanName trims a display name and checks its length in characters
// (minLen..maxLen) and that it holds no control characters (NUL included).
func cleanName(s string, minLen, maxLen int) (string, error) {
	s = strings.TrimSpace(s)
	if n := utf8.RuneCountInString(s); n < minLen || n > maxLen {
		if minLen == 0 {
			return "", apperr.InvalidField("name", fmt.Sprintf("name must be at most %d characters", maxLen))
		}
		return "", apperr.InvalidField("name", fmt.Sprintf("name must be %d to %d characters", minLen, maxLen))
	}
	if strings.IndexFunc(s, unicode.IsControl) >= 0 {
		return "", apperr.InvalidField("name", "name must not contain control characters")
	}
	return s, nil
}

func checkPassword(field, pw string) error {
	if len(pw) < password.MinLength || len(pw) > password.MaxLength {
		return apperr.InvalidField(field, "password must be 10 to 256 characters")
	}
	return nil
}

func (a *API) register(c echo.Context) error {
	var req struct {
		Email    string `json:"email"`
		Password string `json:"password"`
		Name     string `json:"name"`
	}
	if err := bind(c, &req); err != nil {
		return err
	}
	email, err := normalizeEmail(req.Email)
	if err != nil {
		return err
	}
	if err := checkPassword("password", req.Password); err != nil {
		return err
	}
	name, err := cleanName(req.Name, 0, 200)
	if err != nil {
		return err
	}
	if err := a.limit(c, ruleRegisterIP, a.clientIP(c)); err != nil {
		return err
	}
	if err := a.limit(c, ruleRegisterEmail, email); err != nil {
		return err
	}
	hash, err := password.Hash(req.Password)
	if err != nil {
		return err
	}
	// Never a platform admin here, whatever PLATFORM_ADMIN_EMAILS says:
	// registering an address proves nothing (see verify-email).
	u, err := a.store.CreateUser(c.Request().Context(), email, name, hash)
	if errors.Is(err, store.ErrEmailTaken) {
		return apperr.New(apperr.Conflict, "email_taken", "an account with this email already exists")
	}
	if err != nil {
		return err
	}
	return c.JSON(http.StatusCreated, map[string]any{"user": toUserResp(u)})
}

func (a *API) login(c echo.Context) error {
	var req struct {
		Email    string `json:"email"`
		Password string `json:"password"`
	}
	if err := bind(c, &req); err != nil {
		return err
	}
	if strings.TrimSpace(req.Email) == "" {
		return apperr.InvalidField("email", "email is required")
	}
	if req.Password == "" {
		return apperr.InvalidField("password", "password is required")
	}
	// Only well-formed attempts count; known and unknown emails alike. The
	// client IP's limit counts failures only (an office behind one address
	// signs in freely; a spray across emails from it is stopped).
	keep, err := a.chargeFailure(c, ruleLoginFailuresIP, a.clientIP(c))
	if err != nil {
		return err
	}
	u, err := a.checkLogin(c, req.Email, req.Password)
	keep(isCode(err, "invalid_credentials"))
	if err != nil {
		return err
	}
	return a.issueGlobal(c, u)
}

// checkLogin applies the per-email limit and checks the password.
func (a *API) checkLogin(c echo.Context, email, pw string) (identity.User, error) {
	if err := a.limit(c, ruleLoginEmail, emailKey(email)); err != nil {
		return identity.User{}, err
	}
	invalid := apperr.New(apperr.Unauthenticated, "invalid_credentials", "email or password is incorrect")
	if len(pw) > password.MaxLength {
		return identity.User{}, invalid
	}
	u, err := a.store.UserByEmail(c.Request().Context(), strings.TrimSpace(email))
	if errors.Is(err, store.ErrNotFound) {
		_, _ = password.Verify(a.dummyHash, pw) // same time as a real check
		return identity.User{}, invalid
	}
	if err != nil {
		return identity.User{}, err
	}
	ok, err := password.Verify(u.PasswordHash, pw)
	if err != nil {
		// No usable password (an address reclaimed by a sign-in code):
		// spend the time of a real check.
		_, _ = password.Verify(a.dummyHash, pw)
	}
	if err != nil || !ok {
		return identity.User{}, invalid
	}
	return u, nil
}

// isCode reports whether err is a client error with this code.
func isCode(err error, code string) bool {
	ae, ok := apperr.As(err)
	return ok && ae.Code == code
}

// me answers the caller's account (email_verified, platform_admin).
func (a *API) me(c echo.Context) error {
	return c.JSON(http.StatusOK, map[string]any{"user": toUserResp(caller(c).User)})
}

// requestEmailVerification mails the caller a token proving their address.
func (a *API) requestEmailVerification(c echo.Context) error {
	p := caller(c)
	if err := a.limit(c, ruleVerifyRequest, p.User.ID); err != nil {
		return err
	}
	if err := a.ident.RequestEmailVerification(c.Request().Context(), p.User); err != nil {
		return err
	}
	return c.JSON(http.StatusAccepted, statusResp{Status: "sent"})
}

// confirmEmail spends the caller's verification token: the address is
// proven, and a PLATFORM_ADMIN_EMAILS address becomes platform admin.
func (a *API) confirmEmail(c echo.Context) error {
	var req struct {
		Token string `json:"token"`
	}
	if err := bind(c, &req); err != nil {
		return err
	}
	if strings.TrimSpace(req.Token) == "" {
		return apperr.InvalidField("token", "token is required")
	}
	p := caller(c)
	if err := a.limit(c, ruleVerifyConfirm, p.User.ID); err != nil {
		return err
	}
	u, err := a.ident.ConfirmEmail(c.Request().Context(), p.User, strings.TrimSpace(req.Token))
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, map[string]any{"user": toUserResp(u)})
}

func (a *API) issueGlobal(c echo.Context, u identity.User) error {
	tok, claims, err := a.tokens.Issue(token.Claims{Subject: u.ID, Type: token.TypeGlobal, Version: u.TokenVersion}, a.cfg.GlobalTokenTTL)
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, map[string]any{
		"global_access_token": tok,
		"token_type":          "Bearer",
		"expires_in":          int(time.Until(claims.ExpiresAt).Seconds()),
		"user":                toUserResp(u),
	})
}

func (a *API) jwks(c echo.Context) error {
	b, err := a.tokens.JWKS()
	if err != nil {
		return err
	}
	c.Response().Header().Set("Cache-Control", "public, max-age=300")
	return c.Blob(http.StatusOK, "application/jwk-set+json", b)
}

type statusResp struct {
	Status string `json:"status"`
}

// requestOTP mails a sign-in code. The answer is 202 {"status":"sent"} for
// every well-formed email, known or not, and takes the same time: the lookup
// and the mail happen in a background job.
func (a *API) requestOTP(c echo.Context) error {
	return a.mailByEmail(c, ruleOTPRequestIP, ruleOTPRequest, a.ident.RequestOTP)
}

// mailByEmail is the shared shape of the mail-sending routes: validate the
// email, rate-limit the client IP and the email, queue the job, answer 202
// whether or not it exists.
func (a *API) mailByEmail(c echo.Context, ipRule, rule ratelimit.Rule, queue func(ctx context.Context, email string) error) error {
	var req struct {
		Email string `json:"email"`
	}
	if err := bind(c, &req); err != nil {
		return err
	}
	email, err := normalizeEmail(req.Email)
	if err != nil {
		return err
	}
	if err := a.limit(c, ipRule, a.clientIP(c)); err != nil {
		return err
	}
	if err := a.limit(c, rule, email); err != nil {
		return err
	}
	if err := queue(c.Request().Context(), email); err != nil {
		return err
	}
	return c.JSON(http.StatusAccepted, statusResp{Status: "sent"})
}

// verifyOTP trades a sign-in code for a global token (the login answer).
func (a *API) verifyOTP(c echo.Context) error {
	var req struct {
		Email string `json:"email"`
		Code  string `json:"code"`
	}
	if err := bind(c, &req); err != nil {
		return err
	}
	if strings.TrimSpace(req.Email) == "" {
		return apperr.InvalidField("email", "email is required")
	}
	if strings.TrimSpace(req.Code) == "" {
		return apperr.InvalidField("code", "code is required")
	}
	// Per client IP failed tries only, like login; per email every try.
	keep, err := a.chargeFailure(c, ruleOTPVerifyFailsIP, a.clientIP(c))
	if err != nil {
		return err
	}
	u, err := a.verifyOTPForEmail(c, req.Email, req.Code)
	keep(isCode(err, "invalid_code"))
	if err != nil {
		return err
	}
	return a.issueGlobal(c, u)
}

func (a *API) verifyOTPForEmail(c echo.Context, email, code string) (identity.User, error) {
	if err := a.limit(c, ruleOTPVerify, emailKey(email)); err != nil {
		return identity.User{}, err
	}
	return a.ident.VerifyOTP(c.Request().Context(), strings.TrimSpace(email), code)
}

// forgotPassword mails a reset link; like requestOTP it answers 202 the same
// way for every well-formed email.
func (a *API) forgotPassword(c echo.Context) error {
	return a.mailByEmail(c, ruleForgotIP, ruleForgotPassword, a.ident.ForgotPassword)
}

// resetPassword spends a reset token; every session of the user ends.
func (a *API) resetPassword(c echo.Context) error {
	var req struct {
		Token       string `json:"token"`
		NewPassword string `json:"new_password"`
	}
	if err := bind(c, &req); err != nil {
		return err
	}
	if strings.TrimSpace(req.Token) == "" {
		return apperr.InvalidField("token", "token is required")
	}
	if err := checkPassword("new_password", req.NewPassword); err != nil {
		return err
	}
	if err := a.limit(c, ruleResetIP, a.clientIP(c)); err != nil {
		return err
	}
	if err := a.ident.ResetPassword(c.Request().Context(), strings.TrimSpace(req.Token), req.NewPassword); err != nil {
		return err
	}
	return c.JSON(http.StatusOK, statusResp{Status: "ok"})
}

// changePassword needs the current password; afterwards every token of the
// user, the one used for this call included, is rejected (log in again).
func (a *API) changePassword(c echo.Context) error {
	var req struct {
		CurrentPassword string `json:"current_password"`
		NewPassword     string `json:"new_password"`
	}
	if err := bind(c, &req); err != nil {
		return err
	}
	if req.CurrentPassword == "" {
		return apperr.InvalidField("current_password", "current_password is required")
	}
	if err := checkPassword("new_password", req.NewPassword); err != nil {
		return err
	}
	p := caller(c)
	if err := a.limit(c, rulePasswordChange, p.User.ID); err != nil {
		return err
	}
	if err := a.ident.ChangePassword(c.Request().Context(), p.User, req.CurrentPassword, req.NewPassword); err != nil {
		return err
	}
	return c.JSON(http.StatusOK, statusResp{Status: "ok"})
}
