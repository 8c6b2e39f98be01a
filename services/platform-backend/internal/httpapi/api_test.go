package httpapi

import (
	"bytes"
	"context"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"trueportai/services/internal/events"
	"trueportai/services/internal/httpserver"
	"trueportai/services/internal/ratelimit"
	"trueportai/services/platform-backend/internal/billing"
	"trueportai/services/platform-backend/internal/config"
	"trueportai/services/platform-backend/internal/configs"
	"trueportai/services/platform-backend/internal/gatewayclient"
	"trueportai/services/platform-backend/internal/identity"
	"trueportai/services/platform-backend/internal/mail"
	"trueportai/services/platform-backend/internal/store"
	"trueportai/services/platform-backend/internal/team"
	"trueportai/services/platform-backend/internal/token"
	"trueportai/services/platform-backend/internal/worker"
)

type nopPublisher struct{}

func (nopPublisher) TenantChanged(context.Context, events.TenantChangedEvent)             {}
func (nopPublisher) TokensRevoked(context.Context, events.TokensRevokedEvent)             {}
func (nopPublisher) GlobalConfigChanged(context.Context, events.GlobalConfigChangedEvent) {}

type downGateway struct{}

func (downGateway) UsageSummary(context.Context, string, time.Time, time.Time) (gatewayclient.Usage, error) {
	return gatewayclient.Usage{}, errGatewaySkipped()
}

func (downGateway) CountKeys(context.Context, string) (int64, error) { return 0, errGatewaySkipped() }

// fullDeps are real dependencies that need no database until a route runs a
// query (the store has no pool).
func fullDeps(t *testing.T, log *slog.Logger) Deps {
	t.Helper()
	pemKey, err := token.GenerateKeyPEM()
	if err != nil {
		t.Fatal(err)
	}
	signer, err := token.ParsePrivateKeyPEM(pemKey)
	if err != nil {
		t.Fatal(err)
	}
	tokens, err := token.NewIssuer(signer, nil, "iss", "aud", time.Now)
	if err != nil {
		t.Fatal(err)
	}
	st := store.New(nil)
	ident, err := identity.New(log, st, mail.NewLogSender(log), worker.New(log, worker.Options{}), nopPublisher{},
		identity.Config{Pepper: bytes.Repeat([]byte{1}, 32)}, time.Now)
	if err != nil {
		t.Fatal(err)
	}
	return Deps{
		Store: st, Tokens: tokens, Publisher: nopPublisher{}, Identity: ident, Limiter: ratelimit.New(),
		Team:    team.NewService(st.TeamStore(), time.Now),
		Billing: billing.NewService(log, st.BillingStore(), downGateway{}, billing.NewInvoicer(st), time.Now),
		Configs: configs.NewService(log, st.ConfigStore(), nil, nil),
		Gateway: downGateway{}, Mailer: mail.NewLogSender(log),
	}
}

// The zero configuration is refused at construction, naming what is
// missing, instead of panicking on a nil limiter at the first request.
func TestNewRequiresEveryDependency(t *testing.T) {
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	_, err := New(log, config.Config{}, Deps{})
	if err == nil {
		t.Fatal("New with no dependencies succeeded")
	}
	for _, name := range []string{"Store", "Tokens", "Publisher", "Identity", "Limiter", "Team", "Billing", "Configs", "Gateway", "Mailer"} {
		if !strings.Contains(err.Error(), "httpapi: "+name+" is required") {
			t.Errorf("error does not name %s: %v", name, err)
		}
	}
	d := fullDeps(t, log)
	d.Limiter = nil
	if _, err := New(log, config.Config{}, d); err == nil || strings.Count(err.Error(), "required") != 1 {
		t.Errorf("New without a limiter: err = %v, want one naming Limiter only", err)
	}
	if _, err := New(log, config.Config{}, fullDeps(t, log)); err != nil {
		t.Errorf("New with every dependency: %v", err)
	}
}

// Concurrent requests answered with client errors each get their own error
// value (run with -race: no shared *apperr.Error is written).
func TestConcurrentErrorAnswers(t *testing.T) {
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	a, err := New(log, config.Config{AppEnv: "dev"}, fullDeps(t, log))
	if err != nil {
		t.Fatal(err)
	}
	e := httpserver.New(log)
	a.Routes(e, testProbes())
	srv := httptest.NewServer(e)
	defer srv.Close()
	paths := []string{
		"/platform/api/admin/tenants/x",                      // invalid_token (admin route)
		"/platform/api/service/info",                         // invalid_token (scoped route)
		"/platform/api/global/tenants",                       // invalid_token (global route)
		"/platform/api/global/tenants/check-availability",    // invalid_slug (details: field)
		"/platform/api/global/tenants/check-availability?x=", // the same, another query
	}
	var wg sync.WaitGroup
	for i := range 64 {
		wg.Go(func() {
			req, _ := http.NewRequest(http.MethodGet, srv.URL+paths[i%len(paths)], nil)
			req.Header.Set("Authorization", "Bearer not.a.jwt")
			resp, err := srv.Client().Do(req)
			if err != nil {
				t.Error(err)
				return
			}
			body, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode != http.StatusUnauthorized && resp.StatusCode != http.StatusBadRequest {
				t.Errorf("%s: %d %s", paths[i%len(paths)], resp.StatusCode, body)
			}
		})
	}
	wg.Wait()
}
