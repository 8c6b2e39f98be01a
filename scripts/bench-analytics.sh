#!/usr/bin/env bash
# Analytics and ingestion benchmarks of the gateway (docs/benchmarks.md,
# section "Analytics and ingestion"):
#
# 1. Ingestion: BenchmarkIngest (services/gateway/internal/usage/
#    ingest_bench_test.go) publishes N realistic usage events to a fresh
#    JetStream stream and times one usage.Ingester draining them into a fresh
#    database, for a few ingester batch sizes, with the stream pre-filled and
#    with publishing running concurrently. Target: ≥ 20 000 events/s.
# 2. Analytics SQL: creates the database trueport_bench_analytics, applies the
#    gateway migrations (the "-- +goose Up" sections, with psql), generates
#    BENCH_ANALYTICS_ROWS (10 M) usage_logs rows over 30 days for one big
#    tenant plus noise tenants, builds usage_rollups_hourly from them in bulk
#    (one INSERT … SELECT … GROUP BY; in production the ingester maintains the
#    rollups incrementally), VACUUM ANALYZE, then times the exact SQL the
#    handlers run (internal/httpapi/stats.go and logs.go) as prepared
#    statements (pgx prepares and caches its statements the same way), each
#    scenario BENCH_ANALYTICS_RUNS (20) times in one session: p50 and max.
#    Targets: GET /analytics/stats over 30 days ≤ 200 ms (its 4 queries),
#    GET /analytics/logs, offset 0, with a filter ≤ 50 ms (count + page).
#
# Needs Postgres and NATS JetStream on 127.0.0.1 (as make test), psql, go.
#
# Environment (defaults in brackets):
#   BENCH_ANALYTICS_ROWS      usage_logs rows to generate [10000000]
#   BENCH_ANALYTICS_BIG_SHARE share of the rows that belong to the big tenant [0.7]
#   BENCH_ANALYTICS_TENANTS   noise tenants [200]
#   BENCH_ANALYTICS_KEYS      API keys of the big tenant (2 of them development) [20]
#   BENCH_ANALYTICS_RUNS      executions of every timed scenario [20]
#   BENCH_ANALYTICS_KEEP      1: keep the database afterwards [0]
#   BENCH_ANALYTICS_PLANS     a directory for every EXPLAIN ANALYZE [none: temp]
#   BENCH_ANALYTICS_PGURL     server URL without database [postgres://postgres@127.0.0.1:5432]
#   BENCH_ANALYTICS_INGEST    0: skip the ingestion benchmark [1]
#   INGEST_BENCH_EVENTS       events per ingestion run [200000]
#   INGEST_BENCH_BATCHES      ingester batch sizes, pre-filled stream ["250 1000 4000"]
#   INGEST_BENCH_CONCURRENT_BATCHES  batch sizes with concurrent publishing ["1000"]
#   BENCH_ANALYTICS_OUT       markdown file whose bench-analytics:begin/end block is
#                             rewritten [docs/benchmarks.md]; empty: stdout only
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD

