#!/usr/bin/env bash
# Peak memory and time per iteration against the number of rk4 steps for the
# four adjoint modes (issue: memory flat in the number of steps), each point
# in its own process. Writes OUT.csv (default adjoint-memory.csv) and, with
# analysis/plot-adjoint-memory, OUT.png.
#   bench/adjoint-memory.sh [OUT]        (about 10-20 minutes on 2 cores)
set -eu
here=$(cd "$(dirname "$0")/.." && pwd)
bin=${BENCH_ADJOINT:-$here/build/bench/bench_adjoint}
out=${1:-adjoint-memory}
export OPENBLAS_NUM_THREADS=1
echo "problem,mode,steps,checkpoints,seconds_per_iteration,peak_rss_mb,stored_states" > "$out.csv"
for steps in 10 100 1000 10000; do
  for mode in full uniform binomial backsolve; do
    "$bin" mlp $mode $steps 2>/dev/null | tee -a "$out.csv"
  done
done
# the conv block: 4 MB of state per step, so the full trajectory stops at 100 steps
for steps in 10 100 1000; do
  for mode in full uniform binomial backsolve; do
    [ $mode = full ] && [ $steps -gt 100 ] && continue
    ck=$([ $mode = uniform ] && awk -v s=$steps 'BEGIN { printf "%d", sqrt(s) + 0.999 }' || echo 10)
    "$bin" conv $mode $steps $ck 1 2>/dev/null | tee -a "$out.csv" || true
  done
done
/usr/bin/python3 "$here/analysis/plot-adjoint-memory" "$out.csv"
