package app

import (
	"log/slog"
	"slices"

	"google.golang.org/grpc"

	"trueportai/services/internal/telemetry"
	"trueportai/services/platform-backend/internal/config"
	"trueportai/services/platform-backend/internal/gatewayclient"
	"trueportai/services/platform-backend/internal/mail"
)

// outbound are the team, billing and admin routes' dependencies beyond the
// database: a lazily connecting client of the gateway's gRPC
// (GATEWAY_GRPC_ADDR; a gateway that is down is not a start-up error) for key
// counts and usage, and the invite mailer (SMTP when SMTP_ADDR is set, else
// the log; the platform's one sender, newMailer).
type outbound struct {
	gateway *gatewayclient.Client
	mailer  mail.Sender
}

// newOutbound builds them (dial: the transport and the service token of
// the gateway connection); close releases the gateway client.
func newOutbound(cfg config.Config, sender mail.Sender, log *slog.Logger, tel *telemetry.Telemetry, dial ...grpc.DialOption) (outbound, func(), error) {
	gw, err := gatewayclient.New(cfg.GatewayGRPCAddr, cfg.GatewayRPCTimeout, slices.Concat(dial, tel.GRPCDialOptions())...)
	if err != nil {
		return outbound{}, nil, err
	}
	closeFn := func() {
		if err := gw.Close(); err != nil {
			log.Warn("close gateway client", "err", err)
		}
	}
	return outbound{gateway: gw, mailer: sender}, closeFn, nil
}
