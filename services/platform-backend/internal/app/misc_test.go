package app

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go"

	platformv1 "trueportai/proto/gen/trueport/platform/v1"
)

func TestConfigChangePublishesEvent(t *testing.T) {
	t.Parallel()
	s := startServer(t)
	nc, err := nats.Connect(s.natsURL, nats.Timeout(5*time.Second))
	if err != nil {
		t.Fatalf("nats: %v", err)
	}
	defer nc.Close()
	sub, err := nc.SubscribeSync(s.prefix + ".platform.tenant.changed")
	if err != nil {
		t.Fatal(err)
	}
	if err := nc.Flush(); err != nil {
		t.Fatal(err)
	}

	u := s.newUser(t, "events@example.com")
	tn := s.newTenant(t, u, "Events", "events")
	tok := s.scoped(t, u, tn.ID)
	wantField(t, s.put(t, "/platform/api/service/configs/gateway.default_rpm", tok, obj{"value": "bad"}), "value")
	decode[obj](t, s.put(t, "/platform/api/service/configs/providers.openai.api_key", tok, obj{"value": "sk-EventPayloadMustNotCarryThis1234"}), http.StatusOK)

	msg, err := sub.NextMsg(5 * time.Second)
	if err != nil {
		t.Fatalf("no tenant.changed event after a config PUT: %v", err)
	}
	var ev struct {
		TenantID string `json:"tenant_id"`
		Reason   string `json:"reason"`
	}
	if err := json.Unmarshal(msg.Data, &ev); err != nil || ev.TenantID != tn.ID || ev.Reason != "config" {
		t.Errorf("event = %s", msg.Data)
	}
	if strings.Contains(string(msg.Data), "EventPayload") {
		t.Errorf("event carries the secret: %s", msg.Data)
	}
	// The rejected PUT published nothing.
	if extra, err := sub.NextMsg(200 * time.Millisecond); err == nil {
		t.Errorf("unexpected extra event %s", extra.Data)
	}
}

func TestConcurrentCreates(t *testing.T) {
	t.Parallel()
	s := startServer(t)
	owner := s.newUser(t, "racer@example.com")

	race := func(n int, do func(i int) resp) map[int]int {
		var mu sync.Mutex
		got := map[int]int{}
		var wg sync.WaitGroup
		for i := range n {
			wg.Add(1)
			go func() {
				defer wg.Done()
				r := do(i)
				mu.Lock()
				got[r.Status]++
				mu.Unlock()
				if r.Status != http.StatusCreated {
					wantError(t, r, http.StatusConflict, "")
				}
			}()
		}
		wg.Wait()
		return got
	}
	emails := []string{"same@example.com", "SAME@example.com", "Same@Example.com", "same@EXAMPLE.COM"}
	if got := race(8, func(i int) resp {
		return s.post(t, "/platform/api/global/auth/register", "", obj{"email": emails[i%len(emails)], "password": testPassword})
	}); got[http.StatusCreated] != 1 || got[http.StatusConflict] != 7 {
		t.Errorf("concurrent registers: %v, want one 201 and seven 409", got)
	}
	if got := race(8, func(int) resp {
		return s.post(t, "/platform/api/global/tenants", owner.Global, obj{"name": "Race", "slug": "race"})
	}); got[http.StatusCreated] != 1 || got[http.StatusConflict] != 7 {
		t.Errorf("concurrent tenant creates: %v, want one 201 and seven 409", got)
	}
	var tenants, memberships, subs, storage int
	if err := s.db.QueryRow(context.Background(), `SELECT (SELECT count(*) FROM tenants), (SELECT count(*) FROM memberships),
		(SELECT count(*) FROM subscriptions), (SELECT count(*) FROM storage_settings)`).Scan(&tenants, &memberships, &subs, &storage); err != nil {
		t.Fatal(err)
	}
	if tenants != 1 || memberships != 1 || subs != 1 || storage != 1 {
		t.Errorf("after the race: %d tenants, %d memberships, %d subscriptions, %d storage rows; want 1 each", tenants, memberships, subs, storage)
	}
}

func TestPlatformAdminBootstrap(t *testing.T) {
	t.Parallel()
	s := startServer(t, "PLATFORM_ADMIN_EMAILS= Boss@Example.com ,other@example.com")
	auth, _ := s.grpcClients(t)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()

	// Registering a listed address proves nothing: no admin until the
	// address is proven (verify_test.go covers that path).
	r := s.post(t, "/platform/api/global/auth/register", "", obj{"email": "boss@EXAMPLE.com", "password": testPassword})
	if u := decode[obj](t, r, http.StatusCreated)["user"].(obj); u["platform_admin"] != false || u["email_verified"] != false {
		t.Errorf("a listed email is a platform admin at registration: %s", r.Body)
	}
	boss := user{Email: "boss@example.com", Global: s.login(t, "boss@example.com", testPassword)}
	decode[obj](t, s.post(t, verifyConfirm, boss.Global, obj{"token": s.verifyToken(t, boss, 1)}), http.StatusOK)
	if in, err := auth.IntrospectToken(ctx, &platformv1.IntrospectTokenRequest{Token: boss.Global}); err != nil || !in.GetPlatformAdmin() {
		t.Errorf("verified listed email: introspection = %v, %v; want platform admin", in, err)
	}
	plain := s.newUser(t, "plain@example.com")
	in, err := auth.IntrospectToken(ctx, &platformv1.IntrospectTokenRequest{Token: plain.Global})
	if err != nil || !in.GetActive() || in.GetPlatformAdmin() {
		t.Fatalf("plain user introspection = %v, %v", in, err)
	}

	// CLI: grant-admin against the same database while the service runs.
	var out bytes.Buffer
	getenv := func(k string) string { return s.env[k] }
	if err := RunWithListeners(ctx, []string{"grant-admin", "PLAIN@example.com"}, getenv, &out, Listeners{}); err != nil {
		t.Fatalf("grant-admin: %v", err)
	}
	if !strings.Contains(out.String(), "is a platform admin") {
		t.Errorf("grant-admin output = %q", out.String())
	}
	if in, err = auth.IntrospectToken(ctx, &platformv1.IntrospectTokenRequest{Token: plain.Global}); err != nil || !in.GetPlatformAdmin() {
		t.Errorf("after grant-admin: %v, %v", in, err)
	}
	if err := RunWithListeners(ctx, []string{"grant-admin", "ghost@example.com"}, getenv, &out, Listeners{}); err == nil {
		t.Errorf("grant-admin of an unknown email succeeded")
	}
	if err := RunWithListeners(ctx, []string{"bogus"}, getenv, &out, Listeners{}); err == nil {
		t.Errorf("unknown command succeeded")
	}
}
