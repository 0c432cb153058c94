#!/usr/bin/env bash
# The batch scripts of jobs/slurm/ on a real single-node Slurm (Debian's
# slurmctld and slurmd, started here): the ensemble array and its analysis
# submitted together by sweep.sh with an afterok dependency; and a job that
# gets its preemption signal (USR1 to the batch shell, as --signal=B:USR1@N
# sends it), checkpoints, requeues itself and, when it runs again, resumes and
# ends with the same parameters as an uninterrupted run.
. "$(dirname "$0")/../cli/lib.sh"
here=$(cd "$(dirname "$0")" && pwd)
for t in slurmctld slurmd sbatch; do
  command -v $t > /dev/null || { bad "$t is not installed (scripts/install-deps installs slurmctld, slurmd, slurm-client)"; finish; exit 1; }
done
cluster=$TMP/cluster
trap 'bash "$here/cluster.sh" stop "$cluster"; rm -rf "$TMP"' EXIT
bash "$here/cluster.sh" start "$cluster" || { bad "slurm did not start"; finish; exit 1; }
export SLURM_CONF=$cluster/slurm.conf
export RESNODE_HOME=$SRC RESNODE_BIN=$BIN RESNODE_RUNS=$TMP/runs
mkdir -p "$RESNODE_RUNS"
cd "$TMP"

# wait_jobs ID...: until none of them is queued or running (at most ~5 minutes)
wait_jobs() {
  for i in $(seq 1 300); do
    [ -z "$(squeue -h -j "$(IFS=,; echo "$*")" -o %i 2>/dev/null)" ] && return 0
    sleep 1
  done
  return 1
}

# 1. the ensemble array and its analysis
export MEMBERS_PER_TASK=3 RESNODE_SBATCH_OPTS="--ntasks=2 --time=10"
line=$(bash "$SRC/jobs/slurm/sweep.sh" 2 "$SRC/configs/ensemble.cfg" --set 'ensemble.depths=[2, 4, 8]' --set sgd.steps=20)
echo "  $line"
array=$(echo "$line" | sed -n 's/.*ensemble array \([0-9]*\).*/\1/p')
analysis=$(echo "$line" | sed -n 's/.*analysis \([0-9]*\).*/\1/p')
[ -n "$array" ] && [ -n "$analysis" ] && ok "sweep.sh submitted array $array and analysis $analysis" || bad "sweep.sh said: $line"
wait_jobs "$array" "$analysis" && ok "array and analysis finished" || bad "jobs still queued: $(squeue)"
for t in 0 1; do
  grep -q '"status": "done"' "$RESNODE_RUNS/ensemble-$array-$t/manifest.json" 2>/dev/null && ok "array task $t completed" || bad "array task $t: $(cat resnode-ensemble-$array-$t.out 2>/dev/null | tail -3)"
done
[ "$(ls "$RESNODE_RUNS/ensemble-$array-1"/snapshots/theta-N0-m*.bin | sed 's/.*-m//' | sort -n | head -1)" = "3.bin" ] && ok "task 1 ran members 3..5" || bad "task 1's members: $(ls "$RESNODE_RUNS/ensemble-$array-1/snapshots" | head -3)"
report=$RESNODE_RUNS/ensemble-$array-analysis/convergence-report.md
[ -s "$report" ] && grep -q "Members: 6" "$report" && ok "the analysis merged both tasks (6 members)" || bad "analysis report: $(cat resnode-analysis-$analysis.out 2>/dev/null | tail -5)"

# 2. preemption and requeue of cifar.sbatch (here with the test-equation config)
args=(--set train.iterations=1200 --set checkpoint.every_steps=50 --set output.plot=false --set 'ode.solver="rk4"' --set ode.adaptive=false --set ode.steps=60)
jid=$(RESNODE_RUN_DIR=$TMP/runs/pre sbatch --parsable --nodes=1 --ntasks-per-node=2 --time=10 --output="$TMP/pre-%j.out" "$SRC/jobs/slurm/cifar.sbatch" "$SRC/configs/node-fit.cfg" "${args[@]}")
[ -n "$jid" ] && ok "cifar.sbatch submitted as job $jid" || bad "submission failed"
for i in $(seq 1 600); do
  [ "$(wc -l < "$TMP/runs/pre/train.csv" 2>/dev/null || echo 0)" -gt 10 ] && break
  sleep 0.1
