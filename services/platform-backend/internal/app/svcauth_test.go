package app

import (
	"bytes"
	"context"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/status"

	platformv1 "trueportai/proto/gen/trueport/platform/v1"
	svcauthv1 "trueportai/proto/gen/trueport/svcauth/v1"
	"trueportai/services/internal/events"
	"trueportai/services/internal/svcauth"
)

// bearer sends a fixed authorization value.
type bearer string

func (b bearer) GetRequestMetadata(context.Context, ...string) (map[string]string, error) {
	return map[string]string{"authorization": "Bearer " + string(b)}, nil
}
func (bearer) RequireTransportSecurity() bool { return false }

// TestServiceTokensOnGRPC: the platform's gRPC answers only calls carrying
// a valid gateway service token (checked at the gateway's introspection),
// with the gRPC code of each refusal. Before, one static pre-shared token
// token (off in dev) was the only check.
func TestServiceTokensOnGRPC(t *testing.T) {
	t.Parallel()
	s := startServer(t)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	owner := s.newUser(t, "owner@example.com")
	tn := s.newTenant(t, owner, "Acme", "acme")
	ring, _ := gatewayRings.Load(s.env["GATEWAY_GRPC_ADDR"])
	gw := ring.(*svcauth.KeyRing)
	now := time.Now()
	mint := func(r *svcauth.KeyRing, sub, aud string, at time.Time, ttl time.Duration) string {
		tok, _, err := r.Mint(sub, aud, at, ttl)
		if err != nil {
			t.Fatal(err)
		}
		return tok
	}
	other := startGatewayIdentity(t, false).ring // another key that also says "gateway"
	// The platform's own key: a valid identity, but no method admits it.
	self, err := svcauth.LoadKeyRing(ctx, svcauth.Platform, "", nil, func(ctx context.Context, name string, _ func() (string, error)) (string, error) {
		var v string
		err := s.db.QueryRow(ctx, `SELECT material FROM dev_keys WHERE name = $1`, name).Scan(&v)
		return v, err
	})
	if err != nil {
		t.Fatal(err)
	}
	conn := func(opts ...grpc.DialOption) platformv1.TenantServiceClient {
		cc, err := grpc.NewClient(s.grpcAddr, append(opts, grpc.WithTransportCredentials(insecure.NewCredentials()))...)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = cc.Close() })
		return platformv1.NewTenantServiceClient(cc)
	}
	callWith := func(tok string) error {
		_, err := conn(grpc.WithPerRPCCredentials(bearer(tok))).GetTenantContext(ctx, &platformv1.GetTenantContextRequest{TenantId: tn.ID})
		return err
	}
	for _, tc := range []struct {
		name  string
		token string
		want  codes.Code
	}{
		{"gateway-token", mint(gw, "gw-1", svcauth.Platform, now, svcauth.MaxTTL), codes.OK},
		{"forged-other-key", mint(other, "gw-1", svcauth.Platform, now, svcauth.MaxTTL), codes.Unauthenticated},
		{"wrong-audience", mint(gw, "gw-1", svcauth.Gateway, now, svcauth.MaxTTL), codes.Unauthenticated},
		{"expired", mint(gw, "gw-1", svcauth.Platform, now.Add(-10*time.Minute), svcauth.MaxTTL), codes.Unauthenticated},
		{"user-jwt", owner.Global, codes.Unauthenticated},
		{"user-scoped-jwt", s.scoped(t, owner, tn.ID), codes.Unauthenticated},
		{"platform-own-token", mint(self, "p-1", svcauth.Platform, now, svcauth.MaxTTL), codes.PermissionDenied},
		{"garbage", "garbage", codes.Unauthenticated},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := status.Code(callWith(tc.token)); got != tc.want {
				t.Errorf("code = %v, want %v", got, tc.want)
			}
		})
	}
	t.Run("no-token", func(t *testing.T) {
		_, err := conn().GetTenantContext(ctx, &platformv1.GetTenantContextRequest{TenantId: tn.ID})
		if status.Code(err) != codes.Unauthenticated {
			t.Errorf("err = %v, want Unauthenticated", err)
		}
	})
	t.Run("introspection-and-jwks-open", func(t *testing.T) {
		cc, _ := grpc.NewClient(s.grpcAddr, grpc.WithTransportCredentials(insecure.NewCredentials()))
		defer cc.Close()
		c := svcauthv1.NewServiceAuthServiceClient(cc)
		r, err := c.IntrospectToken(ctx, &svcauthv1.IntrospectTokenRequest{Token: mint(self, "p-1", svcauth.Gateway, now, svcauth.MaxTTL), Audience: svcauth.Gateway})
		if err != nil || !r.GetActive() || r.GetIssuer() != svcauth.Platform || r.GetSubject() != "p-1" {
			t.Errorf("introspect own token = %v, %v", r, err)
		}
		r, err = c.IntrospectToken(ctx, &svcauthv1.IntrospectTokenRequest{Token: owner.Global, Audience: svcauth.Gateway})
		if err != nil || r.GetActive() || r.GetReason() != svcauth.ReasonNotService {
			t.Errorf("introspect a user JWT = %v, %v", r, err)
		}
		j, err := c.GetJWKS(ctx, &svcauthv1.GetJWKSRequest{})
		if err != nil || !bytes.Contains(j.GetJwksJson(), []byte(self.KeyID())) {
			t.Errorf("JWKS = %s, %v; want kid %s", j.GetJwksJson(), err, self.KeyID())
		}
		// The user-token JWKS (REST) does not list the service key.
		resp := s.get(t, "/platform/api/global/auth/.well-known/jwks.json", "")
		if resp.Status != http.StatusOK || strings.Contains(string(resp.Body), self.KeyID()) {
			t.Errorf("user JWKS lists the service key: %s", resp)
		}
	})
	t.Run("revoked-instance-within-5s", func(t *testing.T) {
		tok := mint(gw, "gw-revoked", svcauth.Platform, time.Now(), svcauth.MaxTTL)
		if err := callWith(tok); err != nil {
			t.Fatalf("before revocation: %v", err)
		}
		nc, err := nats.Connect(s.natsURL)
		if err != nil {
			t.Fatal(err)
		}
		defer nc.Close()
		if err := svcauth.PublishRevocation(nc, events.Subjects{Prefix: s.prefix}, events.ServiceRevokedEvent{Issuer: svcauth.Gateway, Instance: "gw-revoked"}); err != nil {
			t.Fatal(err)
		}
		start := time.Now()
		for status.Code(callWith(tok)) != codes.Unauthenticated {
			if time.Since(start) > 5*time.Second {
				t.Fatal("revoked instance still accepted after 5 s (its answer was cached for 60 s)")
			}
			time.Sleep(50 * time.Millisecond)
		}
		if err := callWith(mint(gw, "gw-other", svcauth.Platform, time.Now(), svcauth.MaxTTL)); err != nil {
			t.Errorf("another instance refused: %v", err)
		}
	})
}
