#!/bin/sh
# Benchmark of `labctl kernel build` (prints numbers; not a test).
#
#   bench/build.sh [VERSION] [extra kernel-build flags...]
#
# Measures, on this machine, in one run:
#   1. cold build: empty build folder and an empty ccache (a fresh labctl home),
#   2. no-op rebuild: the same command again (target: <= 15 s),
#   3. ccache-warm rebuild: build folder deleted, ccache kept (target: <= 0.3 x cold).
# With the kconfig issue's profiles, pass e.g. `--profile defconfig` to time another profile.
# Environment: LABCTL (binary, default target/release/labctl), BENCH_HOME (default a temp dir,
# removed at the end unless KEEP=1), JOBS (default nproc).
set -eu
VERSION=${1:-5.10.46}
[ $# -gt 0 ] && shift
LABCTL=${LABCTL:-$(dirname "$0")/../target/release/labctl}
JOBS=${JOBS:-$(nproc)}
HOME_DIR=${BENCH_HOME:-$(mktemp -d /var/tmp/labctl-bench.XXXXXX)}
[ -x "$LABCTL" ] || { echo "build labctl first: cargo build --release (or set LABCTL=)" >&2; exit 2; }

now() { date +%s.%N; }
run() { "$LABCTL" --home "$HOME_DIR" --color never kernel build "$VERSION" -j "$JOBS" "$@" >/dev/null; }

# Fetch and configure outside the timing (the sources issue has its own benchmark).
"$LABCTL" --home "$HOME_DIR" --color never kernel fetch "$VERSION" >/dev/null 2>&1 || true

t0=$(now); run "$@"; t1=$(now)
cold=$(echo "$t1 - $t0" | bc)
t0=$(now); run "$@"; t1=$(now)
noop=$(echo "$t1 - $t0" | bc)
dir=$(ls -d "$HOME_DIR"/builds/"$VERSION"-*-* | head -n1)
objects=$(sed -n 's/.*"objects": \([0-9]*\).*/\1/p' "$dir/build.json" | head -n1)
rm -rf "$dir"
t0=$(now); run "$@"; t1=$(now)
warm=$(echo "$t1 - $t0" | bc)
ratio=$(echo "scale=2; $warm / $cold" | bc)

echo "labctl kernel build $VERSION $* (-j$JOBS) on $(nproc) CPUs"
printf 'cold build          %8.1f s  (%s objects)\n' "$cold" "$objects"
printf 'no-op rebuild       %8.1f s  (target <= 15 s)\n' "$noop"
printf 'ccache-warm rebuild %8.1f s  (%s x cold; target <= 0.3)\n' "$warm" "$ratio"
CCACHE_DIR="$HOME_DIR/ccache" ccache -s 2>/dev/null | grep -E 'Hits|Misses' || true
[ "${KEEP:-0}" = 1 ] || rm -rf "$HOME_DIR"
