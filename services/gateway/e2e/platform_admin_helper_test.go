package e2e

import (
	"fmt"
	"net/http"
	"regexp"
	"time"
)

var verifyLinkRE = regexp.MustCompile(`/verify-email\?token=([A-Za-z0-9_-]{43})`)

// platformAdmin registers email (listed in the platform's
// PLATFORM_ADMIN_EMAILS), logs in and proves the address with the
// verification token the platform mails (the log sender of APP_ENV=dev):
// only a proven address becomes platform admin. It returns the global token.
func (s *stack) platformAdmin(email string) string {
	t := s.t
	t.Helper()
	p := s.platformURL + "/platform/api"
	if c := call(t, "POST", p+"/global/auth/register", "", map[string]string{"email": email, "password": "correct-horse-battery"}, nil); c != http.StatusCreated {
		t.Fatalf("register %s: %d", email, c)
	}
	var login struct {
		Token string `json:"global_access_token"`
	}
	if c := call(t, "POST", p+"/global/auth/login", "", map[string]string{"email": email, "password": "correct-horse-battery"}, &login); c != http.StatusOK {
		t.Fatalf("login %s: %d", email, c)
	}
	if c := call(t, "POST", p+"/global/auth/verify-email/request", login.Token, nil, nil); c != http.StatusAccepted {
		t.Fatalf("verify-email/request: %d", c)
	}
	var tok string
	eventually(t, 10*time.Second, func() error {
		m := verifyLinkRE.FindStringSubmatch(s.platform.logs())
		if m == nil {
			return fmt.Errorf("no verification mail for %s in the platform log", email)
		}
		tok = m[1]
		return nil
	})
	var out struct {
		User struct {
			PlatformAdmin bool `json:"platform_admin"`
		} `json:"user"`
	}
	if c := call(t, "POST", p+"/global/auth/verify-email/confirm", login.Token, map[string]string{"token": tok}, &out); c != http.StatusOK || !out.User.PlatformAdmin {
		t.Fatalf("verify-email/confirm: %d %+v", c, out)
	}
	return login.Token
}
