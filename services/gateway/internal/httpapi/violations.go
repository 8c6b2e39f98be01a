package httpapi

import (
	"encoding/json"
	"errors"
	"net/http"
	"time"

	"github.com/google/uuid"
	"github.com/labstack/echo/v4"

	"trueportai/services/gateway/internal/analytics"
	"trueportai/services/internal/apperr"
	"trueportai/services/internal/httpserver"
)

type violationResp struct {
	ID         string          `json:"id"`
	RequestID  string          `json:"request_id"`
	KeyID      *string         `json:"key_id"`
	Env        string          `json:"env"`
	PolicyID   *string         `json:"policy_id"`
	PolicyName string          `json:"policy_name"`
	Type       string          `json:"type"`
	Action     string          `json:"action"`
	Severity   string          `json:"severity"`
	Shadow     bool            `json:"shadow"`
	Direction  string          `json:"direction"`
	Matches    json.RawMessage `json:"matches"`
	Provider   string          `json:"provider"`
	Model      string          `json:"model"`
	CreatedAt  time.Time       `json:"created_at"`
}

func toViolationResp(v analytics.Violation) violationResp {
	return violationResp{ID: v.ID, RequestID: v.RequestID, KeyID: v.KeyID, Env: v.Env, PolicyID: v.PolicyID, PolicyName: v.PolicyName, Type: v.Type,
		Action: v.Action, Severity: v.Severity, Shadow: v.Shadow, Direction: v.Direction, Matches: v.Matches, Provider: v.Provider, Model: v.Model,
		CreatedAt: v.CreatedAt}
}

func (a *API) listViolations(c echo.Context) error {
	page, err := httpserver.ParsePage(c)
	if err != nil {
		return err
	}
	p := caller(c)
	f := analytics.ViolationFilter{TenantID: p.TenantID, Env: p.Env}
	if f.From, f.To, err = parseRange(c); err != nil {
		return err
	}
	for _, q := range []struct {
		name string
		dst  *string
	}{{"policy_id", &f.PolicyID}, {"key_id", &f.KeyID}} {
		if s := c.QueryParam(q.name); s != "" {
			if _, err := uuid.Parse(s); err != nil {
				return apperr.InvalidField(q.name, q.name+" must be a UUID")
			}
			*q.dst = s
		}
	}
	f.Type = c.QueryParam("type")
	if s := c.QueryParam("action"); s != "" {
		switch s {
		case "block", "redact", "flag":
			f.Action = s
		default:
			return apperr.InvalidField("action", "action must be block, redact or flag")
		}
	}
	found, total, err := a.analytics.Violations(c.Request().Context(), f, page.Limit, page.Offset)
	if err != nil {
		return err
	}
	items := make([]violationResp, len(found))
	for i, v := range found {
		items[i] = toViolationResp(v)
	}
	return c.JSON(http.StatusOK, httpserver.NewList(items, total, page))
}

func (a *API) getViolation(c echo.Context) error {
	id := c.Param("id")
	notFound := apperr.New(apperr.NotFound, "violation_not_found", "no such violation")
	if _, err := uuid.Parse(id); err != nil {
		return notFound
	}
	p := caller(c)
	v, err := a.analytics.Violation(c.Request().Context(), p.TenantID, p.Env, id)
	if errors.Is(err, analytics.ErrNotFound) {
		return notFound
	}
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, toViolationResp(v))
}
