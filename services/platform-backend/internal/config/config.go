// Package config loads the platform-backend configuration from the environment
// (the variables listed under "Configuration" in README.md).
package config

import (
	"trueportai/services/internal/egress"
	"trueportai/services/internal/ratelimit/redisstore"
	"trueportai/services/internal/svcauth"

	"errors"
	"fmt"
	"net/netip"
	"net/url"
	"strings"
	"time"
)

// Config is the whole platform-backend configuration.
type Config struct {
	AppEnv string
	// Egress is the policy tenant base URLs must pass when saved.
	Egress   egress.Policy
	HTTPAddr string
	GRPCAddr string
	// InternalAddr serves /metrics and pprof (PLATFORM_INTERNAL_ADDR),
	// never on a public interface.
	InternalAddr string
	DatabaseURL  string
	NATSURL      string
	NATSPrefix   string
	// Limits: REDIS_URL, LIMITS_REPLICAS_FALLBACK (limits shared by replicas).
	Limits               redisstore.Settings
	MigrateOnStart       bool
	JWTSigningKeyFile    string
	SecretsEncryptionKey string
	// PreviousEncryptionKeys open values sealed before a key rotation.
	PreviousEncryptionKeys []string
	// PreviousJWTKeyFiles keep retired signing keys in the JWKS.
	PreviousJWTKeyFiles []string
	// ServiceIdentity: the key signing this service's service tokens (the
	// calls it makes to the gateway; dev: generated and kept in dev_keys),
	// its instance id and the mutual TLS between the services (required in
	// prod): SERVICE_*, GRPC_TLS_* (svcauth.LoadConfig).
	ServiceIdentity     svcauth.Config
	SMTPAddr            string
	SMTPFrom            string
	SMTPUsername        string
	SMTPPassword        string
	PlatformAdminEmails []string
	PublicBaseURL       string
	JWTIssuer           string
	JWTAudience         string
	GlobalTokenTTL      time.Duration
	ScopedTokenTTL      time.Duration
	LogLevel            string
	LogFormat           string
	ShutdownGrace       time.Duration
	// ReadHeaderTimeout bounds a client's request headers (HTTP) and
	// connection handshake (gRPC); BodyReadTimeout its request body.
	ReadHeaderTimeout time.Duration
	BodyReadTimeout   time.Duration
	// TrustedProxies are the peers whose X-Forwarded-For is believed when
	// finding a client's address (TRUSTED_PROXIES: comma list of CIDRs or IPs).
	TrustedProxies []netip.Prefix
	// GatewayGRPCAddr is the gateway's gRPC (usage summaries, key counts);
	// each call is bounded by GatewayRPCTimeout.
	GatewayGRPCAddr   string
	GatewayRPCTimeout time.Duration
	// ConsoleGatewayURL, when set, is the gateway the platform relays the
	// console's /trueportai-services/api/ calls to (one origin without an
	// edge): CONSOLE_GATEWAY_URL, in dev by default http://GATEWAY_HTTP_ADDR.
	ConsoleGatewayURL *url.URL
	// GatewayPublicURL is where SDKs reach the gateway's proxy routes, for
	// the console's snippets (GATEWAY_PUBLIC_URL; in dev by default
	// CONSOLE_GATEWAY_URL; else empty: the console's own origin).
	GatewayPublicURL string
}

// Dev reports dev mode (APP_ENV=dev).
func (c Config) Dev() bool { return c.AppEnv == "dev" }

