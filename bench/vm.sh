#!/usr/bin/env bash
# Boot-to-exit times under TCG, median of N runs each:
#   1. labctl vm run VERSION -- true                 (labctl's initramfs guest, the build's
#                                                     modules in it; --kernel LAB without
#                                                     LAB_VERSION)
#   2. vng --run LAB --exec true                     (virtme-ng, host root over 9p)
#   3. a Debian cloud kernel + a busybox-only initramfs that runs `reboot -f`, `quiet`,
#      `-no-reboot` (the leanest hand-made baseline)
# Targets (issue 15): (1) <= 0.5x (3) and (1) <= 0.4x (2); each ratio is printed.
#
# usage: bench/vm.sh LAB_BZIMAGE [N]
#   LAB_VERSION the labctl build LAB belongs to (then (1) boots the build, as users do)
#   LABCTL      labctl binary (default: target/release/labctl, else target/debug/labctl)
#   DEB_KERNEL  a Debian vmlinuz (default: fetched once with `apt-get download` into
#               $LABCTL_TEST_HOME/vm-test-kernel, as the tests do)
set -euo pipefail

LAB=${1:?usage: bench/vm.sh LAB_BZIMAGE [N]}
N=${2:-5}
root=$(cd "$(dirname "$0")/.." && pwd)
LABCTL=${LABCTL:-$root/target/release/labctl}
[ -x "$LABCTL" ] || LABCTL=$root/target/debug/labctl
[ -x "$LABCTL" ] || { echo "build labctl first (cargo build --release)" >&2; exit 2; }
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
export LABCTL_HOME=${LABCTL_HOME:-$work/home}

now() { date +%s.%N; }
median() { sort -n | awk '{a[NR]=$1} END {if (NR%2) print a[(NR+1)/2]; else printf "%.3f\n", (a[NR/2]+a[NR/2+1])/2}'; }

# --- Debian kernel for the baseline ---------------------------------------------------
if [ -z "${DEB_KERNEL:-}" ]; then
    th=${LABCTL_TEST_HOME:-$HOME/.cache/labctl-test}/vm-test-kernel
    if [ -f "$th/complete" ]; then
        DEB_KERNEL=$th/x/boot/vmlinuz-$(cat "$th/complete")
    else
        pkg=$(apt-cache depends linux-image-cloud-amd64 | awk '/Depends: linux-image-/{print $2; exit}')
        (cd "$work" && apt-get download "$pkg" >/dev/null 2>&1)
        dpkg -x "$work"/linux-image-*.deb "$work/deb"
        DEB_KERNEL=$(ls "$work"/deb/boot/vmlinuz-*)
    fi
fi

# Plain busybox initramfs: mount proc, reboot (-no-reboot turns it into QEMU's exit).
mkdir -p "$work/ir/bin" "$work/ir/proc" "$work/ir/dev"
cp /bin/busybox "$work/ir/bin/busybox"
ln -s busybox "$work/ir/bin/sh"
printf '#!/bin/sh\n/bin/busybox mount -t proc proc /proc\n/bin/busybox reboot -f\n' > "$work/ir/init"
chmod +x "$work/ir/init"
(cd "$work/ir" && find . | cpio -o -H newc --quiet | gzip -1 > "$work/plain.cpio.gz")

if [ -n "${LAB_VERSION:-}" ]; then what=("$LAB_VERSION"); else what=(--kernel "$LAB"); fi
# Warm caches (guest image, accelerator verdict) so runs measure boots only.
"$LABCTL" -q vm run --accel tcg "${what[@]}" -- true

# virtme-ng: on PATH, else the one `labctl doctor --install` puts in labctl's venv.
export PATH="$PATH:$HOME/.local/share/labctl/venv/bin"
VNG=$(command -v vng || true)
declare -a t_labctl t_vng t_deb
for i in $(seq "$N"); do
    s=$(now); "$LABCTL" -q vm run --accel tcg "${what[@]}" -- true; e=$(now)
    t_labctl+=("$(echo "$e - $s" | bc)")

    s=$(now)
    timeout 120 qemu-system-x86_64 -nodefaults -no-reboot -display none -accel tcg -cpu max -m 512 \
        -serial file:/dev/null -kernel "$DEB_KERNEL" -initrd "$work/plain.cpio.gz" \
        -append "console=ttyS0 panic=-1 quiet" </dev/null >/dev/null 2>&1
    e=$(now)
    t_deb+=("$(echo "$e - $s" | bc)")

    if [ -n "$VNG" ]; then
        # A kernel without ACPI halts instead of powering off and QEMU keeps running:
        # stop the clock at "reboot: System halted" (or when vng exits).
        log=$work/vng.log
        s=$(now)
        setsid "$VNG" --run "$LAB" --disable-kvm --force-9p --force-initramfs --verbose --exec true >"$log" 2>&1 </dev/null &
        pid=$!
        while kill -0 "$pid" 2>/dev/null && ! grep -qE 'reboot: (System halted|Power down)' "$log"; do sleep 0.05; done
        e=$(now)
        kill -- -"$pid" 2>/dev/null || true
        wait "$pid" 2>/dev/null || true
        t_vng+=("$(echo "$e - $s" | bc)")
    fi
done

m_labctl=$(printf '%s\n' "${t_labctl[@]}" | median)
m_deb=$(printf '%s\n' "${t_deb[@]}" | median)
printf '%-58s %8s  %s\n' "case (TCG, median of $N)" "seconds" "runs"
printf '%-58s %8.2f  %s\n' "labctl vm run ${LAB_VERSION:-$(basename "$LAB")} -- true" "$m_labctl" "${t_labctl[*]}"
if [ ${#t_vng[@]} -gt 0 ]; then
    m_vng=$(printf '%s\n' "${t_vng[@]}" | median)
    printf '%-58s %8.2f  %s\n' "vng --run (same kernel) --exec true" "$m_vng" "${t_vng[*]}"
fi
printf '%-58s %8.2f  %s\n' "Debian $(basename "$DEB_KERNEL") + busybox, reboot -f" "$m_deb" "${t_deb[*]}"
printf 'ratio labctl / Debian baseline: %.2f (target <= 0.5)\n' "$(echo "$m_labctl / $m_deb" | bc -l)"
[ -n "${m_vng:-}" ] && printf 'ratio labctl / vng: %.2f (target <= 0.4)\n' "$(echo "$m_labctl / $m_vng" | bc -l)"
exit 0
