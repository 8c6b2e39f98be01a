// Package app wires the platform-backend together and runs it until its
// context ends.
package app

import (
	"context"
	"crypto"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"slices"
	"strings"
	"time"

	"golang.org/x/sync/errgroup"
	"google.golang.org/grpc"
	"google.golang.org/grpc/health"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"

	platformv1 "trueportai/proto/gen/trueport/platform/v1"
	svcauthv1 "trueportai/proto/gen/trueport/svcauth/v1"
	"trueportai/services/internal/events"
	"trueportai/services/internal/grpcserve"
	"trueportai/services/internal/httpserver"
	"trueportai/services/internal/listenfd"
	"trueportai/services/internal/logging"
	"trueportai/services/internal/metrics"
	"trueportai/services/internal/natsconn"
	"trueportai/services/internal/pgdb"
	"trueportai/services/internal/ratelimit"
	"trueportai/services/internal/svcauth"
	"trueportai/services/internal/telemetry"
	"trueportai/services/platform-backend/internal/billing"
	"trueportai/services/platform-backend/internal/config"
	"trueportai/services/platform-backend/internal/configs"
	"trueportai/services/platform-backend/internal/console"
	"trueportai/services/platform-backend/internal/gatewayrelay"
	"trueportai/services/platform-backend/internal/grpcapi"
	"trueportai/services/platform-backend/internal/httpapi"
	"trueportai/services/platform-backend/internal/identity"
	"trueportai/services/platform-backend/internal/mail"
	"trueportai/services/platform-backend/internal/migrations"
	"trueportai/services/platform-backend/internal/secretbox"
	"trueportai/services/platform-backend/internal/store"
	"trueportai/services/platform-backend/internal/team"
	"trueportai/services/platform-backend/internal/token"
	"trueportai/services/platform-backend/internal/worker"
)

// Listeners are sockets a caller (tests) has already bound; a nil one is
// bound from PLATFORM_HTTP_ADDR / PLATFORM_GRPC_ADDR /
// PLATFORM_INTERNAL_ADDR.
type Listeners struct {
	HTTP net.Listener
	GRPC net.Listener
	// Internal serves /metrics and pprof, never the public.
	Internal net.Listener
}

// Run starts the service (or runs a CLI subcommand given in args:
// "grant-admin EMAIL"; "migrate", which applies the migrations whatever
// MIGRATE_ON_START says; "revoke-instance ID" / "revoke-key KID", which
// revoke an instance or a key of the platform's service identity; or
// "dev-certs DIR", which writes a throwaway CA and certificates for
// both services' mutual TLS in dev) on the listeners its parent process handed down
// (LISTEN_FDS), or on PLATFORM_HTTP_ADDR / PLATFORM_GRPC_ADDR when there
// are none.
func Run(ctx context.Context, args []string, getenv func(string) string, stderr io.Writer) error {
	ls, err := inheritedListeners(getenv)
	if err != nil {
		return err
	}
	return RunWithListeners(ctx, args, getenv, stderr, ls)
}

// RunWithListeners is Run serving on the given listeners (closed on return).
func RunWithListeners(ctx context.Context, args []string, getenv func(string) string, stderr io.Writer, ls Listeners) error {
	return RunWithOptions(ctx, args, getenv, stderr, Options{Listeners: ls})
}

// Options are what a caller (tests) hands Run besides the environment: the
// listeners it has bound, and the clock of the rate limits (nil: time.Now),
// which tests counting requests inside a window hold still.
type Options struct {
	Listeners
	LimitClock func() time.Time
}

