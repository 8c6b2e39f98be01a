// Package pricesync keeps the gateway's live price table current: the
// shipped table (package pricing) extended by PRICING_FILE, with the
// platform's pricing.overrides global config applied on top. The overrides
// are fetched over gRPC at start, when the platform announces a global
// config change (changefeed calls Trigger) and every CACHE_TTL as a safety
// net. A failed fetch keeps the overrides in force and is retried at the
// next trigger or tick.
package pricesync

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"time"

	platformv1 "trueportai/proto/gen/trueport/platform/v1"
	"trueportai/services/gateway/internal/pricing"
)

// fetchTimeout bounds one fetch of the overrides.
const fetchTimeout = 5 * time.Second

// LoadTable returns the shipped price table, extended by the JSON price
// table at path (PRICING_FILE) when path is set.
func LoadTable(path string) (*pricing.Table, error) {
	t, err := pricing.Default()
	if err != nil || path == "" {
		return t, err
	}
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("PRICING_FILE: %w", err)
	}
	over, err := pricing.Parse(b)
	if err != nil {
		return nil, fmt.Errorf("PRICING_FILE: %w", err)
	}
	return t.WithOverrides(over.Models()), nil
}

// Refresher applies the platform's pricing overrides to a live table.
type Refresher struct {
	live    *pricing.Live
	client  platformv1.ConfigServiceClient
	log     *slog.Logger
	trigger chan struct{}
}

// New returns a Refresher of live reading the overrides from client.
func New(live *pricing.Live, client platformv1.ConfigServiceClient, log *slog.Logger) *Refresher {
	return &Refresher{live: live, client: client, log: log, trigger: make(chan struct{}, 1)}
}

// Refresh fetches the overrides once and applies them (errors are logged:
// the table in force stays).
func (r *Refresher) Refresh(ctx context.Context) {
	ctx, cancel := context.WithTimeout(ctx, fetchTimeout)
	defer cancel()
	resp, err := r.client.GetGatewayConfig(ctx, &platformv1.GetGatewayConfigRequest{})
	if err == nil {
		err = r.live.SetOverrides(resp.GetPricingOverridesJson())
		r.log.Debug("pricing overrides refreshed", "overrides", resp.GetPricingOverridesJson())
	}
	if err != nil {
		r.log.Warn("pricing overrides not refreshed", "err", err)
	}
}

// Trigger asks Run for a refresh soon; it never blocks (triggers that
// arrive while one is pending make one refresh).
func (r *Refresher) Trigger() {
	select {
	case r.trigger <- struct{}{}:
	default:
	}
}

// Run refreshes on every Trigger and every interval until ctx ends.
func (r *Refresher) Run(ctx context.Context, interval time.Duration) {
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		case <-r.trigger:
		}
		r.Refresh(ctx)
	}
}
