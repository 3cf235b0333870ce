#!/bin/sh
# Warm `labctl vm test` (kernel built and cached, examples built): the hermetic suite
# (one QEMU boot; hello-bcc and bpftrace, which boot the host's userland under vng, left
# out): total wall time against the target (8 s on 5.x, 15 s on 6.x/7.x; issue 15), pass
# counts and per-test durations, median of N runs (default 3). Then one whole
# `vm test` (the vng tests included) when the host has BCC and vng.
#
# usage: bench/suite.sh [VERSION] [extra vm test args...]
#   e.g. bench/suite.sh 5.10.46
#        bench/suite.sh 5.10.46 --kernel obj/arch/x86/boot/bzImage --obj obj
# env:   LABCTL (binary, default target/release/labctl or target/debug/labctl), RUNS (3),
#        TARGET_S (the target in seconds; default from VERSION), WHOLE=0 (no whole vm test)
set -eu
cd "$(dirname "$0")/.."
LABCTL=${LABCTL:-}
if [ -z "$LABCTL" ]; then
  if [ -x target/release/labctl ]; then LABCTL=target/release/labctl; else LABCTL=target/debug/labctl; fi
fi
RUNS=${RUNS:-3}
export PATH="$PATH:$HOME/.local/share/labctl/venv/bin"
VERSION=${1:-5.10}
[ $# -gt 0 ] && shift
TMP=$(mktemp -d)
trap 'rm -rf "$TMP"' EXIT

echo "warm-up run (builds the examples and the guest image if needed)"
HERMETIC="--no-bcc --skip bpftrace"
case "$VERSION" in 5.*) TARGET_S=${TARGET_S:-8} ;; *) TARGET_S=${TARGET_S:-15} ;; esac
# shellcheck disable=SC2086
"$LABCTL" -q --json vm test "$VERSION" $HERMETIC "$@" > "$TMP/warmup.json" || { echo "warm-up failed (exit $?)"; cat "$TMP/warmup.json"; exit 2; }

i=1
while [ "$i" -le "$RUNS" ]; do
  s=$(date +%s.%N)
  # shellcheck disable=SC2086
  "$LABCTL" -q --json vm test "$VERSION" $HERMETIC "$@" > "$TMP/run$i.json" || true
  e=$(date +%s.%N)
  echo "$s $e" > "$TMP/time$i"
  i=$((i + 1))
done

python3 - "$TMP" "$RUNS" "$TARGET_S" <<'PY'
import json, statistics, sys, os
d, n, target = sys.argv[1], int(sys.argv[2]), float(sys.argv[3])
walls, per, passed = [], {}, []
for i in range(1, n + 1):
    s, e = map(float, open(os.path.join(d, f"time{i}")).read().split())
    walls.append(e - s)
    r = json.load(open(os.path.join(d, f"run{i}.json")))
    passed.append(sum(t["result"] == "pass" for t in r["tests"]))
    for t in r["tests"]:
        per.setdefault(t["name"], []).append((t["duration_s"], t["result"]))
print(f"kernel {r['kernel']} ({r['accel']}), {n} warm runs")
m = statistics.median(walls)
print(f"hermetic suite wall time: median {m:.1f}s  (runs: {', '.join(f'{w:.1f}' for w in walls)})  target <= {target:g} s: ratio {m / target:.2f}")
print(f"passed per run: {', '.join(map(str, passed))} of {len(r['tests'])} tests (skips: bcc and bpftrace on request)")
print(f"{'test':32} {'median':>8}  results")
for name, v in per.items():
    print(f"{name:32} {statistics.median(x for x, _ in v):7.2f}s  {','.join(sorted(set(r for _, r in v)))}")
PY

if [ "${WHOLE:-1}" = 0 ]; then
  echo "whole vm test (vng tests included): not measured in this run (WHOLE=0)"
elif { /usr/bin/python3 -c 'import bcc' 2>/dev/null || python3 -c 'import bcc' 2>/dev/null; } && command -v vng > /dev/null; then
  s=$(date +%s.%N)
  "$LABCTL" -q --json vm test "$VERSION" "$@" > "$TMP/full.json" || true
  e=$(date +%s.%N)
  python3 - "$TMP/full.json" "$s" "$e" <<'PY'
import json, sys
r = json.load(open(sys.argv[1]))
wall = float(sys.argv[3]) - float(sys.argv[2])
ok = sum(t["result"] == "pass" for t in r["tests"])
vng = [t for t in r["tests"] if t["name"] in ("hello-bcc", "bpftrace")]
print(f"whole vm test (vng tests included), 1 run: wall {wall:.1f}s, {ok} passed of {len(r['tests'])}; " +
      ", ".join(f"{t['name']} {t['result']} {t['duration_s']:.1f}s" for t in vng))
PY
else
  echo "hello-bcc, bpftrace: not measured (host lacks BCC for python3 or vng)"
fi
