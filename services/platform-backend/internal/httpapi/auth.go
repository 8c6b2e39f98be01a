package httpapi

import (
	"errors"
	"log/slog"
	"strings"

	"github.com/labstack/echo/v4"

	"trueportai/services/internal/apperr"
	"trueportai/services/internal/logging"
	"trueportai/services/internal/role"
	"trueportai/services/platform-backend/internal/identity"
	"trueportai/services/platform-backend/internal/store"
	"trueportai/services/platform-backend/internal/team"
	"trueportai/services/platform-backend/internal/token"
)

// Environments every tenant has.
var environments = []string{"production", "staging", "development"}

func validEnv(env string) bool {
	for _, e := range environments {
		if e == env {
			return true
		}
	}
	return false
}

// principal is the authenticated caller of a request.
type principal struct {
	User   identity.User
	Claims token.Claims
	// Scoped routes only:
	Tenant team.Tenant
	Role   role.Role
	Env    string
}

const principalKey = "principal"

func caller(c echo.Context) *principal {
	p, _ := c.Get(principalKey).(*principal)
	return p
}

func bearer(c echo.Context) (string, error) {
	// The auth scheme is case-insensitive (RFC 7235 §2.1).
	scheme, tok, ok := strings.Cut(c.Request().Header.Get("Authorization"), " ")
	if !ok || !strings.EqualFold(scheme, "Bearer") || strings.TrimSpace(tok) == "" {
		return "", apperr.New(apperr.Unauthenticated, "missing_token", "Authorization: Bearer <token> is required")
	}
	return strings.TrimSpace(tok), nil
}

func errBadToken() error {
	return apperr.New(apperr.Unauthenticated, "invalid_token", "token is invalid, expired or revoked")
}

// authenticate verifies the bearer token and that it has not been revoked
// (token version bump on password change/reset).
func (a *API) authenticate(c echo.Context) (*principal, error) {
	raw, err := bearer(c)
	if err != nil {
		return nil, err
	}
	claims, err := a.tokens.Parse(raw)
	if err != nil {
		return nil, errBadToken()
	}
	u, err := a.store.UserByID(c.Request().Context(), claims.Subject)
	if errors.Is(err, store.ErrNotFound) {
		return nil, errBadToken()
	}
	if err != nil {
		return nil, err
	}
	if u.TokenVersion != claims.Version {
		return nil, errBadToken()
	}
	return &principal{User: u, Claims: claims}, nil
}

// requireGlobal admits global tokens only.
func (a *API) requireGlobal(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		p, err := a.authenticate(c)
		if err != nil {
			return err
		}
		if p.Claims.Type != token.TypeGlobal {
			return apperr.New(apperr.Unauthenticated, "global_token_required", "this route takes a global token (from login), not a scoped one")
		}
		c.Set(principalKey, p)
		return next(c)
	}
}

// requireRole admits scoped tokens (or, in dev, a global token plus
// X-Tenant-Slug) whose *current* membership role is at least min.
func (a *API) requireRole(min role.Role) echo.MiddlewareFunc {
	return func(next echo.HandlerFunc) echo.HandlerFunc {
		return func(c echo.Context) error {
			p, err := a.authenticate(c)
			if err != nil {
				return err
			}
			ctx := c.Request().Context()
			var m team.Membership
			switch {
			case p.Claims.Type == token.TypeScoped:
				m, err = a.store.Membership(ctx, p.Claims.TenantID, p.User.ID)
				p.Env = p.Claims.Env
			case a.cfg.Dev() && c.Request().Header.Get("X-Tenant-Slug") != "":
				m, err = a.store.MembershipBySlug(ctx, c.Request().Header.Get("X-Tenant-Slug"), p.User.ID)
				if errors.Is(err, store.ErrNotFound) {
					return apperr.New(apperr.NotFound, "tenant_not_found", "no such tenant")
				}
				p.Env = "production"
			default:
				return apperr.New(apperr.Unauthenticated, "scoped_token_required", "this route takes a scoped token (from select-tenant)")
			}
			if errors.Is(err, store.ErrNotFound) {
				// Membership removed since the token was issued.
				return errBadToken()
			}
			if err != nil {
				return err
			}
			if m.Status != team.StatusActive {
				return apperr.New(apperr.Forbidden, "tenant_suspended", "this organisation is suspended")
			}
			p.Tenant, p.Role = m.Tenant, m.Role
			if !p.Role.AtLeast(min) {
				return apperr.New(apperr.Forbidden, "insufficient_role", "this action needs the "+string(min)+" role or higher").
					WithDetails(map[string]any{"required_role": min, "role": p.Role})
			}
			c.Set(principalKey, p)
			c.SetRequest(c.Request().WithContext(logging.WithAttrs(ctx, slog.String("tenant_id", m.ID), slog.String("user_id", p.User.ID))))
			return next(c)
		}
	}
}
