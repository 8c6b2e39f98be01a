package app

// Integration test harness: every test gets its own platform-backend (app.Run
// in a goroutine, APP_ENV=dev) on its own database, NATS subject prefix and
// listeners bound to 127.0.0.1:0, so tests run in parallel against the local
// Postgres and NATS.

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"

	platformv1 "trueportai/proto/gen/trueport/platform/v1"
	"trueportai/services/internal/dbtest"
	"trueportai/services/internal/svcauth"
	"trueportai/services/platform-backend/internal/token"
)

// server is one running platform-backend.
type server struct {
	t        *testing.T
	baseURL  string
	grpcAddr string
	// internalURL serves /metrics and pprof (PLATFORM_INTERNAL_ADDR).
	internalURL string
	dbURL       string
	db          *pgxpool.Pool
	natsURL     string
	prefix      string // NATS subject prefix
	env         map[string]string
	client      *http.Client
	logs        *lockedBuffer
}

type lockedBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *lockedBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *lockedBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

func randHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

func listenLocal(t *testing.T) net.Listener {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	return l
}

// startServer runs the service until the test ends (cleanup cancels it and
// waits for Run to return). extraEnv overrides the defaults.
func startServer(t *testing.T, extraEnv ...string) *server {
	t.Helper()
	return startServerClock(t, nil, extraEnv...)
}

// limitClock holds the rate limits' time still; only advance moves it. A
// test that counts requests inside a window (a refill every 30 s for the
// per-IP login limit) gets the same answers however slowly a loaded
// machine runs it.
type limitClock struct {
	mu  sync.Mutex
	now time.Time
}

func newLimitClock() *limitClock { return &limitClock{now: time.Now()} }

func (c *limitClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *limitClock) advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
}

// startServerClock is startServer with the rate limits on clock (nil: the
// real time).
func startServerClock(t *testing.T, clock *limitClock, extraEnv ...string) *server {
	t.Helper()
	dbURL := dbtest.NewURL(t, "pbtest")
	httpLis, grpcLis, internalLis := listenLocal(t), listenLocal(t), listenLocal(t)
	natsURL := os.Getenv("NATS_URL")
	if natsURL == "" {
		natsURL = "nats://127.0.0.1:4222"
	}
	env := map[string]string{
		"APP_ENV":                "dev",
		"PLATFORM_DATABASE_URL":  dbURL,
		"PLATFORM_HTTP_ADDR":     httpLis.Addr().String(),
		"PLATFORM_GRPC_ADDR":     grpcLis.Addr().String(),
		"PLATFORM_INTERNAL_ADDR": internalLis.Addr().String(),
		"NATS_URL":               natsURL,
		"NATS_PREFIX":            "t" + randHex(6),
		"SHUTDOWN_GRACE":         "10s", // > net/http's 5 s grace for connections that never sent a request
		"LOG_LEVEL":              "info",
	}
	for _, kv := range extraEnv {
		k, v, _ := strings.Cut(kv, "=")
		env[k] = v
	}
	if env["GATEWAY_GRPC_ADDR"] == "" {
		// The gateway's service tokens are checked at its introspection:
		// a fake gateway serving only that (usage calls fail).
		env["GATEWAY_GRPC_ADDR"] = startGatewayIdentity(t, false).addr
	}
	s := &server{
		t: t, baseURL: "http://" + httpLis.Addr().String(), grpcAddr: grpcLis.Addr().String(),
		internalURL: "http://" + internalLis.Addr().String(),
		dbURL:       dbURL, natsURL: env["NATS_URL"], prefix: env["NATS_PREFIX"], env: env,
		client: &http.Client{Timeout: 10 * time.Second}, logs: &lockedBuffer{},
	}

	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		o := Options{Listeners: Listeners{HTTP: httpLis, GRPC: grpcLis, Internal: internalLis}}
		if clock != nil {
			o.LimitClock = clock.Now
		}
		done <- RunWithOptions(ctx, nil, func(k string) string { return env[k] }, s.logs, o)
	}()
	t.Cleanup(func() {
		s.client.CloseIdleConnections()
		cancel()
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("Run returned %v", err)
			}
		case <-time.After(20 * time.Second):
			t.Errorf("Run did not return within 20s of cancel")
		}
		if t.Failed() {
			t.Logf("---- platform-backend log ----\n%s", s.logs.String())
		}
	})

	// Wait for /health (or for Run to fail).
	deadline := time.Now().Add(30 * time.Second)
	for {
		select {
		case err := <-done:
			done <- err // let cleanup see it too
			t.Fatalf("Run returned before becoming healthy: %v\n%s", err, s.logs.String())
		default:
		}
		r, err := s.client.Get(s.baseURL + "/health")
		if err == nil {
			_, _ = io.Copy(io.Discard, r.Body)
			r.Body.Close()
			if r.StatusCode == http.StatusOK {
				break
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("platform-backend not healthy within 30s (last err %v)\n%s", err, s.logs.String())
		}
		time.Sleep(20 * time.Millisecond)
	}

	pool, err := pgxpool.New(context.Background(), dbURL)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(pool.Close)
	s.db = pool
	return s
}

