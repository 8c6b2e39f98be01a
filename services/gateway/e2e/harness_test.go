// Package e2e starts the real platform-backend and gateway binaries against
// the local Postgres and NATS (each test run with its own databases, NATS
// subject prefix and ports) and drives them as a user would: REST for setup,
// official provider SDKs for proxied calls.
package e2e

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	mrand "math/rand/v2"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"trueportai/services/gateway/internal/fakeprovider"
	"trueportai/services/internal/dbtest"
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
	for name, pkg := range map[string]string{
		"platform-backend": "trueportai/services/platform-backend/cmd/platform-backend",
		"gateway":          "trueportai/services/gateway/cmd/gateway",
	} {
		cmd := exec.Command("go", "build", "-o", filepath.Join(dir, name), pkg)
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

// nextPort hands out the ports freeAddr tries. They lie below the kernel's
// ephemeral range (32768 and up here): a port found free and handed to a
// child process cannot be taken in the meantime by some outgoing connection
// (to Postgres, NATS, ...), which is what ports from "127.0.0.1:0" suffered.
// The start is random so that consecutive runs do not reuse ports in
// TIME_WAIT; the counter keeps parallel tests apart.
var nextPort atomic.Int32

func freeAddr(t *testing.T) string {
	t.Helper()
	nextPort.CompareAndSwap(0, 20000+int32(mrand.IntN(8000)))
	for range 2000 {
		p := nextPort.Add(1)
		if p >= 32000 {
			nextPort.CompareAndSwap(p, 20000)
			continue
		}
		addr := fmt.Sprintf("127.0.0.1:%d", p)
		l, err := net.Listen("tcp", addr)
		if err != nil {
			continue // in use
		}
		_ = l.Close()
		return addr
	}
	t.Fatal("no free port in 20000-32000")
	return ""
}

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

func startProc(t *testing.T, name string, env []string) *proc {
	t.Helper()
	p := &proc{name: name, log: &bytes.Buffer{}, mu: &sync.Mutex{}, done: make(chan struct{})}
	p.cmd = exec.Command(filepath.Join(binDir, name))
	p.cmd.Env = append(os.Environ(), env...)
	w := syncWriter{p.mu, p.log}
	p.cmd.Stdout, p.cmd.Stderr = w, w
	if err := p.cmd.Start(); err != nil {
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
	t            *testing.T
	platformURL  string
	gatewayURL   string
	platformGRPC string
	env          []string
	platform     *proc
	gateway      *proc
	upstream     *recordingUpstream
}

// recordingUpstream wraps the fake provider and remembers request headers.
type recordingUpstream struct {
	srv    *httptest.Server
	mu     sync.Mutex
	got    []http.Header
	raw    []string
	bodies []string
}

func (u *recordingUpstream) headers() []http.Header {
	u.mu.Lock()
	defer u.mu.Unlock()
	return append([]http.Header(nil), u.got...)
}

func newStack(t *testing.T, extraEnv ...string) *stack {
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
		up.mu.Unlock()
		fake.ServeHTTP(w, r)
	}))
	t.Cleanup(up.srv.Close)

	s := &stack{t: t, upstream: up}
	pHTTP, pGRPC, gHTTP, gGRPC := freeAddr(t), freeAddr(t), freeAddr(t), freeAddr(t)
	s.platformURL, s.gatewayURL, s.platformGRPC = "http://"+pHTTP, "http://"+gHTTP, pGRPC
	prefix := "e2e" + randHex(4)
	s.env = []string{
		"APP_ENV=dev", "LOG_LEVEL=info",
		"PLATFORM_HTTP_ADDR=" + pHTTP, "PLATFORM_GRPC_ADDR=" + pGRPC,
		"GATEWAY_HTTP_ADDR=" + gHTTP, "GATEWAY_GRPC_ADDR=" + gGRPC,
		"PLATFORM_DATABASE_URL=" + dbtest.NewURL(t, "e2e_platform"),
		"GATEWAY_DATABASE_URL=" + dbtest.NewURL(t, "e2e_gateway"),
		"NATS_PREFIX=" + prefix,
		"GATEWAY_SPOOL_DIR=" + t.TempDir(),
		"UPSTREAM_OPENAI_URL=" + up.srv.URL + "/openai/v1",
		"UPSTREAM_ANTHROPIC_URL=" + up.srv.URL + "/anthropic/v1",
		"UPSTREAM_GOOGLE_URL=" + up.srv.URL + "/google/v1beta",
		"UPSTREAM_AZURE_URL_TEMPLATE=" + up.srv.URL + "/azure/{resource}/openai/deployments/{deployment}",
		"CACHE_TTL=30s",
		"INTERNAL_GRPC_TOKEN=" + randHex(24),
	}
	s.env = append(s.env, extraEnv...)
	t.Cleanup(func() { deleteStream(prefix) })
	s.platform = startProc(t, "platform-backend", s.env)
	s.waitHealthy(s.platformURL + "/health")
	s.gateway = startProc(t, "gateway", s.env)
	s.waitHealthy(s.gatewayURL + "/trueportai-services/health")
	return s
}

func (s *stack) restartGateway() {
	s.gateway.stop(s.t)
	s.gateway = startProc(s.t, "gateway", s.env)
	s.waitHealthy(s.gatewayURL + "/trueportai-services/health")
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
	deadline := time.Now().Add(timeout)
	for {
		err := f()
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("condition not met within %s: %v", timeout, err)
		}
		time.Sleep(50 * time.Millisecond)
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
	StatusCode       int     `json:"status_code"`
	Stream           bool    `json:"stream"`
	PromptTokens     *int64  `json:"prompt_tokens"`
	CompletionTokens *int64  `json:"completion_tokens"`
	TotalTokens      *int64  `json:"total_tokens"`
	Outcome          string  `json:"outcome"`
	LatencyMS        float64 `json:"latency_ms"`
}

type logPage struct {
	Items  []logRow `json:"items"`
	Total  int      `json:"total"`
	Limit  int      `json:"limit"`
	Offset int      `json:"offset"`
}

// waitLogs polls the logs API until it reports want rows.
func (s *stack) waitLogs(token string, want int) logPage {
	s.t.Helper()
	var page logPage
	eventually(s.t, 30*time.Second, func() error {
		page = logPage{}
		if c := call(s.t, "GET", s.gatewayURL+"/trueportai-services/api/v1/analytics/logs?limit=200", token, nil, &page); c != 200 {
			return fmt.Errorf("logs status %d", c)
		}
		if page.Total != want {
			return fmt.Errorf("have %d log rows, want %d", page.Total, want)
		}
		return nil
	})
	return page
}
