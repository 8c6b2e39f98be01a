// Package grpcserve runs a gRPC server with the services' connection limits
// (ServerOptions) and shutdown rules (Serve).
package grpcserve

import (
	"context"
	"fmt"
	"net"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/health"
	"google.golang.org/grpc/keepalive"
)

// Connection limits of ServerOptions. The gRPC ports are internal (and
// token-checked in prod), but whoever reaches them must not hold
// connections forever.
const (
	// MaxConnectionIdle closes a connection with no call for this long
	// (clients reconnect on their next call).
	MaxConnectionIdle = 15 * time.Minute
	// PingInterval and PingTimeout: an idle connection is pinged, and
	// closed when the ping is not answered, so dead peers are dropped.
	PingInterval = 2 * time.Minute
	PingTimeout  = 20 * time.Second
	// MinClientPing is the most frequent keepalive ping a client may send
	// (more often: the connection is closed, "too_many_pings").
	MinClientPing = 10 * time.Second
	// MaxConcurrentStreams bounds the calls in flight on one connection.
	MaxConcurrentStreams = 1024
)

// ServerOptions are the connection limits every gRPC server of the services
// gets: handshake bounds the time from accept to a finished HTTP/2 handshake
// (a silent or slow connection is closed then: the services pass
// READ_HEADER_TIMEOUT), then the keepalive and idle rules above.
func ServerOptions(handshake time.Duration) []grpc.ServerOption {
	return []grpc.ServerOption{
		grpc.ConnectionTimeout(handshake),
		grpc.KeepaliveParams(keepalive.ServerParameters{
			MaxConnectionIdle: MaxConnectionIdle, Time: PingInterval, Timeout: PingTimeout,
		}),
		grpc.KeepaliveEnforcementPolicy(keepalive.EnforcementPolicy{MinTime: MinClientPing, PermitWithoutStream: true}),
		grpc.MaxConcurrentStreams(MaxConcurrentStreams),
	}
}

// Serve runs srv on lis until ctx ends; then health turns NOT_SERVING,
// in-flight calls get grace to finish, and the rest are cut.
func Serve(ctx context.Context, srv *grpc.Server, lis net.Listener, hs *health.Server, grace time.Duration) error {
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(lis) }()
	select {
	case err := <-errc:
		return fmt.Errorf("grpc server %s: %w", lis.Addr(), err)
	case <-ctx.Done():
	}
	hs.Shutdown()
	stopped := make(chan struct{})
	go func() { srv.GracefulStop(); close(stopped) }()
	select {
	case <-stopped:
	case <-time.After(grace):
		srv.Stop()
	}
	return nil
}
