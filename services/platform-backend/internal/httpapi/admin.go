package httpapi

import (
	"context"
	"errors"
	"net/http"
	"regexp"
	"sync"
	"sync/atomic"
	"time"

	"github.com/labstack/echo/v4"
	"golang.org/x/sync/errgroup"

	"trueportai/services/internal/apperr"
	"trueportai/services/internal/events"
	"trueportai/services/internal/httpserver"
	"trueportai/services/internal/money"
	"trueportai/services/platform-backend/internal/billing"
	"trueportai/services/platform-backend/internal/gatewayclient"
	"trueportai/services/platform-backend/internal/store"
)

// usageFanout bounds concurrent gateway calls of one admin tenant list.
const usageFanout = 8

var uuidRE = regexp.MustCompile(`^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$`)

// Client-visible errors are built fresh for each use: concurrent requests
// never share (and so never race on) one *apperr.Error.

// errGatewaySkipped marks usage not asked for because the gateway was found down.
func errGatewaySkipped() error {
	return apperr.New(apperr.Unavailable, "gateway_unavailable", "the gateway cannot be reached")
}

func errTenantNotFound() error {
	return apperr.New(apperr.NotFound, "tenant_not_found", "no such tenant")
}

// requirePlatformAdmin admits any valid token (global or scoped) of a user
// whose platform-admin flag is set now.
func (a *API) requirePlatformAdmin(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		p, err := a.authenticate(c)
		if err != nil {
			return err
		}
		if !p.User.PlatformAdmin {
			return apperr.New(apperr.Forbidden, "platform_admin_required", "this route is for platform admins only")
		}
		c.Set(principalKey, p)
		return next(c)
	}
}

// monthWindow is the current calendar month (UTC): [first day, first day of
// next month).
func monthWindow(now time.Time) (time.Time, time.Time) {
	now = now.UTC()
	from := time.Date(now.Year(), now.Month(), 1, 0, 0, 0, 0, time.UTC)
	return from, from.AddDate(0, 1, 0)
}

type usageResp struct {
	Requests    int64     `json:"requests"`
	Errors      int64     `json:"errors"`
	TotalTokens int64     `json:"total_tokens"`
	CostUSD     money.USD `json:"cost_usd"` // a JSON number, at most 10 decimals
}

func toUsageResp(u gatewayclient.Usage) *usageResp {
	return &usageResp{Requests: u.Requests, Errors: u.Errors, TotalTokens: u.TotalTokens, CostUSD: u.CostUSD}
}

// usageThisMonth asks the gateway for each tenant's usage this month, a few
// at a time; a tenant the gateway cannot answer for gets nil (shown as null).
// Once the gateway is found unavailable the remaining tenants are not asked,
// so a gateway that is down costs one call timeout, not one per tenant.
func (a *API) usageThisMonth(ctx context.Context, tenantIDs []string) map[string]*usageResp {
	from, to := monthWindow(a.now())
	out := make(map[string]*usageResp, len(tenantIDs))
	var mu sync.Mutex
	var g errgroup.Group
	g.SetLimit(usageFanout)
	var down atomic.Bool
	failed := 0
	for _, id := range tenantIDs {
		g.Go(func() error {
			var u gatewayclient.Usage
			var err error = errGatewaySkipped()
			if !down.Load() {
				u, err = a.gateway.UsageSummary(ctx, id, from, to)
			}
			if ae, ok := apperr.As(err); ok && ae.Kind == apperr.Unavailable {
				down.Store(true)
			}
			mu.Lock()
			defer mu.Unlock()
			if err != nil {
				failed++
				out[id] = nil
				return nil
			}
			out[id] = toUsageResp(u)
			return nil
		})
	}
	_ = g.Wait()
	if failed > 0 {
		a.log.WarnContext(ctx, "admin: gateway usage unavailable", "tenants", failed)
	}
	return out
}

type adminTenantResp struct {
	tenantResp
	MemberCount    int64      `json:"member_count"`
	UsageThisMonth *usageResp `json:"usage_this_month"`
}

