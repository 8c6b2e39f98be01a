// Package e2e starts the real platform-backend and gateway binaries against
// the local Postgres and NATS (each test run with its own databases and NATS
// subject prefix) and drives them as a user would: REST for setup, official
// provider SDKs for proxied calls.
//
// No port is guessed: the test binds every listener on 127.0.0.1:0 itself
// and hands it to the child process as an inherited descriptor (LISTEN_FDS,
// package listenfd); the addresses go in the environment only for the
// services to find each other. A restarted gateway gets the same listeners,
// so clients queue in the backlog meanwhile instead of being refused.
package e2e

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
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"trueportai/services/gateway/internal/fakeprovider"
	"trueportai/services/internal/dbtest"
	"trueportai/services/internal/listenfd"
	"trueportai/services/internal/svctls"
)

// binDir holds the binaries built once by TestMain.
var binDir string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "trueport-e2e-bin")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	binDir = dir
	// Each binary is built in its own module (this module does not depend
	// on the platform), with or without go.work.
	for name, src := range map[string][2]string{
		"platform-backend": {"../../platform-backend", "./cmd/platform-backend"},
		"gateway":          {"..", "./cmd/gateway"},
	} {
		cmd := exec.Command("go", "build", "-o", filepath.Join(dir, name), src[1])
		cmd.Dir = src[0]
		cmd.Stdout, cmd.Stderr = os.Stderr, os.Stderr
		if err := cmd.Run(); err != nil {
			fmt.Fprintln(os.Stderr, "build", name, err)
			os.Exit(1)
		}
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

func randHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

// listen binds a listener on a free loopback port, closed when the test
// ends (after the processes it was handed to have stopped).
func listen(t *testing.T) net.Listener {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = l.Close() })
	return l
}

// serviceListeners are the HTTP, gRPC and internal (metrics, pprof)
// listeners of one process.
type serviceListeners struct{ http, grpc, internal net.Listener }

func newServiceListeners(t *testing.T) serviceListeners {
	return serviceListeners{http: listen(t), grpc: listen(t), internal: listen(t)}
}

func (l serviceListeners) httpAddr() string     { return l.http.Addr().String() }
func (l serviceListeners) grpcAddr() string     { return l.grpc.Addr().String() }
func (l serviceListeners) internalAddr() string { return l.internal.Addr().String() }

// proc is a running service binary.
type proc struct {
	name string
	cmd  *exec.Cmd
	log  *bytes.Buffer
	mu   *sync.Mutex
	done chan struct{}
}

type syncWriter struct {
	mu  *sync.Mutex
	buf *bytes.Buffer
}

func (w syncWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.buf.Write(p)
}

// startProc starts a service binary serving on ls (inherited descriptors).
func startProc(t *testing.T, name string, env []string, ls serviceListeners) *proc {
	t.Helper()
	p := &proc{name: name, log: &bytes.Buffer{}, mu: &sync.Mutex{}, done: make(chan struct{})}
	p.cmd = exec.Command(filepath.Join(binDir, name))
	p.cmd.Env = append(os.Environ(), env...)
	if err := listenfd.Pass(p.cmd, listenfd.Named{Name: "http", Listener: ls.http}, listenfd.Named{Name: "grpc", Listener: ls.grpc},
		listenfd.Named{Name: "internal", Listener: ls.internal}); err != nil {
		t.Fatalf("start %s: %v", name, err)
	}
	w := syncWriter{p.mu, p.log}
	p.cmd.Stdout, p.cmd.Stderr = w, w
	err := p.cmd.Start()
	listenfd.CloseFiles(p.cmd) // the child has its own copies
	if err != nil {
		t.Fatalf("start %s: %v", name, err)
	}
	go func() { _ = p.cmd.Wait(); close(p.done) }()
	t.Cleanup(func() {
		p.stop(t)
		if t.Failed() {
			t.Logf("---- %s log ----\n%s", name, p.logs())
		}
	})
	return p
}

func (p *proc) logs() string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.log.String()
}

// stop sends SIGTERM and waits (graceful shutdown), killing after 20 s.
func (p *proc) stop(t *testing.T) {
	select {
	case <-p.done:
		return
	default:
	}
	_ = p.cmd.Process.Signal(os.Interrupt)
	select {
	case <-p.done:
	case <-time.After(20 * time.Second):
		t.Errorf("%s did not stop within 20s; killing", p.name)
		_ = p.cmd.Process.Kill()
		<-p.done
	}
}

