#!/usr/bin/env bash
# Benchmark: cold `labctl kernel fetch 5.10.46 --source debian` (resolve + download +
# verify + extract) against `curl -o f URL && sha256sum f && tar xJf f` of the same
# tarball on the same machine in the same run, as a ratio (target <= 1.2), then a warm
# fetch (target < 0.5 s). The URL is the one labctl resolved from this host's apt
# configuration; nothing is hard-coded. Prints numbers only; deletes its scratch folders.
# Each measurement is the best of ROUNDS (default 2) interleaved runs.
#
#   bench/fetch.sh [VERSION] [LABCTL]      defaults: 5.10.46, target/release/labctl
set -euo pipefail
VERSION=${1:-5.10.46}
ROOT=$(cd "$(dirname "$0")/.." && pwd)
LABCTL=${2:-$ROOT/target/release/labctl}
if [ ! -x "$LABCTL" ]; then
    (cd "$ROOT" && cargo build --release --quiet -p labctl)
fi
SCRATCH=$(mktemp -d "${TMPDIR:-/var/tmp}/labctl-bench.XXXXXX")
trap 'rm -rf "$SCRATCH"' EXIT
now() { date +%s.%N; }

# Index lookup alone (warms nothing that the timed runs below reuse).
t0=$(now)
"$LABCTL" --home "$SCRATCH/probe" -q kernel list --remote "${VERSION%.*}" --source debian >/dev/null
t1=$(now)
index_s=$(echo "$t1 - $t0" | bc)

ROUNDS=${ROUNDS:-2}
best() { printf '%s\n' "$@" | sort -g | head -1; }
labctl_runs=(); base_runs=(); noindex_runs=()
for r in $(seq "$ROUNDS"); do
    # 1. labctl cold: fresh home (index lookups included).
    rm -rf "$SCRATCH/home"
    sync; t0=$(now)
    "$LABCTL" --home "$SCRATCH/home" -q --json kernel fetch "$VERSION" --source debian >"$SCRATCH/fetch.json"
    sync; t1=$(now)
    labctl_runs+=("$(echo "$t1 - $t0" | bc)")
    URL=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["url"])' "$SCRATCH/fetch.json")

    # 2. the shell baseline on the same URL.
    rm -rf "$SCRATCH/base"; mkdir -p "$SCRATCH/base"
    sync; t0=$(now)
    ( cd "$SCRATCH/base" && curl -sSf -o f "$URL" && sha256sum f >/dev/null && tar xJf f )
    sync; t1=$(now)
    base_runs+=("$(echo "$t1 - $t0" | bc)")
    rm -rf "$SCRATCH/base"

    # 1b. labctl cold again with the index already cached (download + verify + extract).
    rm -rf "$SCRATCH/home/src" "$SCRATCH/home/downloads"
    sync; t0=$(now)
    "$LABCTL" --home "$SCRATCH/home" -q kernel fetch "$VERSION" --source debian >/dev/null
    sync; t1=$(now)
    noindex_runs+=("$(echo "$t1 - $t0" | bc)")
done
labctl_s=$(best "${labctl_runs[@]}"); base_s=$(best "${base_runs[@]}"); noindex_s=$(best "${noindex_runs[@]}")

# 3. warm fetch (tree already extracted).
t0=$(now)
"$LABCTL" --home "$SCRATCH/home" -q kernel fetch "$VERSION" --source debian >/dev/null
t1=$(now)
warm_s=$(echo "$t1 - $t0" | bc)

printf 'version                    %s  (best of %s rounds; load average %s)\n' "$VERSION" "$ROUNDS" "$(cut -d' ' -f1-3 /proc/loadavg)"
printf 'index lookup (6 suites)    %.2f s\n' "$index_s"
printf 'labctl cold fetch          %.2f s\n' "$labctl_s"
printf 'labctl cold, index cached  %.2f s\n' "$noindex_s"
printf 'curl+sha256sum+tar xJf     %.2f s\n' "$base_s"
printf 'ratio cold/baseline        %.2f (target <= 1.2)\n' "$(echo "$labctl_s / $base_s" | bc -l)"
printf 'ratio cached-index/base    %.2f\n' "$(echo "$noindex_s / $base_s" | bc -l)"
printf 'labctl warm fetch          %.3f s (target < 0.5)\n' "$warm_s"
