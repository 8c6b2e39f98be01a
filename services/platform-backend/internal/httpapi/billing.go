package httpapi

import (
	"errors"
	"net/http"
	"time"

	"github.com/labstack/echo/v4"

	"trueportai/services/internal/apperr"
	"trueportai/services/internal/events"
	"trueportai/services/internal/httpserver"
	"trueportai/services/platform-backend/internal/billing"
	"trueportai/services/platform-backend/internal/configs"
)

type subscriptionResp struct {
	ID        string       `json:"id"`
	PlanID    string       `json:"plan_id"`
	Status    string       `json:"status"`
	StartedAt time.Time    `json:"started_at"`
	EndedAt   *time.Time   `json:"ended_at"`
	Invoice   *invoiceResp `json:"invoice"`
}

type invoiceResp struct {
	ID          string    `json:"id"`
	AmountUSD   float64   `json:"amount_usd"`
	Currency    string    `json:"currency"`
	Status      string    `json:"status"`
	PeriodStart time.Time `json:"period_start"`
	PeriodEnd   time.Time `json:"period_end"`
}

func toSubscriptionResp(s billing.Subscription) subscriptionResp {
	r := subscriptionResp{ID: s.ID, PlanID: s.PlanID, Status: s.Status, StartedAt: s.StartedAt.UTC()}
	if s.EndedAt != nil {
		t := s.EndedAt.UTC()
		r.EndedAt = &t
	}
	if i := s.Invoice; i != nil {
		r.Invoice = &invoiceResp{ID: i.ID, AmountUSD: i.AmountUSD, Currency: i.Currency, Status: i.Status,
			PeriodStart: i.PeriodStart.UTC(), PeriodEnd: i.PeriodEnd.UTC()}
	}
	return r
}

// createSubscription moves the tenant to another plan (billing.Service.
// ChangePlan): a downgrade is refused while the tenant's members or API keys
// (counted by the gateway) exceed the target plan; the charge is recorded,
// then the plan switched.
func (a *API) createSubscription(c echo.Context) error {
	var req struct {
		PlanID string `json:"plan_id"`
	}
	if err := bind(c, &req); err != nil {
		return err
	}
	if req.PlanID == "" {
		return apperr.InvalidField("plan_id", "plan_id is required")
	}
	ctx := c.Request().Context()
	p := caller(c)
	// A custom plan offered to another tenant is not in this one's catalog.
	if plan, err := a.store.PlanByID(ctx, req.PlanID); err == nil && !plan.Offered(p.Tenant.ID) {
		return apperr.InvalidField("plan_id", "unknown plan_id; see GET /platform/api/service/catalog/plans")
	}
	ch, err := a.billing.ChangePlan(ctx, p.Tenant.ID, p.Tenant.PlanID, req.PlanID, actorOf(p))
	switch {
	case errors.Is(err, billing.ErrUnknownPlan):
		return apperr.InvalidField("plan_id", "unknown plan_id; see GET /platform/api/service/catalog/plans")
	case errors.Is(err, billing.ErrAlreadyOnPlan):
		return errAlreadyOnPlan(req.PlanID)
	case errors.Is(err, billing.ErrPlanChanged):
		return apperr.New(apperr.Conflict, "plan_changed", "the plan changed while this request ran; try again")
	case err != nil:
		return domainError(err, errTenantNotFound)
	}
	a.pub.TenantChanged(ctx, events.TenantChangedEvent{TenantID: p.Tenant.ID, Reason: "plan"})
	sub := ch.Subscription
	return c.JSON(http.StatusCreated, map[string]any{"id": sub.ID, "plan_id": sub.PlanID, "status": sub.Status, "started_at": sub.StartedAt.UTC()})
}

func errAlreadyOnPlan(planID string) error {
	return apperr.New(apperr.Conflict, "already_on_plan", "the organisation is already on the "+planID+" plan").
		WithDetails(map[string]any{"plan_id": planID})
}

func (a *API) listSubscriptions(c echo.Context) error {
	page, err := httpserver.ParsePage(c)
	if err != nil {
		return err
	}
	rows, total, err := a.store.Subscriptions(c.Request().Context(), caller(c).Tenant.ID, page.Limit, page.Offset)
	if err != nil {
		return err
	}
	items := make([]subscriptionResp, 0, len(rows))
	for _, r := range rows {
		items = append(items, toSubscriptionResp(r))
	}
	return c.JSON(http.StatusOK, httpserver.NewList(items, total, page))
}

func storageJSON(st configs.Storage) map[string]any {
	return map[string]any{
		"log_request_bodies": st.LogRequestBodies, "log_response_bodies": st.LogResponseBodies,
		"redact_logged_bodies": st.RedactLoggedBodies, "retention_days": st.RetentionDays,
	}
}

// putStorage updates the storage settings; fields left out keep their value.
// retention_days is 1 to the plan's retention_days (configs.ApplyStorage).
func (a *API) putStorage(c echo.Context) error {
	var req struct {
		LogRequestBodies   *bool  `json:"log_request_bodies"`
		LogResponseBodies  *bool  `json:"log_response_bodies"`
		RedactLoggedBodies *bool  `json:"redact_logged_bodies"`
		RetentionDays      *int64 `json:"retention_days"`
	}
	if err := bind(c, &req); err != nil {
		return err
	}
	p := caller(c)
	ctx := c.Request().Context()
	st, err := a.configs.UpdateStorage(ctx, p.Tenant.ID, actorOf(p), configs.StoragePatch{LogRequestBodies: req.LogRequestBodies,
		LogResponseBodies: req.LogResponseBodies, RedactLoggedBodies: req.RedactLoggedBodies, RetentionDays: req.RetentionDays})
	var rl *configs.RetentionLimitError
	switch {
	case errors.Is(err, configs.ErrRetentionTooShort):
		return apperr.InvalidField("retention_days", "retention_days must be at least 1")
	case errors.As(err, &rl):
		return apperr.New(apperr.Invalid, "invalid_retention_days", rl.Error()).
			WithDetails(map[string]any{"field": "retention_days", "max": rl.Max, "plan_id": rl.PlanID})
	case err != nil:
		return domainError(err, errTenantNotFound)
	}
	a.pub.TenantChanged(ctx, events.TenantChangedEvent{TenantID: p.Tenant.ID, Reason: "storage"})
	return c.JSON(http.StatusOK, storageJSON(st))
}
