package store

// Postgres-backed tests of the unit of work: the domain rules, run by the
// domain services on this store, hold under concurrent requests because they
// are evaluated inside the transaction that holds the tenant's row lock.

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"sync"
	"testing"
	"time"

	"trueportai/services/internal/dbtest"
	"trueportai/services/internal/pgdb"
	"trueportai/services/internal/role"
	"trueportai/services/platform-backend/internal/audit"
	"trueportai/services/platform-backend/internal/billing"
	"trueportai/services/platform-backend/internal/configs"
	"trueportai/services/platform-backend/internal/identity"
	"trueportai/services/platform-backend/internal/migrations"
	"trueportai/services/platform-backend/internal/team"
)

func newStore(t *testing.T) *Store {
	t.Helper()
	ctx := context.Background()
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	pool, err := pgdb.Open(ctx, dbtest.NewURL(t, "pbstore"), log)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(pool.Close)
	if err := pgdb.Migrate(ctx, pool, migrations.FS, log); err != nil {
		t.Fatal(err)
	}
	return New(pool)
}

func user(t *testing.T, s *Store, name string) audit.Actor {
	t.Helper()
	u, err := s.CreateUser(context.Background(), name+"@x.example", name, "hash")
	if err != nil {
		t.Fatal(err)
	}
	return audit.Actor{UserID: u.ID, Email: u.Email}
}

func addMember(t *testing.T, s *Store, tenantID, userID string, r role.Role) {
	t.Helper()
	err := s.TeamStore().WithTenantLocked(context.Background(), tenantID, func(tx team.Tx) error { return tx.AddMember(context.Background(), userID, r) })
	if err != nil {
		t.Fatal(err)
	}
}

func TestErrNotFoundMatchesEveryDomain(t *testing.T) {
	for _, target := range []error{ErrNotFound, team.ErrNotFound, billing.ErrNotFound, configs.ErrNotFound, identity.ErrNotFound} {
		if !errors.Is(fmt.Errorf("wrapped: %w", ErrNotFound), target) {
			t.Errorf("store.ErrNotFound does not match %v", target)
		}
	}
	if errors.Is(ErrNotFound, team.ErrLastOwner) || errors.Is(team.ErrNotFound, ErrNotFound) {
		t.Error("ErrNotFound matches too much")
	}
}

func TestTwoOwnersLeavingAtOnce(t *testing.T) {
	s := newStore(t)
	ctx := context.Background()
	svc := team.NewService(s.TeamStore(), time.Now)
	for i := range 5 {
		a, b := user(t, s, fmt.Sprintf("a%d", i)), user(t, s, fmt.Sprintf("b%d", i))
		tn, err := s.CreateTenant(ctx, "T", fmt.Sprintf("tenant-%d", i), "free", a.UserID, configs.Storage{RetentionDays: 7})
		if err != nil {
			t.Fatal(err)
		}
		addMember(t, s, tn.ID, b.UserID, role.Owner)
		var wg sync.WaitGroup
		errs := make([]error, 2)
		for j, who := range []audit.Actor{a, b} {
			wg.Go(func() { _, errs[j] = svc.RemoveMember(ctx, tn.ID, who, who.UserID) })
		}
		wg.Wait()
		if (errs[0] == nil) == (errs[1] == nil) || !errors.Is(errors.Join(errs...), team.ErrLastOwner) {
			t.Fatalf("two owners leaving at once: %v (want one to leave, one ErrLastOwner)", errs)
		}
		owners, _, err := s.Members(ctx, tn.ID, 10, 0)
		if err != nil || len(owners) != 1 || owners[0].Role != role.Owner {
			t.Errorf("members after = %+v, %v", owners, err)
		}
	}
}

