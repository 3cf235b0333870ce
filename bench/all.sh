#!/usr/bin/env bash
# Every labctl benchmark, side by side in one run on this machine, and docs/benchmarks.md
# written from what they print (with a description of the machine). Not part of .ci/run:
# it takes 40-60 minutes on 2 cores, plus 20-30 for the zero section (bench/zero.sh: the
# README's main job, cold, on a bare Debian 12 root filesystem; needs root and
# mmdebstrap). Each bench/*.sh script can also be run alone.
#
# usage: bench/all.sh [VERSION]      (default 5.10.46, fetched from Debian's archive)
#   LABCTL_HOME   labctl home for the warm runs (default ~/.cache/labctl-bench)
#   LABCTL        a labctl binary to measure (default: cargo build --release, that one)
#   SKIP="config-build build"        leave out some sections (fetch config-build build
#                                    boot vm suite-VERSION zero)
#   SUITE_VERSIONS="5.10.262 6.12.107"  the kernels the warm-suite section measures
#                                    (default VERSION); each is built first if needed
#   SUITE_ARGS_<major>_<minor>="--kernel K --obj O"  extra vm test args for one of them
set -uo pipefail
VERSION=${1:-5.10.46}
cd "$(dirname "$0")/.."
if [ -z "${LABCTL:-}" ]; then
  cargo build --release -q || exit 2
  LABCTL=$(cargo metadata --format-version 1 --no-deps | jq -r .target_directory)/release/labctl
fi
export LABCTL
export LABCTL_HOME=${LABCTL_HOME:-$HOME/.cache/labctl-bench}
mkdir -p "$LABCTL_HOME"
OUT=docs/benchmarks.md
TMP=$(mktemp -d); trap 'rm -rf "$TMP"' EXIT
skip() { case " ${SKIP:-} " in *" $1 "*) return 0;; esac; return 1; }

section() { # name, title, command...
  local name=$1 title=$2; shift 2
  if skip "$name"; then return; fi
  echo "== $title: $*" >&2
  local s e load
  load=$(cut -d' ' -f1-3 /proc/loadavg)
  s=$(date +%s)
  "$@" >"$TMP/$name.out" 2>"$TMP/$name.err"; local rc=$?
  e=$(date +%s)
  {
    echo "## $title"
    echo
    echo "\`$*\` (exit $rc, $((e - s)) s wall; load average before: $load)"
    echo
    echo '```text'
    cat "$TMP/$name.out"
    [ $rc -eq 0 ] || tail -5 "$TMP/$name.err"
    echo '```'
    echo
  } >>"$TMP/body.md"
  cat "$TMP/$name.out" >&2
}

SOURCE=debian section fetch "Fetch + verify + extract vs curl + sha256sum + tar" bench/fetch.sh "$VERSION" "$LABCTL"
SOURCE=debian section config-build "Cold build: lab vs a hand-made tinyconfig and defconfig kernel" bench/config-build.sh "$VERSION"
section build "Cold, no-op and ccache-warm rebuild (lab profile)" env BENCH_HOME="$TMP/build-home" bench/build.sh "$VERSION" --source debian
# The warm lab kernel the VM benchmarks boot.
"$LABCTL" -q --json kernel build "$VERSION" --source debian >"$TMP/lab.json" 2>"$TMP/lab.err" || { cat "$TMP/lab.err" >&2; exit 2; }
LAB=$(jq -r '.output.image // .output.bzimage' "$TMP/lab.json")
section boot "Where a boot's time goes: labctl vm run $VERSION -- true" bench/boot.sh "$VERSION" 5
section vm "Boot to exit: labctl vm run vs vng vs a Debian kernel" env LAB_VERSION="$VERSION" bench/vm.sh "$LAB" 5
for v in ${SUITE_VERSIONS:-$VERSION}; do
  key=SUITE_ARGS_$(echo "$v" | cut -d. -f1-2 | tr . _)
  # shellcheck disable=SC2086
  section "suite-$v" "Warm labctl vm test $v (hermetic suite)" bench/suite.sh "$v" ${!key:-}
done
# Cold: its own chroot, CARGO_HOME, labctl home and ccache; the warm state above is unused.
section zero "Zero to a passing suite: the README's main job, cold, on a bare Debian 12" bench/zero.sh

{
  echo "# Benchmarks"
  echo
  echo "Written by \`bench/all.sh\` on $(date -u '+%Y-%m-%d %H:%M UTC'). Every number below was measured"
  echo "in that one run on the machine described here; rerun the script to refresh the page."
  [ -n "${SKIP:-}" ] && echo "Sections left out of this run (SKIP): ${SKIP}."
  echo
  echo "## Machine"
  echo
  echo "| what | value |"
  echo "|---|---|"
  echo "| CPU | $(nproc) × $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //') |"
  echo "| memory | $(free -g | awk '/Mem:/{print $2}') GiB |"
  echo "| OS | $(. /etc/os-release; echo "$PRETTY_NAME"), host kernel $(uname -r) |"
  echo "| toolchain | gcc $(gcc -dumpfullversion), $(pahole --version 2>/dev/null | sed 's/^v/pahole /'), clang $(clang -dumpversion 2>/dev/null), $(make --version | head -1) |"
  echo "| QEMU | $(qemu-system-x86_64 --version | head -1) |"
  echo "| accelerator | $(jq -r '.verdict.accel + " — " + .verdict.reason' "$LABCTL_HOME/guests/accel.json" 2>/dev/null || echo unknown) (labctl's KVM probe) |"
  echo "| load before the run | $(cut -d' ' -f1-3 /proc/loadavg) |"
  echo
  cat "$TMP/body.md"
} >"$OUT"
echo "wrote $OUT" >&2
