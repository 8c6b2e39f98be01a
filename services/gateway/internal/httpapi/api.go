// Package httpapi serves the gateway management API (/trueportai-services/api/v1/*):
// API keys, policies and analytics (read through package analytics), authenticated by platform-scoped JWTs.
package httpapi

import (
	"context"
	"errors"
	"log/slog"
	"strconv"
	"strings"
	"time"

	"github.com/labstack/echo/v4"
	"go.opentelemetry.io/otel/trace"

	"trueportai/services/gateway/internal/analytics"
	"trueportai/services/gateway/internal/keys"
	"trueportai/services/gateway/internal/platform"
	"trueportai/services/gateway/internal/policystore"
	"trueportai/services/internal/apperr"
	"trueportai/services/internal/events"
	"trueportai/services/internal/httpserver"
	"trueportai/services/internal/logging"
	"trueportai/services/internal/ratelimit"
	"trueportai/services/internal/role"
	"trueportai/services/internal/telemetry"
)

// ChangeEvents announces key and policy changes to other replicas.
type ChangeEvents interface {
	KeyChanged(ctx context.Context, ev events.KeysChangedEvent)
	PoliciesChanged(ctx context.Context, ev events.PoliciesChangedEvent)
}

// API holds the management handlers' dependencies.
type API struct {
	log     *slog.Logger
	intro   *platform.Introspector
	tenants *platform.Tenants
	keys    *keys.Store
	cache   *keys.Cache
	ev      ChangeEvents
	// analytics answers the /analytics routes.
	analytics *analytics.Store
	limiter   RateLimiter
	// Policies.
	policies *policystore.Store
	snapshot *policystore.Snapshot
	// providers are the names a policy scope may list.
	providers []string
}

// RateLimiter admits one request of a key under a per-minute limit
// (ratelimit.Limiter in memory, ratelimit.Shared across replicas).
type RateLimiter interface {
	Allow(key string, rpm int, now time.Time) ratelimit.Result
}

// SetLimiter replaces the in-memory limiter of the management and
// analytics limits (shared limits: REDIS_URL); call before serving.
func (a *API) SetLimiter(l RateLimiter) { a.limiter = l }

// New builds the API.
func New(log *slog.Logger, intro *platform.Introspector, tenants *platform.Tenants, ks *keys.Store, cache *keys.Cache, ev ChangeEvents, store *analytics.Store,
	policies *policystore.Store, snapshot *policystore.Snapshot, providers []string) *API {
	return &API{log: log, intro: intro, tenants: tenants, keys: ks, cache: cache, ev: ev, analytics: store, limiter: ratelimit.New(), policies: policies, snapshot: snapshot, providers: providers}
}

const bodyLimit = 1 << 20

// Routes registers the management routes.
func (a *API) Routes(e *echo.Echo, health httpserver.Probes) {
	HealthRoutes(e, health)
	e.GET("/trueportai-services/api/v1/openapi.json", openAPI) // openapi.go (public)
	g := e.Group("/trueportai-services/api/v1")
	g.POST("/keys", a.createKey, a.requireRole("admin"), a.limit("management", 300))
	g.GET("/keys", a.listKeys, a.requireRole("member"), a.limit("management", 300))
	g.PATCH("/keys/:id", a.updateKey, a.requireRole("admin"), a.limit("management", 300))
	g.DELETE("/keys/:id", a.deleteKey, a.requireRole("admin"), a.limit("management", 300))
	g.GET("/policies", a.listPolicies, a.requireRole("member"), a.limit("management", 300))
	g.GET("/policies/:id", a.getPolicy, a.requireRole("member"), a.limit("management", 300))
	g.POST("/policies", a.createPolicy, a.requireRole("admin"), a.limit("management", 300))
	g.PUT("/policies/:id", a.updatePolicy, a.requireRole("admin"), a.limit("management", 300))
	g.DELETE("/policies/:id", a.deletePolicy, a.requireRole("admin"), a.limit("management", 300))
	g.GET("/analytics/logs", a.listLogs, a.requireRole("member"), a.limit("analytics", 60))
	g.GET("/analytics/stats", a.stats, a.requireRole("member"), a.limit("analytics", 60))
	g.GET("/analytics/violations", a.listViolations, a.requireRole("member"), a.limit("analytics", 60))
	g.GET("/analytics/violations/:id", a.getViolation, a.requireRole("member"), a.limit("analytics", 60))
}

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
			if !role.AtLeast(p.Role, min) {
				return apperr.New(apperr.Forbidden, "insufficient_role", "this action needs the "+min+" role or higher").
					WithDetails(map[string]any{"required_role": min, "role": p.Role})
			}
			c.Set(principalKey, p)
			trace.SpanFromContext(c.Request().Context()).SetAttributes(telemetry.AttrTenantID.String(p.TenantID)) // tracing on
			c.SetRequest(c.Request().WithContext(logging.WithAttrs(c.Request().Context(),
				slog.String("tenant_id", p.TenantID), slog.String("user_id", p.UserID))))
			return next(c)
		}
	}
}

// limit applies a per user+tenant requests-per-minute limit to a route group
// (overview: management 300/min, analytics 60/min); 429 with Retry-After.
func (a *API) limit(group string, rpm int) echo.MiddlewareFunc {
	return func(next echo.HandlerFunc) echo.HandlerFunc {
		return func(c echo.Context) error {
			p := caller(c)
			r := a.limiter.Allow(group+"/"+p.TenantID+"/"+p.UserID, rpm, time.Now())
			h := c.Response().Header()
			h.Set("X-Ratelimit-Limit", strconv.Itoa(r.Limit))
			h.Set("X-Ratelimit-Remaining", strconv.Itoa(r.Remaining))
			if !r.Allowed {
				e := apperr.New(apperr.RateLimited, "rate_limited", group+" requests are limited to "+strconv.Itoa(rpm)+" per minute per user and organisation")
				e.RetryAfter = int((r.RetryAfter + time.Second - 1) / time.Second)
				return e
			}
			return next(c)
		}
	}
}

func bind(c echo.Context, v any) error { return httpserver.BindJSON(c, v, bodyLimit) }

// HealthRoutes registers the health, liveness and readiness routes (every
// gateway role serves them): health and health/ready check Postgres and
// NATS, health/live only that the process serves, health/ready/local the
// process's own state (draining), never a dependency: the readiness probe
// of the proxy pods behind the Service.
func HealthRoutes(e *echo.Echo, health httpserver.Probes) {
	e.GET("/trueportai-services/health", health.Health)
	e.GET("/trueportai-services/health/live", httpserver.Live)
	e.GET("/trueportai-services/health/ready", health.Health)
	e.GET("/trueportai-services/health/ready/local", health.Local)
}