func TestConcurrentInvitesKeepSeats(t *testing.T) {
	s := newStore(t)
	ctx := context.Background()
	svc := team.NewService(s.TeamStore(), time.Now)
	owner := user(t, s, "owner")
	tn, err := s.CreateTenant(ctx, "T", "tenant-seats", "free", owner.UserID, configs.Storage{RetentionDays: 7}) // 3 seats, 1 taken
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	var mu sync.Mutex
	var ok, full int
	for i := range 8 {
		wg.Go(func() {
			_, err := svc.CreateInvite(ctx, team.InviteRequest{TenantID: tn.ID, Email: fmt.Sprintf("i%d@x.example", i), Role: role.Viewer}, owner,
				func(team.Invite, string) error { return nil })
			mu.Lock()
			defer mu.Unlock()
			var le *billing.LimitError
			switch {
			case err == nil:
				ok++
			case errors.As(err, &le):
				full++
			default:
				t.Error(err)
			}
		})
	}
	wg.Wait()
	if ok != 2 || full != 6 {
		t.Errorf("%d invites created, %d refused; want 2 and 6", ok, full)
	}
	if _, n, err := s.PendingInvites(ctx, tn.ID, time.Now(), 50, 0); err != nil || n != 2 {
		t.Errorf("pending invites = %d, %v", n, err)
	}
}

func TestAcceptInviteOnStore(t *testing.T) {
	s := newStore(t)
	ctx := context.Background()
	svc := team.NewService(s.TeamStore(), time.Now)
	owner, alice := user(t, s, "owner"), user(t, s, "alice")
	tn, err := s.CreateTenant(ctx, "Acme", "acme", "free", owner.UserID, configs.Storage{RetentionDays: 7})
	if err != nil {
		t.Fatal(err)
	}
	var tok string
	if _, err := svc.CreateInvite(ctx, team.InviteRequest{TenantID: tn.ID, Email: "alice@x.example", Role: role.Admin}, owner,
		func(_ team.Invite, tk string) error { tok = tk; return nil }); err != nil {
		t.Fatal(err)
	}
	if _, err := svc.AcceptInvite(ctx, "wrong-token", alice); !errors.Is(err, team.ErrNotFound) {
		t.Errorf("unknown token: %v", err)
	}
	ms, err := svc.AcceptInvite(ctx, tok, alice)
	if err != nil || ms.ID != tn.ID || ms.Slug != "acme" || ms.Role != role.Admin {
		t.Fatalf("accept = %+v, %v", ms, err)
	}
	if m, err := s.Membership(ctx, tn.ID, alice.UserID); err != nil || m.Role != role.Admin {
		t.Errorf("membership = %+v, %v", m, err)
	}
	if _, err := svc.AcceptInvite(ctx, tok, alice); !errors.Is(err, team.ErrInviteUsed) {
		t.Errorf("second accept: %v", err)
	}
	if err := s.TeamStore().WithTenantLocked(ctx, "00000000-0000-0000-0000-000000000000", func(team.Tx) error { return nil }); !errors.Is(err, team.ErrNotFound) {
		t.Errorf("unknown tenant: %v", err)
	}
}

type noKeys struct{}

func (noKeys) CountKeys(context.Context, string) (int64, error) { return 0, nil }

func TestConcurrentPlanChanges(t *testing.T) {
	s := newStore(t)
	ctx := context.Background()
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	svc := billing.NewService(log, s.BillingStore(), noKeys{}, billing.NewInvoicer(s), time.Now)
	owner := user(t, s, "owner")
	tn, err := s.CreateTenant(ctx, "T", "tenant-plans", "free", owner.UserID, configs.Storage{RetentionDays: 7})
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	errs := make([]error, 2)
	for i, to := range []string{"pro", "enterprise"} {
		wg.Go(func() { _, errs[i] = svc.ChangePlan(ctx, tn.ID, "free", to, owner) })
	}
	wg.Wait()
	if (errs[0] == nil) == (errs[1] == nil) || !errors.Is(errors.Join(errs...), billing.ErrPlanChanged) {
		t.Fatalf("concurrent changes: %v", errs)
	}
	subs, total, err := s.Subscriptions(ctx, tn.ID, 10, 0)
	if err != nil || total != 2 || subs[0].Status != "active" || subs[1].Status != "ended" {
		t.Errorf("subscriptions = %+v, %v", subs, err)
	}
	var void int
	if err := s.pool.QueryRow(ctx, `SELECT count(*) FROM invoices WHERE status = 'void'`).Scan(&void); err != nil || void != 1 {
		t.Errorf("void invoices = %d, %v; want the loser's", void, err)
	}
}

