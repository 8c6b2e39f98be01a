package svcauth

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"net"
	"sync/atomic"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/health"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/status"

	svcauthv1 "trueportai/proto/gen/trueport/svcauth/v1"
)

var quiet = slog.New(slog.NewTextHandler(io.Discard, nil))

// countingIntrospector counts the calls reaching the issuer; fail makes
// them fail as an unreachable issuer does; answer overrides the answer.
type countingIntrospector struct {
	in     Introspector
	calls  atomic.Int64
	fail   atomic.Bool
	answer func(*svcauthv1.IntrospectTokenResponse)
}

func (c *countingIntrospector) IntrospectToken(ctx context.Context, in *svcauthv1.IntrospectTokenRequest, opts ...grpc.CallOption) (*svcauthv1.IntrospectTokenResponse, error) {
	c.calls.Add(1)
	if c.fail.Load() {
		return nil, status.Error(codes.Unavailable, "down")
	}
	r, err := c.in.IntrospectToken(ctx, in, opts...)
	if err == nil && c.answer != nil {
		c.answer(r)
	}
	return r, err
}

type fixture struct {
	gw     *KeyRing
	issuer *countingIntrospector
	v      *Verifier
	now    time.Time
	rev    *revList
}

func newFixture(t *testing.T) *fixture {
	f := &fixture{gw: newRing(t, Gateway), now: t0, rev: &revList{}}
	clock := func() time.Time { return f.now }
	intro := NewIntrospection(f.gw, revFunc(func(ctx context.Context, i, k string) (bool, error) { return f.rev.Revoked(ctx, i, k) }), quiet, clock)
	f.issuer = &countingIntrospector{in: intro.Local()}
	f.v = NewVerifier(Platform, map[string]Introspector{Gateway: f.issuer}, quiet, clock)
	return f
}

type revFunc func(ctx context.Context, instance, kid string) (bool, error)

func (f revFunc) Revoked(ctx context.Context, instance, kid string) (bool, error) {
	return f(ctx, instance, kid)
}

func (f *fixture) mint(t *testing.T, sub, aud string, ttl time.Duration) string {
	tok, _, err := f.gw.Mint(sub, aud, f.now, ttl)
	if err != nil {
		t.Fatal(err)
	}
	return tok
}

// TestVerifierCachesUntilMinExp60s: one introspection per token until
// min(exp, 60 s); then asked again.
func TestVerifierCachesUntilMinExp60s(t *testing.T) {
	ctx := context.Background()
	f := newFixture(t)
	long := f.mint(t, "gw-1", Platform, MaxTTL)
	short := f.mint(t, "gw-1", Platform, 20*time.Second)
	for range 3 {
		if _, err := f.v.Verify(ctx, long); err != nil {
			t.Fatal(err)
		}
	}
	if n := f.issuer.calls.Load(); n != 1 {
		t.Fatalf("introspections = %d, want 1 (cached)", n)
	}
	f.now = t0.Add(MaxCacheAge - time.Second)
	_, _ = f.v.Verify(ctx, long)
	if n := f.issuer.calls.Load(); n != 1 {
		t.Fatalf("introspections before 60 s = %d, want 1", n)
	}
	f.now = t0.Add(MaxCacheAge)
	_, _ = f.v.Verify(ctx, long)
	if n := f.issuer.calls.Load(); n != 2 {
		t.Fatalf("introspections after 60 s = %d, want 2", n)
	}
	f.now = t0
	f.issuer.calls.Store(0)
	_, _ = f.v.Verify(ctx, short)
	f.now = t0.Add(21*time.Second + Skew)
	if _, err := f.v.Verify(ctx, short); ReasonOf(err) != ReasonExpired {
		t.Errorf("short token after exp: %v, want expired", err)
	}
}

// TestVerifierRefusals: each refusal reaches the caller as an
// InvalidError, an unreachable issuer as ErrUnavailable.
func TestVerifierRefusals(t *testing.T) {
	ctx := context.Background()
	f := newFixture(t)
	other := newRing(t, Gateway)
	forged, _, _ := other.Mint("gw-1", Platform, t0, MaxTTL)
	if _, err := f.v.Verify(ctx, forged); ReasonOf(err) != ReasonUnknownKey {
		t.Errorf("forged: %v", err)
	}
	wrongAud := f.mint(t, "gw-1", Gateway, MaxTTL)
	if _, err := f.v.Verify(ctx, wrongAud); ReasonOf(err) != ReasonWrongAudience {
		t.Errorf("wrong audience: %v", err)
	}
	platformRing := newRing(t, Platform)
	selfTok, _, _ := platformRing.Mint("p-1", Platform, t0, MaxTTL)
	if _, err := f.v.Verify(ctx, selfTok); ReasonOf(err) != ReasonUnknownIssuer {
		t.Errorf("unknown issuer: %v", err)
	}
	if n := f.issuer.calls.Load(); n != 1 {
		t.Errorf("introspections = %d, want 1: only the forged token needs the issuer", n)
	}
	good := f.mint(t, "gw-1", Platform, MaxTTL)
	f.issuer.fail.Store(true)
	if _, err := f.v.Verify(ctx, good); !errors.Is(err, ErrUnavailable) {
		t.Errorf("issuer down: %v, want ErrUnavailable", err)
	}
	f.issuer.fail.Store(false)
	// An issuer answer for other claims than the token's is refused.
	f.issuer.answer = func(r *svcauthv1.IntrospectTokenResponse) { r.Subject = "someone-else" }
	if _, err := f.v.Verify(ctx, good); ReasonOf(err) != ReasonIssuerDisagrees {
		t.Errorf("disagreeing issuer: %v", err)
	}
}

