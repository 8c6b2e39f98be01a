package httpapi

import (
	"bytes"
	"encoding/json"
	"errors"
	"math"
	"net/http"
	"regexp"
	"strings"
	"unicode"
	"unicode/utf8"

	"github.com/labstack/echo/v4"

	"trueportai/services/internal/apperr"
	"trueportai/services/internal/events"
	"trueportai/services/internal/httpserver"
	"trueportai/services/platform-backend/internal/billing"
	"trueportai/services/platform-backend/internal/store"
)

// Enterprise deals (platform admins): per-tenant limit overrides and custom
// plans. In limits, null is "no maximum" (not for retention_days); in
// overrides, a limit left out keeps the plan's value.

var planIDRE = regexp.MustCompile(`^[a-z0-9](-?[a-z0-9]){1,39}$`)

// limitFields are the limits in the order they are checked; unlimited tells
// whether null ("no maximum") is allowed.
var limitFields = []struct {
	name      string
	unlimited bool
	max       int64
}{
	{"monthly_requests", true, 1 << 50},
	{"max_api_keys", true, 1_000_000},
	{"max_members", true, 1_000_000},
	{"max_rpm_per_key", true, 100_000_000},
	{"retention_days", false, 3650},
}

// parseLimits reads the limits object raw (field → JSON value). A field
// left out is nil in the result, null is 0 (no maximum); required makes
// every field mandatory. prefix names fields in errors (e.g. "limits.").
func parseLimits(raw map[string]json.RawMessage, required bool, prefix string) (billing.Overrides, error) {
	var o billing.Overrides
	dst := map[string]**int64{
		"monthly_requests": &o.MonthlyRequests, "max_api_keys": &o.MaxAPIKeys, "max_members": &o.MaxMembers,
		"max_rpm_per_key": &o.MaxRPMPerKey, "retention_days": &o.RetentionDays,
	}
	for k := range raw {
		if _, ok := dst[k]; !ok {
			return o, invalidLimit(prefix+k, "unknown limit "+k+"; limits are monthly_requests, max_api_keys, max_members, max_rpm_per_key, retention_days")
		}
	}
	for _, f := range limitFields {
		v, ok := raw[f.name]
		if !ok {
			if required {
				return o, invalidLimit(prefix+f.name, prefix+f.name+" is required (null: no maximum)")
			}
			continue
		}
		var n int64
		if bytes.Equal(bytes.TrimSpace(v), []byte("null")) {
			if !f.unlimited {
				return o, invalidLimit(prefix+f.name, prefix+f.name+" must be a number of days from 1 to 3650")
			}
		} else {
			var x float64
			if err := json.Unmarshal(v, &x); err != nil || x != math.Trunc(x) || x < 1 || x > float64(f.max) {
				return o, invalidLimit(prefix+f.name, prefix+f.name+" must be a whole number from 1 to "+itoa(f.max)+" or null for no maximum")
			}
			n = int64(x)
		}
		*dst[f.name] = &n
	}
	return o, nil
}

// invalidLimit is a 400 naming field (prefix included) with a snake_case
// code.
func invalidLimit(field, msg string) error {
	e := apperr.InvalidField(field, msg)
	e.Code = "invalid_" + strings.ReplaceAll(field, ".", "_")
	return e
}

func itoa(n int64) string { b, _ := json.Marshal(n); return string(b) }

// overridesResp shows overrides: only the limits set, null for no maximum.
func overridesResp(o billing.Overrides) map[string]any {
	out := map[string]any{}
	for name, v := range map[string]*int64{"monthly_requests": o.MonthlyRequests, "max_api_keys": o.MaxAPIKeys,
		"max_members": o.MaxMembers, "max_rpm_per_key": o.MaxRPMPerKey, "retention_days": o.RetentionDays} {
		switch {
		case v == nil:
		case *v == 0:
			out[name] = nil
		default:
			out[name] = *v
		}
	}
	return out
}

type tenantLimitsResp struct {
	TenantID  string         `json:"tenant_id"`
	PlanID    string         `json:"plan_id"`
	Plan      map[string]any `json:"plan"`
	Overrides map[string]any `json:"overrides"`
	Effective map[string]any `json:"effective"`
}

func toTenantLimitsResp(tenantID string, l store.TenantLimits) tenantLimitsResp {
	return tenantLimitsResp{TenantID: tenantID, PlanID: l.Plan.ID, Plan: limitsResp(l.Plan), Overrides: overridesResp(l.Overrides),
		Effective: limitsResp(l.Overrides.Apply(l.Plan))}
}

