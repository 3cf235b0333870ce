#!/usr/bin/env bash
# Cold kernel build per profile (`lab` vs `defconfig`, the same labctl fragments), side by
# side on this machine in one run: wall time of `labctl kernel build` (fixes, compile, link,
# BTF, modules; samples/bpf left out, ccache off so cold means cold), options set and object
# files built. Prints one line per profile and the ratio (target: defconfig/lab >= 3.3).
# Not a test: it takes 5-20 minutes per profile on 2 cores.
#
# usage: bench/config-build.sh [VERSION]        (default 5.10.46, from Debian's archive)
#   PROFILES="lab defconfig"  which profiles (in order)
#   BENCH_HOME=DIR            labctl home for the runs (default: a temp dir, removed unless KEEP=1)
#   SOURCE=debian             --source for the fetch (auto, kernel.org, a tarball path, ...)
#   LABCTL=path/to/labctl     the binary (default: target/release, else target/debug)
set -euo pipefail
VERSION=${1:-5.10.46}
PROFILES=${PROFILES:-lab defconfig}
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
printf '%-10s %8s %8s %9s\n' profile options objects seconds
declare -A SECS
for p in $PROFILES; do
  start=$(date +%s.%N)
  if ! "$LABCTL" -qq --home "$BENCH_HOME" --json kernel build "$VERSION" --source "$SOURCE" --profile "$p" \
      --cc-wrapper none --no-samples --skip-doctor >"$BENCH_HOME/$p.json" 2>"$BENCH_HOME/$p.err"; then
    echo "$p: build failed, see $BENCH_HOME/$p.err" >&2; exit 1
  fi
  secs=$(echo "$(date +%s.%N) - $start" | bc)
  SECS[$p]=$secs
  dir=$(jq -r '.output.dir' "$BENCH_HOME/$p.json")
  options=$(grep -c '^CONFIG_.*=' "$dir/artifacts/config")
  objects=$(find "$dir/obj" -name '*.o' ! -name '*.mod.o' | wc -l)
  printf '%-10s %8d %8d %9.0f\n' "$p" "$options" "$objects" "$secs"
done
if [ -n "${SECS[lab]:-}" ] && [ -n "${SECS[defconfig]:-}" ]; then
  awk -v l="${SECS[lab]}" -v d="${SECS[defconfig]}" 'BEGIN{printf "defconfig/lab build time: %.2fx (target >= 3.3x)\n", d/l}'
fi
