#!/usr/bin/env bash
# Submits the ensemble array and its analysis (which waits for the whole array
# to succeed) in one command:
#   jobs/slurm/sweep.sh [TASKS] [CONFIG] [--set ...]
# TASKS array tasks of MEMBERS_PER_TASK members each (default 8): TASKS x
# MEMBERS_PER_TASK members in all, at every depth. The shape of a task comes
# from RESNODE_SBATCH_OPTS (e.g. "--ntasks=16 --time=2:00:00"), else Slurm's
# default of one task. Results: $RESNODE_RUNS (default runs/) holds
# ensemble-<array>-<task>/ and ensemble-<array>-analysis/.
set -eu
here=$(cd "$(dirname "$0")" && pwd)
export RESNODE_HOME=${RESNODE_HOME:-$(cd "$here/../.." && pwd)}
tasks=${1:-8}
[ $# -gt 0 ] && shift
per_task=${MEMBERS_PER_TASK:-8}
array=$(sbatch --parsable ${RESNODE_SBATCH_OPTS:-} --array=0-$((tasks - 1)) "$here/ensemble-array.sbatch" "$@")
array=${array%%;*}
analysis=$(sbatch --parsable ${RESNODE_SBATCH_OPTS:-} --ntasks=1 --dependency=afterok:"$array" "$here/analysis.sbatch" "$array" "$tasks")
echo "submitted: ensemble array $array ($tasks tasks x $per_task members), analysis $analysis (after the array succeeds)"
echo "if a task fails, the analysis waits (or is cancelled, by the cluster's DependencyParameters): rerun the task with"
echo "  sbatch ${RESNODE_SBATCH_OPTS:-} --array=<task> $here/ensemble-array.sbatch $* ; then"
echo "  scancel $analysis; sbatch --ntasks=1 $here/analysis.sbatch $array $tasks"
