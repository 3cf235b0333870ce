#!/usr/bin/env bash
# Zero to a passing suite (issue 15, item 4): the README's main job
#   cargo install --path labctl && labctl doctor --install --yes && labctl vm test
# run cold on a bare Debian minbase root filesystem (labctl::rootfs, cached under the test
# home's rootfs/ like tests/fresh_machine.rs), each command timed, `vm test` split into
# fetch / build (kernel, bpftool) / examples / suite. A benchmark: it prints numbers, the
# target (≤ 300 s) and the ratio, and fails only when the main job itself fails (exit 1,
# with the failing log's tail; 2 when the bench could not set up). The work is
# labctl/examples/zero_to_pass.rs; this script finds the toolchain and runs it.
#
# Not timed as zero-to-pass, but printed: the root filesystem (unpacking the cached
# tarball), the checkout (a `git clone` of CHECKOUT's HEAD into the chroot) and the
# prerequisites the README lists (the host's Rust toolchain, bind-mounted read-only, and
# `apt-get install --no-install-recommends gcc libc6-dev ca-certificates`; the host's
# locally added CA certificates are copied in first). CARGO_HOME, the labctl home and its
# ccache start empty: crates and the kernel are downloaded, everything is compiled.
#
# Needs root (mount, chroot), mmdebstrap, git and the Debian archive of the host's apt
# configuration, and ~10 GB free in $TMPDIR (the chroot is unpacked there); took 26 minutes
# on 2 cores shared with other builds (load 5-6). Leaves no mount or chroot behind.
#
# usage: bench/zero.sh [CHECKOUT]    (default: this repository; its HEAD is cloned, so
#                                     commit what you want measured)
#   TOOLCHAIN=DIR     the Rust toolchain folder to bind in (default: the one
#                     `rustup which cargo` is in)
#   SUITE=bookworm    the Debian release of the bare machine
#   TARGET=300        the target for zero-to-pass, in seconds (only the ratio uses it)
#   LOGS=DIR          where the logs, results.json and build.json are kept (default: a
#                     new $TMPDIR/labctl-zero-logs-<time>, printed)
#   LABCTL_TEST_HOME  the test home whose rootfs/ caches the tarball (~/.cache/labctl-test)
set -euo pipefail
cd "$(dirname "$0")/.."
CHECKOUT=${1:-$PWD}
if [ -z "${TOOLCHAIN:-}" ]; then
  cargo_bin=$(rustup which cargo) || { echo "zero.sh: no rustup; set TOOLCHAIN=DIR" >&2; exit 2; }
  TOOLCHAIN=$(dirname "$(dirname "$cargo_bin")")
fi
args=(--checkout "$CHECKOUT" --toolchain "$TOOLCHAIN" --suite "${SUITE:-bookworm}" --target "${TARGET:-300}")
if [ -n "${LOGS:-}" ]; then args+=(--logs "$LOGS"); fi
exec cargo run --release -q -p labctl --example zero_to_pass -- "${args[@]}"
