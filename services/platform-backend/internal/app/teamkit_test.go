package app

// Helpers of the team, billing and admin tests: a fake gateway gRPC
// UsageService, an address nothing listens on, invite tokens read from the
// logging mailer, and NATS event subscriptions.

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net"
	"net/http"
	"regexp"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"google.golang.org/grpc"

	gatewayv1 "trueportai/proto/gen/trueport/gateway/v1"
	svcauthv1 "trueportai/proto/gen/trueport/svcauth/v1"
	"trueportai/services/internal/svcauth"
	"trueportai/services/platform-backend/internal/token"
)

// fakeGateway is the gateway's UsageService with canned answers, and the
// introspection of its service tokens (the platform checks every call's
// token there).
type fakeGateway struct {
	gatewayv1.UnimplementedUsageServiceServer
	addr string
	srv  *grpc.Server
	ring *svcauth.KeyRing

	mu         sync.Mutex
	keys       map[string]int64                              // tenant id → key count
	usage      map[string]*gatewayv1.GetUsageSummaryResponse // tenant id ("" = all) → summary
	lastWindow [2]time.Time                                  // from, to of the last summary call
	countCalls atomic.Int64
}

func startFakeGateway(t *testing.T) *fakeGateway {
	t.Helper()
	return startGatewayIdentity(t, true)
}

// gatewayRings are the service-token keys of the fake gateways by
// address: a test's platform calls at GATEWAY_GRPC_ADDR, and its gRPC
// clients mint with the ring found there.
var gatewayRings sync.Map

// startGatewayIdentity starts a fake gateway serving the introspection of
// its service tokens, and its UsageService when usage is true (else the
// platform's usage calls fail as with a gateway that cannot answer).
func startGatewayIdentity(t *testing.T, usage bool) *fakeGateway {
	t.Helper()
	f := &fakeGateway{keys: map[string]int64{}, usage: map[string]*gatewayv1.GetUsageSummaryResponse{}}
	pemKey, err := svcauth.GenerateKeyPEM()
	if err != nil {
		t.Fatal(err)
	}
	signer, err := svcauth.ParsePrivateKeyPEM(pemKey)
	if err != nil {
		t.Fatal(err)
	}
	if f.ring, err = svcauth.NewKeyRing(svcauth.Gateway, signer); err != nil {
		t.Fatal(err)
	}
	lis := listenLocal(t)
	f.addr = lis.Addr().String()
	f.srv = grpc.NewServer()
	if usage {
		gatewayv1.RegisterUsageServiceServer(f.srv, f)
	}
	svcauthv1.RegisterServiceAuthServiceServer(f.srv, svcauth.NewIntrospection(f.ring, nil, slog.New(slog.NewTextHandler(io.Discard, nil)), nil))
	gatewayRings.Store(f.addr, f.ring)
	done := make(chan struct{})
	go func() { defer close(done); _ = f.srv.Serve(lis) }()
	t.Cleanup(func() { f.srv.Stop(); <-done; gatewayRings.Delete(f.addr) })
	return f
}

func (f *fakeGateway) setKeys(tenantID string, n int64) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.keys[tenantID] = n
}

func (f *fakeGateway) setUsage(tenantID string, u *gatewayv1.GetUsageSummaryResponse) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.usage[tenantID] = u
}

// window is the [from, to) of the last usage summary asked for.
func (f *fakeGateway) window() [2]time.Time {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.lastWindow
}

func (f *fakeGateway) CountKeys(_ context.Context, req *gatewayv1.CountKeysRequest) (*gatewayv1.CountKeysResponse, error) {
	f.countCalls.Add(1)
	f.mu.Lock()
	defer f.mu.Unlock()
	return &gatewayv1.CountKeysResponse{Keys: f.keys[req.GetTenantId()]}, nil
}

func (f *fakeGateway) GetUsageSummary(_ context.Context, req *gatewayv1.GetUsageSummaryRequest) (*gatewayv1.GetUsageSummaryResponse, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.lastWindow = [2]time.Time{req.GetFrom().AsTime(), req.GetTo().AsTime()}
	if u, ok := f.usage[req.GetTenantId()]; ok {
		return u, nil
	}
	return &gatewayv1.GetUsageSummaryResponse{}, nil
}

