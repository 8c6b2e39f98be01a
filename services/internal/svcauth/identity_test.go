package svcauth

import (
	"context"
	"errors"
	"net"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/status"

	svcauthv1 "trueportai/proto/gen/trueport/svcauth/v1"
	"trueportai/services/internal/svctls"
)

// TestLoadConfig: outside dev the service-token key and the three mutual
// TLS files are required; in dev all are optional, but the TLS files go
// together. Values are trimmed, the previous keys a comma list.
func TestLoadConfig(t *testing.T) {
	t.Parallel()
	tlsEnv := map[string]string{"GRPC_TLS_CA_FILE": "ca", "GRPC_TLS_CERT_FILE": "c", "GRPC_TLS_KEY_FILE": "k"}
	tlsFiles := svctls.Files{CA: "ca", Cert: "c", Key: "k"}
	with := func(m map[string]string, kv ...string) map[string]string {
		out := map[string]string{}
		for k, v := range m {
			out[k] = v
		}
		for i := 0; i < len(kv); i += 2 {
			out[kv[i]] = kv[i+1]
		}
		return out
	}
	for _, tc := range []struct {
		name    string
		env     map[string]string
		dev     bool
		want    Config
		wantErr []string // substrings of the error; none: no error
	}{
		{name: "prod-nothing", env: nil, wantErr: []string{"SERVICE_KEY_FILE is required", "calls to " + Gateway, "GRPC_TLS_CA_FILE, GRPC_TLS_CERT_FILE and GRPC_TLS_KEY_FILE are required"}},
		{name: "prod-no-tls", env: map[string]string{"SERVICE_KEY_FILE": "key.pem"}, wantErr: []string{"GRPC_TLS_CA_FILE"}},
		{name: "prod-no-key", env: tlsEnv, wantErr: []string{"SERVICE_KEY_FILE is required"}},
		{name: "prod-two-tls-files", env: with(tlsEnv, "SERVICE_KEY_FILE", "key.pem", "GRPC_TLS_KEY_FILE", ""), wantErr: []string{"go together"}},
		{name: "prod-all", env: with(tlsEnv, "SERVICE_KEY_FILE", "key.pem"), want: Config{KeyFile: "key.pem", TLS: tlsFiles}},
		{name: "dev-nothing", env: nil, dev: true, want: Config{Dev: true}},
		{name: "dev-one-tls-file", env: map[string]string{"GRPC_TLS_CA_FILE": "ca"}, dev: true, wantErr: []string{"go together"}},
		{name: "dev-all-trimmed", dev: true, env: with(tlsEnv, "SERVICE_KEY_FILE", " k.pem ", "SERVICE_PREVIOUS_KEY_FILES", " a.pem, ,b.pem ,",
			"SERVICE_INSTANCE_ID", "pod-1", "GRPC_TLS_CA_FILE", " ca "),
			want: Config{KeyFile: "k.pem", PreviousKeyFiles: []string{"a.pem", "b.pem"}, InstanceID: "pod-1", TLS: tlsFiles, Dev: true}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c, err := LoadConfig(func(k string) string { return tc.env[k] }, tc.dev, Gateway)
			if len(tc.wantErr) == 0 {
				if err != nil || !reflect.DeepEqual(c, tc.want) {
					t.Errorf("LoadConfig = %+v, %v; want %+v", c, err, tc.want)
				}
				return
			}
			for _, s := range tc.wantErr {
				if err == nil || !strings.Contains(err.Error(), s) {
					t.Errorf("error %v does not say %q", err, s)
				}
			}
		})
	}
}

