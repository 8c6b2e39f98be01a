package e2e

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/status"

	gatewayv1 "trueportai/proto/gen/trueport/gateway/v1"
	platformv1 "trueportai/proto/gen/trueport/platform/v1"
	svcauthv1 "trueportai/proto/gen/trueport/svcauth/v1"
	"trueportai/services/internal/dbtest"
	"trueportai/services/internal/svcauth"
	"trueportai/services/internal/svctls"
)

// keyFile writes a new service signing key and returns its path and ring.
func keyFile(t *testing.T, service string) (string, *svcauth.KeyRing) {
	t.Helper()
	pemKey, err := svcauth.GenerateKeyPEM()
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), service+"-service-key.pem")
	if err := os.WriteFile(path, pemKey, 0o600); err != nil {
		t.Fatal(err)
	}
	ring, err := svcauth.LoadKeyRing(context.Background(), service, path, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	return path, ring
}

// grpcConn dials addr over mutual TLS with the files of service (as that
// service would), or plaintext when files is the zero value.
func grpcConn(t *testing.T, addr string, files svctls.Files) *grpc.ClientConn {
	t.Helper()
	c, err := svctls.Load(files)
	if err != nil {
		t.Fatal(err)
	}
	cc, err := grpc.NewClient(addr, c.DialOption())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cc.Close() })
	return cc
}

type bearerToken string

func (b bearerToken) GetRequestMetadata(context.Context, ...string) (map[string]string, error) {
	return map[string]string{"authorization": "Bearer " + string(b)}, nil
}
func (bearerToken) RequireTransportSecurity() bool { return true }

func mintAt(t *testing.T, r *svcauth.KeyRing, sub, aud string, at time.Time) string {
	t.Helper()
	tok, _, err := r.Mint(sub, aud, at, svcauth.MaxTTL)
	if err != nil {
		t.Fatal(err)
	}
	return tok
}

