#!/usr/bin/env bash
# Peak memory and time per iteration against the number of rk4 steps for the
# four adjoint modes (issue: memory flat in the number of steps), each point
# in its own process; binomial with a fixed budget of BINOMIAL_BUDGET (150)
# checkpoints, uniform with sqrt(steps). Writes OUT.csv (default adjoint-memory.csv) and, with
# analysis/plot-adjoint-memory, OUT.png.
#   bench/adjoint-memory.sh [OUT]        (about 20 minutes on 2 cores)
# (MLP_STEPS and CONV_STEPS choose other step counts)
set -eu
here=$(cd "$(dirname "$0")/.." && pwd)
bin=${BENCH_ADJOINT:-$here/build/bench/bench_adjoint}
out=${1:-adjoint-memory}
export OPENBLAS_NUM_THREADS=1
echo "problem,mode,steps,checkpoints,seconds_per_iteration,peak_rss_mb,stored_states" > "$out.csv"
for steps in ${MLP_STEPS:-10 100 1000 10000}; do
  its=$([ $steps -ge 1000 ] && echo 1 || echo 3)   # long solves: one iteration is enough
  for mode in full uniform binomial backsolve; do
    ck=$([ $mode = uniform ] && awk -v s=$steps 'BEGIN { printf "%d", sqrt(s) + 0.999 }' || echo ${BINOMIAL_BUDGET:-150})
    "$bin" mlp $mode $steps $ck $its 2>/dev/null | tee -a "$out.csv"
  done
done
# the conv block: 4 MB of state per step (the full trajectory's memory grows
# by 20 MB a step), and 0.25 s a step on 2 cores: up to 100 steps here
for steps in ${CONV_STEPS:-10 30 100}; do
  for mode in full uniform binomial backsolve; do
    [ $mode = full ] && [ $steps -gt 100 ] && continue
    ck=$([ $mode = uniform ] && awk -v s=$steps 'BEGIN { printf "%d", sqrt(s) + 0.999 }' || echo ${BINOMIAL_BUDGET:-150})
    "$bin" conv $mode $steps $ck 1 2>/dev/null | tee -a "$out.csv" || true
  done
done
/usr/bin/python3 "$here/analysis/plot-adjoint-memory" "$out.csv"
