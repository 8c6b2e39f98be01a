// Package config loads the gateway configuration from the environment
// (the run contract: README.md, "Configuration").
package config

import (
	"math"
	"os"
	"path/filepath"
	"runtime/debug"
	"trueportai/services/internal/egress"
	"trueportai/services/internal/ratelimit/redisstore"
	"trueportai/services/internal/svcauth"

	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"
)

// Config is the whole gateway configuration.
type Config struct {
	AppEnv string
	// Egress is the policy for destinations tenants choose.
	Egress   egress.Policy
	HTTPAddr string
	GRPCAddr string
	// InternalAddr serves /metrics and pprof (GATEWAY_INTERNAL_ADDR),
	// never on a public interface.
	InternalAddr string
	PlatformGRPC string
	// ServiceIdentity: the key signing this service's service tokens (the
	// calls it makes to the platform; dev: generated and kept in
	// dev_keys), its instance id and the mutual TLS between the services
	// (required in prod): SERVICE_*, GRPC_TLS_* (svcauth.LoadConfig).
	ServiceIdentity svcauth.Config
	DatabaseURL     string
	NATSURL         string
	NATSPrefix      string
	// Limits: REDIS_URL, LIMITS_REPLICAS_FALLBACK (limits shared by replicas).
	Limits         redisstore.Settings
	MigrateOnStart bool
	SpoolDir       string
	SpoolMaxBytes  int64
	// JournalDir holds the usage journal (GATEWAY_JOURNAL_DIR; default
	// SpoolDir/journal; empty: no journal), JournalMaxBytes bounds it.
	JournalDir      string
	JournalMaxBytes int64
	IngesterEnabled bool
	// Role selects what this process runs: RoleAll (proxy, management API,
	// gRPC, ingester and retention), RoleProxy (no ingester, no retention)
	// or RoleIngester (ingester and retention, health and metrics only).
	Role string
	// IngesterWorkers is the number of concurrent fetch/insert loops.
	IngesterWorkers int
	// IngesterFetchBytes bounds one fetch of each loop (its batch memory).
	IngesterFetchBytes int
	// IngesterDuty (INGESTER_DUTY, 0 < duty ≤ 1) is the share of time an
	// ingester loop may spend on batches while fewer than IngesterMaxLag
	// (INGESTER_MAX_LAG_EVENTS) events wait in the stream; 1: flat out.
	IngesterDuty   float64
	IngesterMaxLag int
	// IngesterMaxDelay (INGESTER_MAX_DELAY; 0: off) is how long an ingester
	// loop defers its fetches at most while usage messages arrive at
	// IngesterBusyRate (INGESTER_BUSY_RATE) a second or more: heavy traffic
	// gets the machine, its rows follow (ingest.Ingester.SetDeferral).
	IngesterMaxDelay time.Duration
	IngesterBusyRate float64
	ProxyBodyLimit   int64
	// ProxyMaxConcurrent and ProxyMaxBuffered bound the proxied requests in
	// flight and the request bytes held; above them, a fast 503.
	ProxyMaxConcurrent int
	ProxyMaxBuffered   int64
	// UpstreamHeaderTimeout bounds the wait for upstream response headers.
	UpstreamHeaderTimeout time.Duration
	// StreamIdleTimeout ends a stream when the upstream sends nothing for this long.
	StreamIdleTimeout time.Duration
	CacheTTL          time.Duration
	// ReadHeaderTimeout bounds a client's request headers (HTTP) and
	// connection handshake (gRPC); BodyReadTimeout its request body.
	ReadHeaderTimeout time.Duration
	BodyReadTimeout   time.Duration
	// RetentionInterval is how often expired logs are deleted.
	RetentionInterval time.Duration
	// PricingFile replaces/extends the shipped price table (prices.json shape).
	PricingFile   string
	ShutdownGrace time.Duration
	LogLevel      string
	LogFormat     string

	// DrainDelay is how long the HTTP server keeps serving after a stop
	// signal, readiness already false, before it stops accepting
	// (SHUTDOWN_DRAIN_DELAY; 0: none).
	DrainDelay time.Duration
	// StreamKeepAlive is how long a proxied stream may stay silent toward
	// its client before it gets a keep-alive (STREAM_KEEPALIVE_INTERVAL;
	// 0: never).
	StreamKeepAlive time.Duration
	// MemoryLimit is the Go runtime's soft memory limit of the process
	// (GATEWAY_MEMORY_LIMIT, bytes; 0: none), set at start unless
	// GOMEMLIMIT is set (the runtime applies that one itself). The GC
	// collects more often as the heap nears it, instead of letting the heap
	// double between cycles.
	MemoryLimit int64
	// PprofBlockRate and PprofMutexFraction turn on the block and mutex
	// profiles of the internal listener's /debug/pprof (0: off; see
	// runtime.SetBlockProfileRate and runtime.SetMutexProfileFraction).
	PprofBlockRate     int
	PprofMutexFraction int

	// UsageStreamMaxBytes bounds the usage stream, UsageDLQMaxBytes its
	// dead-letter stream (JetStream reserves both on the server);
	// UsageStreamReplicas is their replica count.
	UsageStreamMaxBytes int64
	UsageDLQMaxBytes    int64
	UsageStreamReplicas int
}

