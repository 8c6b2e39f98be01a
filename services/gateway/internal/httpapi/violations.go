package httpapi

import (
	"encoding/json"
	"errors"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/labstack/echo/v4"

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

const violationCols = `id::text, request_id, key_id::text, env, policy_id::text, policy_name, type, action, severity, shadow, direction, matches, provider, model, created_at`

func scanViolation(row pgx.Row) (violationResp, error) {
	var v violationResp
	err := row.Scan(&v.ID, &v.RequestID, &v.KeyID, &v.Env, &v.PolicyID, &v.PolicyName, &v.Type, &v.Action, &v.Severity, &v.Shadow, &v.Direction,
		&v.Matches, &v.Provider, &v.Model, &v.CreatedAt)
	v.CreatedAt = v.CreatedAt.UTC()
	return v, err
}

func (a *API) listViolations(c echo.Context) error {
	page, err := httpserver.ParsePage(c)
	if err != nil {
		return err
	}
	p := caller(c)
	f := &logFilter{}
	f.add("tenant_id = ?::uuid", p.TenantID)
	f.add("env = ?", p.Env)
	for _, name := range []string{"from", "to"} {
		if s := c.QueryParam(name); s != "" {
			t, err := time.Parse(time.RFC3339, s)
			if err != nil {
				return apperr.InvalidField(name, name+" must be an RFC 3339 time")
			}
			if name == "from" {
				f.add("created_at >= ?", t)
			} else {
				f.add("created_at < ?", t)
			}
		}
	}
	for _, name := range []string{"policy_id", "key_id"} {
		if s := c.QueryParam(name); s != "" {
			if _, err := uuid.Parse(s); err != nil {
				return apperr.InvalidField(name, name+" must be a UUID")
			}
			f.add(name+" = ?::uuid", s)
		}
	}
	if s := c.QueryParam("type"); s != "" {
		f.add("type = ?", s)
	}
	if s := c.QueryParam("action"); s != "" {
		switch s {
		case "block", "redact", "flag":
			f.add("action = ?", s)
		default:
			return apperr.InvalidField("action", "action must be block, redact or flag")
		}
	}
	where := strings.Join(f.where, " AND ")
	ctx := c.Request().Context()
	var total int
	if err := a.pool.QueryRow(ctx, `SELECT count(*) FROM violations WHERE `+where, f.args...).Scan(&total); err != nil {
		return err
	}
	args := append(f.args, page.Limit, page.Offset)
	rows, err := a.pool.Query(ctx, `SELECT `+violationCols+` FROM violations WHERE `+where+` ORDER BY created_at DESC, id DESC LIMIT $`+
		strconv.Itoa(len(args)-1)+` OFFSET $`+strconv.Itoa(len(args)), args...)
	if err != nil {
		return err
	}
	defer rows.Close()
	items := []violationResp{}
	for rows.Next() {
		v, err := scanViolation(rows)
		if err != nil {
			return err
		}
		items = append(items, v)
	}
	if err := rows.Err(); err != nil {
		return err
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
	v, err := scanViolation(a.pool.QueryRow(c.Request().Context(), `SELECT `+violationCols+` FROM violations WHERE id = $1::uuid AND tenant_id = $2::uuid AND env = $3`,
		id, p.TenantID, p.Env))
	if errors.Is(err, pgx.ErrNoRows) {
		return notFound
	}
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, v)
}
