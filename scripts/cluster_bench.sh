#!/usr/bin/env bash
# The cluster benchmarks (issue 16), each layout measured in the same run against the same
# metastore (PostgreSQL, scripts/postgres.sh) and storage (a local folder shared by the
# processes), with `emberscope loadgen` pushing the real profiles of testdata/pprof:
#
#   ingest  SECONDS RATE   CPU per MB through the network hop: `all` in one process against a
#                          distributor + 1 segment writer, at the same offered rate (pushes/s);
#                          then the most each layout takes (1, 2 and 3 writers) with the loader
#                          asking for more than it can. CPU is every emberscope process's, from /proc.
#   query   SECONDS        query latency with 1 and 2 query backends behind one frontend, and
#                          of a frontend running its tasks in process (backends:0), on data
#                          pushed first (`emberscope query flamegraph` timed 30 times).
#
#   scripts/cluster_bench.sh ingest 20 400
#   scripts/cluster_bench.sh query 20
#   (environment: BIN = a binary instead of building target/release/emberscope)
set -euo pipefail
cd "$(dirname "$0")/.."
mode="${1:-ingest}"
seconds="${2:-20}"
rate="${3:-400}"
if [ -z "${BIN:-}" ]; then cargo build --release --quiet --bin emberscope; fi
bin="$(realpath "${BIN:-target/release/emberscope}")"
postgres="$(scripts/postgres.sh)"
work=$(mktemp -d)
pids=()
databases=()
cleanup() {
  for pid in "${pids[@]:-}"; do [ -n "$pid" ] && kill "$pid" 2>/dev/null || true; done
  wait 2>/dev/null || true
  for database in "${databases[@]:-}"; do
    [ -n "$database" ] && psql "$postgres" -qAtc "DROP DATABASE IF EXISTS $database" >/dev/null 2>&1 || true
  done
  rm -rf "$work"
}
trap cleanup EXIT

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

# Starts a layout in a fresh database and storage folder: "all" or "hop:N" (1 distributor,
# N segment writers). Sets URL (where to push and query) and PIDS_LAYOUT.
start_layout() {
  local layout="$1" database="bench_$(date +%s%N)"
  psql "$postgres" -qAtc "CREATE DATABASE $database" >/dev/null
  databases+=("$database")
  local url_db
  url_db="$(echo "$postgres" | sed -E "s/dbname=[^ ]+/dbname=$database/")"
  local dir="$work/$database"
  mkdir -p "$dir/objects"
  local common=(serve --storage.backend filesystem --storage.filesystem.dir "$dir/objects"
    --metastore.backend postgres --metastore.postgres.url "$url_db"
    --distributor.ingestion-rate-limit-mb 0)
  PIDS_LAYOUT=()
  start_one() { # TARGET
    local port
    port=$(free_port)
    "$bin" "${common[@]}" --target "$1" --listen "127.0.0.1:$port" --data "$dir/data-$port" \
      >"$dir/$port.out" 2>"$dir/$port.err" &
    pids+=($!)
    PIDS_LAYOUT+=($!)
    for _ in $(seq 200); do grep -q listening "$dir/$port.out" 2>/dev/null && break; sleep 0.05; done
    LAST_URL="http://127.0.0.1:$port"
  }
  case "$layout" in
    all) start_one all; URL="$LAST_URL" ;;
    hop:*)
      for _ in $(seq 1 "${layout#hop:}"); do start_one segment-writer; done
      start_one distributor; URL="$LAST_URL"
      ;;
    backends:*)
      start_one distributor,segment-writer,compactor; INGEST="$LAST_URL"
      if [ "${layout#backends:}" = 0 ]; then
        # The baseline: the frontend runs its read tasks itself, in process.
        start_one query-frontend,query-backend; URL="$LAST_URL"
      else
        for _ in $(seq 1 "${layout#backends:}"); do start_one query-backend; done
        start_one query-frontend; URL="$LAST_URL"
      fi
      ;;
  esac
  for _ in $(seq 100); do
    curl -fsS -o /dev/null "$URL/ready" 2>/dev/null && break
    sleep 0.1
  done
}

stop_layout() {
  for pid in "${PIDS_LAYOUT[@]}"; do kill "$pid" 2>/dev/null || true; done
  for pid in "${PIDS_LAYOUT[@]}"; do wait "$pid" 2>/dev/null || true; done
}

