#!/usr/bin/env bash
# Submits the ensemble array and its analysis (which waits for the whole array
# to succeed) in one command:
#   jobs/slurm/sweep.sh [TASKS] [CONFIG] [--set ...]
# Results: runs/ensemble-<array>-<task>/ and runs/ensemble-<array>-analysis/.
# RESNODE_SBATCH_OPTS adds sbatch options to both (e.g. "--ntasks=16 --time=2:00:00").
set -eu
here=$(cd "$(dirname "$0")" && pwd)
tasks=${1:-8}
[ $# -gt 0 ] && shift
array=$(sbatch --parsable ${RESNODE_SBATCH_OPTS:-} --array=0-$((tasks - 1)) "$here/ensemble-array.sbatch" "$@")
array=${array%%;*}
analysis=$(sbatch --parsable ${RESNODE_SBATCH_OPTS:-} --ntasks=1 --dependency=afterok:"$array" "$here/analysis.sbatch" "$array")
echo "submitted: ensemble array $array ($tasks tasks), analysis $analysis (after the array succeeds)"
