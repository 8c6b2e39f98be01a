package deploy

import "time"

// What the deployment files must agree with: the run contract and, per Go
// service, its Dockerfile, build target and variables.

// contract holds the only variables compose (and the images' ENV) may set on
// the Go services: the product's run contract, plus GATEWAY_ROLE and the
// internal listeners' addresses, which the README documents.
var contract = map[string]bool{
	"APP_ENV": true, "PLATFORM_HTTP_ADDR": true, "PLATFORM_GRPC_ADDR": true, "GATEWAY_HTTP_ADDR": true,
	"GATEWAY_GRPC_ADDR": true, "PLATFORM_DATABASE_URL": true, "GATEWAY_DATABASE_URL": true,
	"NATS_URL": true, "GATEWAY_SPOOL_DIR": true, "UPSTREAM_OPENAI_URL": true,
	"UPSTREAM_ANTHROPIC_URL": true, "UPSTREAM_GOOGLE_URL": true,
	"UPSTREAM_AZURE_URL_TEMPLATE": true, "FAKE_PROVIDER_ADDR": true,
	"GATEWAY_ROLE": true, "PLATFORM_INTERNAL_ADDR": true, "GATEWAY_INTERNAL_ADDR": true,
	"REDIS_URL": true, "TRUSTED_PROXIES": true,
}

// goService is one compose service running a Go binary of this repository.
type goService struct {
	name       string
	image      string   // the service whose image it runs (itself, or another for a role service)
	dockerfile string   // relative to the repository root
	target     string   // the go build target the Dockerfile must build
	required   []string // variables compose must set
	listen     []string // variables that are listen addresses
	publish    []string // listen addresses whose port compose must publish
	// internal are listen addresses for operators only (metrics, pprof):
	// compose sets them, and neither compose publishes nor the Dockerfile
	// EXPOSEs their port.
	internal []string
	// scalable services run as several replicas (docker compose up
	// --scale): no fixed host port, no container name, no writable volume
	// shared by the replicas.
	scalable bool
	// limits: the service applies limits the replicas share (REDIS_URL
	// required); without, it must not set REDIS_URL.
	limits bool
}

var goServices = []goService{
	{
		name: "platform-backend", image: "platform-backend",
		dockerfile: "deploy/docker/platform-backend.Dockerfile",
		target:     "./services/platform-backend/cmd/platform-backend",
		required: []string{"APP_ENV", "PLATFORM_HTTP_ADDR", "PLATFORM_GRPC_ADDR", "PLATFORM_INTERNAL_ADDR", "PLATFORM_DATABASE_URL", "NATS_URL",
			"REDIS_URL", "GATEWAY_GRPC_ADDR", "TRUSTED_PROXIES"},
		listen:   []string{"PLATFORM_HTTP_ADDR", "PLATFORM_GRPC_ADDR"},
		publish:  []string{"PLATFORM_HTTP_ADDR"},
		internal: []string{"PLATFORM_INTERNAL_ADDR"},
		limits:   true,
	},
	{
		name: "gateway", image: "gateway",
		dockerfile: "deploy/docker/gateway.Dockerfile",
		target:     "./services/gateway/cmd/gateway",
		required: []string{"APP_ENV", "GATEWAY_HTTP_ADDR", "GATEWAY_GRPC_ADDR", "GATEWAY_INTERNAL_ADDR", "PLATFORM_GRPC_ADDR",
			"GATEWAY_DATABASE_URL", "NATS_URL", "GATEWAY_SPOOL_DIR",
			"UPSTREAM_OPENAI_URL", "UPSTREAM_ANTHROPIC_URL", "UPSTREAM_GOOGLE_URL",
			"UPSTREAM_AZURE_URL_TEMPLATE", "REDIS_URL"},
		listen:   []string{"GATEWAY_HTTP_ADDR", "GATEWAY_GRPC_ADDR"},
		internal: []string{"GATEWAY_INTERNAL_ADDR"},
		scalable: true,
		limits:   true,
	},
	{
		name: "fake-provider", image: "fake-provider",
		dockerfile: "deploy/docker/fake-provider.Dockerfile",
		target:     "./services/gateway/cmd/fake-provider",
		required:   []string{"FAKE_PROVIDER_ADDR"},
		listen:     []string{"FAKE_PROVIDER_ADDR"},
	},
	// The gateway image in another role: checked like the gateway (env,
	// dials, dependencies) with its own required variables; the image itself
	// is checked once, above.
	{
		name: "gateway-ingester", image: "gateway",
		dockerfile: "deploy/docker/gateway.Dockerfile",
		target:     "./services/gateway/cmd/gateway",
		required:   []string{"APP_ENV", "GATEWAY_ROLE", "GATEWAY_HTTP_ADDR", "GATEWAY_INTERNAL_ADDR", "PLATFORM_GRPC_ADDR", "GATEWAY_DATABASE_URL", "NATS_URL"},
		listen:     []string{"GATEWAY_HTTP_ADDR"},
		internal:   []string{"GATEWAY_INTERNAL_ADDR"},
		scalable:   true,
	},
}

// composeServices is the exact set of services docker-compose.yml defines.
var composeServices = []string{"postgres", "nats", "redis", "fake-provider", "platform-backend", "gateway", "gateway-ingester", "edge"}

// The edge of docker-compose.yml: an nginx that routes paths as CloudFront
// and the Ingress do (deploy/edge/nginx.conf).
const (
	edgeService      = "edge"
	edgeConfigTarget = "/etc/nginx/nginx.conf"
	// composeDNS is Docker's embedded DNS server: the edge asks it for
	// every replica of a service.
	composeDNS = "127.0.0.11"
	// edgeMaxValid bounds how long the edge keeps an answer (a replica
	// started or stopped is seen within it).
	edgeMaxValid = 30 * time.Second
)

// edgeMinNginx is the first nginx whose open-source upstream module has the
// server's resolve parameter (re-resolution, every address a peer).
var edgeMinNginx = []int{1, 27, 3}

// edgeBackends maps each binary with public routes to the compose service
// that serves them.
var edgeBackends = map[string]string{"platform-backend": "platform-backend", "gateway": "gateway"}

// ignoredPaths must be excluded from the build context, keptPaths not.
var (
	ignoredPaths = []string{".git", ".tools", "bin", "data"}
	keptPaths    = []string{"go.work", "go.mod", "proto/go.mod", "services"}
)