ticks() { # the CPU ticks of the layout's processes
  local sum=0
  for pid in "${PIDS_LAYOUT[@]}"; do
    sum=$((sum + $(awk '{print $14 + $15}' "/proc/$pid/stat")))
  done
  echo "$sum"
}

hz=$(getconf CLK_TCK)

# Pushes for SECONDS at RATE pushes/s with CONCURRENCY in flight (default 256; saturation runs
# ask 5000/s with 1024 in flight, more than any layout takes here); prints
# "MB MB/s cpu-seconds p99".
push() {
  local url="$1" rate="$2" concurrency="${3:-256}" before after report
  before=$(ticks)
  local args=(loadgen --url "$url" --services 10 --pods 10 --interval 1s --duration "${seconds}s"
    --concurrency "$concurrency" --profiles testdata/pprof)
  [ -n "$rate" ] && args+=(--rate "$rate")
  report=$("$bin" "${args[@]}")
  after=$(ticks)
  local mb mbs p99 failed
  mb=$(echo "$report" | sed -n 's/.*(\([0-9.]*\) MB total).*/\1/p')
  mbs=$(echo "$report" | sed -n 's/.*, \([0-9.]*\) MB\/s uncompressed.*/\1/p')
  p99=$(echo "$report" | sed -n 's/.* p99 \([^ ]*\) .*/\1/p')
  failed=$(echo "$report" | sed -n 's/.* ok, \([0-9]*\) failed.*/\1/p')
  echo "$mb $mbs $(python3 -c "print(($after - $before) / $hz)") $p99 $failed"
}

case "$mode" in
  ingest)
    echo "offered rate $rate pushes/s for ${seconds}s; CPU of every emberscope process"
    printf '%-22s %8s %8s %9s %10s %8s %7s\n' layout MB MB/s CPU-s "MB/CPU-s" p99 failed
    declare -A per_cpu
    for layout in all hop:1; do
      start_layout "$layout"
      read -r mb mbs cpu p99 failed <<<"$(push "$URL" "$rate")"
      per_cpu[$layout]=$(python3 -c "print(f'{$mb / max($cpu, 1e-9):.2f}')")
      printf '%-22s %8s %8s %9.2f %10s %8s %7s\n' "$layout (rate $rate)" "$mb" "$mbs" "$cpu" "${per_cpu[$layout]}" "$p99" "$failed"
      stop_layout
    done
    echo "CPU per MB through the hop: $(python3 -c "print(f'{${per_cpu[all]} / ${per_cpu[hop:1]}:.2f}')")× the single process's"
    for layout in all hop:1 hop:2 hop:3; do
      start_layout "$layout"
      read -r mb mbs cpu p99 failed <<<"$(push "$URL" 5000 1024)"
      printf '%-22s %8s %8s %9.2f %10s %8s %7s\n' "$layout (saturated)" "$mb" "$mbs" "$cpu" \
        "$(python3 -c "print(f'{$mb / max($cpu, 1e-9):.2f}')")" "$p99" "$failed"
      stop_layout
    done
    ;;
  query)
    printf '%-14s %10s %10s %10s\n' layout p50-ms p90-ms max-ms
    for layout in backends:0 backends:1 backends:2; do
      start_layout "$layout"
      push "$INGEST" 200 >/dev/null
      sleep 2
      times=()
      for _ in $(seq 1 30); do
        start=$(date +%s%N)
        "$bin" query flamegraph --url "$URL" --from now-1h \
          --query 'process_cpu:cpu:nanoseconds:cpu:nanoseconds{}' >/dev/null
        times+=($(( ($(date +%s%N) - start) / 1000000 )))
      done
      python3 - "$layout" "${times[@]}" <<'EOF'
import sys, statistics
layout, times = sys.argv[1], sorted(int(t) for t in sys.argv[2:])
print(f"{layout:<14} {times[len(times)//2]:>10} {times[int(len(times)*0.9)]:>10} {times[-1]:>10}")
EOF
      stop_layout
    done
    ;;
  *) echo "usage: $0 ingest SECONDS RATE | query SECONDS" >&2; exit 2 ;;
esac
echo "machine: $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs)"
