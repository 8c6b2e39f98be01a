package identity

import (
	"bytes"
	"context"
	"io"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"trueportai/services/internal/apperr"
	"trueportai/services/internal/events"
	"trueportai/services/platform-backend/internal/worker"
)

func TestJudgeCode(t *testing.T) {
	now := time.Date(2026, 12, 6, 12, 0, 0, 0, time.UTC)
	right, wrong := []byte("right"), []byte("wrong")
	live := StoredCode{Hash: right, ExpiresAt: now.Add(time.Minute), TriesResetAt: now.Add(time.Minute)}
	with := func(tries int, exp time.Time) StoredCode { c := live; c.Tries, c.ExpiresAt = tries, exp; return c }
	tests := []struct {
		name     string
		code     StoredCode
		try      []byte
		wantOK   bool
		wantFate CodeFate
	}{
		{"right code", live, right, true, CodeSpent}, // single use, proves the address
		{"right code after 4 wrong tries", with(4, live.ExpiresAt), right, true, CodeSpent},
		{"wrong code", live, wrong, false, CodeCountTry},
		{"4th wrong try", with(3, live.ExpiresAt), wrong, false, CodeCountTry},
		{"5th wrong try is counted (the code is dead after it)", with(4, live.ExpiresAt), wrong, false, CodeCountTry},
		{"right code after 5 wrong tries: kept dead, count intact", with(5, live.ExpiresAt), right, false, CodeKeep},
		{"wrong code after 5 wrong tries", with(5, live.ExpiresAt), wrong, false, CodeKeep},
		{"right code, expired", with(0, now), right, false, CodeDelete},
		{"wrong code, expired", with(0, now.Add(-time.Second)), wrong, false, CodeDelete},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ok, fate := judgeCode(tt.code, tt.try, now, 5)
			if ok != tt.wantOK || fate != tt.wantFate {
				t.Errorf("judgeCode = %v, %v; want %v, %v", ok, fate, tt.wantOK, tt.wantFate)
			}
		})
	}
}

func TestRenewCode(t *testing.T) {
	now := time.Date(2026, 12, 6, 12, 0, 0, 0, time.UTC)
	ttl := 10 * time.Minute
	hash := []byte("new")
	old := StoredCode{Hash: []byte("old"), Tries: 4, ExpiresAt: now.Add(3 * time.Minute), TriesResetAt: now.Add(time.Minute)}
	fresh := StoredCode{Hash: hash, ExpiresAt: now.Add(ttl), TriesResetAt: now.Add(ttl)}
	tests := []struct {
		name  string
		old   StoredCode
		found bool
		want  StoredCode
	}{
		{"first code", StoredCode{}, false, fresh},
		{"resend inside the window keeps the count and the window", old, true,
			StoredCode{Hash: hash, Tries: 4, ExpiresAt: now.Add(ttl), TriesResetAt: old.TriesResetAt}},
		{"resend after a dead code, inside the window", func() StoredCode { c := old; c.Tries = 5; return c }(), true,
			StoredCode{Hash: hash, Tries: 5, ExpiresAt: now.Add(ttl), TriesResetAt: old.TriesResetAt}},
		{"resend once the window is over starts afresh", func() StoredCode { c := old; c.TriesResetAt = now; return c }(), true, fresh},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := renewCode(tt.old, tt.found, hash, now, ttl)
			if string(got.Hash) != string(tt.want.Hash) || got.Tries != tt.want.Tries || !got.ExpiresAt.Equal(tt.want.ExpiresAt) || !got.TriesResetAt.Equal(tt.want.TriesResetAt) {
				t.Errorf("renewCode = %+v, want %+v", got, tt.want)
			}
			if got.TriesResetAt.After(got.ExpiresAt) {
				t.Errorf("window ends after the code: %+v", got)
			}
		})
	}
}

// fakeStore keeps users and their codes in memory (a test double; one mutex
// plays the row locks).
type fakeStore struct {
	mu    sync.Mutex
	users map[string]User // by id
	codes map[string]*StoredCode
}

func newFakeStore(users ...User) *fakeStore {
	f := &fakeStore{users: map[string]User{}, codes: map[string]*StoredCode{}}
	for _, u := range users {
		f.users[u.ID] = u
	}
	return f
}

