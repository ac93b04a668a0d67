#!/usr/bin/env bash
# A whole emberscope cluster on this machine, on loopback, for trying cluster mode and for the
# multi-process tests:
#
#   scripts/cluster.sh up DIR          starts a real S3 server (moto) and PostgreSQL, then
#                                      2 distributors, 3 segment writers, 1 query frontend,
#                                      2 query backends and 1 compactor; writes DIR/cluster.env
#                                      (INGEST_URLS, space-separated, and QUERY_URL) and one pid
#                                      file per process, DIR/pids/<role>-<n>.pid
#   scripts/cluster.sh down DIR        stops everything `up` started
#   scripts/cluster.sh start DIR P     (re)starts process P (for example segment-writer-2) on
#                                      its port, after a crash or a `kill -9`
#   scripts/cluster.sh stop DIR P      stops process P (SIGTERM: it leaves the cluster cleanly)
#
# Environment: EMBERSCOPE_BIN (default target/release/emberscope, built if missing),
# EMBERSCOPE_MOTO_SERVER (default: the one scripts/test.sh installs, else installed here),
# EMBERSCOPE_POSTGRES (a libpq connection string; default: scripts/postgres.sh's server). Each
# cluster gets its own database and bucket, so clusters do not see each other.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
usage() { echo "usage: $0 up|down DIR | start|stop DIR <role>-<n>" >&2; exit 2; }
[ $# -ge 2 ] || usage
command="$1"
dir="$2"
mkdir -p "$dir"
dir="$(cd "$dir" && pwd)"

# The layout: role and how many.
layout="distributor:2 segment-writer:3 query-frontend:1 query-backend:2 compactor:1"

free_port() {
  python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

wait_http() { # URL SECONDS: until the URL answers 200
  local deadline=$((SECONDS + $2))
  until curl -fsS -o /dev/null --max-time 2 "$1" 2>/dev/null; do
    if [ $SECONDS -ge $deadline ]; then
      echo "no answer from $1 within $2 s" >&2
      return 1
    fi
    sleep 0.2
  done
}

# Starts process NAME (<role>-<n>) with its recorded port, in the background.
start_process() {
  local name="$1"
  local role="${name%-*}"
  # shellcheck disable=SC1091
  source "$dir/cluster.env"
  local port
  port="$(cat "$dir/ports/$name")"
  local pidfile="$dir/pids/$name.pid"
  if [ -f "$pidfile" ] && kill -0 "$(cat "$pidfile")" 2>/dev/null; then
    echo "$name is already running (pid $(cat "$pidfile"))" >&2
    return 0
  fi
  mkdir -p "$dir/data/$name"
  # Segment writers and distributors must not be named by the data folder alone: each start
  # is a new member (heads are in memory; what was acknowledged is in object storage).
  setsid "$EMBERSCOPE_BIN" serve --config.file "$dir/emberscope.yaml" --target "$role" \
    --listen "127.0.0.1:$port" --data "$dir/data/$name" \
    >>"$dir/logs/$name.log" 2>&1 </dev/null &
  echo $! >"$pidfile"
}

stop_pidfile() { # PIDFILE SIGNAL
  local pidfile="$1" pid
  [ -f "$pidfile" ] || return 0
  pid="$(cat "$pidfile")"
  if kill -0 "$pid" 2>/dev/null; then
    kill "-$2" "$pid" 2>/dev/null || true
    for _ in $(seq 1 100); do
      kill -0 "$pid" 2>/dev/null || break
      sleep 0.1
    done
    kill -KILL "$pid" 2>/dev/null || true
  fi
  rm -f "$pidfile"
}

binary() {
  EMBERSCOPE_BIN="${EMBERSCOPE_BIN:-$root/target/release/emberscope}"
  if [ ! -x "$EMBERSCOPE_BIN" ]; then
    (cd "$root" && cargo build --release --locked --bin emberscope >&2)
  fi
  export EMBERSCOPE_BIN
}

up() {
  if [ -f "$dir/cluster.env" ]; then
    echo "$dir already holds a cluster: scripts/cluster.sh down $dir first" >&2
    exit 1
  fi
  binary
  mkdir -p "$dir/pids" "$dir/logs" "$dir/data" "$dir/ports"
  # A real S3 server.
  local moto="${EMBERSCOPE_MOTO_SERVER:-$root/target/test-venv/bin/moto_server}"
  if [ ! -x "$moto" ]; then
    python3 -m venv "$dir/venv"
    "$dir/venv/bin/pip" install -q 'moto[server]'
    moto="$dir/venv/bin/moto_server"
  fi
  local s3_port bucket
  s3_port="$(free_port)"
  setsid "$moto" -H 127.0.0.1 -p "$s3_port" >"$dir/logs/s3-1.log" 2>&1 </dev/null &
  echo $! >"$dir/pids/s3-1.pid"
  wait_http "http://127.0.0.1:$s3_port/" 60
  bucket="emberscope-$(date +%s)-$$"
  curl -fsS -o /dev/null -X PUT "http://127.0.0.1:$s3_port/$bucket"
  # PostgreSQL, and a database of this cluster's own.
  local postgres started_postgres=0 database
  if [ -n "${EMBERSCOPE_POSTGRES:-}" ]; then
    postgres="$EMBERSCOPE_POSTGRES"
  else
    if ! pg_lsclusters --no-header 2>/dev/null | grep -q online; then
      started_postgres=1
    fi
    postgres="$("$root/scripts/postgres.sh")"
  fi
  database="emberscope_cluster_$(date +%s)_$$"
  psql "$postgres" -qAtc "CREATE DATABASE $database" >/dev/null
  local cluster_postgres
  cluster_postgres="$(echo "$postgres" | sed -E "s/dbname=[^ ]+/dbname=$database/")"
  cat >"$dir/emberscope.yaml" <<EOF
# Written by scripts/cluster.sh: every process of this cluster reads it.
storage:
  backend: s3
  s3:
    bucket: $bucket
    endpoint: http://127.0.0.1:$s3_port
    region: us-east-1
    access-key-id: emberscope
    secret-access-key: emberscope
    allow-http: true
metastore:
  backend: postgres
  postgres:
    url: "$cluster_postgres"
cluster:
  heartbeat-interval: 500ms
  member-lease: 3s
EOF
  local ingest="" query=""
  for entry in $layout; do
    local role="${entry%:*}" count="${entry#*:}"
    for n in $(seq 1 "$count"); do
      local port
      port="$(free_port)"
      echo "$port" >"$dir/ports/$role-$n"
      case "$role" in
        distributor) ingest="$ingest http://127.0.0.1:$port" ;;
        query-frontend) query="http://127.0.0.1:$port" ;;
      esac
    done
  done
  cat >"$dir/cluster.env" <<EOF
INGEST_URLS="${ingest# }"
QUERY_URL="$query"
S3_ENDPOINT="http://127.0.0.1:$s3_port"
S3_BUCKET="$bucket"
POSTGRES_ADMIN="$postgres"
POSTGRES_DATABASE="$database"
STARTED_POSTGRES=$started_postgres
EMBERSCOPE_BIN="$EMBERSCOPE_BIN"
EOF
  for entry in $layout; do
    local role="${entry%:*}" count="${entry#*:}"
    for n in $(seq 1 "$count"); do
      start_process "$role-$n"
    done
  done
  # Ready: every process answers /ready (distributors once a writer is live, the frontend
  # once a backend is).
  for file in "$dir"/ports/*; do
    wait_http "http://127.0.0.1:$(cat "$file")/ready" 60
  done
  echo "cluster up: $dir/cluster.env"
  cat "$dir/cluster.env"
}

down() {
  [ -f "$dir/cluster.env" ] || { echo "no cluster in $dir" >&2; exit 1; }
  # shellcheck disable=SC1091
  source "$dir/cluster.env"
  for pidfile in "$dir"/pids/*.pid; do
    [ -e "$pidfile" ] || continue
    case "$pidfile" in */s3-*) continue ;; esac
    stop_pidfile "$pidfile" TERM
  done
  stop_pidfile "$dir/pids/s3-1.pid" TERM
  psql "$POSTGRES_ADMIN" -qAtc "DROP DATABASE IF EXISTS $POSTGRES_DATABASE WITH (FORCE)" >/dev/null || true
  if [ "$STARTED_POSTGRES" = 1 ]; then
    read -r version name _ <<<"$(pg_lsclusters --no-header | head -1)"
    pg_ctlcluster "$version" "$name" stop || true
  fi
  rm -f "$dir/cluster.env"
  echo "cluster down: $dir"
}

case "$command" in
  up) up ;;
  down) down ;;
  start)
    [ $# -eq 3 ] || usage
    [ -f "$dir/ports/$3" ] || { echo "no process $3 in $dir" >&2; exit 1; }
    # shellcheck disable=SC1091
    source "$dir/cluster.env"
    export EMBERSCOPE_BIN
    start_process "$3"
    wait_http "http://127.0.0.1:$(cat "$dir/ports/$3")/ready" 60
    ;;
  stop)
    [ $# -eq 3 ] || usage
    stop_pidfile "$dir/pids/$3.pid" TERM
    ;;
  *) usage ;;
esac
