package httpapi

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/labstack/echo/v4"

	"trueportai/services/internal/apperr"
	"trueportai/services/internal/events"
	"trueportai/services/internal/httpserver"
	"trueportai/services/platform-backend/internal/billing"
	"trueportai/services/platform-backend/internal/globalreg"
	"trueportai/services/platform-backend/internal/store"
)

type globalConfigResp struct {
	Key         string     `json:"key"`
	Type        string     `json:"type"`
	Value       any        `json:"value"`
	Default     any        `json:"default"`
	Description string     `json:"description"`
	UpdatedAt   *time.Time `json:"updated_at"`
}

func toGlobalConfigResp(d globalreg.Def, row *store.GlobalConfigRow) globalConfigResp {
	r := globalConfigResp{Key: d.Key, Type: string(d.Type), Value: d.Default, Default: d.Default, Description: d.Description}
	if row != nil {
		var v any
		if err := json.Unmarshal([]byte(row.Value), &v); err == nil {
			r.Value = v
		}
		t := row.UpdatedAt.UTC()
		r.UpdatedAt = &t
	}
	return r
}

func (a *API) adminListConfigs(c echo.Context) error {
	rows, err := a.store.GlobalConfigs(c.Request().Context())
	if err != nil {
		return err
	}
	stored := make(map[string]*store.GlobalConfigRow, len(rows))
	for i := range rows {
		stored[rows[i].Key] = &rows[i]
	}
	defs := globalreg.Defs()
	items := make([]globalConfigResp, 0, len(defs))
	for _, d := range defs {
		items = append(items, toGlobalConfigResp(d, stored[d.Key]))
	}
	return c.JSON(http.StatusOK, httpserver.NewList(items, len(items), httpserver.Page{Limit: len(items)}))
}

func (a *API) adminPutConfig(c echo.Context) error {
	key := c.Param("key")
	def, ok := globalreg.Lookup(key)
	if !ok {
		return apperr.New(apperr.Invalid, "unknown_config_key", "unknown global config key "+key).WithDetails(map[string]any{"field": "key"})
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
	ctx := c.Request().Context()
	if def.Type == globalreg.PlanID {
		var id string
		_ = json.Unmarshal([]byte(val), &id)
		if p, err := a.store.PlanByID(ctx, id); errors.Is(err, store.ErrNotFound) || err == nil && p.OfferedTo != "" {
			// A custom plan offered to one tenant is no default for all.
			return apperr.InvalidField("value", "unknown plan "+id+"; see GET /platform/api/service/catalog/plans")
		} else if err != nil {
			return err
		}
	}
	row, err := a.store.PutGlobalConfig(ctx, key, val, actorOf(caller(c)))
	if err != nil {
		return err
	}
	a.log.InfoContext(ctx, "global config updated", "key", key)
	a.pub.GlobalConfigChanged(ctx, events.GlobalConfigChangedEvent{Key: key})
	return c.JSON(http.StatusOK, toGlobalConfigResp(def, &row))
}

// globalValue decodes a global config into dst: the stored value, else the
// registry default.
func (a *API) globalValue(ctx context.Context, key string, dst any) error {
	row, err := a.store.GlobalConfig(ctx, key)
	if errors.Is(err, store.ErrNotFound) {
		def, _ := globalreg.Lookup(key)
		b, err := json.Marshal(def.Default)
		if err != nil {
			return err
		}
		return json.Unmarshal(b, dst)
	}
	if err != nil {
		return err
	}
	return json.Unmarshal([]byte(row.Value), dst)
}

// defaultPlan is the plan new tenants start on (global config default_plan;
// "free" when that plan no longer exists).
func (a *API) defaultPlan(ctx context.Context) (billing.Plan, error) {
	var id string
	if err := a.globalValue(ctx, globalreg.DefaultPlan, &id); err != nil {
		return billing.Plan{}, err
	}
	p, err := a.store.PlanByID(ctx, id)
	if errors.Is(err, store.ErrNotFound) {
		a.log.WarnContext(ctx, "default_plan names an unknown plan; using free", "plan_id", id)
		return a.store.PlanByID(ctx, "free")
	}
	return p, err
}

// signupOpen guards register: while signup.enabled is false only addresses
// with an open invite and those in PLATFORM_ADMIN_EMAILS may register.
func (a *API) signupOpen(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		ctx := c.Request().Context()
		var enabled bool
		if err := a.globalValue(ctx, globalreg.SignupEnabled, &enabled); err != nil {
			return err
		}
		if enabled {
			return next(c)
		}
		// Peek at the email and hand the body on unchanged (register
		// enforces the size limit and content type itself).
		body, err := io.ReadAll(io.LimitReader(c.Request().Body, bodyLimit+1))
		if err != nil {
			return apperr.New(apperr.Invalid, "invalid_body", "could not read request body")
		}
		c.Request().Body = io.NopCloser(bytes.NewReader(body))
		var req struct {
			Email string `json:"email"`
		}
		_ = json.Unmarshal(body, &req)
		if email := strings.ToLower(strings.TrimSpace(req.Email)); email != "" {
			if slices.Contains(a.cfg.PlatformAdminEmails, email) {
				return next(c)
			}
			invited, err := a.store.HasOpenInvite(ctx, email, a.now())
			if err != nil {
				return err
			}
			if invited {
				return next(c)
			}
		}
		return apperr.New(apperr.Forbidden, "signup_disabled", "sign-up is disabled; ask an organisation admin to invite you")
	}
}
