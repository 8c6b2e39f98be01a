package store

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"trueportai/services/platform-backend/internal/audit"
	"trueportai/services/platform-backend/internal/billing"
)

// ErrPlanExists: a plan with that id exists already.
var ErrPlanExists = errors.New("plan exists")

// overridesJSON is the stored form of billing.Overrides (limits jsonb).
type overridesJSON struct {
	MonthlyRequests *int64 `json:"monthly_requests,omitempty"`
	MaxAPIKeys      *int64 `json:"max_api_keys,omitempty"`
	MaxMembers      *int64 `json:"max_members,omitempty"`
	MaxRPMPerKey    *int64 `json:"max_rpm_per_key,omitempty"`
	RetentionDays   *int64 `json:"retention_days,omitempty"`
}

func toOverridesJSON(o billing.Overrides) overridesJSON { return overridesJSON(o) }

// overrides reads a tenant's limit overrides (none: the zero value).
func overrides(ctx context.Context, q dbtx, tenantID string) (billing.Overrides, error) {
	var raw []byte
	err := q.QueryRow(ctx, `SELECT limits FROM tenant_limit_overrides WHERE tenant_id = $1`, tenantID).Scan(&raw)
	if errors.Is(err, pgx.ErrNoRows) {
		return billing.Overrides{}, nil
	}
	if err != nil {
		return billing.Overrides{}, err
	}
	var o overridesJSON
	if err := json.Unmarshal(raw, &o); err != nil {
		return billing.Overrides{}, fmt.Errorf("limit overrides of tenant %s: %w", tenantID, err)
	}
	return billing.Overrides(o), nil
}

// tenantPlan reads planID with tenantID's overrides applied: the tenant's
// effective limits.
func tenantPlan(ctx context.Context, q dbtx, tenantID, planID string) (billing.Plan, error) {
	p, err := scanPlan(q.QueryRow(ctx, `SELECT `+planCols+` FROM plans WHERE id = $1`, planID))
	if err != nil {
		return p, err
	}
	o, err := overrides(ctx, q, tenantID)
	if err != nil {
		return p, err
	}
	return o.Apply(p), nil
}

// TenantPlan is the tenant's plan with its overrides applied (the tenant
// context the gateway enforces).
func (s *Store) TenantPlan(ctx context.Context, tenantID, planID string) (billing.Plan, error) {
	return tenantPlan(ctx, s.pool, tenantID, planID)
}

// TenantLimits are a tenant's plan, overrides and effective limits.
type TenantLimits struct {
	Plan      billing.Plan
	Overrides billing.Overrides
}

// Limits reads a tenant's plan (as in the catalog) and overrides.
func (s *Store) Limits(ctx context.Context, tenantID string) (TenantLimits, error) {
	var l TenantLimits
	t, err := s.TenantByID(ctx, tenantID)
	if err != nil {
		return l, err
	}
	if l.Plan, err = s.PlanByID(ctx, t.PlanID); err != nil {
		return l, err
	}
	l.Overrides, err = overrides(ctx, s.pool, tenantID)
	return l, err
}

// SetOverrides replaces a tenant's limit overrides under its row lock,
// audited with the previous ones.
func (s *Store) SetOverrides(ctx context.Context, tenantID string, o billing.Overrides, actor audit.Actor) (TenantLimits, error) {
	var out TenantLimits
	err := s.withTenantLocked(ctx, tenantID, func(l lockedTx) error {
		prev, err := overrides(ctx, l.tx, tenantID)
		if err != nil {
			return err
		}
		if out.Plan, err = scanPlan(l.tx.QueryRow(ctx, `SELECT `+planCols+` FROM plans WHERE id = $1`, l.tenant.Tenant.PlanID)); err != nil {
			return err
		}
		if o == (billing.Overrides{}) {
			_, err = l.tx.Exec(ctx, `DELETE FROM tenant_limit_overrides WHERE tenant_id = $1`, tenantID)
		} else {
			_, err = l.tx.Exec(ctx, `INSERT INTO tenant_limit_overrides (tenant_id, limits) VALUES ($1, $2)
				ON CONFLICT (tenant_id) DO UPDATE SET limits = EXCLUDED.limits, updated_at = now()`, tenantID, toOverridesJSON(o))
		}
		if err != nil {
			return err
		}
		// The retention in force is capped by the new effective limit.
		if eff := o.Apply(out.Plan); eff.RetentionDays > 0 {
			if _, err := l.tx.Exec(ctx, `UPDATE storage_settings SET retention_days = $2 WHERE tenant_id = $1 AND retention_days > $2`,
				tenantID, eff.RetentionDays); err != nil {
				return err
			}
		}
		out.Overrides = o
		return l.Audit(ctx, audit.Entry{Actor: actor, Action: audit.TenantLimits, TargetType: "tenant", TargetID: tenantID, TenantID: tenantID,
			Details: map[string]any{"from": toOverridesJSON(prev), "to": toOverridesJSON(o), "plan_id": out.Plan.ID}})
	})
	return out, err
}

// CreatePlan adds a custom plan (offered to p.OfferedTo, or public),
// audited.
func (s *Store) CreatePlan(ctx context.Context, p billing.Plan, actor audit.Actor) (billing.Plan, error) {
	nullable := func(v int64) *int64 {
		if v == 0 {
			return nil
		}
		return &v
	}
	var offered *string
	if p.OfferedTo != "" {
		offered = &p.OfferedTo
	}
	var out billing.Plan
	err := pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		var err error
		out, err = scanPlan(tx.QueryRow(ctx, `INSERT INTO plans (id, name, price_usd_month, monthly_requests, max_api_keys, max_members,
			max_rpm_per_key, retention_days, sort_order, offered_to) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, 1000, $9) RETURNING `+planCols,
			p.ID, p.Name, p.PriceUSDMonth, nullable(p.MonthlyRequests), nullable(p.MaxAPIKeys), nullable(p.MaxMembers),
			nullable(p.MaxRPMPerKey), p.RetentionDays, offered))
		if err != nil {
			return err
		}
		return insertAudit(ctx, tx, audit.Entry{Actor: actor, Action: audit.PlanCreate, TargetType: "plan", TargetID: p.ID, TenantID: p.OfferedTo,
			Details: map[string]any{"name": p.Name, "price_usd_month": p.PriceUSDMonth, "offered_to": p.OfferedTo}})
	})
	var pe *pgconn.PgError
	if errors.As(err, &pe) && pe.Code == "23505" {
		return out, ErrPlanExists
	}
	if errors.As(err, &pe) && pe.Code == "23503" {
		return out, ErrNotFound // offered to a tenant that does not exist
	}
	return out, err
}
