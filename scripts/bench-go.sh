#!/usr/bin/env bash
# Go micro-benchmarks of the hot path (part of make bench): the proxy handler
# per request (ns, bytes, allocations), policy evaluation of 10 rules on a
# 4 KB prompt (target ≤ 50 µs), and response metering. Each benchmark runs
# BENCH_GO_COUNT times; the table shows the median ns/op and the B/op and
# allocs/op (exact). Written to stdout and, between the bench-go:begin/end
# markers, to BENCH_GO_OUT [docs/benchmarks.md] (empty: stdout only).
set -euo pipefail
cd "$(dirname "$0")/.."

COUNT=${BENCH_GO_COUNT:-5}
OUT=${BENCH_GO_OUT-docs/benchmarks.md}
say() { printf '[bench-go %s] %s\n' "$(date +%H:%M:%S)" "$*" >&2; }

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

run() { # package regexp
	say "go test -bench '$2' $1 (count $COUNT)"
	(cd services/gateway && go test -run '^$' -bench "$2" -benchmem -count "$COUNT" "$1") | grep '^Benchmark' >>"$tmp/raw.txt"
}
run ./internal/proxy '^BenchmarkProxy(JSON|Stream|JSONPolicies)$'
run ./internal/policy '^BenchmarkEvaluate10Rules4KB$'
run ./internal/metering '^BenchmarkFromJSON$/^(openai|anthropic|google)$/^(chat.json|message.json|generate.json|long_100KB)$'

# name ns/op B/op allocs/op per line -> median ns, B and allocs of the last run.
table=$(awk '
	{
		name = $1; sub(/-[0-9]+$/, "", name)
		for (i = 2; i <= NF; i++) {
			if ($(i+1) == "ns/op") ns[name] = ns[name] " " $i
			if ($(i+1) == "B/op") b[name] = $i
			if ($(i+1) == "allocs/op") a[name] = $i
		}
		if (!(name in seen)) { seen[name] = 1; order[++n] = name }
	}
	END {
		print "| benchmark | ns/op (median) | B/op | allocs/op |"
		print "|---|---:|---:|---:|"
		for (k = 1; k <= n; k++) {
			name = order[k]
			m = split(substr(ns[name], 2), v, " ")
			# sort numerically (insertion sort: m is small)
			for (i = 2; i <= m; i++) { x = v[i]; j = i - 1; while (j > 0 && v[j] + 0 > x + 0) { v[j+1] = v[j]; j-- } v[j+1] = x }
			med = (m % 2) ? v[(m + 1) / 2] : (v[m / 2] + v[m / 2 + 1]) / 2
			printf "| %s | %.0f | %s | %s |\n", name, med, b[name], a[name]
		}
	}' "$tmp/raw.txt")

eval_ns=$(grep -E '^BenchmarkEvaluate10Rules4KB/(no|few)-matches' "$tmp/raw.txt" | awk '{for (i = 2; i <= NF; i++) if ($(i+1) == "ns/op") print $i}' | sort -n | tail -1)
verdict="met"
awk -v n="$eval_ns" 'BEGIN { exit !(n > 50000) }' && verdict="**missed**"

report="## Go micro-benchmarks (last \`make bench\`)

- command: \`scripts/bench-go.sh\` (run by \`make bench\`), $COUNT runs each; date: $(date -u '+%Y-%m-%d %H:%M UTC'); commit: $(git rev-parse --short HEAD 2>/dev/null || echo '?')
- $(go version); $(nproc) cores, shared with whatever else runs (ns/op varies by ±20%; B/op and allocs/op are exact)
- policy evaluation, 10 rules, 4 KB prompt: slowest median $(awk -v n="$eval_ns" 'BEGIN { printf "%.1f", n / 1000 }') µs, target ≤ 50 µs: $verdict
- allocations per proxied request are also held by \`TestAllocsPerRequestBudget\` in \`make test\`

$table"

printf '%s\n' "$report"
if [ -n "$OUT" ]; then
	if grep -q '<!-- bench-go:begin' "$OUT"; then
		awk -v r="$report" '
			/<!-- bench-go:begin/ { print; print r; skip = 1; next }
			/<!-- bench-go:end/ { skip = 0 }
			!skip' "$OUT" >"$tmp/out.md"
		cp "$tmp/out.md" "$OUT"
	else
		printf '\n<!-- bench-go:begin (written by scripts/bench-go.sh; edits inside are overwritten) -->\n%s\n<!-- bench-go:end -->\n' "$report" >>"$OUT"
	fi
	say "wrote $OUT"
fi
