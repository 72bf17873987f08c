#!/bin/bash
# Run one VM scenario several times and print the median of every timing it recorded (host
# build/boot timings and the guest's g_record values), for BENCHMARKS.md.
# Usage: tests/vm/bench.sh [--fresh-root] [RUNS [SCENARIO]]   (defaults: 3 anchor)
set -euo pipefail
TESTS_VM_DIR=$(cd "$(dirname "$0")" && pwd)
# shellcheck source=vm-images/lib.sh
. "$TESTS_VM_DIR/../../vm-images/lib.sh"

fresh=0
if [[ ${1:-} == --fresh-root ]]; then
    fresh=1
    shift
fi
runs=${1:-3} scenario=${2:-anchor}
out=$VM_TARGET_DIR/bench/$scenario
rm -rf "$out"
mkdir -p "$out"
if ((fresh)); then
    VM_TIMINGS_FILE=$out/root-timings "$VM_IMAGES_DIR/build-root.sh" --force >/dev/null
fi
for ((i = 1; i <= runs; i++)); do
    "$TESTS_VM_DIR/run.sh" "$scenario"
    mkdir -p "$out/$i"
    cp "$VM_TARGET_DIR/run/$scenario/timings" "$VM_TARGET_DIR/run/$scenario/state/values" "$out/$i/"
done
{
    [[ -f $out/root-timings ]] && cat "$out/root-timings"
    cat "$out"/*/timings "$out"/*/values
} | awk '
    { v[$1] = v[$1] " " $2; n[$1]++ }
    END {
        printf "| measurement | runs | median (s) | all (s) |\n|---|---|---|---|\n"
        for (k in v) {
            m = split(substr(v[k], 2), a, " ")
            for (i = 1; i <= m; i++) for (j = i + 1; j <= m; j++) if (a[j] + 0 < a[i] + 0) { t = a[i]; a[i] = a[j]; a[j] = t }
            med = (m % 2) ? a[(m + 1) / 2] : (a[m / 2] + a[m / 2 + 1]) / 2
            all = a[1]; for (i = 2; i <= m; i++) all = all ", " a[i]
            printf "| %s | %d | %s | %s |\n", k, m, med, all
        }
    }' | tee "$out/summary.md"
