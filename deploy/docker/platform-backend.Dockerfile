# syntax=docker/dockerfile:1
# platform-backend — accounts, tenants, auth and configuration (HTTP + gRPC).
#
# Build from the repository root (the build context must be the root, where
# go.work lives):
#
#   docker build -f deploy/docker/platform-backend.Dockerfile -t trueportai/platform-backend .
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
    CGO_ENABLED=0 go build -trimpath -ldflags='-s -w' -o /out/app ./services/platform-backend/cmd/platform-backend

FROM gcr.io/distroless/static-debian12:nonroot
COPY --from=build /out/app /app
# The binaries listen on 127.0.0.1 by default, which is unreachable from
# outside a container; default to all interfaces here (compose sets them too).
ENV PLATFORM_HTTP_ADDR=0.0.0.0:8080 \
    PLATFORM_GRPC_ADDR=0.0.0.0:9090
# 8080 = HTTP API (GET /health), 9090 = gRPC for the gateway.
# Not 9180, the internal listener (/metrics, pprof; PLATFORM_INTERNAL_ADDR,
# loopback unless set): docker run -P must never publish it.
EXPOSE 8080 9090
USER nonroot:nonroot
ENTRYPOINT ["/app"]
