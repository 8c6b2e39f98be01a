package billing

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"sync"
	"testing"
	"time"

	"trueportai/services/platform-backend/internal/audit"
)

// fakeStore is an in-memory billing.Store (a test double): one mutex plays
// the tenant row lock; a failed unit of work leaves the state as it was.
type fakeStore struct {
	mu        sync.Mutex
	plans     map[string]Plan
	planOf    map[string]string // tenant → plan id
	members   map[string]int64
	retention map[string]int64
	subs      []Subscription
	audit     []audit.Entry
	// beforeLock runs just before WithTenantLocked takes the lock (a
	// concurrent change sneaking in after the pre-checks).
	beforeLock func()
}

func newFakeStore() *fakeStore {
	enterprise := Plan{ID: "enterprise", MaxMembers: 1000, MaxAPIKeys: 1000, RetentionDays: 365}
	return &fakeStore{plans: map[string]Plan{"free": free, "pro": pro, "enterprise": enterprise}, planOf: map[string]string{}, members: map[string]int64{}, retention: map[string]int64{}}
}

func (f *fakeStore) Overrides(context.Context, string) (Overrides, error) { return Overrides{}, nil }

func (f *fakeStore) PlanByID(_ context.Context, id string) (Plan, error) {
	p, ok := f.plans[id]
	if !ok {
		return p, ErrNotFound
	}
	return p, nil
}

func (f *fakeStore) MemberCount(_ context.Context, tenantID string) (int64, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.members[tenantID], nil
}

func (f *fakeStore) WithTenantLocked(_ context.Context, tenantID string, fn func(Tx) error) error {
	if f.beforeLock != nil {
		f.beforeLock()
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if _, ok := f.planOf[tenantID]; !ok {
		return ErrNotFound
	}
	planOf, retention, nsubs, naudit := f.planOf[tenantID], f.retention[tenantID], len(f.subs), len(f.audit)
	if err := fn(&fakeTx{f: f, id: tenantID}); err != nil {
		f.planOf[tenantID], f.retention[tenantID], f.subs, f.audit = planOf, retention, f.subs[:nsubs], f.audit[:naudit]
		return err
	}
	return nil
}

type fakeTx struct {
	f  *fakeStore
	id string
}

func (t *fakeTx) Plan() Plan { return t.f.plans[t.f.planOf[t.id]] }

func (t *fakeTx) CountMembers(context.Context) (int64, error) { return t.f.members[t.id], nil }

func (t *fakeTx) StartSubscription(_ context.Context, s NewSubscription) (Subscription, error) {
	sub := Subscription{ID: "sub-" + s.PlanID, TenantID: t.id, PlanID: s.PlanID, Status: "active", StartedAt: s.Now}
	t.f.subs = append(t.f.subs, sub)
	t.f.planOf[t.id] = s.PlanID
	return sub, nil
}

func (t *fakeTx) CapRetention(_ context.Context, days int64) (bool, error) {
	if t.f.retention[t.id] > days {
		t.f.retention[t.id] = days
		return true, nil
	}
	return false, nil
}

func (t *fakeTx) Audit(_ context.Context, e audit.Entry) error {
	t.f.audit = append(t.f.audit, e)
	return nil
}

type fakeKeys struct {
	n     int64
	err   error
	calls int
}

func (k *fakeKeys) CountKeys(context.Context, string) (int64, error) { k.calls++; return k.n, k.err }

type fakePayments struct {
	mu      sync.Mutex
	charged []Charge
	voided  []Receipt
	err     error
}

func (p *fakePayments) Charge(_ context.Context, c Charge) (Receipt, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.err != nil {
		return Receipt{}, p.err
	}
	p.charged = append(p.charged, c)
	return Receipt{InvoiceID: "inv-" + c.PlanID}, nil
}

func (p *fakePayments) Void(_ context.Context, r Receipt) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.voided = append(p.voided, r)
	return nil
}

var (
	_ Store = (*fakeStore)(nil)
	_ Tx    = (*fakeTx)(nil)
)

var t0 = time.Date(2026, 12, 6, 12, 0, 0, 0, time.UTC)

type world struct {
	st   *fakeStore
	keys *fakeKeys
	pay  *fakePayments
	svc  *Service
}

// newWorld has tenant "t1" on plan with members and a 30-day retention.
func newWorld(plan string, members int64) world {
	w := world{st: newFakeStore(), keys: &fakeKeys{}, pay: &fakePayments{}}
	w.st.planOf["t1"], w.st.members["t1"], w.st.retention["t1"] = plan, members, 30
	w.svc = NewService(slog.New(slog.NewTextHandler(io.Discard, nil)), w.st, w.keys, w.pay, func() time.Time { return t0 })
	return w
}

