package store

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
)

// Plan change outcomes.
var (
	ErrAlreadyOnPlan = errors.New("the tenant is already on this plan")
	ErrPlanChanged   = errors.New("the tenant's plan changed concurrently")
)

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

// CreateInvoice records an issued invoice and returns it.
func (s *Store) CreateInvoice(ctx context.Context, tenantID, planID string, amountUSD float64, start, end time.Time) (Invoice, error) {
	inv := Invoice{TenantID: tenantID, PlanID: planID, AmountUSD: amountUSD, Currency: "USD", Status: "issued", PeriodStart: start, PeriodEnd: end}
	err := s.pool.QueryRow(ctx, `INSERT INTO invoices (tenant_id, plan_id, amount_usd, status, period_start, period_end)
		VALUES ($1, $2, $3, 'issued', $4, $5) RETURNING id::text, created_at`, tenantID, planID, amountUSD, start, end).Scan(&inv.ID, &inv.CreatedAt)
	if err != nil {
		return inv, fmt.Errorf("insert invoice: %w", err)
	}
	return inv, nil
}

// VoidInvoice marks an invoice void (its plan change did not happen).
func (s *Store) VoidInvoice(ctx context.Context, id string) error {
	if !validUUID(id) {
		return ErrNotFound
	}
	tag, err := s.pool.Exec(ctx, `UPDATE invoices SET status = 'void' WHERE id = $1`, id)
	if err != nil {
		return fmt.Errorf("void invoice: %w", err)
	}
	if tag.RowsAffected() == 0 {
		return ErrNotFound
	}
	return nil
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

// Subscriptions lists a tenant's subscription history, newest first.
func (s *Store) Subscriptions(ctx context.Context, tenantID string, limit, offset int) ([]Subscription, int, error) {
	var total int
	if err := s.pool.QueryRow(ctx, `SELECT count(*) FROM subscriptions WHERE tenant_id = $1`, tenantID).Scan(&total); err != nil {
		return nil, 0, err
	}
	rows, err := s.pool.Query(ctx, `SELECT s.id::text, s.tenant_id::text, s.plan_id, s.status, s.started_at, s.ended_at,
		i.id::text, i.plan_id, i.amount_usd::float8, i.currency, i.status, i.period_start, i.period_end, i.created_at
		FROM subscriptions s LEFT JOIN invoices i ON i.id = s.invoice_id
		WHERE s.tenant_id = $1 ORDER BY s.started_at DESC, s.id LIMIT $2 OFFSET $3`, tenantID, limit, offset)
	if err != nil {
		return nil, 0, err
	}
	defer rows.Close()
	var out []Subscription
	for rows.Next() {
		var sub Subscription
		var invID, invPlan, invCur, invStatus *string
		var invAmount *float64
		var invStart, invEnd, invCreated *time.Time
		if err := rows.Scan(&sub.ID, &sub.TenantID, &sub.PlanID, &sub.Status, &sub.StartedAt, &sub.EndedAt,
			&invID, &invPlan, &invAmount, &invCur, &invStatus, &invStart, &invEnd, &invCreated); err != nil {
			return nil, 0, err
		}
		if invID != nil {
			sub.Invoice = &Invoice{ID: *invID, TenantID: sub.TenantID, PlanID: *invPlan, AmountUSD: *invAmount, Currency: *invCur,
				Status: *invStatus, PeriodStart: *invStart, PeriodEnd: *invEnd, CreatedAt: *invCreated}
		}
		out = append(out, sub)
	}
	return out, total, rows.Err()
}

// PlanChange describes a plan activation.
type PlanChange struct {
	TenantID   string
	FromPlanID string // the plan the caller's checks were made against
	To         Plan
	InvoiceID  string // "" when no invoice was recorded
	Actor      Actor
	Now        time.Time
}

// ChangePlan ends the active subscription and starts one on c.To, moves the
// tenant to the plan and caps its log retention at the plan's. It refuses when
// the plan changed since the caller's checks (ErrPlanChanged), when the tenant
// is on c.To already, or when members exceed c.To's max_members.
func (s *Store) ChangePlan(ctx context.Context, c PlanChange) (Subscription, error) {
	sub := Subscription{TenantID: c.TenantID, PlanID: c.To.ID, Status: "active"}
	err := pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		_, cur, err := lockTenant(ctx, tx, c.TenantID)
		if err != nil {
			return err
		}
		if cur.ID == c.To.ID {
			return ErrAlreadyOnPlan
		}
		if cur.ID != c.FromPlanID {
			return ErrPlanChanged
		}
		members, err := countMembers(ctx, tx, c.TenantID)
		if err != nil {
			return err
		}
		if members > c.To.MaxMembers {
			return &LimitError{PlanID: c.To.ID, Exceeded: []LimitExceeded{{Limit: "max_members", Max: c.To.MaxMembers, Current: members}}}
		}
		if _, err := tx.Exec(ctx, `UPDATE subscriptions SET status = 'ended', ended_at = $2 WHERE tenant_id = $1 AND status = 'active'`,
			c.TenantID, c.Now); err != nil {
			return fmt.Errorf("end subscription: %w", err)
		}
		if err := tx.QueryRow(ctx, `INSERT INTO subscriptions (tenant_id, plan_id, status, started_at, invoice_id, created_by)
			VALUES ($1, $2, 'active', $3, $4, $5) RETURNING id::text, started_at`,
			c.TenantID, c.To.ID, c.Now, nullIfEmpty(c.InvoiceID), nullIfEmpty(c.Actor.UserID)).Scan(&sub.ID, &sub.StartedAt); err != nil {
			return fmt.Errorf("insert subscription: %w", err)
		}
		if _, err := tx.Exec(ctx, `UPDATE tenants SET plan_id = $2 WHERE id = $1`, c.TenantID, c.To.ID); err != nil {
			return fmt.Errorf("update tenant plan: %w", err)
		}
		tag, err := tx.Exec(ctx, `UPDATE storage_settings SET retention_days = $2, updated_at = now() WHERE tenant_id = $1 AND retention_days > $2`,
			c.TenantID, c.To.RetentionDays)
		if err != nil {
			return fmt.Errorf("cap retention: %w", err)
		}
		details := map[string]any{"from": cur.ID, "to": c.To.ID, "subscription_id": sub.ID, "retention_capped": tag.RowsAffected() > 0}
		if c.InvoiceID != "" {
			details["invoice_id"] = c.InvoiceID
		}
		return insertAudit(ctx, tx, AuditEntry{Actor: c.Actor, Action: AuditSubscriptionChange, TargetType: "tenant", TargetID: c.TenantID,
			TenantID: c.TenantID, Details: details})
	})
	return sub, err
}