func (a *API) adminListTenants(c echo.Context) error {
	page, err := httpserver.ParsePage(c)
	if err != nil {
		return err
	}
	f := store.TenantFilter{Status: c.QueryParam("status"), Query: c.QueryParam("q")}
	if f.Status != "" && f.Status != "active" && f.Status != "suspended" {
		return apperr.InvalidField("status", "status must be active or suspended")
	}
	ctx := c.Request().Context()
	rows, total, err := a.store.AllTenants(ctx, f, page.Limit, page.Offset)
	if err != nil {
		return err
	}
	ids := make([]string, 0, len(rows))
	for _, r := range rows {
		ids = append(ids, r.ID)
	}
	usage := a.usageThisMonth(ctx, ids)
	items := make([]adminTenantResp, 0, len(rows))
	for _, r := range rows {
		items = append(items, adminTenantResp{tenantResp: toTenantResp(r.Tenant, ""), MemberCount: r.MemberCount, UsageThisMonth: usage[r.ID]})
	}
	return c.JSON(http.StatusOK, httpserver.NewList(items, total, page))
}

type ownerResp struct {
	UserID string `json:"user_id"`
	Email  string `json:"email"`
	Name   string `json:"name"`
}

func (a *API) adminGetTenant(c echo.Context) error {
	ctx := c.Request().Context()
	t, err := a.store.TenantByID(ctx, c.Param("id"))
	if errors.Is(err, store.ErrNotFound) {
		return errTenantNotFound()
	}
	if err != nil {
		return err
	}
	members, err := a.store.MemberCount(ctx, t.ID)
	if err != nil {
		return err
	}
	owners, err := a.store.TenantOwners(ctx, t.ID)
	if err != nil {
		return err
	}
	plan, err := a.store.PlanByID(ctx, t.PlanID)
	if err != nil {
		return err
	}
	st, err := a.store.StorageSettings(ctx, t.ID)
	if err != nil && !errors.Is(err, store.ErrNotFound) {
		return err
	}
	var sub any
	if s, err := a.store.ActiveSubscription(ctx, t.ID); err == nil {
		sub = map[string]any{"id": s.ID, "plan_id": s.PlanID, "status": s.Status, "started_at": s.StartedAt.UTC()}
	} else if !errors.Is(err, store.ErrNotFound) {
		return err
	}
	ownerItems := make([]ownerResp, 0, len(owners))
	for _, o := range owners {
		ownerItems = append(ownerItems, ownerResp{UserID: o.UserID, Email: o.Email, Name: o.Name})
	}
	return c.JSON(http.StatusOK, struct {
		adminTenantResp
		Limits       map[string]any `json:"limits"`
		Owners       []ownerResp    `json:"owners"`
		Subscription any            `json:"subscription"`
		Storage      map[string]any `json:"storage"`
	}{
		adminTenantResp: adminTenantResp{tenantResp: toTenantResp(t, ""), MemberCount: members, UsageThisMonth: a.usageThisMonth(ctx, []string{t.ID})[t.ID]},
		Limits:          planLimits(plan),
		Owners:          ownerItems,
		Subscription:    sub,
		Storage:         storageJSON(st),
	})
}

func planLimits(p billing.Plan) map[string]any {
	return map[string]any{
		"monthly_requests": p.MonthlyRequests, "max_api_keys": p.MaxAPIKeys, "max_members": p.MaxMembers,
		"max_rpm_per_key": p.MaxRPMPerKey, "retention_days": p.RetentionDays,
	}
}

// adminSetTenantStatus suspends or reactivates a tenant; the gateway refetches
// its context and drops cached introspections of its tokens.
func (a *API) adminSetTenantStatus(c echo.Context) error {
	var req struct {
		Status string `json:"status"`
	}
	if err := bind(c, &req); err != nil {
		return err
	}
	if req.Status != "active" && req.Status != "suspended" {
		return apperr.InvalidField("status", `status must be "active" or "suspended"`)
	}
	ctx := c.Request().Context()
	t, prev, err := a.store.SetTenantStatus(ctx, c.Param("id"), req.Status, actorOf(caller(c)))
	if errors.Is(err, store.ErrNotFound) {
		return errTenantNotFound()
	}
	if err != nil {
		return err
	}
	a.pub.TenantChanged(ctx, events.TenantChangedEvent{TenantID: t.ID, Reason: "status"})
	a.pub.TokensRevoked(ctx, events.TokensRevokedEvent{TenantID: t.ID, Reason: "tenant_" + req.Status})
	a.log.InfoContext(ctx, "tenant status changed", "tenant_id", t.ID, "from", prev, "to", t.Status)
	return c.JSON(http.StatusOK, toTenantResp(t, ""))
}

