package httpapi

import (
	"encoding/json"
	"errors"
	"net/http"
	"time"

	"github.com/labstack/echo/v4"

	"trueportai/services/internal/apperr"
	"trueportai/services/internal/events"
	"trueportai/services/platform-backend/internal/configreg"
	"trueportai/services/platform-backend/internal/secretbox"
	"trueportai/services/platform-backend/internal/store"
)

type configResp struct {
	Key       string     `json:"key"`
	Value     any        `json:"value"`
	Secret    bool       `json:"secret"`
	UpdatedAt *time.Time `json:"updated_at"`
}

// configAAD binds a ciphertext to its tenant and key.
func configAAD(tenantID, key string) string { return tenantID + "/" + key }

// present turns a stored row into its API form: secrets are opened and masked.
func (a *API) present(tenantID string, row store.ConfigRow) configResp {
	t := row.UpdatedAt.UTC()
	r := configResp{Key: row.Key, Secret: row.Secret, UpdatedAt: &t}
	if row.Secret {
		plain, err := a.box.Open(row.Value, configAAD(tenantID, row.Key))
		if err != nil {
			a.log.Error("cannot open stored secret", "key", row.Key, "tenant_id", tenantID, "err", err)
			r.Value = "…"
			return r
		}
		r.Value = secretbox.Mask(plain)
		return r
	}
	var v any
	_ = json.Unmarshal([]byte(row.Value), &v)
	r.Value = v
	return r
}

func (a *API) listConfigs(c echo.Context) error {
	tid := caller(c).Tenant.ID
	rows, err := a.store.Configs(c.Request().Context(), tid)
	if err != nil {
		return err
	}
	stored := make(map[string]store.ConfigRow, len(rows))
	for _, r := range rows {
		stored[r.Key] = r
	}
	items := []configResp{}
	for _, d := range configreg.Defs() {
		if r, ok := stored[d.Key]; ok {
			items = append(items, a.present(tid, r))
			continue
		}
		items = append(items, configResp{Key: d.Key, Value: d.Default, Secret: d.Secret})
	}
	return c.JSON(http.StatusOK, map[string]any{"items": items})
}

func (a *API) putConfig(c echo.Context) error {
	key := c.Param("key")
	def, ok := configreg.Lookup(key)
	if !ok {
		return apperr.New(apperr.Invalid, "unknown_config_key", "unknown config key "+key).WithDetails(map[string]any{"field": "key"})
	}
	var req struct {
		Value json.RawMessage `json:"value"`
	}
	if err := bind(c, &req); err != nil {
		return err
	}
	val, err := def.Normalize(req.Value)
	if err != nil {
		return apperr.InvalidField("value", err.Error())
	}
	p := caller(c)
	row := store.ConfigRow{Key: key, Value: val, Secret: def.Secret}
	if def.Secret {
		if row.Value, err = a.box.Seal(val, configAAD(p.Tenant.ID, key)); err != nil {
			return err
		}
	}
	row, err = a.store.PutConfig(c.Request().Context(), p.Tenant.ID, p.User.ID, row)
	if err != nil {
		return err
	}
	a.pub.TenantChanged(c.Request().Context(), events.TenantChangedEvent{TenantID: p.Tenant.ID, Reason: "config"})
	return c.JSON(http.StatusOK, a.present(p.Tenant.ID, row))
}

func (a *API) getStorage(c echo.Context) error {
	st, err := a.store.StorageSettings(c.Request().Context(), caller(c).Tenant.ID)
	if errors.Is(err, store.ErrNotFound) {
		return apperr.New(apperr.NotFound, "not_found", "no storage settings")
	}
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, map[string]any{
		"log_request_bodies": st.LogRequestBodies, "log_response_bodies": st.LogResponseBodies,
		"redact_logged_bodies": st.RedactLoggedBodies, "retention_days": st.RetentionDays,
	})
}
