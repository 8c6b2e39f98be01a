// Package configs owns a tenant's settings: the registry of config keys
// (registry.go: types, defaults, validation, which keys are secret) and the
// log storage settings, whose retention is bounded by the tenant's plan.
//
// Secret values (provider credentials) are sealed before they reach the
// store, bound to their tenant and key (AAD), and only ever shown masked.
// Storage settings change under the tenant's row lock (Store.WithTenantLocked)
// with the plan read in the same transaction, so a concurrent plan downgrade
// cannot leave a retention above the new plan's.
package configs

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"sort"
	"strings"
	"time"

	"trueportai/services/platform-backend/internal/audit"
	"trueportai/services/platform-backend/internal/billing"
	"trueportai/services/platform-backend/internal/secretbox"
)

// Entry is a stored tenant config value: canonical JSON text, or ciphertext
// when Secret.
type Entry struct {
	Key       string
	Value     string
	Secret    bool
	UpdatedAt time.Time
}

// View is a config as clients see it: a secret opened and masked, a key
// never set shown with its default (UpdatedAt nil).
type View struct {
	Key       string
	Value     any
	Secret    bool
	UpdatedAt *time.Time
}

// Storage is a tenant's log storage settings.
type Storage struct {
	LogRequestBodies   bool
	LogResponseBodies  bool
	RedactLoggedBodies bool
	RetentionDays      int64
}

// StoragePatch is a partial update of Storage: nil fields keep their value.
type StoragePatch struct {
	LogRequestBodies   *bool
	LogResponseBodies  *bool
	RedactLoggedBodies *bool
	RetentionDays      *int64
}

// Errors.
var (
	// ErrNotFound: no such tenant.
	ErrNotFound = errors.New("not found")
	// ErrRetentionTooShort: retention_days below 1.
	ErrRetentionTooShort = errors.New("retention_days must be at least 1")
)

// ValueError is a value the key's definition refuses; Reason is meant for
// the client.
type ValueError struct{ Reason string }

func (e *ValueError) Error() string { return e.Reason }

// RetentionLimitError is a retention above the plan's.
type RetentionLimitError struct {
	Days   int64
	Max    int64
	PlanID string
}

func (e *RetentionLimitError) Error() string {
	return fmt.Sprintf("retention_days %d is above the %s plan's limit of %d days", e.Days, e.PlanID, e.Max)
}

// DefaultStorage is the storage settings of a tenant that never set them:
// bodies not logged, redaction on, retention 7 days or the plan's if shorter.
func DefaultStorage(p billing.Plan) Storage {
	return Storage{RedactLoggedBodies: true, RetentionDays: min(7, p.RetentionDays)}
}

// ApplyStorage returns cur updated by patch, refused when the retention is
// below 1 day (ErrRetentionTooShort) or above plan's (*RetentionLimitError).
func ApplyStorage(cur Storage, patch StoragePatch, plan billing.Plan) (Storage, error) {
	next := cur
	for _, f := range []struct {
		src *bool
		dst *bool
	}{{patch.LogRequestBodies, &next.LogRequestBodies}, {patch.LogResponseBodies, &next.LogResponseBodies}, {patch.RedactLoggedBodies, &next.RedactLoggedBodies}} {
		if f.src != nil {
			*f.dst = *f.src
		}
	}
	if patch.RetentionDays != nil {
		next.RetentionDays = *patch.RetentionDays
	}
	if next.RetentionDays < 1 {
		return next, ErrRetentionTooShort
	}
	if next.RetentionDays > plan.RetentionDays {
		return next, &RetentionLimitError{Days: next.RetentionDays, Max: plan.RetentionDays, PlanID: plan.ID}
	}
	return next, nil
}

// AAD binds a sealed config value to its tenant and key (a ciphertext copied
// to another tenant's row does not open).
func AAD(tenantID, key string) string { return tenantID + "/" + key }

// Store is what the settings need from persistence (store.ConfigStore).
type Store interface {
	Configs(ctx context.Context, tenantID string) ([]Entry, error)
	PutConfig(ctx context.Context, tenantID, userID string, e Entry) (Entry, error)
	// WithTenantLocked runs fn in one transaction holding the tenant's row
	// lock; an error from fn rolls it back and is returned as is;
	// ErrNotFound when there is no such tenant.
	WithTenantLocked(ctx context.Context, tenantID string, fn func(Tx) error) error
}

// Tx is a tenant locked by Store.WithTenantLocked.
type Tx interface {
	// Plan is the tenant's plan, read with the lock.
	Plan() billing.Plan
	// Storage reads the stored settings; ok is false when there are none.
	Storage(ctx context.Context) (st Storage, ok bool, err error)
	PutStorage(ctx context.Context, st Storage) error
	Audit(ctx context.Context, e audit.Entry) error
}

