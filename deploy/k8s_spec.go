package deploy

import (
	"slices"
	"strings"
	"time"
)

// What the Kubernetes manifests (deploy/k8s) and the CloudFront template
// (deploy/cloudfront) must agree with: the overlays, the binaries the
// images run, and the rules of docs/decisions.md ("Kubernetes", "Edge").

const (
	k8sRoot = "deploy/k8s"
	// ingressControllerNS is the namespace of the ingress-nginx controller:
	// the only source admitted to the services' HTTP ports.
	ingressControllerNS = "ingress-nginx"
	// monitoringNS is the namespace of the metrics scraper: the only source
	// admitted to the metrics ports.
	monitoringNS = "monitoring"
	// drainMargin is what a pod's termination grace period must leave after
	// the preStop sleep and the process's own shutdown budget.
	drainMargin = 10 * time.Second
)

// k8sOverlay is one overlay under deploy/k8s/overlays.
type k8sOverlay struct {
	name string
	dir  string
	// examples holds Secrets the overlay references but does not render
	// (the operator creates them from this file); "" when it renders its
	// own.
	examples string
}

var k8sOverlays = []k8sOverlay{
	{name: "dev", dir: k8sRoot + "/overlays/dev"},
	{name: "prod", dir: k8sRoot + "/overlays/prod", examples: k8sRoot + "/overlays/prod/secret.example.yaml"},
}

// Roles of the gateway image in the cluster (GATEWAY_ROLE).
const (
	roleProxy    = "proxy"
	roleIngester = "ingester"
)

// k8sBinary is a Go binary of this repository as the manifests run it.
type k8sBinary struct {
	name   string // image trueportai/<name>:<tag>
	target string // the go build target (whose code says which variables it reads)
	roles  []string
	// listen maps, per role, each listen-address variable to the name of
	// the container port it must be declared as.
	listen map[string]map[string]string
	// required variables, per role.
	required map[string][]string
	// requiredProd are required too when APP_ENV=prod (config.Load refuses
	// to start without them).
	requiredProd []string
	// edges are the path prefixes the Ingress and CloudFront route to this
	// binary (none when it is not public).
	edges []string
	// shutdown is how long the process may take to stop after SIGTERM,
	// given its SHUTDOWN_GRACE; serving is whether Services send it
	// requests (a preStop drain delay is then required). A nil shutdown:
	// not checked (the dev-only fake provider).
	shutdown func(role string, grace time.Duration) time.Duration
	serving  func(role string) bool
	// readiness is the route of its local readiness (draining, never a
	// dependency), which the readiness probe of a serving role must use;
	// limits is whether the role applies limits shared by the replicas
	// (REDIS_URL). Both "" / nil when not checked.
	readiness string
	limits    func(role string) bool
}

var (
	platformListen = map[string]string{"PLATFORM_HTTP_ADDR": "http", "PLATFORM_GRPC_ADDR": "grpc", "PLATFORM_INTERNAL_ADDR": "metrics"}
	gatewayListen  = map[string]string{"GATEWAY_HTTP_ADDR": "http", "GATEWAY_GRPC_ADDR": "grpc", "GATEWAY_INTERNAL_ADDR": "metrics"}
	ingesterListen = map[string]string{"GATEWAY_HTTP_ADDR": "http", "GATEWAY_INTERNAL_ADDR": "metrics"}
)