// stack is one running platform + gateway + fake upstream.
type stack struct {
	t           *testing.T
	platformURL string
	gatewayURL  string
	// gatewayInternalURL serves the gateway's /metrics (never public).
	gatewayInternalURL string
	platformGRPC       string
	env                []string
	// tls are the mutual TLS files of each service (a throwaway CA per
	// stack); gatewayInstance is the main gateway's SERVICE_INSTANCE_ID.
	tls             map[string]svctls.Files
	gatewayInstance string
	serviceEnv      map[string][]string
	platform        *proc
	gateway         *proc
	gatewayLis      serviceListeners
	// replicas are the gateways startGateway added.
	replicas []*proc
	upstream *recordingUpstream
}

// recordingUpstream wraps the fake provider and remembers request headers.
type recordingUpstream struct {
	srv    *httptest.Server
	mu     sync.Mutex
	got    []http.Header
	raw    []string
	bodies []string
	// answer, when set, may answer a request instead of the fake provider
	// (it reports whether it did).
	answer func(w http.ResponseWriter, r *http.Request, body []byte) bool
}

func (u *recordingUpstream) headers() []http.Header {
	u.mu.Lock()
	defer u.mu.Unlock()
	return append([]http.Header(nil), u.got...)
}

func newStack(t *testing.T, extraEnv ...string) *stack {
	t.Helper()
	return newStackEach(t, nil, extraEnv...)
}

// newStackEach is newStack with variables for one service only
// (serviceEnv: service name → "K=V" list, after the common ones).
func newStackEach(t *testing.T, serviceEnv map[string][]string, extraEnv ...string) *stack {
	t.Helper()
	up := &recordingUpstream{}
	fake := fakeprovider.NewHandler(fakeprovider.Config{Chunks: 5}, nil)
	up.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		r.Body = io.NopCloser(bytes.NewReader(body))
		up.mu.Lock()
		up.got = append(up.got, r.Header.Clone())
		up.raw = append(up.raw, r.URL.RequestURI())
		up.bodies = append(up.bodies, string(body))
		answer := up.answer
		up.mu.Unlock()
		if answer != nil && answer(w, r, body) {
			return
		}
		fake.ServeHTTP(w, r)
	}))
	t.Cleanup(up.srv.Close)

	s := &stack{t: t, upstream: up, serviceEnv: serviceEnv}
	platformLis, gatewayLis := newServiceListeners(t), newServiceListeners(t)
	pHTTP, pGRPC, gHTTP, gGRPC := platformLis.httpAddr(), platformLis.grpcAddr(), gatewayLis.httpAddr(), gatewayLis.grpcAddr()
	s.platformURL, s.gatewayURL, s.platformGRPC, s.gatewayLis = "http://"+pHTTP, "http://"+gHTTP, pGRPC, gatewayLis
	s.gatewayInternalURL = "http://" + gatewayLis.internalAddr()
	prefix := "e2e" + randHex(4)
	s.env = []string{
		"APP_ENV=dev", "LOG_LEVEL=info",
		"PLATFORM_HTTP_ADDR=" + pHTTP, "PLATFORM_GRPC_ADDR=" + pGRPC,
		"GATEWAY_HTTP_ADDR=" + gHTTP, "GATEWAY_GRPC_ADDR=" + gGRPC,
		"PLATFORM_INTERNAL_ADDR=" + platformLis.internalAddr(), "GATEWAY_INTERNAL_ADDR=" + gatewayLis.internalAddr(),
		"PLATFORM_DATABASE_URL=" + dbtest.NewURL(t, "e2e_platform"),
		"GATEWAY_DATABASE_URL=" + dbtest.NewURL(t, "e2e_gateway"),
		"NATS_PREFIX=" + prefix,
		"GATEWAY_SPOOL_DIR=" + t.TempDir(),
		"UPSTREAM_OPENAI_URL=" + up.srv.URL + "/openai/v1",
		"UPSTREAM_ANTHROPIC_URL=" + up.srv.URL + "/anthropic/v1",
		"UPSTREAM_GOOGLE_URL=" + up.srv.URL + "/google/v1beta",
		"UPSTREAM_AZURE_URL_TEMPLATE=" + up.srv.URL + "/azure/{resource}/openai/deployments/{deployment}",
		"CACHE_TTL=30s",
		// Restarts stop at once (the default 5 s drain delay is for a load
		// balancer); TestShutdownEndsOpenStreams sets its own.
		"SHUTDOWN_DRAIN_DELAY=0s",
	}
	// Mutual TLS between the services, from a throwaway CA.
	files, err := svctls.GenerateDev(t.TempDir(), []string{"platform-backend", "gateway"}, svctls.DevHosts, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	s.tls = files
	s.gatewayInstance = "e2e-gw-" + randHex(4)
	s.env = append(s.env, extraEnv...)
	t.Cleanup(func() { deleteStream(prefix) })
	s.platform = startProc(t, "platform-backend", s.envFor("platform-backend"), platformLis)
	s.waitHealthy(s.platformURL + "/health")
	s.gateway = startProc(t, "gateway", s.envFor("gateway", "SERVICE_INSTANCE_ID="+s.gatewayInstance), gatewayLis)
	s.waitHealthy(s.gatewayURL + "/trueportai-services/health")
	return s
}

