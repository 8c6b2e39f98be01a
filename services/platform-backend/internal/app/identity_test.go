package app

// Identity flows end to end: OTP sign-in, forgotten password, password
// change, their mails (log sender and a real SMTP server), token revocation
// (HTTP, gRPC introspection, NATS event) and the auth rate limits.

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime/quotedprintable"
	"net"
	"net/http"
	"net/mail"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/emersion/go-sasl"
	"github.com/emersion/go-smtp"
	"github.com/nats-io/nats.go"

	platformv1 "trueportai/proto/gen/trueport/platform/v1"
)

const (
	otpRequest     = "/platform/api/global/auth/otp/request"
	otpVerify      = "/platform/api/global/auth/otp/verify"
	forgotPassword = "/platform/api/global/auth/forgot-password"
	resetPassword  = "/platform/api/global/auth/reset-password"
	changePassword = "/platform/api/global/auth/password"
	loginPath      = "/platform/api/global/auth/login"
)

// loggedMail is one mail written by the logging sender.
type loggedMail struct {
	To, Subject, Text string
}

// loggedMails returns the mails to `to` found in the service log so far.
func (s *server) loggedMails(to string) []loggedMail {
	var out []loggedMail
	for _, line := range strings.Split(s.logs.String(), "\n") {
		var rec struct {
			Msg     string `json:"msg"`
			To      string `json:"to"`
			Subject string `json:"subject"`
			Text    string `json:"text"`
		}
		if json.Unmarshal([]byte(line), &rec) == nil && rec.Msg == "mail" && rec.To == to {
			out = append(out, loggedMail{To: rec.To, Subject: rec.Subject, Text: rec.Text})
		}
	}
	return out
}