// ---------------------------------------------------------------- HTTP

// resp is a finished HTTP exchange.
type resp struct {
	Status int
	Header http.Header
	Body   []byte
}

func (r resp) String() string { return fmt.Sprintf("%d %s", r.Status, r.Body) }

// req describes one request; Body is JSON-encoded unless it is a string or
// []byte (sent raw). ContentType defaults to application/json when a body is set.
type req struct {
	Method      string
	Path        string
	Token       string
	Body        any
	ContentType string
	Header      map[string]string
	// Want5xx: a 5xx answer is expected (e.g. 503 with a dependency down).
	Want5xx bool
}

func (s *server) do(t *testing.T, rq req) resp {
	t.Helper()
	var body io.Reader
	ct := rq.ContentType
	if rq.Body != nil {
		switch b := rq.Body.(type) {
		case string:
			body = strings.NewReader(b)
		case []byte:
			body = bytes.NewReader(b)
		default:
			j, err := json.Marshal(b)
			if err != nil {
				t.Fatal(err)
			}
			body = bytes.NewReader(j)
		}
		if ct == "" {
			ct = "application/json"
		}
	}
	hr, err := http.NewRequest(rq.Method, s.baseURL+rq.Path, body)
	if err != nil {
		t.Fatal(err)
	}
	if ct != "" && ct != "-" {
		hr.Header.Set("Content-Type", ct)
	}
	if rq.Token != "" {
		hr.Header.Set("Authorization", "Bearer "+rq.Token)
	}
	for k, v := range rq.Header {
		hr.Header.Set(k, v)
	}
	r, err := s.client.Do(hr)
	if err != nil {
		t.Fatalf("%s %s: %v", rq.Method, rq.Path, err)
	}
	defer r.Body.Close()
	b, err := io.ReadAll(r.Body)
	if err != nil {
		t.Fatalf("%s %s: read body: %v", rq.Method, rq.Path, err)
	}
	if r.StatusCode >= 500 && !rq.Want5xx {
		t.Errorf("%s %s: server error %d %s", rq.Method, rq.Path, r.StatusCode, b)
	}
	if r.Header.Get("X-Request-Id") == "" {
		t.Errorf("%s %s: no X-Request-Id header", rq.Method, rq.Path)
	}
	return resp{Status: r.StatusCode, Header: r.Header, Body: b}
}

func (s *server) get(t *testing.T, path, tok string) resp {
	t.Helper()
	return s.do(t, req{Method: http.MethodGet, Path: path, Token: tok})
}

func (s *server) post(t *testing.T, path, tok string, body any) resp {
	t.Helper()
	return s.do(t, req{Method: http.MethodPost, Path: path, Token: tok, Body: body})
}

func (s *server) put(t *testing.T, path, tok string, body any) resp {
	t.Helper()
	return s.do(t, req{Method: http.MethodPut, Path: path, Token: tok, Body: body})
}

