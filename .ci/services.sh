#!/usr/bin/env bash
# Start PostgreSQL, Redis and RabbitMQ on loopback when they are down; fail loudly under CI.
set -u
up() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }
wait_for() { for _ in $(seq 1 60); do up "$1" && return 0; sleep 1; done; return 1; }
failed=0

if ! up 5432; then
  echo "services: starting PostgreSQL"
  pg_ctlcluster --skip-systemctl-redirect "$(ls /etc/postgresql | head -n1)" main start || true
fi
wait_for 5432 || { echo "services: PostgreSQL is not reachable on 127.0.0.1:5432"; failed=1; }

if ! up 6379; then
  echo "services: starting Redis"
  redis-server --daemonize yes --bind 127.0.0.1 --port 6379 --save "" --appendonly no >/dev/null 2>&1 || true
fi
wait_for 6379 || { echo "services: Redis is not reachable on 127.0.0.1:6379"; failed=1; }

if ! up 5672; then
  echo "services: starting RabbitMQ"
  rabbitmq-server -detached >/dev/null 2>&1 || true
fi
wait_for 5672 || { echo "services: RabbitMQ is not reachable on 127.0.0.1:5672"; failed=1; }

if [ "$failed" = 1 ] && [ "${CI:-}" = "true" ]; then
  echo "services: a required service is down; failing (CI=true)"
  exit 1
fi
exit 0
