#!/usr/bin/env bash
# Submits the k-fold CIFAR study as an array, one fold a task, and the
# analysis that merges them (after the whole array succeeds):
#   jobs/slurm/cifar-folds.sh K [CONFIG] [--set ...]
# K must equal the config's data.folds (configs/cifar.cfg: 3). Each task
# trains every depth and the ODE on its fold, with the shape of
# RESNODE_SBATCH_OPTS (e.g. "--nodes=8 --ntasks-per-node=8 --time=24:00:00"),
# in $RESNODE_RUNS/cifar-<array>-<fold>/; the analysis writes
# $RESNODE_RUNS/cifar-<array>-analysis/cifar-report.md and cifar-depth.png.
set -eu
here=$(cd "$(dirname "$0")" && pwd)
export RESNODE_HOME=${RESNODE_HOME:-$(cd "$here/../.." && pwd)}
folds=${1:?usage: cifar-folds.sh K [CONFIG] [--set ...]}
shift
config=${1:-$RESNODE_HOME/configs/cifar.cfg}
[ $# -gt 0 ] && shift
array=$(sbatch --parsable ${RESNODE_SBATCH_OPTS:-} --array=0-$((folds - 1)) "$here/cifar.sbatch" "$config" --set data.folds=$folds "$@")
array=${array%%;*}
analysis=$(sbatch --parsable --ntasks=1 --dependency=afterok:"$array" "$here/analysis.sbatch" "$array" "$folds" cifar)
echo "submitted: cifar fold array $array ($folds tasks, one fold each), analysis $analysis (after the array succeeds)"
echo "if a task fails, the analysis waits (or is cancelled, by the cluster's DependencyParameters): rerun the task with"
echo "  sbatch ${RESNODE_SBATCH_OPTS:-} --array=<fold> $here/cifar.sbatch $config --set data.folds=$folds $* ; then"
echo "  scancel $analysis; sbatch --ntasks=1 $here/analysis.sbatch $array $folds cifar"
