package mail

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"errors"
	"io"
	"log/slog"
	"math/big"
	"mime"
	"mime/quotedprintable"
	"net"
	"net/mail"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/emersion/go-sasl"
	"github.com/emersion/go-smtp"
)

// received is one message accepted by the test server.
type received struct {
	From, To string
	Auth     string // username that authenticated, if any
	TLS      bool
	Data     []byte
}

type backend struct {
	mu   sync.Mutex
	msgs []received
}

func (b *backend) NewSession(c *smtp.Conn) (smtp.Session, error) {
	_, isTLS := c.TLSConnectionState()
	return &session{b: b, tls: isTLS}, nil
}

type session struct {
	b    *backend
	tls  bool
	user string
	cur  received
}

func (s *session) AuthMechanisms() []string { return []string{sasl.Plain} }

func (s *session) Auth(string) (sasl.Server, error) {
	return sasl.NewPlainServer(func(_, user, pass string) error {
		if user != "mailer" || pass != "s3cret" {
			return errors.New("bad credentials")
		}
		s.user = user
		return nil
	}), nil
}

func (s *session) Mail(from string, _ *smtp.MailOptions) error { s.cur.From = from; return nil }

func (s *session) Rcpt(to string, _ *smtp.RcptOptions) error {
	if strings.HasPrefix(to, "reject") {
		return &smtp.SMTPError{Code: 550, Message: "no such mailbox"}
	}
	s.cur.To = to
	return nil
}

func (s *session) Data(r io.Reader) error {
	b, err := io.ReadAll(r)
	if err != nil {
		return err
	}
	s.cur.Data, s.cur.Auth = b, s.user
	// Whether TLS is up now (STARTTLS happens after the session began).
	s.cur.TLS = s.tls
	s.b.mu.Lock()
	s.b.msgs = append(s.b.msgs, s.cur)
	s.b.mu.Unlock()
	return nil
}

func (s *session) Reset()        { s.cur = received{} }
func (s *session) Logout() error { return nil }

func (b *backend) all() []received {
	b.mu.Lock()
	defer b.mu.Unlock()
	return append([]received(nil), b.msgs...)
}

// startServer runs a go-smtp server on 127.0.0.1; with tlsCfg it offers
// STARTTLS.
func startServer(t *testing.T, tlsCfg *tls.Config) (*backend, string) {
	t.Helper()
	be := &backend{}
	srv := smtp.NewServer(be)
	srv.Domain = "localhost"
	srv.TLSConfig = tlsCfg
	srv.AllowInsecureAuth = tlsCfg == nil
	srv.ReadTimeout, srv.WriteTimeout = 10*time.Second, 10*time.Second
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go func() { _ = srv.Serve(l) }()
	t.Cleanup(func() { _ = srv.Close() })
	return be, l.Addr().String()
}

// selfSigned returns a server config for 127.0.0.1 and a client config
// trusting it.
func selfSigned(t *testing.T) (server, client *tls.Config) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "test smtp"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IPAddresses: []net.IP{net.ParseIP("127.0.0.1")}, KeyUsage: x509.KeyUsageDigitalSignature,
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}, BasicConstraintsValid: true, IsCA: true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	pool.AddCert(cert)
	return &tls.Config{Certificates: []tls.Certificate{{Certificate: [][]byte{der}, PrivateKey: key}}},
		&tls.Config{RootCAs: pool, ServerName: "127.0.0.1", MinVersion: tls.VersionTLS12}
}

func parse(t *testing.T, raw []byte) (*mail.Message, string) {
	t.Helper()
	msg, err := mail.ReadMessage(bytes.NewReader(raw))
	if err != nil {
		t.Fatalf("not an RFC 5322 message: %v\n%s", err, raw)
	}
	body, err := io.ReadAll(quotedprintable.NewReader(msg.Body))
	if err != nil {
		t.Fatal(err)
	}
	return msg, string(body)
}

func TestSMTPStartTLSAndAuth(t *testing.T) {
	t.Parallel()
	srvTLS, cliTLS := selfSigned(t)
	be, addr := startServer(t, srvTLS)
	s, err := NewSMTPSender(SMTPConfig{Addr: addr, From: "TruePortAI <no-reply@trueportai.test>", Username: "mailer", Password: "s3cret", TLS: cliTLS})
	if err != nil {
		t.Fatal(err)
	}
	long := "https://app.example.com/reset-password?token=" + strings.Repeat("A_-z", 20)
	text := "Your code is 123456.\nOpen " + long + "\n.\nA line that is only a dot above must survive.\n"
	if err := s.Send(context.Background(), Message{To: "user@example.com", Subject: "Your code — héllo", Text: text}); err != nil {
		t.Fatalf("Send: %v", err)
	}
	got := be.all()
	if len(got) != 1 {
		t.Fatalf("server got %d messages", len(got))
	}
	m := got[0]
	if !m.TLS {
		t.Error("message was not sent over STARTTLS")
	}
	if m.From != "no-reply@trueportai.test" || m.To != "user@example.com" || m.Auth != "mailer" {
		t.Errorf("envelope = from %q to %q auth %q", m.From, m.To, m.Auth)
	}
	msg, body := parse(t, m.Data)
	if subj, _ := new(mime.WordDecoder).DecodeHeader(msg.Header.Get("Subject")); subj != "Your code — héllo" {
		t.Errorf("Subject = %q", subj)
	}
	if from, err := msg.Header.AddressList("From"); err != nil || from[0].Address != "no-reply@trueportai.test" || from[0].Name != "TruePortAI" {
		t.Errorf("From = %v %v", from, err)
	}
	if msg.Header.Get("Message-ID") == "" || msg.Header.Get("Date") == "" {
		t.Errorf("Message-ID/Date missing: %v", msg.Header)
	}
	if want := strings.ReplaceAll(text, "\n", "\r\n"); body != want {
		t.Errorf("body = %q, want %q", body, want)
	}
}