// Load reads the configuration; every problem is reported at once.
func Load(getenv func(string) string) (Config, error) {
	get := func(k, def string) string {
		if v := strings.TrimSpace(getenv(k)); v != "" {
			return v
		}
		return def
	}
	c := Config{
		AppEnv:               get("APP_ENV", "prod"),
		HTTPAddr:             get("PLATFORM_HTTP_ADDR", "127.0.0.1:8080"),
		GRPCAddr:             get("PLATFORM_GRPC_ADDR", "127.0.0.1:9090"),
		InternalAddr:         get("PLATFORM_INTERNAL_ADDR", "127.0.0.1:9180"),
		DatabaseURL:          get("PLATFORM_DATABASE_URL", "postgres://postgres@127.0.0.1:5432/trueport_platform?sslmode=disable"),
		NATSURL:              get("NATS_URL", "nats://127.0.0.1:4222"),
		NATSPrefix:           get("NATS_PREFIX", "trueport"),
		MigrateOnStart:       get("MIGRATE_ON_START", "true") != "false",
		JWTSigningKeyFile:    get("JWT_SIGNING_KEY_FILE", ""),
		SecretsEncryptionKey: get("SECRETS_ENCRYPTION_KEY", ""),
		SMTPAddr:             get("SMTP_ADDR", ""),
		SMTPFrom:             get("SMTP_FROM", "TruePortAI <no-reply@trueportai.local>"),
		SMTPUsername:         get("SMTP_USERNAME", ""),
		SMTPPassword:         get("SMTP_PASSWORD", ""),
		PublicBaseURL:        get("PUBLIC_BASE_URL", "http://127.0.0.1:8080"),
		JWTIssuer:            get("JWT_ISSUER", "trueportai-platform"),
		JWTAudience:          get("JWT_AUDIENCE", "trueportai"),
		LogLevel:             get("LOG_LEVEL", "info"),
		LogFormat:            get("LOG_FORMAT", "json"),
	}
	var errs []error
	if c.AppEnv != "dev" && c.AppEnv != "prod" {
		errs = append(errs, fmt.Errorf("APP_ENV must be dev or prod, got %q", c.AppEnv))
	}
	// The tenant-URL egress policy (shared with the gateway): dev allows
	// loopback, prod requires https; EGRESS_ALLOW opens networks and hosts.
	c.Egress = egress.Policy{AllowLoopback: c.AppEnv == "dev", RequireHTTPS: c.AppEnv == "prod"}
	if allow, hosts, err := egress.Parse(get("EGRESS_ALLOW", "")); err != nil {
		errs = append(errs, fmt.Errorf("EGRESS_ALLOW: %w", err))
	} else {
		c.Egress.Allow, c.Egress.AllowHosts = allow, hosts
	}
	c.PreviousEncryptionKeys = splitList(get("SECRETS_ENCRYPTION_KEYS_PREVIOUS", ""))
	c.PreviousJWTKeyFiles = splitList(get("JWT_PREVIOUS_KEY_FILES", ""))
	var err error
	if c.ServiceIdentity, err = svcauth.LoadConfig(getenv, c.Dev(), svcauth.Gateway); err != nil {
		errs = append(errs, err)
	}
	for _, e := range strings.Split(get("PLATFORM_ADMIN_EMAILS", ""), ",") {
		if e = strings.ToLower(strings.TrimSpace(e)); e != "" {
			c.PlatformAdminEmails = append(c.PlatformAdminEmails, e)
		}
	}
	if c.GlobalTokenTTL, err = time.ParseDuration(get("GLOBAL_TOKEN_TTL", "30m")); err != nil || c.GlobalTokenTTL < 15*time.Minute || c.GlobalTokenTTL > time.Hour {
		errs = append(errs, errors.New("GLOBAL_TOKEN_TTL must be a duration between 15m and 60m"))
	}
	if c.ScopedTokenTTL, err = time.ParseDuration(get("SCOPED_TOKEN_TTL", "30m")); err != nil || c.ScopedTokenTTL <= 0 || c.ScopedTokenTTL > 24*time.Hour {
		errs = append(errs, errors.New("SCOPED_TOKEN_TTL must be a positive duration up to 24h"))
	}
	if c.ShutdownGrace, err = time.ParseDuration(get("SHUTDOWN_GRACE", "15s")); err != nil {
		errs = append(errs, errors.New("SHUTDOWN_GRACE must be a duration"))
	} else if c.ShutdownGrace < 0 {
		errs = append(errs, fmt.Errorf("SHUTDOWN_GRACE must not be negative, got %s", c.ShutdownGrace))
	}
	for _, d := range []struct {
		name, def string
		to        *time.Duration
	}{{"READ_HEADER_TIMEOUT", "10s", &c.ReadHeaderTimeout}, {"BODY_READ_TIMEOUT", "30s", &c.BodyReadTimeout}} {
		if *d.to, err = time.ParseDuration(get(d.name, d.def)); err != nil || *d.to <= 0 {
			errs = append(errs, fmt.Errorf("%s must be a positive duration", d.name))
		}
	}
	if c.TrustedProxies, err = parsePrefixes(get("TRUSTED_PROXIES", "")); err != nil {
		errs = append(errs, fmt.Errorf("TRUSTED_PROXIES: %w", err))
	}
	if c.Limits, err = redisstore.ParseSettings(get); err != nil {
		errs = append(errs, err)
	}
	c.GatewayGRPCAddr = get("GATEWAY_GRPC_ADDR", "127.0.0.1:9091")
	if c.GatewayRPCTimeout, err = time.ParseDuration(get("GATEWAY_RPC_TIMEOUT", "3s")); err != nil || c.GatewayRPCTimeout <= 0 || c.GatewayRPCTimeout > time.Minute {
		errs = append(errs, errors.New("GATEWAY_RPC_TIMEOUT must be a positive duration up to 1m"))
	}
	relay := get("CONSOLE_GATEWAY_URL", "")
	if relay == "" && c.Dev() {
		relay = "http://" + get("GATEWAY_HTTP_ADDR", "127.0.0.1:8081")
	}
	if relay != "" {
		u, err := url.Parse(relay)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || u.User != nil || (u.Path != "" && u.Path != "/") || u.RawQuery != "" {
			errs = append(errs, fmt.Errorf("CONSOLE_GATEWAY_URL must be an http(s) URL of scheme and host only, got %q", relay))
		} else {
			c.ConsoleGatewayURL = u
			c.GatewayPublicURL = strings.TrimRight(relay, "/")
		}
	}
	c.GatewayPublicURL = strings.TrimRight(get("GATEWAY_PUBLIC_URL", c.GatewayPublicURL), "/")
	if u, err := url.Parse(c.GatewayPublicURL); c.GatewayPublicURL != "" && (err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "") {
		errs = append(errs, fmt.Errorf("GATEWAY_PUBLIC_URL must be an http(s) URL, got %q", c.GatewayPublicURL))
	}
	if !c.Dev() {
		if c.JWTSigningKeyFile == "" {
			errs = append(errs, errors.New("JWT_SIGNING_KEY_FILE is required when APP_ENV=prod"))
		}
		if c.SecretsEncryptionKey == "" {
			errs = append(errs, errors.New("SECRETS_ENCRYPTION_KEY is required when APP_ENV=prod"))
		}
	}
	return c, errors.Join(errs...)
}

// parsePrefixes reads a comma list of CIDRs ("10.0.0.0/8") or single
// addresses ("192.0.2.7", taken as /32 or /128).
func parsePrefixes(list string) ([]netip.Prefix, error) {
	var out []netip.Prefix
	for _, f := range strings.Split(list, ",") {
		if f = strings.TrimSpace(f); f == "" {
			continue
		}
		if p, err := netip.ParsePrefix(f); err == nil {
			out = append(out, p.Masked())
			continue
		}
		a, err := netip.ParseAddr(f)
		if err != nil {
			return nil, fmt.Errorf("%q is neither a CIDR nor an IP address", f)
		}
		a = a.Unmap()
		out = append(out, netip.PrefixFrom(a, a.BitLen()))
	}
	return out, nil
}

// splitList splits a comma list, dropping blanks.
func splitList(s string) []string {
	var out []string
	for _, v := range strings.Split(s, ",") {
		if v = strings.TrimSpace(v); v != "" {
			out = append(out, v)
		}
	}
	return out
}
