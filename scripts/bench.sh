#!/usr/bin/env bash
# make bench: load-test the gateway against a bare Go reverse proxy and the
# fake provider itself, A/B interleaved in one run, and write the figures to
# stdout and docs/benchmarks.md (between the bench:begin/end markers).
#
# Targets, measured in rotation for every scenario:
#   direct   client -> fake provider
#   bare     client -> benchproxy (httputil.ReverseProxy) -> fake provider
#   gateway  client -> gateway (auth, rate limit, metering, usage publishing
#            to JetStream + ingester) -> fake provider
#   policies the gateway again, with a key of a second tenant that has 10
#            policy rules (none matching the benchmark body), JSON only
# Scenarios: JSON and SSE chat completions, at fixed rates (vegeta) and
# closed loop (wrk). Each (scenario, target) runs BENCH_REPEATS times; the
# table reports medians.
#
# Environment (defaults in brackets):
#   BENCH_RATES           fixed request rates per second ["500 2000"]
#   BENCH_RATE_DURATION   length of a fixed-rate run [2s]
#   BENCH_CLOSED_DURATION length of a closed-loop run [7s]
#   BENCH_CONNS           closed-loop connections [64]
#   BENCH_THREADS         closed-loop wrk threads [2]
#   BENCH_REPEATS         repetitions of every run [3]
#   BENCH_OUT             markdown file to update [docs/benchmarks.md]; empty: stdout only
#   BENCH_POLICY_LOADS    loads at which the JSON body also goes through a
#                         tenant with 10 policy rules ["500"; e.g. "500 max"]
#   BENCH_PORT_BASE       first of the 7 local ports used [18080]
#   BENCH_GATEWAY_ENV     extra VAR=value words for the gateway, e.g. INGESTER_ENABLED=false
#   BENCH_GATEWAY_LAYOUT  split: the gateway runs GATEWAY_ROLE=proxy and a second
#                         gateway process GATEWAY_ROLE=ingester consumes the usage
#                         stream (the production layout, both on this machine);
#                         all: one gateway process with the ingester in it [split]
#   BENCH_PERF            a directory: after the rounds, profile benchproxy and the
#                         gateway with perf under closed-loop load and count their
#                         syscalls per request (files in that directory, not in the table)
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD

RATES=${BENCH_RATES:-"500 2000"}
RATE_DUR=${BENCH_RATE_DURATION:-2s}
CLOSED_DUR=${BENCH_CLOSED_DURATION:-7s}
CONNS=${BENCH_CONNS:-64}
THREADS=${BENCH_THREADS:-2}
REPEATS=${BENCH_REPEATS:-3}
OUT=${BENCH_OUT-docs/benchmarks.md}
POLICY_LOADS=${BENCH_POLICY_LOADS-500}
base=${BENCH_PORT_BASE:-18080}
read -r -a GATEWAY_ENV <<<"${BENCH_GATEWAY_ENV:-}"
LAYOUT=${BENCH_GATEWAY_LAYOUT:-split}
case $LAYOUT in
split) GATEWAY_ENV=(GATEWAY_ROLE=proxy "${GATEWAY_ENV[@]}") ;;
all) ;;
*) echo "BENCH_GATEWAY_LAYOUT must be split or all" >&2; exit 2 ;;
esac
PERF_DIR=${BENCH_PERF:-}
VEGETA_VERSION=v12.13.0

platform_http=127.0.0.1:$base
gateway_http=127.0.0.1:$((base + 1))
fake_addr=127.0.0.1:$((base + 2))
bare_addr=127.0.0.1:$((base + 3))
platform_grpc=127.0.0.1:$((base + 4))
gateway_grpc=127.0.0.1:$((base + 5))
ingester_http=127.0.0.1:$((base + 6))

say() { printf '[bench %s] %s\n' "$(date +%H:%M:%S)" "$*" >&2; }
die() { say "error: $*"; exit 1; }
started_at=$(date +%s)

# ---------------------------------------------------------------- tools
need() { command -v "$1" >/dev/null 2>&1 || die "$1 is required (${2:-apt-get install -y $1})"; }
need curl
need jq
need psql "apt-get install -y postgresql-client"
[ -z "$PERF_DIR" ] || need perf "apt-get install -y linux-perf"
if ! command -v wrk >/dev/null 2>&1; then
	if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
		say "installing wrk (Debian package)"
		apt-get install -y -qq wrk >/dev/null || { apt-get update -qq >/dev/null && apt-get install -y -qq wrk >/dev/null; }
	fi
	need wrk
fi
VEGETA=$(command -v vegeta || true)
if [ -z "$VEGETA" ]; then
	VEGETA=$root/bin/tools/vegeta
	if [ ! -x "$VEGETA" ]; then
		say "installing vegeta $VEGETA_VERSION (go install)"
		GOBIN=$root/bin/tools GOWORK=off go install "github.com/tsenart/vegeta/v12@$VEGETA_VERSION"
	fi
fi

for b in platform-backend gateway fake-provider; do
	[ -x "bin/$b" ] || die "bin/$b is missing: run make bench (it builds first)"
done
go build -o bin/benchproxy ./services/gateway/cmd/benchproxy

port_free() { ! (exec 3<>"/dev/tcp/${1%:*}/${1##*:}") 2>/dev/null; }
for a in "$platform_http" "$gateway_http" "$fake_addr" "$bare_addr" "$platform_grpc" "$gateway_grpc" "$ingester_http"; do
	port_free "$a" || die "$a is in use (set BENCH_PORT_BASE)"
