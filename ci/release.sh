#!/usr/bin/env bash
# Release build: one labctl binary for x86_64 Linux with glibc >= 2.28 (RHEL/CentOS 8,
# Debian 11, Ubuntu 20.04 and newer). cargo-zigbuild links it with zig against glibc
# 2.28's symbol versions; liblzma is built in statically, so it needs only libc.
#
#   ci/release.sh [--out DIR]
#
# writes DIR (default dist/) labctl-<version>-x86_64-linux-gnu.2.28, its .sha256
# (`sha256sum -c` format) and a .buildinfo (commit and tool versions). The build has its
# own target folder, `${CARGO_TARGET_DIR:-target}/release-gnu.2.28`.
#
# Tools: the Rust toolchain on PATH, objdump (binutils) and, in labctl's tools venv
# (`$LABCTL_TOOLS`, else `${XDG_DATA_HOME:-~/.local/share}/labctl/venv`),
# cargo-zigbuild and zig (PyPI's ziglang) at the versions
# labctl/src/doctor/requirements.toml pins (requirement `cargo-zigbuild`, test group):
# `labctl doctor --tests --install` puts them there. Reproducible: the same commit, Rust
# toolchain and pinned tools give the same bytes, whatever the checkout, CARGO_HOME or
# target folder (paths are remapped, debug info is not built).
#
# Not one of .ci/run's README commands; tests/old_glibc.rs runs this script and then the
# binary in a bare Debian 11 root filesystem.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD

die() {
  echo "ci/release.sh: $*" >&2
  exit 2
}

out=dist
while [ $# -gt 0 ]; do
  case "$1" in
    --out) out=${2:?--out needs a folder}; shift 2 ;;
    -h | --help) sed -n '2,21p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) die "unknown argument: $1 (usage: ci/release.sh [--out DIR])" ;;
  esac
done

arch=x86_64
glibc=2.28
triple=$arch-unknown-linux-gnu
version=$(sed -n 's/^version = "\(.*\)"$/\1/p' labctl/Cargo.toml | head -n 1)
[ -n "$version" ] || die "no version in labctl/Cargo.toml"
name=labctl-$version-$arch-linux-gnu.$glibc

# ---- tools: pinned in requirements.toml, installed in labctl's tools venv
reqs=labctl/src/doctor/requirements.toml
pin() {
  grep -o "\"$1==[^\"]*\"" "$reqs" | head -n 1 | tr -d '"' | sed 's/.*==//'
}
zigbuild_pin=$(pin cargo-zigbuild)
zig_pin=$(pin ziglang)
[ -n "$zigbuild_pin" ] && [ -n "$zig_pin" ] || die "$reqs pins no cargo-zigbuild==… and ziglang==…"
venv=${LABCTL_TOOLS:-${XDG_DATA_HOME:-$HOME/.local/share}/labctl/venv}
install_hint="install them with \`labctl doctor --tests --install\` (or \`cargo run -q -p labctl -- doctor --tests --install\`), or directly: $venv/bin/pip install cargo-zigbuild==$zigbuild_pin ziglang==$zig_pin"
zigbuild=$venv/bin/cargo-zigbuild
python=$venv/bin/python3
[ -x "$zigbuild" ] && [ -x "$python" ] || die "cargo-zigbuild is not in labctl's tools venv ($venv); $install_hint"
zig_version=$("$python" -m ziglang version 2>/dev/null) || die "zig (PyPI's ziglang) is not in $venv; $install_hint"
zigbuild_version=$("$zigbuild" --version | sed 's/^cargo-zigbuild //')
[ "$zigbuild_version" = "$zigbuild_pin" ] && [ "$zig_version" = "$zig_pin" ] ||
  die "$venv has cargo-zigbuild $zigbuild_version and zig $zig_version; a release uses the pinned cargo-zigbuild $zigbuild_pin and zig $zig_pin: $venv/bin/pip install cargo-zigbuild==$zigbuild_pin ziglang==$zig_pin"
command -v objdump >/dev/null || die "objdump is missing (binutils; \`labctl doctor --install\`)"
command -v cargo >/dev/null || die "cargo is missing (the Rust toolchain, https://rustup.rs)"