// TestServiceAuth drives both real binaries with mutual TLS and service
// JWTs: every internal call in both directions succeeds; a forged token,
// one for the other audience, an expired one, a user JWT and the caller's
// own service for a method it may not call are refused with their gRPC
// codes; a plaintext call is refused; revoking an instance cuts it off
// within 5 s, and a gateway whose tokens the platform refuses serves
// proxied traffic from its caches and says so in readiness.
func TestServiceAuth(t *testing.T) {
	t.Parallel()
	gwKey, gwRing := keyFile(t, svcauth.Gateway)
	pKey, pRing := keyFile(t, svcauth.Platform)
	platformInstance := "e2e-platform-" + randHex(4)
	s := newStackEach(t, map[string][]string{
		"gateway":          {"SERVICE_KEY_FILE=" + gwKey},
		"platform-backend": {"SERVICE_KEY_FILE=" + pKey, "SERVICE_INSTANCE_ID=" + platformInstance, "PLATFORM_ADMIN_EMAILS=root@admin.example"},
	})
	ts := s.setupTenant("svcauth")
	admin := s.platformAdmin("root@admin.example")
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	now := time.Now()

	proxied := func() int {
		return call(t, "POST", s.gatewayURL+"/trueportai-services/openai/v1/chat/completions", ts.apiKey,
			map[string]any{"model": "gpt-4o-mini", "messages": []map[string]string{{"role": "user", "content": "hi"}}}, nil)
	}
	// freshToken is a scoped token the gateway has not cached: its
	// management call makes the gateway call the platform now.
	freshToken := func() string {
		var sel struct {
			Token string `json:"scoped_access_token"`
		}
		if c := call(t, "POST", s.platformURL+"/platform/api/global/auth/select-tenant", ts.globalToken, map[string]string{"tenant_id": ts.tenantID}, &sel); c != 200 {
			t.Fatalf("select tenant: %d", c)
		}
		return sel.Token
	}
	management := func() int {
		return call(t, "GET", s.gatewayURL+"/trueportai-services/api/v1/keys", freshToken(), nil, nil)
	}
	adminStats := func() any {
		var st map[string]any
		if c := call(t, "GET", s.platformURL+"/platform/api/admin/stats", admin, nil, &st); c != 200 {
			t.Fatalf("admin stats: %d", c)
		}
		return st["requests_this_month"]
	}

	t.Run("both-directions", func(t *testing.T) {
		if c := proxied(); c != 200 {
			t.Errorf("proxied call (tenant context over gRPC): %d", c)
		}
		if c := management(); c != 200 {
			t.Errorf("management call (introspection over gRPC): %d", c)
		}
		if v := adminStats(); v == nil {
			t.Error("admin stats: the platform's usage call to the gateway failed")
		}
	})

	platformAsGateway := grpcConn(t, s.platformGRPC, s.tls["gateway"])
	gatewayAsPlatform := grpcConn(t, s.gatewayLis.grpcAddr(), s.tls["platform-backend"])
	tenantCtx := func(tok string) codes.Code {
		_, err := platformv1.NewTenantServiceClient(platformAsGateway).GetTenantContext(ctx, &platformv1.GetTenantContextRequest{TenantId: ts.tenantID},
			grpc.PerRPCCredentials(bearerToken(tok)))
		return status.Code(err)
	}
	countKeys := func(tok string) codes.Code {
		_, err := gatewayv1.NewUsageServiceClient(gatewayAsPlatform).CountKeys(ctx, &gatewayv1.CountKeysRequest{TenantId: ts.tenantID},
			grpc.PerRPCCredentials(bearerToken(tok)))
		return status.Code(err)
	}
	_, forgedGW := keyFile(t, svcauth.Gateway)
	_, forgedP := keyFile(t, svcauth.Platform)
	for _, tc := range []struct {
		name  string
		call  func(string) codes.Code
		token string
		want  codes.Code
	}{
		{"platform/gateway-token", tenantCtx, mintAt(t, gwRing, "e2e-caller", svcauth.Platform, now), codes.OK},
		{"platform/forged", tenantCtx, mintAt(t, forgedGW, "e2e-caller", svcauth.Platform, now), codes.Unauthenticated},
		{"platform/wrong-audience", tenantCtx, mintAt(t, gwRing, "e2e-caller", svcauth.Gateway, now), codes.Unauthenticated},
		{"platform/expired", tenantCtx, mintAt(t, gwRing, "e2e-caller", svcauth.Platform, now.Add(-10*time.Minute)), codes.Unauthenticated},
		{"platform/user-jwt", tenantCtx, ts.scopedToken, codes.Unauthenticated},
		{"platform/own-service", tenantCtx, mintAt(t, pRing, "e2e-caller", svcauth.Platform, now), codes.PermissionDenied},
		{"gateway/platform-token", countKeys, mintAt(t, pRing, "e2e-caller", svcauth.Gateway, now), codes.OK},
		{"gateway/forged", countKeys, mintAt(t, forgedP, "e2e-caller", svcauth.Gateway, now), codes.Unauthenticated},
		{"gateway/wrong-audience", countKeys, mintAt(t, pRing, "e2e-caller", svcauth.Platform, now), codes.Unauthenticated},
		{"gateway/expired", countKeys, mintAt(t, pRing, "e2e-caller", svcauth.Gateway, now.Add(-10*time.Minute)), codes.Unauthenticated},
		{"gateway/user-jwt", countKeys, ts.globalToken, codes.Unauthenticated},
		{"gateway/own-service", countKeys, mintAt(t, gwRing, "e2e-caller", svcauth.Gateway, now), codes.PermissionDenied},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := tc.call(tc.token); got != tc.want {
				t.Errorf("code = %v, want %v", got, tc.want)
			}
		})
	}
	t.Run("tampered", func(t *testing.T) {
		tok := mintAt(t, gwRing, "e2e-caller", svcauth.Platform, now)
		parts := strings.Split(tok, ".")
		sig, _ := base64.RawURLEncoding.DecodeString(parts[2])
		sig[0] ^= 1
		if got := tenantCtx(parts[0] + "." + parts[1] + "." + base64.RawURLEncoding.EncodeToString(sig)); got != codes.Unauthenticated {
			t.Errorf("code = %v, want Unauthenticated", got)
		}
	})
	t.Run("jwks", func(t *testing.T) {
		for addr, files := range map[string]svctls.Files{s.platformGRPC: s.tls["gateway"], s.gatewayLis.grpcAddr(): s.tls["platform-backend"]} {
			r, err := svcauthv1.NewServiceAuthServiceClient(grpcConn(t, addr, files)).GetJWKS(ctx, &svcauthv1.GetJWKSRequest{})
			if err != nil || !strings.Contains(string(r.GetJwksJson()), `"kid"`) {
				t.Errorf("JWKS at %s: %s %v", addr, r.GetJwksJson(), err)
			}
		}
	})
	t.Run("plaintext-refused", func(t *testing.T) {
		cc, err := grpc.NewClient(s.platformGRPC, grpc.WithTransportCredentials(insecure.NewCredentials()))
		if err != nil {
			t.Fatal(err)
		}
		defer cc.Close()
		_, err = platformv1.NewTenantServiceClient(cc).GetTenantContext(ctx, &platformv1.GetTenantContextRequest{TenantId: ts.tenantID},
			grpc.PerRPCCredentials(insecureBearer(mintAt(t, gwRing, "e2e-caller", svcauth.Platform, time.Now()))))
		if status.Code(err) != codes.Unavailable {
			t.Errorf("plaintext call: %v, want Unavailable (no TLS handshake)", err)
		}
	})

	// Revoke the platform's instance: the gateway refuses its calls.
	t.Run("revoke-platform-instance", func(t *testing.T) {
		runCommand(t, "platform-backend", s.envFor("platform-backend"), "revoke-instance", platformInstance)
		start := time.Now()
		eventually(t, 5*time.Second, func() error {
			if v := adminStats(); v != nil {
				return fmt.Errorf("the gateway still answers the revoked platform instance (requests_this_month = %v)", v)
			}
			return nil
		})
		t.Logf("platform instance cut off after %s", time.Since(start).Round(time.Millisecond))
	})

	// Revoke the gateway's instance: the platform refuses its calls; the
	// proxy serves on from its caches, and readiness says so.
	t.Run("revoke-gateway-instance", func(t *testing.T) {
		runCommand(t, "gateway", s.envFor("gateway"), "revoke-instance", s.gatewayInstance)
		start := time.Now()
		eventually(t, 5*time.Second, func() error {
			if c := management(); c != http.StatusServiceUnavailable {
				return fmt.Errorf("management call with a fresh token: %d, want 503 (platform refuses the gateway)", c)
			}
			return nil
		})
		t.Logf("gateway instance cut off after %s", time.Since(start).Round(time.Millisecond))
		for i := 0; i < 3; i++ {
			if c := proxied(); c != 200 {
				t.Errorf("proxied call from the caches while the platform refuses the gateway: %d", c)
			}
		}
		var ready struct {
			Status string            `json:"status"`
			Checks map[string]string `json:"checks"`
		}
		if c := call(t, "GET", s.gatewayURL+"/trueportai-services/health/ready", "", nil, &ready); c != http.StatusServiceUnavailable || ready.Checks["platform_auth"] != "refused" {
			t.Errorf("readiness = %d %+v, want 503 with platform_auth refused", c, ready)
		}
		var live struct {
			Status string `json:"status"`
		}
		if c := call(t, "GET", s.gatewayURL+"/trueportai-services/health/live", "", nil, &live); c != 200 {
			t.Errorf("liveness = %d, want 200 (the process is fine)", c)
		}
		// Another gateway instance (same key, own instance id) is accepted.
		url, _ := s.startGateway()
		if c := call(t, "GET", url+"/trueportai-services/api/v1/keys", freshToken(), nil, nil); c != 200 {
			t.Errorf("management call through another gateway instance: %d", c)
		}
	})
}

