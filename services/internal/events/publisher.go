package events

import (
	"context"
	"encoding/json"
	"log/slog"

	"github.com/nats-io/nats.go"
)

// Publisher sends the change events of both services on plain NATS. A
// failure is logged, never returned: consumers also expire their caches by
// TTL, so a lost event delays an update but never leaks one. Each service
// calls the methods of its own events; consumers declare the ones they use.
type Publisher struct {
	nc   *nats.Conn
	subj Subjects
	log  *slog.Logger
}

// NewPublisher returns a publisher on nc for subj's subjects.
func NewPublisher(nc *nats.Conn, subj Subjects, log *slog.Logger) *Publisher {
	return &Publisher{nc: nc, subj: subj, log: log}
}

// TenantChanged announces a change to a tenant's context (platform).
func (p *Publisher) TenantChanged(ctx context.Context, ev TenantChangedEvent) {
	p.publish(ctx, p.subj.TenantChanged(), ev)
}

// TokensRevoked announces revoked tokens (platform).
func (p *Publisher) TokensRevoked(ctx context.Context, ev TokensRevokedEvent) {
	p.publish(ctx, p.subj.TokensRevoked(), ev)
}

// GlobalConfigChanged announces a changed platform-wide setting (platform).
func (p *Publisher) GlobalConfigChanged(ctx context.Context, ev GlobalConfigChangedEvent) {
	p.publish(ctx, p.subj.GlobalConfigChanged(), ev)
}

// KeyChanged announces a created, updated or deleted API key (gateway).
func (p *Publisher) KeyChanged(ctx context.Context, ev KeysChangedEvent) {
	p.publish(ctx, p.subj.KeysChanged(), ev)
}

// PoliciesChanged announces changed policy rules of a tenant (gateway).
func (p *Publisher) PoliciesChanged(ctx context.Context, ev PoliciesChangedEvent) {
	p.publish(ctx, p.subj.PoliciesChanged(), ev)
}

func (p *Publisher) publish(ctx context.Context, subject string, v any) {
	b, err := json.Marshal(v)
	if err == nil {
		err = p.nc.Publish(subject, b)
	}
	if err != nil {
		p.log.ErrorContext(ctx, "publish change event failed", "subject", subject, "err", err)
	}
}
