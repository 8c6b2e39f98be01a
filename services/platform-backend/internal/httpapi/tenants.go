package httpapi

import (
	"errors"
	"net/http"
	"time"

	"github.com/labstack/echo/v4"

	"trueportai/services/internal/apperr"
	"trueportai/services/internal/httpserver"
	"trueportai/services/internal/role"
	"trueportai/services/platform-backend/internal/billing"
	"trueportai/services/platform-backend/internal/configs"
	"trueportai/services/platform-backend/internal/store"
	"trueportai/services/platform-backend/internal/team"
	"trueportai/services/platform-backend/internal/token"
)

type tenantResp struct {
	ID        string    `json:"id"`
	Name      string    `json:"name"`
	Slug      string    `json:"slug"`
	Status    string    `json:"status"`
	Plan      string    `json:"plan"`
	Role      role.Role `json:"role,omitempty"`
	CreatedAt time.Time `json:"created_at"`
}

func toTenantResp(t team.Tenant, r role.Role) tenantResp {
	return tenantResp{ID: t.ID, Name: t.Name, Slug: t.Slug, Status: t.Status, Plan: t.PlanID, Role: r, CreatedAt: t.CreatedAt.UTC()}
}

func (a *API) createTenant(c echo.Context) error {
	var req struct {
		Name string `json:"name"`
		Slug string `json:"slug"`
	}
	if err := bind(c, &req); err != nil {
		return err
	}
	name, err := cleanName(req.Name, 1, 100)
	if err != nil {
		return err
	}
	switch team.SlugProblem(req.Slug) {
	case team.SlugInvalid:
		return apperr.InvalidField("slug", "slug must be 3-40 lowercase letters, digits or single hyphens, starting and ending with a letter or digit")
	case team.SlugReserved:
		return apperr.InvalidField("slug", "slug is reserved")
	}
	p := caller(c)
	plan, err := a.defaultPlan(c.Request().Context()) // global config default_plan
	if err != nil {
		return err
	}
	t, err := a.store.CreateTenant(c.Request().Context(), name, req.Slug, plan.ID, p.User.ID, configs.DefaultStorage(plan))
	if errors.Is(err, store.ErrSlugTaken) {
		return apperr.New(apperr.Conflict, "slug_taken", "slug is already in use").WithDetails(map[string]any{"field": "slug"})
	}
	if err != nil {
		return err
	}
	return c.JSON(http.StatusCreated, toTenantResp(t, role.Owner))
}

func (a *API) listTenants(c echo.Context) error {
	page, err := httpserver.ParsePage(c)
	if err != nil {
		return err
	}
	rows, total, err := a.store.TenantsForUser(c.Request().Context(), caller(c).User.ID, page.Limit, page.Offset)
	if err != nil {
		return err
	}
	items := make([]tenantResp, 0, len(rows))
	for _, r := range rows {
		items = append(items, toTenantResp(r.Tenant, r.Role))
	}
	return c.JSON(http.StatusOK, httpserver.NewList(items, total, page))
}

func (a *API) checkAvailability(c echo.Context) error {
	slug := c.QueryParam("slug")
	if slug == "" {
		return apperr.InvalidField("slug", "slug query parameter is required")
	}
	resp := map[string]any{"slug": slug, "available": false}
	if r := team.SlugProblem(slug); r != "" {
		resp["reason"] = r
		return c.JSON(http.StatusOK, resp)
	}
	taken, err := a.store.SlugTaken(c.Request().Context(), slug)
	if err != nil {
		return err
	}
	if taken {
		resp["reason"] = "taken"
	} else {
		resp["available"] = true
	}
	return c.JSON(http.StatusOK, resp)
}

func (a *API) selectTenant(c echo.Context) error {
	var req struct {
		TenantID   string `json:"tenant_id"`
		TenantSlug string `json:"tenant_slug"`
	}
	if err := bind(c, &req); err != nil {
		return err
	}
	p := caller(c)
	ctx := c.Request().Context()
	var m team.Membership
	var err error
	switch {
	case req.TenantID != "":
		m, err = a.store.Membership(ctx, req.TenantID, p.User.ID)
	case req.TenantSlug != "":
		m, err = a.store.MembershipBySlug(ctx, req.TenantSlug, p.User.ID)
	default:
		return apperr.InvalidField("tenant_id", "tenant_id or tenant_slug is required")
	}
	if errors.Is(err, store.ErrNotFound) {
		return apperr.New(apperr.NotFound, "tenant_not_found", "no such tenant")
	}
	if err != nil {
		return err
	}
	if m.Status != team.StatusActive {
		return apperr.New(apperr.Forbidden, "tenant_suspended", "this organisation is suspended")
	}
	return a.issueScoped(c, p, m, "production")
}

