#!/usr/bin/env bash
# Merging N copies of a profile: Google's pprof (`pprof -proto`) beside `emberscope merge` and
# `emberscope flamegraph`, measured in the same run: wall time and peak memory (GNU time).
# Usage: scripts/bench_vs_pprof.sh [N] [FILE...]   (default 100 copies of heap and cpu.pprof)
set -euo pipefail
cd "$(dirname "$0")/.."
shared="${EMBERSCOPE_SHARED:-$(cd .. && pwd)/shared}"
n="${1:-100}"; shift || true
files=("$@")
[ ${#files[@]} -gt 0 ] || files=("$shared/testdata/pprof/heap" "$shared/testdata/pprof/cpu.pprof")
command -v pprof >/dev/null || sh "$shared/tools/pprof-oracle/install_pprof.sh"
[ -x /usr/bin/time ] || { apt-get update -qq && apt-get install -y -qq time; }
cargo build --release --quiet -p emberscope
bin=target/release/emberscope
tmp=$(mktemp -d); trap 'rm -rf "$tmp"' EXIT

measure() { # prints "seconds max_rss_kib" of the best of 5 runs (wall time from the shell's
  # microsecond clock, peak memory from GNU time)
  local best_s="" best_k=""
  for _ in 1 2 3 4 5; do
    local start=$EPOCHREALTIME
    /usr/bin/time -f "%M" -o "$tmp/t" "$@" >/dev/null 2>"$tmp/err" || { cat "$tmp/err"; exit 1; }
    local end=$EPOCHREALTIME
    local s k; s=$(awk -v a="$start" -v b="$end" 'BEGIN{printf "%.4f", b - a}'); read -r k < "$tmp/t"
    if [ -z "$best_s" ] || awk "BEGIN{exit !($s < $best_s)}"; then best_s=$s; best_k=$k; fi
  done
  echo "$best_s $best_k"
}

printf '| input | tool | wall s | peak RSS MiB | speed-up vs pprof | memory vs pprof |\n|---|---|---|---|---|---|\n'
for f in "${files[@]}"; do
  args=(); for _ in $(seq "$n"); do args+=("$f"); done
  read -r ps pk < <(measure pprof -symbolize=none -proto -output "$tmp/p.pb.gz" "${args[@]}")
  read -r ms mk < <(measure "$bin" merge "${args[@]}" -o "$tmp/m.pb.gz")
  read -r fs fk < <(measure "$bin" flamegraph "${args[@]}" --max-nodes 8192)
  name="$(basename "$f") x$n"
  row() { awk -v n="$name" -v t="$1" -v s="$2" -v k="$3" -v ps="$ps" -v pk="$pk" 'BEGIN{
      printf("| %s | %s | %.3f | %.1f | %.1fx | %.2f |\n", n, t, s, k/1024, ps/s, k/pk) }'; }
  row "pprof -proto" "$ps" "$pk"
  row "emberscope merge" "$ms" "$mk"
  row "emberscope flamegraph" "$fs" "$fk"
done
