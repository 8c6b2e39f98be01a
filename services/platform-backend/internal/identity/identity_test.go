package identity

import (
	"bytes"
	"context"
	"io"
	"log/slog"
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
	live := StoredCode{Hash: right, ExpiresAt: now.Add(time.Minute)}
	with := func(tries int, exp time.Time) StoredCode { c := live; c.Tries, c.ExpiresAt = tries, exp; return c }
	tests := []struct {
		name     string
		code     StoredCode
		try      []byte
		wantOK   bool
		wantFate CodeFate
	}{
		{"right code", live, right, true, CodeDelete}, // single use
		{"right code after 4 wrong tries", with(4, live.ExpiresAt), right, true, CodeDelete},
		{"wrong code", live, wrong, false, CodeCountTry},
		{"4th wrong try", with(3, live.ExpiresAt), wrong, false, CodeCountTry},
		{"5th wrong try kills the code", with(4, live.ExpiresAt), wrong, false, CodeDelete},
		{"right code after 5 wrong tries", with(5, live.ExpiresAt), right, false, CodeDelete},
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

// fakeStore keeps one user's code in memory (a test double).
type fakeStore struct {
	mu   sync.Mutex
	user User
	code *StoredCode
}

func (f *fakeStore) UserByEmail(_ context.Context, email string) (User, error) {
	if email != f.user.Email {
		return User{}, ErrNotFound
	}
	return f.user, nil
}

func (f *fakeStore) PutOTP(_ context.Context, _ string, hash []byte, exp, _ time.Time) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.code = &StoredCode{Hash: hash, ExpiresAt: exp}
	return nil
}

func (f *fakeStore) ConsumeOTP(_ context.Context, _ string, judge func(StoredCode) CodeFate) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.code == nil {
		return nil
	}
	if judge(*f.code) == CodeDelete {
		f.code = nil
	} else {
		f.code.Tries++
	}
	return nil
}

func (f *fakeStore) PutPasswordReset(context.Context, string, []byte, time.Time, time.Time) error {
	return nil
}

func (f *fakeStore) ResetPassword(context.Context, []byte, string, time.Time) (User, error) {
	return User{}, ErrNotFound
}

func (f *fakeStore) ChangePassword(context.Context, string, string, string) (User, error) {
	return User{}, ErrNotFound
}

type noRevoker struct{}

func (noRevoker) TokensRevoked(context.Context, events.TokensRevokedEvent) {}

func TestVerifyOTP(t *testing.T) {
	ctx := context.Background()
	now := time.Date(2026, 12, 6, 12, 0, 0, 0, time.UTC)
	st := &fakeStore{user: User{ID: "u1", Email: "a@x.example"}}
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	s, err := New(log, st, nil, worker.New(log, worker.Options{}), noRevoker{}, Config{Pepper: bytes.Repeat([]byte{7}, 32)}, func() time.Time { return now })
	if err != nil {
		t.Fatal(err)
	}
	put := func(code string) {
		if err := st.PutOTP(ctx, "u1", s.mac("otp", "u1", code), now.Add(10*time.Minute), now); err != nil {
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
	if u, err := s.VerifyOTP(ctx, "a@x.example", "123-456"); err != nil || u.ID != "u1" {
		t.Fatalf("right code: %v, %v", u, err)
	}
	invalid("a@x.example", "123456") // single use

	put("654321")
	for range 5 {
		invalid("a@x.example", "000000")
	}
	invalid("a@x.example", "654321") // five wrong tries killed it
	if st.code != nil {
		t.Errorf("code kept after five wrong tries: %+v", st.code)
	}
}
