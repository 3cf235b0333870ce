#!/usr/bin/env bash
# Cold kernel build, `lab` profile vs `defconfig` profile with the same labctl fragments:
# wall time of `make -j$(nproc) bzImage modules`, options set and object files built.
# Prints one line per profile and the ratio. Not a test: it takes 5-20 minutes per profile.
#
# usage: bench/config-build.sh [TREE]          (default: /var/tmp/seed/linux-5.10.46)
#   PROFILES="lab defconfig"  which profiles (in order)
#   BENCH_DIR=/var/tmp/labctl-bench  where the configs and object folders go (kept for inspection)
#   LABCTL=path/to/labctl     the binary (default: target/release, else target/debug)
# The tree must build on this host as is (the seed tree carries the two 5.10.46 fixes for
# GCC 12 and pahole 1.24; `labctl kernel build` applies them itself).
set -euo pipefail
TREE=${1:-/var/tmp/seed/linux-5.10.46}
PROFILES=${PROFILES:-lab defconfig}
BENCH_DIR=${BENCH_DIR:-/var/tmp/labctl-bench}
HERE=$(cd "$(dirname "$0")/.." && pwd)
LABCTL=${LABCTL:-}
if [ -z "$LABCTL" ]; then
  for c in "$HERE/target/release/labctl" "$HERE/target/debug/labctl"; do [ -x "$c" ] && LABCTL=$c && break; done
fi
[ -x "${LABCTL:-}" ] || { echo "build labctl first (cargo build)" >&2; exit 2; }
VERSION=$(awk -F' = ' '/^VERSION/{v=$2} /^PATCHLEVEL/{p=$2} /^SUBLEVEL/{s=$2} END{print v"."p"."s}' "$TREE/Makefile")
JOBS=$(nproc)
mkdir -p "$BENCH_DIR"
export CCACHE_DISABLE=1   # cold means cold
printf '%-10s %8s %8s %9s  %s\n' profile options objects seconds config
declare -A SECS
for p in $PROFILES; do
  obj="$BENCH_DIR/$p-obj"
  rm -rf "$obj"; mkdir -p "$obj"
  "$LABCTL" -qq --home "$BENCH_DIR/home" kernel config "$VERSION" --source "$TREE" --profile "$p" --out "$obj/.config" >/dev/null
  make -s -C "$TREE" O="$obj" olddefconfig >/dev/null
  start=$(date +%s)
  if ! make -C "$TREE" O="$obj" -j"$JOBS" bzImage modules >"$BENCH_DIR/$p-build.log" 2>&1; then
    echo "$p: build failed, see $BENCH_DIR/$p-build.log" >&2; exit 1
  fi
  secs=$(( $(date +%s) - start ))
  SECS[$p]=$secs
  options=$(grep -c '^CONFIG_.*=' "$obj/.config")
  objects=$(find "$obj" -name '*.o' ! -name '*.mod.o' | wc -l)
  printf '%-10s %8d %8d %9d  %s\n' "$p" "$options" "$objects" "$secs" "$obj/.config"
done
if [ -n "${SECS[lab]:-}" ] && [ -n "${SECS[defconfig]:-}" ]; then
  awk -v l="${SECS[lab]}" -v d="${SECS[defconfig]}" 'BEGIN{printf "defconfig/lab build time: %.2fx (target >= 3.3x)\n", d/l}'
fi
