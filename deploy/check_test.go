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
		gwDF    = "deploy/docker/gateway.Dockerfile"
		compose = "docker-compose.yml"
		ignore  = ".dockerignore"
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
		{want: "compose.services", edits: []edit{{compose, "\nvolumes:\n  pgdata:", "\n  redis:\n    image: redis:7\n\nvolumes:\n  pgdata:"}}},
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
		{want: "compose.published", edits: []edit{{compose, "    ports:\n      - \"8081:8081\"\n", ""}}},
		{want: "compose.internal-addr", edits: []edit{{compose, "GATEWAY_INTERNAL_ADDR: 0.0.0.0:9181", "GATEWAY_INTERNAL_ADDR: 0.0.0.0:8081"}}},
		{want: "compose.internal-unpublished", edits: []edit{{compose, "    ports:\n      - \"8081:8081\"\n", "    ports:\n      - \"8081:8081\"\n      - \"9181:9181\"\n"}}},
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
		{want: "compose.spool-volume", edits: []edit{{compose, "      - gateway-spool:/var/lib/gateway/spool", "      - /tmp/spool:/var/lib/gateway/spool"}}},
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
