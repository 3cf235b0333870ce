#!/usr/bin/env bash
# Cold kernel build per case, side by side on this machine in one run: wall time of
# `labctl kernel build` (fixes, compile, link, BTF, modules; samples/bpf left out, ccache
# off so cold means cold), options set and object files built. Prints one line per case
# and the ratios against the lab build (targets: defconfig/lab >= 3.5, and the lab no
# slower than a hand-made tinyconfig BPF kernel). Not a test: it takes 5-20 minutes per
# case on 2 cores.
#
# The cases (CASES, in order; default all three):
#   lab        what `labctl kernel build` does by default: tinyconfig + every lab fragment
#              (lean.config included) + --debug-info lean
#   tiny-hand  the hand-made floor: tinyconfig + the BPF, BTF, tracing, VM and samples
#              fragments only (no lean.config), built with the kernel's own flags
#              (--debug-info full)
#   defconfig  the conventional VM kernel by hand: defconfig + kvm_guest.config + the same
#              fragments, the kernel's own flags (--debug-info full)
#
# usage: bench/config-build.sh [VERSION]        (default 5.10.46, from Debian's archive)
#   CASES="lab tiny-hand defconfig"  which cases (in order)
#   BENCH_HOME=DIR            labctl home for the runs (default: a temp dir, removed unless KEEP=1)
#   SOURCE=debian             --source for the fetch (auto, kernel.org, a tarball path, ...)
#   LABCTL=path/to/labctl     the binary (default: target/release, else target/debug)
set -euo pipefail
VERSION=${1:-5.10.46}
CASES=${CASES:-${PROFILES:-lab tiny-hand defconfig}}
SOURCE=${SOURCE:-debian}
HERE=$(cd "$(dirname "$0")/.." && pwd)
LABCTL=${LABCTL:-}
if [ -z "$LABCTL" ]; then
  for c in "$HERE/target/release/labctl" "$HERE/target/debug/labctl"; do [ -x "$c" ] && LABCTL=$c && break; done
fi
[ -x "${LABCTL:-}" ] || { echo "build labctl first (cargo build --release)" >&2; exit 2; }
BENCH_HOME=${BENCH_HOME:-$(mktemp -d /var/tmp/labctl-bench.XXXXXX)}
[ "${KEEP:-0}" = 1 ] || trap 'rm -rf "$BENCH_HOME"' EXIT
# Fetch outside the timing (bench/fetch.sh measures it).
"$LABCTL" -qq --home "$BENCH_HOME" kernel fetch "$VERSION" --source "$SOURCE" >/dev/null
case_args() {
  case $1 in
    lab) echo "--profile lab" ;;
    tiny-hand) echo "--profile lab --debug-info full --no-default-fragments --fragment bpf --fragment btf --fragment tracing --fragment vm --fragment samples" ;;
    defconfig) echo "--profile defconfig --debug-info full" ;;
    *) echo "unknown case $1 (lab, tiny-hand, defconfig)" >&2; return 1 ;;
  esac
}
printf '%-10s %8s %8s %9s\n' case options objects seconds
declare -A SECS
for c in $CASES; do
  args=$(case_args "$c")
  start=$(date +%s.%N)
  # shellcheck disable=SC2086
  if ! "$LABCTL" -qq --home "$BENCH_HOME" --json kernel build "$VERSION" --source "$SOURCE" $args \
      --cc-wrapper none --no-samples --skip-doctor >"$BENCH_HOME/$c.json" 2>"$BENCH_HOME/$c.err"; then
    echo "$c: build failed, see $BENCH_HOME/$c.err" >&2; exit 1
  fi
  secs=$(echo "$(date +%s.%N) - $start" | bc)
  SECS[$c]=$secs
  dir=$(jq -r '.output.dir' "$BENCH_HOME/$c.json")
  options=$(grep -c '^CONFIG_.*=' "$dir/artifacts/config")
  objects=$(find "$dir/obj" -name '*.o' ! -name '*.mod.o' | wc -l)
  printf '%-10s %8d %8d %9.0f\n' "$c" "$options" "$objects" "$secs"
done
if [ -n "${SECS[lab]:-}" ]; then
  for ref in defconfig tiny-hand; do
    [ -n "${SECS[$ref]:-}" ] || continue
    target=">= 3.5x"; [ "$ref" = tiny-hand ] && target=">= 1.0x"
    awk -v l="${SECS[lab]}" -v d="${SECS[$ref]}" -v r="$ref" -v t="$target" \
      'BEGIN{printf "%s/lab build time: %.2fx (target %s)\n", r, d/l, t}'
  done
fi