// UpdateStorage replaces a tenant's storage settings with update's result;
// update sees the current settings and plan under the tenant lock and may
// refuse with an error, which is returned as is.
func (s *Store) UpdateStorage(ctx context.Context, tenantID string, actor Actor, update func(cur Storage, plan Plan) (Storage, error)) (Storage, error) {
	var next Storage
	err := pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		_, plan, err := lockTenant(ctx, tx, tenantID)
		if err != nil {
			return err
		}
		var cur Storage
		err = tx.QueryRow(ctx, `SELECT log_request_bodies, log_response_bodies, redact_logged_bodies, retention_days
			FROM storage_settings WHERE tenant_id = $1`, tenantID).Scan(&cur.LogRequestBodies, &cur.LogResponseBodies, &cur.RedactLoggedBodies, &cur.RetentionDays)
		if errors.Is(err, pgx.ErrNoRows) {
			cur = Storage{RedactLoggedBodies: true, RetentionDays: min(7, plan.RetentionDays)}
		} else if err != nil {
			return err
		}
		if next, err = update(cur, plan); err != nil {
			return err
		}
		if _, err := tx.Exec(ctx, `INSERT INTO storage_settings (tenant_id, log_request_bodies, log_response_bodies, redact_logged_bodies, retention_days)
			VALUES ($1, $2, $3, $4, $5) ON CONFLICT (tenant_id) DO UPDATE SET log_request_bodies = EXCLUDED.log_request_bodies,
			log_response_bodies = EXCLUDED.log_response_bodies, redact_logged_bodies = EXCLUDED.redact_logged_bodies,
			retention_days = EXCLUDED.retention_days, updated_at = now()`,
			tenantID, next.LogRequestBodies, next.LogResponseBodies, next.RedactLoggedBodies, next.RetentionDays); err != nil {
			return fmt.Errorf("upsert storage settings: %w", err)
		}
		return insertAudit(ctx, tx, AuditEntry{Actor: actor, Action: AuditStorageUpdate, TargetType: "tenant", TargetID: tenantID, TenantID: tenantID,
			Details: map[string]any{
				"log_request_bodies": next.LogRequestBodies, "log_response_bodies": next.LogResponseBodies,
				"redact_logged_bodies": next.RedactLoggedBodies, "retention_days": next.RetentionDays,
			}})
	})
	return next, err
}