func TestSMTPPlainAuthOnLocalhost(t *testing.T) {
	t.Parallel()
	// A server without STARTTLS: net/smtp sends PLAIN credentials in clear
	// only to localhost (127.0.0.1 counts), so this one is allowed...
	_, addr := startServer(t, nil)
	s, err := NewSMTPSender(SMTPConfig{Addr: addr, From: "a@b.test", Username: "mailer", Password: "s3cret"})
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Send(context.Background(), Message{To: "u@example.com", Subject: "s", Text: "t"}); err != nil {
		t.Fatalf("auth to localhost without TLS: %v", err)
	}
	// ...and a wrong password is an error, not a silent success.
	s2, _ := NewSMTPSender(SMTPConfig{Addr: addr, From: "a@b.test", Username: "mailer", Password: "nope"})
	if err := s2.Send(context.Background(), Message{To: "u@example.com", Subject: "s", Text: "t"}); err == nil {
		t.Fatal("wrong SMTP password accepted")
	}
}

func TestSMTPErrors(t *testing.T) {
	t.Parallel()
	_, addr := startServer(t, nil)
	s, err := NewSMTPSender(SMTPConfig{Addr: addr, From: "a@b.test", Timeout: 5 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Send(context.Background(), Message{To: "reject@example.com", Subject: "s", Text: "t"}); err == nil {
		t.Error("rejected recipient reported as sent")
	}
	for _, m := range []Message{
		{To: "u@example.com", Subject: "a\r\nBcc: victim@example.com", Text: "t"},
		{To: "u@example.com\r\nBcc: victim@example.com", Subject: "s", Text: "t"},
		{To: "Name <u@example.com>", Subject: "s", Text: "t"},
	} {
		if err := s.Send(context.Background(), m); err == nil {
			t.Errorf("header injection not refused: %+v", m)
		}
	}
	// Nothing listens: a dial error, quickly.
	l, _ := net.Listen("tcp", "127.0.0.1:0")
	dead := l.Addr().String()
	l.Close()
	s3, _ := NewSMTPSender(SMTPConfig{Addr: dead, From: "a@b.test"})
	if err := s3.Send(context.Background(), Message{To: "u@example.com", Subject: "s", Text: "t"}); err == nil {
		t.Error("send to a closed port succeeded")
	}
	for _, cfg := range []SMTPConfig{{Addr: "nohost", From: "a@b.test"}, {Addr: "h:25", From: "not an address"}} {
		if _, err := NewSMTPSender(cfg); err == nil {
			t.Errorf("NewSMTPSender(%+v) accepted", cfg)
		}
	}
}

func TestLogSender(t *testing.T) {
	t.Parallel()
	var buf bytes.Buffer
	s := NewLogSender(slog.New(slog.NewJSONHandler(&buf, nil)))
	if err := s.Send(context.Background(), Message{To: "u@example.com", Subject: "Code", Text: "Your code is 654321."}); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{`"to":"u@example.com"`, `"subject":"Code"`, `Your code is 654321.`} {
		if !strings.Contains(buf.String(), want) {
			t.Errorf("log %q lacks %q", buf.String(), want)
		}
	}
}

// TestDropSender: production without a relay never writes a mail's text
// (codes, tokens) to the log, and reports the mail as not sent.
func TestDropSender(t *testing.T) {
	t.Parallel()
	var buf bytes.Buffer
	s := NewDropSender(slog.New(slog.NewJSONHandler(&buf, nil)))
	err := s.Send(context.Background(), Message{To: "u@example.com", Subject: "Code", Text: "Your code is 654321, token tok_SECRET."})
	if !errors.Is(err, ErrNoRelay) {
		t.Errorf("Send = %v, want ErrNoRelay", err)
	}
	for _, secret := range []string{"654321", "tok_SECRET"} {
		if strings.Contains(buf.String(), secret) {
			t.Errorf("the mail text reached the log: %q", buf.String())
		}
	}
	for _, want := range []string{"mail dropped", `"to":"u@example.com"`, `"subject":"Code"`} {
		if !strings.Contains(buf.String(), want) {
			t.Errorf("log %q lacks %q", buf.String(), want)
		}
	}
	if err := s.Send(context.Background(), Message{To: "u@example.com", Subject: "a\r\nBcc: x@y"}); err == nil || errors.Is(err, ErrNoRelay) {
		t.Errorf("a header injection was not refused as such: %v", err)
	}
}