done

# ---------------------------------------------------------------- processes
tmp=$(mktemp -d "${TMPDIR:-/tmp}/trueport-bench.XXXXXX")
mkdir -p "$tmp/logs" "$tmp/spool"
declare -A PID=()
prefix=bench$(od -An -N4 -tx1 /dev/urandom | tr -d ' \n')

stop_pid() { # name: SIGTERM, wait up to 10 s, then SIGKILL
	local p=${PID[$1]:-}
	[ -n "$p" ] || return 0
	if kill -0 "$p" 2>/dev/null; then
		kill "$p" 2>/dev/null || true
		for _ in $(seq 1 50); do kill -0 "$p" 2>/dev/null || break; sleep 0.2; done
		kill -0 "$p" 2>/dev/null && kill -9 "$p" 2>/dev/null || true
	fi
	wait "$p" 2>/dev/null || true
	unset "PID[$1]"
}
# Removes the run's JetStream stream (raw NATS protocol: no client needed).
delete_stream() {
	local stream
	stream=$(printf '%s' "$prefix" | tr 'a-z.-' 'A-Z__')_USAGE
	(
		exec 3<>/dev/tcp/127.0.0.1/4222 || exit 0
		printf 'CONNECT {"verbose":false,"pedantic":false}\r\nPUB $JS.API.STREAM.DELETE.%s 0\r\n\r\nPING\r\n' "$stream" >&3
		timeout 2 head -c 200 <&3 >/dev/null 2>&1 || true
	) 2>/dev/null || true
}
cleanup() {
	local rc=$?
	trap - EXIT INT TERM
	for name in "${!PID[@]}"; do
		case $name in perf|rss) kill "${PID[$name]}" 2>/dev/null || true ;; esac
	done
	for name in gateway ingester platform-backend benchproxy fake-provider; do stop_pid "$name"; done
	for name in "${!PID[@]}"; do stop_pid "$name"; done
	delete_stream
	if [ "$rc" != 0 ]; then
		say "failed (exit $rc); last log lines:"
		for f in "$tmp"/logs/*.log; do [ -f "$f" ] && { echo "--- $f" >&2; tail -15 "$f" >&2; }; done
	fi
	rm -rf "$tmp"
	exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

start() { # name cmd...: background process with its log in $tmp/logs
	local name=$1; shift
	"$@" >"$tmp/logs/$name.log" 2>&1 &
	PID[$name]=$!
}
wait_http() { # url name
	for _ in $(seq 1 150); do
		curl -fsS -o /dev/null "$1" 2>/dev/null && return 0
		kill -0 "${PID[$2]}" 2>/dev/null || die "$2 exited; see its log"
		sleep 0.2
	done
	die "$2 did not become healthy at $1"
}

# Fresh databases for this run (the services create and migrate them).
PGURL=postgres://postgres@127.0.0.1:5432
for db in trueport_bench_platform trueport_bench_gateway; do
	PGOPTIONS="-c client_min_messages=warning" psql -q -X "$PGURL/postgres?sslmode=disable" -c "DROP DATABASE IF EXISTS $db WITH (FORCE)" >/dev/null
done

export APP_ENV=dev LOG_LEVEL=warn LOG_FORMAT=text NATS_PREFIX=$prefix
export PLATFORM_HTTP_ADDR=$platform_http PLATFORM_GRPC_ADDR=$platform_grpc
export GATEWAY_HTTP_ADDR=$gateway_http GATEWAY_GRPC_ADDR=$gateway_grpc
export PLATFORM_DATABASE_URL="$PGURL/trueport_bench_platform?sslmode=disable"
export GATEWAY_DATABASE_URL="$PGURL/trueport_bench_gateway?sslmode=disable"
export GATEWAY_SPOOL_DIR=$tmp/spool
fake=http://$fake_addr
export UPSTREAM_OPENAI_URL=$fake/openai/v1 UPSTREAM_ANTHROPIC_URL=$fake/anthropic/v1
export UPSTREAM_GOOGLE_URL=$fake/google/v1beta
export UPSTREAM_AZURE_URL_TEMPLATE="$fake/azure/{resource}/openai/deployments/{deployment}"

say "starting fake provider, benchproxy, platform-backend, gateway (NATS_PREFIX=$prefix)"
FAKE_PROVIDER_ADDR=$fake_addr FAKE_PROVIDER_DELAY_MS=0 FAKE_PROVIDER_CHUNKS=5 FAKE_PROVIDER_CHUNK_DELAY_MS=0 \
	FAKE_PROVIDER_LOG_LEVEL=warn start fake-provider bin/fake-provider
BENCH_PROXY_ADDR=$bare_addr BENCH_UPSTREAM=$fake start benchproxy bin/benchproxy
start platform-backend bin/platform-backend
wait_http "$fake/health" fake-provider
wait_http "http://$bare_addr/health" benchproxy
wait_http "http://$platform_http/health" platform-backend
start gateway env LOG_LEVEL=info "${GATEWAY_ENV[@]}" bin/gateway
wait_http "http://$gateway_http/trueportai-services/health" gateway

# ---------------------------------------------------------------- tenant + key
P=http://$platform_http/platform/api
G=http://$gateway_http/trueportai-services
api() { # method url token body -> JSON on stdout; fails on HTTP >= 400
	local out code
	out=$(curl -sS -X "$1" "$2" -H 'content-type: application/json' ${3:+-H "authorization: Bearer $3"} ${4:+-d "$4"} -w '\n%{http_code}')
	code=${out##*$'\n'}
	out=${out%$'\n'*}
	[ "$code" -lt 400 ] || die "$1 $2 -> $code: $out"
	printf '%s' "$out"
}
say "setting up user, tenant (enterprise plan), provider credential, API key"
email=bench-$prefix@example.com
api POST "$P/global/auth/register" "" "{\"email\":\"$email\",\"password\":\"correct-horse-battery\"}" >/dev/null
GT=$(api POST "$P/global/auth/login" "" "{\"email\":\"$email\",\"password\":\"correct-horse-battery\"}" | jq -r .global_access_token)
TID=$(api POST "$P/global/tenants" "$GT" "{\"name\":\"Bench\",\"slug\":\"$prefix\"}" | jq -r .id)
ST=$(api POST "$P/global/auth/select-tenant" "$GT" "{\"tenant_id\":\"$TID\"}" | jq -r .scoped_access_token)
api PUT "$P/service/configs/providers.openai.api_key" "$ST" '{"value":"sk-upstream-bench"}' >/dev/null
# The free plan caps a key at 60 rpm, enterprise at 6000: upgrade the tenant
# in the platform DB (no API for it), create the key at the enterprise cap
# (key creation fetches the tenant context afresh), then lift the key's
# limit in the gateway DB and restart the gateway, which loads keys at start.
# The rate limiter still runs on every request, it just never refuses.
psql -q -X "$PLATFORM_DATABASE_URL" -c "UPDATE tenants SET plan_id='enterprise' WHERE id='$TID'" >/dev/null
KEY=$(api POST "$G/api/v1/keys" "$ST" '{"name":"bench","rpm_limit":6000}' | jq -r .key)

# A second tenant with 10 policy rules of every type, none of which matches
# the benchmark body: the cost of evaluating policies on clean traffic.
say "setting up a second tenant with 10 policy rules"
TID2=$(api POST "$P/global/tenants" "$GT" "{\"name\":\"Bench policies\",\"slug\":\"${prefix}p\"}" | jq -r .id)
ST2=$(api POST "$P/global/auth/select-tenant" "$GT" "{\"tenant_id\":\"$TID2\"}" | jq -r .scoped_access_token)
api PUT "$P/service/configs/providers.openai.api_key" "$ST2" '{"value":"sk-upstream-bench"}' >/dev/null
psql -q -X "$PLATFORM_DATABASE_URL" -c "UPDATE tenants SET plan_id='enterprise' WHERE id='$TID2'" >/dev/null
PKEY=$(api POST "$G/api/v1/keys" "$ST2" '{"name":"bench-policies","rpm_limit":6000}' | jq -r .key)
while read -r rule; do
	api POST "$G/api/v1/policies" "$ST2" "$rule" >/dev/null
done <<'RULES'
{"name":"no secrets","type":"secrets","action":"block","config":{},"priority":10}
{"name":"mask pii","type":"pii","action":"redact","config":{"kinds":["email","phone","credit_card","us_ssn","iban","ipv4"]}}
{"name":"prompt injection","type":"prompt_injection","action":"block","config":{}}
{"name":"watch words","type":"keyword","action":"flag","config":{"keywords":["merger","acquisition","layoff","lawsuit"]}}
{"name":"confidential","type":"keyword","action":"block","config":{"keywords":["confidential","do not distribute"],"whole_word":true}}
{"name":"project names","type":"regex","action":"flag","config":{"pattern":"\\bproject-[a-z]{4,}\\b"}}
{"name":"internal only","type":"regex","action":"block","config":{"pattern":"(?i)internal use only"}}
{"name":"models","type":"model_allowlist","action":"block","config":{"models":["gpt-4o-mini","gpt-4o","gpt-4.1-mini"]}}
{"name":"size","type":"max_tokens","action":"block","config":{"max_prompt_chars":20000}}
{"name":"pii in answers","type":"pii","action":"flag","direction":"response","config":{"kinds":["email","credit_card"]}}
RULES
psql -q -X "$GATEWAY_DATABASE_URL" -c "UPDATE api_keys SET rpm_limit=100000000" >/dev/null
stop_pid gateway
start gateway env LOG_LEVEL=info "${GATEWAY_ENV[@]}" bin/gateway
wait_http "http://$gateway_http/trueportai-services/health" gateway
limit=""
for _ in $(seq 1 50); do # the tenant context is warmed in the background
	limit=$(curl -s -o /dev/null -w '%{http_code} %header{x-ratelimit-limit}' "$G/openai/v1/chat/completions" \
		-H "authorization: Bearer $KEY" -H 'content-type: application/json' \
		-d '{"model":"gpt-4o-mini","messages":[{"role":"user","content":"hi"}]}')
	[ "${limit%% *}" = 200 ] && break
	sleep 0.2
done
[ "$limit" = "200 100000000" ] || die "gateway smoke call: got '$limit', want '200 100000000'"
# The policy tenant's key passes clean traffic and its rules are live.
for _ in $(seq 1 50); do
	limit=$(curl -s -o /dev/null -w '%{http_code}' "$G/openai/v1/chat/completions" -H "authorization: Bearer $PKEY" \
		-H 'content-type: application/json' -d '{"model":"gpt-4o-mini","messages":[{"role":"user","content":"hi"}]}')
	[ "$limit" = 200 ] && break
	sleep 0.2
done
[ "$limit" = 200 ] || die "policy tenant smoke call: got $limit, want 200"
limit=$(curl -s -o /dev/null -w '%{http_code}' "$G/openai/v1/chat/completions" -H "authorization: Bearer $PKEY" \
	-H 'content-type: application/json' -d '{"model":"gpt-4o-mini","messages":[{"role":"user","content":"this is confidential"}]}')
[ "$limit" = 400 ] || die "policy tenant: a request matching a block rule got $limit, want 400"
GW_PID=${PID[gateway]}
ING_PID=""
if [ "$LAYOUT" = split ]; then
	say "starting the ingester process (GATEWAY_ROLE=ingester)"
	start ingester env LOG_LEVEL=info GATEWAY_ROLE=ingester GATEWAY_HTTP_ADDR="$ingester_http" GATEWAY_GRPC_ADDR=127.0.0.1:0 bin/gateway
	wait_http "http://$ingester_http/trueportai-services/health" ingester
	ING_PID=${PID[ingester]}
fi
BARE_PID=${PID[benchproxy]}

# ---------------------------------------------------------------- load files
json_body='{"model":"gpt-4o-mini","messages":[{"role":"user","content":"Say hello in one short sentence."}]}'
# The stream asks for the usage chunk itself so that every target sends the
# upstream the same request (the gateway would otherwise add it and hide it).
stream_body='{"model":"gpt-4o-mini","stream":true,"stream_options":{"include_usage":true},"messages":[{"role":"user","content":"Say hello in one short sentence."}]}'
declare -A URL=(
	[direct]=$fake/openai/v1/chat/completions
	[bare]=http://$bare_addr/openai/v1/chat/completions
	[gateway]=$G/openai/v1/chat/completions
	[policies]=$G/openai/v1/chat/completions
)
# direct and bare carry the same key: the fake provider only checks that one is sent.
declare -A KEYOF=([direct]=$KEY [bare]=$KEY [gateway]=$KEY [policies]=$PKEY)
for mode in json stream; do
	body_var=${mode}_body
	printf '%s' "${!body_var}" >"$tmp/$mode.body"
	for target in direct bare gateway policies; do
		printf 'POST %s\nContent-Type: application/json\nAuthorization: Bearer %s\n@%s\n' \
			"${URL[$target]}" "${KEYOF[$target]}" "$tmp/$mode.body" >"$tmp/$mode-$target.targets"
		cat >"$tmp/$mode-$target.lua" <<LUA
wrk.method = "POST"
wrk.body = '${!body_var}'
wrk.headers["Content-Type"] = "application/json"
wrk.headers["Authorization"] = "Bearer ${KEYOF[$target]}"
done = function(summary, latency, requests)
  local e = summary.errors
  io.write(string.format('BENCHJSON {"requests":%d,"duration_us":%d,"p50_us":%d,"p99_us":%d,"errors":%d,"non2xx":%d}\n',
    summary.requests, summary.duration, latency:percentile(50), latency:percentile(99),
    e.connect + e.read + e.write + e.timeout, e.status))
end
LUA
	done
done

# ---------------------------------------------------------------- measuring
CLK_TCK=$(getconf CLK_TCK)
NCPU=$(nproc)
cpu_ticks() { awk '{print $14 + $15}' "/proc/$1/stat" 2>/dev/null || echo 0; }
rss_kb() { awk '/^VmRSS:/ {print $2}' "/proc/$1/status" 2>/dev/null || echo 0; }
# Busy jiffies of the whole machine (all processes, all cores).
box_ticks() {
	local _ u n sy idle io irq sirq st
	read -r _ u n sy idle io irq sirq st _ </proc/stat
	echo $((u + n + sy + irq + sirq + st))
}
hwm_kb() { awk '/^VmHWM:/ {print $2}' "/proc/$1/status" 2>/dev/null || echo 0; }
# Samples the peak VmRSS of pid into file every 100 ms until killed.
rss_sampler() { # no forks but sleep: keeps its own CPU use out of the measurement
	local max=0 k v _
	while :; do
		while read -r k v _; do
			[ "$k" = VmRSS: ] && break
		done <"/proc/$1/status" || return 0
		[ "${v:-0}" -gt "$max" ] && max=$v && echo "$max" >"$2"
		sleep 0.1
	done
}
# Waits (up to 10 s) until the gateway is idle: after a heavy run its
# ingester is still draining the usage stream into Postgres, which would
# otherwise load the next target's run.
# CPU ticks of the gateway process(es): proxy, plus the ingester when split.
gateway_ticks() {
	local t
	t=$(cpu_ticks "$GW_PID")
	[ -z "$ING_PID" ] || t=$((t + $(cpu_ticks "$ING_PID")))
	echo "$t"
}
settle_gateway() {
	local a b ma mb
	for _ in $(seq 1 20); do
		a=$(gateway_ticks); ma=$(box_ticks)
		sleep 0.5
		b=$(gateway_ticks); mb=$(box_ticks)
		# The gateway below 5% of a core, and the whole machine (Postgres
		# committing the last batches, NATS) below 20% of its cores.
		[ $((b - a)) -le $((CLK_TCK / 40)) ] && [ $((mb - ma)) -le $((CLK_TCK * NCPU / 10)) ] && return 0
	done
	say "warning: gateway or machine still busy 10 s after a run"
}

results=$tmp/results.jsonl
: >"$results"
# run_one rep mode load target: one measurement, appended to $results.
run_one() {
	local rep=$1 mode=$2 load=$3 target=$4 pid="" t0 t1 rssf=$tmp/rss.max out
	case $target in gateway | policies) pid=$GW_PID ;; bare) pid=$BARE_PID ;; esac
	echo 0 >"$rssf"
	local b0 b1
	b0=$(box_ticks)
	if [ -n "$pid" ]; then
		rss_sampler "$pid" "$rssf" &
		PID[rss]=$!
		t0=$(cpu_ticks "$pid")
	fi
	if [ "$load" = max ]; then
		out=$(wrk -t"$THREADS" -c"$CONNS" -d"$CLOSED_DUR" -s "$tmp/$mode-$target.lua" "${URL[$target]}" | sed -n 's/^BENCHJSON //p')
		[ -n "$out" ] || die "wrk printed no result for $mode/$load/$target"
		out=$(jq -c '{n: .requests, rps: (.requests / (.duration_us / 1e6)), p50_ms: (.p50_us / 1000),
			p99_ms: (.p99_us / 1000), ok: ((.requests - .non2xx - .errors) / ([.requests, 1] | max))}' <<<"$out")
	else
		out=$("$VEGETA" attack -rate="$load/1s" -duration="$RATE_DUR" -format=http -targets="$tmp/$mode-$target.targets" \
			-keepalive=true -timeout=30s | "$VEGETA" report -type=json)
		out=$(jq -c '{n: .requests, rps: .throughput, p50_ms: (.latencies["50th"] / 1e6),
			p99_ms: (.latencies["99th"] / 1e6), ok: .success}' <<<"$out")
	fi
	b1=$(box_ticks)
	local rss=0 cpu=null box=$(( (b1 - b0) * 1000000 / CLK_TCK ))
	if [ -n "$pid" ]; then
		t1=$(cpu_ticks "$pid")
		kill "${PID[rss]}" 2>/dev/null || true
		wait "${PID[rss]}" 2>/dev/null || true
		unset 'PID[rss]'
		rss=$(cat "$rssf")
		cpu=$(( (t1 - t0) * 1000000 / CLK_TCK ))
	fi
	jq -c --argjson rep "$rep" --arg mode "$mode" --arg load "$load" --arg target "$target" \
		--argjson rss_kb "$rss" --argjson cpu_us "$cpu" --argjson box_us "$box" \
		'. + {rep: $rep, mode: $mode, load: $load, target: $target, rss_mb: ($rss_kb / 1024), box_us_per_req: ($box_us / ([.n, 1] | max)),
		      cpu_us_per_req: (if $cpu_us == null then null else $cpu_us / ([.n, 1] | max) end)}' <<<"$out" >>"$results"
	jq -r '"  \(.mode)/\(.load)/\(.target) rep \(.rep): \(.rps | floor) req/s, p50 \(.p50_ms * 1000 | round / 1000) ms, p99 \(.p99_ms * 1000 | round / 1000) ms, ok \(.ok * 100 | floor)%"' \
		<<<"$(tail -1 "$results")" >&2
	case $target in gateway | policies) settle_gateway ;; *) sleep 0.3 ;; esac
}

scenarios=()
for mode in json stream; do
	for r in $RATES; do scenarios+=("$mode $r"); done
	scenarios+=("$mode max")
done
targets=(direct bare gateway)
# targets_of mode load: the targets of one scenario.
targets_of() {
	local l
	echo direct bare gateway
	if [ "$1" = json ]; then
		for l in $POLICY_LOADS; do [ "$l" = "$2" ] && echo policies; done
	fi
}

say "warming up (1 s closed loop per target and body)"
for mode in json stream; do
	for target in "${targets[@]}"; do
		wrk -t"$THREADS" -c"$CONNS" -d1s -s "$tmp/$mode-$target.lua" "${URL[$target]}" >/dev/null
	done
done
[ -z "$POLICY_LOADS" ] || wrk -t"$THREADS" -c"$CONNS" -d1s -s "$tmp/json-policies.lua" "${URL[policies]}" >/dev/null
settle_gateway
load_before=$(cut -d' ' -f1-3 /proc/loadavg)

for rep in $(seq 1 "$REPEATS"); do
	say "round $rep/$REPEATS"
	for sc in "${scenarios[@]}"; do
		read -r mode load <<<"$sc"
		# Rotate which target goes first so no target always runs after the gateway.
		read -r -a tl <<<"$(targets_of "$mode" "$load" | tr '\n' ' ')"
		for i in "${!tl[@]}"; do
			run_one "$rep" "$mode" "$load" "${tl[$(((i + rep - 1) % ${#tl[@]}))]}"
		done
	done
done
load_after=$(cut -d' ' -f1-3 /proc/loadavg)
gw_hwm=$(hwm_kb "$GW_PID")
ing_hwm=0
[ -z "$ING_PID" ] || ing_hwm=$(hwm_kb "$ING_PID")
gw_rss_idle=$(rss_kb "$GW_PID")
bare_hwm=$(hwm_kb "$BARE_PID")
if [ -n "$PERF_DIR" ]; then
	mkdir -p "$PERF_DIR"
	secs=${CLOSED_DUR%s}
	for mode in json stream; do
		for target in bare gateway; do
			pid=$BARE_PID
			[ "$target" = gateway ] && pid=$GW_PID
			say "perf: $mode closed loop on $target (${secs} s)"
			perf record -q -F 999 -g -p "$pid" -o "$tmp/perf.data" -- sleep "$secs" >/dev/null 2>&1 &
			PID[perf]=$!
			wrk -t"$THREADS" -c"$CONNS" -d"${secs}s" -s "$tmp/$mode-$target.lua" "${URL[$target]}" | sed -n 's/^BENCHJSON //p' >"$PERF_DIR/perf-$mode-$target.wrk.json"
			wait "${PID[perf]}" || true
			unset 'PID[perf]'
			perf report -i "$tmp/perf.data" --stdio --no-children --sort symbol --percent-limit 0.7 -g none \
				>"$PERF_DIR/perf-$mode-$target.self.txt" 2>/dev/null || true
			perf report -i "$tmp/perf.data" --stdio --children --sort symbol --percent-limit 4 -g none \
				>"$PERF_DIR/perf-$mode-$target.children.txt" 2>/dev/null || true
			[ "$target" = gateway ] && settle_gateway
		done
	done
	# Where the whole machine's CPU goes (by command) under closed-loop load.
	for mode in json stream; do
		for target in bare gateway; do
			say "perf: machine-wide $mode closed loop on $target (${secs} s)"
			perf record -q -a -F 499 -o "$tmp/perf-all.data" -- sleep "$secs" >/dev/null 2>&1 &
			PID[perf]=$!
			wrk -t"$THREADS" -c"$CONNS" -d"${secs}s" -s "$tmp/$mode-$target.lua" "${URL[$target]}" | sed -n 's/^BENCHJSON //p' >"$PERF_DIR/perf-all-$mode-$target.wrk.json"
			wait "${PID[perf]}" || true
			unset 'PID[perf]'
			perf report -i "$tmp/perf-all.data" --stdio --no-children --sort comm --percent-limit 0.5 \
				>"$PERF_DIR/perf-all-$mode-$target.comm.txt" 2>/dev/null || true
			[ "$target" = gateway ] && settle_gateway
		done
	done
	# Syscalls per request (perf stat on tracepoints), at 500 req/s and closed loop.
	{
		echo "| body | load | target | write/req | read/req | fsync/req | futex/req |"
		echo "|---|---|---|---:|---:|---:|---:|"
	} >"$PERF_DIR/syscalls.md"
	events=syscalls:sys_enter_write,syscalls:sys_enter_read,syscalls:sys_enter_fsync,syscalls:sys_enter_futex
	for mode in json stream; do
		for load in 500 max; do
			for target in bare gateway; do
				pid=$BARE_PID
				[ "$target" = gateway ] && pid=$GW_PID
				perf stat -x, -e "$events" -p "$pid" -o "$tmp/stat.csv" -- sleep 3.5 >/dev/null 2>&1 &
				PID[perf]=$!
				sleep 0.2
				if [ "$load" = max ]; then
					n=$(wrk -t"$THREADS" -c"$CONNS" -d3s -s "$tmp/$mode-$target.lua" "${URL[$target]}" | sed -n 's/^BENCHJSON //p' | jq .requests)
				else
					n=$("$VEGETA" attack -rate=500/1s -duration=3s -format=http -targets="$tmp/$mode-$target.targets" | "$VEGETA" report -type=json | jq .requests)
				fi
				wait "${PID[perf]}" || true
				unset 'PID[perf]'
				awk -F, -v n="$n" -v m="$mode" -v l="$load" -v t="$target" '
					$3 ~ /sys_enter_/ { split($3, e, "sys_enter_"); c[e[2]] = $1 }
					END { printf "| %s | %s | %s | %.1f | %.1f | %.2f | %.1f |\n", m, l, t, c["write"]/n, c["read"]/n, c["fsync"]/n, c["futex"]/n }' \
					"$tmp/stat.csv" >>"$PERF_DIR/syscalls.md"
				[ "$target" = gateway ] && settle_gateway
			done
		done
	done
	say "perf reports in $PERF_DIR"
fi
# Graceful stop: the gateway flushes its usage queue and logs its publisher
# counters (published to JetStream / spooled to disk / lost).
say "stopping the gateway (graceful: flushes usage events)"
kill "$GW_PID" 2>/dev/null || true
for _ in $(seq 1 200); do kill -0 "$GW_PID" 2>/dev/null || break; sleep 0.2; done
stop_pid gateway
stats=$(grep 'gateway stopped' "$tmp/logs/gateway.log" | tail -1)
usage_pub=$(sed -n 's/.*usage_published=\([0-9]*\).*/\1/p' <<<"$stats"); usage_pub=${usage_pub:-?}
usage_spooled=$(sed -n 's/.*usage_spooled=\([0-9]*\).*/\1/p' <<<"$stats"); usage_spooled=${usage_spooled:-?}
usage_lost=$(sed -n 's/.*usage_lost=\([0-9]*\).*/\1/p' <<<"$stats"); usage_lost=${usage_lost:-?}
# The ingester (in its own process when split, or already stopped with the
# gateway) may still be draining: wait until the row count stops moving.
usage_rows=$(psql -qtAX "$GATEWAY_DATABASE_URL" -c "SELECT count(*) FROM usage_logs" 2>/dev/null || echo "?")
if [ -n "$ING_PID" ]; then
	for _ in $(seq 1 60); do
		[ "$usage_rows" = "$usage_pub" ] && break
		sleep 1
		n=$(psql -qtAX "$GATEWAY_DATABASE_URL" -c "SELECT count(*) FROM usage_logs" 2>/dev/null || echo "?")
		[ "$n" = "$usage_rows" ] && [ "$n" != 0 ] && sleep 2 && n2=$(psql -qtAX "$GATEWAY_DATABASE_URL" -c "SELECT count(*) FROM usage_logs") && [ "$n2" = "$n" ] && break
		usage_rows=$n
	done
	usage_rows=$(psql -qtAX "$GATEWAY_DATABASE_URL" -c "SELECT count(*) FROM usage_logs" 2>/dev/null || echo "?")
	stop_pid ingester
