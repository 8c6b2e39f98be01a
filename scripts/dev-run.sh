#!/usr/bin/env bash
# make run: start the fake provider, platform-backend and gateway in dev mode
# (background processes, logs in data/logs), then print a quickstart.
# `make stop` (this script with "stop") ends them.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD
mkdir -p data/logs data/pids data/spool

stop_all() {
	for svc in gateway platform-backend fake-provider; do
		pidf=data/pids/$svc.pid
		if [ -f "$pidf" ] && kill -0 "$(cat "$pidf")" 2>/dev/null; then
			kill "$(cat "$pidf")" && echo "stopped $svc"
			for _ in $(seq 1 50); do kill -0 "$(cat "$pidf")" 2>/dev/null || break; sleep 0.2; done
		fi
		rm -f "$pidf"
	done
}
if [ "${1:-}" = "stop" ]; then stop_all; exit 0; fi
stop_all >/dev/null 2>&1 || true

scripts/ensure-deps.sh

export APP_ENV=${APP_ENV:-dev}
export PLATFORM_HTTP_ADDR=${PLATFORM_HTTP_ADDR:-127.0.0.1:8080}
export PLATFORM_GRPC_ADDR=${PLATFORM_GRPC_ADDR:-127.0.0.1:9090}
export GATEWAY_HTTP_ADDR=${GATEWAY_HTTP_ADDR:-127.0.0.1:8081}
export GATEWAY_GRPC_ADDR=${GATEWAY_GRPC_ADDR:-127.0.0.1:9091}
export PLATFORM_INTERNAL_ADDR=${PLATFORM_INTERNAL_ADDR:-127.0.0.1:9180}
export GATEWAY_INTERNAL_ADDR=${GATEWAY_INTERNAL_ADDR:-127.0.0.1:9181}
export GATEWAY_SPOOL_DIR=${GATEWAY_SPOOL_DIR:-$root/data/spool}
export LOG_FORMAT=${LOG_FORMAT:-text}
fake_addr=${FAKE_PROVIDER_ADDR:-127.0.0.1:8090}
fake=http://$fake_addr
export UPSTREAM_OPENAI_URL=${UPSTREAM_OPENAI_URL:-$fake/openai/v1}
export UPSTREAM_ANTHROPIC_URL=${UPSTREAM_ANTHROPIC_URL:-$fake/anthropic/v1}
export UPSTREAM_GOOGLE_URL=${UPSTREAM_GOOGLE_URL:-$fake/google/v1beta}
# (the braces of the templates would end a ${VAR:-default} early: defaults via variables)
azure_template="$fake/azure/{resource}/openai/deployments/{deployment}"
bedrock_template="$fake/bedrock/{region}"
export UPSTREAM_AZURE_URL_TEMPLATE=${UPSTREAM_AZURE_URL_TEMPLATE:-$azure_template}
export UPSTREAM_BEDROCK_URL_TEMPLATE=${UPSTREAM_BEDROCK_URL_TEMPLATE:-$bedrock_template}

start() {
	local name=$1; shift
	nohup "$@" >"data/logs/$name.log" 2>&1 &
	echo $! >"data/pids/$name.pid"
}
wait_http() {
	for _ in $(seq 1 100); do curl -fsS "$1" >/dev/null 2>&1 && return 0; sleep 0.2; done
	echo "$2 did not become healthy; see data/logs/$2.log" >&2
	tail -20 "data/logs/$2.log" >&2
	exit 1
}

# Mutual TLS between the services from a throwaway CA (kept in data/certs).
certs=$root/data/certs
[ -f "$certs/ca.pem" ] || bin/platform-backend dev-certs "$certs" >/dev/null 2>&1 || { echo "dev-certs failed" >&2; exit 1; }
tls() { echo "GRPC_TLS_CA_FILE=$certs/ca.pem GRPC_TLS_CERT_FILE=$certs/$1.pem GRPC_TLS_KEY_FILE=$certs/$1-key.pem"; }

FAKE_PROVIDER_ADDR=$fake_addr start fake-provider bin/fake-provider
wait_http "$fake/health" fake-provider
start platform-backend env $(tls platform-backend) bin/platform-backend
wait_http "http://$PLATFORM_HTTP_ADDR/health" platform-backend
start gateway env $(tls gateway) bin/gateway
wait_http "http://$GATEWAY_HTTP_ADDR/trueportai-services/health" gateway

P=http://$PLATFORM_HTTP_ADDR/platform/api
G=http://$GATEWAY_HTTP_ADDR/trueportai-services
cat <<QUICK

TruePortAI is running in dev mode (logs: data/logs/, stop: make stop)
  web console       http://$PLATFORM_HTTP_ADDR/console/   (sign up, create an organisation, store a credential, create a key;
                    mails such as sign-in codes and invites are written to data/logs/platform-backend.log)
  platform-backend  http://$PLATFORM_HTTP_ADDR   (gRPC $PLATFORM_GRPC_ADDR, metrics http://$PLATFORM_INTERNAL_ADDR/metrics)
  gateway           http://$GATEWAY_HTTP_ADDR   (gRPC $GATEWAY_GRPC_ADDR, metrics http://$GATEWAY_INTERNAL_ADDR/metrics)
  gRPC between them: mutual TLS (CA and certificates in data/certs), service JWTs
  upstream OpenAI   $UPSTREAM_OPENAI_URL

Quickstart without the console (copy-paste; needs curl and jq):

  P=$P
  G=$G
  curl -s -XPOST \$P/global/auth/register -H 'content-type: application/json' -d '{"email":"me@example.com","password":"correct-horse-1"}'
  GT=\$(curl -s -XPOST \$P/global/auth/login -H 'content-type: application/json' -d '{"email":"me@example.com","password":"correct-horse-1"}' | jq -r .global_access_token)
  TID=\$(curl -s -XPOST \$P/global/tenants -H "authorization: Bearer \$GT" -H 'content-type: application/json' -d '{"name":"Acme","slug":"acme"}' | jq -r .id)
  ST=\$(curl -s -XPOST \$P/global/auth/select-tenant -H "authorization: Bearer \$GT" -H 'content-type: application/json' -d "{\"tenant_id\":\"\$TID\"}" | jq -r .scoped_access_token)
  curl -s -XPUT \$P/service/configs/providers.openai.api_key -H "authorization: Bearer \$ST" -H 'content-type: application/json' -d '{"value":"sk-your-openai-key"}'
  KEY=\$(curl -s -XPOST \$G/api/v1/keys -H "authorization: Bearer \$ST" -H 'content-type: application/json' -d '{"name":"quickstart"}' | jq -r .key)
  curl -s \$G/openai/v1/chat/completions -H "authorization: Bearer \$KEY" -H 'content-type: application/json' -d '{"model":"gpt-4o-mini","messages":[{"role":"user","content":"Hello"}]}'
  sleep 2; curl -s "\$G/api/v1/analytics/logs?limit=5" -H "authorization: Bearer \$ST" | jq .

Official SDKs: base URL \$G/openai/v1 (OpenAI), \$G/anthropic (Anthropic), \$G/google (Gemini); API key = \$KEY.
QUICK
