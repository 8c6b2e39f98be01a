package app

// Auth limits that fit real users behind one address (issue 10): per client
// IP, login and code sign-in count failed attempts only; the mail routes,
// register and reset are limited per client IP as well as per email. The
// limits run on a clock held still (limitClock): the counts do not depend on
// how long a loaded machine takes to send the requests.

import (
	"fmt"
	"net/http"
	"strings"
	"sync"
	"testing"
)

// postFrom is a POST as the client at ip (the server must trust 127.0.0.1
// as a proxy).
func postFrom(ip, path string, body any) req {
	return req{Method: http.MethodPost, Path: path, Body: body, Header: map[string]string{"X-Forwarded-For": ip}}
}

// TestOfficeBehindOneAddress: twelve people behind one NAT all sign in
// within a minute (the old per-IP limit counted every attempt and refused
// the 11th); a spray of failed logins across 60 emails from one address is
// stopped, and only that address.
func TestOfficeBehindOneAddress(t *testing.T) {
	t.Parallel()
	s := startServerClock(t, newLimitClock(), "TRUSTED_PROXIES=127.0.0.1")
	const office, attacker = "198.51.100.20", "203.0.113.66"
	var people []string
	for i := range 12 {
		email := fmt.Sprintf("colleague%d@office.example", i)
		decode[obj](t, s.do(t, postFrom(office, "/platform/api/global/auth/register", obj{"email": email, "password": testPassword})), http.StatusCreated)
		people = append(people, email)
	}
	for _, email := range people {
		r := s.do(t, postFrom(office, loginPath, obj{"email": email, "password": testPassword}))
		if r.Status != http.StatusOK {
			t.Fatalf("login of %s from the office = %s, want 200", email, r)
		}
	}
	// A typo or two in the office counts, but does not lock anyone out.
	wantError(t, s.do(t, postFrom(office, loginPath, obj{"email": people[0], "password": "typo-password"})), http.StatusUnauthorized, "invalid_credentials")
	decode[obj](t, s.do(t, postFrom(office, loginPath, obj{"email": people[0], "password": testPassword})), http.StatusOK)

	// 60 failed logins across 60 emails from one address: 429 after 30.
	limited := 0
	for i := range 60 {
		r := s.do(t, postFrom(attacker, loginPath, obj{"email": fmt.Sprintf("victim%d@office.example", i), "password": "guess-password-1"}))
		switch {
		case r.Status == http.StatusTooManyRequests:
			wantLimited(t, r, "login_failures_per_ip", 900)
			limited++
		case i >= 30:
			t.Errorf("failed login %d from one address = %s, want 429", i+1, r)
		default:
			wantError(t, r, http.StatusUnauthorized, "invalid_credentials")
		}
	}
	if limited != 30 {
		t.Errorf("%d of 60 failed logins were limited, want 30", limited)
	}
	// The office is another address: still fine.
	decode[obj](t, s.do(t, postFrom(office, loginPath, obj{"email": people[1], "password": testPassword})), http.StatusOK)
}

// TestFailedLoginLimitUnderConcurrency: failures charge the limit before the
// password check, so concurrent failures cannot slip past it.
func TestFailedLoginLimitUnderConcurrency(t *testing.T) {
	t.Parallel()
	s := startServerClock(t, newLimitClock(), "TRUSTED_PROXIES=127.0.0.1")
	const ip = "192.0.2.44"
	for i := range 25 {
		wantError(t, s.do(t, postFrom(ip, loginPath, obj{"email": fmt.Sprintf("nobody%d@example.com", i), "password": "guess-password-1"})), http.StatusUnauthorized, "invalid_credentials")
	}
	var mu sync.Mutex
	got := map[int]int{}
	var wg sync.WaitGroup
	for i := range 10 {
		wg.Go(func() {
			r := s.do(t, postFrom(ip, loginPath, obj{"email": fmt.Sprintf("racer%d@example.com", i), "password": "guess-password-1"}))
			mu.Lock()
			got[r.Status]++
			mu.Unlock()
		})
	}
	wg.Wait()
	if got[http.StatusUnauthorized] != 5 || got[http.StatusTooManyRequests] != 5 {
		t.Errorf("10 concurrent failures with 5 left: %v, want five 401 and five 429", got)
	}
}

