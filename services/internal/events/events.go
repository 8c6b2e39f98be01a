// Package events names the NATS subjects and JSON payloads the two services
// exchange, and publishes the change events (Publisher). Change events are
// plain NATS (caches refetch on receipt and also expire by TTL, so a lost
// event only delays an update); usage events go through JetStream (see the
// gateway's usage package, which has its own publisher).
package events

import "strings"

// Subjects derives every subject and stream name from one prefix so parallel
// test runs on one NATS server never see each other's traffic.
type Subjects struct{ Prefix string }

// TenantChanged: a tenant's status, plan, configs or storage settings changed.
func (s Subjects) TenantChanged() string { return s.Prefix + ".platform.tenant.changed" }

// TokensRevoked: tokens of a user (or of a whole tenant) must be dropped from caches.
func (s Subjects) TokensRevoked() string { return s.Prefix + ".platform.tokens.revoked" }

// GlobalConfigChanged: a platform-wide setting the gateway applies changed.
func (s Subjects) GlobalConfigChanged() string { return s.Prefix + ".platform.global.changed" }

// KeysChanged: a gateway replica changed an API key; others reload it.
func (s Subjects) KeysChanged() string { return s.Prefix + ".gateway.keys.changed" }

// PoliciesChanged: a gateway replica changed a tenant's policy rules.
func (s Subjects) PoliciesChanged() string { return s.Prefix + ".gateway.policies.changed" }

// ServiceRevoked: an instance or a key of a service's identity was revoked
// (admin command); every validator of that service's tokens refuses them.
func (s Subjects) ServiceRevoked() string { return s.Prefix + ".svcauth.revoked" }

// Usage is the subject usage events are published on.
func (s Subjects) Usage() string { return s.Prefix + ".usage.events" }

// UsageStream is the JetStream stream holding usage events.
func (s Subjects) UsageStream() string {
	return strings.ToUpper(strings.NewReplacer(".", "_", "-", "_").Replace(s.Prefix)) + "_USAGE"
}

// TenantChangedEvent is the payload of TenantChanged.
type TenantChangedEvent struct {
	TenantID string `json:"tenant_id"`
	Reason   string `json:"reason"`
}

// GlobalConfigChangedEvent is the payload of GlobalConfigChanged.
type GlobalConfigChangedEvent struct {
	Key string `json:"key"`
}

// TokensRevokedEvent is the payload of TokensRevoked; an empty field matches all.
type TokensRevokedEvent struct {
	UserID   string `json:"user_id,omitempty"`
	TenantID string `json:"tenant_id,omitempty"`
	Reason   string `json:"reason"`
}

// ServiceRevokedEvent is the payload of ServiceRevoked: Issuer is the
// service whose tokens are concerned; Instance (sub) and/or KeyID (kid)
// name what is refused.
type ServiceRevokedEvent struct {
	Issuer   string `json:"issuer"`
	Instance string `json:"instance,omitempty"`
	KeyID    string `json:"key_id,omitempty"`
}

// PoliciesChangedEvent is the payload of PoliciesChanged.
type PoliciesChangedEvent struct {
	TenantID string `json:"tenant_id"`
}

// KeysChangedEvent is the payload of KeysChanged.
type KeysChangedEvent struct {
	KeyID    string `json:"key_id"`
	TenantID string `json:"tenant_id"`
}
