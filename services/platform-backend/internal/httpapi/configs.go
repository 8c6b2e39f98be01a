package httpapi

import (
	"encoding/json"
	"errors"
	"net/http"
	"time"

	"github.com/labstack/echo/v4"

	"trueportai/services/internal/apperr"
	"trueportai/services/internal/events"
	"trueportai/services/platform-backend/internal/configs"
	"trueportai/services/platform-backend/internal/store"
)

type configResp struct {
	Key       string     `json:"key"`
	Value     any        `json:"value"`
	Secret    bool       `json:"secret"`
	UpdatedAt *time.Time `json:"updated_at"`
}

func toConfigResp(v configs.View) configResp {
	return configResp{Key: v.Key, Value: v.Value, Secret: v.Secret, UpdatedAt: v.UpdatedAt}
}

func (a *API) listConfigs(c echo.Context) error {
	views, err := a.configs.List(c.Request().Context(), caller(c).Tenant.ID)
	if err != nil {
		return err
	}
	items := make([]configResp, 0, len(views))
	for _, v := range views {
		items = append(items, toConfigResp(v))
	}
	return c.JSON(http.StatusOK, map[string]any{"items": items})
}

func (a *API) putConfig(c echo.Context) error {
	key := c.Param("key")
	def, ok := configs.Lookup(key)
	if !ok {
		return apperr.New(apperr.Invalid, "unknown_config_key", "unknown config key "+key).WithDetails(map[string]any{"field": "key"})
	}
	var req struct {
		Value json.RawMessage `json:"value"`
	}
	if err := bind(c, &req); err != nil {
		return err
	}
	p := caller(c)
	ctx := c.Request().Context()
	v, err := a.configs.Put(ctx, p.Tenant.ID, actorOf(p), def, req.Value)
	var ve *configs.ValueError
	if errors.As(err, &ve) {
		return apperr.InvalidField("value", ve.Reason)
	}
	if err != nil {
		return err
	}
	a.pub.TenantChanged(ctx, events.TenantChangedEvent{TenantID: p.Tenant.ID, Reason: "config"})
	return c.JSON(http.StatusOK, toConfigResp(v))
}

func (a *API) getStorage(c echo.Context) error {
	st, err := a.store.StorageSettings(c.Request().Context(), caller(c).Tenant.ID)
	if errors.Is(err, store.ErrNotFound) {
		return apperr.New(apperr.NotFound, "not_found", "no storage settings")
	}
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, storageJSON(st))
}