done
scancel --signal=USR1 --batch "$jid"
for i in $(seq 1 100); do grep -q "requeueing" "$TMP/pre-$jid.out" 2>/dev/null && break; sleep 0.2; done
grep -q "signal received: checkpoint of iteration" "$TMP/pre-$jid.out" && ok "the signal made the run checkpoint" || bad "no checkpoint message: $(tail -5 "$TMP/pre-$jid.out")"
grep -q "requeueing job $jid" "$TMP/pre-$jid.out" && ok "the job requeued itself" || bad "no requeue"
# Slurm holds a requeued job for about two minutes before it is eligible again
wait_jobs "$jid" && ok "the requeued job ran to the end" || bad "job $jid still queued: $(squeue)"
[ "$(scontrol show job "$jid" | sed -n 's/.*Restarts=\([0-9]*\).*/\1/p')" -ge 1 ] && ok "Slurm counted a restart" || bad "no restart recorded"
grep -q "resumed from the checkpoint of step" "$TMP/pre-$jid.out" && ok "the second run resumed from the checkpoint" || bad "no resume: $(tail -5 "$TMP/pre-$jid.out")"
grep -q '"status": "done"' "$TMP/runs/pre/manifest.json" && ok "run completed" || bad "manifest: $(grep status "$TMP/runs/pre/manifest.json")"
rn 2 "$SRC/configs/node-fit.cfg" "${args[@]}" --set "run.dir=\"$TMP/runs/ref\""
expect_status 0 "the uninterrupted reference run"
cmp -s "$TMP/runs/ref/snapshots/final.bin" "$TMP/runs/pre/snapshots/final.bin" && ok "final parameters bitwise equal to the uninterrupted run" || bad "final parameters differ"

# 3. real preemption: a job in the preemptible partition "low" is preempted by
# one in "high" (PreemptMode=REQUEUE, GraceTime=30: Slurm sends SIGTERM to the
# job's steps, waits, kills and requeues). Through the default launcher (srun
# inside Slurm) the ranks get the SIGTERM, checkpoint and exit 3; the job runs
# again and ends bitwise equal to the uninterrupted run. The job is submitted
# from outside the clone, with the shape on the sbatch line only.
# (long enough to be running when the scheduler gets to the preemption)
long=(--set train.iterations=5000 --set checkpoint.every_steps=1000 --set output.plot=false --set 'ode.solver="rk4"' --set ode.adaptive=false --set ode.steps=60)
mkdir -p "$TMP/elsewhere"
jid=$(cd "$TMP/elsewhere" && env -u RESNODE_HOME RESNODE_RUN_DIR=$TMP/runs/preempted sbatch --parsable -p low --nodes=1 --ntasks=2 --time=10 --output="$TMP/preempted-%j.out" "$SRC/jobs/slurm/cifar.sbatch" "$SRC/configs/node-fit.cfg" "${long[@]}")
[ -n "$jid" ] && ok "job $jid submitted to the preemptible partition from outside the clone" || bad "submission failed"
for i in $(seq 1 600); do
  [ "$(wc -l < "$TMP/runs/preempted/train.csv" 2>/dev/null || echo 0)" -gt 10 ] && break
  sleep 0.1
done
hi=$(sbatch --parsable -p high --ntasks=2 --time=5 --output="$TMP/high-%j.out" --wrap "sleep 2")
for i in $(seq 1 300); do grep -q "preempted after a checkpoint" "$TMP/preempted-$jid.out" 2>/dev/null && break; sleep 0.2; done
grep -q "tasks by srun" "$TMP/preempted-$jid.out" && ok "srun is the launcher inside Slurm" || bad "launcher: $(head -3 "$TMP/preempted-$jid.out")"
grep -q "signal received: checkpoint of iteration" "$TMP/preempted-$jid.out" && ok "Slurm's preemption SIGTERM reached the ranks, which checkpointed" || bad "no checkpoint at preemption: $(tail -5 "$TMP/preempted-$jid.out")"
wait_jobs "$jid" "$hi" && ok "the preempted job ran again to the end" || bad "job $jid still queued: $(squeue)"
grep -q "resumed from the checkpoint of step" "$TMP/preempted-$jid.out" && ok "it resumed from the preemption checkpoint" || bad "no resume: $(tail -5 "$TMP/preempted-$jid.out")"
rn 2 "$SRC/configs/node-fit.cfg" "${long[@]}" --set "run.dir=\"$TMP/runs/long-ref\""
cmp -s "$TMP/runs/long-ref/snapshots/final.bin" "$TMP/runs/preempted/snapshots/final.bin" && ok "final parameters bitwise equal to the uninterrupted run" || bad "final parameters differ"
cmp -s <(cut -d, -f1-4,6- "$TMP/runs/long-ref/train.csv") <(cut -d, -f1-4,6- "$TMP/runs/preempted/train.csv") && ok "train.csv has exactly the uninterrupted run's rows (but for times)" || bad "train.csv: $(wc -l < "$TMP/runs/preempted/train.csv") lines, expected $(wc -l < "$TMP/runs/long-ref/train.csv")"
finish
