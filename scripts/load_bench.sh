#!/usr/bin/env bash
# The server load benchmark (issue 4): a release `emberscope serve` on a fresh data folder, and
# `emberscope loadgen` in a second process pushing the real profiles of testdata/pprof
# over loopback. Prints the loader's report plus the server's CPU seconds, uncompressed MB per
# CPU-second and peak RSS, read from /proc.
#
#   scripts/load_bench.sh [SECONDS] [SERVICES] [PODS] [INTERVAL] [RATE]
#   (environment: CONCURRENCY = the loader's pushes in flight, default 512;
#    SERVER_ARGS = extra `emberscope serve` flags, e.g. --distributor.max-inflight-mb=64;
#    SERVER_CPUS / LOADER_CPUS = CPU lists for taskset, e.g. SERVER_CPUS=0 LOADER_CPUS=1 to
#    give the server one core of its own; BIN = a binary to measure instead of building
#    target/release/emberscope, relative to the repository)
set -euo pipefail
cd "$(dirname "$0")/.."
seconds="${1:-30}"; services="${2:-10}"; pods="${3:-10}"; interval="${4:-1s}"; rate="${5:-}"
if [ -z "${BIN:-}" ]; then cargo build --release --quiet --bin emberscope; fi
bin="${BIN:-target/release/emberscope}"
data=$(mktemp -d)
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
# shellcheck disable=SC2086
${SERVER_CPUS:+taskset -c "$SERVER_CPUS"} "$bin" serve --listen "127.0.0.1:$port" --data "$data" --distributor.ingestion-rate-limit-mb 0 ${SERVER_ARGS:-} \
  > "$data/server.out" 2> "$data/server.err" &
server=$!
trap 'kill $server 2>/dev/null; rm -rf "$data"' EXIT
for _ in $(seq 100); do grep -q listening "$data/server.out" 2>/dev/null && break; sleep 0.1; done
ticks() { awk '{print $14 + $15}' "/proc/$server/stat"; }
hz=$(getconf CLK_TCK)
before=$(ticks)
args=(loadgen --url "http://127.0.0.1:$port" --services "$services" --pods "$pods"
      --interval "$interval" --duration "${seconds}s" --concurrency "${CONCURRENCY:-512}" --profiles "testdata/pprof")
[ -n "$rate" ] && args+=(--rate "$rate")
report=$(${LOADER_CPUS:+taskset -c "$LOADER_CPUS"} "$bin" "${args[@]}")
after=$(ticks)
echo "$report"
mb=$(echo "$report" | sed -n 's/.*(\([0-9.]*\) MB total).*/\1/p')
cpu=$(python3 -c "print(($after - $before) / $hz)")
echo "server CPU ${cpu} s over ${seconds} s; $(python3 -c "print(f'{$mb / max($cpu, 1e-9):.1f}')") MB uncompressed per server CPU-second"
grep VmHWM "/proc/$server/status" | sed 's/^/server peak RSS: /'
echo "machine: $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs)"
