#!/usr/bin/env bash
# Analytics and ingestion benchmarks of the gateway (docs/benchmarks.md,
# section "Analytics and ingestion"):
#
# 1. Ingestion: BenchmarkIngest (services/gateway/internal/ingest/
#    ingest_bench_test.go) publishes N realistic usage events to a fresh
#    JetStream stream and times one ingest.Ingester draining them into a fresh
#    database, for a few ingester batch sizes, with the stream pre-filled and
#    with publishing running concurrently (and two ingesters sharing the
#    durable consumer, as a what-if). Target: ≥ 20 000 events/s.
# 2. Analytics SQL: creates the database trueport_bench_analytics, applies the
#    gateway migrations (the "-- +goose Up" sections, with psql), generates
#    BENCH_ANALYTICS_ROWS (10 M) usage_logs rows over 30 days for one big
#    tenant plus noise tenants, builds usage_rollups_hourly from them and
#    usage_rollups_daily from those in bulk (INSERT … SELECT … GROUP BY; in
#    production the ingester maintains both incrementally), rebuilds the
#    indexes dropped for the load, VACUUM ANALYZE, then times the exact SQL the
#    handlers run (internal/httpapi/stats.go and logs.go) as prepared
#    statements in one psql session (pgx prepares and caches its statements
#    per connection the same way), each scenario up to BENCH_ANALYTICS_RUNS
#    (20) times, at least 8, within BENCH_ANALYTICS_BUDGET seconds: p50 of
#    runs 1-5 (custom plans) and of runs 6+ (Postgres may switch to the
#    generic plan from the 6th execution), max, EXPLAIN ANALYZE of both.
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
#   BENCH_ANALYTICS_RUNS      executions of every timed scenario, at most [20]
#   BENCH_ANALYTICS_BUDGET    seconds per scenario after which it stops (after 8 runs) [25]
#   BENCH_ANALYTICS_KEEP      1: keep the database afterwards [0]
#   BENCH_ANALYTICS_PLANS     a directory to keep every EXPLAIN ANALYZE in [none]
#   BENCH_ANALYTICS_PGURL     server URL without database [postgres://postgres@127.0.0.1:5432]
#   BENCH_ANALYTICS_DB        the database to (re)create [trueport_bench_analytics]
#   BENCH_ANALYTICS_INGEST    0: skip the ingestion benchmark [1]
#   INGEST_BENCH_EVENTS       events per ingestion run [200000]
#   INGEST_BENCH_BATCHES      ingester batch sizes, pre-filled stream ["1000 4000 8000"
#                             plus the gateway's default, read from NewIngester]
#   INGEST_BENCH_CONCURRENT_BATCHES  batch sizes with concurrent publishing ["1000" + default]
#   INGEST_BENCH_TWO_INGESTERS_BATCHES  batch sizes with concurrent publishing and two
#                             ingesters sharing the durable consumer [default]; empty: skip
#   INGEST_BENCH_BIG_BATCHES  batch size of one last pre-filled run into the generated
#                             database (after the queries) [default]; empty: skip
#   BENCH_ANALYTICS_OUT       markdown file whose bench-analytics:begin/end block is
#                             rewritten [docs/benchmarks.md]; empty: stdout only
set -euo pipefail
cd "$(dirname "$0")/.."

