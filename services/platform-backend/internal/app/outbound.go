package app

import (
	"log/slog"

	"trueportai/services/internal/rpcauth"
	"trueportai/services/platform-backend/internal/config"
	"trueportai/services/platform-backend/internal/gatewayclient"
	"trueportai/services/platform-backend/internal/mail"
)

// outbound are the team, billing and admin routes' dependencies beyond the
// database: a lazily connecting client of the gateway's gRPC
// (GATEWAY_GRPC_ADDR; a gateway that is down is not a start-up error) for key
// counts and usage, and the invite mailer (SMTP when SMTP_ADDR is set, else
// the log).
type outbound struct {
	gateway *gatewayclient.Client
	mailer  mail.Sender
}

// newOutbound builds them; close releases the gateway client.
func newOutbound(cfg config.Config, log *slog.Logger) (outbound, func(), error) {
	gw, err := gatewayclient.New(cfg.GatewayGRPCAddr, cfg.GatewayRPCTimeout, rpcauth.DialOptions(cfg.InternalGRPCToken)...)
	if err != nil {
		return outbound{}, nil, err
	}
	var sender mail.Sender = mail.NewLogSender(log)
	if cfg.SMTPAddr != "" {
		s, err := mail.NewSMTPSender(mail.SMTPConfig{Addr: cfg.SMTPAddr, From: cfg.SMTPFrom, Username: cfg.SMTPUsername, Password: cfg.SMTPPassword})
		if err != nil {
			_ = gw.Close()
			return outbound{}, nil, err
		}
		sender = s
	}
	closeFn := func() {
		if err := gw.Close(); err != nil {
			log.Warn("close gateway client", "err", err)
		}
	}
	return outbound{gateway: gw, mailer: sender}, closeFn, nil
}
