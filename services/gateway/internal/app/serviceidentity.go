package app

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"strings"

	"google.golang.org/grpc"

	svcauthv1 "trueportai/proto/gen/trueport/svcauth/v1"
	"trueportai/services/gateway/internal/config"
	"trueportai/services/gateway/internal/servicekeys"
	"trueportai/services/internal/events"
	"trueportai/services/internal/pgdb"
	"trueportai/services/internal/svcauth"
	"trueportai/services/internal/svctls"
)

// grpcACL: the gateway's gRPC services answer the platform only
// (ServiceAuthService and health take no token: svcauth.Open).
func grpcACL() svcauth.ACL {
	return svcauth.ACL{"/trueport.gateway.v1.UsageService/": {svcauth.Platform}}
}

// serviceIdentity is the gateway towards the platform: its service-token
// keys, the minter of its calls' tokens, the introspection of its tokens,
// the mutual TLS of the gRPC connections (nil: plaintext, dev only), and
// whether the platform accepts its tokens (readiness).
type serviceIdentity struct {
	ring          *svcauth.KeyRing
	minter        *svcauth.Minter
	introspection *svcauth.Introspection
	tls           *svctls.TLS
	platform      *svcauth.PeerState
}

func newServiceIdentity(ctx context.Context, cfg config.Config, st *servicekeys.Store, log *slog.Logger) (serviceIdentity, error) {
	var dev svcauth.DevKeyStore
	if cfg.Dev() {
		dev = st.DevKey
	}
	ring, err := svcauth.LoadKeyRing(ctx, svcauth.Gateway, cfg.ServiceKeyFile, cfg.ServicePreviousKeyFiles, dev)
	if err != nil {
		return serviceIdentity{}, err
	}
	minter, err := svcauth.NewMinter(ring, svcauth.NewInstanceID(cfg.InstanceID), 0, nil)
	if err != nil {
		return serviceIdentity{}, err
	}
	t, err := svctls.Load(cfg.GRPCTLS)
	if err != nil {
		return serviceIdentity{}, err
	}
	return serviceIdentity{ring: ring, minter: minter, tls: t, platform: svcauth.NewPeerState(svcauth.Platform),
		introspection: svcauth.NewIntrospection(ring, st, log, nil)}, nil
}

// platformDialOptions: mutual TLS (when configured), a service token for
// the platform on every call, and the refusal tracking of readiness.
func (id serviceIdentity) platformDialOptions() []grpc.DialOption {
	return []grpc.DialOption{
		id.tls.DialOption(),
		id.minter.DialOption(svcauth.Platform, id.tls != nil),
		grpc.WithChainUnaryInterceptor(id.platform.UnaryClientInterceptor()),
	}
}

// verifier checks the platform's service tokens through the platform's
// introspection (conn), and the gateway's own locally (they reach no
// method: PermissionDenied).
func (id serviceIdentity) verifier(conn *grpc.ClientConn, log *slog.Logger) *svcauth.Verifier {
	return svcauth.NewVerifier(svcauth.Gateway, map[string]svcauth.Introspector{
		svcauth.Platform: svcauthv1.NewServiceAuthServiceClient(conn),
		svcauth.Gateway:  id.introspection.Local(),
	}, log, nil)
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
