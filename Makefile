# TruePortAI — build, run, test. See README.md.
SHELL := /bin/bash
GO ?= go
MODULES := ./proto/... ./services/internal/... ./services/platform-backend/... ./services/gateway/... ./services/gateway/e2e/...
# Modules kept out of go.work, so that their dependencies (compose-spec loader,
# BuildKit parser, load generators) never enter the services' build list:
# deploy (checks of the deploy files) and tools (make bench's tools/cmd/bench).
TOOL_MODULES := deploy tools

.PHONY: all build run stop test test-short chaos soak bench overload pgo proto vet fmt tidy clean

all: build

# Linked statically like the images (CGO_ENABLED=0): make run, bench, soak
# and overload run the binary that ships (deploy's makefile.build-static).
build:
	@mkdir -p bin
	CGO_ENABLED=0 $(GO) build -o bin/platform-backend ./services/platform-backend/cmd/platform-backend
	CGO_ENABLED=0 $(GO) build -o bin/gateway ./services/gateway/cmd/gateway
	CGO_ENABLED=0 $(GO) build -o bin/fake-provider ./services/gateway/cmd/fake-provider

# Builds and starts everything locally in dev mode (fake provider upstream
# unless UPSTREAM_*_URL are set) and prints a quickstart.
run: build
	@scripts/dev-run.sh

stop:
	@scripts/dev-run.sh stop

# Unit + integration + end-to-end tests against the local Postgres and NATS,
# under the race detector; allocation budgets are checked without it, and
# filepages once more as a PIE (relocated read-only data it must not drop).
test: build
	@scripts/ensure-deps.sh
	REQUIRE_DB=1 $(GO) test -race -count=1 -timeout 20m $(MODULES)
	$(GO) test -count=1 -run 'Allocs' ./services/gateway/internal/proxy/ ./services/gateway/internal/usage/ ./services/gateway/internal/journal/ ./services/internal/ratelimit/...
	CGO_ENABLED=0 $(GO) test -count=1 -buildmode=pie ./services/gateway/internal/filepages/
	@set -e; for m in $(TOOL_MODULES); do echo "cd $$m && go test ./..."; (cd $$m && GOWORK=off $(GO) test -count=1 -timeout 10m ./...); done

# The usage pipeline's fault tests with 60 s outages (make test runs them
# with 15 s): the gateway's Postgres (a private cluster), NATS (private), both,
# and the usage stream's leader of a three-server JetStream cluster, stopped
# under traffic mixed with poison requests. Figures in docs/benchmarks.md.
# ... and the long accuracy tests of the limits shared through Redis (two full
# windows each: three gateways at 60 and 600 RPM, two platforms' login limit
# (31 min) and management limit).
chaos: build
	@scripts/ensure-deps.sh
	CHAOS=1 REQUIRE_DB=1 $(GO) test -count=1 -timeout 60m -run 'Chaos' -v ./services/gateway/e2e/ 2>&1 | grep -E '^(=== RUN|--- |PASS|FAIL|ok)|sharedlimits_test'
	E2E_OUTAGE=60s REQUIRE_DB=1 $(GO) test -race -count=1 -timeout 30m -v -run 'Outage|NATSCluster' ./services/gateway/e2e/

# SOAK_RATE req/s (1000) for SOAK (10m) through one gateway: RSS drift and
# every event ingested (TestSoak in the e2e module).
SOAK ?= 10m
SOAK_RATE ?= 1000
soak: build
	@scripts/ensure-deps.sh
	E2E_SOAK=$(SOAK) E2E_SOAK_RATE=$(SOAK_RATE) REQUIRE_DB=1 $(GO) test -count=1 -timeout 60m -v -run '^TestSoak$$' ./services/gateway/e2e/

# Go micro-benchmarks, the proxy load test and the analytics benchmark
# (tools/cmd/bench; knobs and figures in docs/benchmarks.md).
bench: build
	@scripts/ensure-deps.sh
	cd tools && GOWORK=off $(GO) build -o ../bin/bench ./cmd/bench
	bin/bench all

# Refreshes the gateway's profile for profile-guided optimisation
# (services/gateway/cmd/gateway/default.pgo, which go build applies by
# itself): CPU profiles of role all, 400 keys, under the json and stream
# closed loops of bench proxy (BENCH_PPROF), merged. docs/benchmarks.md,
# "Profile-guided optimisation".
pgo: build
	@scripts/ensure-deps.sh
	cd tools && GOWORK=off $(GO) build -o ../bin/bench ./cmd/bench
	rm -rf bin/pgo
	BENCH_OUT= BENCH_PPROF=bin/pgo BENCH_LAYOUTS=all BENCH_KEYS=400 BENCH_RATES=2000 BENCH_RATE_DURATION=1s \
		BENCH_POLICY_LOADS= BENCH_REPEATS=1 BENCH_FIRST_CHUNK_RATE=0 BENCH_CLOSED_DURATION=15s bin/bench proxy
	$(GO) tool pprof -proto bin/pgo/*.profile.pb.gz > services/gateway/cmd/gateway/default.pgo

# The gateway under 3x its sustainable closed-loop rate for 60 s (bench
# overload: no process killed, RSS under the memory limit, p99 of the 503s;
# knobs BENCH_OVERLOAD_* and figures in docs/benchmarks.md).
overload: build
	@scripts/ensure-deps.sh
	cd tools && GOWORK=off $(GO) build -o ../bin/bench ./cmd/bench
	bin/bench overload

proto:
	scripts/gen-proto.sh

vet:
	$(GO) vet $(MODULES)
	@set -e; for m in $(TOOL_MODULES); do (cd $$m && GOWORK=off $(GO) vet ./...); done

fmt:
	gofmt -l -w $$(git ls-files '*.go' | grep -v '\.pb\.go$$')

tidy:
	cd proto && GOWORK=off $(GO) mod tidy
	cd services/internal && GOWORK=off $(GO) mod tidy
	cd services/platform-backend && GOWORK=off $(GO) mod tidy
	cd services/gateway && GOWORK=off $(GO) mod tidy
	cd services/gateway/e2e && GOWORK=off $(GO) mod tidy
	cd deploy && GOWORK=off $(GO) mod tidy
	cd tools && GOWORK=off $(GO) mod tidy

clean:
	rm -rf bin data