func TestChangePlan(t *testing.T) {
	ctx := context.Background()
	owner := audit.Actor{UserID: "u1", Email: "owner@x.example"}

	t.Run("upgrade", func(t *testing.T) {
		w := newWorld("free", 2)
		ch, err := w.svc.ChangePlan(ctx, "t1", "free", "pro", owner)
		if err != nil {
			t.Fatal(err)
		}
		if ch.From.ID != "free" || ch.To.ID != "pro" || ch.Subscription.PlanID != "pro" || w.st.planOf["t1"] != "pro" {
			t.Errorf("change = %+v, tenant on %s", ch, w.st.planOf["t1"])
		}
		if w.keys.calls != 0 {
			t.Error("an upgrade asked for the key count")
		}
		if len(w.pay.charged) != 1 || w.pay.charged[0].AmountUSD != 49 || !w.pay.charged[0].PeriodEnd.Equal(t0.AddDate(0, 1, 0)) {
			t.Errorf("charges = %+v", w.pay.charged)
		}
		if a := w.st.audit; len(a) != 1 || a[0].Action != audit.SubscriptionChange || a[0].Details["invoice_id"] != "inv-pro" ||
			a[0].Details["retention_capped"] != false || a[0].Details["from"] != "free" {
			t.Errorf("audit = %+v", a)
		}
	})

	t.Run("downgrade caps retention", func(t *testing.T) {
		w := newWorld("pro", 3)
		w.keys.n = 3
		if _, err := w.svc.ChangePlan(ctx, "t1", "pro", "free", owner); err != nil {
			t.Fatal(err)
		}
		if w.keys.calls != 1 || w.st.retention["t1"] != 7 || w.st.audit[0].Details["retention_capped"] != true {
			t.Errorf("key calls %d, retention %d, audit %+v", w.keys.calls, w.st.retention["t1"], w.st.audit)
		}
	})

	refusals := []struct {
		name    string
		plan    string
		members int64
		keys    int64
		keysErr error
		from    string
		to      string
		want    error
		charged bool // the charge happened (and must be voided)
	}{
		{"unknown plan", "free", 1, 0, nil, "free", "platinum", ErrUnknownPlan, false},
		{"same plan", "pro", 1, 0, nil, "pro", "pro", ErrAlreadyOnPlan, false},
		{"too many keys", "pro", 1, 5, nil, "pro", "free", &LimitError{PlanID: "free", Exceeded: []LimitExceeded{{LimitAPIKeys, 3, 5}}}, false},
		{"too many members and keys", "pro", 4, 5, nil, "pro", "free",
			&LimitError{PlanID: "free", Exceeded: []LimitExceeded{{LimitMembers, 3, 4}, {LimitAPIKeys, 3, 5}}}, false},
		{"gateway down", "pro", 1, 0, errors.New("gateway_unavailable"), "pro", "free", nil, false},
		{"plan changed since the caller looked", "enterprise", 1, 0, nil, "free", "pro", ErrPlanChanged, true},
		{"moved to the target since the caller looked", "pro", 1, 0, nil, "free", "pro", ErrAlreadyOnPlan, true},
		{"tenant gone", "", 0, 0, nil, "free", "pro", ErrNotFound, true},
	}
	for _, tt := range refusals {
		t.Run(tt.name, func(t *testing.T) {
			w := newWorld(tt.plan, tt.members)
			if tt.plan == "" {
				delete(w.st.planOf, "t1")
			}
			w.keys.n, w.keys.err = tt.keys, tt.keysErr
			_, err := w.svc.ChangePlan(ctx, "t1", tt.from, tt.to, owner)
			switch want := tt.want.(type) {
			case nil:
				if err == nil || !errors.Is(err, tt.keysErr) {
					t.Fatalf("err = %v, want the gateway's %v", err, tt.keysErr)
				}
			case *LimitError:
				if !sameLimitError(err, want) {
					t.Fatalf("err = %v, want %v", err, want)
				}
			default:
				if !errors.Is(err, want) {
					t.Fatalf("err = %v, want %v", err, want)
				}
			}
			if got := len(w.pay.charged) == 1; got != tt.charged || len(w.pay.voided) != len(w.pay.charged) {
				t.Errorf("charged %v, voided %v", w.pay.charged, w.pay.voided)
			}
			if len(w.st.subs) != 0 || len(w.st.audit) != 0 || tt.plan != "" && w.st.planOf["t1"] != tt.plan {
				t.Errorf("a refused change changed something: subs %v, audit %v, plan %s", w.st.subs, w.st.audit, w.st.planOf["t1"])
			}
		})
	}

	t.Run("charge fails", func(t *testing.T) {
		w := newWorld("free", 1)
		w.pay.err = errors.New("declined")
		if _, err := w.svc.ChangePlan(ctx, "t1", "free", "pro", owner); !errors.Is(err, w.pay.err) || w.st.planOf["t1"] != "free" {
			t.Errorf("err = %v, plan %s", err, w.st.planOf["t1"])
		}
	})

	// Members are checked again under the lock: a member who joined after
	// the pre-check stops the downgrade, and the charge is voided.
	t.Run("member joins after the pre-check", func(t *testing.T) {
		w := newWorld("pro", 3)
		w.st.beforeLock = func() { w.st.mu.Lock(); w.st.members["t1"]++; w.st.mu.Unlock() }
		_, err := w.svc.ChangePlan(ctx, "t1", "pro", "free", owner)
		if !sameLimitError(err, &LimitError{PlanID: "free", Exceeded: []LimitExceeded{{LimitMembers, 3, 4}}}) {
			t.Fatalf("err = %v", err)
		}
		if len(w.pay.voided) != 1 || w.st.planOf["t1"] != "pro" {
			t.Errorf("voided %v, plan %s", w.pay.voided, w.st.planOf["t1"])
		}
	})

	// Two changes from the same plan at once: one wins, the other finds the
	// plan changed (or already the target) under the lock.
	t.Run("concurrent changes", func(t *testing.T) {
		for range 20 {
			w := newWorld("free", 1)
			var wg sync.WaitGroup
			errs := make([]error, 2)
			for i, to := range []string{"pro", "enterprise"} {
				wg.Go(func() { _, errs[i] = w.svc.ChangePlan(ctx, "t1", "free", to, owner) })
			}
			wg.Wait()
			if (errs[0] == nil) == (errs[1] == nil) || !errors.Is(errors.Join(errs...), ErrPlanChanged) || len(w.st.subs) != 1 {
				t.Fatalf("errs = %v, subs = %v", errs, w.st.subs)
			}
		}
	})
}