// Process roles (GATEWAY_ROLE).
const (
	RoleAll      = "all"
	RoleProxy    = "proxy"
	RoleIngester = "ingester"
)

// RunsProxy reports whether this process serves the proxy, the management
// API and the gRPC API.
func (c Config) RunsProxy() bool { return c.Role != RoleIngester }

// RunsIngester reports whether this process consumes usage events.
func (c Config) RunsIngester() bool { return c.Role != RoleProxy && c.IngesterEnabled }

// RunsRetention reports whether this process runs the retention and
// partition maintenance job (a lock keeps one cycle at a time anyway).
func (c Config) RunsRetention() bool { return c.Role != RoleProxy }

// Dev reports dev mode.
func (c Config) Dev() bool { return c.AppEnv == "dev" }

// deferPollMin is the least INGESTER_MAX_DELAY: a deferring loop looks at
// the stream every 100 ms (ingest's deferPoll; config does not import the
// ingester for one constant).
const deferPollMin = 100 * time.Millisecond

// offSetting is a duration variable that 0 turns off, its default, and the
// least value it may be set to.
type offSetting struct {
	name, def string
	min       time.Duration
}

// Load reads the configuration; every problem is reported at once.
func Load(getenv func(string) string) (Config, error) {
	get := func(k, def string) string {
		if v := strings.TrimSpace(getenv(k)); v != "" {
			return v
		}
		return def
	}
	var errs []error
	dur := func(k, def string) time.Duration {
		d, err := time.ParseDuration(get(k, def))
		if err != nil || d <= 0 {
			errs = append(errs, fmt.Errorf("%s must be a positive duration", k))
		}
		return d
	}
	// durOff is dur for settings that 0 turns off (a table row, which the
	// deploy checks read as the variable and its default).
	durOff := func(o offSetting) time.Duration {
		d, err := time.ParseDuration(get(o.name, o.def))
		if err != nil || d < 0 || (d > 0 && d < o.min) {
			least := ""
			if o.min > 0 {
				least = " of at least " + o.min.String()
			}
			errs = append(errs, fmt.Errorf("%s must be 0 (off) or a positive duration%s", o.name, least))
		}
		return d
	}
	num := func(k, def string) int64 {
		n, err := strconv.ParseInt(get(k, def), 10, 64)
		if err != nil || n <= 0 {
			errs = append(errs, fmt.Errorf("%s must be a positive integer", k))
		}
		return n
	}
	count := func(k string, def ...string) int64 {
		n, err := strconv.ParseInt(get(k, append(def, "0")[0]), 10, 64)
		if err != nil || n < 0 {
			errs = append(errs, fmt.Errorf("%s must be a non-negative integer", k))
		}
		return n
	}
	// A process that also proxies keeps its ingestion memory small: one
	// loop fetching 128 KiB, one of the publisher's full messages
	// (a decoded and prepared batch is about six times its bytes, and one
	// waits while the one before it is stored; 512 KiB made role all's
	// heap goal 18-23 MiB under the closed loop against 15). The price is
	// more CPU per event when the publisher's messages are full (one a
	// batch; docs/benchmarks.md, "Issue 13, fifteenth session"). A message
	// larger than the bound is fetched alone. Role all's loop also
	// yields: half of its time at most while less than 100 000 events
	// wait, so that bursts of traffic get the CPU first. A dedicated
	// ingester runs two loops of 3 MiB, flat out (faster, more memory).
	//
	// The soft memory limit (GATEWAY_MEMORY_LIMIT) is a cap on garbage,
	// never a squeeze: a limit below the live memory makes the GC run back
	// to back (the GC's CPU limiter then takes up to half the CPU). Fixed
	// per-role values (all 40 MiB, proxy 32 MiB) did that in make bench
	// once fixed-rate overload had left the process holding more: 3 to 4
	// times the bare proxy's CPU per request. By default it is 4/5 of the
	// cgroup's memory.max when there is one (a container), else none.
	role := get("GATEWAY_ROLE", RoleAll)
	defaultWorkers, defaultFetchBytes, defaultDuty, defaultMaxDelay := "1", "131072", "0.5", "5s"
	if role == RoleIngester {
		defaultWorkers, defaultFetchBytes, defaultDuty, defaultMaxDelay = "2", "3145728", "1", "0s"
	}
	defaultMemory := "0"
	if n := cgroupMemory(); n > 0 {
		defaultMemory = strconv.FormatInt(n/5*4, 10)
	}
	// A dev server (make run, tests) holds many short-lived streams, each
	// reserving its MaxBytes: dev streams are small.
	defaultStreamBytes, defaultDLQBytes := "4294967296", "268435456"
	if get("APP_ENV", "prod") == "dev" {
		defaultStreamBytes, defaultDLQBytes = "268435456", "33554432"
	}
	c := Config{
		AppEnv:             get("APP_ENV", "prod"),
		HTTPAddr:           get("GATEWAY_HTTP_ADDR", "127.0.0.1:8081"),
		GRPCAddr:           get("GATEWAY_GRPC_ADDR", "127.0.0.1:9091"),
		InternalAddr:       get("GATEWAY_INTERNAL_ADDR", "127.0.0.1:9181"),
		PlatformGRPC:       get("PLATFORM_GRPC_ADDR", "127.0.0.1:9090"),
		DatabaseURL:        get("GATEWAY_DATABASE_URL", "postgres://postgres@127.0.0.1:5432/trueport_gateway?sslmode=disable"),
		NATSURL:            get("NATS_URL", "nats://127.0.0.1:4222"),
		NATSPrefix:         get("NATS_PREFIX", "trueport"),
		MigrateOnStart:     get("MIGRATE_ON_START", "true") != "false",
		SpoolDir:           get("GATEWAY_SPOOL_DIR", "./data/spool"),
		SpoolMaxBytes:      num("GATEWAY_SPOOL_MAX_BYTES", "1073741824"),
		JournalMaxBytes:    num("GATEWAY_JOURNAL_MAX_BYTES", "67108864"),
		IngesterEnabled:    get("INGESTER_ENABLED", "true") != "false",
		IngesterWorkers:    int(num("INGESTER_WORKERS", defaultWorkers)),
		Role:               role,
		IngesterFetchBytes: int(num("INGESTER_FETCH_BYTES", defaultFetchBytes)),
		IngesterMaxLag:     int(num("INGESTER_MAX_LAG_EVENTS", "100000")),
		IngesterMaxDelay:   durOff(offSetting{"INGESTER_MAX_DELAY", defaultMaxDelay, deferPollMin}),

		ProxyBodyLimit:        num("PROXY_BODY_LIMIT_BYTES", "33554432"),
		ProxyMaxConcurrent:    int(num("PROXY_MAX_CONCURRENT", strconv.FormatInt(defaultMaxConcurrent(memoryLimit(getenv)), 10))),
		ProxyMaxBuffered:      num("PROXY_MAX_BUFFERED_BYTES", strconv.FormatInt(memoryLimit(getenv)/4, 10)),
		UpstreamHeaderTimeout: dur("UPSTREAM_HEADER_TIMEOUT", "120s"),
		StreamIdleTimeout:     dur("UPSTREAM_IDLE_TIMEOUT", "300s"),
		CacheTTL:              dur("CACHE_TTL", "60s"),
		ShutdownGrace:         dur("SHUTDOWN_GRACE", "30s"),
		DrainDelay:            durOff(offSetting{"SHUTDOWN_DRAIN_DELAY", "5s", 0}),
		StreamKeepAlive:       durOff(offSetting{"STREAM_KEEPALIVE_INTERVAL", "15s", 100 * time.Millisecond}),
		PricingFile:           get("PRICING_FILE", ""),
		RetentionInterval:     dur("RETENTION_INTERVAL", "1h"),
		ReadHeaderTimeout:     dur("READ_HEADER_TIMEOUT", "10s"),
		BodyReadTimeout:       dur("BODY_READ_TIMEOUT", "30s"),
		LogLevel:              get("LOG_LEVEL", "info"),
		LogFormat:             get("LOG_FORMAT", "json"),

		MemoryLimit:        count("GATEWAY_MEMORY_LIMIT", defaultMemory),
		PprofBlockRate:     int(count("PPROF_BLOCK_RATE")),
		PprofMutexFraction: int(count("PPROF_MUTEX_FRACTION")),

		UsageStreamMaxBytes: num("USAGE_STREAM_MAX_BYTES", defaultStreamBytes),
		UsageDLQMaxBytes:    num("USAGE_DLQ_MAX_BYTES", defaultDLQBytes),
		UsageStreamReplicas: int(num("USAGE_STREAM_REPLICAS", "1")),
	}
	// The journal lives beside the spool (in Kubernetes, on its volume);
	// "off" turns it off.
	if j := get("GATEWAY_JOURNAL_DIR", filepath.Join(c.SpoolDir, "journal")); j != "off" {
		c.JournalDir = j
	}
	if c.AppEnv != "dev" && c.AppEnv != "prod" {
		errs = append(errs, fmt.Errorf("APP_ENV must be dev or prod, got %q", c.AppEnv))
	}
	// Tenant base URLs are dialled under the egress policy: dev allows
	// loopback, prod requires https; EGRESS_ALLOW opens networks and hosts.
	c.Egress = egress.Policy{AllowLoopback: c.AppEnv == "dev", RequireHTTPS: c.AppEnv == "prod"}
	if allow, hosts, err := egress.Parse(get("EGRESS_ALLOW", "")); err != nil {
		errs = append(errs, fmt.Errorf("EGRESS_ALLOW: %w", err))
	} else {
		c.Egress.Allow, c.Egress.AllowHosts = allow, hosts
	}
	if d, err := strconv.ParseFloat(get("INGESTER_DUTY", defaultDuty), 64); err != nil || d <= 0 || d > 1 {
		errs = append(errs, errors.New("INGESTER_DUTY must be a number above 0 and at most 1"))
	} else {
		c.IngesterDuty = d
	}
	if r, err := strconv.ParseFloat(get("INGESTER_BUSY_RATE", "50"), 64); err != nil || !(r > 0) || math.IsInf(r, 1) { // NaN too
		errs = append(errs, errors.New("INGESTER_BUSY_RATE must be a positive number (usage messages a second)"))
	} else {
		c.IngesterBusyRate = r
	}
	if c.UsageStreamReplicas > 5 {
		errs = append(errs, fmt.Errorf("USAGE_STREAM_REPLICAS must be 1 to 5, got %d", c.UsageStreamReplicas))
	}
	if lim, err := redisstore.ParseSettings(get); err != nil {
		errs = append(errs, err)
	} else {
		c.Limits = lim
	}
	switch c.Role {
	case RoleAll, RoleProxy, RoleIngester:
	default:
		errs = append(errs, fmt.Errorf("GATEWAY_ROLE must be all, proxy or ingester, got %q", c.Role))
	}
	if c.Role == RoleIngester && !c.IngesterEnabled {
		errs = append(errs, errors.New("GATEWAY_ROLE=ingester contradicts INGESTER_ENABLED=false"))
	}
	if getenv("DEBUG_ADDR") != "" {
		errs = append(errs, errors.New("DEBUG_ADDR is gone: the profiles are served under /debug/pprof/ on GATEWAY_INTERNAL_ADDR"))
	}
	var err error
	if c.ServiceIdentity, err = svcauth.LoadConfig(getenv, c.AppEnv == "dev", svcauth.Platform); err != nil {
		errs = append(errs, err)
	}
	return c, errors.Join(errs...)
}

