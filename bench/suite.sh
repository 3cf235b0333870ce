#!/bin/sh
# Warm `labctl vm test` (kernel built and cached, examples built, full hermetic suite):
# total wall time and per-test durations, median of N runs (default 3). hello-bcc (vng
# backend) is measured separately when the host has BCC and vng.
#
# usage: bench/suite.sh [VERSION] [extra vm test args...]
#   e.g. bench/suite.sh 5.10.46
#        bench/suite.sh 5.10.46 --kernel obj/arch/x86/boot/bzImage --obj obj
# env:   LABCTL (binary, default target/release/labctl or target/debug/labctl), RUNS (3)
set -eu
cd "$(dirname "$0")/.."
LABCTL=${LABCTL:-}
if [ -z "$LABCTL" ]; then
  if [ -x target/release/labctl ]; then LABCTL=target/release/labctl; else LABCTL=target/debug/labctl; fi
fi
RUNS=${RUNS:-3}
VERSION=${1:-5.10}
[ $# -gt 0 ] && shift
TMP=$(mktemp -d)
trap 'rm -rf "$TMP"' EXIT

echo "warm-up run (builds the examples and the guest image if needed)"
"$LABCTL" -q --json vm test "$VERSION" --no-bcc "$@" > "$TMP/warmup.json" || { echo "warm-up failed (exit $?)"; cat "$TMP/warmup.json"; exit 2; }

i=1
while [ "$i" -le "$RUNS" ]; do
  s=$(date +%s.%N)
  "$LABCTL" -q --json vm test "$VERSION" --no-bcc "$@" > "$TMP/run$i.json" || true
  e=$(date +%s.%N)
  echo "$s $e" > "$TMP/time$i"
  i=$((i + 1))
done

python3 - "$TMP" "$RUNS" <<'PY'
import json, statistics, sys, os
d, n = sys.argv[1], int(sys.argv[2])
walls, per = [], {}
for i in range(1, n + 1):
    s, e = map(float, open(os.path.join(d, f"time{i}")).read().split())
    walls.append(e - s)
    r = json.load(open(os.path.join(d, f"run{i}.json")))
    for t in r["tests"]:
        per.setdefault(t["name"], []).append((t["duration_s"], t["result"]))
print(f"kernel {r['kernel']} ({r['accel']}), {n} warm runs")
print(f"total wall time: median {statistics.median(walls):.1f}s  (runs: {', '.join(f'{w:.1f}' for w in walls)})  target <= 15 s")
print(f"{'test':32} {'median':>8}  results")
for name, v in per.items():
    print(f"{name:32} {statistics.median(x for x, _ in v):7.2f}s  {','.join(sorted(set(r for _, r in v)))}")
PY

if { /usr/bin/python3 -c 'import bcc' 2>/dev/null || python3 -c 'import bcc' 2>/dev/null; } && command -v vng > /dev/null; then
  echo "hello-bcc under vng (2 GiB, 2 CPUs), $RUNS runs:"
  i=1
  while [ "$i" -le "$RUNS" ]; do
    s=$(date +%s.%N)
    "$LABCTL" -q --json vm test "$VERSION" --filter hello-bcc "$@" > "$TMP/bcc.json" || true
    e=$(date +%s.%N)
    python3 -c "import json,sys; t=json.load(open('$TMP/bcc.json'))['tests'][0]; print(f\"  {t['result']}: test {t['duration_s']:.1f}s, wall {float('$e')-float('$s'):.1f}s: {t['reason']}\")"
    i=$((i + 1))
  done
else
  echo "hello-bcc: not measured (host lacks BCC for python3 or vng)"
fi
