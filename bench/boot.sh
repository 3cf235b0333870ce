#!/usr/bin/env bash
# Where `labctl vm run TARGET -- true` spends its time under TCG: labctl's own work
# before and after QEMU, QEMU's start, the firmware, the kernel's load + decompression,
# kernel init (with the initramfs unpack), the guest's init, the command and the
# power-off. Medians of N; the phases come from the arrival times of console lines of
# the same boot (bench/boot_trace.py says which line marks which phase).
#
# usage: bench/boot.sh VERSION|BZIMAGE [N]     (N default 5)
#   LABCTL       labctl binary (default: target/release/labctl, else target/debug/labctl)
#   LABCTL_HOME  the home whose build VERSION names (default ~/.cache/labctl)
set -euo pipefail
TARGET=${1:?usage: bench/boot.sh VERSION|BZIMAGE [N]}
N=${2:-5}
root=$(cd "$(dirname "$0")/.." && pwd)
LABCTL=${LABCTL:-$root/target/release/labctl}
[ -x "$LABCTL" ] || LABCTL=$root/target/debug/labctl
[ -x "$LABCTL" ] || { echo "build labctl first (cargo build --release)" >&2; exit 2; }
HOME_DIR=${LABCTL_HOME:-$HOME/.cache/labctl}
if [ -f "$TARGET" ]; then what=(--kernel "$TARGET"); else what=("$TARGET"); fi

now() { date +%s.%N; }
median() { sort -n | awk '{a[NR]=$1} END {if (NR%2) print a[(NR+1)/2]; else printf "%.3f\n", (a[NR/2]+a[NR/2+1])/2}'; }

# Warm: the guest image and the accelerator verdict are cached before anything is timed.
"$LABCTL" -q vm run --accel tcg "${what[@]}" -- true
declare -a t_labctl
for _ in $(seq "$N"); do
    s=$(now); "$LABCTL" -q vm run --accel tcg "${what[@]}" -- true; e=$(now)
    t_labctl+=("$(echo "$e - $s" | bc)")
done
m_labctl=$(printf '%s\n' "${t_labctl[@]}" | median)
echo "labctl vm run ${what[*]} -- true (TCG)"
# The newest QEMU line of the command log is the last run above.
trace=$(python3 "$root/bench/boot_trace.py" "$HOME_DIR/logs/commands.log" "$N")
echo "$trace"
m_qemu=$(echo "$trace" | awk '/^QEMU as labctl ran it/{for (i = 1; i <= NF; i++) if ($i ~ /^[0-9.]+$/) {print $i; exit}}')
printf '%-44s %7.3f  runs: %s\n' "labctl vm run, wall" "$m_labctl" "${t_labctl[*]}"
printf '%-44s %7.3f  (labctl vm run minus its QEMU)\n' "labctl before/after QEMU (image, spawn, wait)" "$(echo "$m_labctl - $m_qemu" | bc -l)"