// A transaction waiting for the tenant lock while another one moves the
// tenant to another plan gets the tenant, with the new plan. (With the plan
// joined into the locking SELECT, Postgres rechecked the join against the old
// plan row after the wait and returned no row: "no such tenant".)
func TestLockWaiterSeesThePlanChange(t *testing.T) {
	s := newStore(t)
	ctx := context.Background()
	owner := user(t, s, "owner")
	tn, err := s.CreateTenant(ctx, "T", "tenant-waiter", "free", owner.UserID, configs.Storage{RetentionDays: 7})
	if err != nil {
		t.Fatal(err)
	}
	var waiterErr error
	var waiterPlan string
	done := make(chan struct{})
	err = s.BillingStore().WithTenantLocked(ctx, tn.ID, func(tx billing.Tx) error {
		if _, err := tx.StartSubscription(ctx, billing.NewSubscription{PlanID: "pro", Now: time.Now()}); err != nil {
			return err
		}
		go func() {
			defer close(done)
			waiterErr = s.TeamStore().WithTenantLocked(ctx, tn.ID, func(tx team.Tx) error {
				waiterPlan = tx.Tenant().Plan.ID
				return nil
			})
		}()
		// Commit only once the waiter is blocked on our lock.
		deadline := time.Now().Add(10 * time.Second)
		for {
			var waiting int
			if err := s.pool.QueryRow(ctx, `SELECT count(*) FROM pg_stat_activity WHERE datname = current_database()
				AND wait_event_type = 'Lock'`).Scan(&waiting); err != nil {
				return err
			}
			if waiting > 0 {
				return nil
			}
			if time.Now().After(deadline) {
				return errors.New("the second transaction never waited for the lock")
			}
			time.Sleep(5 * time.Millisecond)
		}
	})
	if err != nil {
		t.Fatal(err)
	}
	<-done
	if waiterErr != nil || waiterPlan != "pro" {
		t.Errorf("waiter: plan %q, err %v; want the new plan pro", waiterPlan, waiterErr)
	}
}

// TestCodeCountUnderConcurrentResends: resends and wrong tries racing on one
// user's code never lose a counted try (PutCode locks the row it renews; a
// first code locks a placeholder row, so two first puts serialise too).
func TestCodeCountUnderConcurrentResends(t *testing.T) {
	s := newStore(t)
	ctx := context.Background()
	u := user(t, s, "resender")
	now := time.Now()
	keep := func(old identity.StoredCode, found bool) identity.StoredCode {
		c := identity.StoredCode{Hash: []byte("code"), ExpiresAt: now.Add(time.Hour), TriesResetAt: now.Add(time.Hour)}
		if found && now.Before(old.TriesResetAt) {
			c.Tries, c.TriesResetAt = old.Tries, old.TriesResetAt
		}
		return c
	}
	var wg sync.WaitGroup
	var mu sync.Mutex
	counted := 0
	for i := range 16 {
		wg.Go(func() {
			if i%2 == 0 {
				if err := s.PutCode(ctx, u.UserID, identity.PurposeSignIn, now, keep); err != nil {
					t.Error(err)
				}
				return
			}
			_, err := s.ConsumeCode(ctx, u.UserID, identity.PurposeSignIn, func(identity.StoredCode) identity.CodeFate {
				mu.Lock()
				counted++
				mu.Unlock()
				return identity.CodeCountTry
			}, func(identity.User) identity.Proof { t.Error("proof asked for a wrong try"); return identity.Proof{} })
			if err != nil {
				t.Error(err)
			}
		})
	}
	wg.Wait()
	var tries int
	if err := s.pool.QueryRow(ctx, `SELECT attempts FROM otp_codes WHERE user_id = $1 AND purpose = 'sign_in'`, u.UserID).Scan(&tries); err != nil {
		t.Fatal(err)
	}
	if tries != counted {
		t.Errorf("attempts = %d, but %d wrong tries were counted", tries, counted)
	}
	// A spent code proves the address: verified, and the proof applied.
	got, err := s.ConsumeCode(ctx, u.UserID, identity.PurposeSignIn, func(identity.StoredCode) identity.CodeFate { return identity.CodeSpent },
		func(identity.User) identity.Proof { return identity.Proof{GrantAdmin: true, Reclaim: true} })
	if err != nil || !got.EmailVerified || !got.PlatformAdmin || got.PasswordHash != "" || got.TokenVersion != 1 {
		t.Errorf("after a spent code: %+v, %v", got, err)
	}
}
