#!/usr/bin/env bash
# Builds the binary we ship and prints its path: statically linked (glibc, libgcc and the C
# libraries inside, so it runs on any x86-64 Linux whatever its glibc) and not
# position-independent, as Pyroscope's own Go binary is. Against the default dynamic PIE build
# (`cargo build --release`) a command starts in about half the time: no dynamic loader, no
# 64,000 relocations to apply and their pages to copy (BENCHMARKS.md, merging 100 copies).
# Static glibc resolves host names from /etc/hosts and DNS only (no other NSS modules).
set -euo pipefail
cd "$(dirname "$0")/.."
target="$(uname -m)-unknown-linux-gnu"
# --target keeps these flags off build scripts and proc macros, which must stay dynamic.
RUSTFLAGS="${RUSTFLAGS:-} -C target-feature=+crt-static -C relocation-model=static" \
  cargo build --release --locked --quiet --target "$target" -p emberscope >&2
bin="target/$target/release/emberscope"
if readelf -lW "$bin" | grep -qE 'INTERP|DYNAMIC'; then
  echo "release.sh: $bin is dynamically linked" >&2
  exit 1
fi
echo "$bin"
