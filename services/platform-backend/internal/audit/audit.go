// Package audit names what the platform records in its audit log: who acted
// (Actor), what they did (the action strings clients filter on) and to what
// (Entry). The domain packages decide which entry a change writes; the store
// writes it in the change's own transaction.
package audit

// Actor is who performs a change.
type Actor struct {
	UserID string
	Email  string
}

// Entry is one audit log row to write.
type Entry struct {
	Actor      Actor
	Action     string
	TargetType string
	TargetID   string
	TenantID   string // "" when the action is not about one tenant
	Details    map[string]any
}

// Actions (stable strings: clients filter on them).
const (
	MemberRemove       = "member.remove"
	MemberLeave        = "member.leave"
	MemberRoleChange   = "member.role_change"
	InviteCreate       = "invite.create"
	InviteRevoke       = "invite.revoke"
	InviteAccept       = "invite.accept"
	SubscriptionChange = "subscription.activate"
	StorageUpdate      = "storage.update"
	TenantStatus       = "tenant.status_change"
	GlobalConfigUpdate = "global_config.update"
	TenantLimits       = "tenant.limits_update"
	PlanCreate         = "plan.create"
)