// TestVerifierRevoke: a revocation event drops cached answers and refuses
// the instance (or key) at once, without asking the issuer.
func TestVerifierRevoke(t *testing.T) {
	ctx := context.Background()
	f := newFixture(t)
	tok := f.mint(t, "gw-1", Platform, MaxTTL)
	keep := f.mint(t, "gw-2", Platform, MaxTTL)
	for _, s := range []string{tok, keep} {
		if _, err := f.v.Verify(ctx, s); err != nil {
			t.Fatal(err)
		}
	}
	f.v.Revoke(Gateway, "gw-1", "")
	if _, err := f.v.Verify(ctx, tok); ReasonOf(err) != ReasonRevoked {
		t.Errorf("revoked instance: %v", err)
	}
	if _, err := f.v.Verify(ctx, f.mint(t, "gw-1", Platform, time.Minute)); ReasonOf(err) != ReasonRevoked {
		t.Errorf("new token of the revoked instance: %v", err)
	}
	if _, err := f.v.Verify(ctx, keep); err != nil {
		t.Errorf("other instance refused: %v", err)
	}
	f.v.Revoke(Gateway, "", f.gw.KeyID())
	if _, err := f.v.Verify(ctx, keep); ReasonOf(err) != ReasonRevoked {
		t.Errorf("revoked key: %v", err)
	}
	// The issuer's own list refuses too (another verifier, no event).
	f.rev.instance = "gw-3"
	v2 := NewVerifier(Platform, map[string]Introspector{Gateway: f.issuer}, quiet, func() time.Time { return f.now })
	if _, err := v2.Verify(ctx, f.mint(t, "gw-3", Platform, MaxTTL)); ReasonOf(err) != ReasonRevoked {
		t.Errorf("instance on the issuer's revocation list: %v", err)
	}
}

