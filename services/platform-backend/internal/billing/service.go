package billing

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"trueportai/services/platform-backend/internal/audit"
)

// Store is what plan changes need from persistence (store.BillingStore).
type Store interface {
	// PlanByID reads a catalog entry (ErrNotFound when unknown).
	PlanByID(ctx context.Context, id string) (Plan, error)
	// Overrides reads the tenant's limit overrides (none: the zero value);
	// they apply to whichever plan the tenant is on.
	Overrides(ctx context.Context, tenantID string) (Overrides, error)
	// MemberCount counts a tenant's members (outside any lock: a pre-check).
	MemberCount(ctx context.Context, tenantID string) (int64, error)
	// WithTenantLocked runs fn in one transaction holding the tenant's row
	// lock (every membership and plan change takes it first, so they
	// serialise per tenant). An error from fn rolls everything back and is
	// returned as is; ErrNotFound when there is no such tenant.
	WithTenantLocked(ctx context.Context, tenantID string, fn func(Tx) error) error
}

// Tx is a tenant locked by Store.WithTenantLocked: its reads see the data the
// lock protects, its writes commit together.
type Tx interface {
	// Plan is the tenant's plan, read with the lock.
	Plan() Plan
	CountMembers(ctx context.Context) (int64, error)
	// StartSubscription ends the active subscription, starts one on
	// s.PlanID and moves the tenant to that plan.
	StartSubscription(ctx context.Context, s NewSubscription) (Subscription, error)
	// CapRetention lowers the tenant's log retention to days if it is above;
	// it reports whether it was.
	CapRetention(ctx context.Context, days int64) (bool, error)
	Audit(ctx context.Context, e audit.Entry) error
}

// NewSubscription is what StartSubscription stores.
type NewSubscription struct {
	PlanID    string
	InvoiceID string // "" when no invoice was recorded
	CreatedBy string // user id, "" for none
	Now       time.Time
}

// KeyCounter counts a tenant's API keys (they live in the gateway). Its
// errors are returned as they are (a gateway that cannot answer is a 503,
// never a pass).
type KeyCounter interface {
	CountKeys(ctx context.Context, tenantID string) (int64, error)
}

// Payments charges plan activations (*Invoicer records invoices).
type Payments interface {
	Charge(ctx context.Context, c Charge) (Receipt, error)
	Void(ctx context.Context, r Receipt) error
}

// Service runs plan changes.
type Service struct {
	log  *slog.Logger
	st   Store
	keys KeyCounter
	pay  Payments
	now  func() time.Time
}

// NewService returns the plan change service.
func NewService(log *slog.Logger, st Store, keys KeyCounter, pay Payments, now func() time.Time) *Service {
	return &Service{log: log, st: st, keys: keys, pay: pay, now: now}
}

// Change is a completed plan change.
type Change struct {
	From, To     Plan
	Subscription Subscription
}

// ChangePlan moves a tenant from currentPlanID (the plan the caller saw) to
// targetPlanID:
//   - the target must exist (ErrUnknownPlan) and differ (ErrAlreadyOnPlan);
//   - the tenant's usage must fit the target (CheckFits; API keys are asked
//     of the gateway only when the target allows fewer than the current plan);
//   - the charge is recorded, then, under the tenant lock, the plan must still
//     be currentPlanID (ErrPlanChanged) and the members must still fit, the
//     subscription switches and the log retention is capped at the target's;
//   - a switch refused after the charge voids it.
func (s *Service) ChangePlan(ctx context.Context, tenantID, currentPlanID, targetPlanID string, actor audit.Actor) (Change, error) {
	target, err := s.st.PlanByID(ctx, targetPlanID)
	if errors.Is(err, ErrNotFound) {
		return Change{}, ErrUnknownPlan
	}
	if err != nil {
		return Change{}, err
	}
	cur, err := s.st.PlanByID(ctx, currentPlanID)
	if err != nil {
		return Change{}, err
	}
	if cur.ID == target.ID {
		return Change{}, ErrAlreadyOnPlan
	}
	// The tenant's overrides stay across the change: checks and the
	// retention cap use the limits it will have.
	ov, err := s.st.Overrides(ctx, tenantID)
	if err != nil {
		return Change{}, err
	}
	target, cur = ov.Apply(target), ov.Apply(cur)
	if err := s.checkFits(ctx, tenantID, cur, target); err != nil {
		return Change{}, err
	}

	now := s.now().UTC()
	receipt, err := s.pay.Charge(ctx, Charge{TenantID: tenantID, PlanID: target.ID, AmountUSD: target.PriceUSDMonth,
		PeriodStart: now, PeriodEnd: now.AddDate(0, 1, 0)})
	if err != nil {
		return Change{}, fmt.Errorf("charge plan %s: %w", target.ID, err)
	}
	var sub Subscription
	err = s.st.WithTenantLocked(ctx, tenantID, func(tx Tx) error {
		locked := tx.Plan()
		if err := checkSwitch(locked, cur.ID, target); err != nil {
			return err
		}
		members, err := tx.CountMembers(ctx)
		if err != nil {
			return err
		}
		if err := CheckMembers(target, members, 0); err != nil {
			return err
		}
		if sub, err = tx.StartSubscription(ctx, NewSubscription{PlanID: target.ID, InvoiceID: receipt.InvoiceID, CreatedBy: actor.UserID, Now: now}); err != nil {
			return err
		}
		capped, err := tx.CapRetention(ctx, target.RetentionDays)
		if err != nil {
			return err
		}
		details := map[string]any{"from": locked.ID, "to": target.ID, "subscription_id": sub.ID, "retention_capped": capped}
		if receipt.InvoiceID != "" {
			details["invoice_id"] = receipt.InvoiceID
		}
		return tx.Audit(ctx, audit.Entry{Actor: actor, Action: audit.SubscriptionChange, TargetType: "tenant", TargetID: tenantID,
			TenantID: tenantID, Details: details})
	})
	if err != nil {
		if verr := s.pay.Void(context.WithoutCancel(ctx), receipt); verr != nil {
			s.log.ErrorContext(ctx, "void charge of a failed plan change", "invoice_id", receipt.InvoiceID, "err", verr)
		}
		return Change{}, err
	}
	s.log.InfoContext(ctx, "plan changed", "from", cur.ID, "to", target.ID, "subscription_id", sub.ID)
	return Change{From: cur, To: target, Subscription: sub}, nil
}

// checkFits refuses a target the tenant's current usage exceeds. Members are
// counted here; API keys only the gateway knows, so it is asked only when the
// target allows fewer keys than the current plan.
func (s *Service) checkFits(ctx context.Context, tenantID string, cur, target Plan) error {
	members, err := s.st.MemberCount(ctx, tenantID)
	if err != nil {
		return err
	}
	var keys *int64
	if NeedsKeyCount(cur, target) {
		n, err := s.keys.CountKeys(ctx, tenantID)
		if err != nil {
			s.log.WarnContext(ctx, "plan change: gateway key count failed", "err", err)
			return err
		}
		keys = &n
	}
	return CheckFits(target, members, keys)
}
