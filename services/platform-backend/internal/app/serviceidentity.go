package app

import (
	"context"
	"errors"
	"fmt"
	"io"
	"time"

	"trueportai/services/internal/svcauth"
	"trueportai/services/internal/svctls"
	"trueportai/services/platform-backend/internal/store"
)

// grpcACL: every platform gRPC service answers the gateway only
// (ServiceAuthService and health take no token: svcauth.Open).
func grpcACL() svcauth.ACL {
	return svcauth.ACL{
		"/trueport.platform.v1.AuthService/":   {svcauth.Gateway},
		"/trueport.platform.v1.TenantService/": {svcauth.Gateway},
		"/trueport.platform.v1.ConfigService/": {svcauth.Gateway},
	}
}

// revoker is the store as svcauth's revocation list and recorder.
type revoker struct{ st *store.Store }

func (r revoker) Revoked(ctx context.Context, instance, keyID string) (bool, error) {
	return r.st.ServiceRevoked(ctx, instance, keyID)
}

func (r revoker) Revoke(ctx context.Context, kind, value string) error {
	return r.st.RevokeService(ctx, kind, value)
}

// devCerts is "dev-certs DIR": a throwaway CA and a certificate for each
// service (127.0.0.1, ::1, localhost) for make run; never for production.
func devCerts(args []string, out io.Writer) error {
	if len(args) != 2 {
		return errors.New("usage: platform-backend dev-certs DIR")
	}
	files, err := svctls.GenerateDev(args[1], []string{svcauth.Platform, svcauth.Gateway}, svctls.DevHosts, 30*24*time.Hour)
	if err != nil {
		return err
	}
	for _, svc := range []string{svcauth.Platform, svcauth.Gateway} {
		f := files[svc]
		fmt.Fprintf(out, "%s: GRPC_TLS_CA_FILE=%s GRPC_TLS_CERT_FILE=%s GRPC_TLS_KEY_FILE=%s\n", svc, f.CA, f.Cert, f.Key)
	}
	return nil
}
