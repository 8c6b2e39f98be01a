package svcauth

import (
	"context"
	"errors"
	"log/slog"
	"strings"

	"google.golang.org/grpc"

	svcauthv1 "trueportai/proto/gen/trueport/svcauth/v1"
	"trueportai/services/internal/svctls"
)

// Config is a service's identity settings, the same in both services.
type Config struct {
	// KeyFile signs this service's tokens (SERVICE_KEY_FILE);
	// PreviousKeyFiles are keys still accepted after a rotation
	// (SERVICE_PREVIOUS_KEY_FILES, a comma list).
	KeyFile          string
	PreviousKeyFiles []string
	// InstanceID is the sub of this process's tokens (SERVICE_INSTANCE_ID;
	// generated when unset: NewInstanceID).
	InstanceID string
	// TLS: mutual TLS between the services (GRPC_TLS_CA_FILE,
	// GRPC_TLS_CERT_FILE, GRPC_TLS_KEY_FILE).
	TLS svctls.Files
	// Dev lets the signing key be generated and kept in the service's
	// database when KeyFile is unset (APP_ENV=dev).
	Dev bool
}

// LoadConfig reads the identity settings through getenv. Outside dev the
// key file and the three TLS files are required; in dev all are optional,
// but the TLS files go together. peer names the service the key's calls go
// to, in the error.
func LoadConfig(getenv func(string) string, dev bool, peer string) (Config, error) {
	get := func(k string) string { return strings.TrimSpace(getenv(k)) }
	c := Config{
		KeyFile:    get("SERVICE_KEY_FILE"),
		InstanceID: get("SERVICE_INSTANCE_ID"),
		TLS:        svctls.Files{CA: get("GRPC_TLS_CA_FILE"), Cert: get("GRPC_TLS_CERT_FILE"), Key: get("GRPC_TLS_KEY_FILE")},
		Dev:        dev,
	}
	for _, f := range strings.Split(get("SERVICE_PREVIOUS_KEY_FILES"), ",") {
		if f = strings.TrimSpace(f); f != "" {
			c.PreviousKeyFiles = append(c.PreviousKeyFiles, f)
		}
	}
	var errs []error
	if err := c.TLS.Validate(!dev); err != nil {
		errs = append(errs, err)
	}
	if !dev && c.KeyFile == "" {
		errs = append(errs, errors.New("SERVICE_KEY_FILE is required when APP_ENV=prod (the key signing this service's calls to "+peer+")"))
	}
	return c, errors.Join(errs...)
}

// Options build one service's Identity.
type Options struct {
	// Service issues the tokens (Gateway or Platform); Peer is the service
	// its calls go to and whose calls it answers.
	Service, Peer string
	Config        Config
	// DevKeys keeps the generated signing key (used only with Config.Dev
	// and no key file).
	DevKeys DevKeyStore
	// Revocations lists the revoked instances and keys of Service's tokens
	// (its database), for its introspection.
	Revocations Revocations
	Log         *slog.Logger
}

// Identity is one service towards its peer: its key ring, the minter of
// its calls' tokens, the introspection of its tokens (ServiceAuthService),
// and the mutual TLS of the gRPC connections (nil: plaintext, dev only).
type Identity struct {
	Ring          *KeyRing
	Minter        *Minter
	Introspection *Introspection
	TLS           *svctls.TLS

	service, peer string
}

// NewIdentity loads the keys (files, or the dev key), names the instance
// and loads the TLS files.
func NewIdentity(ctx context.Context, o Options) (*Identity, error) {
	if o.Service == "" || o.Peer == "" || o.Log == nil {
		return nil, errors.New("svcauth: an identity needs its service, its peer and a logger")
	}
	var dev DevKeyStore
	if o.Config.Dev {
		dev = o.DevKeys
	}
	ring, err := LoadKeyRing(ctx, o.Service, o.Config.KeyFile, o.Config.PreviousKeyFiles, dev)
	if err != nil {
		return nil, err
	}
	minter, err := NewMinter(ring, NewInstanceID(o.Config.InstanceID), 0, nil)
	if err != nil {
		return nil, err
	}
	t, err := svctls.Load(o.Config.TLS)
	if err != nil {
		return nil, err
	}
	return &Identity{Ring: ring, Minter: minter, TLS: t, Introspection: NewIntrospection(ring, o.Revocations, o.Log, nil),
		service: o.Service, peer: o.Peer}, nil
}

// DialOptions are those of a connection to the peer: mutual TLS (when
// configured) and a service token for the peer on every call (never sent
// in plaintext when TLS is configured).
func (id *Identity) DialOptions() []grpc.DialOption {
	return []grpc.DialOption{id.TLS.DialOption(), id.Minter.DialOption(id.peer, id.TLS != nil)}
}

// Verifier checks the peer's tokens at the peer's introspection (conn, a
// connection to it) and this service's own locally (valid, but ServerOptions'
// ACL lets them reach no method of their own service).
func (id *Identity) Verifier(conn grpc.ClientConnInterface, log *slog.Logger) *Verifier {
	return NewVerifier(id.service, map[string]Introspector{
		id.peer:    svcauthv1.NewServiceAuthServiceClient(conn),
		id.service: id.Introspection.Local(),
	}, log, nil)
}

// ServerOptions are the gRPC server's mutual TLS (when configured) and the
// service-token check of every call (package-level ServerOptions).
func (id *Identity) ServerOptions(v *Verifier, acl ACL, log *slog.Logger) []grpc.ServerOption {
	return append(id.TLS.ServerOption(), ServerOptions(v, acl, log)...)
}
