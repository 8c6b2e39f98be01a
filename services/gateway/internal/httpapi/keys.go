package httpapi

import (
	"encoding/json"
	"errors"
	"net/http"
	"reflect"
	"strings"
	"time"

	"github.com/google/uuid"
	"github.com/labstack/echo/v4"

	"trueportai/services/gateway/internal/keys"
	"trueportai/services/gateway/internal/platform"
	"trueportai/services/internal/apperr"
	"trueportai/services/internal/events"
	"trueportai/services/internal/httpserver"
)

type keyResp struct {
	ID            string     `json:"id"`
	Name          string     `json:"name"`
	Key           string     `json:"key,omitempty"`
	Prefix        string     `json:"prefix"`
	Env           string     `json:"env"`
	Enabled       bool       `json:"enabled"`
	RPMLimit      *int       `json:"rpm_limit"` // null: the plan's maximum
	AllowedModels []string   `json:"allowed_models"`
	ExpiresAt     *time.Time `json:"expires_at"`
	LastUsedAt    *time.Time `json:"last_used_at"`
	CreatedBy     string     `json:"created_by"`
	CreatedAt     time.Time  `json:"created_at"`
}

func toKeyResp(k *keys.Key) keyResp {
	utc := func(t *time.Time) *time.Time {
		if t == nil {
			return nil
		}
		u := t.UTC()
		return &u
	}
	var rpm *int
	if k.RPMLimit > 0 {
		rpm = &k.RPMLimit
	}
	return keyResp{ID: k.ID, Name: k.Name, Prefix: k.Prefix, Env: k.Env, Enabled: k.Enabled, RPMLimit: rpm,
		AllowedModels: k.AllowedModels, ExpiresAt: utc(k.ExpiresAt), LastUsedAt: utc(k.LastUsedAt), CreatedBy: k.CreatedBy, CreatedAt: k.CreatedAt.UTC()}
}

func validName(s string) (string, error) {
	s = strings.TrimSpace(s)
	if s == "" || len(s) > 100 {
		return "", apperr.InvalidField("name", "name must be 1 to 100 characters")
	}
	return s, nil
}

func validModels(l []string) ([]string, error) {
	if len(l) > 200 {
		return nil, apperr.InvalidField("allowed_models", "allowed_models may list at most 200 models")
	}
	out := make([]string, 0, len(l))
	for _, m := range l {
		m = strings.TrimSpace(m)
		if m == "" || len(m) > 200 {
			return nil, apperr.InvalidField("allowed_models", "allowed_models entries must be 1 to 200 characters")
		}
		out = append(out, m)
	}
	return out, nil
}

// maxKeyRPM bounds rpm_limit when the plan has no maximum.
const maxKeyRPM = 100_000_000

// rpmBounds validates a key's rpm_limit as sent: left out (set false) → the
// tenant's default (gateway.default_rpm, else 60, at most the plan's
// maximum); null → 0, the plan's maximum, whatever it is when the request
// comes (no limit on a plan without one); else 1 … the plan's maximum.
func (a *API) rpmBounds(c echo.Context, tenantID string, rpm optInt) (int, error) {
	tn, err := a.plan(c, tenantID)
	if err != nil {
		return 0, err
	}
	max := int(tn.MaxRPMPerKey)
	switch {
	case !rpm.set:
		def := int(tn.DefaultRPM)
		if def <= 0 {
			def = 60
		}
		if max > 0 && def > max {
			def = max
		}
		return def, nil
	case rpm.null:
		return 0, nil
	}
	if max <= 0 {
		if rpm.v < 1 || rpm.v > maxKeyRPM {
			return 0, apperr.InvalidField("rpm_limit", "rpm_limit must be between 1 and "+itoa(maxKeyRPM)+", or null for the plan's maximum (the plan has none)")
		}
		return rpm.v, nil
	}
	if rpm.v < 1 || rpm.v > max {
		return 0, apperr.InvalidField("rpm_limit", "rpm_limit must be between 1 and the plan's maximum of "+itoa(max)+", or null for that maximum")
	}
	return rpm.v, nil
}

// optInt is a JSON integer field that may be left out, null or a number.
type optInt struct {
	set, null bool
	v         int
}

func (o *optInt) UnmarshalJSON(b []byte) error {
	o.set = true
	if string(b) == "null" {
		o.null = true
		return nil
	}
	if err := json.Unmarshal(b, &o.v); err != nil {
		return &json.UnmarshalTypeError{Value: string(b), Type: reflect.TypeFor[int](), Field: "rpm_limit"}
	}
	return nil
}

// plan loads the tenant's current context (plan limits) from the platform.
func (a *API) plan(c echo.Context, tenantID string) (*platform.Tenant, error) {
	tn, err := a.tenants.Fetch(c.Request().Context(), tenantID)
	if err != nil {
		return nil, apperr.Wrap(apperr.Unavailable, "platform_unavailable", "cannot load the organisation's plan from the platform", err)
	}
	return tn, nil
}

func itoa(n int) string { b, _ := json.Marshal(n); return string(b) }