# ---- build
target_dir=${CARGO_TARGET_DIR:-$root/target}/release-gnu.$glibc
mkdir -p "$target_dir" "$out"
target_dir=$(cd "$target_dir" && pwd)
cargo_home=${CARGO_HOME:-$HOME/.cargo}
# cargo-zigbuild finds zig as `python3 -m ziglang` with the venv's python.
export CARGO_ZIGBUILD_PYTHON_PATH=$python
# xz2's liblzma from its bundled source, linked in: the host's liblzma.so needs the
# host's glibc (GLIBC_2.34 on Debian 12), and the target may have none.
export LZMA_API_STATIC=1
# No debug info (12 MiB instead of 57 MiB); symbols stay, so backtraces name functions.
export CARGO_PROFILE_RELEASE_DEBUG=false CARGO_PROFILE_RELEASE_STRIP=debuginfo
# Exactly these flags (the caller's RUSTFLAGS would change the bytes): build paths
# remapped so the checkout, CARGO_HOME and target folder do not end up in the binary.
unset RUSTFLAGS CARGO_BUILD_RUSTFLAGS "CARGO_TARGET_$(echo "$triple" | tr a-z- A-Z_)_RUSTFLAGS"
sep=$'\x1f'
CARGO_ENCODED_RUSTFLAGS="--remap-path-prefix=$cargo_home=/cargo$sep--remap-path-prefix=$root=/labctl$sep--remap-path-prefix=$target_dir=/target"
export CARGO_ENCODED_RUSTFLAGS

echo "ci/release.sh: labctl $version for $triple (glibc $glibc) with cargo-zigbuild $zigbuild_version, zig $zig_version, $(rustc --version)"
start=$(date +%s)
"$zigbuild" zigbuild --release --locked -p labctl --bin labctl \
  --target "$triple.$glibc" --target-dir "$target_dir"
built=$target_dir/$triple/release/labctl
[ -x "$built" ] || die "cargo-zigbuild left no $built"

# ---- check what the binary needs from the system
max_glibc=$(objdump -p "$built" | grep -o 'GLIBC_[0-9][0-9.]*' | sed 's/GLIBC_//' | sort -V | tail -n 1)
[ -n "$max_glibc" ] || die "no GLIBC_ version references in $built"
[ "$(printf '%s\n%s\n' "$max_glibc" "$glibc" | sort -V | tail -n 1)" = "$glibc" ] ||
  die "$built needs GLIBC_$max_glibc, more than $glibc"
needed=$(objdump -p "$built" | awk '$1 == "NEEDED" { print $2 }' | sort | xargs)
for lib in $needed; do
  case "$lib" in
    libc.so.6 | libm.so.6 | libpthread.so.0 | libdl.so.2 | librt.so.1 | libutil.so.1 | libgcc_s.so.1 | ld-linux-x86-64.so.2) ;;
    *) die "$built needs $lib, which is not part of glibc (or libgcc): NEEDED $needed" ;;
  esac
done

# ---- the artifact
install -m 0755 "$built" "$out/$name"
(cd "$out" && sha256sum "$name" >"$name.sha256")
commit=$(git rev-parse HEAD 2>/dev/null || echo unknown)
[ -z "$(git status --porcelain 2>/dev/null)" ] || commit="$commit (with uncommitted changes)"
{
  echo "name: $name"
  echo "commit: $commit"
  echo "target: $triple.$glibc"
  echo "max GLIBC version required: $max_glibc"
  echo "needed: $needed"
  echo "cargo-zigbuild: $zigbuild_version"
  echo "zig: $zig_version"
  echo "rustc: $(rustc --version) on $(rustc -vV | sed -n 's/^host: //p')"
  echo "sha256: $(cut -d' ' -f1 "$out/$name.sha256")"
} >"$out/$name.buildinfo"
size=$(stat -c %s "$out/$name")
echo "ci/release.sh: $out/$name: $((size / 1024 / 1024)) MiB, needs GLIBC_$max_glibc at most ($needed), sha256 $(cut -d' ' -f1 "$out/$name.sha256"), built in $(($(date +%s) - start)) s"
