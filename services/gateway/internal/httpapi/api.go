// Package httpapi serves the gateway management API (/trueportai-services/api/v1/*):
// API keys and analytics, authenticated by platform-scoped JWTs.
package httpapi

import (
	"context"
	"errors"
	"log/slog"
	"strings"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/labstack/echo/v4"

	"trueportai/services/gateway/internal/keys"
	"trueportai/services/gateway/internal/platform"
	"trueportai/services/internal/apperr"
	"trueportai/services/internal/events"
	"trueportai/services/internal/httpserver"
	"trueportai/services/internal/logging"
)

// KeyEvents announces key changes to other replicas.
type KeyEvents interface {
	KeyChanged(ctx context.Context, ev events.KeysChangedEvent)
}

// API holds the management handlers' dependencies.
type API struct {
	log     *slog.Logger
	intro   *platform.Introspector
	tenants *platform.Tenants
	keys    *keys.Store
	cache   *keys.Cache
	ev      KeyEvents
	pool    *pgxpool.Pool
}

// New builds the API.
func New(log *slog.Logger, intro *platform.Introspector, tenants *platform.Tenants, ks *keys.Store, cache *keys.Cache, ev KeyEvents, pool *pgxpool.Pool) *API {
	return &API{log: log, intro: intro, tenants: tenants, keys: ks, cache: cache, ev: ev, pool: pool}
}

const bodyLimit = 1 << 20

// Routes registers the management routes.
func (a *API) Routes(e *echo.Echo, health echo.HandlerFunc) {
	e.GET("/trueportai-services/health", health)
	e.GET("/trueportai-services/health/live", func(c echo.Context) error { return c.JSON(200, map[string]string{"status": "ok"}) })
	e.GET("/trueportai-services/health/ready", health)
	g := e.Group("/trueportai-services/api/v1")
	g.POST("/keys", a.createKey, a.requireRole("admin"))
	g.GET("/keys", a.listKeys, a.requireRole("member"))
	g.PATCH("/keys/:id", a.updateKey, a.requireRole("admin"))
	g.DELETE("/keys/:id", a.deleteKey, a.requireRole("admin"))
	g.GET("/analytics/logs", a.listLogs, a.requireRole("member"))
}

var roleRank = map[string]int{"viewer": 1, "member": 2, "admin": 3, "owner": 4}

const principalKey = "principal"

func caller(c echo.Context) platform.Principal {
	p, _ := c.Get(principalKey).(platform.Principal)
	return p
}

// requireRole validates the scoped JWT through the platform (cached) and
// checks the caller's current role.
func (a *API) requireRole(min string) echo.MiddlewareFunc {
	return func(next echo.HandlerFunc) echo.HandlerFunc {
		return func(c echo.Context) error {
			tok, ok := strings.CutPrefix(c.Request().Header.Get("Authorization"), "Bearer ")
			if !ok || strings.TrimSpace(tok) == "" {
				return apperr.New(apperr.Unauthenticated, "missing_token", "Authorization: Bearer <scoped token> is required")
			}
			p, err := a.intro.Introspect(c.Request().Context(), strings.TrimSpace(tok))
			switch {
			case errors.Is(err, platform.ErrUnavailable):
				return apperr.New(apperr.Unavailable, "platform_unavailable", "cannot validate the token: the platform service is unreachable")
			case err != nil:
				return apperr.New(apperr.Unauthenticated, "invalid_token", "token is invalid, expired or revoked")
			case p.TokenType != "scoped":
				return apperr.New(apperr.Unauthenticated, "scoped_token_required", "this route takes a scoped token (from select-tenant)")
			}
			if roleRank[p.Role] < roleRank[min] {
				return apperr.New(apperr.Forbidden, "insufficient_role", "this action needs the "+min+" role or higher").
					WithDetails(map[string]any{"required_role": min, "role": p.Role})
			}
			c.Set(principalKey, p)
			c.SetRequest(c.Request().WithContext(logging.WithAttrs(c.Request().Context(),
				slog.String("tenant_id", p.TenantID), slog.String("user_id", p.UserID))))
			return next(c)
		}
	}
}

func bind(c echo.Context, v any) error { return httpserver.BindJSON(c, v, bodyLimit) }