// waitMail polls the log until the n-th mail (1-based) to `to` appears.
func (s *server) waitMail(t *testing.T, to string, n int) loggedMail {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		if m := s.loggedMails(to); len(m) >= n {
			return m[n-1]
		}
		if time.Now().After(deadline) {
			t.Fatalf("mail #%d to %s not logged within 10s", n, to)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// waitLog polls the log until it contains substr.
func (s *server) waitLog(t *testing.T, substr string, count int) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for strings.Count(s.logs.String(), substr) < count {
		if time.Now().After(deadline) {
			t.Fatalf("log line %q (x%d) not seen within 10s", substr, count)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

var (
	codeRE  = regexp.MustCompile(`\b(\d{6})\b`)
	tokenRE = regexp.MustCompile(`/reset-password\?token=([A-Za-z0-9_-]{43})\b`)
)

func codeIn(t *testing.T, text string) string {
	t.Helper()
	m := codeRE.FindStringSubmatch(text)
	if m == nil {
		t.Fatalf("no 6-digit code in mail %q", text)
	}
	return m[1]
}

func resetTokenIn(t *testing.T, text string) string {
	t.Helper()
	m := tokenRE.FindStringSubmatch(text)
	if m == nil {
		t.Fatalf("no reset link in mail %q", text)
	}
	if strings.Count(text, m[1]) < 2 {
		t.Errorf("mail should carry the token itself as well as the link: %q", text)
	}
	return m[1]
}

// sameBody asserts two answers are identical apart from the request id.
func sameBody(t *testing.T, what string, a, b resp) {
	t.Helper()
	norm := func(r resp) string {
		return regexp.MustCompile(`"request_id":"[^"]*"`).ReplaceAllString(string(r.Body), `"request_id":""`)
	}
	if a.Status != b.Status || norm(a) != norm(b) {
		t.Errorf("%s: known and unknown email answer differently:\n  %s\n  %s", what, a, b)
	}
}

// subscribeRevocations collects TokensRevoked events of this server.
func (s *server) subscribeRevocations(t *testing.T) *nats.Subscription {
	t.Helper()
	nc, err := nats.Connect(s.natsURL, nats.Timeout(5*time.Second))
	if err != nil {
		t.Fatalf("nats: %v", err)
	}
	t.Cleanup(nc.Close)
	sub, err := nc.SubscribeSync(s.prefix + ".platform.tokens.revoked")
	if err != nil {
		t.Fatal(err)
	}
	if err := nc.Flush(); err != nil {
		t.Fatal(err)
	}
	return sub
}

func wantRevoked(t *testing.T, sub *nats.Subscription, userID, reason string) {
	t.Helper()
	msg, err := sub.NextMsg(5 * time.Second)
	if err != nil {
		t.Fatalf("no tokens.revoked event within 5s: %v", err)
	}
	var ev struct {
		UserID   string `json:"user_id"`
		TenantID string `json:"tenant_id"`
		Reason   string `json:"reason"`
	}
	if err := json.Unmarshal(msg.Data, &ev); err != nil || ev.UserID != userID || ev.TenantID != "" || ev.Reason != reason {
		t.Errorf("tokens.revoked event = %s, want user_id %s reason %s", msg.Data, userID, reason)
	}
}

func TestOTPSignIn(t *testing.T) {
	t.Parallel()
	s := startServer(t, "LOG_LEVEL=debug")
	u := s.newUser(t, "otp@example.com")

	// Known and unknown emails get the same answer; only the known one gets a mail.
	known := s.post(t, otpRequest, "", obj{"email": "OTP@Example.com"})
	unknown := s.post(t, otpRequest, "", obj{"email": "nobody@example.com"})
	if known.Status != http.StatusAccepted || string(known.Body) != `{"status":"sent"}`+"\n" && string(known.Body) != `{"status":"sent"}` {
		t.Fatalf("otp/request = %s, want 202 {\"status\":\"sent\"}", known)
	}
	sameBody(t, "otp/request", known, unknown)
	m := s.waitMail(t, u.Email, 1)
	code := codeIn(t, m.Text)
	s.waitLog(t, "sign-in code requested for an unknown email", 1)
	if got := s.loggedMails("nobody@example.com"); len(got) != 0 {
		t.Errorf("an unknown email got mail: %v", got)
	}
	if strings.Contains(m.Subject, code) {
		t.Errorf("the code is in the subject (logged on send errors): %q", m.Subject)
	}
	var stored []byte
	if err := s.db.QueryRow(context.Background(), `SELECT code_hash FROM otp_codes WHERE user_id = $1`, u.ID).Scan(&stored); err != nil {
		t.Fatal(err)
	}
	if bytes.Contains(stored, []byte(code)) || len(stored) != 32 {
		t.Errorf("code stored as %x; want a 32-byte MAC", stored)
	}

	// The code signs in once, with the login answer.
	r := s.post(t, otpVerify, "", obj{"email": u.Email, "code": code})
	out := decode[struct {
		Token     string `json:"global_access_token"`
		TokenType string `json:"token_type"`
		ExpiresIn int    `json:"expires_in"`
		User      struct {
			ID string `json:"id"`
		} `json:"user"`
	}](t, r, http.StatusOK)
	if out.Token == "" || out.TokenType != "Bearer" || out.ExpiresIn <= 0 || out.User.ID != u.ID {
		t.Errorf("otp/verify = %s", r)
	}
	decode[obj](t, s.get(t, "/platform/api/global/tenants", out.Token), http.StatusOK)
	wantError(t, s.post(t, otpVerify, "", obj{"email": u.Email, "code": code}), http.StatusUnauthorized, "invalid_code")

	// A new request supersedes the older code.
	s.post(t, otpRequest, "", obj{"email": u.Email})
	first := codeIn(t, s.waitMail(t, u.Email, 2).Text)
	s.post(t, otpRequest, "", obj{"email": u.Email})
	second := codeIn(t, s.waitMail(t, u.Email, 3).Text)
	if first != second {
		wantError(t, s.post(t, otpVerify, "", obj{"email": u.Email, "code": first}), http.StatusUnauthorized, "invalid_code")
	}
	decode[obj](t, s.post(t, otpVerify, "", obj{"email": u.Email, "code": second}), http.StatusOK)

	// Bad input.
	wantField(t, s.post(t, otpRequest, "", obj{"email": "not-an-email"}), "email")
	wantField(t, s.post(t, otpVerify, "", obj{"email": u.Email}), "code")
	wantField(t, s.post(t, otpVerify, "", obj{"code": "123456"}), "email")
	for _, c := range []string{"12345", "1234567", "abcdef", "12345\x00"} {
		wantError(t, s.post(t, otpVerify, "", obj{"email": u.Email, "code": c}), http.StatusUnauthorized, "invalid_code")
	}
	wantError(t, s.post(t, otpVerify, "", obj{"email": "nobody@example.com", "code": "123456"}), http.StatusUnauthorized, "invalid_code")
}

func TestOTPTryLimitAndExpiry(t *testing.T) {
	t.Parallel()
	s := startServer(t)
	ctx := context.Background()

	// Five wrong tries kill the code: the right one fails afterwards.
	a := s.newUser(t, "tries@example.com")
	s.post(t, otpRequest, "", obj{"email": a.Email})
	code := codeIn(t, s.waitMail(t, a.Email, 1).Text)
	wrong := fmt.Sprintf("%06d", (mustAtoi(t, code)+1)%1_000_000)
	for i := range 5 {
		wantError(t, s.post(t, otpVerify, "", obj{"email": a.Email, "code": wrong}), http.StatusUnauthorized, "invalid_code")
		if i == 3 {
			var tries int
			if err := s.db.QueryRow(ctx, `SELECT attempts FROM otp_codes WHERE user_id = $1`, a.ID).Scan(&tries); err != nil || tries != 4 {
				t.Errorf("after 4 wrong tries attempts = %d (%v)", tries, err)
			}
		}
	}
	wantError(t, s.post(t, otpVerify, "", obj{"email": a.Email, "code": code}), http.StatusUnauthorized, "invalid_code")

	// Four wrong tries leave the code usable.
	a2 := s.newUser(t, "four-tries@example.com")
	s.post(t, otpRequest, "", obj{"email": a2.Email})
	code = codeIn(t, s.waitMail(t, a2.Email, 1).Text)
	wrong = fmt.Sprintf("%06d", (mustAtoi(t, code)+7)%1_000_000)
	for range 4 {
		wantError(t, s.post(t, otpVerify, "", obj{"email": a2.Email, "code": wrong}), http.StatusUnauthorized, "invalid_code")
	}
	decode[obj](t, s.post(t, otpVerify, "", obj{"email": a2.Email, "code": code}), http.StatusOK)

	// An expired code fails (expiry moved into the past in the database).
	b := s.newUser(t, "expiry@example.com")
	s.post(t, otpRequest, "", obj{"email": b.Email})
	code = codeIn(t, s.waitMail(t, b.Email, 1).Text)
	var ttl float64
	if err := s.db.QueryRow(ctx, `SELECT extract(epoch FROM expires_at - created_at) FROM otp_codes WHERE user_id = $1`, b.ID).Scan(&ttl); err != nil || ttl < 595 || ttl > 605 {
		t.Errorf("code lifetime = %vs (%v), want 10 min", ttl, err)
	}
	if _, err := s.db.Exec(ctx, `UPDATE otp_codes SET expires_at = now() - interval '1 second' WHERE user_id = $1`, b.ID); err != nil {
		t.Fatal(err)
	}
	wantError(t, s.post(t, otpVerify, "", obj{"email": b.Email, "code": code}), http.StatusUnauthorized, "invalid_code")

	// Concurrent guesses cannot exceed the try limit: of 20 parallel wrong
	// tries at most 5 are counted before the code dies.
	c := s.newUser(t, "race-otp@example.com")
	s.post(t, otpRequest, "", obj{"email": c.Email})
	code = codeIn(t, s.waitMail(t, c.Email, 1).Text)
	wrong = fmt.Sprintf("%06d", (mustAtoi(t, code)+1)%1_000_000)
	var wg sync.WaitGroup
	for range 8 { // within the per-email verify limit (10 / 15 min)
		wg.Add(1)
		go func() {
			defer wg.Done()
			wantError(t, s.post(t, otpVerify, "", obj{"email": c.Email, "code": wrong}), http.StatusUnauthorized, "invalid_code")
		}()
	}
	wg.Wait()
	// The dead code's row stays until it expires (its count must survive a
	// resend), with the count at the limit: no more than 5 were counted.
	var n int
	if err := s.db.QueryRow(ctx, `SELECT attempts FROM otp_codes WHERE user_id = $1`, c.ID).Scan(&n); err != nil || n != 5 {
		t.Errorf("after 8 concurrent wrong tries attempts = %d (%v), want 5", n, err)
	}
	wantError(t, s.post(t, otpVerify, "", obj{"email": c.Email, "code": code}), http.StatusUnauthorized, "invalid_code")
}

func mustAtoi(t *testing.T, s string) int {
	t.Helper()
	n, err := strconv.Atoi(s)
	if err != nil {
		t.Fatal(err)
	}
	return n
}

func TestForgotAndResetPassword(t *testing.T) {
	t.Parallel()
	s := startServer(t, "PUBLIC_BASE_URL=https://app.trueport.test/")
	revoked := s.subscribeRevocations(t)
	u := s.newUser(t, "reset@example.com")
	tn := s.newTenant(t, u, "Reset Co", "reset-co")
	scoped := s.scoped(t, u, tn.ID)
	auth, _ := s.grpcClients(t)

	known := s.post(t, forgotPassword, "", obj{"email": u.Email})
	unknown := s.post(t, forgotPassword, "", obj{"email": "ghost@example.com"})
	if known.Status != http.StatusAccepted || !strings.Contains(string(known.Body), `"status":"sent"`) {
		t.Fatalf("forgot-password = %s", known)
	}
	sameBody(t, "forgot-password", known, unknown)
	m := s.waitMail(t, u.Email, 1)
	if !strings.Contains(m.Text, "https://app.trueport.test/console/#/reset-password?token=") {
		t.Errorf("reset link does not use PUBLIC_BASE_URL: %q", m.Text)
	}
	tok := resetTokenIn(t, m.Text)

	// Invalid input does not spend the token.
	wantField(t, s.post(t, resetPassword, "", obj{"token": tok, "new_password": "short"}), "new_password")
	wantField(t, s.post(t, resetPassword, "", obj{"new_password": "a-brand-new-password"}), "token")
	// A one-character change of the real token (never the token itself:
	// its last character, 4 bits of a 256-bit value, is "A" one time in 16).
	last := "A"
	if strings.HasSuffix(tok, "A") {
		last = "E"
	}
	for _, bad := range []string{"nope", tok[:42] + last, strings.Repeat("A", 43), tok + "x"} {
		env := wantError(t, s.post(t, resetPassword, "", obj{"token": bad, "new_password": "a-brand-new-password"}), http.StatusBadRequest, "invalid_token")
		if env.Details["field"] != "token" {
			t.Errorf("invalid_token should name field token: %+v", env)
		}
	}

	r := s.post(t, resetPassword, "", obj{"token": tok, "new_password": "a-brand-new-password"})
	if got := decode[obj](t, r, http.StatusOK); len(got) != 1 || got["status"] != "ok" {
		t.Errorf("reset-password = %s, want {\"status\":\"ok\"}", r)
	}
	wantRevoked(t, revoked, u.ID, "password_reset")

	// Every earlier token is dead on the platform and in introspection.
	wantError(t, s.get(t, "/platform/api/global/tenants", u.Global), http.StatusUnauthorized, "invalid_token")
	wantError(t, s.get(t, "/platform/api/service/info", scoped), http.StatusUnauthorized, "invalid_token")
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if in, err := auth.IntrospectToken(ctx, &platformv1.IntrospectTokenRequest{Token: scoped}); err != nil || in.GetActive() {
		t.Errorf("introspection of a pre-reset token = %v, %v; want inactive", in, err)
	}
	// Single use; old password gone, new one works.
	wantError(t, s.post(t, resetPassword, "", obj{"token": tok, "new_password": "yet-another-password"}), http.StatusBadRequest, "invalid_token")
	wantError(t, s.post(t, loginPath, "", obj{"email": u.Email, "password": testPassword}), http.StatusUnauthorized, "invalid_credentials")
	fresh := s.login(t, u.Email, "a-brand-new-password")
	decode[obj](t, s.get(t, "/platform/api/global/tenants", fresh), http.StatusOK)

	// A newer request supersedes the older token; expired tokens fail.
	s.post(t, forgotPassword, "", obj{"email": u.Email})
	older := resetTokenIn(t, s.waitMail(t, u.Email, 2).Text)
	s.post(t, forgotPassword, "", obj{"email": u.Email})
	newer := resetTokenIn(t, s.waitMail(t, u.Email, 3).Text)
	wantError(t, s.post(t, resetPassword, "", obj{"token": older, "new_password": "yet-another-password"}), http.StatusBadRequest, "invalid_token")
	var ttl float64
	if err := s.db.QueryRow(ctx, `SELECT extract(epoch FROM expires_at - created_at) FROM password_resets WHERE user_id = $1`, u.ID).Scan(&ttl); err != nil || ttl < 1795 || ttl > 1805 {
		t.Errorf("reset token lifetime = %vs (%v), want 30 min", ttl, err)
	}
	if _, err := s.db.Exec(ctx, `UPDATE password_resets SET expires_at = now() - interval '1 second' WHERE user_id = $1`, u.ID); err != nil {
		t.Fatal(err)
	}
	wantError(t, s.post(t, resetPassword, "", obj{"token": newer, "new_password": "yet-another-password"}), http.StatusBadRequest, "invalid_token")
	decode[obj](t, s.get(t, "/platform/api/global/tenants", fresh), http.StatusOK) // failed resets revoke nothing
	if extra, err := revoked.NextMsg(200 * time.Millisecond); err == nil {
		t.Errorf("unexpected revocation event %s", extra.Data)
	}
}

func TestChangePassword(t *testing.T) {
	t.Parallel()
	s := startServer(t)
	revoked := s.subscribeRevocations(t)
	u := s.newUser(t, "change@example.com")
	tn := s.newTenant(t, u, "Change Co", "change-co")
	scoped := s.scoped(t, u, tn.ID)
	other := s.newUser(t, "bystander@example.com")

	wantError(t, s.put(t, changePassword, "", obj{"current_password": testPassword, "new_password": "a-new-password-1"}), http.StatusUnauthorized, "missing_token")
	wantError(t, s.put(t, changePassword, scoped, obj{"current_password": testPassword, "new_password": "a-new-password-1"}), http.StatusUnauthorized, "global_token_required")
	wantField(t, s.put(t, changePassword, u.Global, obj{"new_password": "a-new-password-1"}), "current_password")
	wantField(t, s.put(t, changePassword, u.Global, obj{"current_password": testPassword, "new_password": "short"}), "new_password")
	wantField(t, s.put(t, changePassword, u.Global, obj{"current_password": "wrong-password-x", "new_password": "a-new-password-1"}), "current_password")
	wantField(t, s.put(t, changePassword, u.Global, obj{"current_password": strings.Repeat("x", 300), "new_password": "a-new-password-1"}), "current_password")
	// Refusals change nothing.
	decode[obj](t, s.get(t, "/platform/api/global/tenants", u.Global), http.StatusOK)

	r := s.put(t, changePassword, u.Global, obj{"current_password": testPassword, "new_password": "a-new-password-1"})
	if got := decode[obj](t, r, http.StatusOK); len(got) != 1 || got["status"] != "ok" {
		t.Errorf("change password = %s, want {\"status\":\"ok\"}", r)
	}
	wantRevoked(t, revoked, u.ID, "password_changed")
	// The caller's own tokens are revoked too.
	wantError(t, s.get(t, "/platform/api/global/tenants", u.Global), http.StatusUnauthorized, "invalid_token")
	wantError(t, s.get(t, "/platform/api/service/info", scoped), http.StatusUnauthorized, "invalid_token")
	wantError(t, s.put(t, changePassword, u.Global, obj{"current_password": "a-new-password-1", "new_password": "a-new-password-2"}), http.StatusUnauthorized, "invalid_token")
	// Other users are untouched.
	decode[obj](t, s.get(t, "/platform/api/global/tenants", other.Global), http.StatusOK)
	wantError(t, s.post(t, loginPath, "", obj{"email": u.Email, "password": testPassword}), http.StatusUnauthorized, "invalid_credentials")
	s.login(t, u.Email, "a-new-password-1")
}

// ---------------------------------------------------------------- SMTP

type smtpMsg struct {
	From, To, User string
	Data           []byte
}

// smtpSink is an SMTP server (go-smtp) that accepts PLAIN auth as
// mailer/s3cret and hands every message to a channel.
type smtpSink struct{ msgs chan smtpMsg }

func (b *smtpSink) NewSession(*smtp.Conn) (smtp.Session, error) { return &smtpSession{b: b}, nil }

type smtpSession struct {
	b   *smtpSink
	cur smtpMsg
}

func (s *smtpSession) AuthMechanisms() []string { return []string{sasl.Plain} }
func (s *smtpSession) Auth(string) (sasl.Server, error) {
	return sasl.NewPlainServer(func(_, user, pass string) error {
		if user != "mailer" || pass != "s3cret" {
			return errors.New("bad credentials")
		}
		s.cur.User = user
		return nil
	}), nil
}
func (s *smtpSession) Mail(from string, _ *smtp.MailOptions) error {
	if s.cur.User == "" {
		return smtp.ErrAuthRequired
	}
	s.cur.From = from
	return nil
}
func (s *smtpSession) Rcpt(to string, _ *smtp.RcptOptions) error { s.cur.To = to; return nil }
func (s *smtpSession) Data(r io.Reader) error {
	b, err := io.ReadAll(r)
	if err != nil {
		return err
	}
	s.cur.Data = b
	s.b.msgs <- s.cur
	return nil
}
func (s *smtpSession) Reset()        { s.cur.From, s.cur.To, s.cur.Data = "", "", nil }
func (s *smtpSession) Logout() error { return nil }

func TestOTPMailOverSMTP(t *testing.T) {
	t.Parallel()
	sink := &smtpSink{msgs: make(chan smtpMsg, 10)}
	srv := smtp.NewServer(sink)
	srv.Domain = "localhost"
	srv.AllowInsecureAuth = true // loopback only; net/smtp sends PLAIN to localhost without TLS
	srv.ReadTimeout, srv.WriteTimeout = 10*time.Second, 10*time.Second
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go func() { _ = srv.Serve(l) }()
	t.Cleanup(func() { _ = srv.Close() })

	s := startServer(t, "SMTP_ADDR="+l.Addr().String(), "SMTP_FROM=TruePortAI <login@trueport.test>",
		"SMTP_USERNAME=mailer", "SMTP_PASSWORD=s3cret")
	u := s.newUser(t, "smtp@example.com")
	decode[obj](t, s.post(t, otpRequest, "", obj{"email": u.Email}), http.StatusAccepted)

	var got smtpMsg
	select {
	case got = <-sink.msgs:
	case <-time.After(10 * time.Second):
		t.Fatalf("no mail reached the SMTP server\n%s", s.logs.String())
	}
	if got.From != "login@trueport.test" || got.To != u.Email || got.User != "mailer" {
		t.Errorf("envelope from %q to %q auth %q", got.From, got.To, got.User)
	}
	msg, err := mail.ReadMessage(bytes.NewReader(got.Data))
	if err != nil {
		t.Fatalf("not an RFC 5322 message: %v\n%s", err, got.Data)
	}
	if from, err := msg.Header.AddressList("From"); err != nil || from[0].Address != "login@trueport.test" {
		t.Errorf("From header = %v (%v)", from, err)
	}
	if to := msg.Header.Get("To"); to != u.Email {
		t.Errorf("To header = %q", to)
	}
	body, err := io.ReadAll(quotedprintable.NewReader(msg.Body))
	if err != nil {
		t.Fatal(err)
	}
	code := codeIn(t, string(body))
	if strings.Contains(s.logs.String(), code) {
		t.Errorf("with SMTP configured the code must not reach the log")
	}
	r := s.post(t, otpVerify, "", obj{"email": u.Email, "code": code})
	if tok := decode[obj](t, r, http.StatusOK)["global_access_token"]; tok == nil || tok == "" {
		t.Errorf("otp/verify with the mailed code = %s", r)
	}
}

// ---------------------------------------------------------------- rate limits

// wantLimited asserts a 429 rate_limited naming limit, with Retry-After.
func wantLimited(t *testing.T, r resp, limit string, maxRetry int) {
	t.Helper()
	env := wantError(t, r, http.StatusTooManyRequests, "rate_limited")
	if env.Details["limit"] != limit {
		t.Errorf("429 names limit %v, want %s: %s", env.Details["limit"], limit, r.Body)
	}
	ra, err := strconv.Atoi(r.Header.Get("Retry-After"))
	if err != nil || ra < 1 || ra > maxRetry {
		t.Errorf("Retry-After = %q, want 1..%d", r.Header.Get("Retry-After"), maxRetry)
	}
}

func (s *server) loginFrom(t *testing.T, email, pw, xff string) resp {
	t.Helper()
	rq := req{Method: http.MethodPost, Path: loginPath, Body: obj{"email": email, "password": pw}}
	if xff != "" {
		rq.Header = map[string]string{"X-Forwarded-For": xff}
	}
	return s.do(t, rq)
}

func TestLoginRateLimitAndEnumeration(t *testing.T) {
	t.Parallel()
	clock := newLimitClock()
	s := startServerClock(t, clock)
	u := s.newUser(t, "limited@example.com") // one login, successful: not counted per IP

	// Same answer for a wrong password and an unknown email.
	sameBody(t, "login", s.loginFrom(t, u.Email, "wrong-password-1", ""), s.loginFrom(t, "unknown@example.com", "wrong-password-1", ""))
	// Malformed attempts are refused before the limiter and do not count.
	for range 5 {
		wantError(t, s.post(t, loginPath, "", obj{"email": u.Email}), http.StatusBadRequest, "")
	}
	// Failed attempts 3..30 from this IP (X-Forwarded-For from an untrusted
	// peer is ignored, so each spoofed address still counts against
	// 127.0.0.1).
	for i := 3; i <= 30; i++ {
		wantError(t, s.loginFrom(t, fmt.Sprintf("user%d@example.com", i), "wrong-password-1", fmt.Sprintf("203.0.113.%d", i)), http.StatusUnauthorized, "invalid_credentials")
	}
	// The 31st is refused, even with the right password.
	wantLimited(t, s.loginFrom(t, u.Email, testPassword, "198.51.100.1"), "login_failures_per_ip", 900)
	wantLimited(t, s.loginFrom(t, "fresh@example.com", testPassword, ""), "login_failures_per_ip", 900)
	// One interval later (15 min / 30) one more attempt passes, then the
	// limit answers again.
	clock.advance(30 * time.Second)
	wantError(t, s.loginFrom(t, "late@example.com", "wrong-password-1", ""), http.StatusUnauthorized, "invalid_credentials")
	wantLimited(t, s.loginFrom(t, "later@example.com", "wrong-password-1", ""), "login_failures_per_ip", 30)
	// Other routes are not affected.
	decode[obj](t, s.get(t, "/platform/api/global/tenants", u.Global), http.StatusOK)
}

func TestLoginRateLimitBehindTrustedProxy(t *testing.T) {
	t.Parallel()
	s := startServerClock(t, newLimitClock(), "TRUSTED_PROXIES=10.9.0.0/16, 127.0.0.1")
	s.newUser(t, "proxied@example.com")

	// Distinct clients behind the proxy have their own IP budgets.
	for i := range 12 {
		xff := fmt.Sprintf("192.0.2.%d", i+1)
		wantError(t, s.loginFrom(t, fmt.Sprintf("someone%d@example.com", i), "wrong-password-1", xff), http.StatusUnauthorized, "invalid_credentials")
	}
	// One email from many addresses: the per-email limit (10 / 15 min, every
	// attempt; newUser's login was the first).
	for i := 2; i <= 10; i++ {
		wantError(t, s.loginFrom(t, "proxied@example.com", "wrong-password-1", fmt.Sprintf("198.51.100.%d", i)), http.StatusUnauthorized, "invalid_credentials")
	}
	wantLimited(t, s.loginFrom(t, "PROXIED@example.com", testPassword, "198.51.100.99"), "login_per_email", 900)
	// One client address (behind a chain of trusted proxies): per-IP limit
	// of failed attempts.
	for i := 1; i <= 30; i++ {
		wantError(t, s.loginFrom(t, fmt.Sprintf("spray%d@example.com", i), "wrong-password-1", "203.0.113.7, 10.9.1.1"), http.StatusUnauthorized, "invalid_credentials")
	}
	wantLimited(t, s.loginFrom(t, "spray-last@example.com", "wrong-password-1", "1.2.3.4, 203.0.113.7, 10.9.1.1"), "login_failures_per_ip", 900)
}

func TestOTPAndResetRateLimits(t *testing.T) {
	t.Parallel()
	s := startServerClock(t, newLimitClock())
	u := s.newUser(t, "spam@example.com")
	for range 5 {
		sameBody(t, "otp/request", s.post(t, otpRequest, "", obj{"email": u.Email}), s.post(t, otpRequest, "", obj{"email": "spam-ghost@example.com"}))
		decode[obj](t, s.post(t, forgotPassword, "", obj{"email": u.Email}), http.StatusAccepted)
	}
	// The 6th request per email is limited, for known and unknown alike.
	known, unknown := s.post(t, otpRequest, "", obj{"email": "Spam@Example.com"}), s.post(t, otpRequest, "", obj{"email": "spam-ghost@example.com"})
	wantLimited(t, known, "otp_request_per_email", 900)
	wantLimited(t, unknown, "otp_request_per_email", 900)
	sameBody(t, "limited otp/request", known, unknown)
	wantLimited(t, s.post(t, forgotPassword, "", obj{"email": u.Email}), "forgot_password_per_email", 900)
	decode[obj](t, s.post(t, otpRequest, "", obj{"email": "someone-else@example.com"}), http.StatusAccepted)
	// Verify: 10 per email per 15 min, on top of the per-code try limit.
	for range 10 {
		wantError(t, s.post(t, otpVerify, "", obj{"email": u.Email, "code": "000000"}), http.StatusUnauthorized, "invalid_code")
	}
	wantLimited(t, s.post(t, otpVerify, "", obj{"email": u.Email, "code": "000000"}), "otp_verify_per_email", 900)
}

func TestManagementRateLimit(t *testing.T) {
	t.Parallel()
	s := startServer(t)
	u := s.newUser(t, "busy@example.com")
	t1 := s.newTenant(t, u, "Busy One", "busy-one")
	t2 := s.newTenant(t, u, "Busy Two", "busy-two")
	tok1, tok2 := s.scoped(t, u, t1.ID), s.scoped(t, u, t2.ID)

	start := time.Now()
	var wg sync.WaitGroup
	var mu sync.Mutex
	statuses := map[int]int{}
	for w := range 6 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range 50 {
				path := "/platform/api/service/info"
				if w%2 == 1 {
					path = "/platform/api/service/members"
				}
				r := s.get(t, path, tok1)
				mu.Lock()
				statuses[r.Status]++
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	if statuses[http.StatusOK] != 300 {
		t.Fatalf("300 requests in a minute: %v, want all 200", statuses)
	}
	// The limit refills one request every 200 ms (GCRA, 300/min): while the
	// burst ran a few more became due; they pass, then the limit answers.
	r := s.get(t, "/platform/api/service/info", tok1)
	for extra := 0; r.Status == http.StatusOK; extra++ {
		if due := int(time.Since(start)/(200*time.Millisecond)) + 1; extra >= due {
			t.Fatalf("%d requests past the burst of 300 admitted, at most %d were due", extra+1, due)
		}
		r = s.get(t, "/platform/api/service/info", tok1)
	}
	wantLimited(t, r, "management_per_user_tenant", 60)
	// The limit is per user and tenant: the same user's other tenant is free.
	decode[obj](t, s.get(t, "/platform/api/service/info", tok2), http.StatusOK)
	// Global routes are outside the management limit.
	decode[obj](t, s.get(t, "/platform/api/global/tenants", u.Global), http.StatusOK)
}
