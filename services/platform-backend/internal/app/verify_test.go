package app

// Address verification and the platform-admin bootstrap (issue 10, hostile
// tenants): PLATFORM_ADMIN_EMAILS makes an admin only of a user who proved
// the address, never of whoever registered it first.

import (
	"context"
	"net/http"
	"regexp"
	"strings"
	"testing"
	"time"

	platformv1 "trueportai/proto/gen/trueport/platform/v1"
	"trueportai/services/platform-backend/internal/token"
)

const (
	verifyRequest = "/platform/api/global/auth/verify-email/request"
	verifyConfirm = "/platform/api/global/auth/verify-email/confirm"
	mePath        = "/platform/api/global/auth/me"
)

var verifyTokenRE = regexp.MustCompile(`/verify-email\?token=([A-Za-z0-9_-]{43})\b`)

// verifyToken asks for a verification mail for u and returns its token (the
// n-th mail to u.Email, 1-based).
func (s *server) verifyToken(t *testing.T, u user, n int) string {
	t.Helper()
	decode[obj](t, s.post(t, verifyRequest, u.Global, nil), http.StatusAccepted)
	text := s.waitMail(t, u.Email, n).Text
	m := verifyTokenRE.FindStringSubmatch(text)
	if m == nil {
		t.Fatalf("no verification link in mail %q", text)
	}
	if strings.Count(text, m[1]) < 2 {
		t.Errorf("the mail should carry the token itself as well as the link: %q", text)
	}
	return m[1]
}

// newAdmin registers a user with an address listed in PLATFORM_ADMIN_EMAILS,
// logs in and proves the address (verify-email), which makes it a platform
// admin.
func (s *server) newAdmin(t *testing.T, email string) user {
	t.Helper()
	u := s.newUser(t, email)
	got := decode[struct {
		User struct {
			PlatformAdmin bool `json:"platform_admin"`
			EmailVerified bool `json:"email_verified"`
		} `json:"user"`
	}](t, s.post(t, verifyConfirm, u.Global, obj{"token": s.verifyToken(t, u, 1)}), http.StatusOK)
	if !got.User.PlatformAdmin || !got.User.EmailVerified {
		t.Fatalf("%s after verification: %+v", email, got.User)
	}
	return u
}

func userOf(t *testing.T, r resp, status int) obj {
	t.Helper()
	u, _ := decode[obj](t, r, status)["user"].(obj)
	if u == nil {
		t.Fatalf("no user in %s", r)
	}
	return u
}

