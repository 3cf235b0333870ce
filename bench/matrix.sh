#!/bin/sh
# The kernel × toolchain matrix of docs/coverage.md: every kernel built and tested with
# every toolchain (host and Debian releases' compilers in cached root filesystems; needs
# root and mmdebstrap for the debian:* ones). Prints labctl's table and the wall time;
# keeps the JSON (per-cell build and test seconds) next to it.
#
# usage: bench/matrix.sh [KERNELS] [TOOLCHAINS]
#   default: 5.10.46,6.12,7.1  host,debian:bullseye,debian:trixie
# env:   LABCTL (binary, default target/release/labctl or target/debug/labctl),
#        OUT (folder for matrix.json and matrix.txt, default a temporary one)
# Cold, this is nine kernel builds: hours on 2 cores. Exit code: labctl matrix's.
set -eu
cd "$(dirname "$0")/.."
LABCTL=${LABCTL:-}
if [ -z "$LABCTL" ]; then
  if [ -x target/release/labctl ]; then LABCTL=target/release/labctl; else LABCTL=target/debug/labctl; fi
fi
KERNELS=${1:-5.10.46,6.12,7.1}
TOOLCHAINS=${2:-host,debian:bullseye,debian:trixie}
OUT=${OUT:-$(mktemp -d)}
mkdir -p "$OUT"
s=$(date +%s)
rc=0
"$LABCTL" matrix --kernels "$KERNELS" --toolchains "$TOOLCHAINS" > "$OUT/matrix.txt" || rc=$?
"$LABCTL" -q --json matrix --kernels "$KERNELS" --toolchains "$TOOLCHAINS" > "$OUT/matrix.json" || true
e=$(date +%s)
cat "$OUT/matrix.txt"
echo
echo "matrix: kernels $KERNELS × toolchains $TOOLCHAINS: $((e - s)) s, exit $rc (JSON: $OUT/matrix.json)"
exit "$rc"
