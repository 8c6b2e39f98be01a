package httpapi

import (
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"time"

	"github.com/labstack/echo/v4"

	"trueportai/services/internal/apperr"
	"trueportai/services/internal/events"
	"trueportai/services/internal/httpserver"
	"trueportai/services/internal/role"
	"trueportai/services/platform-backend/internal/identity"
	"trueportai/services/platform-backend/internal/mail"
	"trueportai/services/platform-backend/internal/team"
)

func errMemberNotFound() error {
	return apperr.New(apperr.NotFound, "member_not_found", "no such member in this organisation")
}

func errInviteNotFound() error {
	return apperr.New(apperr.NotFound, "invite_not_found", "no such pending invite")
}

func errBadRole() error {
	return apperr.InvalidField("role", "role must be one of viewer, member, admin, owner")
}

// removeMember removes a member (admin or owner), or the caller themself
// (leaving, any role). Owners are removed only by owners; the last owner
// stays (team.CheckRemove).
func (a *API) removeMember(c echo.Context) error {
	p := caller(c)
	ctx := c.Request().Context()
	m, err := a.team.RemoveMember(ctx, p.Tenant.ID, actorOf(p), c.Param("user_id"))
	if err != nil {
		return domainError(err, errMemberNotFound)
	}
	a.pub.TokensRevoked(ctx, events.TokensRevokedEvent{UserID: m.UserID, TenantID: p.Tenant.ID, Reason: "member_removed"})
	return c.NoContent(http.StatusNoContent)
}

// changeMemberRole sets a member's role (team.CheckRoleChange).
func (a *API) changeMemberRole(c echo.Context) error {
	var req struct {
		Role string `json:"role"`
	}
	if err := bind(c, &req); err != nil {
		return err
	}
	p := caller(c)
	ctx := c.Request().Context()
	m, old, err := a.team.ChangeRole(ctx, p.Tenant.ID, actorOf(p), c.Param("user_id"), role.Role(req.Role))
	if err != nil {
		return domainError(err, errMemberNotFound)
	}
	if old != m.Role {
		a.pub.TokensRevoked(ctx, events.TokensRevokedEvent{UserID: m.UserID, TenantID: p.Tenant.ID, Reason: "role_changed"})
	}
	return c.JSON(http.StatusOK, memberResp{UserID: m.UserID, Email: m.Email, Name: m.Name, Role: m.Role, JoinedAt: m.JoinedAt.UTC()})
}

type inviteResp struct {
	ID        string     `json:"id"`
	Email     string     `json:"email"`
	Role      role.Role  `json:"role"`
	ExpiresAt time.Time  `json:"expires_at"`
	CreatedAt *time.Time `json:"created_at,omitempty"`
	InvitedBy *string    `json:"invited_by,omitempty"`
}

func toInviteResp(i team.Invite, full bool) inviteResp {
	r := inviteResp{ID: i.ID, Email: i.Email, Role: i.Role, ExpiresAt: i.ExpiresAt.UTC()}
	if full {
		created := i.CreatedAt.UTC()
		r.CreatedAt, r.InvitedBy = &created, &i.InvitedBy
	}
	return r
}

// createInvite invites an address (team.Service.CreateInvite); the mail goes
// out before the invite is committed, so a failed mail keeps nothing.
func (a *API) createInvite(c echo.Context) error {
	var req struct {
		Email string `json:"email"`
		Role  string `json:"role"`
	}
	if err := bind(c, &req); err != nil {
		return err
	}
	email, err := normalizeEmail(req.Email)
	if err != nil {
		return err
	}
	p := caller(c)
	ctx := c.Request().Context()
	inv, err := a.team.CreateInvite(ctx, team.InviteRequest{TenantID: p.Tenant.ID, Email: email, Role: role.Role(req.Role)}, actorOf(p),
		func(inv team.Invite, tok string) error {
			subject, text := a.inviteMail(p, inv, tok)
			if err := a.mailer.Send(ctx, mail.Message{To: inv.Email, Subject: subject, Text: text}); err != nil {
				return apperr.Wrap(apperr.Unavailable, "mail_unavailable", "the invite mail could not be sent; nothing was saved, try again", err)
			}
			return nil
		})
	if err != nil {
		return domainError(err, errTenantNotFound)
	}
	a.log.InfoContext(ctx, "invite created", "invite_id", inv.ID, "role", inv.Role)
	return c.JSON(http.StatusCreated, toInviteResp(inv, false))
}