// RunWithOptions is Run with o.
func RunWithOptions(ctx context.Context, args []string, getenv func(string) string, stderr io.Writer, o Options) error {
	ls := o.Listeners
	for _, l := range []net.Listener{ls.HTTP, ls.GRPC, ls.Internal} {
		if l != nil {
			defer l.Close()
		}
	}
	if len(args) > 0 && args[0] == "dev-certs" {
		return devCerts(args, stderr)
	}
	cfg, err := config.Load(getenv)
	if err != nil {
		return fmt.Errorf("config: %w", err)
	}
	log := logging.New(stderr, cfg.LogLevel, cfg.LogFormat)
	// Tracing (OTEL_*; off by default), flushed after everything stopped.
	tel, err := telemetry.FromEnv(ctx, getenv, "platform-backend")
	if err != nil {
		return fmt.Errorf("tracing: %w", err)
	}
	defer tel.Close(5*time.Second, log)
	tel.Announce(log)

	pool, err := pgdb.Open(ctx, cfg.DatabaseURL, log)
	if err != nil {
		return err
	}
	defer pool.Close()
	if cfg.MigrateOnStart || len(args) > 0 && args[0] == "migrate" {
		if err := pgdb.Migrate(ctx, pool, migrations.FS, log); err != nil {
			return err
		}
	}
	st := store.New(pool)

	if len(args) > 0 {
		return runCommand(ctx, cfg, st, args, stderr)
	}

	// PLATFORM_ADMIN_EMAILS: only users who proved their address (the rest
	// become admins when they do, in identity).
	if n, err := st.GrantPlatformAdmin(ctx, cfg.PlatformAdminEmails, true); err != nil {
		return fmt.Errorf("grant platform admins: %w", err)
	} else if n > 0 {
		log.Info("granted platform admin", "users", n)
	}

	signer, err := loadSigner(ctx, cfg, st)
	if err != nil {
		return err
	}
	previous, err := loadPreviousJWTKeys(cfg.PreviousJWTKeyFiles)
	if err != nil {
		return err
	}
	tokens, err := token.NewIssuer(signer, previous, cfg.JWTIssuer, cfg.JWTAudience, time.Now)
	if err != nil {
		return err
	}
	box, err := loadBox(ctx, cfg, st)
	if err != nil {
		return err
	}
	// Service identity (the tokens of the calls to the gateway) and the
	// mutual TLS of the gRPC connections between the services.
	id, err := svcauth.NewIdentity(ctx, svcauth.Options{Service: svcauth.Platform, Peer: svcauth.Gateway,
		Config: cfg.ServiceIdentity, DevKeys: st.DevKey, Revocations: revoker{st}, Log: log})
	if err != nil {
		return err
	}

	nc, err := natsconn.Connect(cfg.NATSURL, "platform-backend", log)
	if err != nil {
		return err
	}
	defer nc.Close()
	pub := events.NewPublisher(nc, events.Subjects{Prefix: cfg.NATSPrefix}, log)

	reg := metrics.New("platform-backend")
	e := httpserver.New(log, reg.Middleware(), tel.Middleware())
	// Identity: mail goes out from an owned worker pool, stopped after the
	// HTTP server (so no request can queue a job that is then dropped).
	jobs := worker.New(log, worker.Options{Drain: cfg.ShutdownGrace})
	mailer, err := newMailer(cfg, log)
	if err != nil {
		return err
	}
	ident, err := newIdentity(ctx, cfg, st, jobs, pub, mailer, log)
	if err != nil {
		return err
	}
	jobsCtx, stopJobs := context.WithCancel(context.WithoutCancel(ctx))
	jobsDone := make(chan struct{})
	go func() { defer close(jobsDone); jobs.Run(jobsCtx) }()
	defer func() { stopJobs(); <-jobsDone }()

	// Team, billing, admin: the gateway's gRPC and invite mail (outbound.go).
	out, closeOut, err := newOutbound(cfg, mailer, log, tel, id.DialOptions()...)
	if err != nil {
		return err
	}
	defer closeOut()
	// The gateway's service tokens are checked through its introspection;
	// revocation events refuse an instance or key at once.
	verifier := id.Verifier(out.gateway.Conn(), log)
	revSub, err := svcauth.SubscribeRevocations(nc, events.Subjects{Prefix: cfg.NATSPrefix}, verifier, log)
	if err != nil {
		return err
	}
	defer func() { _ = revSub.Unsubscribe() }()

	// Rate limits: in memory, or shared by the replicas through Redis
	// (REDIS_URL; falls back to limit ÷ replicas while Redis is down).
	var limiter httpapi.RateLimiter = ratelimit.New()
	if cfg.Limits.Enabled() {
		shared, _, rc, err := cfg.Limits.Build("platform-backend", cfg.NATSPrefix, log)
		if err != nil {
			return err
		}
		defer rc.Close()
		limCtx, stopLim := context.WithCancel(context.WithoutCancel(ctx))
		limDone := make(chan struct{})
		go func() { defer close(limDone); shared.Run(limCtx) }()
		defer func() { stopLim(); <-limDone }()
		limiter = shared
	}

	// The domain services own the rules; each gets the store view it declares.
	api, err := httpapi.New(log, cfg, httpapi.Deps{
		Store:     st,
		Tokens:    tokens,
		Publisher: pub,
		Identity:  ident,
		Limiter:   limiter,
		Team:      team.NewService(st.TeamStore(), time.Now),
		Billing:   billing.NewService(log, st.BillingStore(), out.gateway, billing.NewInvoicer(st), time.Now),
		Configs:   configs.NewService(log, st.ConfigStore(), box, cfg.Egress.CheckURL),
		Gateway:   out.gateway,
		Mailer:    out.mailer,

		LimitClock: o.LimitClock,
	})
	if err != nil {
		return err
	}
	// Readiness of the pods behind a Service (/health/ready/local) turns
	// false when shutdown begins and never looks at Postgres or NATS.
	var drain httpserver.Drain
	api.Routes(e, httpserver.NewProbes(log, &drain, []httpserver.Check{httpserver.PostgresCheck(st), httpserver.NATSCheck(nc)}))
	// The web console (/console/) and, without an edge, its way to the
	// gateway's management API on this origin (docs/decisions.md, "Console").
	con, err := console.New(log, console.Options{GatewayURL: cfg.GatewayPublicURL})
	if err != nil {
		return err
	}
	con.Routes(e)
	if cfg.ConsoleGatewayURL != nil {
		gatewayrelay.New(cfg.ConsoleGatewayURL, log).Routes(e)
	}
	lim := httpserver.DefaultLimits
	lim.ReadHeaderTimeout, lim.BodyReadTimeout = cfg.ReadHeaderTimeout, cfg.BodyReadTimeout
	httpLis, err := listenfd.Or(ls.HTTP, cfg.HTTPAddr, "http")
	if err != nil {
		return err
	}
	defer httpLis.Close()
	httpSrv := httpserver.NewServer(e, lim)
	httpSrv.Addr = httpLis.Addr().String()
	// Every answer here is short: a client that does not read it is cut.
	httpSrv.WriteTimeout = 30 * time.Second
	internalLis, err := listenfd.Or(ls.Internal, cfg.InternalAddr, "internal")
	if err != nil {
		return err
	}
	defer internalLis.Close()
	internalSrv := httpserver.NewServer(httpserver.InternalHandler(reg.Handler()), lim)
	internalSrv.Addr = internalLis.Addr().String()

	grpcSrv := grpc.NewServer(slices.Concat(grpcserve.ServerOptions(cfg.ReadHeaderTimeout), id.ServerOptions(verifier, grpcACL(), log), tel.GRPCServerOptions())...)
	gs := grpcapi.New(log, st, tokens, box)
	svcauthv1.RegisterServiceAuthServiceServer(grpcSrv, id.Introspection)
	platformv1.RegisterAuthServiceServer(grpcSrv, gs)
	platformv1.RegisterTenantServiceServer(grpcSrv, gs)
	platformv1.RegisterConfigServiceServer(grpcSrv, gs)
	hs := health.NewServer()
	healthpb.RegisterHealthServer(grpcSrv, hs)
	lis, err := listenfd.Or(ls.GRPC, cfg.GRPCAddr, "grpc")
	if err != nil {
		return err
	}

	log.Info("platform-backend starting", "http_addr", httpLis.Addr().String(), "grpc_addr", lis.Addr().String(),
		"internal_addr", internalLis.Addr().String(), "app_env", cfg.AppEnv,
		"instance", id.Minter.Instance(), "service_kid", id.Ring.KeyID(), "grpc_tls", id.TLS != nil)
	g, gctx := errgroup.WithContext(ctx)
	go func() { <-gctx.Done(); drain.Begin() }()
	g.Go(func() error { return httpserver.ServeListener(gctx, httpSrv, httpLis, cfg.ShutdownGrace, log) })
	g.Go(func() error { return grpcserve.Serve(gctx, grpcSrv, lis, hs, cfg.ShutdownGrace) })
	g.Go(func() error { return httpserver.ServeListener(gctx, internalSrv, internalLis, time.Second, log) })
	err = g.Wait()
	stopJobs()
	<-jobsDone
	_ = nc.Drain()
	log.Info("platform-backend stopped")
	if ctx.Err() != nil && err == nil {
		return nil
	}
	return err
}

