#!/usr/bin/env bash
# Proxy load test, then the analytics benchmark (BENCH_ANALYTICS=0 skips it):
# `bench proxy analytics` of tools/cmd/bench, which holds the logic and the
# knobs (BENCH_*; see docs/benchmarks.md). Needs make build first (bin/).
set -euo pipefail
cd "$(dirname "$0")/.."
(cd tools && GOWORK=off go build -o ../bin/bench ./cmd/bench)
if [ "${BENCH_ANALYTICS:-1}" = 0 ]; then exec bin/bench proxy; fi
exec bin/bench proxy analytics