// adminGetLimits: GET /admin/tenants/{id}/limits.
func (a *API) adminGetLimits(c echo.Context) error {
	id := c.Param("id")
	if !uuidRE.MatchString(id) {
		return errTenantNotFound()
	}
	l, err := a.store.Limits(c.Request().Context(), id)
	if errors.Is(err, store.ErrNotFound) {
		return errTenantNotFound()
	}
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, toTenantLimitsResp(id, l))
}

// adminPutLimits: PUT /admin/tenants/{id}/limits replaces the tenant's
// overrides ({} removes them); the gateway gets them with the tenant context.
func (a *API) adminPutLimits(c echo.Context) error {
	id := c.Param("id")
	if !uuidRE.MatchString(id) {
		return errTenantNotFound()
	}
	var raw map[string]json.RawMessage
	if err := bind(c, &raw); err != nil {
		return err
	}
	o, err := parseLimits(raw, false, "")
	if err != nil {
		return err
	}
	ctx := c.Request().Context()
	l, err := a.store.SetOverrides(ctx, id, o, actorOf(caller(c)))
	if errors.Is(err, store.ErrNotFound) {
		return errTenantNotFound()
	}
	if err != nil {
		return err
	}
	a.pub.TenantChanged(ctx, events.TenantChangedEvent{TenantID: id, Reason: "limits"})
	a.log.InfoContext(ctx, "tenant limits overridden", "tenant_id", id, "overrides", overridesResp(o))
	return c.JSON(http.StatusOK, toTenantLimitsResp(id, l))
}

type adminPlanResp struct {
	planResp
	OfferedTo *string `json:"offered_to"`
}

func toAdminPlanResp(p billing.Plan) adminPlanResp {
	r := adminPlanResp{planResp: toPlanResp(p)}
	if p.OfferedTo != "" {
		r.OfferedTo = &p.OfferedTo
	}
	return r
}

// adminListPlans: GET /admin/plans, custom plans included.
func (a *API) adminListPlans(c echo.Context) error {
	plans, err := a.store.AllPlans(c.Request().Context())
	if err != nil {
		return err
	}
	items := make([]adminPlanResp, 0, len(plans))
	for _, p := range plans {
		items = append(items, toAdminPlanResp(p))
	}
	return c.JSON(http.StatusOK, httpserver.NewList(items, len(items), httpserver.Page{Limit: len(items)}))
}

// adminCreatePlan: POST /admin/plans {id, name, price_usd_month, limits,
// offered_to?}: a custom plan, public or offered to one tenant.
func (a *API) adminCreatePlan(c echo.Context) error {
	var req struct {
		ID        string                     `json:"id"`
		Name      string                     `json:"name"`
		Price     *float64                   `json:"price_usd_month"`
		Limits    map[string]json.RawMessage `json:"limits"`
		OfferedTo *string                    `json:"offered_to"`
	}
	if err := bind(c, &req); err != nil {
		return err
	}
	if !planIDRE.MatchString(req.ID) {
		return apperr.InvalidField("id", "id must be 2 to 40 lower-case letters, digits and single hyphens")
	}
	name := strings.TrimSpace(req.Name)
	if name == "" || len(name) > 100 || !utf8.ValidString(name) || strings.IndexFunc(name, unicode.IsControl) >= 0 {
		return apperr.InvalidField("name", "name must be 1 to 100 printable characters")
	}
	if req.Price == nil || *req.Price < 0 || *req.Price > 1e7 {
		return apperr.InvalidField("price_usd_month", "price_usd_month must be a number from 0 to 10000000")
	}
	if req.Limits == nil {
		return apperr.InvalidField("limits", "limits is required")
	}
	o, err := parseLimits(req.Limits, true, "limits.")
	if err != nil {
		return err
	}
	p := o.Apply(billing.Plan{ID: req.ID, Name: name, PriceUSDMonth: math.Round(*req.Price*100) / 100})
	if req.OfferedTo != nil {
		if !uuidRE.MatchString(*req.OfferedTo) {
			return apperr.InvalidField("offered_to", "offered_to must be a tenant id")
		}
		p.OfferedTo = strings.ToLower(*req.OfferedTo)
	}
	created, err := a.store.CreatePlan(c.Request().Context(), p, actorOf(caller(c)))
	switch {
	case errors.Is(err, store.ErrPlanExists):
		return apperr.New(apperr.Conflict, "plan_exists", "a plan with this id exists").WithDetails(map[string]any{"field": "id"})
	case errors.Is(err, store.ErrNotFound):
		return apperr.InvalidField("offered_to", "no tenant with this id")
	case err != nil:
		return err
	}
	return c.JSON(http.StatusCreated, toAdminPlanResp(created))
}
