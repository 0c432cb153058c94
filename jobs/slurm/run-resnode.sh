#!/usr/bin/env bash
# Runs resnode-mpi inside a Slurm batch job so that preemption loses nothing:
# SIGUSR1 (from --signal=B:USR1@SECONDS, or scancel --signal=USR1 --batch)
# and SIGTERM are forwarded to the ranks, which finish their step, write a
# checkpoint and exit with status 3; the job is then requeued, and the next
# run resumes from the checkpoint in the same run directory by itself.
# Used by the .sbatch files here:  run-resnode.sh RUN_DIR CONFIG [ARGS...]
# With RESNODE_STUDY=1, CONFIG is a study file and RUN_DIR its STUDY_DIR
# (study.sbatch): each point has its run directory there.
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
# more tasks on a node than CPUs (sbatch --overcommit): a rank waiting in MPI
# must give its CPU to the rank it waits for. mpirun does so by itself when it
# sees the node oversubscribed; under srun Open MPI cannot tell, and its busy
# polling made a 64-task job on 6 CPUs 24 times slower
tasks_here=${SLURM_TASKS_PER_NODE:-0}
tasks_here=${tasks_here%%[(,]*}
if [ "${tasks_here:-0}" -gt "${SLURM_CPUS_ON_NODE:-$tasks_here}" ] && [ -z "${OMPI_MCA_mpi_yield_when_idle:-}" ]; then
  export OMPI_MCA_mpi_yield_when_idle=1
  echo "run-resnode: $tasks_here tasks on ${SLURM_CPUS_ON_NODE} CPU(s) of this node: MPI ranks yield while they wait (OMPI_MCA_mpi_yield_when_idle=1)"
fi
echo "run-resnode: job ${SLURM_JOB_ID:-?} (restart ${SLURM_RESTART_COUNT:-0}) on ${SLURM_JOB_NODELIST:-?}, ${SLURM_NTASKS:-?} tasks by $launcher, run directory $run_dir"

# the launcher's messages are kept (RUN_DIR/launcher.err) as well as shown:
# when a node or rank is lost, they name it, and the ranks cannot
mkdir -p "$run_dir"
launcher_err=$run_dir/launcher.err
# the time of this launch: the ranks are up (every one has its signal
# handlers) once this attempt has written the run's manifest
started=$(mktemp "${TMPDIR:-/tmp}/resnode-launch-XXXXXX")
# a run's directory is its run.dir; a study's file names its own. The ranks
# are up once the attempt wrote its manifest (a study: study.json)
if [ "${RESNODE_STUDY:-0}" = 1 ]; then
  where=() up=$run_dir/study.json
else
  where=(--set "run.dir=\"$run_dir\"") up=$run_dir/manifest.json
fi
case $launcher in
  srun) srun --mpi="${RESNODE_SRUN_MPI:-pmix}" "$bin" "$config" "${where[@]}" "$@" 2> >(tee -a "$launcher_err" >&2) & ;;
  *) mpirun -n "${SLURM_NTASKS:-1}" --bind-to none "$bin" "$config" "${where[@]}" "$@" 2> >(tee -a "$launcher_err" >&2) & ;;
esac
pid=$!
# the batch shell gets the signal: pass it on (srun and mpirun forward USR1 to
# the ranks), but not before the ranks are up: a rank still loading its
# libraries would die of it, and the job would hang on the others (Slurm may
# send --signal's notice up to a minute early, at the job's start)
pending=0
trap 'pending=1' USR1 TERM
while kill -0 "$pid" 2> /dev/null; do
  if [ "$pending" = 1 ]; then
    if [ "$up" -nt "$started" ]; then
      kill -USR1 "$pid" 2> /dev/null
      pending=0
    else
      sleep 0.5
      continue
    fi
  fi
  # returns early when a trapped signal arrives
  wait "$pid"
done
wait "$pid"
status=$?
rm -f "$started"
# ranks killed with their node (or by the kernel): the manifest still says
# running; say failed, naming what the launcher saw lost (mpirun: "process
# rank R ... on node H exited on signal S", or "Remote daemon: ... on node H"
# when the node went with its ranks; srun: "srun: error: H: task R: ...")
manifest=$run_dir/manifest.json
if [ "$status" -ne 0 ] && [ "$status" -ne 2 ] && [ "$status" -ne 3 ] && [ "$status" -ne 4 ] && grep -q '"status": "running"' "$manifest" 2> /dev/null; then
  lost=$(sed -n 's/.*process rank \([0-9]*\) with PID [0-9]* on node \([^ ]*\) exited on signal \([0-9]*\).*/rank \1 on host \2 (signal \3)/p; s/^srun: error: \([^:]*\): tasks\{0,1\} \([0-9,-]*\): \(.*\)/rank \2 on host \1 (\3)/p; s/.*[Nn]ode failure on \([^ ,]*\).*/host \1 (node failure)/p; s/.*Remote daemon: .* on node \([^ ]*\).*/host \1 (its daemon and ranks gone)/p' "$launcher_err" 2> /dev/null | head -1)
  reason="lost: ${lost:-a rank or node (the launcher exited with status $status)}; the last checkpoint is kept: resubmit, or resume with --resume $run_dir"
  sed 's/"status": "running"/"status": "failed"/; s|"reason": "[^"]*"|"reason": "'"$reason"'"|' "$manifest" > "$manifest.tmp" && mv "$manifest.tmp" "$manifest"
  echo "run-resnode: $reason"
fi
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
