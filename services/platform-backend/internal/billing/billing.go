// Package billing owns plans and their limits: what a plan allows (members,
// API keys, log retention), whether a tenant's usage fits a plan, and how a
// tenant moves to another plan (charge, then switch under the tenant lock,
// void the charge if the switch is refused).
//
// The rules are functions of plain values (limits.go) and are evaluated by
// Service with data read inside the transaction that holds the tenant's row
// lock (Store.WithTenantLocked), so concurrent changes cannot slip between a
// check and the write it guards. Other packages (team) apply the member limit
// with the same functions.
package billing

import (
	"errors"
	"fmt"
	"strings"
	"time"
)

// Plan is a catalog entry with its limits. MonthlyRequests, MaxAPIKeys,
// MaxMembers and MaxRPMPerKey of 0 mean no maximum (enterprise deals).
type Plan struct {
	ID              string
	Name            string
	PriceUSDMonth   float64
	MonthlyRequests int64
	MaxAPIKeys      int64
	MaxMembers      int64
	MaxRPMPerKey    int64
	RetentionDays   int64
	// OfferedTo is the one tenant a custom plan is offered to ("": the
	// public catalog).
	OfferedTo string
}

// Offered reports whether tenantID may see and choose p.
func (p Plan) Offered(tenantID string) bool { return p.OfferedTo == "" || p.OfferedTo == tenantID }

// Overrides are a tenant's limits set by a platform admin over its plan's
// (an enterprise deal); they stay across plan changes. A nil field keeps the
// plan's value; 0 means no maximum (not for RetentionDays).
type Overrides struct {
	MonthlyRequests *int64
	MaxAPIKeys      *int64
	MaxMembers      *int64
	MaxRPMPerKey    *int64
	RetentionDays   *int64
}

// Apply returns p with the overrides in place: the tenant's effective limits.
func (o Overrides) Apply(p Plan) Plan {
	for _, f := range []struct {
		v   *int64
		dst *int64
	}{{o.MonthlyRequests, &p.MonthlyRequests}, {o.MaxAPIKeys, &p.MaxAPIKeys}, {o.MaxMembers, &p.MaxMembers},
		{o.MaxRPMPerKey, &p.MaxRPMPerKey}, {o.RetentionDays, &p.RetentionDays}} {
		if f.v != nil {
			*f.dst = *f.v
		}
	}
	return p
}

// Invoice is an invoice-style payment record (no card data).
type Invoice struct {
	ID          string
	TenantID    string
	PlanID      string
	AmountUSD   float64
	Currency    string
	Status      string // issued | void
	PeriodStart time.Time
	PeriodEnd   time.Time
	CreatedAt   time.Time
}

// Subscription is one period of a tenant on a plan.
type Subscription struct {
	ID        string
	TenantID  string
	PlanID    string
	Status    string // active | ended
	StartedAt time.Time
	EndedAt   *time.Time
	Invoice   *Invoice // nil for the subscription created with the tenant
}

// Errors of plan changes.
var (
	// ErrNotFound: no such tenant (or plan, from the store).
	ErrNotFound = errors.New("not found")
	// ErrUnknownPlan: the requested plan is not in the catalog.
	ErrUnknownPlan   = errors.New("unknown plan")
	ErrAlreadyOnPlan = errors.New("the tenant is already on this plan")
	ErrPlanChanged   = errors.New("the tenant's plan changed concurrently")
)

// Limit names (stable: they appear in API error details).
const (
	LimitMembers = "max_members"
	LimitAPIKeys = "max_api_keys"
)

// LimitExceeded is one plan limit the tenant's usage is above.
type LimitExceeded struct {
	Limit   string // LimitMembers, LimitAPIKeys
	Max     int64
	Current int64
}

// LimitError reports plan limits that an operation would exceed.
type LimitError struct {
	PlanID   string
	Exceeded []LimitExceeded
}

func (e *LimitError) Error() string {
	parts := make([]string, 0, len(e.Exceeded))
	for _, x := range e.Exceeded {
		parts = append(parts, fmt.Sprintf("%s %d > %d", x.Limit, x.Current, x.Max))
	}
	return "plan " + e.PlanID + " limits exceeded: " + strings.Join(parts, ", ")
}