fi
if [ "$usage_spooled" = 0 ]; then spool_note="spooled none to disk"
else spool_note="**spooled $usage_spooled to disk on the request path** (write + fsync each: its in-memory queue was full)"; fi
gw_reqs=$(jq -s 'map(select(.target == "gateway") | .n) | add' "$results")
elapsed=$(( $(date +%s) - started_at ))

# ---------------------------------------------------------------- report
med='def median: sort | if length == 0 then null elif length % 2 == 1 then .[length / 2 | floor] else (.[length / 2 - 1] + .[length / 2]) / 2 end;'
summary=$(jq -s "$med"'
	group_by([.mode, .load, .target]) | map({mode: .[0].mode, load: .[0].load, target: .[0].target, runs: length,
		rps: (map(.rps) | median), p50_ms: (map(.p50_ms) | median), p99_ms: (map(.p99_ms) | median),
		ok: (map(.ok) | min), rss_mb: (map(.rss_mb) | max),
		cpu_us_per_req: (map(.cpu_us_per_req) | if .[0] == null then null else median end),
		box_us_per_req: (map(.box_us_per_req) | median)})' "$results")

table=$(jq -r --arg rates "$RATES" '
	def f(d): if . == null then "–" else (. * pow(10; d) | round / pow(10; d) | tostring) end;
	def order: {"direct": 0, "bare": 1, "gateway": 2, "policies": 3}[.];
	def loadkey: if . == "max" then 1e9 else tonumber end;
	def tlabel: {"direct": "direct (fake provider)", "bare": "bare Go proxy", "gateway": "gateway", "policies": "gateway, 10 policy rules on"}[.];
	"| body | load | target | throughput req/s | p50 ms | p99 ms | ok % | proxy CPU µs/req | machine CPU µs/req | proxy peak RSS MB |",
	"|---|---|---|---:|---:|---:|---:|---:|---:|---:|",
	(sort_by([.mode, (.load | loadkey), (.target | order)])[] |
	 "| \(.mode) | \(if .load == "max" then "closed loop" else "\(.load) req/s" end) | \(.target | tlabel) | \(.rps | f(0)) | \(.p50_ms | f(3)) | \(.p99_ms | f(3)) | \(.ok * 100 | f(1)) | \(.cpu_us_per_req | f(0)) | \(if .load == "max" then (.box_us_per_req | f(0)) else "–" end) | \(if .target == "direct" then "–" else (.rss_mb | f(1)) end) |"),
	(if any(.[]; .target == "policies") then empty
	 else "| json | – | gateway, 10 policy rules on | not measured (BENCH_POLICY_LOADS is empty) | | | | | | |" end)' <<<"$summary")

first_rate=${RATES%% *}
targets_md=$(jq -r --arg r "$first_rate" --argjson hwm "$gw_hwm" '
	def f(d): (. * pow(10; d) | round / pow(10; d) | tostring);
	def get(m; l; t): map(select(.mode == m and .load == l and .target == t))[0];
	def verdict(ok): if ok then "**met**" else "**missed**" end;
	. as $s |
	(["json", "stream"][] as $m |
		($s | get($m; "max"; "gateway").rps / get($m; "max"; "bare").rps) as $ratio |
		"| \($m): gateway / bare proxy closed-loop throughput | ≥ 0.90 | \($ratio | f(2)) | \(verdict($ratio >= 0.9))\(if $ratio < 0.9 then ", short by \((0.9 - $ratio) * 100 | f(0)) points" else "" end) |"),
	(["json", "stream"][] as $m |
		(($s | get($m; $r; "gateway").p50_ms) - ($s | get($m; $r; "bare").p50_ms)) as $d |
		"| \($m): added p50 at \($r) req/s vs bare proxy | ≤ 0.100 ms | \($d | f(3)) ms | \(verdict($d <= 0.1))\(if $d > 0.1 then ", over by \($d - 0.1 | f(3)) ms" else "" end) |"),
	(($hwm / 1024) as $mb | "| gateway peak RSS (VmHWM over the whole run) | ≤ 60 MB | \($mb | f(1)) MB | \(verdict($mb <= 60))\(if $mb > 60 then ", over by \($mb - 60 | f(1)) MB" else "" end) |"),
	($s | get("json"; $r; "policies")) as $p500 | ($s | get("json"; "max"; "policies")) as $pmax |
	(if $p500 != null then
		(($p500.p50_ms - ($s | get("json"; $r; "bare").p50_ms))) as $d |
		(($p500.p50_ms - ($s | get("json"; $r; "gateway").p50_ms))) as $dp |
		"| json, 10 policy rules on: added p50 at \($r) req/s vs bare proxy | ≤ 0.100 ms | \($d | f(3)) ms (rules alone: \($dp | f(3)) ms) | \(verdict($d <= 0.1))\(if $d > 0.1 then ", over by \($d - 0.1 | f(3)) ms" else "" end) |"
	 else empty end),
	(if $pmax != null then
		($pmax.rps / ($s | get("json"; "max"; "bare").rps)) as $ratio |
		"| json, 10 policy rules on: closed-loop throughput / bare proxy | ≥ 0.90 | \($ratio | f(2)) | \(verdict($ratio >= 0.9))\(if $ratio < 0.9 then ", short by \((0.9 - $ratio) * 100 | f(0)) points" else "" end) |"
	 else empty end),
	(if $p500 == null and $pmax == null then "| 10 policy rules on | same goals | – | not measured (BENCH_POLICY_LOADS is empty) |" else empty end)' <<<"$summary")

overrides=$(env | grep '^BENCH_' | sort | tr '\n' ' ' | sed 's/ $//' || true)
machine="- command: \`make bench\`$([ -z "$overrides" ] || printf ' with %s' "$overrides")
- date: $(date -u '+%Y-%m-%d %H:%M UTC'); commit: $(git rev-parse --short HEAD 2>/dev/null || echo '?')$(git diff --quiet HEAD -- services proto 2>/dev/null || echo ' + uncommitted changes under services/')
- CPU: $(nproc) cores ($(sed -n 's/^model name\s*: //p' /proc/cpuinfo | head -1)); memory: $(free -g | awk '/^Mem:/ {print $2 " GiB total, " $7 " GiB available"}')
- $(go version)
- load average (1/5/15 min) before the rounds: $load_before; after: $load_after
- load generators: vegeta $VEGETA_VERSION (fixed rate, $RATE_DUR per run), wrk $(wrk -v 2>&1 | sed -n 's/^wrk \([^ ]*\).*/\1/p' | head -1) (closed loop, -t$THREADS -c$CONNS, $CLOSED_DUR per run); $REPEATS rounds, medians; targets rotated each round
- all on one machine: load generator, fake provider, proxies, Postgres, NATS share the $(nproc) cores
- gateway: APP_ENV=dev$([ ${#GATEWAY_ENV[@]} -eq 0 ] || printf ', %s' "${GATEWAY_ENV[@]}"), $(if [ -n "$ING_PID" ]; then printf 'split layout: the proxy process (GATEWAY_ROLE=proxy) publishes usage, a second gateway process (GATEWAY_ROLE=ingester) on the same machine consumes it (ingester VmHWM %s MB; its CPU counts in the machine column, not the proxy column)' "$(awk "BEGIN {printf \"%.1f\", $ing_hwm/1024}")"; else printf 'usage publisher + ingester in the gateway process'; fi); gateway VmHWM $(awk "BEGIN {printf \"%.1f\", $gw_hwm/1024}") MB, VmRSS at the end $(awk "BEGIN {printf \"%.1f\", $gw_rss_idle/1024}") MB; benchproxy VmHWM $(awk "BEGIN {printf \"%.1f\", $bare_hwm/1024}") MB
- usage events: $gw_reqs gateway requests in the measured runs (plus warm-up); the publisher sent $usage_pub to JetStream from its queue, $spool_note, lost $usage_lost; $usage_rows rows ingested into usage_logs by the end
- wall time of the whole run: ${elapsed} s"

report="## Results of the last \`make bench\`

$machine

$table

Throughput, p50 and p99 are medians over the rounds; ok % is the worst round. *proxy CPU µs/req* is the user+system CPU of the
proxy process (benchproxy or gateway, including the gateway's publisher and ingester goroutines) per request; *machine CPU
µs/req* (closed loop only, where the machine is saturated) is the busy CPU of the whole machine per request: load generator,
fake provider, proxy, NATS, Postgres, and anything else running (see the load average); *proxy peak RSS*
is the highest VmRSS sampled every 100 ms during the runs. *10 policy rules on* is the gateway with a key of a second tenant
that has 10 rules (secrets, PII redact, prompt injection, 2 keyword, 2 regex, model allowlist, max size, PII on responses),
none matching the body.

### Targets

| target | goal | measured | verdict |
|---|---|---|---|
$targets_md"

printf '\n%s\n' "$report"

if [ -n "$OUT" ]; then
	mkdir -p "$(dirname "$OUT")"
	begin='<!-- bench:begin (written by scripts/bench.sh; edits inside are overwritten) -->'
	end='<!-- bench:end -->'
	if [ ! -f "$OUT" ] || ! grep -q '^<!-- bench:begin' "$OUT"; then
		{ [ -f "$OUT" ] && cat "$OUT" || printf '# Benchmarks\n\nRun with `make bench`.\n'; printf '\n%s\n%s\n' "$begin" "$end"; } >"$tmp/out.md"
		cp "$tmp/out.md" "$OUT"
	fi
	printf '%s\n' "$report" >"$tmp/report.md"
	awk -v rep="$tmp/report.md" -v begin="$begin" '
		/^<!-- bench:begin/ { print begin; while ((getline l < rep) > 0) print l; skip = 1; next }
		/^<!-- bench:end -->/ { skip = 0 }
		!skip { print }' "$OUT" >"$tmp/out.md"
	cp "$tmp/out.md" "$OUT"
	say "wrote $OUT"
fi
say "done in ${elapsed} s"
[ "${BENCH_ANALYTICS:-1}" = 0 ] || BENCH_ANALYTICS_OUT=${BENCH_ANALYTICS_OUT-$OUT} scripts/bench-analytics.sh || say "scripts/bench-analytics.sh failed (exit $?)"
