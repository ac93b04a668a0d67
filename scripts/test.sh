#!/usr/bin/env bash
# The one test command (README, .ci/run): sets up what a fresh machine lacks, then runs every
# check CI runs. Set-up steps are skipped when their result is already there.
set -euo pipefail
cd "$(dirname "$0")/.."
# One cold build: incremental state would only cost time and many GB of disk.
export CARGO_INCREMENTAL="${CARGO_INCREMENTAL:-0}"

step() { printf '\n==> %s\n' "$*"; }

step "set-up: C toolchain, rustfmt and clippy, Google's pprof (the oracle), python3, curl"
# zstd-sys and libfuzzer-sys compile C/C++; the pprof oracle needs Go from Debian.
missing=()
command -v cc >/dev/null 2>&1 || missing+=(gcc)
command -v c++ >/dev/null 2>&1 || missing+=(g++)
command -v make >/dev/null 2>&1 || missing+=(make)
command -v python3 >/dev/null 2>&1 || missing+=(python3)
# scripts/cluster.sh (the multi-process tests) waits for its processes with curl.
command -v curl >/dev/null 2>&1 || missing+=(curl)
if [ ${#missing[@]} -gt 0 ]; then
  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}"
fi
if command -v rustup >/dev/null 2>&1; then
  rustup component add rustfmt clippy >/dev/null 2>&1 || true
fi
if ! command -v pprof >/dev/null 2>&1; then
  sh scripts/pprof-oracle/install_pprof.sh
fi

step "set-up: Python tools from PyPI: a real S3 server (moto), the Pyroscope Python SDK, grpcio, the deployment examples' validators"
venv=target/test-venv
if [ ! -x "$venv/bin/python" ]; then
  python3 -m venv "$venv" 2>/dev/null || {
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq python3-venv
    python3 -m venv "$venv"
  }
fi
if [ ! -x "$venv/bin/moto_server" ] || ! "$venv/bin/python" -c 'import pyroscope, grpc, grpc_tools, check_jsonschema, kubernetes_validate' 2>/dev/null; then
  "$venv/bin/pip" install -q 'moto[server]' pyroscope-io grpcio grpcio-tools check-jsonschema kubernetes-validate
fi
export EMBERSCOPE_MOTO_SERVER="$PWD/$venv/bin/moto_server"
export EMBERSCOPE_PYTHON="$PWD/$venv/bin/python"

step "set-up: the Pyroscope Node.js SDK from npm (for the end-to-end SDK test)"
command -v node >/dev/null 2>&1 || { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq nodejs npm; }
if [ ! -d crates/emberscope/tests/sdk/node/node_modules/@pyroscope/nodejs ]; then
  (cd crates/emberscope/tests/sdk/node && npm ci --silent --no-audit --no-fund)
fi

step "set-up: Azurite from npm (Azure's blob emulator, for the storage conformance suite)"
if [ ! -x crates/storage/tests/azurite/node_modules/.bin/azurite-blob ]; then
  (cd crates/storage/tests/azurite && npm ci --silent --no-audit --no-fund)
fi

step "set-up: Chromium (Debian's) and playwright-core from npm, for the browser tests of the UI"
command -v chromium >/dev/null 2>&1 || { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null; }
if [ ! -d crates/emberscope/tests/ui/node_modules/playwright-core ]; then
  (cd crates/emberscope/tests/ui && npm ci --silent --no-audit --no-fund)
fi

step "set-up: a JDK (the JFR tests record a Java program with the JDK's own recorder)"
if ! command -v javac >/dev/null 2>&1; then
  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq openjdk-17-jdk-headless >/dev/null
fi

step "set-up: PostgreSQL for the metastore conformance suite (Debian's package, started here)"
EMBERSCOPE_POSTGRES="$(scripts/postgres.sh)"
export EMBERSCOPE_POSTGRES

step "format"
cargo fmt --all -- --check

step "lint"
cargo clippy --workspace --all-targets --locked -- -D warnings

step "tests"
cargo test --workspace --locked

step "fuzz (bounded)"
scripts/fuzz.sh "${FUZZ_SECONDS:-60}"