// TestServerOptions: the interceptors' gRPC codes.
func TestServerOptions(t *testing.T) {
	f := newFixture(t)
	f.now = time.Now()
	platformRing := newRing(t, Platform)
	platformIntro := NewIntrospection(platformRing, nil, quiet, nil)
	v := NewVerifier(Platform, map[string]Introspector{Gateway: f.issuer, Platform: platformIntro.Local()}, quiet, nil)
	acl := ACL{"/test.Protected/Call": {Gateway}}
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := grpc.NewServer(ServerOptions(v, acl, quiet)...)
	healthpb.RegisterHealthServer(srv, health.NewServer())
	svcauthv1.RegisterServiceAuthServiceServer(srv, platformIntro)
	method := func(name string) grpc.MethodDesc {
		return grpc.MethodDesc{MethodName: name, Handler: func(_ any, ctx context.Context, dec func(any) error, ic grpc.UnaryServerInterceptor) (any, error) {
			in := new(healthpb.HealthCheckRequest)
			if err := dec(in); err != nil {
				return nil, err
			}
			h := func(ctx context.Context, _ any) (any, error) {
				if c, ok := Caller(ctx); !ok || c.Issuer != Gateway {
					return nil, status.Error(codes.Internal, "no caller")
				}
				return &healthpb.HealthCheckResponse{}, nil
			}
			return ic(ctx, in, &grpc.UnaryServerInfo{FullMethod: "/test.Protected/" + name}, h)
		}}
	}
	srv.RegisterService(&grpc.ServiceDesc{ServiceName: "test.Protected", HandlerType: (*any)(nil),
		Methods: []grpc.MethodDesc{method("Call"), method("Other")}}, struct{}{})
	go func() { _ = srv.Serve(lis) }()
	t.Cleanup(srv.Stop)
	gwMinter, _ := NewMinter(f.gw, "gw-1", 0, func() time.Time { return f.now })
	selfMinter, _ := NewMinter(platformRing, "p-1", 0, nil)
	otherMinter, _ := NewMinter(newRing(t, Gateway), "gw-1", 0, nil)
	call := func(method string, opts ...grpc.DialOption) codes.Code {
		cc, err := grpc.NewClient(lis.Addr().String(), append(opts, grpc.WithTransportCredentials(insecure.NewCredentials()))...)
		if err != nil {
			t.Fatal(err)
		}
		defer cc.Close()
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		return status.Code(cc.Invoke(ctx, method, &healthpb.HealthCheckRequest{}, &healthpb.HealthCheckResponse{}))
	}
	for _, tc := range []struct {
		name   string
		method string
		opts   []grpc.DialOption
		want   codes.Code
	}{
		{"health-open", "/grpc.health.v1.Health/Check", nil, codes.OK},
		{"no-token", "/test.Protected/Call", nil, codes.Unauthenticated},
		{"good", "/test.Protected/Call", []grpc.DialOption{gwMinter.DialOption(Platform, false)}, codes.OK},
		{"wrong-audience", "/test.Protected/Call", []grpc.DialOption{gwMinter.DialOption(Gateway, false)}, codes.Unauthenticated},
		{"forged", "/test.Protected/Call", []grpc.DialOption{otherMinter.DialOption(Platform, false)}, codes.Unauthenticated},
		{"not-allowed-caller", "/test.Protected/Call", []grpc.DialOption{selfMinter.DialOption(Platform, false)}, codes.PermissionDenied},
		{"method-not-in-acl", "/test.Protected/Other", []grpc.DialOption{gwMinter.DialOption(Platform, false)}, codes.PermissionDenied},
		{"bare-token", "/test.Protected/Call", []grpc.DialOption{grpc.WithPerRPCCredentials(bare("x"))}, codes.Unauthenticated},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := call(tc.method, tc.opts...); got != tc.want {
				t.Errorf("code = %v, want %v", got, tc.want)
			}
		})
	}
	t.Run("issuer-unreachable", func(t *testing.T) {
		f.issuer.fail.Store(true)
		defer f.issuer.fail.Store(false)
		m, _ := NewMinter(f.gw, "gw-9", 0, nil)
		if got := call("/test.Protected/Call", m.DialOption(Platform, false)); got != codes.Unavailable {
			t.Errorf("code = %v, want Unavailable", got)
		}
	})
	t.Run("introspection-open", func(t *testing.T) {
		cc, _ := grpc.NewClient(lis.Addr().String(), grpc.WithTransportCredentials(insecure.NewCredentials()))
		defer cc.Close()
		tok, _ := selfMinter.Token(Gateway)
		r, err := svcauthv1.NewServiceAuthServiceClient(cc).IntrospectToken(context.Background(), &svcauthv1.IntrospectTokenRequest{Token: tok, Audience: Gateway})
		if err != nil || !r.GetActive() || r.GetSubject() != "p-1" {
			t.Errorf("introspection: %v %v", r, err)
		}
	})
}

type bare string

func (b bare) GetRequestMetadata(context.Context, ...string) (map[string]string, error) {
	return map[string]string{"authorization": string(b)}, nil
}
func (bare) RequireTransportSecurity() bool { return false }

func TestPeerState(t *testing.T) {
	p := NewPeerState(Platform)
	if err := p.Probe(context.Background()); err != nil {
		t.Fatal(err)
	}
	p.Observe(status.Error(codes.Unavailable, "down"))
	if err := p.Probe(context.Background()); err != nil {
		t.Errorf("unreachable peer reported as refusing: %v", err)
	}
	p.Observe(status.Error(codes.Unauthenticated, "invalid service token"))
	if err := p.Probe(context.Background()); err == nil {
		t.Error("refusal not reported")
	}
	p.Observe(status.Error(codes.Unavailable, "down"))
	if err := p.Probe(context.Background()); err == nil {
		t.Error("refusal forgotten on a transport error")
	}
	// An open method's answer does not clear the refusal.
	ic := p.UnaryClientInterceptor()
	ok := func(context.Context, string, any, any, *grpc.ClientConn, ...grpc.CallOption) error { return nil }
	_ = ic(context.Background(), "/trueport.svcauth.v1.ServiceAuthService/IntrospectToken", nil, nil, nil, ok)
	_ = ic(context.Background(), "/grpc.health.v1.Health/Check", nil, nil, nil, ok)
	if err := p.Probe(context.Background()); err == nil {
		t.Error("refusal cleared by an open method's answer")
	}
	_ = ic(context.Background(), "/trueport.platform.v1.TenantService/GetTenantContext", nil, nil, nil,
		func(context.Context, string, any, any, *grpc.ClientConn, ...grpc.CallOption) error {
			return status.Error(codes.NotFound, "no such tenant")
		})
	if err := p.Probe(context.Background()); err != nil {
		t.Errorf("accepted call did not clear the refusal: %v", err)
	}
}
