package config

import (
	"strings"
	"testing"
)

// TestConsoleGateway: in dev the console's gateway relay points at
// GATEWAY_HTTP_ADDR unless CONSOLE_GATEWAY_URL says otherwise; in prod
// there is none unless set (the edge routes the path); the URL must be
// scheme and host only. GATEWAY_PUBLIC_URL follows the relay unless set.
func TestConsoleGateway(t *testing.T) {
	t.Parallel()
	prod := map[string]string{"JWT_SIGNING_KEY_FILE": "k.pem", "SECRETS_ENCRYPTION_KEY": "x", "SERVICE_KEY_FILE": "s.pem",
		"GRPC_TLS_CA_FILE": "ca.crt", "GRPC_TLS_CERT_FILE": "tls.crt", "GRPC_TLS_KEY_FILE": "tls.key"}
	for _, tc := range []struct {
		name              string
		env               map[string]string
		wantRelay, wantGW string
		wantErr           string
	}{
		{name: "dev default", env: map[string]string{"APP_ENV": "dev"}, wantRelay: "http://127.0.0.1:8081", wantGW: "http://127.0.0.1:8081"},
		{name: "dev gateway addr", env: map[string]string{"APP_ENV": "dev", "GATEWAY_HTTP_ADDR": "127.0.0.1:9999"},
			wantRelay: "http://127.0.0.1:9999", wantGW: "http://127.0.0.1:9999"},
		{name: "dev explicit", env: map[string]string{"APP_ENV": "dev", "CONSOLE_GATEWAY_URL": "http://gateway:8081/", "GATEWAY_PUBLIC_URL": "http://localhost:8081"},
			wantRelay: "http://gateway:8081/", wantGW: "http://localhost:8081"},
		{name: "prod none", env: prod},
		{name: "prod explicit", env: merge(prod, map[string]string{"CONSOLE_GATEWAY_URL": "https://gw.internal"}), wantRelay: "https://gw.internal", wantGW: "https://gw.internal"},
		{name: "path", env: map[string]string{"APP_ENV": "dev", "CONSOLE_GATEWAY_URL": "http://gw/x"}, wantErr: "CONSOLE_GATEWAY_URL"},
		{name: "credentials", env: map[string]string{"APP_ENV": "dev", "CONSOLE_GATEWAY_URL": "http://u:p@gw"}, wantErr: "CONSOLE_GATEWAY_URL"},
		{name: "scheme", env: map[string]string{"APP_ENV": "dev", "CONSOLE_GATEWAY_URL": "ftp://gw"}, wantErr: "CONSOLE_GATEWAY_URL"},
		{name: "public", env: map[string]string{"APP_ENV": "dev", "GATEWAY_PUBLIC_URL": "javascript:alert(1)"}, wantErr: "GATEWAY_PUBLIC_URL"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c, err := Load(func(k string) string { return tc.env[k] })
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("err = %v, want one naming %s", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			relay := ""
			if c.ConsoleGatewayURL != nil {
				relay = c.ConsoleGatewayURL.String()
			}
			if relay != tc.wantRelay || c.GatewayPublicURL != tc.wantGW {
				t.Fatalf("relay %q, public %q; want %q, %q", relay, c.GatewayPublicURL, tc.wantRelay, tc.wantGW)
			}
		})
	}
}

func merge(a, b map[string]string) map[string]string {
	out := map[string]string{}
	for k, v := range a {
		out[k] = v
	}
	for k, v := range b {
		out[k] = v
	}
	return out
}