func codeKey(userID string, p Purpose) string { return userID + "|" + string(p) }

func (f *fakeStore) UserByEmail(_ context.Context, email string) (User, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	for _, u := range f.users {
		if u.Email == email {
			return u, nil
		}
	}
	return User{}, ErrNotFound
}

func (f *fakeStore) code(userID string, p Purpose) *StoredCode {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.codes[codeKey(userID, p)]
}

func (f *fakeStore) PutCode(_ context.Context, userID string, p Purpose, _ time.Time, renew func(StoredCode, bool) StoredCode) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	var old StoredCode
	c, found := f.codes[codeKey(userID, p)]
	if found {
		old = *c
	}
	n := renew(old, found)
	f.codes[codeKey(userID, p)] = &n
	return nil
}

func (f *fakeStore) ConsumeCode(_ context.Context, userID string, p Purpose, judge func(StoredCode) CodeFate, prove func(User) Proof) (User, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	u, ok := f.users[userID]
	if !ok {
		return User{}, ErrNotFound
	}
	c := f.codes[codeKey(userID, p)]
	if c == nil {
		return u, nil
	}
	switch judge(*c) {
	case CodeCountTry:
		c.Tries++
	case CodeDelete:
		delete(f.codes, codeKey(userID, p))
	case CodeSpent:
		delete(f.codes, codeKey(userID, p))
		pr := prove(u)
		u.EmailVerified = true
		u.PlatformAdmin = u.PlatformAdmin || pr.GrantAdmin
		if pr.Reclaim {
			u.PasswordHash = ""
			u.TokenVersion++
		}
		f.users[userID] = u
	}
	return u, nil
}

func (f *fakeStore) PutPasswordReset(context.Context, string, []byte, time.Time, time.Time) error {
	return nil
}

func (f *fakeStore) ResetPassword(context.Context, []byte, string, time.Time, func(User) Proof) (User, error) {
	return User{}, ErrNotFound
}

func (f *fakeStore) ChangePassword(context.Context, string, string, string) (User, error) {
	return User{}, ErrNotFound
}

type noRevoker struct{}

func (noRevoker) TokensRevoked(context.Context, events.TokensRevokedEvent) {}

type revocations struct {
	mu  sync.Mutex
	evs []events.TokensRevokedEvent
}

func (r *revocations) TokensRevoked(_ context.Context, ev events.TokensRevokedEvent) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.evs = append(r.evs, ev)
}

