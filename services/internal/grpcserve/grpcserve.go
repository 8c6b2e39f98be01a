// Package grpcserve runs a gRPC server with the services' shutdown rules.
package grpcserve

import (
	"context"
	"fmt"
	"net"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/health"
)

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