ROWS=${BENCH_ANALYTICS_ROWS:-10000000}
BIG_SHARE=${BENCH_ANALYTICS_BIG_SHARE:-0.7}
NOISE=${BENCH_ANALYTICS_TENANTS:-200}
BIG_KEYS=${BENCH_ANALYTICS_KEYS:-20}
RUNS=${BENCH_ANALYTICS_RUNS:-20}
KEEP=${BENCH_ANALYTICS_KEEP:-0}
PGURL=${BENCH_ANALYTICS_PGURL:-postgres://postgres@127.0.0.1:5432}
DO_INGEST=${BENCH_ANALYTICS_INGEST:-1}
INGEST_EVENTS=${INGEST_BENCH_EVENTS:-200000}
# The batch size the gateway's ingester uses (NewIngester's default).
DEF_BATCH=$(sed -n 's/.*&Ingester{.*[ {]batch: \([0-9]*\).*/\1/p' services/gateway/internal/ingest/ingester.go | head -1)
DEF_BATCH=${DEF_BATCH:-1000}
with_def() { printf '%s\n' $1 "$DEF_BATCH" | sort -nu | tr '\n' ' ' | sed 's/ $//'; }
INGEST_BATCHES=${INGEST_BENCH_BATCHES-$(with_def "1000 4000 8000")}
INGEST_CONC_BATCHES=${INGEST_BENCH_CONCURRENT_BATCHES-$(with_def "1000")}
INGEST_TWO_BATCHES=${INGEST_BENCH_TWO_INGESTERS_BATCHES-$DEF_BATCH}
INGEST_BIG_BATCHES=${INGEST_BENCH_BIG_BATCHES-$DEF_BATCH}
OUT=${BENCH_ANALYTICS_OUT-docs/benchmarks.md}
# The session parameters the gateway sets on its pool (pgdb.WithRuntimeParam in
# internal/app/app.go): the timed psql sessions and BenchmarkIngest use them too.
PG_PARAMS=$(grep -o 'WithRuntimeParam("[^"]*", *"[^"]*")' services/gateway/internal/app/app.go |
	sed 's/WithRuntimeParam("\([^"]*\)", *"\([^"]*\)")/\1=\2/' | tr '\n' ' ' | sed 's/ $//')
PG_SET=""
for kv in $PG_PARAMS; do PG_SET+="SET ${kv%%=*} = '${kv#*=}'; "; done
DB=${BENCH_ANALYTICS_DB:-trueport_bench_analytics}
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
	runbench() { # modes batches ingesters [database url] (output appended to $tmp/ingest.txt)
		[ -n "$2" ] || return 0
		say "ingestion: $INGEST_EVENTS events per run, $1, batch sizes: $2, ingesters: $3${4:+, into $DB}"
		(cd services/gateway && INGEST_BENCH_EVENTS=$INGEST_EVENTS INGEST_BENCH_MODES=$1 INGEST_BENCH_BATCHES=$2 INGEST_BENCH_INGESTERS=$3 \
			INGEST_BENCH_DATABASE_URL=${4:-} INGEST_BENCH_PG_PARAMS=none go test ./internal/ingest -run '^$' -bench '^BenchmarkIngest$' -benchtime=1x -timeout 60m -v) >>"$tmp/ingest.txt" 2>&1 \
			|| { tail -30 "$tmp/ingest.txt" >&2; die "BenchmarkIngest failed"; }
	}
	runbench prefilled "$INGEST_BATCHES" 1
	runbench concurrent "$INGEST_CONC_BATCHES" 1
	runbench concurrent "$INGEST_TWO_BATCHES" 2
	grep -E 'events in|events:' "$tmp/ingest.txt" | sed 's/^ *ingest_bench_test.go:[0-9]*: /  /' >&2
	# "BenchmarkIngest/prefilled/batch=1000[/ingesters=2]-2  1  123 ns/op  8000 events/s ..." -> "mode batch ingesters seconds metric unit ..."
	awk '/^BenchmarkIngest\/.* ns\/op/ {
			name = $1; sub(/-[0-9]+$/, "", name); n = split(name, p, "/"); ing = 1
			if (n >= 4) { ing = p[4]; sub(/ingesters=/, "", ing) }
			b = p[3]; sub(/batch=/, "", b)
			printf "%s %s %s %.2f", p[2], b, ing, $3 / 1e9; for (i = 5; i < NF; i += 2) printf " %s %s", $i, $(i + 1); print ""
		}' "$tmp/ingest.txt" >"$tmp/ingest.runs"
	ingest_rows=$(awk '{ delete m; for (i = 5; i < NF; i += 2) m[$(i + 1)] = $i
			printf "| %s | %s | %s | %.1f | **%.0f** | %.0f | %.1f | %.1f | %.1f | %.1f |\n", $1, $2, $3, $4, m["events/s"], m["publish_events/s"],
				m["ingester_cpu_us/event"], m["postgres_cpu_us/event"], m["nats_cpu_us/event"], m["machine_cpu_us/event"] }' "$tmp/ingest.runs")
	# rate mode ingesters [batch]: events/s of that run (the best over batch sizes when no batch is given)
	rate() { awk -v m="$1" -v g="$2" -v b="${3:-}" '$1 == m && $3 == g && (b == "" || $2 == b) {
			for (i = 5; i < NF; i += 2) if ($(i + 1) == "events/s" && $i > best) { best = $i; bb = $2 } }
			END { if (best) printf "%.0f events/s (batch %s)", best, bb; else print "not measured" }' "$tmp/ingest.runs"; }
	met() { awk -v v="${1%% *}" 'BEGIN { if (v == "not") print ""; else if (v >= 20000) print ", **met**"; else printf ", **missed** (%.0f %% of the target)", 100 * v / 20000 }'; }
	evinfo=$(sed -n 's/.*events: \([0-9]*\), \([0-9]*\) bytes on average, \([0-9]*\) violations (\([0-9.]*\)% .*/\2 bytes of JSON on average, \4 % of them with violations (\3 violations)/p' "$tmp/ingest.txt" | head -1)
	r1=$(rate prefilled 1 "$DEF_BATCH") r2=$(rate concurrent 1 "$DEF_BATCH") r3=$(rate prefilled 1) r4=$(rate concurrent 1) r5=$(rate concurrent 2)
	ingest_md="| stream | batch | ingesters | wall s | events/s | publish events/s | ingester CPU µs/event | Postgres CPU µs/event | nats-server CPU µs/event | machine CPU µs/event |