// TestAdminOnlyWithAProvenAddress: registering a PLATFORM_ADMIN_EMAILS
// address first, even with signup closed, gives nothing; proving it (here:
// the mailbox owner signs in with a code) gives admin, and the squatter's
// password and tokens stop working. On the old code the register answer
// already said platform_admin: true.
func TestAdminOnlyWithAProvenAddress(t *testing.T) {
	t.Parallel()
	s := startServer(t, "PLATFORM_ADMIN_EMAILS=boss@example.com")
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	auth, _ := s.grpcClients(t)
	if _, err := s.db.Exec(ctx, `INSERT INTO global_configs (key, value) VALUES ('signup.enabled', 'false')`); err != nil {
		t.Fatal(err)
	}

	// The attacker registers the listed address (signup closed lets listed
	// addresses through) with a password of their own.
	reg := userOf(t, s.post(t, "/platform/api/global/auth/register", "", obj{"email": "Boss@Example.com", "password": "attacker-password-1"}), http.StatusCreated)
	if reg["platform_admin"] != false || reg["email_verified"] != false {
		t.Fatalf("register of a listed address = %v, want platform_admin false, email_verified false", reg)
	}
	lr := s.post(t, loginPath, "", obj{"email": "boss@example.com", "password": "attacker-password-1"})
	if u := userOf(t, lr, http.StatusOK); u["platform_admin"] != false || u["email_verified"] != false {
		t.Errorf("login answer = %v", u)
	}
	squatter := user{ID: reg["id"].(string), Email: "boss@example.com", Global: decode[obj](t, lr, http.StatusOK)["global_access_token"].(string)}
	if u := userOf(t, s.get(t, mePath, squatter.Global), http.StatusOK); u["platform_admin"] != false || u["email_verified"] != false {
		t.Errorf("me = %v", u)
	}
	wantError(t, s.get(t, "/platform/api/admin/users", squatter.Global), http.StatusForbidden, "platform_admin_required")
	if in, err := auth.IntrospectToken(ctx, &platformv1.IntrospectTokenRequest{Token: squatter.Global}); err != nil || in.GetPlatformAdmin() {
		t.Errorf("introspection of the squatter = %v, %v", in, err)
	}
	// A restart does not grant it either (PLATFORM_ADMIN_EMAILS at start
	// takes verified users only).
	startServer(t, "PLATFORM_DATABASE_URL="+s.dbURL, "PLATFORM_ADMIN_EMAILS=boss@example.com")
	wantError(t, s.get(t, "/platform/api/admin/users", squatter.Global), http.StatusForbidden, "platform_admin_required")
	// Asking for a verification mail sends it to the mailbox, not to the
	// squatter; guessing the token fails.
	decode[obj](t, s.post(t, verifyRequest, squatter.Global, nil), http.StatusAccepted)
	s.waitMail(t, "boss@example.com", 1)
	wantField(t, s.post(t, verifyConfirm, squatter.Global, obj{"token": strings.Repeat("A", 43)}), "token")
	wantError(t, s.get(t, "/platform/api/admin/users", squatter.Global), http.StatusForbidden, "platform_admin_required")

	// The mailbox owner signs in with a code: the address is proven, the
	// user becomes admin, the squatter's password and token die.
	decode[obj](t, s.post(t, otpRequest, "", obj{"email": "boss@example.com"}), http.StatusAccepted)
	code := codeIn(t, s.waitMail(t, "boss@example.com", 2).Text)
	r := s.post(t, otpVerify, "", obj{"email": "boss@example.com", "code": code})
	if u := userOf(t, r, http.StatusOK); u["platform_admin"] != true || u["email_verified"] != true || u["id"] != squatter.ID {
		t.Errorf("code sign-in of the listed address = %v", u)
	}
	owner := decode[obj](t, r, http.StatusOK)["global_access_token"].(string)
	decode[obj](t, s.get(t, "/platform/api/admin/users", owner), http.StatusOK)
	wantError(t, s.get(t, mePath, squatter.Global), http.StatusUnauthorized, "invalid_token")
	wantError(t, s.post(t, loginPath, "", obj{"email": "boss@example.com", "password": "attacker-password-1"}), http.StatusUnauthorized, "invalid_credentials")
	if in, err := auth.IntrospectToken(ctx, &platformv1.IntrospectTokenRequest{Token: squatter.Global}); err != nil || in.GetActive() {
		t.Errorf("introspection of the squatter's token after the reclaim = %v, %v", in, err)
	}
	// The owner sets a password of their own with forgot-password.
	decode[obj](t, s.post(t, forgotPassword, "", obj{"email": "boss@example.com"}), http.StatusAccepted)
	decode[obj](t, s.post(t, resetPassword, "", obj{"token": resetTokenIn(t, s.waitMail(t, "boss@example.com", 3).Text), "new_password": "owner-password-1"}), http.StatusOK)
	if u := userOf(t, s.post(t, loginPath, "", obj{"email": "boss@example.com", "password": "owner-password-1"}), http.StatusOK); u["platform_admin"] != true {
		t.Errorf("owner login = %v", u)
	}
}

// TestVerifyEmailGrantsAdmin: a listed address proven by verify-email (the
// password holder reads the mail) becomes admin; an unlisted one is only
// verified; a verified listed user is granted at start.
func TestVerifyEmailGrantsAdmin(t *testing.T) {
	t.Parallel()
	s := startServer(t, "PLATFORM_ADMIN_EMAILS=root@platform.example,later@platform.example")
	root := s.newAdmin(t, "root@platform.example")
	if u := userOf(t, s.get(t, mePath, root.Global), http.StatusOK); u["platform_admin"] != true || u["email_verified"] != true {
		t.Errorf("me after verification = %v", u)
	}
	decode[obj](t, s.get(t, "/platform/api/admin/stats", root.Global), http.StatusOK) // the same token, admin now

	plain := s.newUser(t, "plain@example.com")
	u := userOf(t, s.post(t, verifyConfirm, plain.Global, obj{"token": s.verifyToken(t, plain, 1)}), http.StatusOK)
	if u["email_verified"] != true || u["platform_admin"] != false {
		t.Errorf("unlisted address after verification = %v", u)
	}
	// The password survives verify-email (its holder read the mail).
	s.login(t, plain.Email, testPassword)

	// The admin list shows who is verified.
	s.newUser(t, "later@platform.example")
	l := wantEnvelope(t, s.get(t, "/platform/api/admin/users", root.Global))
	seen := map[string]obj{}
	for _, it := range l.Items {
		seen[it["email"].(string)] = it
	}
	if seen["later@platform.example"]["email_verified"] != false || seen["later@platform.example"]["platform_admin"] != false ||
		seen["plain@example.com"]["email_verified"] != true || seen["root@platform.example"]["email_verified"] != true {
		t.Errorf("admin users = %v", l.Items)
	}
	// A listed user verified while PLATFORM_ADMIN_EMAILS did not list it is
	// granted at the next start; an unverified listed one is not.
	if _, err := s.db.Exec(context.Background(), `UPDATE users SET email_verified = true WHERE email = 'plain@example.com'`); err != nil {
		t.Fatal(err)
	}
	startServer(t, "PLATFORM_DATABASE_URL="+s.dbURL, "PLATFORM_ADMIN_EMAILS=plain@example.com,later@platform.example")
	for email, want := range map[string]bool{"plain@example.com": true, "later@platform.example": false} {
		var admin bool
		if err := s.db.QueryRow(context.Background(), `SELECT platform_admin FROM users WHERE email = $1`, email).Scan(&admin); err != nil || admin != want {
			t.Errorf("%s platform_admin after a restart = %v (%v), want %v", email, admin, err, want)
		}
	}
}

