#!/usr/bin/env bash
# Records the profiles `emberscope loadgen` carries in the binary as its default mix
# (crates/emberscope/profiles/): one small web-service workload (JSON, hashing, sorting,
# compression, regular expressions, string building), written four times in
# scripts/record-profiles/ and profiled by real profilers:
#   go-cpu.pb.gz, go-heap.pb.gz   go_service.go, Go's runtime/pprof
#   python-cpu.pb.gz              python_service.py, the Pyroscope Python SDK (pyroscope-io)
#   node-wall.pb.gz               node_service.js, the Pyroscope Node.js SDK (@pyroscope/nodejs)
#   java-cpu.pb.gz                Service.java, the JDK's Flight Recorder
# The SDK and JFR profiles go through `emberscope serve` and come back with
# `emberscope query pprof`, so they are what the server stores. Needs what scripts/test.sh
# installs (Go with the pprof oracle, the test venv, the Node.js SDK, a JDK). Rerun it only to
# refresh the mix; the files are committed.
set -euo pipefail
cd "$(dirname "$0")/.."
out=crates/emberscope/profiles
seconds="${SECONDS_PER_PROGRAM:-8}"
cargo build --quiet -p emberscope
bin=target/debug/emberscope
work=$(mktemp -d)
trap 'kill "${server:-}" 2>/dev/null || true; rm -rf "$work"' EXIT

src="$PWD/scripts/record-profiles"
echo "Go: go_service.go"
(cd "$work" && GO111MODULE=off GOCACHE="$work/gocache" go run "$src/go_service.go" \
  -seconds "$seconds" -cpu "$work/go-cpu.pb.gz" -heap "$work/go-heap.pb.gz" >/dev/null)
cp "$work/go-cpu.pb.gz" "$work/go-heap.pb.gz" "$out/"

port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
"$bin" serve --listen "127.0.0.1:$port" --data "$work/data" > "$work/server.out" 2>&1 &
server=$!
for _ in $(seq 100); do grep -q listening "$work/server.out" 2>/dev/null && break; sleep 0.1; done
url="http://127.0.0.1:$port"

echo "Python: python_service.py"
APP_NAME=python-app SERVER="$url" target/test-venv/bin/python "$src/python_service.py" "$seconds"
echo "Node.js: node_service.js"
APP_NAME=node-app SERVER="$url" NODE_PATH=crates/emberscope/tests/sdk/node/node_modules \
  node "$src/node_service.js" "$((seconds * 1000))"
echo "Java: Service.java under the JDK's Flight Recorder"
javac -d "$work" "$src/Service.java"
java "-XX:StartFlightRecording=filename=$work/service.jfr,settings=profile" -cp "$work" Service \
  "$((seconds * 1000))" >/dev/null
"$bin" upload "$work/service.jfr" --service java-app --url "$url" >/dev/null
sleep 1

export_profile() { # service, profile type, file
  "$bin" query pprof --url "$url" --from now-1h --to now \
    --query "$2{service_name=\"$1\"}" -o "$out/$3" >/dev/null
}
export_profile python-app process_cpu:cpu:nanoseconds:cpu:nanoseconds python-cpu.pb.gz
export_profile node-app wall:wall:nanoseconds:wall:nanoseconds node-wall.pb.gz
export_profile java-app process_cpu:cpu:nanoseconds:cpu:nanoseconds java-cpu.pb.gz
ls -l "$out"/*.pb.gz