|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|
$ingest_rows

Each run: $INGEST_EVENTS events, $evinfo; a fresh database and stream. *wall s* runs from the ingester's start
(pre-filled) or the first publish (concurrent) until the consumer has nothing pending or unacknowledged and usage_logs
holds every row. Pool session parameters as the gateway's: ${PG_PARAMS:-none}. CPU per event: *ingester* is the benchmark process (plus the publisher when concurrent), *Postgres* the
backends of the benchmark's database, *nats-server* the whole server, *machine* every busy CPU of the box.

Target ≥ 20 000 events/s:

- as the gateway runs it (one ingester, batch $DEF_BATCH, NewIngester's default): pre-filled $r1$(met "$r1"); concurrent publishing $r2$(met "$r2")
- one ingester, best batch size: pre-filled $r3$(met "$r3"); concurrent $r4$(met "$r4")
- two ingesters on the same durable consumer, concurrent: $r5$(met "$r5")"
fi

# ------------------------------------------------------------ 2. analytics database
say "creating $DB and applying the gateway migrations (goose Up sections)"
psql -qX -v ON_ERROR_STOP=1 "$ADMIN" -c "DROP DATABASE IF EXISTS $DB WITH (FORCE)" -c "CREATE DATABASE $DB" >/dev/null
# (psql runs a StatementBegin/End block as it is: the markers are comments and
# psql knows dollar quoting.)
for f in services/gateway/internal/migrations/*.sql; do
	sed -n '/^-- +goose Up/,/^-- +goose Down/p' "$f" | q >/dev/null
done

# The migrations' indexes and unique constraints of usage_logs are dropped for
# the bulk load and recreated afterwards from their own definitions (building
# an index once is far faster than 10 M random inserts into each of them).
# usage_logs is partitioned by month (migration 00005): the definitions are the
# parent's, and creating them on the parent builds them on every partition
# (pg_get_indexdef says "ON ONLY", which would not).
recreate=$(q -c "SELECT format('ALTER TABLE usage_logs ADD CONSTRAINT %I %s;', conname, pg_get_constraintdef(oid)) FROM pg_constraint
		WHERE conrelid = 'usage_logs'::regclass AND contype IN ('p', 'u')
	UNION ALL SELECT replace(pg_get_indexdef(indexrelid), ' ON ONLY ', ' ON ') || ';' FROM pg_index i WHERE indrelid = 'usage_logs'::regclass
		AND NOT EXISTS (SELECT 1 FROM pg_constraint c WHERE c.conindid = i.indexrelid)")
index_defs_before=$(q -c "SELECT indexdef FROM pg_indexes WHERE tablename = 'usage_logs' ORDER BY indexname")
q -c "SELECT format('ALTER TABLE usage_logs DROP CONSTRAINT %I;', conname) FROM pg_constraint
		WHERE conrelid = 'usage_logs'::regclass AND contype IN ('p', 'u')
	UNION ALL SELECT format('DROP INDEX %I;', c.relname) FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid
		WHERE indrelid = 'usage_logs'::regclass AND NOT EXISTS (SELECT 1 FROM pg_constraint k WHERE k.conindid = i.indexrelid)" | q >/dev/null

BIG_TENANT=$(q -c "SELECT md5('trueport-bench-big-tenant')::uuid")
T_END=$(date -u +%Y-%m-%dT%H:%M:%SZ)
T_START=$(date -u -d "$T_END - $DAYS days" +%Y-%m-%dT%H:%M:%SZ)
# The month partitions of the generated range (the migration made the previous,
# current and next two months'; the gateway's retention cycle keeps that window
# with the same SQL function, analytics.EnsurePartitions).
q -c "SET TimeZone = 'UTC'; SELECT gateway_ensure_month_partition(t, m) FROM unnest('{usage_logs,violations}'::regclass[]) t,
	generate_series(date_trunc('month', timestamptz '$T_START'), timestamptz '$T_END', interval '1 month') m" >/dev/null
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

say "  indexes rebuilt in $((idx_ms / 1000)) s; building usage_rollups_hourly and usage_rollups_daily in bulk"
bounds=$(sed -n 's/^var LatencyBounds = \[\]float64{\(.*\)}$/\1/p' services/gateway/internal/analytics/rollup.go | tr -d ' ')
[ -n "$bounds" ] || die "cannot read LatencyBounds from internal/analytics/rollup.go"
IFS=, read -r -a B <<<"$bounds"
hist="count(*) FILTER (WHERE latency_ms <= ${B[0]})"
for ((i = 1; i < ${#B[@]}; i++)); do hist+=", count(*) FILTER (WHERE latency_ms > ${B[i - 1]} AND latency_ms <= ${B[i]})"; done
hist+=", count(*) FILTER (WHERE latency_ms > ${B[${#B[@]} - 1]})"
dhist="sum(latency_hist[1])"
for ((i = 2; i <= ${#B[@]} + 1; i++)); do dhist+=", sum(latency_hist[$i])"; done
t0=$(date +%s%N)
# Same arithmetic as analytics.aggregate: errors = status >= 400 or outcome error,
# unknown usage = total_tokens NULL, hourly UTC buckets, NULL key -> zero uuid.
# Rows go in hour order, as the ingester appends each hour's new rows (the
# in-place updates of the current hour, and their dead tuples, are not modelled).
q <<SQL >/dev/null
SET TimeZone = 'UTC'; SET work_mem = '512MB'; SET synchronous_commit = off;
INSERT INTO usage_rollups_hourly (tenant_id, env, bucket, provider, model, key_id, status_code, requests, errors, unknown_usage,
	prompt_tokens, completion_tokens, total_tokens, cost_usd, latency_sum_ms, latency_hist)
SELECT tenant_id, env, date_trunc('hour', created_at), provider, model, COALESCE(key_id, '00000000-0000-0000-0000-000000000000'), status_code,
	count(*), count(*) FILTER (WHERE status_code >= 400 OR outcome = 'error'), count(*) FILTER (WHERE total_tokens IS NULL),
	COALESCE(sum(prompt_tokens), 0), COALESCE(sum(completion_tokens), 0), COALESCE(sum(total_tokens), 0), COALESCE(sum(cost_usd), 0),
	sum(latency_ms), ARRAY[$hist]::bigint[]
FROM usage_logs GROUP BY 1, 2, 3, 4, 5, 6, 7 ORDER BY 3;
-- Daily rollups (migration 00003), from the hourly ones: UTC days.
INSERT INTO usage_rollups_daily (tenant_id, env, bucket, provider, model, key_id, status_code, requests, errors, unknown_usage,
	prompt_tokens, completion_tokens, total_tokens, cost_usd, latency_sum_ms, latency_hist)
SELECT tenant_id, env, date_trunc('day', bucket), provider, model, key_id, status_code, sum(requests), sum(errors), sum(unknown_usage),
	sum(prompt_tokens), sum(completion_tokens), sum(total_tokens), sum(cost_usd), sum(latency_sum_ms), ARRAY[$dhist]::bigint[]
FROM usage_rollups_hourly GROUP BY 1, 2, 3, 4, 5, 6, 7 ORDER BY 3;
SQL
rollup_ms=$(ms_since "$t0")
say "  rollups built in $((rollup_ms / 1000)) s; VACUUM ANALYZE"
t0=$(date +%s%N)
q -c "VACUUM ANALYZE usage_logs" -c "VACUUM ANALYZE usage_rollups_hourly" -c "VACUUM ANALYZE usage_rollups_daily" >/dev/null
vac_ms=$(ms_since "$t0")

IFS='|' read -r n_logs n_big n_big_prod <<<"$(q -c "SELECT count(*), count(*) FILTER (WHERE tenant_id = '$BIG_TENANT'),
	count(*) FILTER (WHERE tenant_id = '$BIG_TENANT' AND env = 'production') FROM usage_logs")"
IFS='|' read -r n_roll n_roll_big n_roll_sum <<<"$(q -c "SELECT count(*), count(*) FILTER (WHERE tenant_id = '$BIG_TENANT' AND env = 'production'),
	sum(requests) FROM usage_rollups_hourly")"
[ "$n_roll_sum" = "$n_logs" ] || die "hourly rollups count $n_roll_sum requests for $n_logs rows"
IFS='|' read -r n_day n_day_big n_day_sum <<<"$(q -c "SELECT count(*), count(*) FILTER (WHERE tenant_id = '$BIG_TENANT' AND env = 'production'),
	sum(requests) FROM usage_rollups_daily")"
[ "$n_day_sum" = "$n_logs" ] || die "daily rollups count $n_day_sum requests for $n_logs rows"
IFS='|' read -r sz_logs sz_logs_idx sz_roll sz_day n_parts <<<"$(q -c "SELECT pg_size_pretty(sum(pg_table_size(relid))), pg_size_pretty(sum(pg_indexes_size(relid))),
	pg_size_pretty(pg_total_relation_size('usage_rollups_hourly')), pg_size_pretty(pg_total_relation_size('usage_rollups_daily')),
	count(*) FILTER (WHERE isleaf) FROM pg_partition_tree('usage_logs')")"
KEY1=$(q -c "SELECT md5('$BIG_TENANT' || '-key-' || 0)::uuid")
gen_total=$(( (gen_ms + idx_ms + rollup_ms + vac_ms) / 1000 ))
say "  $n_logs rows ($n_big_prod of the big tenant in production), $n_roll hourly rollup rows ($n_roll_big of the big tenant), $n_day daily ($n_day_big); data ready in ${gen_total} s"

verdict() { awk -v v="$1" -v t="$2" 'BEGIN { if (v <= t) print "**met**"; else printf "**missed** by %.0f ms (%.1f×)", v - t, v / t }'; }

# ------------------------------------------------------------ 3. timed queries
NOW=$(date -u +%Y-%m-%dT%H:%M:%SZ)
FROM30=$(date -u -d "$NOW - 30 days" +%Y-%m-%dT%H:%M:%SZ)
FROM24=$(date -u -d "$NOW - 24 hours" +%Y-%m-%dT%H:%M:%SZ)
LOG_COLS="id::text, request_id, created_at, key_id::text, key_name, env, provider, model, path, status_code, stream,
		latency_ms, ttfb_ms, prompt_tokens, completion_tokens, total_tokens, cached_tokens, cost_usd, outcome, error, violation_ids, request_body, response_body"
# The SQL of internal/httpapi/stats.go (rollupSource + its one grouped query) and
# logs.go (listLogs), copied; SQL_FINGERPRINT is a hash of their SQL-bearing
# lines when they were copied: a mismatch means the handlers changed since.
SQL_FINGERPRINT=41041d38
fingerprint=$(cat services/gateway/internal/httpapi/stats.go services/gateway/internal/httpapi/logs.go |
	grep -E 'SELECT|FROM|WHERE|GROUP BY|ORDER BY|LIMIT|UNION|bucket|f\.add\(|totalCap =|Truncate|firstDay|lastDay' | sha256sum | cut -c1-8)
sql_note=""
if [ "$fingerprint" != "$SQL_FINGERPRINT" ]; then
	sql_note="**Warning:** internal/httpapi/stats.go or logs.go changed since this script copied their SQL (fingerprint $fingerprint,
expected $SQL_FINGERPRINT): the timings below may not be those of the current handlers."
	say "warning: the handlers' SQL changed since scripts/bench-analytics.sh copied it (fingerprint $fingerprint, expected $SQL_FINGERPRINT)"
fi
ROLLUP_COLS="bucket, provider, model, key_id, status_code, requests, errors, unknown_usage, prompt_tokens, completion_tokens,
		total_tokens, cost_usd, latency_sum_ms, latency_hist"
# rollupSource, interval=day: whole UTC days from the daily table, the partial
# first and last days from the hourly one; args $3..$7 as below. interval=hour: hourly only.
SRC_DAY="(SELECT $ROLLUP_COLS FROM usage_rollups_daily WHERE tenant_id = \$1::uuid AND env = \$2 AND bucket >= \$3 AND bucket < \$4
		UNION ALL
		SELECT $ROLLUP_COLS FROM usage_rollups_hourly WHERE tenant_id = \$1::uuid AND env = \$2
			AND ((bucket >= \$5 AND bucket < \$3) OR (bucket >= \$6 AND bucket < \$7))) r"
SRC_HOUR="(SELECT $ROLLUP_COLS FROM usage_rollups_hourly WHERE tenant_id = \$1::uuid AND env = \$2 AND bucket >= \$3 AND bucket < \$4) r"
stats_sql() { # statement src interval
	local hist="" k
	for ((k = 1; k <= ${#B[@]} + 1; k++)); do hist+=", sum(r.latency_hist[$k])"; done
	case $1 in
	grouped) echo "SELECT date_trunc('$3', r.bucket), model, sum(r.requests), sum(r.errors), sum(r.unknown_usage),
		sum(r.prompt_tokens), sum(r.completion_tokens), sum(r.total_tokens), sum(r.cost_usd), sum(r.latency_sum_ms)$hist
		FROM $2 GROUP BY 1, 2 ORDER BY 1" ;;
	esac
}
STATS=(grouped)
# The arguments rollupSource computes for [FROM30, NOW).
FROM_HOUR=$(date -u -d "$FROM30" +%Y-%m-%dT%H:00:00Z)
FIRST_DAY=$(date -u -d "$FROM_HOUR" +%Y-%m-%dT00:00:00Z)
[ "$FIRST_DAY" = "$FROM_HOUR" ] || FIRST_DAY=$(date -u -d "$FIRST_DAY + 1 day" +%Y-%m-%dT00:00:00Z)
LAST_DAY=$(date -u -d "$NOW" +%Y-%m-%dT00:00:00Z)
[[ "$LAST_DAY" > "$FIRST_DAY" || "$LAST_DAY" == "$FIRST_DAY" ]] || LAST_DAY=$FIRST_DAY
EDGE=$LAST_DAY; [[ "$EDGE" > "$FROM_HOUR" ]] || EDGE=$FROM_HOUR
ARGS_DAY="'$BIG_TENANT', 'production', '$FIRST_DAY', '$LAST_DAY', '$FROM_HOUR', '$EDGE', '$NOW'"
ARGS_HOUR="'$BIG_TENANT', 'production', '$FROM_HOUR', '$NOW'"
# Logs scenarios (internal/httpapi/logs.go), limit 50 offset 0:
# "name|description|conditions after tenant and env|their arguments".
LOG_SCENARIOS=(
	"none|no filter (the default page)||"
	"model|model=gpt-4o|model = \$3|'gpt-4o'"
	"status5xx|status=5xx|status_code >= \$3 AND status_code < \$4|500, 600"
	"key|key_id=(one of the $BIG_KEYS keys)|key_id = \$3::uuid|'$KEY1'"
	"model24h|from=now-24h, model=gpt-4o|created_at >= \$3 AND model = \$4|'$FROM24', 'gpt-4o'"
)
TARGS="'$BIG_TENANT', 'production'"
BUDGET=${BENCH_ANALYTICS_BUDGET:-25}
MIN_RUNS=8

# timed name prepares iteration: one psql session (like one pooled pgx
# connection, which prepares and caches its statements): the PREPAREs, then
# the iteration (the statements of one request) up to RUNS times, stopping
# once MIN_RUNS are done and BUDGET seconds have passed. Writes $tmp/name.iter:
# one line per iteration, its total ms then each statement's.
timed() {
	local f=$tmp/$1
	{
		echo "SET TimeZone = 'UTC'; $PG_SET"
		printf '%s\n' "$2"
		echo "SELECT clock_timestamp() AS t0 \\gset"
		echo '\o /dev/null'
		echo '\timing on'
		for i in $(seq 1 "$RUNS"); do
			echo "\\echo @@ $i"
			printf '%s\n' "$3"
			echo '\echo @@x'
			echo "SELECT $i >= $MIN_RUNS AND clock_timestamp() - :'t0'::timestamptz > interval '$BUDGET seconds' AS stop \\gset"
			printf '\\if :stop\n\\q\n\\endif\n'
		done
	} >"$f.sql"
	q -f "$f.sql" </dev/null >"$f.out"
	awk '/^@@x/ { skip = 1; next } /^@@ / { skip = 0; it = $2; next } /^Time:/ && !skip { v[it] = v[it] " " $2; t[it] += $2 }
		END { for (i = 1; i in t; i++) print t[i] v[i] }' "$f.out" >"$f.iter"
}
# stat name column first last: "p50 max n" of that column over iterations first..last
stat() {
	awk -v c="$2" -v a="$3" -v b="$4" 'NR >= a && NR <= b { print $c }' "$tmp/$1.iter" | sort -n |
		awk '{ v[NR] = $1 } END { if (NR == 0) print "– – 0"; else printf "%.1f %.1f %d\n", v[int((NR + 1) / 2)], v[NR], NR }'
}
# row label name column: sets ROW to a table row "| label | runs | p50 1–5 | p50 6+ | max |"
# and STEADY to the verdict figure (p50 of runs 6+, or of 1–5 when there are no more)
row() {
	local c a s
	read -r c _ _ <<<"$(stat "$2" "$3" 1 5)"
	read -r s _ n6 <<<"$(stat "$2" "$3" 6 100000)"
	read -r _ mx n <<<"$(stat "$2" "$3" 1 100000)"
	STEADY=$s; [ "$n6" != 0 ] || STEADY=$c
	ROW="| $1 | $n | $c | $s | $mx |"
}
explain() { # name stmt prepare execute: EXPLAIN (ANALYZE, BUFFERS) of the 1st execution (custom plan) -> .custom.txt
	# and of the 6th (past the 5 custom plans: what a long-lived pgx connection runs) -> .txt
	printf "SET TimeZone = 'UTC'; $PG_SET\n%s;\nEXPLAIN (ANALYZE, BUFFERS) %s;\n\\\\o /dev/null\n%s;\n%s;\n%s;\n%s;\n\\\\o\n\\\\echo @@6\nEXPLAIN (ANALYZE, BUFFERS) %s;\n" \
		"$3" "$4" "$4" "$4" "$4" "$4" "$4" >"$tmp/explain.sql"
	psql -qX -v ON_ERROR_STOP=1 "$DBURL" -f "$tmp/explain.sql" </dev/null >"$tmp/explain.out"
	sed '/^@@6$/,$d' "$tmp/explain.out" >"$PLANS/$1.$2.custom.txt"
	sed '1,/^@@6$/d' "$tmp/explain.out" >"$PLANS/$1.$2.txt"
}

# stats_scenario name label src args interval: times the 4 statements as one request;
# appends to stats_rows, sets SLOW_STMT (the slowest statement, runs 6+) and STEADY (the request)
stats_scenario() {
	local name=$1 label=$2 src=$3 args=$4 interval=$5 prep="" iter="" st i slow_v=-1 total
	for st in "${STATS[@]}"; do
		prep+="PREPARE ${name}_$st AS $(stats_sql "$st" "$src" "$interval");"$'\n'
		iter+="EXECUTE ${name}_$st($args);"$'\n'
	done
	say "timing stats, $label (up to $RUNS runs, ${BUDGET} s)"
	timed "$name" "$prep" "$iter"
	row "**GET /analytics/stats**, $label: its query" "$name" 1
	stats_rows+=${stats_rows:+$'\n'}$ROW total=$STEADY
	for i in "${!STATS[@]}"; do
		st=${STATS[i]}
		row "&nbsp;&nbsp;$st" "$name" $((i + 2))
		stats_rows+=$'\n'$ROW
		if awk -v a="$STEADY" -v b="$slow_v" 'BEGIN { exit !(a > b) }'; then slow_v=$STEADY; SLOW_STMT=$st; fi
		explain "$name" "$st" "PREPARE ${name}_$st AS $(stats_sql "$st" "$src" "$interval")" "EXECUTE ${name}_$st($args)"
	done
	STEADY=$total
}
stats_rows=""
stats_scenario stats_hour "30 days, interval=hour (hourly table only), group_by=model" "$SRC_HOUR" "$ARGS_HOUR" hour
ST_HOUR=$STEADY
stats_scenario stats_day "30 days ($FROM30 .. $NOW), interval=day (the default over 48 h), group_by=model" "$SRC_DAY" "$ARGS_DAY" day
ST=$STEADY slow_stats=$SLOW_STMT

logs_rows="" targets_logs="" worst_logs_name="" worst_v=-1
for sc in "${LOG_SCENARIOS[@]}"; do
	IFS='|' read -r name desc cond args <<<"$sc"
	where="tenant_id = \$1::uuid AND env = \$2${cond:+ AND $cond}"
	nargs=$((2 + $({ grep -o '\$[0-9]' <<<"$cond" || true; } | sort -u | wc -l)))
	cnt="SELECT count(*) FROM (SELECT 1 FROM usage_logs WHERE $where LIMIT 10001) x"
	page="SELECT $LOG_COLS
		FROM usage_logs WHERE $where ORDER BY created_at DESC, id DESC LIMIT \$$((nargs + 1)) OFFSET \$$((nargs + 2))"
	a="$TARGS${args:+, $args}"
	say "timing logs, $desc (up to $RUNS runs, ${BUDGET} s)"
	timed "logs_$name" "PREPARE c_$name AS $cnt;"$'\n'"PREPARE p_$name AS $page;" \
		"EXECUTE c_$name($a);"$'\n'"EXECUTE p_$name($a, 50, 0);"
	matched=$(q -c "PREPARE m AS SELECT count(*) FROM usage_logs WHERE $where" -c "EXECUTE m($a)" </dev/null)
	row "**GET /analytics/logs**, $desc ($matched matching rows): count + page" "logs_$name" 1
	logs_rows+=$ROW$'\n' v=$STEADY
	row "&nbsp;&nbsp;total: count(*) of at most 10 001 rows" "logs_$name" 2
	logs_rows+=$ROW$'\n'
	row "&nbsp;&nbsp;page (limit 50)" "logs_$name" 3
	logs_rows+=$ROW$'\n'
	targets_logs+="| GET /analytics/logs, offset 0, $desc | ≤ 50 ms | $v ms | $(verdict "$v" 50) |"$'\n'
	explain "logs_$name" count "PREPARE c_$name AS $cnt" "EXECUTE c_$name($a)"
	explain "logs_$name" page "PREPARE p_$name AS $page" "EXECUTE p_$name($a, 50, 0)"
	if [ "$name" != none ] && awk -v a="$v" -v b="$worst_v" 'BEGIN { exit !(a > b) }'; then worst_v=$v; worst_logs_name=$name; fi
done
logs_rows=${logs_rows%$'\n'}
targets_logs=${targets_logs%$'\n'}

# The same ingestion again, into the usage_logs table that now holds the
# generated rows (indexes far larger than shared_buffers), then its rows go.
if [ "$DO_INGEST" != 0 ] && [ -n "$INGEST_BIG_BATCHES" ]; then
	: >"$tmp/ingest.txt"
	runbench prefilled "$INGEST_BIG_BATCHES" 1 "$DBURL"
	grep -E 'events in' "$tmp/ingest.txt" | sed 's/^ *ingest_bench_test.go:[0-9]*: /  /' >&2
	big_rate=$(sed -n 's/.* events in \([0-9.]*\) s = \([0-9]*\) events\/s.*/\2 events\/s (\1 s)/p' "$tmp/ingest.txt" | head -1)
	ingest_md+="
- one ingester, batch $INGEST_BIG_BATCHES, pre-filled, into the analytics database below (usage_logs already holding $n_logs rows,
  its indexes $sz_logs_idx): $big_rate$(met "$big_rate")"
fi
load_after=$(cut -d' ' -f1-3 /proc/loadavg)
elapsed=$(($(date +%s) - started))

plan_of() { sed 's/^/    /' "$PLANS/$1.txt"; }
sql_block=""
[ -z "$sql_note" ] || sql_block="$sql_note"$'\n\n'
report="### Results of the last \`scripts/bench-analytics.sh\`

- command: \`scripts/bench-analytics.sh\`$(env | grep -E '^(BENCH_ANALYTICS|INGEST_BENCH)_' | sort | tr '\n' ' ' | sed 's/ $//; s/^./ with &/')
- date: $(date -u '+%Y-%m-%d %H:%M UTC'); commit: $(git rev-parse --short HEAD 2>/dev/null || echo '?')$(git diff --quiet HEAD -- services 2>/dev/null || echo ' + uncommitted changes under services/')
- machine: $(nproc) cores ($(sed -n 's/^model name\s*: //p' /proc/cpuinfo | head -1)), $(free -g | awk '/^Mem:/ {print $2 " GiB"}') memory; $(go version | cut -d' ' -f3); PostgreSQL $(q -c 'SHOW server_version' | cut -d' ' -f1) (shared_buffers $(q -c 'SHOW shared_buffers'), work_mem $(q -c 'SHOW work_mem'), jit $(q -c 'SHOW jit'), max_parallel_workers_per_gather $(q -c 'SHOW max_parallel_workers_per_gather')); $( (nats-server --version || /usr/sbin/nats-server --version) 2>/dev/null | head -1 || echo nats-server)
- load average (1/5/15 min) at the start: $load_before; at the end: $load_after
- wall time of the whole script: ${elapsed} s

#### Ingestion (JetStream → Postgres)

$ingest_md

#### Analytics queries

${sql_block}Data: $n_logs usage_logs rows over $DAYS days ($T_START .. $T_END), $n_big_prod of them of the big tenant in production
($BIG_KEYS keys, 8 provider/model pairs), the rest spread over $NOISE noise tenants and development. Rollups: $n_roll hourly
rows ($n_roll_big of the big tenant in production), $n_day daily ($n_day_big). Sizes: usage_logs ($n_parts partitions: one per
month and the default one) $sz_logs + $sz_logs_idx of indexes; usage_rollups_hourly $sz_roll, usage_rollups_daily $sz_day (with indexes). Generation: rows $((gen_ms / 1000)) s ($(nproc)
sessions of INSERT … SELECT FROM generate_series), index rebuild $((idx_ms / 1000)) s, rollups (bulk GROUP BY, hourly from the rows,
daily from the hourly) $((rollup_ms / 1000)) s, VACUUM ANALYZE $((vac_ms / 1000)) s: ${gen_total} s in all.

Each scenario is the handler's SQL as prepared statements in one psql session, like one pooled pgx connection (ms from
psql \`\\timing\`, results transferred and discarded), run up to $RUNS times (at least $MIN_RUNS, then until ${BUDGET} s have passed).
Session parameters as on the gateway's pool (internal/app/app.go): ${PG_PARAMS:-none}. Runs 1–5 use custom plans; from the
6th execution Postgres may switch a prepared statement to its generic plan (unless plan_cache_mode forces custom plans),
which is what a long-lived gateway connection runs: the target verdicts use the p50 of runs 6+.

| scenario (big tenant, production) | runs | p50 ms, runs 1–5 | p50 ms, runs 6+ | max ms |
|---|---:|---:|---:|---:|
$stats_rows
$logs_rows

| target | goal | measured (p50, runs 6+) | verdict |
|---|---|---:|---|
| GET /analytics/stats, 30 days (interval=day, the default) | ≤ 200 ms | $ST ms | $(verdict "$ST" 200) |
| GET /analytics/stats, 30 days, interval=hour (not the target's request; for reference) | ≤ 200 ms | $ST_HOUR ms | $(verdict "$ST_HOUR" 200) |
$targets_logs

Slowest statement of the 30-day stats request ($slow_stats), EXPLAIN (ANALYZE, BUFFERS) of its 6th execution in a session:

$(plan_of "stats_day.$slow_stats")

and of its 1st (custom plan):

$(plan_of "stats_day.$slow_stats.custom")
$([ -n "$worst_logs_name" ] && printf '\nSlowest logs request with a filter (%s): its total, 6th execution:\n\n%s\n\nits page, 6th execution:\n\n%s\n\nand its page, 1st execution (custom plan):\n\n%s\n' \
	"$worst_logs_name" "$(plan_of "logs_$worst_logs_name.count")" "$(plan_of "logs_$worst_logs_name.page")" "$(plan_of "logs_$worst_logs_name.page.custom")")

All plans (1st and 6th execution of every statement) are in \`BENCH_ANALYTICS_PLANS\` when set."

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
[ "$KEEP" != 1 ] || say "kept database $DB (BENCH_ANALYTICS_KEEP=1); plans in $PLANS"
say "done in ${elapsed} s"
