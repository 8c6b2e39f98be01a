// Package mail sends the platform's plain-text emails (sign-in codes,
// password resets, address verification, invites): over SMTP when SMTP_ADDR
// is set; otherwise, in development, to the log, and in production nowhere
// (DropSender: the text, which carries codes and tokens, is never logged).
// Senders are synchronous; callers that must not wait (HTTP
// handlers) send from a background worker.
package mail

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/mail"
	"strings"
)

// Message is one plain-text email to one recipient.
type Message struct {
	To      string
	Subject string
	Text    string
}

// Sender delivers messages.
type Sender interface {
	Send(ctx context.Context, m Message) error
}

// validate refuses what could inject headers or is not one bare address.
func (m Message) validate() error {
	a, err := mail.ParseAddress(m.To)
	if err != nil || a.Address != m.To {
		return fmt.Errorf("mail: recipient %q is not a bare address", m.To)
	}
	if strings.ContainsAny(m.Subject, "\r\n") {
		return errors.New("mail: subject contains a line break")
	}
	return nil
}

// LogSender writes every message, whole, to the log (the mailer used when
// SMTP_ADDR is unset: codes and links are read from there in development).
type LogSender struct{ log *slog.Logger }

// NewLogSender returns a LogSender on log.
func NewLogSender(log *slog.Logger) *LogSender { return &LogSender{log: log} }

// Send logs m.
func (s *LogSender) Send(ctx context.Context, m Message) error {
	if err := m.validate(); err != nil {
		return err
	}
	s.log.InfoContext(ctx, "mail", "sender", "log", "to", m.To, "subject", m.Subject, "text", m.Text)
	return nil
}

// ErrNoRelay is DropSender's answer: the mail was not sent.
var ErrNoRelay = errors.New("mail: not sent, no mail relay is configured (SMTP_ADDR is unset)")

// DropSender is the mailer of APP_ENV=prod without SMTP_ADDR. It sends
// nothing and logs only that a mail was dropped, with its recipient and
// subject: never the text, which carries sign-in codes and reset,
// verification and invite tokens (logs are read by more people than
// mailboxes). Send answers ErrNoRelay, so callers report the mail as not
// sent (an invite answers 503 mail_unavailable).
type DropSender struct{ log *slog.Logger }

// NewDropSender returns a DropSender on log.
func NewDropSender(log *slog.Logger) *DropSender { return &DropSender{log: log} }

// Send drops m.
func (s *DropSender) Send(ctx context.Context, m Message) error {
	if err := m.validate(); err != nil {
		return err
	}
	s.log.WarnContext(ctx, "mail dropped: no mail relay (SMTP_ADDR is unset)", "to", m.To, "subject", m.Subject)
	return ErrNoRelay
}