type insecureBearer string

func (b insecureBearer) GetRequestMetadata(context.Context, ...string) (map[string]string, error) {
	return map[string]string{"authorization": "Bearer " + string(b)}, nil
}
func (insecureBearer) RequireTransportSecurity() bool { return false }

// runCommand runs a subcommand of a service binary with env.
func runCommand(t *testing.T, binary string, env []string, args ...string) {
	t.Helper()
	cmd := exec.Command(filepath.Join(binDir, binary), args...)
	cmd.Env = append(os.Environ(), env...)
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("%s %v: %v\n%s", binary, args, err, out)
	}
}

// TestProdRequiresTLS: in APP_ENV=prod a service does not start without
// its mutual TLS files, and one that has them answers no plaintext call.
func TestProdRequiresTLS(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	svcKey, _ := keyFile(t, svcauth.Platform)
	jwtKey, _ := keyFile(t, "jwt")
	var k [32]byte
	_, _ = rand.Read(k[:])
	files, err := svctls.GenerateDev(dir, []string{"platform-backend"}, svctls.DevHosts, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	ls := newServiceListeners(t)
	env := []string{"APP_ENV=prod", "LOG_LEVEL=info",
		"PLATFORM_HTTP_ADDR=" + ls.httpAddr(), "PLATFORM_GRPC_ADDR=" + ls.grpcAddr(), "PLATFORM_INTERNAL_ADDR=" + ls.internalAddr(),
		"PLATFORM_DATABASE_URL=" + dbtest.NewURL(t, "e2e_prodtls"), "NATS_PREFIX=e2e" + randHex(4),
		"JWT_SIGNING_KEY_FILE=" + jwtKey, "SERVICE_KEY_FILE=" + svcKey,
		"SECRETS_ENCRYPTION_KEY=" + base64.StdEncoding.EncodeToString(k[:])}
	cmd := exec.Command(filepath.Join(binDir, "platform-backend"))
	cmd.Env = append(os.Environ(), env...)
	out, err := cmd.CombinedOutput()
	if err == nil || !strings.Contains(string(out), "GRPC_TLS_CA_FILE") {
		t.Fatalf("prod without TLS files: %v\n%s", err, out)
	}
	f := files["platform-backend"]
	env = append(env, "GRPC_TLS_CA_FILE="+f.CA, "GRPC_TLS_CERT_FILE="+f.Cert, "GRPC_TLS_KEY_FILE="+f.Key)
	startProc(t, "platform-backend", env, ls)
	eventually(t, 30*time.Second, func() error {
		resp, err := http.Get("http://" + ls.httpAddr() + "/health/live")
		if err != nil {
			return err
		}
		resp.Body.Close()
		return nil
	})
	cc, err := grpc.NewClient(ls.grpcAddr(), grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	defer cc.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	_, err = platformv1.NewTenantServiceClient(cc).GetTenantContext(ctx, &platformv1.GetTenantContextRequest{TenantId: "x"})
	if status.Code(err) != codes.Unavailable {
		t.Errorf("plaintext call to a prod platform: %v, want Unavailable", err)
	}
	_, err = svcauthv1.NewServiceAuthServiceClient(cc).GetJWKS(ctx, &svcauthv1.GetJWKSRequest{})
	if status.Code(err) != codes.Unavailable {
		t.Errorf("plaintext JWKS call to a prod platform: %v, want Unavailable", err)
	}
}
