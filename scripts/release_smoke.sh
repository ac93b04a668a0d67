#!/usr/bin/env bash
# Builds the shipped binary (scripts/release.sh) and checks it does what the test build does:
# the same bytes from the file tools, and a server round trip through "localhost" (a host name
# resolved by the static glibc) with its own client. Called by scripts/test.sh.
set -euo pipefail
cd "$(dirname "$0")/.."
shared="${EMBERSCOPE_SHARED:-$(cd .. && pwd)/shared}"
bin="$(scripts/release.sh)"
test_bin=target/debug/emberscope
[ -x "$test_bin" ] || cargo build --quiet --locked -p emberscope
tmp=$(mktemp -d)
server=""
cleanup() { [ -z "$server" ] || kill "$server" 2>/dev/null || true; rm -rf "$tmp"; }
trap cleanup EXIT
fail() { echo "release_smoke: $*" >&2; exit 1; }

"$bin" --version | grep -q '^emberscope ' || fail "--version"
files=("$shared/testdata/pprof/cpu.pprof" "$shared/testdata/pprof/heap" "$shared/testdata/pprof/go.cpu.labels.pprof")
for tool in release test; do
  b="$bin"; [ "$tool" = test ] && b="$test_bin"
  "$b" merge "${files[0]}" "${files[0]}" -o "$tmp/$tool.pb.gz"
  "$b" collapse "${files[@]:1:1}" > "$tmp/$tool.collapsed"
  "$b" flamegraph "${files[2]}" --max-nodes 64 > "$tmp/$tool.json"
done
for out in pb.gz collapsed json; do
  cmp -s "$tmp/release.$out" "$tmp/test.$out" || fail "release and test builds differ on $out"
done

port=$((20000 + RANDOM % 20000))
"$bin" serve --listen "127.0.0.1:$port" --data "$tmp/data" --validation.reject-older-than 0 \
  > "$tmp/server.log" 2>&1 &
server=$!
for _ in $(seq 100); do
  "$bin" ready --url "http://localhost:$port" >/dev/null 2>&1 && break
  sleep 0.1
done
"$bin" ready --url "http://localhost:$port" >/dev/null || { cat "$tmp/server.log" >&2; fail "server not ready"; }
"$bin" upload --url "http://localhost:$port" --service smoke "${files[0]}" >/dev/null
"$bin" query flamegraph --url "http://localhost:$port" --from 20200101 --to now \
  --query 'process_cpu:cpu:nanoseconds:cpu:nanoseconds{service_name="smoke"}' \
  -o "$tmp/served.collapsed" >/dev/null
"$test_bin" collapse "${files[0]}" > "$tmp/local.collapsed"
cmp -s "$tmp/served.collapsed" "$tmp/local.collapsed" \
  || fail "the server's flame graph of cpu.pprof differs from collapse"
echo "release_smoke: $bin is static, matches the test build, and serves"
