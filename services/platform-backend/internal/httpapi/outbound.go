package httpapi

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"trueportai/services/internal/apperr"
	"trueportai/services/platform-backend/internal/billing"
	"trueportai/services/platform-backend/internal/gatewayclient"
	"trueportai/services/platform-backend/internal/mail"
	"trueportai/services/platform-backend/internal/store"
)

// Gateway answers what only the gateway knows (gatewayclient.Client). Its
// errors are apperr errors (503 gateway_unavailable when it cannot answer).
type Gateway interface {
	CountKeys(ctx context.Context, tenantID string) (int64, error)
	UsageSummary(ctx context.Context, tenantID string, from, to time.Time) (gatewayclient.Usage, error)
}

// Mailer sends one plain-text mail (mail.Sender: SMTP or the log).
type Mailer interface {
	Send(ctx context.Context, m mail.Message) error
}

// Payments charges plan activations (billing.Invoicer records invoices).
type Payments interface {
	Charge(ctx context.Context, c billing.Charge) (billing.Receipt, error)
	Void(ctx context.Context, r billing.Receipt) error
}

// Outbound are the API's dependencies beyond the store: the gateway's gRPC,
// mail and payments.
type Outbound struct {
	Gateway  Gateway
	Mailer   Mailer
	Payments Payments
}

// WithOutbound enables the team, billing and admin routes' outbound calls.
func WithOutbound(o Outbound) Option {
	return func(a *API) { a.out = o }
}

// actorOf is the caller as recorded in the audit log.
func actorOf(p *principal) store.Actor {
	return store.Actor{UserID: p.User.ID, Email: p.User.Email}
}

// limitError is the 409 for plan limits that an operation would exceed; the
// message names each limit with its maximum and the current value.
func limitError(le *store.LimitError, what string) error {
	parts := make([]string, 0, len(le.Exceeded))
	items := make([]map[string]any, 0, len(le.Exceeded))
	for _, x := range le.Exceeded {
		parts = append(parts, fmt.Sprintf("%s (plan %s allows %d, %s %d)", x.Limit, le.PlanID, x.Max, what, x.Current))
		items = append(items, map[string]any{"limit": x.Limit, "max": x.Max, "current": x.Current})
	}
	d := map[string]any{"plan_id": le.PlanID, "exceeded": items}
	if len(le.Exceeded) == 1 {
		d["limit"] = le.Exceeded[0].Limit
	}
	return apperr.New(apperr.Conflict, "plan_limit_exceeded", "plan limit exceeded: "+strings.Join(parts, "; ")).WithDetails(d)
}

// storeError maps the store's team and billing errors to API errors;
// notFound answers store.ErrNotFound.
func storeError(err error, notFound *apperr.Error) error {
	var le *store.LimitError
	switch {
	case err == nil:
		return nil
	case errors.As(err, &le):
		return limitError(le, "the tenant has")
	case errors.Is(err, store.ErrNotFound):
		return notFound
	case errors.Is(err, store.ErrInsufficientRole):
		return apperr.New(apperr.Forbidden, "insufficient_role", "this action needs the admin role or higher").
			WithDetails(map[string]any{"required_role": "admin"})
	case errors.Is(err, store.ErrOwnerProtected):
		return apperr.New(apperr.Forbidden, "owner_protected", "an owner can only be removed by an owner")
	case errors.Is(err, store.ErrOwnerRequired):
		return apperr.New(apperr.Forbidden, "owner_required", "only an owner can grant or revoke the owner role").
			WithDetails(map[string]any{"required_role": "owner"})
	case errors.Is(err, store.ErrLastOwner):
		return apperr.New(apperr.Conflict, "last_owner", "the last owner cannot leave, be removed or be demoted; make another member owner first")
	case errors.Is(err, store.ErrAlreadyMember):
		return apperr.New(apperr.Conflict, "already_member", "this user is already a member of the organisation")
	case errors.Is(err, store.ErrTenantSuspended):
		return apperr.New(apperr.Forbidden, "tenant_suspended", "this organisation is suspended")
	}
	return err
}
