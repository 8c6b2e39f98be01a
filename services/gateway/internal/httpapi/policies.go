package httpapi

import (
	"encoding/json"
	"errors"
	"net/http"
	"strings"
	"time"

	"github.com/google/uuid"
	"github.com/labstack/echo/v4"

	"trueportai/services/gateway/internal/policy"
	"trueportai/services/gateway/internal/policystore"
	"trueportai/services/internal/apperr"
	"trueportai/services/internal/events"
	"trueportai/services/internal/httpserver"
)

type policyResp struct {
	ID          string          `json:"id"`
	Name        string          `json:"name"`
	Description string          `json:"description"`
	Type        string          `json:"type"`
	Config      json.RawMessage `json:"config"`
	Action      string          `json:"action"`
	Enabled     bool            `json:"enabled"`
	Priority    int             `json:"priority"`
	Mode        string          `json:"mode"`
	Scope       policy.Scope    `json:"scope"`
	Direction   string          `json:"direction"`
	Env         string          `json:"env"`
	CreatedBy   string          `json:"created_by"`
	CreatedAt   time.Time       `json:"created_at"`
	UpdatedAt   time.Time       `json:"updated_at"`
}

func toPolicyResp(r *policystore.Row) policyResp {
	sc := r.Scope
	for _, l := range []*[]string{&sc.Envs, &sc.Providers, &sc.Models, &sc.KeyIDs} {
		if *l == nil {
			*l = []string{}
		}
	}
	return policyResp{ID: r.ID, Name: r.Name, Description: r.Description, Type: r.Type, Config: r.Config, Action: r.Action, Enabled: r.Enabled,
		Priority: r.Priority, Mode: r.Mode, Scope: sc, Direction: r.Direction, Env: r.Env, CreatedBy: r.CreatedBy,
		CreatedAt: r.CreatedAt.UTC(), UpdatedAt: r.UpdatedAt.UTC()}
}

type policyReq struct {
	Name        string          `json:"name"`
	Description string          `json:"description"`
	Type        string          `json:"type"`
	Config      json.RawMessage `json:"config"`
	Action      string          `json:"action"`
	Enabled     *bool           `json:"enabled"`
	Priority    *int            `json:"priority"`
	Mode        string          `json:"mode"`
	Scope       *policy.Scope   `json:"scope"`
	Direction   string          `json:"direction"`
}

// toRule applies defaults and validates (400 naming the field).
func (req policyReq) toRule(providers []string) (policy.Rule, error) {
	r := policy.Rule{Name: strings.TrimSpace(req.Name), Description: strings.TrimSpace(req.Description), Type: req.Type, Config: req.Config,
		Action: req.Action, Enabled: true, Mode: req.Mode, Direction: req.Direction}
	if r.Name == "" || len(r.Name) > 100 {
		return r, apperr.InvalidField("name", "name must be 1 to 100 characters")
	}
	if len(r.Description) > 1000 {
		return r, apperr.InvalidField("description", "description must be at most 1000 characters")
	}
	if req.Enabled != nil {
		r.Enabled = *req.Enabled
	}
	if req.Priority != nil {
		r.Priority = *req.Priority
	}
	if req.Scope != nil {
		r.Scope = *req.Scope
	}
	if r.Mode == "" {
		r.Mode = policy.ModeEnforce
	}
	if r.Direction == "" {
		r.Direction = policy.DirectionRequest
	}
	if len(r.Config) == 0 || string(r.Config) == "null" {
		r.Config = json.RawMessage(`{}`)
	}
	if err := policy.Validate(r, providers); err != nil {
		var fe *policy.FieldError
		if errors.As(err, &fe) {
			return r, apperr.New(apperr.Invalid, "invalid_policy", fe.Field+": "+fe.Message).WithDetails(map[string]any{"field": fe.Field})
		}
		return r, apperr.New(apperr.Invalid, "invalid_policy", err.Error())
	}
	return r, nil
}

func policyID(c echo.Context) (string, error) {
	id := c.Param("id")
	if _, err := uuid.Parse(id); err != nil {
		return "", apperr.New(apperr.NotFound, "policy_not_found", "no such policy")
	}
	return id, nil
}

func (a *API) listPolicies(c echo.Context) error {
	page, err := httpserver.ParsePage(c)
	if err != nil {
		return err
	}
	p := caller(c)
	rows, total, err := a.policies.List(c.Request().Context(), p.TenantID, p.Env, page.Limit, page.Offset)
	if err != nil {
		return err
	}
	items := make([]policyResp, 0, len(rows))
	for _, r := range rows {
		items = append(items, toPolicyResp(r))
	}
	return c.JSON(http.StatusOK, httpserver.NewList(items, total, page))
}

func (a *API) getPolicy(c echo.Context) error {
	id, err := policyID(c)
	if err != nil {
		return err
	}
	p := caller(c)
	r, err := a.policies.Get(c.Request().Context(), p.TenantID, p.Env, id)
	if errors.Is(err, policystore.ErrNotFound) {
		return apperr.New(apperr.NotFound, "policy_not_found", "no such policy")
	}
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, toPolicyResp(r))
}

func (a *API) createPolicy(c echo.Context) error {
	var req policyReq
	if err := bind(c, &req); err != nil {
		return err
	}
	rule, err := req.toRule(a.providers)
	if err != nil {
		return err
	}
	p := caller(c)
	r, err := a.policies.Create(c.Request().Context(), &policystore.Row{Rule: rule, TenantID: p.TenantID, Env: p.Env, CreatedBy: p.UserID})
	if err != nil {
		return err
	}
	a.policiesChanged(c, p.TenantID)
	return c.JSON(http.StatusCreated, toPolicyResp(r))
}

func (a *API) updatePolicy(c echo.Context) error {
	id, err := policyID(c)
	if err != nil {
		return err
	}
	var req policyReq
	if err := bind(c, &req); err != nil {
		return err
	}
	rule, err := req.toRule(a.providers)
	if err != nil {
		return err
	}
	rule.ID = id
	p := caller(c)
	r, err := a.policies.Update(c.Request().Context(), &policystore.Row{Rule: rule, TenantID: p.TenantID, Env: p.Env})
	if errors.Is(err, policystore.ErrNotFound) {
		return apperr.New(apperr.NotFound, "policy_not_found", "no such policy")
	}
	if err != nil {
		return err
	}
	a.policiesChanged(c, p.TenantID)
	return c.JSON(http.StatusOK, toPolicyResp(r))
}

func (a *API) deletePolicy(c echo.Context) error {
	id, err := policyID(c)
	if err != nil {
		return err
	}
	p := caller(c)
	err = a.policies.Delete(c.Request().Context(), p.TenantID, p.Env, id)
	if errors.Is(err, policystore.ErrNotFound) {
		return apperr.New(apperr.NotFound, "policy_not_found", "no such policy")
	}
	if err != nil {
		return err
	}
	a.policiesChanged(c, p.TenantID)
	return c.NoContent(http.StatusNoContent)
}

// policiesChanged refreshes this replica's snapshot at once and tells the others.
func (a *API) policiesChanged(c echo.Context, tenantID string) {
	ctx := c.Request().Context()
	if err := a.snapshot.Reload(ctx, a.policies, tenantID); err != nil {
		a.log.WarnContext(ctx, "policy snapshot reload failed", "err", err)
	}
	a.ev.PoliciesChanged(ctx, events.PoliciesChangedEvent{TenantID: tenantID})
}
