// Package svctls is the transport security of the gRPC calls between the
// services: mutual TLS from a CA, a certificate and its key in PEM files
// (GRPC_TLS_CA_FILE, GRPC_TLS_CERT_FILE, GRPC_TLS_KEY_FILE). The server
// requires a client certificate chaining to the CA; the client checks the
// server's chain and name. Certificate and key are read again when their
// files change (a renewal needs no restart); the CA is read at start.
// GenerateDev writes a throwaway CA and certificates for local runs.
package svctls

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"os"
	"sync"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/credentials/insecure"
)

// Files are the PEM files of one service.
type Files struct{ CA, Cert, Key string }

// Configured reports whether any file is set.
func (f Files) Configured() bool { return f.CA != "" || f.Cert != "" || f.Key != "" }

// Validate reports missing files: all three or none; required demands them.
func (f Files) Validate(required bool) error {
	if !f.Configured() {
		if required {
			return errors.New("GRPC_TLS_CA_FILE, GRPC_TLS_CERT_FILE and GRPC_TLS_KEY_FILE are required when APP_ENV=prod (mutual TLS between the services)")
		}
		return nil
	}
	if f.CA == "" || f.Cert == "" || f.Key == "" {
		return errors.New("GRPC_TLS_CA_FILE, GRPC_TLS_CERT_FILE and GRPC_TLS_KEY_FILE go together: set all three")
	}
	return nil
}

// TLS is a loaded configuration; the zero value (nil) means plaintext.
type TLS struct {
	roots *x509.CertPool
	files Files

	mu      sync.Mutex
	cert    *tls.Certificate
	modTime time.Time
	checked time.Time
}

// Load reads f; it returns nil, nil when no file is set (plaintext).
func Load(f Files) (*TLS, error) {
	if err := f.Validate(false); err != nil {
		return nil, err
	}
	if !f.Configured() {
		return nil, nil
	}
	ca, err := os.ReadFile(f.CA)
	if err != nil {
		return nil, fmt.Errorf("GRPC_TLS_CA_FILE: %w", err)
	}
	roots := x509.NewCertPool()
	if !roots.AppendCertsFromPEM(ca) {
		return nil, fmt.Errorf("GRPC_TLS_CA_FILE %s: no PEM certificate", f.CA)
	}
	t := &TLS{roots: roots, files: f}
	if _, err := t.certificate(); err != nil {
		return nil, err
	}
	return t, nil
}

// reloadEvery bounds how often the files' modification time is looked at.
const reloadEvery = 30 * time.Second

// certificate returns the certificate, read again when its file changed.
func (t *TLS) certificate() (*tls.Certificate, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	now := time.Now()
	if t.cert != nil && now.Sub(t.checked) < reloadEvery {
		return t.cert, nil
	}
	t.checked = now
	var mod time.Time
	for _, f := range []string{t.files.Cert, t.files.Key} {
		if st, err := os.Stat(f); err == nil && st.ModTime().After(mod) {
			mod = st.ModTime()
		}
	}
	if t.cert != nil && !mod.After(t.modTime) {
		return t.cert, nil
	}
	c, err := tls.LoadX509KeyPair(t.files.Cert, t.files.Key)
	if err != nil {
		if t.cert != nil {
			return t.cert, nil // a renewal half written: keep the last good pair
		}
		return nil, fmt.Errorf("GRPC_TLS_CERT_FILE / GRPC_TLS_KEY_FILE: %w", err)
	}
	t.cert, t.modTime = &c, mod
	return t.cert, nil
}

// ServerConfig requires and verifies a client certificate from the CA.
func (t *TLS) ServerConfig() *tls.Config {
	return &tls.Config{
		MinVersion: tls.VersionTLS13,
		ClientAuth: tls.RequireAndVerifyClientCert,
		ClientCAs:  t.roots,
		GetCertificate: func(*tls.ClientHelloInfo) (*tls.Certificate, error) {
			return t.certificate()
		},
	}
}

// ClientConfig verifies the server's certificate (chain to the CA, name
// of the dialled host) and presents this service's certificate.
func (t *TLS) ClientConfig() *tls.Config {
	return &tls.Config{
		MinVersion: tls.VersionTLS13,
		RootCAs:    t.roots,
		GetClientCertificate: func(*tls.CertificateRequestInfo) (*tls.Certificate, error) {
			return t.certificate()
		},
	}
}

// ServerOption is the gRPC server's transport: mutual TLS, or nothing
// (plaintext) when t is nil.
func (t *TLS) ServerOption() []grpc.ServerOption {
	if t == nil {
		return nil
	}
	return []grpc.ServerOption{grpc.Creds(credentials.NewTLS(t.ServerConfig()))}
}

// DialOption is a gRPC client's transport: mutual TLS, or plaintext when
// t is nil.
func (t *TLS) DialOption() grpc.DialOption {
	if t == nil {
		return grpc.WithTransportCredentials(insecure.NewCredentials())
	}
	return grpc.WithTransportCredentials(credentials.NewTLS(t.ClientConfig()))
}
