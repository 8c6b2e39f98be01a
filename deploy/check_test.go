package deploy

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// edit is one text replacement in one file of the repository: the first
// occurrence of old becomes new.
type edit struct{ file, old, new string }

// TestEachCheckCatchesItsDefect breaks the real files one way per case and
// wants the named check to fail.
func TestEachCheckCatchesItsDefect(t *testing.T) {
	const (
		gwDF     = "deploy/docker/gateway.Dockerfile"
		compose  = "docker-compose.yml"
		ignore   = ".dockerignore"
		edgeConf = "deploy/edge/nginx.conf"
	)
	cases := []struct {
		want    string
		edits   []edit
		removed []string
	}{
		{want: "gowork.parse", edits: []edit{{"go.work", "use (", "use (("}}},
		{want: "dockerignore.exists", removed: []string{ignore}},
		{want: "dockerignore.excludes", edits: []edit{{ignore, "bin/\n", ""}}},
		{want: "dockerignore.keeps", edits: []edit{{ignore, "data/\n", "data/\nservices\n"}}},

		{want: "makefile.exists", removed: []string{"Makefile"}},
		{want: "makefile.build", edits: []edit{{"Makefile", "./services/gateway/cmd/gateway\n", "./services/gateway/cmd/gateway/\n"}}},
		{want: "makefile.build-static", edits: []edit{{"Makefile", "CGO_ENABLED=0 $(GO) build -o bin/gateway", "$(GO) build -o bin/gateway"}}},

		{want: "dockerfile.exists", removed: []string{gwDF}},
		{want: "dockerfile.parse", edits: []edit{{gwDF, "AS build", "AS build extra"}}},
		{want: "dockerfile.multistage", edits: []edit{{gwDF, "FROM gcr.io/distroless/static-debian12:nonroot\n", ""}}},
		{want: "dockerfile.builder-image", edits: []edit{{gwDF, "golang:1.26-bookworm", "golang:1.25-bookworm"}}},
		{want: "dockerfile.final-image", edits: []edit{{gwDF, "gcr.io/distroless/static-debian12:nonroot", "alpine:3"}}},
		{want: "dockerfile.nonroot", edits: []edit{{gwDF, "USER nonroot:nonroot", "USER root"}}},
		{want: "dockerfile.entrypoint", edits: []edit{{gwDF, `ENTRYPOINT ["/app"]`, `ENTRYPOINT /app`}}},
		{want: "dockerfile.expose", edits: []edit{{gwDF, "EXPOSE 8081 9091\n", ""}}},
		{want: "dockerfile.env-contract", edits: []edit{{gwDF, "GATEWAY_SPOOL_DIR=/var/lib/gateway/spool", "GATEWAY_SPOOL_DIR=/var/lib/gateway/spool GATEWAY_DEBUG=1"}}},
		{want: "dockerfile.env-read", edits: []edit{{gwDF, "GATEWAY_SPOOL_DIR=/var/lib/gateway/spool", "GATEWAY_SPOOL_DIR=/var/lib/gateway/spool FAKE_PROVIDER_ADDR=0.0.0.0:1"}}},
		{want: "dockerfile.one-go-build", edits: []edit{{gwDF, "RUN mkdir -p", "RUN go build ./... && mkdir -p"}}},
		{want: "dockerfile.build-target", edits: []edit{{gwDF, "/out/app ./services/gateway/cmd/gateway", "/out/app ./services/gateway/cmd/fake-provider"}}},
		{want: "dockerfile.build-target-exists", edits: []edit{{gwDF, "/out/app ./services/gateway/cmd/gateway", "/out/app ./services/gateway/cmd/gatewayd"}}},
		{want: "dockerfile.build-flags", edits: []edit{{gwDF, "-trimpath ", ""}}},
		{want: "dockerfile.mod-download", edits: []edit{{gwDF, "RUN go mod download\n", ""}}},
		{want: "dockerfile.copy-gowork", edits: []edit{{gwDF, "COPY go.work go.work.sum* ./", "COPY go.work.sum* ./"}}},
		{want: "dockerfile.copy-gowork", edits: []edit{{gwDF, "COPY go.work go.work.sum* ./", "COPY go.work ./"}}},
		{want: "dockerfile.copy-modules", edits: []edit{{gwDF, "COPY proto/go.mod proto/go.sum proto/\n", ""}}},

		{want: "compose.valid", edits: []edit{{compose, "\nservices:", "\nservicez:"}}},
		// A dependency on an unknown service: the loader's consistency check.
		{want: "compose.valid", edits: []edit{{compose, "      fake-provider:\n        condition: service_started", "      fake-providr:\n        condition: service_started"}}},
		{want: "compose.services", edits: []edit{{compose, "\nnetworks:\n", "\n  prometheus:\n    image: prom/prometheus:v3.0.0\n\nnetworks:\n"}}},
		{want: "compose.postgres-image", edits: []edit{{compose, "image: postgres:15", "image: postgres:16"}}},
		{want: "compose.postgres-auth", edits: []edit{{compose, "      POSTGRES_PASSWORD: postgres\n", ""}}},
		{want: "compose.postgres-healthcheck", edits: []edit{{compose, `"pg_isready"`, `"psql"`}}},
		{want: "compose.postgres-env", edits: []edit{{compose, "      POSTGRES_PASSWORD: postgres\n", "      POSTGRES_PASSWORD: postgres\n      PGDATA: /data\n"}}},
		{want: "compose.nats-image", edits: []edit{{compose, "image: nats:2.10-alpine", "image: nats:2.9-alpine"}}},
		{want: "compose.nats-jetstream", edits: []edit{{compose, `["-js", "-sd", "/data", "-m", "8222"]`, `["-sd", "/data", "-m", "8222"]`}}},
		{want: "compose.nats-monitoring", edits: []edit{{compose, `["-js", "-sd", "/data", "-m", "8222"]`, `["-js", "-sd", "/data"]`}}},
		{want: "compose.nats-healthcheck-tool", edits: []edit{
			{compose, "image: nats:2.10-alpine", "image: nats:2.10"},
			{compose, `["CMD", "wget", "-q", "-O", "/dev/null", "http://127.0.0.1:8222/healthz?js-enabled-only=true"]`, `["CMD-SHELL", "wget -q -O /dev/null http://127.0.0.1:8222/healthz"]`},
		}},
		{want: "compose.build-context", edits: []edit{{compose, "      context: .\n      dockerfile: deploy/docker/fake-provider.Dockerfile", "      context: ./deploy\n      dockerfile: deploy/docker/fake-provider.Dockerfile"}}},
		{want: "compose.dockerfile", edits: []edit{{compose, "dockerfile: deploy/docker/fake-provider.Dockerfile", "dockerfile: deploy/docker/fake.Dockerfile"}}},
		{want: "compose.no-healthcheck", edits: []edit{{compose, "      FAKE_PROVIDER_ADDR: 0.0.0.0:8090\n", "      FAKE_PROVIDER_ADDR: 0.0.0.0:8090\n    healthcheck:\n      test: [\"CMD\", \"/app\", \"-h\"]\n"}}},
		{want: "compose.env-contract", edits: []edit{{compose, "      FAKE_PROVIDER_ADDR: 0.0.0.0:8090\n", "      FAKE_PROVIDER_ADDR: 0.0.0.0:8090\n      LOG_LEVEL: debug\n"}}},
		{want: "compose.env-read", edits: []edit{{compose, "      PLATFORM_HTTP_ADDR: 0.0.0.0:8080\n", "      PLATFORM_HTTP_ADDR: 0.0.0.0:8080\n      GATEWAY_ROLE: all\n"}}},
		{want: "compose.env-required", edits: []edit{{compose, "      NATS_URL: nats://nats:4222\n", ""}}},
		{want: "compose.app-env-dev", edits: []edit{{compose, "APP_ENV: dev", "APP_ENV: prod"}}},
		{want: "compose.listen-all", edits: []edit{{compose, "PLATFORM_HTTP_ADDR: 0.0.0.0:8080", "PLATFORM_HTTP_ADDR: 127.0.0.1:8080"}}},
		{want: "compose.listen-exposed", edits: []edit{{compose, "FAKE_PROVIDER_ADDR: 0.0.0.0:8090", "FAKE_PROVIDER_ADDR: 0.0.0.0:8099"}}},
		{want: "compose.published", edits: []edit{{compose, "    ports:\n      - \"8080:8080\"\n", ""}}},
		{want: "compose.internal-addr", edits: []edit{{compose, "GATEWAY_INTERNAL_ADDR: 0.0.0.0:9181", "GATEWAY_INTERNAL_ADDR: 0.0.0.0:8081"}}},
		{want: "compose.internal-unpublished", edits: []edit{{compose, "    ports:\n      - \"8080:8080\"\n", "    ports:\n      - \"8080:8080\"\n      - \"9180:9180\"\n"}}},
		{want: "compose.internal-not-exposed", edits: []edit{{gwDF, "EXPOSE 8081 9091", "EXPOSE 8081 9091 9181"}}},
		{want: "compose.dial-host", edits: []edit{{compose, "NATS_URL: nats://nats:4222", "NATS_URL: nats://postgres:4222"}}},
		{want: "compose.dial-port", edits: []edit{{compose, "postgres:5432/trueport_platform", "postgres:5433/trueport_platform"}}},
		{want: "compose.dial-port", edits: []edit{{compose, "UPSTREAM_OPENAI_URL: http://fake-provider:8090/", "UPSTREAM_OPENAI_URL: http://fake-provider:8091/"}}},
		{want: "compose.dial-port", edits: []edit{{compose, "PLATFORM_GRPC_ADDR: platform-backend:9090", "PLATFORM_GRPC_ADDR: platform-backend:9091"}}},
		{want: "compose.depends-on", edits: []edit{{compose, "      nats:\n        condition: service_healthy\n", ""}}},
		{want: "compose.db-credentials", edits: []edit{{compose, "postgres://postgres:postgres@postgres:5432/trueport_platform", "postgres://postgres:secret@postgres:5432/trueport_platform"}}},
		{want: "compose.db-name", edits: []edit{{compose, "postgres:5432/trueport_platform?sslmode", "postgres:5432/?sslmode"}}},
		{want: "compose.url", edits: []edit{{compose, "postgres@postgres:5432/trueport_platform", "postgres@postgres:port/trueport_platform"}}},
		{want: "compose.upstream-url", edits: []edit{{compose, "UPSTREAM_OPENAI_URL: http://fake-provider:8090/openai/v1", "UPSTREAM_OPENAI_URL: fake-provider:8090/openai/v1"}}},
		{want: "compose.healthy-has-healthcheck", edits: []edit{{compose, "      fake-provider:\n        condition: service_started", "      fake-provider:\n        condition: service_healthy"}}},
		// A named volume: every replica's spool in one directory.
		{want: "compose.spool-volume", edits: []edit{
			{compose, "      - /var/lib/gateway/spool\n", "      - gateway-spool:/var/lib/gateway/spool\n"},
			{compose, "volumes:\n  pgdata:\n", "volumes:\n  gateway-spool:\n  pgdata:\n"},
		}},

		// Redis and the shared limits.
		{want: "compose.redis-image", edits: []edit{{compose, "image: redis:7-alpine", "image: valkey/valkey:8-alpine"}}},
		{want: "compose.redis-healthcheck", edits: []edit{{compose, `test: ["CMD", "redis-cli", "ping"]`, `test: ["CMD", "true"]`}}},
		{want: "compose.env-required", edits: []edit{{compose, "      REDIS_URL: redis://redis:6379/0 # per-key RPM", "      # REDIS_URL: redis://redis:6379/0 # per-key RPM"}}},
		{want: "compose.redis-unused", edits: []edit{{compose, "      GATEWAY_ROLE: ingester\n", "      GATEWAY_ROLE: ingester\n      REDIS_URL: redis://redis:6379/0\n"}}},
		{want: "compose.url", edits: []edit{{compose, "REDIS_URL: redis://redis:6379/0 # login", "REDIS_URL: rediss://redis:6379/0 # login"}}},
		{want: "compose.dial-host", edits: []edit{{compose, "REDIS_URL: redis://redis:6379/0 # per-key", "REDIS_URL: redis://nats:6379/0 # per-key"}}},
		{want: "compose.depends-on", edits: []edit{{compose, "      redis:\n        condition: service_healthy\n      platform-backend:", "      platform-backend:"}}},
		{want: "compose.dial-port", edits: []edit{{compose, "GATEWAY_GRPC_ADDR: gateway:9091", "GATEWAY_GRPC_ADDR: gateway:9090"}}},

		// Scaling: a fixed host port, a container name, a shared volume.
		{want: "compose.scalable", edits: []edit{{compose, "    # No ports: reached through the edge", "    ports:\n      - \"8081:8081\"\n    # No ports: reached through the edge"}}},
		{want: "compose.scalable", edits: []edit{{compose, "    stop_grace_period: 15s", "    container_name: ingester\n    stop_grace_period: 15s"}}},
		{want: "compose.scalable", edits: []edit{{compose, "    stop_grace_period: 15s", "    volumes:\n      - ./data:/data\n    stop_grace_period: 15s"}}},
		{want: "compose.stop-grace", edits: []edit{{compose, "    stop_grace_period: 45s\n", ""}}},
		{want: "compose.stop-grace", edits: []edit{{compose, "      GATEWAY_SPOOL_DIR: /var/lib/gateway/spool\n", "      GATEWAY_SPOOL_DIR: /var/lib/gateway/spool\n      SHUTDOWN_GRACE: 120s\n"}}},

		// The edge.
		{want: "compose.edge-image", edits: []edit{{compose, "image: nginx:1.28-alpine", "image: nginx:1.27-alpine"}}},
		{want: "compose.edge-image", edits: []edit{{compose, "image: nginx:1.28-alpine", "image: caddy:2-alpine"}}},
		{want: "compose.edge-config", edits: []edit{{compose, "./deploy/edge/nginx.conf:/etc/nginx/nginx.conf:ro", "./deploy/edge/nginx.conf:/etc/nginx/nginx.conf"}}},
		{want: "compose.edge-config", edits: []edit{{compose, "./deploy/edge/nginx.conf:/etc/nginx/nginx.conf:ro", "./deploy/edge/edge.conf:/etc/nginx/nginx.conf:ro"}}},
		{want: "compose.edge-published", edits: []edit{{compose, "      - \"8000:8000\"\n", "      - \"8000:80\"\n"}}},
		{want: "compose.edge-address", edits: []edit{{compose, "ipv4_address: 10.201.0.200", "ipv4_address: 10.201.0.100"}}},
		{want: "compose.edge-address", edits: []edit{{compose, "          ip_range: 10.201.0.0/25\n", ""}}},
		// Trusting the network's gateway address: calls on the platform's
		// published port would choose their own client address.
		{want: "compose.trusted-proxies", edits: []edit{{compose, "TRUSTED_PROXIES: 10.201.0.200/32", "TRUSTED_PROXIES: 10.201.0.0/24"}}},
		{want: "compose.trusted-proxies", edits: []edit{{compose, "TRUSTED_PROXIES: 10.201.0.200/32", "TRUSTED_PROXIES: 10.201.0.201"}}},
		{want: "compose.depends-on", edits: []edit{{compose, "      gateway:\n        condition: service_started\n    restart: unless-stopped\n\nnetworks:", "    restart: unless-stopped\n\nnetworks:"}}},
		{want: "edge.parse", edits: []edit{{edgeConf, "proxy_request_buffering off;", "proxy_request_bufering off;"}}},
		{want: "edge.parse", edits: []edit{{edgeConf, "        zone gateway 64k;\n", "        zone gateway 64k;\n        proxy_buffering off;\n"}}},
		{want: "edge.parse", edits: []edit{{edgeConf, "proxy_buffering off;", "proxy_buffering no;"}}},
		{want: "edge.parse", edits: []edit{{edgeConf, "        location / {\n", "        location ~ ^/platform {\n            return 404;\n        }\n        location / {\n"}}},
		{want: "edge.listen", edits: []edit{{edgeConf, "        listen 8000;\n", ""}}},
		{want: "edge.resolve", edits: []edit{{edgeConf, "server gateway:8081 resolve;", "server gateway:8081;"}}},
		{want: "edge.resolve", edits: []edit{{edgeConf, "resolver 127.0.0.11 valid=5s ipv6=off;", "resolver 127.0.0.11 ipv6=off;"}}},
		{want: "edge.resolve", edits: []edit{{edgeConf, "        zone platform 64k;\n", ""}}},
		{want: "edge.routes", edits: []edit{{edgeConf, "location /platform/api/ {", "location /platform/api/global/ {"}}},
		{want: "edge.routes", edits: []edit{{edgeConf, "server gateway:8081 resolve;", "server gateway:9091 resolve;"}}},
		{want: "edge.internal", edits: []edit{{edgeConf, "        location / {\n            return 404;\n", "        location / {\n            proxy_pass http://platform;\n"}}},
		{want: "edge.verbatim-uri", edits: []edit{{edgeConf, "proxy_pass http://gateway;", "proxy_pass http://gateway/trueportai-services/;"}}},
		// A client's own CloudFront-Viewer-Address would reach the platform
		// from its trusted edge.
		{want: "edge.client-address", edits: []edit{{edgeConf, "        proxy_set_header CloudFront-Viewer-Address $remote_addr:$remote_port;\n", ""}}},
		{want: "edge.client-address", edits: []edit{{edgeConf, "proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for;", "proxy_set_header X-Forwarded-For $http_x_forwarded_for;"}}},
		// A proxy_set_header in a location drops every inherited one.
		{want: "edge.client-address", edits: []edit{{edgeConf, "            proxy_pass http://gateway;\n", "            proxy_pass http://gateway;\n            proxy_set_header X-Request-Start $msec;\n"}}},
		{want: "edge.streaming", edits: []edit{{edgeConf, "proxy_buffering off;", "proxy_buffering on;"}}},
		{want: "edge.streaming", edits: []edit{{edgeConf, "            proxy_read_timeout 360s;\n            proxy_send_timeout 360s;\n            client_max_body_size 33m;", "            proxy_read_timeout 120s;\n            proxy_send_timeout 360s;\n            client_max_body_size 33m;"}}},
		{want: "edge.streaming", edits: []edit{{edgeConf, "proxy_http_version 1.1;", "proxy_http_version 1.0;"}}},
		{want: "edge.limits", edits: []edit{{edgeConf, "client_max_body_size 33m;", "client_max_body_size 32m;"}}},
		{want: "edge.limits", edits: []edit{{edgeConf, "            client_max_body_size 2m;\n", ""}}},
	}
	r := root(t)
	covered := map[string]bool{}
	for _, c := range cases {
		name := c.want
		if len(c.edits) > 0 {
			name += "/" + c.edits[0].new
		}
		t.Run(name, func(t *testing.T) {
			repo := Repo{Root: r, Files: map[string]string{}, Removed: map[string]bool{}}
			for _, f := range c.removed {
				repo.Removed[f] = true
			}
			for _, e := range c.edits {
				cur, ok := repo.Files[e.file]
				if !ok {
					b, err := os.ReadFile(filepath.Join(r, e.file))
					if err != nil {
						t.Fatal(err)
					}
					cur = string(b)
				}
				if !strings.Contains(cur, e.old) {
					t.Fatalf("%s does not contain %q: update the case", e.file, e.old)
				}
				repo.Files[e.file] = strings.Replace(cur, e.old, e.new, 1)
			}
			rep := Check(context.Background(), repo, Options{})
			for _, f := range rep.Failed() {
				if f.ID == c.want {
					covered[c.want] = true
					t.Log(f)
					return
				}
			}
			t.Errorf("check %s did not fail; failures: %v", c.want, rep.Failed())
		})
	}
	// Every static check the real files pass must have a case here.
	rep := Check(context.Background(), Repo{Root: r}, Options{})
	for _, res := range rep.Results {
		if !covered[res.ID] {
			t.Errorf("no case makes check %s fail", res.ID)
			covered[res.ID] = true
		}
	}
}