// decode unmarshals r's body after checking its status.
func decode[T any](t *testing.T, r resp, status int) T {
	t.Helper()
	var v T
	if r.Status != status {
		t.Fatalf("status = %s, want %d", r, status)
	}
	if err := json.Unmarshal(r.Body, &v); err != nil {
		t.Fatalf("decode %s: %v", r.Body, err)
	}
	return v
}

type obj = map[string]any

var snakeCase = regexp.MustCompile(`^[a-z][a-z0-9_]*$`)

// envelope is the parsed error body.
type envelope struct {
	Code      string
	Message   string
	RequestID string
	Details   obj
}

// wantError asserts status and the error envelope {"error":{code,message,
// request_id[,details]}} (and code, when not empty) and returns it.
func wantError(t *testing.T, r resp, status int, code string) envelope {
	t.Helper()
	if r.Status != status {
		t.Errorf("status = %s, want %d", r, status)
	}
	if ct := r.Header.Get("Content-Type"); !strings.HasPrefix(ct, "application/json") {
		t.Errorf("error Content-Type = %q, want application/json", ct)
	}
	var top map[string]json.RawMessage
	if err := json.Unmarshal(r.Body, &top); err != nil {
		t.Fatalf("error body is not JSON: %q", r.Body)
	}
	if len(top) != 1 || top["error"] == nil {
		t.Fatalf("error body must be {\"error\":{…}}, got %s", r.Body)
	}
	var e map[string]json.RawMessage
	if err := json.Unmarshal(top["error"], &e); err != nil {
		t.Fatalf("error member is not an object: %s", r.Body)
	}
	for k := range e {
		switch k {
		case "code", "message", "request_id", "details":
		default:
			t.Errorf("unexpected member %q in error envelope %s", k, r.Body)
		}
	}
	var env envelope
	_ = json.Unmarshal(e["code"], &env.Code)
	_ = json.Unmarshal(e["message"], &env.Message)
	_ = json.Unmarshal(e["request_id"], &env.RequestID)
	if d, ok := e["details"]; ok {
		if err := json.Unmarshal(d, &env.Details); err != nil {
			t.Errorf("details is not an object: %s", r.Body)
		}
	}
	if !snakeCase.MatchString(env.Code) {
		t.Errorf("error code %q is not snake_case: %s", env.Code, r.Body)
	}
	if env.Message == "" {
		t.Errorf("error message empty: %s", r.Body)
	}
	if env.RequestID == "" || env.RequestID != r.Header.Get("X-Request-Id") {
		t.Errorf("request_id %q does not match X-Request-Id %q", env.RequestID, r.Header.Get("X-Request-Id"))
	}
	if code != "" && env.Code != code {
		t.Errorf("error code = %q, want %q (%s)", env.Code, code, r.Body)
	}
	for _, leak := range []string{"goroutine ", "panic", "SQLSTATE", "pgx", "runtime/"} {
		if strings.Contains(string(r.Body), leak) {
			t.Errorf("error body leaks internals (%q): %s", leak, r.Body)
		}
	}
	return env
}

// wantField asserts a 400 whose envelope names field (details.field).
func wantField(t *testing.T, r resp, field string) {
	t.Helper()
	env := wantError(t, r, http.StatusBadRequest, "")
	if env.Details["field"] != field {
		t.Errorf("error should name field %q: %s", field, r.Body)
	}
}

// ---------------------------------------------------------------- fixtures

const testPassword = "correct-horse-battery"

type user struct {
	ID     string
	Email  string
	Global string // global access token
}

// newUser registers and logs in a user.
func (s *server) newUser(t *testing.T, email string) user {
	t.Helper()
	r := s.post(t, "/platform/api/global/auth/register", "", obj{"email": email, "password": testPassword, "name": "User " + email})
	reg := decode[struct {
		User struct{ ID string } `json:"user"`
	}](t, r, http.StatusCreated)
	return user{ID: reg.User.ID, Email: email, Global: s.login(t, email, testPassword)}
}

func (s *server) login(t *testing.T, email, pw string) string {
	t.Helper()
	r := s.post(t, "/platform/api/global/auth/login", "", obj{"email": email, "password": pw})
	out := decode[struct {
		Token string `json:"global_access_token"`
	}](t, r, http.StatusOK)
	return out.Token
}

