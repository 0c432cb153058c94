#!/usr/bin/env bash
# Runs resnode-mpi inside a Slurm batch job so that preemption loses nothing:
# SIGUSR1 (from --signal=B:USR1@SECONDS, or scancel --signal=USR1 --batch)
# and SIGTERM are forwarded to the ranks, which finish their step, write a
# checkpoint and exit with status 3; the job is then requeued, and the next
# run resumes from the checkpoint in the same run directory by itself.
# Used by the .sbatch files here:  run-resnode.sh RUN_DIR CONFIG [ARGS...]
set -u
run_dir=$1
config=$2
shift 2
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
export RESNODE_HOME=${RESNODE_HOME:-$(cd "$here/../.." && pwd)}
. "$here/locate.sh"
bin=$RESNODE_BIN
# Inside Slurm srun starts the ranks: at preemption Slurm signals the job's
# steps, and ranks started by mpirun inside the batch step get no notice.
# RESNODE_LAUNCHER=mpirun|srun overrides; RESNODE_SRUN_MPI is srun's --mpi.
if [ -n "${SLURM_JOB_ID:-}" ] && command -v srun > /dev/null; then default_launcher=srun; else default_launcher=mpirun; fi
launcher=${RESNODE_LAUNCHER:-$default_launcher}
if [ ! -x "$bin" ]; then
  echo "run-resnode: $bin is not there (build it with scripts/build, install it, or set RESNODE_BIN)" >&2
  exit 2
fi
if [ "$(id -u)" -eq 0 ]; then export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1; fi
echo "run-resnode: job ${SLURM_JOB_ID:-?} (restart ${SLURM_RESTART_COUNT:-0}) on ${SLURM_JOB_NODELIST:-?}, ${SLURM_NTASKS:-?} tasks by $launcher, run directory $run_dir"

case $launcher in
  srun) srun --mpi="${RESNODE_SRUN_MPI:-pmix}" "$bin" "$config" --set "run.dir=\"$run_dir\"" "$@" & ;;
  *) mpirun -n "${SLURM_NTASKS:-1}" --bind-to none "$bin" "$config" --set "run.dir=\"$run_dir\"" "$@" & ;;
esac
pid=$!
# the batch shell gets the signal: pass it on (mpirun forwards USR1 to the ranks)
forwarded=0
forward() { forwarded=1; kill -USR1 "$pid" 2>/dev/null; }
trap forward USR1 TERM
status=0
while :; do
  wait "$pid"
  status=$?
  # wait returns early when a trapped signal arrives; the job is over when the launcher is
  kill -0 "$pid" 2>/dev/null || break
done
if [ "$status" -eq 3 ]; then
  # at a preemption with PreemptMode=REQUEUE Slurm requeues the job itself
  echo "run-resnode: preempted after a checkpoint; requeueing job $SLURM_JOB_ID"
  scontrol requeue "$SLURM_JOB_ID" 2> /dev/null || echo "run-resnode: (Slurm requeues it)"
fi
# plots and reports: the analysis command the run names, as a step of its own
# after the MPI job (array tasks are analysed together by analysis.sbatch)
if [ "$status" -eq 0 ] && [ -z "${SLURM_ARRAY_TASK_ID:-}" ] && [ "${RESNODE_ANALYSE:-1}" != 0 ]; then
  analysis=$(sed -n 's/.*"analysis": "\([^"]*\)".*/\1/p' "$run_dir/manifest.json" 2> /dev/null)
  if [ -n "$analysis" ] && [ -x "$RESNODE_BINDIR/$analysis" ]; then
    echo "run-resnode: $analysis $run_dir"
    "$RESNODE_BINDIR/$analysis" "$run_dir" || echo "run-resnode: note: $analysis did not finish (the results in $run_dir are complete; run it where Python 3 with numpy and matplotlib is)"
  fi
fi
exit "$status"
