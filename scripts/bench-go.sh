#!/usr/bin/env bash
# Go micro-benchmarks of the hot path: `bench go` of tools/cmd/bench
# (BENCH_GO_COUNT [5], BENCH_GO_OUT [docs/benchmarks.md]; empty: stdout only).
set -euo pipefail
cd "$(dirname "$0")/.."
(cd tools && GOWORK=off go build -o ../bin/bench ./cmd/bench)
exec bin/bench go
