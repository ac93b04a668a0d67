#!/usr/bin/env bash
# Runs every fuzz target for a bounded time (default 60 s each), seeded from the real files of
# testdata/. Uses cargo-fuzz (installed if missing) on the stable toolchain with
# RUSTC_BOOTSTRAP=1, since the sanitizer flags it passes are nightly-only.
set -euo pipefail
cd "$(dirname "$0")/.."
seconds="${1:-60}"
if ! cargo fuzz --version >/dev/null 2>&1; then
  cargo install cargo-fuzz --locked --quiet
fi
export RUSTC_BOOTSTRAP=1
for target in $(cargo fuzz list); do
  corpus="fuzz/corpus/$target"
  mkdir -p "$corpus"
  case "$target" in
    pprof_*) find "testdata/pprof" "testdata/clients" -type f \
               ! -name '*.json' ! -name '*.txt' -exec cp -f {} "$corpus/" \; ;;
    block_*) cp -f crates/block/testdata/*.blk "$corpus/" ;;
    text_*) cp -f testdata/speedscope/*.json "$corpus/" ;;
    otlp_*) cp -f testdata/otlp/*.pb.bin "$corpus/" ;;
    jfr_*) for f in testdata/jfr/*.jfr.gz; do
             gunzip -c "$f" >"$corpus/$(basename "$f" .gz)"
           done ;;
  esac
  echo "fuzzing $target for ${seconds}s"
  cargo fuzz run "$target" "$corpus" fuzz/seeds/"$target" -- \
    -max_total_time="$seconds" -rss_limit_mb=2048 -max_len=1048576 -print_final_stats=1
done