func newTestService(t *testing.T, st Store, rev Revoker, now time.Time, admins ...string) *Service {
	t.Helper()
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	s, err := New(log, st, nil, worker.New(log, worker.Options{}), rev, Config{Pepper: bytes.Repeat([]byte{7}, 32), AdminEmails: admins}, func() time.Time { return now })
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func TestVerifyOTP(t *testing.T) {
	ctx := context.Background()
	now := time.Date(2026, 12, 6, 12, 0, 0, 0, time.UTC)
	st := newFakeStore(User{ID: "u1", Email: "a@x.example", PasswordHash: "registered"})
	rev := &revocations{}
	s := newTestService(t, st, rev, now, "a@x.example")
	put := func(code string) {
		t.Helper()
		if err := s.putCode(ctx, "u1", PurposeSignIn, s.mac("otp", "u1", code), s.cfg.OTPTTL); err != nil {
			t.Fatal(err)
		}
	}
	invalid := func(email, code string) {
		t.Helper()
		_, err := s.VerifyOTP(ctx, email, code)
		if ae, ok := apperr.As(err); !ok || ae.Code != "invalid_code" {
			t.Errorf("VerifyOTP(%q, %q) err = %v, want invalid_code", email, code, err)
		}
	}

	put("123456")
	invalid("b@x.example", "123456") // unknown email
	invalid("a@x.example", "12345")  // not six digits
	u, err := s.VerifyOTP(ctx, "a@x.example", "123-456")
	if err != nil || u.ID != "u1" {
		t.Fatalf("right code: %v, %v", u, err)
	}
	// The first proof of the address by a code: verified, admin (listed),
	// and the registration password and tokens revoked.
	if !u.EmailVerified || !u.PlatformAdmin || u.PasswordHash != "" || u.TokenVersion != 1 {
		t.Errorf("after the first code sign-in: %+v", u)
	}
	if len(rev.evs) != 1 || rev.evs[0].UserID != "u1" || rev.evs[0].Reason != "email_reclaimed" {
		t.Errorf("revocations = %+v", rev.evs)
	}
	invalid("a@x.example", "123456") // single use

	// Once proven, a code sign-in leaves the password alone.
	st.mu.Lock()
	st.users["u1"] = User{ID: "u1", Email: "a@x.example", PasswordHash: "set-after", EmailVerified: true, TokenVersion: 1}
	st.mu.Unlock()
	put("222222")
	if u, err := s.VerifyOTP(ctx, "a@x.example", "222222"); err != nil || u.PasswordHash != "set-after" || u.TokenVersion != 1 || len(rev.evs) != 1 {
		t.Errorf("code sign-in of a verified user: %+v, %v, %d revocations", u, err, len(rev.evs))
	}

	put("654321")
	for range 5 {
		invalid("a@x.example", "000000")
	}
	invalid("a@x.example", "654321") // five wrong tries killed it
	// A resend within the window does not buy new tries.
	put("777777")
	invalid("a@x.example", "777777")
	if c := st.code("u1", PurposeSignIn); c == nil || c.Tries != 5 {
		t.Errorf("count after a resend = %+v, want 5 kept", c)
	}
}

// TestConfirmEmail: a verification token proves only the address of the
// user it was sent to, grants admin to a listed address only, and keeps the
// password (the caller signed in with it).
func TestConfirmEmail(t *testing.T) {
	ctx := context.Background()
	now := time.Date(2026, 12, 6, 12, 0, 0, 0, time.UTC)
	a := User{ID: "ua", Email: "boss@x.example", PasswordHash: "pa"}
	b := User{ID: "ub", Email: "b@x.example", PasswordHash: "pb"}
	st := newFakeStore(a, b)
	s := newTestService(t, st, &revocations{}, now, "boss@x.example")
	tokA := strings.Repeat("A", 42) + "Q"
	if err := s.putCode(ctx, a.ID, PurposeVerifyEmail, s.mac("verify_email", a.ID, tokA), s.cfg.VerifyTTL); err != nil {
		t.Fatal(err)
	}
	wantInvalid := func(u User, tok string) {
		t.Helper()
		_, err := s.ConfirmEmail(ctx, u, tok)
		if ae, ok := apperr.As(err); !ok || ae.Code != "invalid_token" || ae.Details["field"] != "token" {
			t.Errorf("ConfirmEmail(%s, %q) = %v, want 400 invalid_token", u.ID, tok, err)
		}
	}
	wantInvalid(b, tokA)                    // A's token is not B's
	wantInvalid(a, "short")                 // malformed
	wantInvalid(a, tokA[:42]+"!")           // not base64url
	wantInvalid(a, strings.Repeat("B", 43)) // wrong
	// A sign-in code's MAC never passes as a verification token.
	if err := s.putCode(ctx, b.ID, PurposeSignIn, s.mac("verify_email", b.ID, tokA), s.cfg.OTPTTL); err != nil {
		t.Fatal(err)
	}
	wantInvalid(b, tokA)
	if got := st.users[b.ID]; got.EmailVerified || got.PlatformAdmin {
		t.Errorf("b after the tries: %+v", got)
	}

	got, err := s.ConfirmEmail(ctx, a, tokA)
	if err != nil || !got.EmailVerified || !got.PlatformAdmin || got.PasswordHash != "pa" || got.TokenVersion != 0 {
		t.Fatalf("ConfirmEmail(a) = %+v, %v", got, err)
	}
	if _, err := s.ConfirmEmail(ctx, got, tokA); err == nil {
		t.Error("a verified user confirmed again")
	} else if ae, _ := apperr.As(err); ae.Code != "email_already_verified" {
		t.Errorf("confirm when verified = %v, want email_already_verified", err)
	}
	if err := s.RequestEmailVerification(ctx, got); err == nil {
		t.Error("a verified user may request verification")
	}
}
