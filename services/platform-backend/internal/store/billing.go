package store

import (
	"context"
	"fmt"
	"time"

	"trueportai/services/platform-backend/internal/billing"
)

// CreateInvoice records an issued invoice and returns it.
func (s *Store) CreateInvoice(ctx context.Context, tenantID, planID string, amountUSD float64, start, end time.Time) (billing.Invoice, error) {
	inv := billing.Invoice{TenantID: tenantID, PlanID: planID, AmountUSD: amountUSD, Currency: "USD", Status: "issued", PeriodStart: start, PeriodEnd: end}
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

var _ billing.InvoiceStore = (*Store)(nil)

// Subscriptions lists a tenant's subscription history, newest first.
func (s *Store) Subscriptions(ctx context.Context, tenantID string, limit, offset int) ([]billing.Subscription, int, error) {
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
	var out []billing.Subscription
	for rows.Next() {
		var sub billing.Subscription
		var invID, invPlan, invCur, invStatus *string
		var invAmount *float64
		var invStart, invEnd, invCreated *time.Time
		if err := rows.Scan(&sub.ID, &sub.TenantID, &sub.PlanID, &sub.Status, &sub.StartedAt, &sub.EndedAt,
			&invID, &invPlan, &invAmount, &invCur, &invStatus, &invStart, &invEnd, &invCreated); err != nil {
			return nil, 0, err
		}
		if invID != nil {
			sub.Invoice = &billing.Invoice{ID: *invID, TenantID: sub.TenantID, PlanID: *invPlan, AmountUSD: *invAmount, Currency: *invCur,
				Status: *invStatus, PeriodStart: *invStart, PeriodEnd: *invEnd, CreatedAt: *invCreated}
		}
		out = append(out, sub)
	}
	return out, total, rows.Err()
}

// BillingStore persists plan changes for package billing.
type BillingStore struct{ s *Store }

// BillingStore returns the billing domain's store.
func (s *Store) BillingStore() BillingStore { return BillingStore{s: s} }

var _ billing.Store = BillingStore{}

// PlanByID reads one plan.
func (bs BillingStore) PlanByID(ctx context.Context, id string) (billing.Plan, error) {
	return bs.s.PlanByID(ctx, id)
}

// Overrides reads a tenant's limit overrides.
func (bs BillingStore) Overrides(ctx context.Context, tenantID string) (billing.Overrides, error) {
	if !validUUID(tenantID) {
		return billing.Overrides{}, nil
	}
	return overrides(ctx, bs.s.pool, tenantID)
}

// MemberCount counts a tenant's members.
func (bs BillingStore) MemberCount(ctx context.Context, tenantID string) (int64, error) {
	return bs.s.MemberCount(ctx, tenantID)
}

// WithTenantLocked runs fn with the tenant locked (billing.Store).
func (bs BillingStore) WithTenantLocked(ctx context.Context, tenantID string, fn func(billing.Tx) error) error {
	return bs.s.withTenantLocked(ctx, tenantID, func(l lockedTx) error { return fn(billingTx{l}) })
}

// billingTx is billing.Tx on a locked tenant.
type billingTx struct{ lockedTx }

var _ billing.Tx = billingTx{}

func (b billingTx) Plan() billing.Plan { return b.tenant.Plan }

func (b billingTx) CountMembers(ctx context.Context) (int64, error) {
	return countMembers(ctx, b.tx, b.tenant.ID)
}

func (b billingTx) StartSubscription(ctx context.Context, ns billing.NewSubscription) (billing.Subscription, error) {
	sub := billing.Subscription{TenantID: b.tenant.ID, PlanID: ns.PlanID, Status: "active"}
	if _, err := b.tx.Exec(ctx, `UPDATE subscriptions SET status = 'ended', ended_at = $2 WHERE tenant_id = $1 AND status = 'active'`,
		b.tenant.ID, ns.Now); err != nil {
		return sub, fmt.Errorf("end subscription: %w", err)
	}
	if err := b.tx.QueryRow(ctx, `INSERT INTO subscriptions (tenant_id, plan_id, status, started_at, invoice_id, created_by)
		VALUES ($1, $2, 'active', $3, $4, $5) RETURNING id::text, started_at`,
		b.tenant.ID, ns.PlanID, ns.Now, nullIfEmpty(ns.InvoiceID), nullIfEmpty(ns.CreatedBy)).Scan(&sub.ID, &sub.StartedAt); err != nil {
		return sub, fmt.Errorf("insert subscription: %w", err)
	}
	if _, err := b.tx.Exec(ctx, `UPDATE tenants SET plan_id = $2 WHERE id = $1`, b.tenant.ID, ns.PlanID); err != nil {
		return sub, fmt.Errorf("update tenant plan: %w", err)
	}
	return sub, nil
}

func (b billingTx) CapRetention(ctx context.Context, days int64) (bool, error) {
	tag, err := b.tx.Exec(ctx, `UPDATE storage_settings SET retention_days = $2, updated_at = now() WHERE tenant_id = $1 AND retention_days > $2`,
		b.tenant.ID, days)
	if err != nil {
		return false, fmt.Errorf("cap retention: %w", err)
	}
	return tag.RowsAffected() > 0, nil
}
