package svcauth

import (
	"context"
	"crypto"
	"errors"
	"fmt"
	"os"

	"github.com/nats-io/nats.go"

	"trueportai/services/internal/events"
)

// DevKeyStore keeps dev-mode key material in the service's own database,
// generated with gen on first use.
type DevKeyStore func(ctx context.Context, name string, gen func() (string, error)) (string, error)

// devKeyName is the dev_keys row of the service signing key.
const devKeyName = "service_signing_key"

// LoadKeyRing builds service's key ring from keyFile (PEM, Ed25519 or
// P-256) and previousFiles (keys still accepted after a rotation), or,
// when keyFile is empty, from a key generated once and kept by dev (nil
// outside dev mode: then keyFile is required).
func LoadKeyRing(ctx context.Context, service, keyFile string, previousFiles []string, dev DevKeyStore) (*KeyRing, error) {
	var signer crypto.Signer
	switch {
	case keyFile != "":
		b, err := os.ReadFile(keyFile)
		if err != nil {
			return nil, fmt.Errorf("SERVICE_KEY_FILE: %w", err)
		}
		if signer, err = ParsePrivateKeyPEM(b); err != nil {
			return nil, fmt.Errorf("SERVICE_KEY_FILE: %w", err)
		}
	case dev != nil:
		text, err := dev(ctx, devKeyName, func() (string, error) {
			b, err := GenerateKeyPEM()
			return string(b), err
		})
		if err != nil {
			return nil, fmt.Errorf("dev service key: %w", err)
		}
		if signer, err = ParsePrivateKeyPEM([]byte(text)); err != nil {
			return nil, fmt.Errorf("dev service key: %w", err)
		}
	default:
		return nil, errors.New("SERVICE_KEY_FILE is required")
	}
	var previous []crypto.PublicKey
	for _, f := range previousFiles {
		b, err := os.ReadFile(f)
		if err != nil {
			return nil, fmt.Errorf("SERVICE_PREVIOUS_KEY_FILES: %w", err)
		}
		s, err := ParsePrivateKeyPEM(b)
		if err != nil {
			return nil, fmt.Errorf("SERVICE_PREVIOUS_KEY_FILES %s: %w", f, err)
		}
		previous = append(previous, s.Public())
	}
	return NewKeyRing(service, signer, previous...)
}

// Revoker records revoked instances and keys in the service's database.
type Revoker interface {
	Revoke(ctx context.Context, kind, value string) error
}

// Revocation kinds.
const (
	KindInstance = "instance"
	KindKey      = "key"
)

// RevokeCommand runs "revoke-instance ID" or "revoke-key KID" for
// service: records it (its introspection refuses the tokens from now on)
// and announces it on NATS (every validator refuses them within moments).
// It reports whether args named such a command.
func RevokeCommand(ctx context.Context, service string, args []string, st Revoker, natsURL string, subj events.Subjects) (bool, error) {
	if len(args) == 0 || args[0] != "revoke-instance" && args[0] != "revoke-key" {
		return false, nil
	}
	if len(args) != 2 || args[1] == "" {
		return true, fmt.Errorf("usage: %s revoke-instance INSTANCE_ID | revoke-key KEY_ID", service)
	}
	kind, ev := KindInstance, events.ServiceRevokedEvent{Issuer: service}
	if args[0] == "revoke-key" {
		kind, ev.KeyID = KindKey, args[1]
	} else {
		ev.Instance = args[1]
	}
	if err := st.Revoke(ctx, kind, args[1]); err != nil {
		return true, err
	}
	nc, err := nats.Connect(natsURL, nats.Name(service+"-revoke"))
	if err != nil {
		return true, fmt.Errorf("revoked in the database (introspection refuses it), but NATS is unreachable, so validators drop their cached answers only as they expire (≤ 60 s): %w", err)
	}
	defer nc.Close()
	if err := PublishRevocation(nc, subj, ev); err != nil {
		return true, fmt.Errorf("revoked in the database, but the event was not sent (validators catch up within 60 s): %w", err)
	}
	return true, nil
}