func (a *API) createKey(c echo.Context) error {
	var req struct {
		Name          string     `json:"name"`
		RPMLimit      optInt     `json:"rpm_limit"`
		AllowedModels []string   `json:"allowed_models"`
		ExpiresAt     *time.Time `json:"expires_at"`
	}
	if err := bind(c, &req); err != nil {
		return err
	}
	name, err := validName(req.Name)
	if err != nil {
		return err
	}
	models, err := validModels(req.AllowedModels)
	if err != nil {
		return err
	}
	if req.ExpiresAt != nil && !req.ExpiresAt.After(time.Now()) {
		return apperr.InvalidField("expires_at", "expires_at must be in the future")
	}
	p := caller(c)
	rpm, err := a.rpmBounds(c, p.TenantID, req.RPMLimit)
	if err != nil {
		return err
	}
	tn, _ := a.tenants.Get(p.TenantID) // fetched by rpmBounds
	if tn != nil && tn.MaxAPIKeys > 0 {
		n, err := a.keys.Count(c.Request().Context(), p.TenantID)
		if err != nil {
			return err
		}
		if n >= tn.MaxAPIKeys {
			return apperr.New(apperr.Conflict, "plan_limit_exceeded", "the "+tn.PlanID+" plan allows "+itoa(int(tn.MaxAPIKeys))+" API keys; delete one or upgrade the plan").
				WithDetails(map[string]any{"limit": "max_api_keys", "max": tn.MaxAPIKeys})
		}
	}
	secret, prefix, hash, err := keys.Generate()
	if err != nil {
		return err
	}
	k, err := a.keys.Create(c.Request().Context(), &keys.Key{
		TenantID: p.TenantID, Env: p.Env, Name: name, Prefix: prefix, Hash: hash, Enabled: true,
		RPMLimit: rpm, AllowedModels: models, ExpiresAt: req.ExpiresAt, CreatedBy: p.UserID,
	})
	if err != nil {
		return err
	}
	a.cache.Put(k)
	a.ev.KeyChanged(c.Request().Context(), events.KeysChangedEvent{KeyID: k.ID, TenantID: k.TenantID})
	resp := toKeyResp(k)
	resp.Key = secret
	return c.JSON(http.StatusCreated, resp)
}

func (a *API) listKeys(c echo.Context) error {
	page, err := httpserver.ParsePage(c)
	if err != nil {
		return err
	}
	p := caller(c)
	ks, total, err := a.keys.List(c.Request().Context(), p.TenantID, p.Env, page.Limit, page.Offset)
	if err != nil {
		return err
	}
	items := make([]keyResp, 0, len(ks))
	for _, k := range ks {
		items = append(items, toKeyResp(k))
	}
	return c.JSON(http.StatusOK, httpserver.NewList(items, total, page))
}

func keyID(c echo.Context) (string, error) {
	id := c.Param("id")
	if _, err := uuid.Parse(id); err != nil {
		return "", apperr.New(apperr.NotFound, "key_not_found", "no such API key")
	}
	return id, nil
}

func (a *API) updateKey(c echo.Context) error {
	id, err := keyID(c)
	if err != nil {
		return err
	}
	var req struct {
		Name          *string         `json:"name"`
		Enabled       *bool           `json:"enabled"`
		RPMLimit      optInt          `json:"rpm_limit"`
		AllowedModels *[]string       `json:"allowed_models"`
		ExpiresAt     json.RawMessage `json:"expires_at"`
	}
	if err := bind(c, &req); err != nil {
		return err
	}
	p := caller(c)
	ctx := c.Request().Context()
	k, err := a.keys.Get(ctx, p.TenantID, p.Env, id)
	if errors.Is(err, keys.ErrNotFound) {
		return apperr.New(apperr.NotFound, "key_not_found", "no such API key")
	}
	if err != nil {
		return err
	}
	upd := *k
	if req.Name != nil {
		if upd.Name, err = validName(*req.Name); err != nil {
			return err
		}
	}
	if req.Enabled != nil {
		upd.Enabled = *req.Enabled
	}
	if req.RPMLimit.set {
		if upd.RPMLimit, err = a.rpmBounds(c, p.TenantID, req.RPMLimit); err != nil {
			return err
		}
	}
	if req.AllowedModels != nil {
		if upd.AllowedModels, err = validModels(*req.AllowedModels); err != nil {
			return err
		}
	}
	if len(req.ExpiresAt) > 0 {
		if string(req.ExpiresAt) == "null" {
			upd.ExpiresAt = nil
		} else {
			var t time.Time
			if err := json.Unmarshal(req.ExpiresAt, &t); err != nil {
				return apperr.InvalidField("expires_at", "expires_at must be an RFC 3339 time or null")
			}
			upd.ExpiresAt = &t
		}
	}
	nk, err := a.keys.Update(ctx, &upd)
	if errors.Is(err, keys.ErrNotFound) {
		return apperr.New(apperr.NotFound, "key_not_found", "no such API key")
	}
	if err != nil {
		return err
	}
	a.cache.Put(nk)
	a.ev.KeyChanged(ctx, events.KeysChangedEvent{KeyID: nk.ID, TenantID: nk.TenantID})
	return c.JSON(http.StatusOK, toKeyResp(nk))
}

func (a *API) deleteKey(c echo.Context) error {
	id, err := keyID(c)
	if err != nil {
		return err
	}
	p := caller(c)
	err = a.keys.Delete(c.Request().Context(), p.TenantID, p.Env, id)
	if errors.Is(err, keys.ErrNotFound) {
		return apperr.New(apperr.NotFound, "key_not_found", "no such API key")
	}
	if err != nil {
		return err
	}
	a.cache.Remove(id)
	a.ev.KeyChanged(c.Request().Context(), events.KeysChangedEvent{KeyID: id, TenantID: p.TenantID})
	return c.NoContent(http.StatusNoContent)
}