// inviteMail is the subject and body of an invite; the body carries the token
// and a link under the configured public base URL (never the Host header).
func (a *API) inviteMail(p *principal, inv team.Invite, tok string) (string, string) {
	subject := fmt.Sprintf("You are invited to join %s on TruePortAI", p.Tenant.Name)
	link := a.cfg.PublicBaseURL + identity.ConsoleLinkPrefix + "accept-invite?token=" + url.QueryEscape(tok)
	text := fmt.Sprintf(`%s invited you to join the organisation %q on TruePortAI as %s.

Sign in (or register with this address, %s), then accept the invite:

  %s

or call POST /platform/api/global/invites/accept with {"token": "%s"}.

The invite expires on %s.
`, p.User.Email, p.Tenant.Name, inv.Role, inv.Email, link, tok, inv.ExpiresAt.UTC().Format(time.RFC1123))
	return subject, text
}

func (a *API) listInvites(c echo.Context) error {
	page, err := httpserver.ParsePage(c)
	if err != nil {
		return err
	}
	rows, total, err := a.store.PendingInvites(c.Request().Context(), caller(c).Tenant.ID, a.now(), page.Limit, page.Offset)
	if err != nil {
		return err
	}
	items := make([]inviteResp, 0, len(rows))
	for _, r := range rows {
		items = append(items, toInviteResp(r, true))
	}
	return c.JSON(http.StatusOK, httpserver.NewList(items, total, page))
}

func (a *API) revokeInvite(c echo.Context) error {
	p := caller(c)
	if _, err := a.team.RevokeInvite(c.Request().Context(), p.Tenant.ID, c.Param("id"), actorOf(p)); err != nil {
		return domainError(err, errInviteNotFound)
	}
	return c.NoContent(http.StatusNoContent)
}

// acceptInvite joins the caller (global token) to the invite's tenant. The
// invite must be addressed to the caller's email.
func (a *API) acceptInvite(c echo.Context) error {
	var req struct {
		Token string `json:"token"`
	}
	if err := bind(c, &req); err != nil {
		return err
	}
	if req.Token == "" {
		return apperr.InvalidField("token", "token is required")
	}
	p := caller(c)
	ms, err := a.team.AcceptInvite(c.Request().Context(), req.Token, actorOf(p))
	switch {
	case errors.Is(err, team.ErrNotFound):
		return apperr.New(apperr.NotFound, "invite_not_found", "no invite with this token")
	case errors.Is(err, team.ErrInviteEmailMismatch):
		return apperr.New(apperr.Forbidden, "invite_email_mismatch", "this invite is addressed to another email; sign in with the invited address")
	case errors.Is(err, team.ErrInviteUsed):
		return apperr.New(apperr.Invalid, "invite_used", "this invite has already been accepted").WithDetails(map[string]any{"field": "token"})
	case errors.Is(err, team.ErrInviteRevoked):
		return apperr.New(apperr.Invalid, "invite_revoked", "this invite has been revoked").WithDetails(map[string]any{"field": "token"})
	case errors.Is(err, team.ErrInviteExpired):
		return apperr.New(apperr.Invalid, "invite_expired", "this invite has expired; ask for a new one").WithDetails(map[string]any{"field": "token"})
	case err != nil:
		return domainError(err, errInviteNotFound)
	}
	return c.JSON(http.StatusOK, map[string]any{"tenant": toTenantResp(ms.Tenant, ms.Role), "role": ms.Role})
}
