// Package httpapi serves the platform REST API (/platform/api/*) with echo.
package httpapi

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/labstack/echo/v4"

	"trueportai/services/internal/events"
	"trueportai/services/internal/httpserver"
	"trueportai/services/internal/role"
	"trueportai/services/platform-backend/internal/billing"
	"trueportai/services/platform-backend/internal/config"
	"trueportai/services/platform-backend/internal/configs"
	"trueportai/services/platform-backend/internal/identity"
	"trueportai/services/platform-backend/internal/password"
	"trueportai/services/platform-backend/internal/store"
	"trueportai/services/platform-backend/internal/team"
	"trueportai/services/platform-backend/internal/token"
)

// Publisher sends change events to the gateway (and other replicas).
type Publisher interface {
	TenantChanged(ctx context.Context, ev events.TenantChangedEvent)
	TokensRevoked(ctx context.Context, ev events.TokensRevokedEvent)
	GlobalConfigChanged(ctx context.Context, ev events.GlobalConfigChangedEvent)
}

// API holds the handlers' dependencies.
type API struct {
	log       *slog.Logger
	cfg       config.Config
	store     *store.Store
	tokens    *token.Issuer
	pub       Publisher
	ident     *identity.Service // identity.go: OTP, password reset/change
	limiter   RateLimiter       // ratelimit.go: login, OTP, reset, management
	team      *team.Service     // team.go: members, roles, invites
	billing   *billing.Service  // billing.go: plan changes
	configs   *configs.Service  // configs.go: tenant configs, storage settings
	gateway   Gateway           // admin.go: usage from the gateway's gRPC
	mailer    Mailer            // team.go: invite mails
	dummyHash string
	now       func() time.Time
	limitNow  func() time.Time // ratelimit.go: the clock of the rate limits
}

// Deps are everything the handlers call. All are required: New refuses a
// missing one rather than letting a route panic at its first request.
type Deps struct {
	Store     *store.Store
	Tokens    *token.Issuer
	Publisher Publisher
	Identity  *identity.Service
	Limiter   RateLimiter
	Team      *team.Service
	Billing   *billing.Service
	Configs   *configs.Service
	Gateway   Gateway
	Mailer    Mailer
	// LimitClock is the clock of the rate limits (nil: time.Now); tests
	// that count requests inside a window hold it still.
	LimitClock func() time.Time
}

// New builds the API; it names every missing dependency.
func New(log *slog.Logger, cfg config.Config, d Deps) (*API, error) {
	var errs []error
	for _, dep := range []struct {
		name    string
		missing bool
	}{
		{"Store", d.Store == nil}, {"Tokens", d.Tokens == nil}, {"Publisher", d.Publisher == nil},
		{"Identity", d.Identity == nil}, {"Limiter", d.Limiter == nil}, {"Team", d.Team == nil},
		{"Billing", d.Billing == nil}, {"Configs", d.Configs == nil}, {"Gateway", d.Gateway == nil},
		{"Mailer", d.Mailer == nil}, {"logger", log == nil},
	} {
		if dep.missing {
			errs = append(errs, fmt.Errorf("httpapi: %s is required", dep.name))
		}
	}
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	limitNow := d.LimitClock
	if limitNow == nil {
		limitNow = time.Now
	}
	return &API{log: log, cfg: cfg, store: d.Store, tokens: d.Tokens, pub: d.Publisher, ident: d.Identity, limiter: d.Limiter,
		team: d.Team, billing: d.Billing, configs: d.Configs, gateway: d.Gateway, mailer: d.Mailer,
		dummyHash: password.Dummy(), now: time.Now, limitNow: limitNow}, nil
}

const bodyLimit = 1 << 20