func runCommand(ctx context.Context, cfg config.Config, st *store.Store, args []string, out io.Writer) error {
	if ok, err := svcauth.RevokeCommand(ctx, svcauth.Platform, args, revoker{st}, cfg.NATSURL, events.Subjects{Prefix: cfg.NATSPrefix}); ok {
		if err == nil {
			fmt.Fprintf(out, "%s %s revoked\n", strings.TrimPrefix(args[0], "revoke-"), args[1])
		}
		return err
	}
	switch args[0] {
	case "grant-admin":
		if len(args) != 2 {
			return errors.New("usage: platform-backend grant-admin EMAIL")
		}
		// The operator's explicit grant: whether or not the address is proven.
		n, err := st.GrantPlatformAdmin(ctx, []string{args[1]}, false)
		if err != nil {
			return err
		}
		if n == 0 {
			if _, err := st.UserByEmail(ctx, args[1]); errors.Is(err, store.ErrNotFound) {
				return fmt.Errorf("no user with email %s", args[1])
			}
		}
		fmt.Fprintf(out, "%s is a platform admin\n", args[1])
		return nil
	case "migrate":
		// Run applied them before calling us, whatever MIGRATE_ON_START says.
		fmt.Fprintln(out, "migrations applied")
		return nil
	default:
		return fmt.Errorf("unknown command %q (commands: grant-admin EMAIL, migrate, revoke-instance ID, revoke-key KID, dev-certs DIR)", args[0])
	}
}

