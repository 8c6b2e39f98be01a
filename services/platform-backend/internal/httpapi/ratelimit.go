package httpapi

import (
	"context"
	"fmt"
	"math"
	"strings"
	"time"

	"github.com/labstack/echo/v4"

	"trueportai/services/internal/apperr"
	"trueportai/services/internal/ratelimit"
	"trueportai/services/platform-backend/internal/token"
)

// RateLimiter admits or refuses one request for key under rule, and gives an
// admitted one back (Refund: limits on failed attempts only). It is
// ratelimit.Limiter in one replica; a shared store behind the same methods
// for several.
type RateLimiter interface {
	AllowRule(ctx context.Context, rule ratelimit.Rule, key string, now time.Time) (ratelimit.Result, error)
	Refund(ctx context.Context, rule ratelimit.Rule, key string, now time.Time) error
}

// The platform's limits: the table under "Rate limits" in docs/decisions.md
// lists each one with its key and why. Per-email limits count every
// well-formed attempt; the per-IP limits are wide enough for an office
// behind one address, and those of the two guessing routes (login, code
// sign-in) count failed attempts only.
var (
	ruleLoginEmail       = ratelimit.Rule{Name: "login_per_email", Limit: 10, Window: 15 * time.Minute}
	ruleLoginFailuresIP  = ratelimit.Rule{Name: "login_failures_per_ip", Limit: 30, Window: 15 * time.Minute}
	ruleOTPRequest       = ratelimit.Rule{Name: "otp_request_per_email", Limit: 5, Window: 15 * time.Minute}
	ruleOTPRequestIP     = ratelimit.Rule{Name: "otp_request_per_ip", Limit: 30, Window: 15 * time.Minute}
	ruleOTPVerify        = ratelimit.Rule{Name: "otp_verify_per_email", Limit: 10, Window: 15 * time.Minute}
	ruleOTPVerifyFailsIP = ratelimit.Rule{Name: "otp_verify_failures_per_ip", Limit: 30, Window: 15 * time.Minute}
	ruleForgotPassword   = ratelimit.Rule{Name: "forgot_password_per_email", Limit: 5, Window: 15 * time.Minute}
	ruleForgotIP         = ratelimit.Rule{Name: "forgot_password_per_ip", Limit: 30, Window: 15 * time.Minute}
	ruleResetIP          = ratelimit.Rule{Name: "reset_password_per_ip", Limit: 20, Window: 15 * time.Minute}
	ruleRegisterEmail    = ratelimit.Rule{Name: "register_per_email", Limit: 10, Window: 15 * time.Minute}
	ruleRegisterIP       = ratelimit.Rule{Name: "register_per_ip", Limit: 30, Window: time.Hour}
	rulePasswordChange   = ratelimit.Rule{Name: "password_change_per_user", Limit: 10, Window: 15 * time.Minute}
	ruleVerifyRequest    = ratelimit.Rule{Name: "verify_email_request_per_user", Limit: 5, Window: 15 * time.Minute}
	ruleVerifyConfirm    = ratelimit.Rule{Name: "verify_email_confirm_per_user", Limit: 10, Window: 15 * time.Minute}
	ruleManagement       = ratelimit.Rule{Name: "management_per_user_tenant", Limit: 300, Window: time.Minute}
)

// limit counts one request for key under rule; over the limit it is a 429
// rate_limited naming the limit, with Retry-After. A failing limiter store
// admits the request (logged): availability over strictness.
func (a *API) limit(c echo.Context, rule ratelimit.Rule, key string) error {
	ctx := c.Request().Context()
	d, err := a.limiter.AllowRule(ctx, rule, key, a.limitNow())
	if err != nil {
		a.log.WarnContext(ctx, "rate limiter failed; request admitted", "limit", rule.Name, "err", err)
		return nil
	}
	if d.Allowed {
		return nil
	}
	secs := max(int(math.Ceil(d.RetryAfter.Seconds())), 1)
	e := apperr.New(apperr.RateLimited, "rate_limited",
		fmt.Sprintf("rate limit %s exceeded (%d requests per %s); retry in %d s", rule.Name, rule.Limit, rule.Window, secs))
	e.RetryAfter = secs
	return e.WithDetails(map[string]any{
		"limit": rule.Name, "max": rule.Limit, "window_seconds": int(rule.Window.Seconds()), "retry_after_seconds": secs,
	})
}

// chargeFailure counts one attempt under a failures-only rule before the
// attempt runs (429 when the limit is spent) and returns keep: called with
// whether the attempt failed, it gives the charge back unless it did.
// Charging first keeps the limit exact under concurrency: attempts in flight
// hold their charge, so no more than the limit can fail at once (a check
// before and a charge after would let every concurrent attempt through a
// limit with one slot left). An attempt refused by a later limit, or ending
// in a server error, did not fail and is given back too.
func (a *API) chargeFailure(c echo.Context, rule ratelimit.Rule, key string) (keep func(failed bool), err error) {
	if err := a.limit(c, rule, key); err != nil {
		return nil, err
	}
	return func(failed bool) {
		if failed {
			return
		}
		ctx := c.Request().Context()
		if err := a.limiter.Refund(ctx, rule, key, a.limitNow()); err != nil {
			a.log.WarnContext(ctx, "rate limiter refund failed", "limit", rule.Name, "err", err)
		}
	}, nil
}

// limitManagement applies the management limit (per user and tenant) to
// every /platform/api/service route. It runs before requireRole, so it reads
// the subject and tenant from the verified token itself; requests without a
// usable token are left to requireRole, which refuses them.
func (a *API) limitManagement(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		if key, ok := a.managementKey(c); ok {
			if err := a.limit(c, ruleManagement, key); err != nil {
				return err
			}
		}
		return next(c)
	}
}

func (a *API) managementKey(c echo.Context) (string, bool) {
	raw, err := bearer(c)
	if err != nil {
		return "", false
	}
	claims, err := a.tokens.Parse(raw)
	if err != nil {
		return "", false
	}
	switch {
	case claims.Type == token.TypeScoped:
		return claims.Subject + "|" + claims.TenantID, true
	case a.cfg.Dev() && c.Request().Header.Get("X-Tenant-Slug") != "":
		return claims.Subject + "|slug:" + c.Request().Header.Get("X-Tenant-Slug"), true
	}
	return "", false
}

// emailKey is the rate-limit key of an email as typed (trimmed, lower case),
// so every spelling of one address shares its limit.
func emailKey(email string) string { return strings.ToLower(strings.TrimSpace(email)) }