type tenant struct {
	ID   string `json:"id"`
	Name string `json:"name"`
	Slug string `json:"slug"`
}

func (s *server) newTenant(t *testing.T, owner user, name, slug string) tenant {
	t.Helper()
	return decode[tenant](t, s.post(t, "/platform/api/global/tenants", owner.Global, obj{"name": name, "slug": slug}), http.StatusCreated)
}

// scoped selects tenantID with u's global token and returns the scoped token.
func (s *server) scoped(t *testing.T, u user, tenantID string) string {
	t.Helper()
	out := decode[struct {
		Token string `json:"scoped_access_token"`
	}](t, s.post(t, "/platform/api/global/auth/select-tenant", u.Global, obj{"tenant_id": tenantID}), http.StatusOK)
	return out.Token
}

// addMember inserts a membership directly (there is no invite flow yet).
func (s *server) addMember(t *testing.T, tenantID, userID, role string) {
	t.Helper()
	if _, err := s.db.Exec(context.Background(), `INSERT INTO memberships (tenant_id, user_id, role) VALUES ($1, $2, $3)`, tenantID, userID, role); err != nil {
		t.Fatal(err)
	}
}

// issuer returns a token issuer holding the service's dev signing key with
// the given clock (to mint expired or otherwise crafted tokens).
func (s *server) issuer(t *testing.T, now func() time.Time) *token.Issuer {
	t.Helper()
	signer, err := token.ParsePrivateKeyPEM(s.devKey(t))
	if err != nil {
		t.Fatal(err)
	}
	iss, err := token.NewIssuer(signer, nil, "trueportai-platform", "trueportai", now)
	if err != nil {
		t.Fatal(err)
	}
	return iss
}

// gatewayMinter mints service tokens as the fake gateway the service
// checks them with (its GATEWAY_GRPC_ADDR).
func (s *server) gatewayMinter(t *testing.T) *svcauth.Minter {
	t.Helper()
	ring, ok := gatewayRings.Load(s.env["GATEWAY_GRPC_ADDR"])
	if !ok {
		t.Fatalf("no fake gateway identity at %s", s.env["GATEWAY_GRPC_ADDR"])
	}
	m, err := svcauth.NewMinter(ring.(*svcauth.KeyRing), "gw-test-"+randHex(4), 0, nil)
	if err != nil {
		t.Fatal(err)
	}
	return m
}

// grpcClients dials the service's gRPC port as the gateway (its service
// token on every call).
func (s *server) grpcClients(t *testing.T) (platformv1.AuthServiceClient, platformv1.TenantServiceClient) {
	t.Helper()
	cc, err := grpc.NewClient(s.grpcAddr, grpc.WithTransportCredentials(insecure.NewCredentials()), s.gatewayMinter(t).DialOption(svcauth.Platform, false))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cc.Close() })
	return platformv1.NewAuthServiceClient(cc), platformv1.NewTenantServiceClient(cc)
}

func TestHealthAndShutdown(t *testing.T) {
	t.Parallel()
	s := startServer(t)
	r := s.get(t, "/health", "")
	h := decode[struct {
		Status string            `json:"status"`
		Checks map[string]string `json:"checks"`
	}](t, r, http.StatusOK)
	if h.Status != "ok" || h.Checks["postgres"] != "ok" || h.Checks["nats"] != "ok" {
		t.Errorf("health = %s", r.Body)
	}
	decode[obj](t, s.get(t, "/health/ready", ""), http.StatusOK)
	if local := decode[obj](t, s.get(t, "/health/ready/local", ""), http.StatusOK); local["status"] != "ok" {
		t.Errorf("local readiness = %v", local)
	}
	if live := decode[obj](t, s.get(t, "/health/live", ""), http.StatusOK); live["status"] != "ok" {
		t.Errorf("live = %v", live)
	}
	wantError(t, s.get(t, "/platform/api/nope", ""), http.StatusNotFound, "not_found")
}