func (a *API) issueScoped(c echo.Context, p *principal, m team.Membership, env string) error {
	tok, claims, err := a.tokens.Issue(token.Claims{
		Subject: p.User.ID, Type: token.TypeScoped, TenantID: m.ID, Role: string(m.Role), Env: env, Version: p.User.TokenVersion,
	}, a.cfg.ScopedTokenTTL)
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, map[string]any{
		"scoped_access_token": tok,
		"token_type":          "Bearer",
		"expires_in":          int(time.Until(claims.ExpiresAt).Seconds()),
		"tenant":              toTenantResp(m.Tenant, ""),
		"role":                m.Role,
		"env":                 env,
	})
}

func (a *API) info(c echo.Context) error {
	p := caller(c)
	return c.JSON(http.StatusOK, map[string]any{
		"id": p.Tenant.ID, "name": p.Tenant.Name, "slug": p.Tenant.Slug, "status": p.Tenant.Status,
		"plan": p.Tenant.PlanID, "role": p.Role, "env": p.Env, "environments": environments,
	})
}

func (a *API) switchEnvironment(c echo.Context) error {
	var req struct {
		Env string `json:"env"`
	}
	if err := bind(c, &req); err != nil {
		return err
	}
	if !validEnv(req.Env) {
		return apperr.InvalidField("env", "env must be one of production, staging, development")
	}
	p := caller(c)
	return a.issueScoped(c, p, team.Membership{Tenant: p.Tenant, Role: p.Role}, req.Env)
}

type memberResp struct {
	UserID   string    `json:"user_id"`
	Email    string    `json:"email"`
	Name     string    `json:"name"`
	Role     role.Role `json:"role"`
	JoinedAt time.Time `json:"joined_at"`
}

func (a *API) listMembers(c echo.Context) error {
	page, err := httpserver.ParsePage(c)
	if err != nil {
		return err
	}
	rows, total, err := a.store.Members(c.Request().Context(), caller(c).Tenant.ID, page.Limit, page.Offset)
	if err != nil {
		return err
	}
	items := make([]memberResp, 0, len(rows))
	for _, m := range rows {
		items = append(items, memberResp{UserID: m.UserID, Email: m.Email, Name: m.Name, Role: m.Role, JoinedAt: m.JoinedAt.UTC()})
	}
	return c.JSON(http.StatusOK, httpserver.NewList(items, total, page))
}

type planResp struct {
	ID            string         `json:"id"`
	Name          string         `json:"name"`
	PriceUSDMonth float64        `json:"price_usd_month"`
	Limits        map[string]any `json:"limits"`
}

func toPlanResp(p billing.Plan) planResp {
	return planResp{ID: p.ID, Name: p.Name, PriceUSDMonth: p.PriceUSDMonth, Limits: limitsResp(p)}
}

// limitsResp is a plan's limits as the API shows them: null for no maximum.
func limitsResp(p billing.Plan) map[string]any {
	orNull := func(v int64) any {
		if v == 0 {
			return nil
		}
		return v
	}
	return map[string]any{
		"monthly_requests": orNull(p.MonthlyRequests), "max_api_keys": orNull(p.MaxAPIKeys), "max_members": orNull(p.MaxMembers),
		"max_rpm_per_key": orNull(p.MaxRPMPerKey), "retention_days": p.RetentionDays,
	}
}

func (a *API) listPlans(c echo.Context) error {
	plans, err := a.store.PlansFor(c.Request().Context(), caller(c).Tenant.ID)
	if err != nil {
		return err
	}
	items := make([]planResp, 0, len(plans))
	for _, p := range plans {
		items = append(items, toPlanResp(p))
	}
	return c.JSON(http.StatusOK, httpserver.NewList(items, len(items), httpserver.Page{Limit: len(items)}))
}
