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
}

// New builds the API.
func New(log *slog.Logger, cfg config.Config, st *store.Store, tokens *token.Issuer, box *secretbox.Box, pub Publisher) *API {
	return &API{log: log, cfg: cfg, store: st, tokens: tokens, box: box, pub: pub, dummyHash: password.Dummy(), now: time.Now}
}

const bodyLimit = 1 << 20

// Routes registers every route of the platform API on e.
func (a *API) Routes(e *echo.Echo, health echo.HandlerFunc) {
	e.GET("/health", health)
	e.GET("/health/live", func(c echo.Context) error { return c.JSON(http.StatusOK, map[string]string{"status": "ok"}) })
	e.GET("/health/ready", health)

	g := e.Group("/platform/api/global")
	g.POST("/auth/register", a.register)
	g.POST("/auth/login", a.login)
	g.POST("/auth/select-tenant", a.selectTenant, a.requireGlobal)
	g.GET("/auth/.well-known/jwks.json", a.jwks)
	g.POST("/tenants", a.createTenant, a.requireGlobal)
	g.GET("/tenants", a.listTenants, a.requireGlobal)
	g.GET("/tenants/check-availability", a.checkAvailability)

	s := e.Group("/platform/api/service")
	s.GET("/info", a.info, a.requireRole("viewer"))
	s.POST("/auth/switch-environment", a.switchEnvironment, a.requireRole("viewer"))
	s.GET("/members", a.listMembers, a.requireRole("viewer"))
	s.GET("/catalog/plans", a.listPlans, a.requireRole("viewer"))
	s.GET("/configs", a.listConfigs, a.requireRole("viewer"))
	s.PUT("/configs/:key", a.putConfig, a.requireRole("admin"))
	s.GET("/storage", a.getStorage, a.requireRole("admin"))
}

func bind(c echo.Context, v any) error { return httpserver.BindJSON(c, v, bodyLimit) }