// Box seals and opens secret values (*secretbox.Box).
type Box interface {
	Seal(plaintext, aad string) (string, error)
	Open(sealed, aad string) (string, error)
}

// Service reads and writes a tenant's settings.
type Service struct {
	log *slog.Logger
	st  Store
	box Box
	// checkURL refuses URL values the gateway could never send to
	// (egress.Policy.CheckURL); nil accepts every http(s) URL.
	checkURL func(string) error
}

// NewService returns the settings service; checkURL vets URL values
// (tenant base URLs) beyond their syntax, nil for none.
func NewService(log *slog.Logger, st Store, box Box, checkURL func(string) error) *Service {
	return &Service{log: log, st: st, box: box, checkURL: checkURL}
}

// List returns every known key of the tenant: the stored value, else the
// default.
func (s *Service) List(ctx context.Context, tenantID string) ([]View, error) {
	rows, err := s.st.Configs(ctx, tenantID)
	if err != nil {
		return nil, err
	}
	stored := make(map[string]Entry, len(rows))
	for _, r := range rows {
		stored[r.Key] = r
	}
	defs := Defs()
	out := make([]View, 0, len(defs))
	for _, d := range defs {
		if r, ok := stored[d.Key]; ok {
			out = append(out, s.view(tenantID, r))
			continue
		}
		out = append(out, View{Key: d.Key, Value: d.Default, Secret: d.Secret})
	}
	// The tenant's OpenAI-compatible upstreams, in key order.
	var compat []View
	for _, r := range rows {
		if IsCompat(r.Key) {
			compat = append(compat, s.view(tenantID, r))
		}
	}
	sort.Slice(compat, func(i, j int) bool { return compat[i].Key < compat[j].Key })
	return append(out, compat...), nil
}

// Put validates raw against def (*ValueError), seals it when secret and
// stores it.
func (s *Service) Put(ctx context.Context, tenantID string, actor audit.Actor, def Def, raw json.RawMessage) (View, error) {
	val, err := def.Normalize(raw)
	if err != nil {
		return View{}, &ValueError{Reason: err.Error()}
	}
	if def.Type == URL && s.checkURL != nil {
		var u string
		_ = json.Unmarshal([]byte(val), &u)
		if err := s.checkURL(u); err != nil {
			return View{}, &ValueError{Reason: "value is not an allowed destination: " + strings.TrimPrefix(err.Error(), "egress: destination not allowed: ")}
		}
	}
	e := Entry{Key: def.Key, Value: val, Secret: def.Secret}
	if def.Secret {
		if e.Value, err = s.box.Seal(val, AAD(tenantID, def.Key)); err != nil {
			return View{}, err
		}
	}
	if e, err = s.st.PutConfig(ctx, tenantID, actor.UserID, e); err != nil {
		return View{}, err
	}
	return s.view(tenantID, e), nil
}

// view turns a stored entry into its client form: secrets are opened and
// masked ("…" when a stored secret does not open, which is logged).
func (s *Service) view(tenantID string, e Entry) View {
	t := e.UpdatedAt.UTC()
	v := View{Key: e.Key, Secret: e.Secret, UpdatedAt: &t}
	if e.Secret {
		plain, err := s.box.Open(e.Value, AAD(tenantID, e.Key))
		if err != nil {
			s.log.Error("cannot open stored secret", "key", e.Key, "tenant_id", tenantID, "err", err)
			v.Value = "…"
			return v
		}
		v.Value = secretbox.Mask(plain)
		return v
	}
	var x any
	_ = json.Unmarshal([]byte(e.Value), &x)
	v.Value = x
	return v
}

// UpdateStorage applies patch to the tenant's storage settings
// (ApplyStorage against the plan read under the tenant lock) and audits it.
func (s *Service) UpdateStorage(ctx context.Context, tenantID string, actor audit.Actor, patch StoragePatch) (Storage, error) {
	var next Storage
	err := s.st.WithTenantLocked(ctx, tenantID, func(tx Tx) error {
		plan := tx.Plan()
		cur, ok, err := tx.Storage(ctx)
		if err != nil {
			return err
		}
		if !ok {
			cur = DefaultStorage(plan)
		}
		if next, err = ApplyStorage(cur, patch, plan); err != nil {
			return err
		}
		if err := tx.PutStorage(ctx, next); err != nil {
			return err
		}
		return tx.Audit(ctx, audit.Entry{Actor: actor, Action: audit.StorageUpdate, TargetType: "tenant", TargetID: tenantID, TenantID: tenantID,
			Details: map[string]any{
				"log_request_bodies": next.LogRequestBodies, "log_response_bodies": next.LogResponseBodies,
				"redact_logged_bodies": next.RedactLoggedBodies, "retention_days": next.RetentionDays,
			}})
	})
	return next, err
}