type adminUserResp struct {
	userResp
	TenantCount int64 `json:"tenant_count"`
}

func (a *API) adminListUsers(c echo.Context) error {
	page, err := httpserver.ParsePage(c)
	if err != nil {
		return err
	}
	rows, total, err := a.store.AllUsers(c.Request().Context(), c.QueryParam("q"), page.Limit, page.Offset)
	if err != nil {
		return err
	}
	items := make([]adminUserResp, 0, len(rows))
	for _, r := range rows {
		items = append(items, adminUserResp{userResp: toUserResp(r.User), TenantCount: r.TenantCount})
	}
	return c.JSON(http.StatusOK, httpserver.NewList(items, total, page))
}

// adminStats answers platform totals; the month's usage comes from the
// gateway and is null when it cannot be reached.
func (a *API) adminStats(c echo.Context) error {
	ctx := c.Request().Context()
	counts, err := a.store.Counts(ctx)
	if err != nil {
		return err
	}
	from, to := monthWindow(a.now())
	var usage *usageResp
	var requests *int64
	if u, err := a.gateway.UsageSummary(ctx, "", from, to); err == nil {
		usage, requests = toUsageResp(u), &u.Requests
	} else {
		a.log.WarnContext(ctx, "admin stats: gateway usage unavailable", "err", err)
	}
	return c.JSON(http.StatusOK, map[string]any{
		"users": counts.Users, "platform_admins": counts.PlatformAdmins,
		"tenants": counts.Tenants, "active_tenants": counts.ActiveTenants, "suspended_tenants": counts.SuspendedTenants,
		"tenants_by_plan":     counts.TenantsByPlan,
		"period":              map[string]any{"from": from, "to": to},
		"requests_this_month": requests,
		"usage_this_month":    usage,
	})
}

type auditResp struct {
	ID         string         `json:"id"`
	At         time.Time      `json:"at"`
	ActorID    *string        `json:"actor_id"`
	ActorEmail string         `json:"actor_email"`
	Action     string         `json:"action"`
	TargetType string         `json:"target_type"`
	TargetID   string         `json:"target_id"`
	TenantID   *string        `json:"tenant_id"`
	Details    map[string]any `json:"details"`
}

func optString(s string) *string {
	if s == "" {
		return nil
	}
	return &s
}

func (a *API) adminAudit(c echo.Context) error {
	page, err := httpserver.ParsePage(c)
	if err != nil {
		return err
	}
	f := store.AuditFilter{TenantID: c.QueryParam("tenant_id"), ActorID: c.QueryParam("actor_id"), Action: c.QueryParam("action")}
	for _, q := range []struct {
		name string
		val  string
	}{{"tenant_id", f.TenantID}, {"actor_id", f.ActorID}} {
		if q.val != "" && !uuidRE.MatchString(q.val) {
			return apperr.InvalidField(q.name, q.name+" must be a UUID")
		}
	}
	for _, q := range []struct {
		name string
		dst  *time.Time
	}{{"from", &f.From}, {"to", &f.To}} {
		if s := c.QueryParam(q.name); s != "" {
			t, err := time.Parse(time.RFC3339, s)
			if err != nil {
				return apperr.InvalidField(q.name, q.name+" must be an RFC 3339 time")
			}
			*q.dst = t
		}
	}
	rows, total, err := a.store.AuditLog(c.Request().Context(), f, page.Limit, page.Offset)
	if err != nil {
		return err
	}
	items := make([]auditResp, 0, len(rows))
	for _, r := range rows {
		d := r.Details
		if d == nil {
			d = map[string]any{}
		}
		items = append(items, auditResp{ID: r.ID, At: r.At.UTC(), ActorID: optString(r.Actor.UserID), ActorEmail: r.Actor.Email, Action: r.Action,
			TargetType: r.TargetType, TargetID: r.TargetID, TenantID: optString(r.TenantID), Details: d})
	}
	return c.JSON(http.StatusOK, httpserver.NewList(items, total, page))
}