ROWS=${BENCH_ANALYTICS_ROWS:-10000000}
BIG_SHARE=${BENCH_ANALYTICS_BIG_SHARE:-0.7}
NOISE=${BENCH_ANALYTICS_TENANTS:-200}
BIG_KEYS=${BENCH_ANALYTICS_KEYS:-20}
RUNS=${BENCH_ANALYTICS_RUNS:-20}
KEEP=${BENCH_ANALYTICS_KEEP:-0}
PGURL=${BENCH_ANALYTICS_PGURL:-postgres://postgres@127.0.0.1:5432}
DO_INGEST=${BENCH_ANALYTICS_INGEST:-1}
INGEST_EVENTS=${INGEST_BENCH_EVENTS:-200000}
INGEST_BATCHES=${INGEST_BENCH_BATCHES:-"250 1000 4000"}
INGEST_CONC_BATCHES=${INGEST_BENCH_CONCURRENT_BATCHES:-1000}
OUT=${BENCH_ANALYTICS_OUT-docs/benchmarks.md}
DB=trueport_bench_analytics
DBURL="$PGURL/$DB?sslmode=disable"
ADMIN="$PGURL/postgres?sslmode=disable"
DAYS=30
CHUNK=500000

say() { printf '[bench-analytics %s] %s\n' "$(date +%H:%M:%S)" "$*" >&2; }
die() { say "error: $*"; exit 1; }
command -v psql >/dev/null || die "psql is required (apt-get install -y postgresql-client)"
command -v go >/dev/null || die "go is required"
[ "$BIG_KEYS" -ge 3 ] || die "BENCH_ANALYTICS_KEYS must be at least 3"
started=$(date +%s)
tmp=$(mktemp -d "${TMPDIR:-/tmp}/trueport-bench-analytics.XXXXXX")
PLANS=${BENCH_ANALYTICS_PLANS:-$tmp/plans}
mkdir -p "$PLANS"
declare -a BG=()
cleanup() {
	local rc=$?
	trap - EXIT INT TERM
	for p in "${BG[@]}"; do kill "$p" 2>/dev/null || true; done
	if [ "$KEEP" != 1 ]; then
		psql -qX "$ADMIN" -c "DROP DATABASE IF EXISTS $DB WITH (FORCE)" >/dev/null 2>&1 || true
	fi
	[ "$rc" = 0 ] || say "failed (exit $rc)"
	rm -rf "$tmp"
	exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM
q() { psql -qtAX -v ON_ERROR_STOP=1 "$DBURL" "$@"; }
ms_since() { echo $(( ($(date +%s%N) - $1) / 1000000 )); }
load_before=$(cut -d' ' -f1-3 /proc/loadavg)

# ------------------------------------------------------------ 1. ingestion
ingest_md="(not run: BENCH_ANALYTICS_INGEST=0)"
if [ "$DO_INGEST" != 0 ]; then
	runbench() { # modes batches
		(cd services/gateway && INGEST_BENCH_EVENTS=$INGEST_EVENTS INGEST_BENCH_MODES=$1 INGEST_BENCH_BATCHES=$2 \
			go test ./internal/usage -run '^$' -bench '^BenchmarkIngest$' -benchtime=1x -timeout 60m -v) >>"$tmp/ingest.txt" 2>&1 \
			|| { tail -30 "$tmp/ingest.txt" >&2; die "BenchmarkIngest failed"; }
	}
	say "ingestion: $INGEST_EVENTS events per run, pre-filled stream, batch sizes: $INGEST_BATCHES"
	runbench prefilled "$INGEST_BATCHES"
	say "ingestion: concurrent publishing, batch sizes: $INGEST_CONC_BATCHES"
	runbench concurrent "$INGEST_CONC_BATCHES"
	grep -E 'events in|events:' "$tmp/ingest.txt" | sed 's/^ *ingest_bench_test.go:[0-9]*: /  /' >&2
	# "BenchmarkIngest/prefilled/batch=1000-2  1  123 ns/op  8000 events/s  ..." -> one table row per run
	ingest_rows=$(awk '/^BenchmarkIngest\// {
			split($1, p, "/"); mode = p[2]; b = p[3]; sub(/-[0-9]+$/, "", b); sub(/batch=/, "", b)
			delete m; for (i = 4; i < NF; i += 2) m[$(i + 1)] = $i
			printf "| %s | %s | %.1f | **%.0f** | %.0f | %.1f | %.1f | %.1f | %.1f |\n", mode, b, $3 / 1e9, m["events/s"], m["publish_events/s"],
				m["ingester_cpu_us/event"], m["postgres_cpu_us/event"], m["nats_cpu_us/event"], m["machine_cpu_us/event"]
		}' "$tmp/ingest.txt")
	best=$(awk '/^BenchmarkIngest\/prefilled/ { for (i = 4; i < NF; i += 2) if ($(i + 1) == "events/s" && $i > best) { best = $i; name = $1 } }
		END { sub(/^BenchmarkIngest\/prefilled\/batch=/, "", name); sub(/-[0-9]+$/, "", name); printf "%s %.0f", name, best }' "$tmp/ingest.txt")
	conc=$(awk '/^BenchmarkIngest\/concurrent/ { for (i = 4; i < NF; i += 2) if ($(i + 1) == "events/s") v = $i } END { printf "%.0f", v }' "$tmp/ingest.txt")
	evinfo=$(sed -n 's/.*events: \([0-9]*\), \([0-9]*\) bytes on average, \([0-9]*\) violations (\([0-9.]*\)% .*/\2 bytes of JSON on average, \4 % of them with violations (\3 violations)/p' "$tmp/ingest.txt" | head -1)
	ingest_md="| stream | batch | wall s | events/s | publish events/s | ingester CPU µs/event | Postgres CPU µs/event | nats-server CPU µs/event | machine CPU µs/event |
|---|---:|---:|---:|---:|---:|---:|---:|---:|
$ingest_rows

Each run: $INGEST_EVENTS events, $evinfo; a fresh database and stream. Best pre-filled batch size: ${best% *}
(${best#* } events/s); with concurrent publishing: $conc events/s. Target ≥ 20 000 events/s:
$(awk -v b="${best#* }" -v c="$conc" 'BEGIN { if (b >= 20000 && c >= 20000) print "**met**"; else printf "**missed**: best %.0f%% of the target pre-filled, %.0f%% concurrent", 100 * b / 20000, 100 * c / 20000 }')."
fi

# ------------------------------------------------------------ 2. analytics database
say "creating $DB and applying the gateway migrations (goose Up sections)"
psql -qX -v ON_ERROR_STOP=1 "$ADMIN" -c "DROP DATABASE IF EXISTS $DB WITH (FORCE)" -c "CREATE DATABASE $DB" >/dev/null
for f in services/gateway/internal/migrations/*.sql; do
	grep -q '^-- +goose StatementBegin' "$f" && die "$f uses StatementBegin: extend this script"
	sed -n '/^-- +goose Up/,/^-- +goose Down/p' "$f" | q >/dev/null
done

# The migrations' indexes and unique constraints of usage_logs are dropped for
# the bulk load and recreated afterwards from their own definitions (building
# an index once is far faster than 10 M random inserts into five of them).
recreate=$(q -c "SELECT format('ALTER TABLE usage_logs ADD CONSTRAINT %I %s;', conname, pg_get_constraintdef(oid)) FROM pg_constraint
		WHERE conrelid = 'usage_logs'::regclass AND contype IN ('p', 'u')
	UNION ALL SELECT pg_get_indexdef(indexrelid) || ';' FROM pg_index i WHERE indrelid = 'usage_logs'::regclass
		AND NOT EXISTS (SELECT 1 FROM pg_constraint c WHERE c.conindid = i.indexrelid)")
index_defs_before=$(q -c "SELECT indexdef FROM pg_indexes WHERE tablename = 'usage_logs' ORDER BY indexname")
q -c "SELECT format('ALTER TABLE usage_logs DROP CONSTRAINT %I;', conname) FROM pg_constraint
		WHERE conrelid = 'usage_logs'::regclass AND contype IN ('p', 'u')
	UNION ALL SELECT format('DROP INDEX %I;', c.relname) FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid
		WHERE indrelid = 'usage_logs'::regclass AND NOT EXISTS (SELECT 1 FROM pg_constraint k WHERE k.conindid = i.indexrelid)" | q >/dev/null

BIG_TENANT=$(q -c "SELECT md5('trueport-bench-big-tenant')::uuid")
T_END=$(date -u +%Y-%m-%dT%H:%M:%SZ)
T_START=$(date -u -d "$T_END - $DAYS days" +%Y-%m-%dT%H:%M:%SZ)
# Rows are generated in created_at order (as the ingester writes them) over
# [T_START, T_END); the random draws live in the inner subquery, which
# Postgres does not flatten (volatile target list), so each is drawn once.
# Tenant: big with BIG_SHARE, else one of NOISE; key: one of BIG_KEYS (the
# last 2 in env development) or of 3 for noise tenants; model mix, status mix
# (1% blocked by policy, 1% flagged/redacted, 2% 429, 1% 5xx, 0.5% client
# closed), 30% streams (embeddings, model 4, never stream nor have
# completion tokens), lognormal latency (median 700 ms), token counts
# (NULL for errors and for 5% of streams), cost from list prices.
gen_sql() { # lo hi
	cat <<SQL
SET synchronous_commit = off; SET TimeZone = 'UTC';
INSERT INTO usage_logs (request_id, created_at, tenant_id, env, key_id, key_name, provider, model, path, status_code, stream,
	latency_ms, ttfb_ms, prompt_tokens, completion_tokens, total_tokens, cached_tokens, cost_usd, outcome, error, violation_ids, ingested_at)
SELECT md5('req' || g), ts, tenant, env, md5(tenant::text || '-key-' || k)::uuid, 'key-' || k,
	(ARRAY['openai','openai','openai','openai','anthropic','anthropic','google','azure'])[mi],
	(ARRAY['gpt-4o-mini','gpt-4o','gpt-4.1-mini','text-embedding-3-small','claude-3-5-sonnet-20241022','claude-3-5-haiku-20241022','gemini-1.5-flash','gpt-4o'])[mi],
	(ARRAY['/chat/completions','/chat/completions','/chat/completions','/embeddings','/messages','/messages','/models/gemini-1.5-flash:generateContent','/chat/completions'])[mi],
	status, stream, lat, CASE WHEN status IN (200, 499) THEN CASE WHEN stream THEN lat * (0.1 + 0.2 * r_tt) ELSE lat END END,
	pt, ct, pt + ct, ca,
	((pt - ca) * (ARRAY[0.15,2.5,0.4,0.02,3,0.8,0.075,2.5])[mi] + ca * (ARRAY[0.15,2.5,0.4,0.02,3,0.8,0.075,2.5])[mi] / 2
		+ ct * (ARRAY[0.6,10,1.6,0,15,4,0.3,10])[mi]) / 1e6,
	outcome, CASE status WHEN 400 THEN 'request blocked by policy' WHEN 429 THEN 'upstream rate limit exceeded' ELSE
		CASE WHEN status >= 500 THEN 'upstream error' ELSE '' END END,
	CASE WHEN outcome IN ('blocked', 'flagged', 'redacted') THEN ARRAY[gen_random_uuid()::text] ELSE '{}' END,
	ts + interval '1 second'
FROM (
	SELECT *, CASE WHEN status = 200 AND NOT (stream AND r_u < 0.05) THEN 20 + floor(-ln(1 - r_p) * 900)::bigint END AS pt,
		CASE WHEN status = 200 AND NOT (stream AND r_u < 0.05) THEN CASE WHEN mi = 4 THEN 0 ELSE 5 + floor(-ln(1 - r_c) * 250)::bigint END END AS ct,
		CASE WHEN status = 200 AND NOT (stream AND r_u < 0.05) THEN CASE WHEN r_ca < 0.25 THEN (20 + floor(-ln(1 - r_p) * 900)::bigint) / 2 ELSE 0 END END AS ca,
		CASE WHEN status = 400 THEN 0.2 + r_tt ELSE round((exp(ln(700) + 0.8 * sqrt(-2 * ln(1 - u1)) * cos(2 * pi() * u2))
			/ CASE WHEN status = 429 THEN 10 ELSE 1 END)::numeric, 3)::float8 END AS lat
	FROM (
		SELECT *, stream0 AND NOT (r_m >= 0.60 AND r_m < 0.65) AS stream, CASE WHEN big THEN '$BIG_TENANT'::uuid ELSE md5('trueport-bench-noise-' || floor((r_t - $BIG_SHARE) / (1 - $BIG_SHARE) * $NOISE))::uuid END AS tenant,
			CASE WHEN big AND k >= $BIG_KEYS - 2 THEN 'development' ELSE 'production' END AS env,
			CASE WHEN r_m < 0.35 THEN 1 WHEN r_m < 0.50 THEN 2 WHEN r_m < 0.60 THEN 3 WHEN r_m < 0.65 THEN 4
				WHEN r_m < 0.77 THEN 5 WHEN r_m < 0.85 THEN 6 WHEN r_m < 0.93 THEN 7 ELSE 8 END AS mi,
			CASE WHEN r_s < 0.01 THEN 400 WHEN r_s < 0.04 AND r_s >= 0.02 THEN 429
				WHEN r_s < 0.05 AND r_s >= 0.04 THEN (ARRAY[500,502,503,504])[1 + floor(r_o * 4)::int] WHEN r_s < 0.055 AND r_s >= 0.05 THEN 499 ELSE 200 END AS status,
			CASE WHEN r_s < 0.01 THEN 'blocked' WHEN r_s < 0.02 THEN CASE WHEN r_o < 0.5 THEN 'flagged' ELSE 'redacted' END
				WHEN r_s < 0.05 THEN 'error' WHEN r_s < 0.055 THEN 'client_closed' ELSE 'ok' END AS outcome
		FROM (
			SELECT g, r_t < $BIG_SHARE AS big, floor(r_k * CASE WHEN r_t < $BIG_SHARE THEN $BIG_KEYS ELSE 3 END)::int AS k, ts,
				r_t, r_m, r_s, r_o, r_p, r_c, r_ca, r_u, r_tt, u1, u2, r_str < 0.3 AS stream0
			FROM (
				SELECT g, timestamptz '$T_START' + (g - 1) * (interval '$DAYS days' / $ROWS) AS ts,
					random() r_t, random() r_k, random() r_m, random() r_s, random() r_o, random() r_p, random() r_c,
					random() r_ca, random() r_u, random() r_tt, random() u1, random() u2, random() r_str
				FROM generate_series($1::bigint, $2::bigint) g
			) draws
		) a
	) b
) c;
SQL
}
say "generating $ROWS usage_logs rows ($(nproc) parallel sessions, chunks of $CHUNK, big tenant $BIG_TENANT)"
t0=$(date +%s%N)
workers=$(nproc)
for w in $(seq 0 $((workers - 1))); do
	(
		lo=$((w * CHUNK + 1))
		while [ "$lo" -le "$ROWS" ]; do
			hi=$((lo + CHUNK - 1)); [ "$hi" -le "$ROWS" ] || hi=$ROWS
			gen_sql "$lo" "$hi" | q >/dev/null
			lo=$((lo + workers * CHUNK))
		done
	) &
	BG+=($!)
done
for p in "${BG[@]}"; do wait "$p" || die "row generation failed"; done
BG=()
gen_ms=$(ms_since "$t0")
say "  rows inserted in $((gen_ms / 1000)) s; rebuilding the usage_logs indexes"
t0=$(date +%s%N)
{ echo "SET maintenance_work_mem = '1GB';"; echo "$recreate"; } | q >/dev/null
idx_ms=$(ms_since "$t0")
[ "$(q -c "SELECT indexdef FROM pg_indexes WHERE tablename = 'usage_logs' ORDER BY indexname")" = "$index_defs_before" ] \
	|| die "the recreated usage_logs indexes differ from the migrations'"

say "  indexes rebuilt in $((idx_ms / 1000)) s; building usage_rollups_hourly in bulk"
bounds=$(sed -n 's/^var LatencyBounds = \[\]float64{\(.*\)}$/\1/p' services/gateway/internal/usage/rollup.go | tr -d ' ')
[ -n "$bounds" ] || die "cannot read LatencyBounds from internal/usage/rollup.go"
IFS=, read -r -a B <<<"$bounds"
hist="count(*) FILTER (WHERE latency_ms <= ${B[0]})"
for ((i = 1; i < ${#B[@]}; i++)); do hist+=", count(*) FILTER (WHERE latency_ms > ${B[i - 1]} AND latency_ms <= ${B[i]})"; done
hist+=", count(*) FILTER (WHERE latency_ms > ${B[${#B[@]} - 1]})"
t0=$(date +%s%N)
# Same arithmetic as usage.aggregate: errors = status >= 400 or outcome error,
# unknown usage = total_tokens NULL, hourly UTC buckets, NULL key -> zero uuid.
q <<SQL >/dev/null
SET TimeZone = 'UTC'; SET work_mem = '512MB'; SET synchronous_commit = off;
INSERT INTO usage_rollups_hourly (tenant_id, env, bucket, provider, model, key_id, status_code, requests, errors, unknown_usage,
	prompt_tokens, completion_tokens, total_tokens, cost_usd, latency_sum_ms, latency_hist)
SELECT tenant_id, env, date_trunc('hour', created_at), provider, model, COALESCE(key_id, '00000000-0000-0000-0000-000000000000'), status_code,
	count(*), count(*) FILTER (WHERE status_code >= 400 OR outcome = 'error'), count(*) FILTER (WHERE total_tokens IS NULL),
	COALESCE(sum(prompt_tokens), 0), COALESCE(sum(completion_tokens), 0), COALESCE(sum(total_tokens), 0), COALESCE(sum(cost_usd), 0),
	sum(latency_ms), ARRAY[$hist]::bigint[]
FROM usage_logs GROUP BY 1, 2, 3, 4, 5, 6, 7;
SQL
rollup_ms=$(ms_since "$t0")
say "  rollups built in $((rollup_ms / 1000)) s; VACUUM ANALYZE"
t0=$(date +%s%N)
q -c "VACUUM ANALYZE usage_logs" -c "VACUUM ANALYZE usage_rollups_hourly" >/dev/null
vac_ms=$(ms_since "$t0")

IFS='|' read -r n_logs n_big n_big_prod <<<"$(q -c "SELECT count(*), count(*) FILTER (WHERE tenant_id = '$BIG_TENANT'),
	count(*) FILTER (WHERE tenant_id = '$BIG_TENANT' AND env = 'production') FROM usage_logs")"
IFS='|' read -r n_roll n_roll_big n_roll_sum <<<"$(q -c "SELECT count(*), count(*) FILTER (WHERE tenant_id = '$BIG_TENANT' AND env = 'production'),
	sum(requests) FROM usage_rollups_hourly")"
[ "$n_roll_sum" = "$n_logs" ] || die "rollups count $n_roll_sum requests for $n_logs rows"
IFS='|' read -r sz_logs sz_logs_idx sz_roll <<<"$(q -c "SELECT pg_size_pretty(pg_table_size('usage_logs')), pg_size_pretty(pg_indexes_size('usage_logs')),
	pg_size_pretty(pg_total_relation_size('usage_rollups_hourly'))")"
KEY1=$(q -c "SELECT md5('$BIG_TENANT' || '-key-' || 0)::uuid")
n_key=$(q -c "SELECT count(*) FROM usage_logs WHERE tenant_id = '$BIG_TENANT' AND env = 'production' AND key_id = '$KEY1'")
gen_total=$(( (gen_ms + idx_ms + rollup_ms + vac_ms) / 1000 ))
say "  $n_logs rows ($n_big_prod of the big tenant in production), $n_roll rollup rows ($n_roll_big of the big tenant); data ready in ${gen_total} s"

# ------------------------------------------------------------ 3. timed queries
NOW=$(date -u +%Y-%m-%dT%H:%M:%SZ)
FROM30=$(date -u -d "$NOW - 30 days" +%Y-%m-%dT%H:%M:%SZ)
FROM24=$(date -u -d "$NOW - 24 hours" +%Y-%m-%dT%H:%M:%SZ)
W_STATS="tenant_id = \$1::uuid AND env = \$2 AND bucket >= date_trunc('hour', \$3::timestamptz) AND bucket < \$4"
LOG_COLS="id::text, request_id, created_at, key_id::text, key_name, env, provider, model, path, status_code, stream,
		latency_ms, ttfb_ms, prompt_tokens, completion_tokens, total_tokens, cached_tokens, cost_usd, outcome, error, violation_ids, request_body, response_body"
# Copied from internal/httpapi/stats.go (interval=day: the default over 48 h; group_by=model: the default).
declare -A SQLQ=(
	[stats_totals]="SELECT COALESCE(sum(requests),0), COALESCE(sum(errors),0), COALESCE(sum(unknown_usage),0), COALESCE(sum(prompt_tokens),0),
		COALESCE(sum(completion_tokens),0), COALESCE(sum(total_tokens),0), COALESCE(sum(cost_usd),0), COALESCE(sum(latency_sum_ms),0)
		FROM usage_rollups_hourly WHERE $W_STATS"
	[stats_hist]="SELECT h.i, sum(h.v) FROM usage_rollups_hourly, unnest(latency_hist) WITH ORDINALITY AS h(v, i)
		WHERE $W_STATS GROUP BY h.i"
	[stats_series]="SELECT date_trunc('day', bucket), sum(requests), sum(errors), sum(total_tokens), sum(cost_usd)
		FROM usage_rollups_hourly WHERE $W_STATS GROUP BY 1 ORDER BY 1"
	[stats_breakdown]="SELECT model, sum(requests), sum(total_tokens), sum(cost_usd)
		FROM usage_rollups_hourly WHERE $W_STATS GROUP BY 1 ORDER BY 2 DESC, 1 LIMIT 200"
)
# Logs scenarios (internal/httpapi/logs.go): "name|description|WHERE after tenant and env|args after tenant and env"; limit 50 offset 0.
LOG_SCENARIOS=(
	"none|no filter (the default page)||"
	"model|model=gpt-4o|model = \$3|'gpt-4o'"
	"status5xx|status=5xx|status_code >= \$3 AND status_code < \$4|500, 600"
	"key|key_id=<one of $BIG_KEYS keys>|key_id = \$3::uuid|'$KEY1'"
	"model24h|from=now-24h, model=gpt-4o|created_at >= \$3 AND model = \$4|'$FROM24', 'gpt-4o'"
)
TARGS="'$BIG_TENANT', 'production'"
# timed name psql-prepares psql-executes-per-iteration: runs the iteration RUNS
# times in one session, then EXPLAIN (ANALYZE, BUFFERS) of every statement
# into $PLANS/name.<statement>.txt; prints "p50_ms max_ms first_ms" of the
# per-iteration sum and writes per-statement figures to $tmp/name.stmts.
timed() {
	local name=$1 prep=$2 exec=$3 f=$tmp/$1
	{
		echo "SET TimeZone = 'UTC';"
		printf '%s\n' "$prep"
		echo '\o /dev/null'
		echo '\timing on'
		for i in $(seq 1 "$RUNS"); do echo "\\echo @@ $i"; printf '%s\n' "$exec"; done
	} >"$f.sql"
	q -f "$f.sql" >"$f.out"
	# per iteration: the sum of its statements' times, and every statement's own
	awk '/^@@/ { it = $2; k = 0; next } /^Time:/ { k++; t[it] += $2; s[k] = s[k] " " $2 }
		END { for (i = 1; i in t; i++) print t[i] > "/dev/stderr"; for (j = 1; j in s; j++) print s[j] }' "$f.out" 2>"$f.iter" >"$f.stmts"
	sort -n "$f.iter" | awk -v first="$(head -1 "$f.iter")" '{ v[NR] = $1 } END { printf "%.1f %.1f %.1f\n", v[int((NR + 1) / 2)], v[NR], first }'
}
p50max() { tr ' ' '\n' | sed '/^$/d' | sort -n | awk '{ v[NR] = $1 } END { printf "%.1f|%.1f", v[int((NR + 1) / 2)], v[NR] }'; }
explain() { # name stmt-name prepare execute: EXPLAIN (ANALYZE, BUFFERS) of the 6th execution in a session
	# (past the 5 custom plans: what a long-lived pgx connection runs)
	printf "SET TimeZone = 'UTC';\n%s;\n\\o /dev/null\n%s;\n%s;\n%s;\n%s;\n%s;\n\\o\nEXPLAIN (ANALYZE, BUFFERS) %s;\n" \
		"$3" "$4" "$4" "$4" "$4" "$4" "$4" >"$tmp/explain.sql"
	psql -qX -v ON_ERROR_STOP=1 "$DBURL" -f "$tmp/explain.sql" </dev/null >"$PLANS/$1.$2.txt"
}

say "timing the stats queries over $FROM30 .. $NOW ($RUNS runs)"
prep="" exec=""
for s in stats_totals stats_hist stats_series stats_breakdown; do
	prep+="PREPARE $s AS ${SQLQ[$s]};"$'\n'
	exec+="EXECUTE $s($TARGS, '$FROM30', '$NOW');"$'\n'
done
read -r st_p50 st_max st_first <<<"$(timed stats "$prep" "$exec")"
declare -A STMT_P50=() STMT_MAX=()
STATS=(stats_totals stats_hist stats_series stats_breakdown)
mapfile -t lines <"$tmp/stats.stmts"
for i in "${!STATS[@]}"; do
	s=${STATS[i]}
	IFS='|' read -r STMT_P50[$s] STMT_MAX[$s] <<<"$(p50max <<<"${lines[i]}")"
	explain stats "$s" "PREPARE $s AS ${SQLQ[$s]}" "EXECUTE $s($TARGS, '$FROM30', '$NOW')"
done
stats_rows="| stats, 30 days, interval=day, group_by=model: the 4 queries | **$st_p50** | $st_max | $st_first |"
for s in stats_totals stats_hist stats_series stats_breakdown; do
	stats_rows+=$'\n'"| &nbsp;&nbsp;${s#stats_} | ${STMT_P50[$s]} | ${STMT_MAX[$s]} | |"
done
slow_stats=$(for s in stats_totals stats_hist stats_series stats_breakdown; do echo "${STMT_P50[$s]} $s"; done | sort -rn | head -1 | cut -d' ' -f2)

logs_rows="" worst_logs=0 worst_logs_name=""
declare -A LOG_P50=()
for sc in "${LOG_SCENARIOS[@]}"; do
	IFS='|' read -r name desc cond args <<<"$sc"
	where="tenant_id = \$1::uuid AND env = \$2${cond:+ AND $cond}"
	nargs=$(( 2 + $({ grep -o '\$[0-9]' <<<"$cond" || true; } | sort -u | wc -l) ))
	cnt="SELECT count(*) FROM usage_logs WHERE $where"
	page="SELECT $LOG_COLS
		FROM usage_logs WHERE $where ORDER BY created_at DESC, id DESC LIMIT \$$((nargs + 1)) OFFSET \$$((nargs + 2))"
	a="$TARGS${args:+, $args}"
	say "timing logs ($desc, $RUNS runs)"
	read -r p50 mx first <<<"$(timed "logs_$name" "PREPARE c_$name AS $cnt;"$'\n'"PREPARE p_$name AS $page;" \
		"EXECUTE c_$name($a);"$'\n'"EXECUTE p_$name($a, 50, 0);")"
	{ read -r cl; read -r pl; } <"$tmp/logs_$name.stmts"
	IFS='|' read -r c50 cmax <<<"$(p50max <<<"$cl")"
	IFS='|' read -r pg50 pgmax <<<"$(p50max <<<"$pl")"
	matched=$(q -c "PREPARE m AS $cnt" -c "EXECUTE m($a)" </dev/null)
	explain "logs_$name" count "PREPARE c_$name AS $cnt" "EXECUTE c_$name($a)"
	explain "logs_$name" page "PREPARE p_$name AS $page" "EXECUTE p_$name($a, 50, 0)"
	logs_rows+="| logs, $desc ($matched matching rows): count + page | **$p50** | $mx | $first |"$'\n'
	logs_rows+="| &nbsp;&nbsp;count(*) | $c50 | $cmax | |"$'\n'"| &nbsp;&nbsp;page (limit 50) | $pg50 | $pgmax | |"$'\n'
	LOG_P50[$name]=$p50
	if awk -v a="$p50" -v b="$worst_logs" 'BEGIN { exit !(a > b) }' && [ "$name" != none ]; then worst_logs=$p50; worst_logs_name=$name; fi
done
logs_rows=${logs_rows%$'\n'}
verdict() { awk -v v="$1" -v t="$2" 'BEGIN { if (v <= t) print "**met**"; else printf "**missed** by %.0f ms (%.1f×)", v - t, v / t }'; }
load_after=$(cut -d' ' -f1-3 /proc/loadavg)
elapsed=$(( $(date +%s) - started ))

plan_of() { sed 's/^/    /' "$PLANS/$1.txt"; }
report="## Results of the last \`scripts/bench-analytics.sh\`

- command: \`scripts/bench-analytics.sh\`$(env | grep -E '^(BENCH_ANALYTICS|INGEST_BENCH)_' | sort | tr '\n' ' ' | sed 's/ $//; s/^./ with &/')
- date: $(date -u '+%Y-%m-%d %H:%M UTC'); commit: $(git rev-parse --short HEAD 2>/dev/null || echo '?')$(git diff --quiet HEAD -- services 2>/dev/null || echo ' + uncommitted changes under services/')
- machine: $(nproc) cores ($(sed -n 's/^model name\s*: //p' /proc/cpuinfo | head -1)), $(free -g | awk '/^Mem:/ {print $2 " GiB"}') memory; $(go version | cut -d' ' -f3); $(q -c 'SHOW server_version' | cut -d' ' -f1 | sed 's/^/PostgreSQL /') (shared_buffers $(q -c 'SHOW shared_buffers'), work_mem $(q -c 'SHOW work_mem'), jit $(q -c 'SHOW jit')); $(nats-server --version 2>/dev/null || echo nats-server)
- load average (1/5/15 min) at the start: $load_before; at the end: $load_after
- wall time of the whole script: ${elapsed} s

### Ingestion (JetStream → Postgres, one ingester)

$ingest_md

### Analytics queries

Data: $n_logs usage_logs rows over $DAYS days ($T_START .. $T_END), $n_big_prod of them of the big tenant in production
($BIG_KEYS keys, 8 provider/model pairs), the rest spread over $NOISE noise tenants and development; $n_roll rollup rows,
$n_roll_big of them of the big tenant in production. usage_logs: $sz_logs table + $sz_logs_idx indexes; rollups: $sz_roll.
Generation: rows $((gen_ms / 1000)) s ($(nproc) sessions of INSERT … SELECT FROM generate_series), index rebuild $((idx_ms / 1000)) s,
rollups (bulk GROUP BY) $((rollup_ms / 1000)) s, VACUUM ANALYZE $((vac_ms / 1000)) s: ${gen_total} s in all.

Every scenario is the handler's SQL as prepared statements in one session, run $RUNS times (ms, psql \`\\timing\`, results
transferred and discarded); the bold figure is the p50 of the request (all its statements), *first* is the first execution.

| scenario (big tenant, production) | p50 ms | max ms | first ms |
|---|---:|---:|---:|
$stats_rows
$logs_rows

| target | goal | measured p50 | verdict |
|---|---|---:|---|
| GET /analytics/stats, 30 days | ≤ 200 ms | $st_p50 ms | $(verdict "$st_p50" 200) |
$(for sc in "${LOG_SCENARIOS[@]}"; do IFS='|' read -r name desc _ <<<"$sc"; [ "$name" = none ] && continue
	echo "| GET /analytics/logs, offset 0, $desc | ≤ 50 ms | ${LOG_P50[$name]} ms | $(verdict "${LOG_P50[$name]}" 50) |"; done)

Slowest stats statement ($slow_stats), EXPLAIN (ANALYZE, BUFFERS) of its 6th execution in a session:

$(plan_of "stats.$slow_stats")

$( [ -n "$worst_logs_name" ] && { echo "Slowest logs request ($worst_logs_name): its count(*), 6th execution:"; echo; plan_of "logs_$worst_logs_name.count"; echo; echo "and its page:"; echo; plan_of "logs_$worst_logs_name.page"; } )"

printf '\n%s\n' "$report"
if [ -n "$OUT" ]; then
	begin='<!-- bench-analytics:begin (written by scripts/bench-analytics.sh; edits inside are overwritten) -->'
	end='<!-- bench-analytics:end -->'
	if [ -f "$OUT" ] && grep -q '^<!-- bench-analytics:begin' "$OUT"; then
		printf '%s\n' "$report" >"$tmp/report.md"
		awk -v rep="$tmp/report.md" -v begin="$begin" '
			/^<!-- bench-analytics:begin/ { print begin; while ((getline l < rep) > 0) print l; skip = 1; next }
			/^<!-- bench-analytics:end -->/ { skip = 0 }
			!skip { print }' "$OUT" >"$tmp/out.md"
		cp "$tmp/out.md" "$OUT"
		say "wrote $OUT"
	else
		say "$OUT has no bench-analytics:begin/end markers: printed only"
	fi
fi
[ "$KEEP" = 1 ] && say "kept database $DB (BENCH_ANALYTICS_KEEP=1); plans in $PLANS"
say "done in ${elapsed} s"
