package config

import (
	"strings"
	"testing"
	"time"
)

func TestShutdownGrace(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct {
		value   string
		want    time.Duration
		wantErr string // "" for none
	}{
		{"", 15 * time.Second, ""},
		{"30s", 30 * time.Second, ""},
		{"0s", 0, ""},
		{"-5s", 0, "SHUTDOWN_GRACE must not be negative, got -5s"},
		{"-1ns", 0, "SHUTDOWN_GRACE must not be negative"},
		{"soon", 0, "SHUTDOWN_GRACE must be a duration"},
	} {
		t.Run(tt.value, func(t *testing.T) {
			env := map[string]string{"APP_ENV": "dev", "SHUTDOWN_GRACE": tt.value}
			c, err := Load(func(k string) string { return env[k] })
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("SHUTDOWN_GRACE=%q: err = %v, want one containing %q", tt.value, err, tt.wantErr)
				}
				return
			}
			if err != nil || c.ShutdownGrace != tt.want {
				t.Errorf("SHUTDOWN_GRACE=%q: %v, %v; want %v", tt.value, c.ShutdownGrace, err, tt.want)
			}
		})
	}
}
