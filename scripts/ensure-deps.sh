#!/usr/bin/env bash
# Makes sure Postgres (127.0.0.1:5432), NATS with JetStream (127.0.0.1:4222) and Redis (127.0.0.1:6379)
# answer. Starts the Debian-installed servers when they are down; otherwise
# says exactly what to install.
set -euo pipefail

pg_up() { pg_isready -q -h 127.0.0.1 -p 5432 2>/dev/null; }
nats_up() { (exec 3<>/dev/tcp/127.0.0.1/4222) 2>/dev/null; }
wait_for() { for _ in $(seq 1 30); do "$1" && return 0; sleep 1; done; return 1; }

if ! pg_up; then
	if command -v pg_ctlcluster >/dev/null 2>&1 && [ -d /etc/postgresql ]; then
		echo "starting PostgreSQL..."
		pg_ctlcluster --skip-systemctl-redirect "$(ls /etc/postgresql | head -1)" main start || true
		wait_for pg_up || { echo "PostgreSQL did not come up on 127.0.0.1:5432" >&2; exit 1; }
	else
		echo "PostgreSQL is not running and not installed. Install it: apt-get install postgresql (trust auth for user postgres on 127.0.0.1)" >&2
		exit 1
	fi
fi

if ! nats_up; then
	if [ -x /usr/sbin/nats-server ] || command -v nats-server >/dev/null 2>&1; then
		echo "starting NATS (JetStream)..."
		bin=$(command -v nats-server || echo /usr/sbin/nats-server)
		mkdir -p /var/lib/nats-server 2>/dev/null || true
		start-stop-daemon --start --oknodo --background --exec "$bin" -- -a 127.0.0.1 -p 4222 -js -sd /var/lib/nats-server -l /var/log/nats-server.log 2>/dev/null \
			|| (nohup "$bin" -a 127.0.0.1 -p 4222 -js -sd "${TMPDIR:-/tmp}/nats-js" >/dev/null 2>&1 &)
		wait_for nats_up || { echo "NATS did not come up on 127.0.0.1:4222" >&2; exit 1; }
	else
		echo "NATS is not running and not installed. Install it: apt-get install nats-server (run with -js)" >&2
		exit 1
	fi
fi

# Redis: the shared-limits tests use the local server under their own key
# prefixes (and start private redis-servers for outages).
redis_up() { (exec 3<>/dev/tcp/127.0.0.1/6379) 2>/dev/null; }
if ! redis_up; then
	if command -v redis-server >/dev/null 2>&1; then
		echo "starting Redis..."
		redis-server --daemonize yes --bind 127.0.0.1 --port 6379 --save "" --appendonly no --dir "${TMPDIR:-/tmp}" >/dev/null
		wait_for redis_up || { echo "Redis did not come up on 127.0.0.1:6379" >&2; exit 1; }
	else
		echo "Redis is not running and not installed. Install it: apt-get install redis-server" >&2
		exit 1
	fi
fi
