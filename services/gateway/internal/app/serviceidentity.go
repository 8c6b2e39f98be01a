package app

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"strings"

	"google.golang.org/grpc"

	"trueportai/services/gateway/internal/config"
	"trueportai/services/gateway/internal/servicekeys"
	"trueportai/services/internal/events"
	"trueportai/services/internal/pgdb"
	"trueportai/services/internal/svcauth"
)

// grpcACL: the gateway's gRPC services answer the platform only
// (ServiceAuthService and health take no token: svcauth.Open).
func grpcACL() svcauth.ACL {
	return svcauth.ACL{"/trueport.gateway.v1.UsageService/": {svcauth.Platform}}
}

// serviceIdentity is the gateway towards the platform (svcauth.Identity)
// and whether the platform accepts its tokens (readiness).
type serviceIdentity struct {
	*svcauth.Identity
	platform *svcauth.PeerState
}

func newServiceIdentity(ctx context.Context, cfg config.Config, st *servicekeys.Store, log *slog.Logger) (serviceIdentity, error) {
	id, err := svcauth.NewIdentity(ctx, svcauth.Options{Service: svcauth.Gateway, Peer: svcauth.Platform,
		Config: cfg.ServiceIdentity, DevKeys: st.DevKey, Revocations: st, Log: log})
	if err != nil {
		return serviceIdentity{}, err
	}
	return serviceIdentity{Identity: id, platform: svcauth.NewPeerState(svcauth.Platform)}, nil
}

// platformDialOptions: mutual TLS (when configured), a service token for
// the platform on every call, and the refusal tracking of readiness.
func (id serviceIdentity) platformDialOptions() []grpc.DialOption {
	return append(id.DialOptions(), grpc.WithChainUnaryInterceptor(id.platform.UnaryClientInterceptor()))
}

// revokeCommand runs "revoke-instance ID" / "revoke-key KID" (svcauth.RevokeCommand).
func revokeCommand(ctx context.Context, args []string, getenv func(string) string, stdout io.Writer) (bool, error) {
	if len(args) == 0 || !strings.HasPrefix(args[0], "revoke-") {
		return false, nil
	}
	cfg, err := config.Load(getenv)
	if err != nil {
		return true, fmt.Errorf("config: %w", err)
	}
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	pool, err := pgdb.Open(ctx, cfg.DatabaseURL, log)
	if err != nil {
		return true, err
	}
	defer pool.Close()
	ok, err := svcauth.RevokeCommand(ctx, svcauth.Gateway, args, servicekeys.New(pool), cfg.NATSURL, events.Subjects{Prefix: cfg.NATSPrefix})
	if ok && err == nil {
		fmt.Fprintf(stdout, "%s %s revoked\n", strings.TrimPrefix(args[0], "revoke-"), args[1])
	}
	return ok, err
}