// Routes registers every route of the platform API on e. The health
// routes: /health and /health/ready check Postgres and NATS, /health/live
// only that the process serves, /health/ready/local the process's own state
// (draining), never a dependency: the readiness probe behind a Service.
func (a *API) Routes(e *echo.Echo, health httpserver.Probes) {
	e.GET("/health", health.Health)
	e.GET("/health/live", httpserver.Live)
	e.GET("/health/ready", health.Health)
	e.GET("/health/ready/local", health.Local)

	g := e.Group("/platform/api/global")
	g.POST("/auth/register", a.register, a.signupOpen)
	g.POST("/auth/login", a.login)
	g.POST("/auth/otp/request", a.requestOTP)
	g.POST("/auth/otp/verify", a.verifyOTP)
	g.POST("/auth/forgot-password", a.forgotPassword)
	g.POST("/auth/reset-password", a.resetPassword)
	g.PUT("/auth/password", a.changePassword, a.requireGlobal)
	g.GET("/auth/me", a.me, a.requireGlobal)
	g.POST("/auth/verify-email/request", a.requestEmailVerification, a.requireGlobal)
	g.POST("/auth/verify-email/confirm", a.confirmEmail, a.requireGlobal)
	g.POST("/auth/select-tenant", a.selectTenant, a.requireGlobal)
	g.GET("/auth/.well-known/jwks.json", a.jwks)
	g.POST("/tenants", a.createTenant, a.requireGlobal)
	g.GET("/tenants", a.listTenants, a.requireGlobal)
	g.GET("/tenants/check-availability", a.checkAvailability)
	g.POST("/invites/accept", a.acceptInvite, a.requireGlobal)

	s := e.Group("/platform/api/service", a.limitManagement)
	s.GET("/info", a.info, a.requireRole(role.Viewer))
	s.POST("/auth/switch-environment", a.switchEnvironment, a.requireRole(role.Viewer))
	s.GET("/members", a.listMembers, a.requireRole(role.Viewer))
	s.GET("/catalog/plans", a.listPlans, a.requireRole(role.Viewer))
	s.GET("/configs", a.listConfigs, a.requireRole(role.Viewer))
	s.PUT("/configs/:key", a.putConfig, a.requireRole(role.Admin))
	s.GET("/storage", a.getStorage, a.requireRole(role.Admin))
	s.PUT("/storage", a.putStorage, a.requireRole(role.Admin))
	// Team (team.go). A member below admin may only remove themself (leave).
	s.DELETE("/members/:user_id", a.removeMember, a.requireRole(role.Viewer))
	s.PUT("/members/:user_id/role", a.changeMemberRole, a.requireRole(role.Admin))
	s.POST("/invites", a.createInvite, a.requireRole(role.Admin))
	s.GET("/invites", a.listInvites, a.requireRole(role.Admin))
	s.DELETE("/invites/:id", a.revokeInvite, a.requireRole(role.Admin))
	// Billing (billing.go).
	s.POST("/subscriptions", a.createSubscription, a.requireRole(role.Admin))
	s.GET("/subscriptions", a.listSubscriptions, a.requireRole(role.Admin))

	// Platform admin (admin.go, globalconfig.go): users.platform_admin, any token type.
	ad := e.Group("/platform/api/admin")
	ad.GET("/tenants", a.adminListTenants, a.requirePlatformAdmin)
	ad.GET("/tenants/:id", a.adminGetTenant, a.requirePlatformAdmin)
	ad.PUT("/tenants/:id/status", a.adminSetTenantStatus, a.requirePlatformAdmin)
	ad.GET("/users", a.adminListUsers, a.requirePlatformAdmin)
	ad.GET("/stats", a.adminStats, a.requirePlatformAdmin)
	ad.GET("/configs", a.adminListConfigs, a.requirePlatformAdmin)
	ad.PUT("/configs/:key", a.adminPutConfig, a.requirePlatformAdmin)
	ad.GET("/audit", a.adminAudit, a.requirePlatformAdmin)
	ad.GET("/tenants/:id/limits", a.adminGetLimits, a.requirePlatformAdmin)
	ad.PUT("/tenants/:id/limits", a.adminPutLimits, a.requirePlatformAdmin)
	ad.GET("/plans", a.adminListPlans, a.requirePlatformAdmin)
	ad.POST("/plans", a.adminCreatePlan, a.requirePlatformAdmin)

	e.GET("/platform/api/openapi.json", a.openAPI) // openapi.go
}

func bind(c echo.Context, v any) error { return httpserver.BindJSON(c, v, bodyLimit) }
