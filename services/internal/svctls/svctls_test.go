package svctls

import (
	"context"
	"net"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/health"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/status"
)

// TestMutualTLS: a server with the CA's certificate answers a client with
// the CA's certificate, and nobody else: not plaintext, not a client
// without a certificate, not one from another CA; the client refuses a
// server from another CA.
func TestMutualTLS(t *testing.T) {
	files, err := GenerateDev(t.TempDir(), []string{"platform-backend", "gateway"}, DevHosts, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	other, err := GenerateDev(t.TempDir(), []string{"gateway"}, DevHosts, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	load := func(f Files) *TLS {
		c, err := Load(f)
		if err != nil {
			t.Fatal(err)
		}
		return c
	}
	serve := func(c *TLS) string {
		lis, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		srv := grpc.NewServer(c.ServerOption()...)
		healthpb.RegisterHealthServer(srv, health.NewServer())
		go func() { _ = srv.Serve(lis) }()
		t.Cleanup(srv.Stop)
		return lis.Addr().String()
	}
	platform := serve(load(files["platform-backend"]))
	check := func(addr string, opt grpc.DialOption) codes.Code {
		cc, err := grpc.NewClient(addr, opt)
		if err != nil {
			t.Fatal(err)
		}
		defer cc.Close()
		ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
		defer cancel()
		_, err = healthpb.NewHealthClient(cc).Check(ctx, &healthpb.HealthCheckRequest{})
		return status.Code(err)
	}
	noCert := load(files["gateway"]).ClientConfig()
	noCert.GetClientCertificate = nil
	for _, tc := range []struct {
		name string
		addr string
		opt  grpc.DialOption
		want codes.Code
	}{
		{"mutual", platform, load(files["gateway"]).DialOption(), codes.OK},
		{"client-without-certificate", platform, grpc.WithTransportCredentials(credentials.NewTLS(noCert)), codes.Unavailable},
		{"plaintext-client", platform, grpc.WithTransportCredentials(insecure.NewCredentials()), codes.Unavailable},
		{"client-of-another-ca", platform, load(other["gateway"]).DialOption(), codes.Unavailable},
		{"server-of-another-ca", serve(load(other["gateway"])), load(files["gateway"]).DialOption(), codes.Unavailable},
		{"nil-is-plaintext", serve(nil), (*TLS)(nil).DialOption(), codes.OK},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := check(tc.addr, tc.opt); got != tc.want {
				t.Errorf("code = %v, want %v", got, tc.want)
			}
		})
	}
}

func TestFilesValidate(t *testing.T) {
	if err := (Files{}).Validate(true); err == nil {
		t.Error("prod without files accepted")
	}
	if err := (Files{}).Validate(false); err != nil {
		t.Errorf("dev without files: %v", err)
	}
	if err := (Files{CA: "a", Cert: "b"}).Validate(false); err == nil {
		t.Error("two of three files accepted")
	}
	if c, err := Load(Files{}); c != nil || err != nil {
		t.Errorf("Load of nothing = %v, %v", c, err)
	}
	if _, err := Load(Files{CA: "/nonexistent", Cert: "b", Key: "c"}); err == nil {
		t.Error("missing CA file accepted")
	}
}