// quickUser registers a user and mints its global token with the service's
// own key instead of logging in (login is rate limited per client IP, and
// every test client is 127.0.0.1).
func (s *server) quickUser(t *testing.T, email string) user {
	t.Helper()
	r := s.post(t, "/platform/api/global/auth/register", "", obj{"email": email, "password": testPassword, "name": "User " + email})
	u := user{ID: decode[obj](t, r, http.StatusCreated)["user"].(obj)["id"].(string), Email: email}
	tok, _, err := s.issuer(t, time.Now).Issue(token.Claims{Subject: u.ID, Type: token.TypeGlobal}, 30*time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	u.Global = tok
	return u
}

// deadAddr is a local address nothing listens on (a gateway that is down).
func deadAddr(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	_ = l.Close()
	return addr
}

var inviteLinkRE = regexp.MustCompile(`/console/#/accept-invite\?token=([A-Za-z0-9_-]{43})\b`)

// inviteToken returns the token of the newest invite mail to `to` (the
// logging mailer writes whole mails to the service log).
func (s *server) inviteToken(t *testing.T, to string) string {
	t.Helper()
	var text string
	for _, line := range strings.Split(s.logs.String(), "\n") {
		var rec struct {
			Msg, To, Subject, Text string
		}
		if json.Unmarshal([]byte(line), &rec) == nil && rec.Msg == "mail" && rec.To == to && strings.Contains(rec.Subject, "invited") {
			text = rec.Text
		}
	}
	m := inviteLinkRE.FindStringSubmatch(text)
	if m == nil {
		t.Fatalf("no invite mail with a link to %s in the log", to)
	}
	if strings.Count(text, m[1]) < 2 {
		t.Errorf("invite mail should carry the token itself as well as the link: %q", text)
	}
	return m[1]
}

// invite creates an invite with tok and returns its id.
func (s *server) invite(t *testing.T, tok, email, role string) string {
	t.Helper()
	return decode[obj](t, s.post(t, "/platform/api/service/invites", tok, obj{"email": email, "role": role}), http.StatusCreated)["id"].(string)
}

// events subscribes to one of this server's change subjects ("tenant.changed",
// "tokens.revoked").
func (s *server) events(t *testing.T, what string) *nats.Subscription {
	t.Helper()
	nc, err := nats.Connect(s.natsURL, nats.Timeout(5*time.Second))
	if err != nil {
		t.Fatalf("nats: %v", err)
	}
	t.Cleanup(nc.Close)
	sub, err := nc.SubscribeSync(s.prefix + ".platform." + what)
	if err != nil {
		t.Fatal(err)
	}
	if err := nc.Flush(); err != nil {
		t.Fatal(err)
	}
	return sub
}

// nextEvent returns the next event on sub as a map.
func nextEvent(t *testing.T, sub *nats.Subscription) map[string]string {
	t.Helper()
	msg, err := sub.NextMsg(5 * time.Second)
	if err != nil {
		t.Fatalf("no event on %s within 5s: %v", sub.Subject, err)
	}
	var ev map[string]string
	if err := json.Unmarshal(msg.Data, &ev); err != nil {
		t.Fatalf("event %s: %v", msg.Data, err)
	}
	return ev
}

// wantEvent asserts the next event on sub has the given fields ("" must be absent).
func wantEvent(t *testing.T, sub *nats.Subscription, want map[string]string) {
	t.Helper()
	ev := nextEvent(t, sub)
	for k, v := range want {
		if ev[k] != v {
			t.Errorf("event %v: %s = %q, want %q", ev, k, ev[k], v)
		}
	}
}

// wantNoEvent asserts nothing more arrives on sub for a short while.
func wantNoEvent(t *testing.T, sub *nats.Subscription) {
	t.Helper()
	if msg, err := sub.NextMsg(150 * time.Millisecond); err == nil {
		t.Errorf("unexpected event on %s: %s", sub.Subject, msg.Data)
	}
}

// auditRows reads audit rows of one action straight from the database.
func (s *server) auditRows(t *testing.T, action string) []obj {
	t.Helper()
	rows, err := s.db.Query(context.Background(), `SELECT COALESCE(actor_id::text, ''), actor_email, target_type, target_id, COALESCE(tenant_id::text, ''), details
		FROM audit_log WHERE action = $1 ORDER BY at`, action)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	var out []obj
	for rows.Next() {
		var actor, email, ttype, tid, tenant string
		var details map[string]any
		if err := rows.Scan(&actor, &email, &ttype, &tid, &tenant, &details); err != nil {
			t.Fatal(err)
		}
		out = append(out, obj{"actor_id": actor, "actor_email": email, "target_type": ttype, "target_id": tid, "tenant_id": tenant, "details": details})
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	return out
}

// memberRole is a user's role in a tenant from the database ("" when not a member).
func (s *server) memberRole(t *testing.T, tenantID, userID string) string {
	t.Helper()
	var role string
	err := s.db.QueryRow(context.Background(), `SELECT COALESCE((SELECT role FROM memberships WHERE tenant_id = $1 AND user_id = $2), '')`, tenantID, userID).Scan(&role)
	if err != nil {
		t.Fatal(err)
	}
	return role
}
