package httpapi

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"time"

	"github.com/labstack/echo/v4"

	"trueportai/services/internal/apperr"
	"trueportai/services/internal/events"
	"trueportai/services/internal/httpserver"
	"trueportai/services/platform-backend/internal/billing"
	"trueportai/services/platform-backend/internal/store"
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

func toSubscriptionResp(s store.Subscription) subscriptionResp {
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

// createSubscription moves the tenant to another plan: a downgrade is refused
// while the tenant's members or API keys (counted by the gateway) exceed the
// target plan; the charge is recorded, then the plan switched.
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
	target, err := a.store.PlanByID(ctx, req.PlanID)
	if errors.Is(err, store.ErrNotFound) {
		return apperr.InvalidField("plan_id", "unknown plan_id; see GET /platform/api/service/catalog/plans")
	}
	if err != nil {
		return err
	}
	p := caller(c)
	cur, err := a.store.PlanByID(ctx, p.Tenant.PlanID)
	if err != nil {
		return err
	}
	if cur.ID == target.ID {
		return errAlreadyOnPlan(target.ID)
	}
	if err := a.checkPlanFits(ctx, p.Tenant.ID, cur, target); err != nil {
		return err
	}

	now := a.now().UTC()
	receipt, err := a.out.Payments.Charge(ctx, billing.Charge{TenantID: p.Tenant.ID, PlanID: target.ID, AmountUSD: target.PriceUSDMonth,
		PeriodStart: now, PeriodEnd: now.AddDate(0, 1, 0)})
	if err != nil {
		return fmt.Errorf("charge plan %s: %w", target.ID, err)
	}
	sub, err := a.store.ChangePlan(ctx, store.PlanChange{TenantID: p.Tenant.ID, FromPlanID: cur.ID, To: target,
		InvoiceID: receipt.InvoiceID, Actor: actorOf(p), Now: now})
	if err != nil {
		if verr := a.out.Payments.Void(context.WithoutCancel(ctx), receipt); verr != nil {
			a.log.ErrorContext(ctx, "void charge of a failed plan change", "invoice_id", receipt.InvoiceID, "err", verr)
		}
		switch {
		case errors.Is(err, store.ErrAlreadyOnPlan):
			return errAlreadyOnPlan(target.ID)
		case errors.Is(err, store.ErrPlanChanged):
			return apperr.New(apperr.Conflict, "plan_changed", "the plan changed while this request ran; try again")
		}
		return storeError(err, apperr.New(apperr.NotFound, "tenant_not_found", "no such tenant"))
	}
	a.pub.TenantChanged(ctx, events.TenantChangedEvent{TenantID: p.Tenant.ID, Reason: "plan"})
	a.log.InfoContext(ctx, "plan changed", "from", cur.ID, "to", target.ID, "subscription_id", sub.ID)
	return c.JSON(http.StatusCreated, map[string]any{"id": sub.ID, "plan_id": sub.PlanID, "status": sub.Status, "started_at": sub.StartedAt.UTC()})
}

func errAlreadyOnPlan(planID string) error {
	return apperr.New(apperr.Conflict, "already_on_plan", "the organisation is already on the "+planID+" plan").
		WithDetails(map[string]any{"plan_id": planID})
}

// checkPlanFits refuses (409) a plan whose limits the tenant's current usage
// exceeds. Members are counted here; API keys only the gateway knows, so when
// the target allows fewer keys than the current plan the gateway is asked,
// and its being unreachable is a 503, never a pass.
func (a *API) checkPlanFits(ctx context.Context, tenantID string, cur, target store.Plan) error {
	le := &store.LimitError{PlanID: target.ID}
	members, err := a.store.MemberCount(ctx, tenantID)
	if err != nil {
		return err
	}
	if members > target.MaxMembers {
		le.Exceeded = append(le.Exceeded, store.LimitExceeded{Limit: "max_members", Max: target.MaxMembers, Current: members})
	}
	if target.MaxAPIKeys < cur.MaxAPIKeys {
		keys, err := a.out.Gateway.CountKeys(ctx, tenantID)
		if err != nil {
			a.log.WarnContext(ctx, "plan change: gateway key count failed", "err", err)
			return err
		}
		if keys > target.MaxAPIKeys {
			le.Exceeded = append(le.Exceeded, store.LimitExceeded{Limit: "max_api_keys", Max: target.MaxAPIKeys, Current: keys})
		}
	}
	if len(le.Exceeded) > 0 {
		return limitError(le, "the tenant has")
	}
	return nil
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

func storageJSON(st store.Storage) map[string]any {
	return map[string]any{
		"log_request_bodies": st.LogRequestBodies, "log_response_bodies": st.LogResponseBodies,
		"redact_logged_bodies": st.RedactLoggedBodies, "retention_days": st.RetentionDays,
	}
}

// putStorage updates the storage settings; fields left out keep their value.
// retention_days is 1 to the plan's retention_days.
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
	st, err := a.store.UpdateStorage(ctx, p.Tenant.ID, actorOf(p), func(cur store.Storage, plan store.Plan) (store.Storage, error) {
		next := cur
		for _, f := range []struct {
			src *bool
			dst *bool
		}{{req.LogRequestBodies, &next.LogRequestBodies}, {req.LogResponseBodies, &next.LogResponseBodies}, {req.RedactLoggedBodies, &next.RedactLoggedBodies}} {
			if f.src != nil {
				*f.dst = *f.src
			}
		}
		if req.RetentionDays != nil {
			next.RetentionDays = *req.RetentionDays
		}
		if next.RetentionDays < 1 {
			return next, apperr.InvalidField("retention_days", "retention_days must be at least 1")
		}
		if next.RetentionDays > plan.RetentionDays {
			return next, apperr.New(apperr.Invalid, "invalid_retention_days",
				fmt.Sprintf("retention_days %d is above the %s plan's limit of %d days", next.RetentionDays, plan.ID, plan.RetentionDays)).
				WithDetails(map[string]any{"field": "retention_days", "max": plan.RetentionDays, "plan_id": plan.ID})
		}
		return next, nil
	})
	if err != nil {
		return storeError(err, apperr.New(apperr.NotFound, "tenant_not_found", "no such tenant"))
	}
	a.pub.TenantChanged(ctx, events.TenantChangedEvent{TenantID: p.Tenant.ID, Reason: "storage"})
	return c.JSON(http.StatusOK, storageJSON(st))
}
