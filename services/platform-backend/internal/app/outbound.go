package app

import (
	"trueportai/services/internal/rpcauth"

	"log/slog"

	"trueportai/services/platform-backend/internal/billing"
	"trueportai/services/platform-backend/internal/config"
	"trueportai/services/platform-backend/internal/gatewayclient"
	"trueportai/services/platform-backend/internal/httpapi"
	"trueportai/services/platform-backend/internal/mail"
	"trueportai/services/platform-backend/internal/store"
)

// newOutbound builds the team, billing and admin routes' outbound
// dependencies: a lazily connecting client of the gateway's gRPC
// (GATEWAY_GRPC_ADDR; a gateway that is down is not a start-up error), the
// invite mailer (the platform's one sender, newMailer) and the
// invoice-recording payment implementation. close releases the client.
func newOutbound(cfg config.Config, st *store.Store, sender mail.Sender, log *slog.Logger) (httpapi.Outbound, func(), error) {
	gw, err := gatewayclient.New(cfg.GatewayGRPCAddr, cfg.GatewayRPCTimeout, rpcauth.DialOptions(cfg.InternalGRPCToken)...)
	if err != nil {
		return httpapi.Outbound{}, nil, err
	}
	closeFn := func() {
		if err := gw.Close(); err != nil {
			log.Warn("close gateway client", "err", err)
		}
	}
	return httpapi.Outbound{Gateway: gw, Mailer: sender, Payments: billing.NewInvoicer(st)}, closeFn, nil
}