// writeKey writes a new signing key to dir/name.
func writeKey(t *testing.T, dir, name string) string {
	t.Helper()
	b, err := GenerateKeyPEM()
	if err != nil {
		t.Fatal(err)
	}
	p := filepath.Join(dir, name)
	if err := os.WriteFile(p, b, 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

// serveIdentity serves id's introspection and a protected method
// (/test.Protected/Call, answering the caller's claims in the status
// message) under id.ServerOptions with acl; the verifier asks the peer at
// peerAddr.
func serveIdentity(t *testing.T, id *Identity, acl ACL, lis net.Listener, peerAddr string) {
	t.Helper()
	cc, err := grpc.NewClient(peerAddr, id.DialOptions()...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cc.Close() })
	srv := grpc.NewServer(id.ServerOptions(id.Verifier(cc, quiet), acl, quiet)...)
	svcauthv1.RegisterServiceAuthServiceServer(srv, id.Introspection)
	srv.RegisterService(&grpc.ServiceDesc{ServiceName: "test.Protected", HandlerType: (*any)(nil),
		Methods: []grpc.MethodDesc{{MethodName: "Call", Handler: func(_ any, ctx context.Context, dec func(any) error, ic grpc.UnaryServerInterceptor) (any, error) {
			in := new(healthpb.HealthCheckRequest)
			if err := dec(in); err != nil {
				return nil, err
			}
			return ic(ctx, in, &grpc.UnaryServerInfo{FullMethod: "/test.Protected/Call"}, func(ctx context.Context, _ any) (any, error) {
				c, _ := Caller(ctx)
				return nil, status.Error(codes.AlreadyExists, c.Issuer+"/"+c.Subject) // reached, and by whom
			})
		}}}}, struct{}{})
	done := make(chan struct{})
	go func() { defer close(done); _ = srv.Serve(lis) }()
	t.Cleanup(func() { srv.Stop(); <-done })
}

// TestIdentityPair: a gateway and a platform Identity, from key files (and
// a previous key), an instance id and mutual TLS files, or in dev mode
// from a kept key over plaintext, call each other: the gateway's calls
// reach the platform's method as gateway/INSTANCE, checked at the
// gateway's introspection; a revoked instance, the platform's own token
// and a plaintext call (with TLS) do not.
func TestIdentityPair(t *testing.T) {
	t.Parallel()
	for _, withTLS := range []bool{true, false} {
		t.Run(map[bool]string{true: "tls", false: "dev-plaintext"}[withTLS], func(t *testing.T) {
			t.Parallel()
			ctx := context.Background()
			dir := t.TempDir()
			cfg := map[string]Config{Gateway: {Dev: true}, Platform: {Dev: true}}
			if withTLS {
				files, err := svctls.GenerateDev(dir, []string{Gateway, Platform}, svctls.DevHosts, time.Hour)
				if err != nil {
					t.Fatal(err)
				}
				for _, svc := range []string{Gateway, Platform} {
					cfg[svc] = Config{KeyFile: writeKey(t, dir, svc+".key"), PreviousKeyFiles: []string{writeKey(t, dir, svc+"-old.key")}, TLS: files[svc]}
				}
			}
			kept := map[string]string{} // the dev key store, by service
			newID := func(svc, peer, instance string, rev Revocations) *Identity {
				c := cfg[svc]
				c.InstanceID = instance
				id, err := NewIdentity(ctx, Options{Service: svc, Peer: peer, Config: c, Revocations: rev, Log: quiet,
					DevKeys: func(_ context.Context, _ string, gen func() (string, error)) (string, error) {
						if kept[svc] == "" {
							v, err := gen()
							kept[svc] = v
							return v, err
						}
						return kept[svc], nil
					}})
				if err != nil {
					t.Fatal(err)
				}
				if (id.TLS != nil) != withTLS || id.Minter.Instance() != instance {
					t.Fatalf("%s: TLS %v, instance %q", svc, id.TLS != nil, id.Minter.Instance())
				}
				return id
			}
			gw := newID(Gateway, Platform, "gw-1", revList{instance: "gw-revoked"})
			plat := newID(Platform, Gateway, "p-1", nil)
			gwLis, err1 := net.Listen("tcp", "127.0.0.1:0")
			platLis, err2 := net.Listen("tcp", "127.0.0.1:0")
			if err := errors.Join(err1, err2); err != nil {
				t.Fatal(err)
			}
			serveIdentity(t, gw, ACL{}, gwLis, platLis.Addr().String())
			serveIdentity(t, plat, ACL{"/test.Protected/": {Gateway}}, platLis, gwLis.Addr().String())

			call := func(opts ...grpc.DialOption) (codes.Code, string) {
				cc, err := grpc.NewClient(platLis.Addr().String(), opts...)
				if err != nil {
					t.Fatal(err)
				}
				defer cc.Close()
				ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
				defer cancel()
				s := status.Convert(cc.Invoke(ctx, "/test.Protected/Call", &healthpb.HealthCheckRequest{}, &healthpb.HealthCheckResponse{}))
				return s.Code(), s.Message()
			}
			if code, msg := call(gw.DialOptions()...); code != codes.AlreadyExists || msg != Gateway+"/gw-1" {
				t.Errorf("gateway's call: %v %q, want it to reach the method as %s/gw-1", code, msg, Gateway)
			}
			// Same key (file or kept dev key), revoked instance.
			if code, _ := call(newID(Gateway, Platform, "gw-revoked", nil).DialOptions()...); code != codes.Unauthenticated {
				t.Errorf("revoked instance's call: %v, want Unauthenticated", code)
			}
			// Its own token for itself: verified locally, but the ACL admits
			// only the gateway.
			if code, _ := call(plat.TLS.DialOption(), plat.Minter.DialOption(Platform, withTLS)); code != codes.PermissionDenied {
				t.Errorf("platform's own token: %v, want PermissionDenied", code)
			}
			if withTLS {
				tok, err := gw.Minter.Token(Platform)
				if err != nil {
					t.Fatal(err)
				}
				if code, _ := call(grpc.WithTransportCredentials(insecure.NewCredentials()), grpc.WithPerRPCCredentials(bare("Bearer "+tok))); code != codes.Unavailable {
					t.Errorf("plaintext call to a TLS server: %v, want Unavailable", code)
				}
			}
		})
	}
}

// TestNewIdentityRefuses: the dev key store counts only in dev mode, and
// an identity needs its service, peer and logger.
func TestNewIdentityRefuses(t *testing.T) {
	t.Parallel()
	called := false
	store := func(_ context.Context, _ string, gen func() (string, error)) (string, error) {
		called = true
		return gen()
	}
	_, err := NewIdentity(context.Background(), Options{Service: Gateway, Peer: Platform, Config: Config{}, DevKeys: store, Log: quiet})
	if err == nil || !strings.Contains(err.Error(), "SERVICE_KEY_FILE is required") || called {
		t.Errorf("prod without a key file: %v (dev store called: %v)", err, called)
	}
	if _, err := NewIdentity(context.Background(), Options{Service: Gateway, Config: Config{Dev: true}, DevKeys: store, Log: quiet}); err == nil {
		t.Error("identity without a peer accepted")
	}
	if _, err := NewIdentity(context.Background(), Options{Service: Gateway, Peer: Platform,
		Config: Config{Dev: true, TLS: svctls.Files{CA: "/nonexistent", Cert: "c", Key: "k"}}, DevKeys: store, Log: quiet}); err == nil {
		t.Error("missing TLS files accepted")
	}
}
