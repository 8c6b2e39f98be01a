package httpapi

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"trueportai/services/internal/apperr"
	"trueportai/services/platform-backend/internal/audit"
	"trueportai/services/platform-backend/internal/billing"
	"trueportai/services/platform-backend/internal/configs"
	"trueportai/services/platform-backend/internal/gatewayclient"
	"trueportai/services/platform-backend/internal/mail"
	"trueportai/services/platform-backend/internal/team"
)

// Gateway answers what only the gateway knows (gatewayclient.Client). Its
// errors are apperr errors (503 gateway_unavailable when it cannot answer).
type Gateway interface {
	UsageSummary(ctx context.Context, tenantID string, from, to time.Time) (gatewayclient.Usage, error)
}

// Mailer sends one plain-text mail (mail.Sender: SMTP or the log).
type Mailer interface {
	Send(ctx context.Context, m mail.Message) error
}

// actorOf is the caller as recorded in the audit log.
func actorOf(p *principal) audit.Actor {
	return audit.Actor{UserID: p.User.ID, Email: p.User.Email}
}

// limitError is the 409 for plan limits that an operation would exceed; the
// message names each limit with its maximum and the current value.
func limitError(le *billing.LimitError, what string) error {
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

// domainError maps the team and billing rule errors to API errors; notFound
// builds the answer to a missing tenant, member or invite (which one depends
// on the route).
func domainError(err error, notFound func() error) error {
	var le *billing.LimitError
	switch {
	case err == nil:
		return nil
	case errors.As(err, &le):
		return limitError(le, "the tenant has")
	case errors.Is(err, team.ErrNotFound), errors.Is(err, billing.ErrNotFound), errors.Is(err, configs.ErrNotFound):
		return notFound()
	case errors.Is(err, team.ErrInvalidRole):
		return errBadRole()
	case errors.Is(err, team.ErrInsufficientRole):
		return apperr.New(apperr.Forbidden, "insufficient_role", "this action needs the admin role or higher").
			WithDetails(map[string]any{"required_role": "admin"})
	case errors.Is(err, team.ErrOwnerProtected):
		return apperr.New(apperr.Forbidden, "owner_protected", "an owner can only be removed by an owner")
	case errors.Is(err, team.ErrOwnerRequired):
		return apperr.New(apperr.Forbidden, "owner_required", "only an owner can grant or revoke the owner role").
			WithDetails(map[string]any{"required_role": "owner"})
	case errors.Is(err, team.ErrLastOwner):
		return apperr.New(apperr.Conflict, "last_owner", "the last owner cannot leave, be removed or be demoted; make another member owner first")
	case errors.Is(err, team.ErrAlreadyMember):
		return apperr.New(apperr.Conflict, "already_member", "this user is already a member of the organisation")
	case errors.Is(err, team.ErrTenantSuspended):
		return apperr.New(apperr.Forbidden, "tenant_suspended", "this organisation is suspended")
	}
	return err
}
