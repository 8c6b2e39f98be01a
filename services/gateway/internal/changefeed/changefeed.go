// Package changefeed applies the change events other processes publish on
// NATS to this replica's in-memory state:
//
//   - TenantChanged (platform: plan, status, storage settings, credentials)
//     → the tenant context is fetched again; on proxy replicas the tenant's
//     cached token introspections are dropped too;
//   - TokensRevoked (platform: password change, member removal, …) → the
//     matching cached introspections are dropped;
//   - KeysChanged (gateway replicas: key created, patched, deleted) → that
//     key is reloaded into the key cache;
//   - PoliciesChanged (gateway replicas) → the tenant's policies are
//     reloaded into the snapshot;
//   - GlobalConfigChanged (platform: pricing overrides) → a price refresh is
//     triggered.
//
// Each event is a JSON payload from package events; a payload that does
// not decode, or lacks the id it is about, is ignored. Events are plain NATS
// (at most once): package cachesync's periodic full reload repairs a lost
// one. A handler left nil is not subscribed.
package changefeed

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/nats-io/nats.go"

	"trueportai/services/internal/events"
)

// reloadTimeout bounds the database read behind a key or policy event.
const reloadTimeout = 5 * time.Second

// Handlers are what this process does on each event.
type Handlers struct {
	TenantChanged       func(tenantID string)
	TokensRevoked       func(userID, tenantID string)
	KeyChanged          func(ctx context.Context, keyID string) error
	PoliciesChanged     func(ctx context.Context, tenantID string) error
	GlobalConfigChanged func()
}

// Feed is a set of subscriptions; Close ends them.
type Feed struct{ subs []*nats.Subscription }

// Subscribe subscribes nc to the subjects of the non-nil handlers.
func Subscribe(nc *nats.Conn, subj events.Subjects, h Handlers, log *slog.Logger) (*Feed, error) {
	f := &Feed{}
	add := func(subject string, handle nats.MsgHandler) error {
		s, err := nc.Subscribe(subject, handle)
		if err != nil {
			return fmt.Errorf("subscribe %s: %w", subject, err)
		}
		f.subs = append(f.subs, s)
		return nil
	}
	var errs []error
	if h.TenantChanged != nil {
		errs = append(errs, add(subj.TenantChanged(), func(m *nats.Msg) {
			var ev events.TenantChangedEvent
			if json.Unmarshal(m.Data, &ev) == nil && ev.TenantID != "" {
				h.TenantChanged(ev.TenantID)
			}
		}))
	}
	if h.TokensRevoked != nil {
		errs = append(errs, add(subj.TokensRevoked(), func(m *nats.Msg) {
			var ev events.TokensRevokedEvent
			if json.Unmarshal(m.Data, &ev) == nil {
				h.TokensRevoked(ev.UserID, ev.TenantID)
			}
		}))
	}
	if h.PoliciesChanged != nil {
		errs = append(errs, add(subj.PoliciesChanged(), func(m *nats.Msg) {
			var ev events.PoliciesChangedEvent
			if json.Unmarshal(m.Data, &ev) == nil && ev.TenantID != "" {
				ctx, cancel := context.WithTimeout(context.Background(), reloadTimeout)
				defer cancel()
				if err := h.PoliciesChanged(ctx, ev.TenantID); err != nil {
					log.Warn("policy refresh failed", "tenant_id", ev.TenantID, "err", err)
				}
			}
		}))
	}
	if h.KeyChanged != nil {
		errs = append(errs, add(subj.KeysChanged(), func(m *nats.Msg) {
			var ev events.KeysChangedEvent
			if json.Unmarshal(m.Data, &ev) == nil && ev.KeyID != "" {
				ctx, cancel := context.WithTimeout(context.Background(), reloadTimeout)
				defer cancel()
				if err := h.KeyChanged(ctx, ev.KeyID); err != nil {
					log.Warn("key refresh failed", "key_id", ev.KeyID, "err", err)
				}
			}
		}))
	}
	if h.GlobalConfigChanged != nil {
		errs = append(errs, add(subj.GlobalConfigChanged(), func(*nats.Msg) { h.GlobalConfigChanged() }))
	}
	if err := errors.Join(errs...); err != nil {
		f.Close()
		return nil, err
	}
	return f, nil
}

// Close unsubscribes.
func (f *Feed) Close() {
	for _, s := range f.subs {
		_ = s.Unsubscribe()
	}
}
