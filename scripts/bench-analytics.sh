#!/usr/bin/env bash
# Ingestion and analytics SQL benchmark: `bench analytics` of tools/cmd/bench,
# which holds the logic and the knobs (BENCH_ANALYTICS_*, INGEST_BENCH_*; see
# docs/benchmarks.md and tools/cmd/bench/analytics.go).
set -euo pipefail
cd "$(dirname "$0")/.."
(cd tools && GOWORK=off go build -o ../bin/bench ./cmd/bench)
exec bin/bench analytics
