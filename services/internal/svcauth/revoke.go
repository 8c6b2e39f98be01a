package svcauth

import (
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/nats-io/nats.go"

	"trueportai/services/internal/events"
)

// PublishRevocation announces a revoked instance or key of a service and
// waits until NATS has it (an admin command: the operator must know
// whether the validators heard it).
func PublishRevocation(nc *nats.Conn, subj events.Subjects, ev events.ServiceRevokedEvent) error {
	if ev.Issuer == "" || ev.Instance == "" && ev.KeyID == "" {
		return errors.New("a revocation names an issuer and an instance or a key")
	}
	b, err := json.Marshal(ev)
	if err != nil {
		return err
	}
	if err := nc.Publish(subj.ServiceRevoked(), b); err != nil {
		return fmt.Errorf("publish revocation: %w", err)
	}
	return nc.FlushTimeout(5 * time.Second)
}

// SubscribeRevocations applies every revocation event to v until the
// subscription is drained.
func SubscribeRevocations(nc *nats.Conn, subj events.Subjects, v *Verifier, log *slog.Logger) (*nats.Subscription, error) {
	sub, err := nc.Subscribe(subj.ServiceRevoked(), func(m *nats.Msg) {
		var ev events.ServiceRevokedEvent
		if err := json.Unmarshal(m.Data, &ev); err != nil || ev.Issuer == "" {
			log.Warn("bad service revocation event", "err", err)
			return
		}
		v.Revoke(ev.Issuer, ev.Instance, ev.KeyID)
		log.Info("service identity revoked", "issuer", ev.Issuer, "instance", ev.Instance, "kid", ev.KeyID)
	})
	if err != nil {
		return nil, fmt.Errorf("subscribe %s: %w", subj.ServiceRevoked(), err)
	}
	return sub, nil
}
