#!/usr/bin/env bash
# Regenerates proto/gen with pinned generator versions (local plugins only).
set -euo pipefail
cd "$(dirname "$0")/.."
BUF_VERSION=v1.75.0
PROTOC_GEN_GO_VERSION=v1.36.12
PROTOC_GEN_GO_GRPC_VERSION=v1.5.1
bin="$PWD/.tools/bin"
mkdir -p "$bin"
need() { [ -x "$bin/$1" ] && [ "$(cat "$bin/$1.version" 2>/dev/null)" = "$2" ]; }
install() {
	GOBIN="$bin" go install "$1@$2"
	echo "$2" >"$bin/$(basename "$1").version"
}
need buf "$BUF_VERSION" || install github.com/bufbuild/buf/cmd/buf "$BUF_VERSION"
need protoc-gen-go "$PROTOC_GEN_GO_VERSION" || install google.golang.org/protobuf/cmd/protoc-gen-go "$PROTOC_GEN_GO_VERSION"
need protoc-gen-go-grpc "$PROTOC_GEN_GO_GRPC_VERSION" || install google.golang.org/grpc/cmd/protoc-gen-go-grpc "$PROTOC_GEN_GO_GRPC_VERSION"
cd proto
rm -rf gen
PATH="$bin:$PATH" buf lint
PATH="$bin:$PATH" buf generate
