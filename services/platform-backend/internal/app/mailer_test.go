package app

import (
	"bytes"
	"context"
	"log/slog"
	"strings"
	"testing"

	"trueportai/services/platform-backend/internal/config"
	"trueportai/services/platform-backend/internal/mail"
)

// TestNewMailer: the one sender both identity and invites use.
func TestNewMailer(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name     string
		cfg      config.Config
		wantType string
		wantWarn bool
		wantErr  string
	}{
		{"dev without SMTP_ADDR logs", config.Config{AppEnv: "dev"}, "log", false, ""},
		{"prod without SMTP_ADDR drops and warns", config.Config{AppEnv: "prod"}, "drop", true, ""},
		{"SMTP_ADDR set", config.Config{AppEnv: "prod", SMTPAddr: "mail.example.com:587", SMTPFrom: "TruePortAI <no-reply@example.com>"}, "smtp", false, ""},
		{"bad SMTP_ADDR", config.Config{AppEnv: "prod", SMTPAddr: "mail.example.com", SMTPFrom: "no-reply@example.com"}, "", false, "SMTP_ADDR"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var logs bytes.Buffer
			s, err := newMailer(tt.cfg, slog.New(slog.NewTextHandler(&logs, nil)))
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) || s != nil {
					t.Fatalf("got %v, %v; want an error naming %s", s, err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			switch s.(type) {
			case *mail.LogSender:
				if tt.wantType != "log" {
					t.Errorf("got the log sender, want %s", tt.wantType)
				}
			case *mail.DropSender:
				if tt.wantType != "drop" {
					t.Errorf("got the drop sender, want %s", tt.wantType)
				}
			case *mail.SMTPSender:
				if tt.wantType != "smtp" {
					t.Errorf("got the SMTP sender, want %s", tt.wantType)
				}
			default:
				t.Errorf("got %T", s)
			}
			if warned := strings.Contains(logs.String(), "SMTP_ADDR is unset"); warned != tt.wantWarn {
				t.Errorf("warned = %v, want %v (log %q)", warned, tt.wantWarn, logs.String())
			}
		})
	}
}

// TestProdMailNeverLogsTheText: in prod without SMTP_ADDR the codes and
// tokens a mail carries never reach the log (they used to be logged whole).
func TestProdMailNeverLogsTheText(t *testing.T) {
	t.Parallel()
	var logs bytes.Buffer
	s, err := newMailer(config.Config{AppEnv: "prod"}, slog.New(slog.NewJSONHandler(&logs, nil)))
	if err != nil {
		t.Fatal(err)
	}
	err = s.Send(context.Background(), mail.Message{To: "admin@example.com", Subject: "Your TruePortAI sign-in code", Text: "Your code is 918273; reset token Zm9vYmFyYmF6."})
	if err == nil {
		t.Error("a dropped mail was reported as sent")
	}
	for _, secret := range []string{"918273", "Zm9vYmFyYmF6"} {
		if strings.Contains(logs.String(), secret) {
			t.Errorf("prod log holds the mail text: %s", logs.String())
		}
	}
}