// TestVerifyEmailRoleMatrix: who may call the new routes.
func TestVerifyEmailRoleMatrix(t *testing.T) {
	t.Parallel()
	s := startServer(t)
	u := s.newUser(t, "matrix@example.com")
	tn := s.newTenant(t, u, "Matrix", "matrix")
	scoped := s.scoped(t, u, tn.ID)
	verified := s.newUser(t, "done@example.com")
	decode[obj](t, s.post(t, verifyConfirm, verified.Global, obj{"token": s.verifyToken(t, verified, 1)}), http.StatusOK)
	revoked := s.newUser(t, "revoked@example.com")
	decode[obj](t, s.put(t, changePassword, revoked.Global, obj{"current_password": testPassword, "new_password": "another-password-1"}), http.StatusOK)
	expired, _, err := s.issuer(t, func() time.Time { return time.Now().Add(-2 * time.Hour) }).Issue(token.Claims{Subject: u.ID, Type: token.TypeGlobal}, 30*time.Minute)
	if err != nil {
		t.Fatal(err)
	}

	routes := []struct {
		method, path string
		body         any
		ok           int
	}{
		{http.MethodGet, mePath, nil, http.StatusOK},
		{http.MethodPost, verifyRequest, nil, http.StatusAccepted},
		{http.MethodPost, verifyConfirm, obj{"token": strings.Repeat("A", 43)}, http.StatusBadRequest}, // a global token reaches the handler
	}
	for _, rt := range routes {
		for who, want := range map[string]struct {
			tok    string
			status int
			code   string
		}{
			"global":         {u.Global, rt.ok, ""},
			"scoped":         {scoped, http.StatusUnauthorized, "global_token_required"},
			"no-token":       {"", http.StatusUnauthorized, "missing_token"},
			"garbage":        {"not.a.jwt", http.StatusUnauthorized, "invalid_token"},
			"expired":        {expired, http.StatusUnauthorized, "invalid_token"},
			"revoked":        {revoked.Global, http.StatusUnauthorized, "invalid_token"},
			"verified-again": {verified.Global, map[bool]int{true: http.StatusOK, false: http.StatusConflict}[rt.path == mePath], map[bool]string{true: "", false: "email_already_verified"}[rt.path == mePath]},
		} {
			t.Run(rt.method+" "+rt.path+"/"+who, func(t *testing.T) {
				r := s.do(t, req{Method: rt.method, Path: rt.path, Token: want.tok, Body: rt.body})
				if want.code != "" {
					wantError(t, r, want.status, want.code)
				} else if r.Status != want.status {
					t.Errorf("status = %s, want %d", r, want.status)
				}
			})
		}
	}
	wantField(t, s.post(t, verifyConfirm, u.Global, obj{}), "token")
	wantField(t, s.post(t, verifyConfirm, u.Global, obj{"token": "short"}), "token")
	// Limits: 5 requests per 15 min per user (one was spent above).
	for range 4 {
		decode[obj](t, s.post(t, verifyRequest, u.Global, nil), http.StatusAccepted)
	}
	wantLimited(t, s.post(t, verifyRequest, u.Global, nil), "verify_email_request_per_user", 900)
	for range 8 { // 10 per 15 min per user (the matrix and "short" spent two)
		wantField(t, s.post(t, verifyConfirm, u.Global, obj{"token": strings.Repeat("B", 43)}), "token")
	}
	wantLimited(t, s.post(t, verifyConfirm, u.Global, obj{"token": strings.Repeat("B", 43)}), "verify_email_confirm_per_user", 900)
}