var k8sBinaries = []k8sBinary{
	{
		name: "platform-backend", target: "./services/platform-backend/cmd/platform-backend",
		roles:  []string{""},
		listen: map[string]map[string]string{"": platformListen},
		required: map[string][]string{"": {"APP_ENV", "PLATFORM_HTTP_ADDR", "PLATFORM_GRPC_ADDR", "PLATFORM_DATABASE_URL",
			"NATS_URL", "GATEWAY_GRPC_ADDR", "SERVICE_INSTANCE_ID", "SHUTDOWN_GRACE", "GOMEMLIMIT",
			"REDIS_URL", "LIMITS_REPLICAS_FALLBACK"}},
		requiredProd: []string{"JWT_SIGNING_KEY_FILE", "SECRETS_ENCRYPTION_KEY", "SERVICE_KEY_FILE", "GRPC_TLS_CA_FILE", "GRPC_TLS_CERT_FILE", "GRPC_TLS_KEY_FILE"},
		edges:        []string{"/platform/api/", "/console"}, // the REST API and the web console
		readiness:    "/health/ready/local",
		limits:       func(string) bool { return true },
		// HTTP and gRPC drain together, then the mail jobs drain (each
		// bounded by SHUTDOWN_GRACE).
		shutdown: func(_ string, grace time.Duration) time.Duration { return 2 * grace },
		serving:  func(string) bool { return true },
	},
	{
		name: "gateway", target: "./services/gateway/cmd/gateway",
		roles:  []string{roleProxy, roleIngester},
		listen: map[string]map[string]string{roleProxy: gatewayListen, roleIngester: ingesterListen},
		required: map[string][]string{
			roleProxy: {"APP_ENV", "GATEWAY_ROLE", "GATEWAY_HTTP_ADDR", "GATEWAY_GRPC_ADDR", "PLATFORM_GRPC_ADDR",
				"GATEWAY_DATABASE_URL", "NATS_URL", "GATEWAY_SPOOL_DIR", "SERVICE_INSTANCE_ID", "SHUTDOWN_GRACE", "GOMEMLIMIT",
				"REDIS_URL", "LIMITS_REPLICAS_FALLBACK"},
			roleIngester: {"APP_ENV", "GATEWAY_ROLE", "GATEWAY_HTTP_ADDR", "PLATFORM_GRPC_ADDR",
				"GATEWAY_DATABASE_URL", "NATS_URL", "SERVICE_INSTANCE_ID", "GOMEMLIMIT"},
		},
		requiredProd: []string{"SERVICE_KEY_FILE", "GRPC_TLS_CA_FILE", "GRPC_TLS_CERT_FILE", "GRPC_TLS_KEY_FILE"},
		edges:        []string{"/trueportai-services/"},
		// The proxy drains HTTP for SHUTDOWN_GRACE, then waits up to 5 s for
		// cut streams to queue their usage; the ingester's HTTP server
		// drains for a fixed 5 s (internal/app: runIngester).
		shutdown: func(role string, grace time.Duration) time.Duration {
			if role == roleIngester {
				return 5 * time.Second
			}
			return grace + 5*time.Second
		},
		serving:   func(role string) bool { return role == roleProxy },
		readiness: "/trueportai-services/health/ready/local",
		limits:    func(role string) bool { return role == roleProxy },
	},
	{
		name: "fake-provider", target: "./services/gateway/cmd/fake-provider",
		roles:    []string{""},
		listen:   map[string]map[string]string{"": {"FAKE_PROVIDER_ADDR": "http"}},
		required: map[string][]string{"": {"FAKE_PROVIDER_ADDR", "GOMEMLIMIT"}},
		serving:  func(string) bool { return false },
	},
}

func binaryByName(name string) (k8sBinary, bool) {
	i := slices.IndexFunc(k8sBinaries, func(b k8sBinary) bool { return b.name == name })
	if i < 0 {
		return k8sBinary{}, false
	}
	return k8sBinaries[i], true
}

// Route tables: where each binary's routes are registered.
const (
	platformAPIFile  = "services/platform-backend/internal/httpapi/api.go"
	gatewayAPIFile   = "services/gateway/internal/httpapi/api.go"
	gatewayProxyFile = "services/gateway/internal/provider/provider.go" // RoutePrefix: every proxied path
	fakeProviderFile = "services/gateway/internal/fakeprovider/fakeprovider.go"
	consoleFile      = "services/platform-backend/internal/console/console.go" // the web console's routes
)

// underEdge reports whether path p is routed to b at the edge, and the
// prefix that routes it (the binary's prefixes, for messages, when none).
func (b k8sBinary) underEdge(p string) (bool, string) {
	for _, e := range b.edges {
		if strings.HasPrefix(p, e) {
			return true, e
		}
	}
	return false, strings.Join(b.edges, " or ")
}

// servedRoutes is what the binary serves on its HTTP port in role.
func servedRoutes(repo Repo, binary, role string) ([]route, error) {
	switch {
	case binary == "platform-backend":
		rs, err := routeTable(repo, platformAPIFile, "Routes")
		if err != nil {
			return nil, err
		}
		cs, err := routeTable(repo, consoleFile, "Routes")
		return append(rs, cs...), err
	case binary == "gateway" && role == roleIngester:
		return routeTable(repo, gatewayAPIFile, "HealthRoutes")
	case binary == "gateway":
		rs, err := routeTable(repo, gatewayAPIFile, "Routes")
		if err != nil {
			return nil, err
		}
		prefix, err := constString(repo, gatewayProxyFile, "RoutePrefix")
		if err != nil {
			return nil, err
		}
		return append(rs, route{"ANY", prefix + "*"}), nil
	case binary == "fake-provider":
		return routeTable(repo, fakeProviderFile)
	}
	return nil, nil
}

// internalPaths are served on the internal listener (or, until it lands,
// on the HTTP port) and must never be routed at the edge.
var internalPaths = []string{"/metrics", "/debug/pprof/", "/debug/pprof/profile"}

// announcedEnv are variables the manifests already set that the binaries
// do not read yet: work in progress on other branches announced them. The
// env check tolerates exactly these, on exactly these binaries. Remove an
// entry once the binary reads it (the check's message says so).
var announcedEnv = map[string][]string{}

// secretEnv are variables whose values carry credentials: the manifests
// take them from a Secret (secretKeyRef), never as a literal.
var secretEnv = []string{"PLATFORM_DATABASE_URL", "GATEWAY_DATABASE_URL", "NATS_URL", "REDIS_URL",
	"SECRETS_ENCRYPTION_KEY", "SMTP_PASSWORD"}

// runtimeEnv are read by the Go runtime, not the binaries' code.
var runtimeEnv = map[string]bool{"GOMEMLIMIT": true}

// notDialled are URL/address variables that name no destination the
// process connects to.
var notDialled = map[string]bool{"PUBLIC_BASE_URL": true, "GATEWAY_PUBLIC_URL": true}
