#!/usr/bin/env bash
# The one test command (README, .ci/run): sets up what a fresh machine lacks, then runs every
# check CI runs. Set-up steps are skipped when their result is already there.
set -euo pipefail
cd "$(dirname "$0")/.."
export EMBERSCOPE_SHARED="${EMBERSCOPE_SHARED:-$(cd .. && pwd)/shared}"

step() { printf '\n==> %s\n' "$*"; }

step "set-up: Google's pprof (the oracle) and python3"
if ! command -v pprof >/dev/null 2>&1; then
  sh "$EMBERSCOPE_SHARED/tools/pprof-oracle/install_pprof.sh"
fi
command -v python3 >/dev/null 2>&1 || { apt-get update -qq && apt-get install -y -qq python3; }

step "format"
cargo fmt --all -- --check

step "lint"
cargo clippy --workspace --all-targets --locked -- -D warnings

step "tests"
cargo test --workspace --locked

step "fuzz (bounded)"
scripts/fuzz.sh "${FUZZ_SECONDS:-60}"