func loadSigner(ctx context.Context, cfg config.Config, st *store.Store) (crypto.Signer, error) {
	if cfg.JWTSigningKeyFile != "" {
		b, err := os.ReadFile(cfg.JWTSigningKeyFile)
		if err != nil {
			return nil, fmt.Errorf("JWT_SIGNING_KEY_FILE: %w", err)
		}
		return token.ParsePrivateKeyPEM(b)
	}
	pemText, err := st.DevKey(ctx, "jwt_signing_key", func() (string, error) {
		b, err := token.GenerateKeyPEM()
		return string(b), err
	})
	if err != nil {
		return nil, fmt.Errorf("dev signing key: %w", err)
	}
	return token.ParsePrivateKeyPEM([]byte(pemText))
}

func loadBox(ctx context.Context, cfg config.Config, st *store.Store) (*secretbox.Box, error) {
	keyText := cfg.SecretsEncryptionKey
	if keyText == "" {
		var err error
		keyText, err = st.DevKey(ctx, "secrets_encryption_key", func() (string, error) {
			var k [32]byte
			if _, err := rand.Read(k[:]); err != nil {
				return "", err
			}
			return base64.StdEncoding.EncodeToString(k[:]), nil
		})
		if err != nil {
			return nil, fmt.Errorf("dev encryption key: %w", err)
		}
	}
	key, err := secretbox.ParseKey(keyText)
	if err != nil {
		return nil, fmt.Errorf("SECRETS_ENCRYPTION_KEY: %w", err)
	}
	keys := [][]byte{key}
	for i, old := range cfg.PreviousEncryptionKeys {
		k, err := secretbox.ParseKey(old)
		if err != nil {
			return nil, fmt.Errorf("SECRETS_ENCRYPTION_KEYS_PREVIOUS[%d]: %w", i, err)
		}
		keys = append(keys, k)
	}
	return secretbox.New(keys...)
}