// envFor is the stack's environment for one service: its TLS files
// (unless the stack's env sets its own), then extra.
func (s *stack) envFor(service string, extra ...string) []string {
	env := []string{}
	if f, ok := s.tls[service]; ok {
		env = append(env, "GRPC_TLS_CA_FILE="+f.CA, "GRPC_TLS_CERT_FILE="+f.Cert, "GRPC_TLS_KEY_FILE="+f.Key)
	}
	env = append(env, s.env...)
	env = append(env, s.serviceEnv[service]...)
	return append(env, extra...)
}

// restartGateway stops the gateway (SIGTERM, graceful) and starts it again
// on the same listeners.
func (s *stack) restartGateway() {
	s.gateway.stop(s.t)
	s.gateway = startProc(s.t, "gateway", s.envFor("gateway", "SERVICE_INSTANCE_ID="+s.gatewayInstance), s.gatewayLis)
	s.waitHealthy(s.gatewayURL + "/trueportai-services/health")
}

// startGateway starts another gateway process (a replica or another role)
// of this stack on listeners of its own, with env added to the stack's,
// and waits until it is healthy; it returns its base URL and the base URL
// of its internal listener (metrics).
func (s *stack) startGateway(env ...string) (url, internalURL string) {
	s.t.Helper()
	ls := newServiceListeners(s.t)
	env = append(s.envFor("gateway"), env...)
	env = append(env, "GATEWAY_HTTP_ADDR="+ls.httpAddr(), "GATEWAY_GRPC_ADDR="+ls.grpcAddr(), "GATEWAY_INTERNAL_ADDR="+ls.internalAddr())
	s.replicas = append(s.replicas, startProc(s.t, "gateway", env, ls))
	url = "http://" + ls.httpAddr()
	s.waitHealthy(url + "/trueportai-services/health")
	return url, "http://" + ls.internalAddr()
}

// startPlatform starts another platform-backend process (a replica) of
// this stack on listeners of its own, with env added to the stack's, and
// waits until it is healthy; it returns its base URL.
func (s *stack) startPlatform(env ...string) string {
	s.t.Helper()
	ls := newServiceListeners(s.t)
	env = append(s.envFor("platform-backend"), env...)
	env = append(env, "PLATFORM_HTTP_ADDR="+ls.httpAddr(), "PLATFORM_GRPC_ADDR="+ls.grpcAddr())
	startProc(s.t, "platform-backend", env, ls)
	url := "http://" + ls.httpAddr()
	s.waitHealthy(url + "/health")
	return url
}

func (s *stack) waitHealthy(url string) {
	s.t.Helper()
	eventually(s.t, 30*time.Second, func() error {
		resp, err := http.Get(url)
		if err != nil {
			return err
		}
		resp.Body.Close()
		if resp.StatusCode != 200 {
			return fmt.Errorf("status %d", resp.StatusCode)
		}
		return nil
	})
}

// eventually polls f until it succeeds or the timeout passes.
func eventually(t *testing.T, timeout time.Duration, f func() error) {
	t.Helper()
	eventuallyEvery(t, timeout, 50*time.Millisecond, f)
}

// eventuallyEvery is eventually with a chosen pause between attempts: a
// poll that spends proxied calls must stay under the key's RPM even when a
// loaded machine makes it wait long, or its own 429s end the wait.
func eventuallyEvery(t *testing.T, timeout, every time.Duration, f func() error) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		err := f()
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("condition not met within %s: %v", timeout, err)
		}
		time.Sleep(every)
	}
}

// call does a JSON request and decodes the answer into out (if non-nil).
func call(t *testing.T, method, url, token string, body any, out any) int {
	t.Helper()
	var rd io.Reader
	if body != nil {
		b, _ := json.Marshal(body)
		rd = bytes.NewReader(b)
	}
	req, _ := http.NewRequestWithContext(context.Background(), method, url, rd)
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, url, err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	if out != nil && len(raw) > 0 {
		if err := json.Unmarshal(raw, out); err != nil {
			t.Fatalf("%s %s: decode %q: %v", method, url, raw, err)
		}
	}
	return resp.StatusCode
}

