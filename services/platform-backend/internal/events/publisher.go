// Package events publishes the platform's change events on NATS.
package events

import (
	"context"
	"encoding/json"
	"log/slog"

	"github.com/nats-io/nats.go"

	shared "trueportai/services/internal/events"
)

// Publisher sends change events; failures are logged (consumers also expire
// their caches by TTL, so a lost event delays an update but never leaks one).
type Publisher struct {
	nc   *nats.Conn
	subj shared.Subjects
	log  *slog.Logger
}

// NewPublisher returns a publisher on nc.
func NewPublisher(nc *nats.Conn, subj shared.Subjects, log *slog.Logger) *Publisher {
	return &Publisher{nc: nc, subj: subj, log: log}
}

// TenantChanged announces a change to a tenant's context.
func (p *Publisher) TenantChanged(ctx context.Context, ev shared.TenantChangedEvent) {
	p.publish(ctx, p.subj.TenantChanged(), ev)
}

// TokensRevoked announces revoked tokens.
func (p *Publisher) TokensRevoked(ctx context.Context, ev shared.TokensRevokedEvent) {
	p.publish(ctx, p.subj.TokensRevoked(), ev)
}

// GlobalConfigChanged announces a changed platform-wide setting.
func (p *Publisher) GlobalConfigChanged(ctx context.Context, ev shared.GlobalConfigChangedEvent) {
	p.publish(ctx, p.subj.GlobalConfigChanged(), ev)
}

func (p *Publisher) publish(ctx context.Context, subject string, v any) {
	b, err := json.Marshal(v)
	if err == nil {
		err = p.nc.Publish(subject, b)
	}
	if err != nil {
		p.log.ErrorContext(ctx, "publish event failed", "subject", subject, "err", err)
	}
}