// loadPreviousJWTKeys reads the public halves of retired signing keys, so
// tokens they signed stay valid until they expire (key rotation).
func loadPreviousJWTKeys(files []string) ([]crypto.PublicKey, error) {
	var out []crypto.PublicKey
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			return nil, fmt.Errorf("JWT_PREVIOUS_KEY_FILES: %w", err)
		}
		signer, err := token.ParsePrivateKeyPEM(b)
		if err != nil {
			return nil, fmt.Errorf("JWT_PREVIOUS_KEY_FILES %s: %w", f, err)
		}
		out = append(out, signer.Public())
	}
	return out, nil
}

// newMailer returns the platform's one mail sender (sign-in codes, reset
// links, address verification, invites): SMTP when SMTP_ADDR is set; else
// the log in dev, and in prod a sender that drops every mail without logging
// its text (codes and tokens never reach the logs), with a warning.
func newMailer(cfg config.Config, log *slog.Logger) (mail.Sender, error) {
	if cfg.SMTPAddr == "" {
		if !cfg.Dev() {
			log.Warn("SMTP_ADDR is unset: mails (sign-in codes, password resets, address verification, invites) are dropped, neither sent nor logged")
			return mail.NewDropSender(log), nil
		}
		return mail.NewLogSender(log), nil
	}
	s, err := mail.NewSMTPSender(mail.SMTPConfig{Addr: cfg.SMTPAddr, From: cfg.SMTPFrom, Username: cfg.SMTPUsername, Password: cfg.SMTPPassword})
	if err != nil {
		return nil, err
	}
	return s, nil
}

// newIdentity builds the OTP / password-reset service sending with sender,
// and the HMAC pepper for stored codes — derived from
// SECRETS_ENCRYPTION_KEY, or in dev generated once and kept in dev_keys.
func newIdentity(ctx context.Context, cfg config.Config, st *store.Store, jobs *worker.Pool, pub *events.Publisher, sender mail.Sender,
	log *slog.Logger) (*identity.Service, error) {
	var pepper []byte
	if cfg.SecretsEncryptionKey != "" {
		key, err := secretbox.ParseKey(cfg.SecretsEncryptionKey)
		if err != nil {
			return nil, fmt.Errorf("SECRETS_ENCRYPTION_KEY: %w", err)
		}
		h := hmac.New(sha256.New, key)
		h.Write([]byte("trueportai identity pepper v1"))
		pepper = h.Sum(nil)
	} else {
		text, err := st.DevKey(ctx, "identity_pepper", func() (string, error) {
			var k [32]byte
			if _, err := rand.Read(k[:]); err != nil {
				return "", err
			}
			return base64.StdEncoding.EncodeToString(k[:]), nil
		})
		if err != nil {
			return nil, fmt.Errorf("dev identity pepper: %w", err)
		}
		if pepper, err = base64.StdEncoding.DecodeString(text); err != nil {
			return nil, fmt.Errorf("dev identity pepper: %w", err)
		}
	}
	return identity.New(log, st, sender, jobs, pub, identity.Config{Pepper: pepper, PublicBaseURL: cfg.PublicBaseURL, AdminEmails: cfg.PlatformAdminEmails}, time.Now)
}
