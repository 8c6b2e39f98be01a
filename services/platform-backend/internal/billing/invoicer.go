package billing

// The shipped payment implementation: plan activations are recorded as
// invoice-style rows to be settled outside the platform. No card or bank data
// ever passes through it.

import (
	"context"
	"time"
)

// Charge is the price of activating a plan for one period.
type Charge struct {
	TenantID    string
	PlanID      string
	AmountUSD   float64
	PeriodStart time.Time
	PeriodEnd   time.Time
}

// Receipt identifies a recorded charge.
type Receipt struct {
	InvoiceID string
}

// InvoiceStore is where invoices are kept (store.Store).
type InvoiceStore interface {
	CreateInvoice(ctx context.Context, tenantID, planID string, amountUSD float64, start, end time.Time) (Invoice, error)
	VoidInvoice(ctx context.Context, id string) error
}

// Invoicer records an issued invoice per charge.
type Invoicer struct {
	store InvoiceStore
}

// NewInvoicer returns the invoice-only payment implementation.
func NewInvoicer(st InvoiceStore) *Invoicer { return &Invoicer{store: st} }

// Charge records an issued invoice for c.
func (i *Invoicer) Charge(ctx context.Context, c Charge) (Receipt, error) {
	inv, err := i.store.CreateInvoice(ctx, c.TenantID, c.PlanID, c.AmountUSD, c.PeriodStart, c.PeriodEnd)
	if err != nil {
		return Receipt{}, err
	}
	return Receipt{InvoiceID: inv.ID}, nil
}

// Void cancels a recorded charge whose plan change did not happen.
func (i *Invoicer) Void(ctx context.Context, r Receipt) error {
	return i.store.VoidInvoice(ctx, r.InvoiceID)
}
