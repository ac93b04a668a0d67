#!/usr/bin/env bash
# Merging N copies of a profile: Google's pprof (`pprof -proto`) beside `emberscope merge` and
# `emberscope flamegraph`, measured in the same run: wall time and peak memory (GNU time); then
# each tool on one copy (its start, one file and its output) and what each further copy costs.
# Usage: scripts/bench_vs_pprof.sh [N] [FILE...]   (default 100 copies of heap and cpu.pprof)
# Measures `cargo build --release`'s binary; BIN=path (relative to the repository) measures
# another build.
set -euo pipefail
cd "$(dirname "$0")/.."
n="${1:-100}"; shift || true
files=("$@")
[ ${#files[@]} -gt 0 ] || files=("testdata/pprof/heap" "testdata/pprof/cpu.pprof")
command -v pprof >/dev/null || sh "scripts/pprof-oracle/install_pprof.sh"
[ -x /usr/bin/time ] || { apt-get update -qq && apt-get install -y -qq time; }
if [ -z "${BIN:-}" ]; then cargo build --release --quiet -p emberscope; fi
bin="${BIN:-target/release/emberscope}"
tmp=$(mktemp -d); trap 'rm -rf "$tmp"' EXIT

measure() { # prints "median_s best_s max_rss_kib": wall times of at least 5 runs (and at least a
  # second of them, at most 50) from a Python timer that starts the command itself, so that no
  # other program's start is counted; peak memory of one more run, from GNU time.
  python3 - "$@" > "$tmp/times" <<'PY' || exit 1
import os, statistics, subprocess, sys, time
times = []
while len(times) < 5 or (sum(times) < 1.0 and len(times) < 50):
    start = time.perf_counter()
    done = subprocess.run(sys.argv[1:], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    times.append(time.perf_counter() - start)
    if done.returncode != 0:
        sys.exit(done.stderr.decode(errors="replace"))
print("%.6f %.6f" % (statistics.median(times), min(times)))
PY
  /usr/bin/time -f "%M" -o "$tmp/t" "$@" >/dev/null 2>"$tmp/err" || { cat "$tmp/err" >&2; exit 1; }
  local k; read -r k < "$tmp/t"
  echo "$(cat "$tmp/times") $k"
}

printf '| input | tool | wall ms, median (best) | peak RSS MiB | speed-up vs pprof, median (best) | memory vs pprof |\n|---|---|---|---|---|---|\n'
marginal="$tmp/marginal"; : > "$marginal"
for f in "${files[@]}"; do
  args=(); for _ in $(seq "$n"); do args+=("$f"); done
  read -r ps pb pk < <(measure pprof -symbolize=none -proto -output "$tmp/p.pb.gz" "${args[@]}")
  read -r ms mb mk < <(measure "$bin" merge "${args[@]}" -o "$tmp/m.pb.gz")
  read -r fs fb fk < <(measure "$bin" flamegraph "${args[@]}" --max-nodes 8192)
  name="$(basename "$f") x$n"
  row() { awk -v n="$name" -v t="$1" -v s="$2" -v b="$3" -v k="$4" -v ps="$ps" -v pb="$pb" -v pk="$pk" 'BEGIN{
      printf("| %s | %s | %.2f (%.2f) | %.1f | %.1fx (%.1fx) | %.2f |\n", n, t, s*1000, b*1000, k/1024, ps/s, pb/b, k/pk) }'; }
  row "pprof -proto" "$ps" "$pb" "$pk"
  row "emberscope merge" "$ms" "$mb" "$mk"
  row "emberscope flamegraph" "$fs" "$fb" "$fk"
  # Each tool on one copy: what it costs to start, read one file and write its output; the
  # difference from N copies, divided by N-1, is what each further file costs, start-up left out.
  if [ "$n" -gt 1 ]; then
    read -r p1 _ _ < <(measure pprof -symbolize=none -proto -output "$tmp/p.pb.gz" "$f")
    read -r m1 _ _ < <(measure "$bin" merge "$f" -o "$tmp/m.pb.gz")
    read -r f1 _ _ < <(measure "$bin" flamegraph "$f" --max-nodes 8192)
    awk -v input="$name" -v copies="$n" -v p1="$p1" -v ps="$ps" -v m1="$m1" -v ms="$ms" -v f1="$f1" -v fs="$fs" '
      function ratio(a, b) { return (a > 0 && b > 0) ? sprintf("%.1fx", a / b) : "-" }
      BEGIN{
        per = 1e6 / (copies - 1); pp = (ps - p1) * per; mp = (ms - m1) * per; fp = (fs - f1) * per
        printf("| %s | pprof -proto | %.2f | %.1f | 1.0x |\n", input, p1*1000, pp)
        printf("| %s | emberscope merge | %.2f | %.1f | %s |\n", input, m1*1000, mp, ratio(pp, mp))
        printf("| %s | emberscope flamegraph | %.2f | %.1f | %s |\n", input, f1*1000, fp, ratio(pp, fp)) }' >> "$marginal"
  fi
done
if [ -s "$marginal" ]; then
  printf '\n| input | tool | one copy: wall ms, median | each further copy: µs | per further copy, vs pprof |\n|---|---|---|---|---|\n'
  cat "$marginal"
fi