// TestAuthRoutesLimitedPerIP: code requests, code sign-in failures, forgot
// and reset password and register are limited per client IP, whatever the
// email; other addresses are not affected. The per-email limits stay.
func TestAuthRoutesLimitedPerIP(t *testing.T) {
	t.Parallel()
	s := startServerClock(t, newLimitClock(), "TRUSTED_PROXIES=127.0.0.1")
	const ip, other = "203.0.113.5", "198.51.100.5"

	for _, tc := range []struct {
		path, limit string
		n           int
		body        func(i int) any
		status      int
	}{
		{otpRequest, "otp_request_per_ip", 30, func(i int) any { return obj{"email": fmt.Sprintf("o%d@example.com", i)} }, http.StatusAccepted},
		{forgotPassword, "forgot_password_per_ip", 30, func(i int) any { return obj{"email": fmt.Sprintf("f%d@example.com", i)} }, http.StatusAccepted},
		{otpVerify, "otp_verify_failures_per_ip", 30, func(i int) any { return obj{"email": fmt.Sprintf("v%d@example.com", i), "code": "123456"} }, http.StatusUnauthorized},
		{resetPassword, "reset_password_per_ip", 20, func(int) any { return obj{"token": strings.Repeat("A", 43), "new_password": "a-brand-new-password"} }, http.StatusBadRequest},
		{"/platform/api/global/auth/register", "register_per_ip", 30, func(i int) any { return obj{"email": fmt.Sprintf("r%d@example.com", i), "password": testPassword} }, http.StatusCreated},
	} {
		for i := range tc.n {
			if r := s.do(t, postFrom(ip, tc.path, tc.body(i))); r.Status != tc.status {
				t.Fatalf("%s #%d = %s, want %d", tc.path, i+1, r, tc.status)
			}
		}
		wantLimited(t, s.do(t, postFrom(ip, tc.path, tc.body(tc.n))), tc.limit, 3600)
		if r := s.do(t, postFrom(other, tc.path, tc.body(tc.n+1))); r.Status != tc.status {
			t.Errorf("%s from another address = %s, want %d", tc.path, r, tc.status)
		}
	}

	// A successful code sign-in is not counted per IP: 29 failures, a
	// success, then the 30th failure still passes to the check.
	const office = "198.51.100.77"
	u := s.newUser(t, "coder@example.com")
	decode[obj](t, s.do(t, postFrom(other, otpRequest, obj{"email": u.Email})), http.StatusAccepted)
	code := codeIn(t, s.waitMail(t, u.Email, 1).Text)
	for i := range 29 {
		wantError(t, s.do(t, postFrom(office, otpVerify, obj{"email": fmt.Sprintf("w%d@example.com", i), "code": "123456"})), http.StatusUnauthorized, "invalid_code")
	}
	decode[obj](t, s.do(t, postFrom(office, otpVerify, obj{"email": u.Email, "code": code})), http.StatusOK)
	wantError(t, s.do(t, postFrom(office, otpVerify, obj{"email": "w-last@example.com", "code": "123456"})), http.StatusUnauthorized, "invalid_code")
	wantLimited(t, s.do(t, postFrom(office, otpVerify, obj{"email": "w-over@example.com", "code": "123456"})), "otp_verify_failures_per_ip", 900)

	// Register per email: 10 attempts per 15 min whatever the address.
	for i := range 10 {
		r := s.do(t, postFrom(fmt.Sprintf("192.0.2.%d", i+1), "/platform/api/global/auth/register", obj{"email": "taken@example.com", "password": testPassword}))
		if i == 0 && r.Status != http.StatusCreated || i > 0 && r.Status != http.StatusConflict {
			t.Fatalf("register #%d of one email = %s", i+1, r)
		}
	}
	wantLimited(t, s.do(t, postFrom("192.0.2.99", "/platform/api/global/auth/register", obj{"email": "TAKEN@example.com", "password": testPassword})), "register_per_email", 900)
}
