package rpcauth

import (
	"context"
	"net"
	"testing"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/health"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/status"
)

func TestTokenRequired(t *testing.T) {
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := grpc.NewServer(ServerOptions("s3cret")...)
	healthpb.RegisterHealthServer(srv, health.NewServer())
	// A protected service: answers Unimplemented once past the check.
	srv.RegisterService(&grpc.ServiceDesc{
		ServiceName: "test.Protected",
		HandlerType: (*any)(nil),
		Methods: []grpc.MethodDesc{{MethodName: "Call", Handler: func(_ any, ctx context.Context, dec func(any) error, ic grpc.UnaryServerInterceptor) (any, error) {
			in := new(healthpb.HealthCheckRequest)
			if err := dec(in); err != nil {
				return nil, err
			}
			h := func(context.Context, any) (any, error) { return nil, status.Error(codes.Unimplemented, "reached") }
			if ic == nil {
				return h(ctx, in)
			}
			return ic(ctx, in, &grpc.UnaryServerInfo{FullMethod: "/test.Protected/Call"}, h)
		}}},
	}, struct{}{})
	go func() { _ = srv.Serve(lis) }()
	defer srv.Stop()
	ctx := context.Background()
	dial := func(opts ...grpc.DialOption) healthpb.HealthClient {
		conn, err := grpc.NewClient(lis.Addr().String(), append(opts, grpc.WithTransportCredentials(insecure.NewCredentials()))...)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { conn.Close() })
		return healthpb.NewHealthClient(conn)
	}
	// Health stays open for probes; everything else needs the token.
	anon := dial()
	if _, err := anon.Check(ctx, &healthpb.HealthCheckRequest{}); err != nil {
		t.Fatalf("health must stay open: %v", err)
	}
	connAnon, _ := grpc.NewClient(lis.Addr().String(), grpc.WithTransportCredentials(insecure.NewCredentials()))
	defer connAnon.Close()
	err = connAnon.Invoke(ctx, "/test.Protected/Call", &healthpb.HealthCheckRequest{}, &healthpb.HealthCheckResponse{})
	if status.Code(err) != codes.Unauthenticated {
		t.Fatalf("no token: %v", err)
	}
	connBad, _ := grpc.NewClient(lis.Addr().String(), append(DialOptions("wrong"), grpc.WithTransportCredentials(insecure.NewCredentials()))...)
	defer connBad.Close()
	err = connBad.Invoke(ctx, "/test.Protected/Call", &healthpb.HealthCheckRequest{}, &healthpb.HealthCheckResponse{})
	if status.Code(err) != codes.Unauthenticated {
		t.Fatalf("wrong token: %v", err)
	}
	connGood, _ := grpc.NewClient(lis.Addr().String(), append(DialOptions("s3cret"), grpc.WithTransportCredentials(insecure.NewCredentials()))...)
	defer connGood.Close()
	err = connGood.Invoke(ctx, "/test.Protected/Call", &healthpb.HealthCheckRequest{}, &healthpb.HealthCheckResponse{})
	if status.Code(err) != codes.Unimplemented {
		t.Fatalf("good token must pass the check (then Unimplemented): %v", err)
	}
}