// tenantSetup is a registered user with a tenant, a provider credential and an API key.
type tenantSetup struct {
	globalToken string
	scopedToken string
	tenantID    string
	apiKey      string
	keyID       string
	credential  string
}

func (s *stack) setupTenant(slug string) tenantSetup {
	t := s.t
	t.Helper()
	var ts tenantSetup
	email := slug + "@example.com"
	p := s.platformURL + "/platform/api"
	if c := call(t, "POST", p+"/global/auth/register", "", map[string]string{"email": email, "password": "correct-horse-battery"}, nil); c != 201 {
		t.Fatalf("register: %d", c)
	}
	var login struct {
		Token string `json:"global_access_token"`
	}
	if c := call(t, "POST", p+"/global/auth/login", "", map[string]string{"email": email, "password": "correct-horse-battery"}, &login); c != 200 {
		t.Fatalf("login: %d", c)
	}
	ts.globalToken = login.Token
	var tenant struct {
		ID string `json:"id"`
	}
	if c := call(t, "POST", p+"/global/tenants", ts.globalToken, map[string]string{"name": slug, "slug": slug}, &tenant); c != 201 {
		t.Fatalf("create tenant: %d", c)
	}
	ts.tenantID = tenant.ID
	var sel struct {
		Token string `json:"scoped_access_token"`
	}
	if c := call(t, "POST", p+"/global/auth/select-tenant", ts.globalToken, map[string]string{"tenant_id": tenant.ID}, &sel); c != 200 {
		t.Fatalf("select tenant: %d", c)
	}
	ts.scopedToken = sel.Token
	ts.credential = "sk-upstream-" + slug + "-" + randHex(8)
	for _, prov := range []string{"openai", "anthropic", "google", "azure"} {
		if c := call(t, "PUT", p+"/service/configs/providers."+prov+".api_key", ts.scopedToken, map[string]string{"value": ts.credential}, nil); c != 200 {
			t.Fatalf("put %s credential: %d", prov, c)
		}
	}
	var key struct {
		ID  string `json:"id"`
		Key string `json:"key"`
	}
	if c := call(t, "POST", s.gatewayURL+"/trueportai-services/api/v1/keys", ts.scopedToken, map[string]any{"name": "e2e", "rpm_limit": 60}, &key); c != 201 {
		t.Fatalf("create key: %d", c)
	}
	if !strings.HasPrefix(key.Key, "sk-") || len(key.Key) != 43 {
		t.Fatalf("key %q is not sk- + 40 chars", key.Key)
	}
	ts.apiKey, ts.keyID = key.Key, key.ID
	return ts
}

type logRow struct {
	RequestID        string  `json:"request_id"`
	KeyID            string  `json:"key_id"`
	Provider         string  `json:"provider"`
	Model            string  `json:"model"`
	Path             string  `json:"path"`
	StatusCode       int     `json:"status_code"`
	Stream           bool    `json:"stream"`
	PromptTokens     *int64  `json:"prompt_tokens"`
	CompletionTokens *int64  `json:"completion_tokens"`
	TotalTokens      *int64  `json:"total_tokens"`
	Outcome          string  `json:"outcome"`
	LatencyMS        float64 `json:"latency_ms"`
	// The cost as written (a decimal JSON number), to check it exactly.
	CostUSD json.Number `json:"cost_usd"`
}

type logPage struct {
	Items []logRow `json:"items"`
	Total int      `json:"total"`
	// TotalEstimated: the count ran out of its budget (a loaded machine)
	// and Total is Postgres's estimate, not a count.
	TotalEstimated bool `json:"total_estimated"`
	Limit          int  `json:"limit"`
	Offset         int  `json:"offset"`
}

// waitLogs polls the logs API until it reports want rows and its page
// (limit 200) holds them. The page and its total are read at the same time
// on two connections, not in one snapshot (docs/decisions.md, "Log
// totals"): while a batch commits, the total may already count rows the
// page does not show yet.
func (s *stack) waitLogs(token string, want int) logPage {
	s.t.Helper()
	var page logPage
	eventually(s.t, 30*time.Second, func() error {
		page = logPage{}
		if c := call(s.t, "GET", s.gatewayURL+"/trueportai-services/api/v1/analytics/logs?limit=200", token, nil, &page); c != 200 {
			return fmt.Errorf("logs status %d", c)
		}
		if page.Total != want || len(page.Items) != min(want, 200) {
			return fmt.Errorf("have %d log rows (%d on the page), want %d", page.Total, len(page.Items), want)
		}
		return nil
	})
	return page
}
