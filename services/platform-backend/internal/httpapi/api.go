// Package httpapi serves the platform REST API (/platform/api/*) with echo.
package httpapi

import (
	"context"
	"log/slog"
	"net/http"
	"time"

	"github.com/labstack/echo/v4"

	"trueportai/services/internal/events"
	"trueportai/services/internal/httpserver"
	"trueportai/services/platform-backend/internal/config"
	"trueportai/services/platform-backend/internal/password"
	"trueportai/services/platform-backend/internal/secretbox"
	"trueportai/services/platform-backend/internal/store"
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
	box       *secretbox.Box
	pub       Publisher
	dummyHash string
	now       func() time.Time
	ident     identityDeps // identity.go: OTP, password reset/change, rate limits
	out       Outbound     // outbound.go: gateway gRPC, mail, payments (team, billing, admin)
}

// New builds the API.
func New(log *slog.Logger, cfg config.Config, st *store.Store, tokens *token.Issuer, box *secretbox.Box, pub Publisher, opts ...Option) *API {
	a := &API{log: log, cfg: cfg, store: st, tokens: tokens, box: box, pub: pub, dummyHash: password.Dummy(), now: time.Now}
	for _, o := range opts {
		o(a)
	}
	return a
}

// Option configures optional parts of the API.
type Option func(*API)

const bodyLimit = 1 << 20

// Routes registers every route of the platform API on e.
func (a *API) Routes(e *echo.Echo, health echo.HandlerFunc) {
	e.GET("/health", health)
	e.GET("/health/live", func(c echo.Context) error { return c.JSON(http.StatusOK, map[string]string{"status": "ok"}) })
	e.GET("/health/ready", health)

	g := e.Group("/platform/api/global")
	g.POST("/auth/register", a.register, a.signupOpen)
	g.POST("/auth/login", a.login)
	g.POST("/auth/otp/request", a.requestOTP)
	g.POST("/auth/otp/verify", a.verifyOTP)
	g.POST("/auth/forgot-password", a.forgotPassword)
	g.POST("/auth/reset-password", a.resetPassword)
	g.PUT("/auth/password", a.changePassword, a.requireGlobal)
	g.POST("/auth/select-tenant", a.selectTenant, a.requireGlobal)
	g.GET("/auth/.well-known/jwks.json", a.jwks)
	g.POST("/tenants", a.createTenant, a.requireGlobal)
	g.GET("/tenants", a.listTenants, a.requireGlobal)
	g.GET("/tenants/check-availability", a.checkAvailability)
	g.POST("/invites/accept", a.acceptInvite, a.requireGlobal)

	s := e.Group("/platform/api/service", a.limitManagement)
	s.GET("/info", a.info, a.requireRole("viewer"))
	s.POST("/auth/switch-environment", a.switchEnvironment, a.requireRole("viewer"))
	s.GET("/members", a.listMembers, a.requireRole("viewer"))
	s.GET("/catalog/plans", a.listPlans, a.requireRole("viewer"))
	s.GET("/configs", a.listConfigs, a.requireRole("viewer"))
	s.PUT("/configs/:key", a.putConfig, a.requireRole("admin"))
	s.GET("/storage", a.getStorage, a.requireRole("admin"))
	s.PUT("/storage", a.putStorage, a.requireRole("admin"))
	// Team (team.go). A member below admin may only remove themself (leave).
	s.DELETE("/members/:user_id", a.removeMember, a.requireRole("viewer"))
	s.PUT("/members/:user_id/role", a.changeMemberRole, a.requireRole("admin"))
	s.POST("/invites", a.createInvite, a.requireRole("admin"))
	s.GET("/invites", a.listInvites, a.requireRole("admin"))
	s.DELETE("/invites/:id", a.revokeInvite, a.requireRole("admin"))
	// Billing (billing.go).
	s.POST("/subscriptions", a.createSubscription, a.requireRole("admin"))
	s.GET("/subscriptions", a.listSubscriptions, a.requireRole("admin"))

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

	e.GET("/platform/api/openapi.json", a.openAPI) // openapi.go
}

func bind(c echo.Context, v any) error { return httpserver.BindJSON(c, v, bodyLimit) }