// cgroupMemory is the cgroup's memory.max (0: none or unlimited).
func cgroupMemory() int64 {
	if b, err := os.ReadFile("/sys/fs/cgroup/memory.max"); err == nil {
		if n, err := strconv.ParseInt(strings.TrimSpace(string(b)), 10, 64); err == nil && n > 0 {
			return n
		}
	}
	return 0
}

// memoryLimit is the memory the process may use: GOMEMLIMIT, else the
// cgroup's memory.max, else the machine's memory, else 1 GiB. The soft
// limit the gateway sets itself (GATEWAY_MEMORY_LIMIT, a cap on garbage)
// is not that: the runtime's limit counts only when GOMEMLIMIT set it.
func memoryLimit(getenv func(string) string) int64 {
	if l := debug.SetMemoryLimit(-1); getenv("GOMEMLIMIT") != "" && l > 0 && l < math.MaxInt64 {
		return l
	}
	if n := cgroupMemory(); n > 0 {
		return n
	}
	if b, err := os.ReadFile("/proc/meminfo"); err == nil {
		for _, line := range strings.Split(string(b), "\n") {
			if rest, ok := strings.CutPrefix(line, "MemTotal:"); ok {
				if kb, err := strconv.ParseInt(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(rest), "kB")), 10, 64); err == nil {
					return kb << 10
				}
			}
		}
	}
	return 1 << 30
}

// defaultMaxConcurrent allows one proxied request per 256 KiB of memory
// (goroutine, buffers, a stream's state), between 256 and 65 536.
func defaultMaxConcurrent(limit int64) int64 {
	return min(max(limit/(256<<10), 256), 65536)
}