// TestVerifyEmailCrossUser: a token mailed to user A verifies neither user B
// nor, used by B, user A; A's own use of it still works once.
func TestVerifyEmailCrossUser(t *testing.T) {
	t.Parallel()
	s := startServer(t, "PLATFORM_ADMIN_EMAILS=a@example.com")
	a, b := s.newUser(t, "a@example.com"), s.newUser(t, "b@example.com")
	tokA := s.verifyToken(t, a, 1)
	wantField(t, s.post(t, verifyConfirm, b.Global, obj{"token": tokA}), "token")
	for _, u := range []user{a, b} {
		if got := userOf(t, s.get(t, mePath, u.Global), http.StatusOK); got["email_verified"] != false || got["platform_admin"] != false {
			t.Errorf("%s after B used A's token: %v", u.Email, got)
		}
	}
	// B's own token does not verify A.
	tokB := s.verifyToken(t, b, 1)
	wantField(t, s.post(t, verifyConfirm, a.Global, obj{"token": tokB}), "token")
	// A sign-in code is not a verification token (nor the other way).
	decode[obj](t, s.post(t, otpRequest, "", obj{"email": a.Email}), http.StatusAccepted)
	code := codeIn(t, s.waitMail(t, a.Email, 2).Text)
	wantField(t, s.post(t, verifyConfirm, a.Global, obj{"token": code}), "token")
	wantError(t, s.post(t, otpVerify, "", obj{"email": a.Email, "code": tokA}), http.StatusUnauthorized, "invalid_code")

	if u := userOf(t, s.post(t, verifyConfirm, a.Global, obj{"token": tokA}), http.StatusOK); u["email_verified"] != true || u["platform_admin"] != true || u["id"] != a.ID {
		t.Errorf("A with its own token = %v", u)
	}
	wantError(t, s.post(t, verifyConfirm, a.Global, obj{"token": tokA}), http.StatusConflict, "email_already_verified")
	if u := userOf(t, s.post(t, verifyConfirm, b.Global, obj{"token": tokB}), http.StatusOK); u["email_verified"] != true || u["platform_admin"] != false {
		t.Errorf("B with its own token = %v", u)
	}
	// Tokens are stored as MACs only.
	var n int
	if err := s.db.QueryRow(context.Background(), `SELECT count(*) FROM otp_codes WHERE position($1::bytea IN code_hash) > 0`, []byte(tokA)).Scan(&n); err != nil || n != 0 {
		t.Errorf("token stored in the clear (%d, %v)", n, err)
	}
}

// TestCodeResendKeepsWrongTries: asking for a new sign-in code does not
// reset the wrong-try count of the address; the count starts over only when
// its window (the first code's lifetime) is over. On the old code a resend
// reset the count (and the 5th wrong try deleted the row, so a resend after
// it started from zero too).
func TestCodeResendKeepsWrongTries(t *testing.T) {
	t.Parallel()
	s := startServer(t)
	ctx := context.Background()
	u := s.newUser(t, "resend@example.com")
	tries := func() int {
		t.Helper()
		var n int
		if err := s.db.QueryRow(ctx, `SELECT attempts FROM otp_codes WHERE user_id = $1`, u.ID).Scan(&n); err != nil {
			t.Fatal(err)
		}
		return n
	}
	code := func(n int) string {
		t.Helper()
		decode[obj](t, s.post(t, otpRequest, "", obj{"email": u.Email}), http.StatusAccepted)
		return codeIn(t, s.waitMail(t, u.Email, n).Text)
	}
	wrongFor := func(c string) string { return map[bool]string{true: "111111", false: "000000"}[c == "000000"] }

	first := code(1)
	for range 4 {
		wantError(t, s.post(t, otpVerify, "", obj{"email": u.Email, "code": wrongFor(first)}), http.StatusUnauthorized, "invalid_code")
	}
	second := code(2)
	if n := tries(); n != 4 {
		t.Errorf("wrong tries after a resend = %d, want 4 kept", n)
	}
	wantError(t, s.post(t, otpVerify, "", obj{"email": u.Email, "code": wrongFor(second)}), http.StatusUnauthorized, "invalid_code")
	// Five wrong tries for the address: even the right new code fails, and a
	// third code within the window is dead as well.
	wantError(t, s.post(t, otpVerify, "", obj{"email": u.Email, "code": second}), http.StatusUnauthorized, "invalid_code")
	third := code(3)
	wantError(t, s.post(t, otpVerify, "", obj{"email": u.Email, "code": third}), http.StatusUnauthorized, "invalid_code")
	if n := tries(); n != 5 {
		t.Errorf("wrong tries = %d, want 5", n)
	}
	// Once the window is over, a new code starts a new count.
	if _, err := s.db.Exec(ctx, `UPDATE otp_codes SET tries_reset_at = now() - interval '1 second' WHERE user_id = $1`, u.ID); err != nil {
		t.Fatal(err)
	}
	fourth := code(4)
	if n := tries(); n != 0 {
		t.Errorf("wrong tries in a new window = %d, want 0", n)
	}
	decode[obj](t, s.post(t, otpVerify, "", obj{"email": u.Email, "code": fourth}), http.StatusOK)
}
