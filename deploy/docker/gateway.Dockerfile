# syntax=docker/dockerfile:1
# gateway — the LLM proxy gateway (HTTP + gRPC).
#
# Build from the repository root (the build context must be the root, where
# go.work lives):
#
#   docker build -f deploy/docker/gateway.Dockerfile -t trueportai/gateway .
#
# All three service images (platform-backend, gateway, fake-provider) share
# this pattern; only the go build target, ports and defaults differ.
# The tests of the deploy/ module (part of make test) check these
# files without a Docker engine, builder stage replayed.

FROM golang:1.26-bookworm AS build
WORKDIR /src
ENV CGO_ENABLED=0
# Module metadata first so the dependency download is cached until a go.mod
# or go.sum changes. Every module listed in go.work must be copied here.
COPY go.work go.work.sum* ./
COPY proto/go.mod proto/go.sum proto/
COPY services/internal/go.mod services/internal/go.sum services/internal/
COPY services/platform-backend/go.mod services/platform-backend/go.sum services/platform-backend/
COPY services/gateway/go.mod services/gateway/go.sum services/gateway/
COPY services/gateway/e2e/go.mod services/gateway/e2e/go.sum services/gateway/e2e/
RUN go mod download
COPY proto/ proto/
COPY services/ services/
RUN --mount=type=cache,target=/root/.cache/go-build \
    CGO_ENABLED=0 go build -trimpath -ldflags='-s -w' -o /out/app ./services/gateway/cmd/gateway
RUN mkdir -p /out/var/lib/gateway/spool

FROM gcr.io/distroless/static-debian12:nonroot
COPY --from=build /out/app /app
# Usage spool: the directory exists and belongs to the nonroot user (65532),
# so a named volume mounted here starts out writable by the service. Mount a
# volume on it (compose does): it buffers usage events while NATS is down.
COPY --from=build --chown=65532:65532 /out/var/lib/gateway/ /var/lib/gateway/
# The binaries listen on 127.0.0.1 by default, which is unreachable from
# outside a container; default to all interfaces here (compose sets them too).
# PLATFORM_GRPC_ADDR (the platform-backend address to dial) must be set at run time.
ENV GATEWAY_HTTP_ADDR=0.0.0.0:8081 \
    GATEWAY_GRPC_ADDR=0.0.0.0:9091 \
    GATEWAY_SPOOL_DIR=/var/lib/gateway/spool
# 8081 = HTTP proxy/API (GET /trueportai-services/health), 9091 = gRPC.
# Not 9181, the internal listener (/metrics, pprof; GATEWAY_INTERNAL_ADDR,
# loopback unless set): docker run -P must never publish it.
EXPOSE 8081 9091
USER nonroot:nonroot
ENTRYPOINT ["/app"]
