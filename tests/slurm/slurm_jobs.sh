#!/usr/bin/env bash
# The batch scripts of jobs/slurm/ on a real single-node Slurm (Debian's
# slurmctld and slurmd, started here):
#  1. the ensemble array and its analysis submitted together by sweep.sh with
#     an afterok dependency, one task preempted in the middle of a member's run;
#  2. a job that gets its preemption signal (USR1 to the batch shell, as
#     --signal=B:USR1@N sends it), checkpoints, requeues itself and resumes;
#  3. real preemption by a higher partition (SIGTERM, GraceTime, requeue);
#  4. a CIFAR job whose time limit is shorter than an epoch;
#  5. the paper's k-fold CIFAR config (shrunk), one fold an array task, and
#     its analysis;
#  6. docs/cluster.md's one-job CIFAR ensemble (cifar.sbatch, no parameter files);
#  7. a study as an array (jobs/slurm/study.sh), resubmitted after a lost task;
#  8. a study packed as one job (study.sbatch), preempted and requeued.
# Each ends bitwise equal to an uninterrupted run, with exactly its rows.
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

# 1. the ensemble array and its analysis; task 1 is preempted in the middle
# of a round (a member's SGD run), requeues, resumes there, and the analysis
# that waits for the array merges it
export MEMBERS_PER_TASK=3 RESNODE_SBATCH_OPTS="--ntasks=2 --time=10"
sweep=(--set 'ensemble.depths=[2, 4, 8]' --set sgd.steps=3000 --set sgd.record_every=300)
line=$(bash "$SRC/jobs/slurm/sweep.sh" 2 "$SRC/configs/ensemble.cfg" "${sweep[@]}")
echo "  $line"
array=$(echo "$line" | sed -n 's/.*ensemble array \([0-9]*\).*/\1/p')
analysis=$(echo "$line" | sed -n 's/.*analysis \([0-9]*\).*/\1/p')
[ -n "$array" ] && [ -n "$analysis" ] && ok "sweep.sh submitted array $array and analysis $analysis" || bad "sweep.sh said: $line"
task1=$RESNODE_RUNS/ensemble-$array-1
for i in $(seq 1 3000); do
  [ "$(wc -l 2>/dev/null < "$task1/records.csv" || echo 0)" -gt 1 ] && break
  sleep 0.1
done
scancel --signal=USR1 --batch "${array}_1"
for i in $(seq 1 150); do grep -q "requeueing" "resnode-ensemble-$array-1.out" 2>/dev/null && break; sleep 0.2; done
within=$(grep -o "checkpoint of SGD step [0-9]* of 3000," "resnode-ensemble-$array-1.out" | head -1 | grep -o "step [0-9]*" | grep -o "[0-9]*")
[ -n "$within" ] && [ "$within" -lt 3000 ] && ok "task 1 checkpointed within a member's run (SGD step $within of 3000) and requeued" || bad "task 1: $(tail -3 "resnode-ensemble-$array-1.out")"
wait_jobs "$array" "$analysis" && ok "array and analysis finished" || bad "jobs still queued: $(squeue)"
grep -q "resumed from the checkpoint of step" "resnode-ensemble-$array-1.out" && ok "task 1 resumed from its checkpoint" || bad "task 1 did not resume: $(tail -3 "resnode-ensemble-$array-1.out")"
rn 2 "$SRC/configs/ensemble.cfg" "${sweep[@]}" --set ensemble.members=3 --set ensemble.first_member=3 --set parallel.groups=2 --set output.plot=false --set "run.dir=\"$TMP/runs/task1-ref\""
for f in records.csv stats.csv laws.csv spectrum.csv; do
  cmp -s "$TMP/runs/task1-ref/$f" "$task1/$f" && ok "task 1's $f equals an uninterrupted run's" || bad "task 1's $f differs: $(diff "$TMP/runs/task1-ref/$f" "$task1/$f" | head -3)"
done
for t in 0 1; do
  grep -q '"status": "done"' "$RESNODE_RUNS/ensemble-$array-$t/manifest.json" 2>/dev/null && ok "array task $t completed" || bad "array task $t: $(cat resnode-ensemble-$array-$t.out 2>/dev/null | tail -3)"
done
members=$(tail -n +2 "$RESNODE_RUNS/ensemble-$array-1/records.csv" | cut -d, -f1 | sort -n | uniq | tr '\n' ' ')
[ "$members" = "3 4 5 " ] && ok "task 1 ran members 3..5" || bad "task 1's members: $members"
report=$RESNODE_RUNS/ensemble-$array-analysis/convergence-report.md
[ -s "$report" ] && grep -q "Members: 6" "$report" && ok "the analysis merged both tasks (6 members)" || bad "analysis report: $(cat resnode-analysis-$analysis.out 2>/dev/null | tail -5)"

# 2. preemption and requeue of cifar.sbatch (here with the test-equation config)
args=(--set train.iterations=1200 --set checkpoint.every_steps=50 --set output.plot=false --set 'ode.solver="rk4"' --set ode.adaptive=false --set ode.steps=60)
jid=$(RESNODE_RUN_DIR=$TMP/runs/pre sbatch --parsable --nodes=1 --ntasks-per-node=2 --time=10 --output="$TMP/pre-%j.out" "$SRC/jobs/slurm/cifar.sbatch" "$SRC/configs/node-fit.cfg" "${args[@]}")
[ -n "$jid" ] && ok "cifar.sbatch submitted as job $jid" || bad "submission failed"
for i in $(seq 1 600); do
  [ "$(wc -l 2>/dev/null < "$TMP/runs/pre/train.csv" || echo 0)" -gt 10 ] && break
  sleep 0.1
done
scancel --signal=USR1 --batch "$jid"
for i in $(seq 1 100); do grep -q "requeueing" "$TMP/pre-$jid.out" 2>/dev/null && break; sleep 0.2; done
grep -q "signal received: checkpoint of iteration" "$TMP/pre-$jid.out" && ok "the signal made the run checkpoint" || bad "no checkpoint message: $(tail -5 "$TMP/pre-$jid.out")"
grep -q "requeueing job $jid" "$TMP/pre-$jid.out" && ok "the job requeued itself" || bad "no requeue"
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
  [ "$(wc -l 2>/dev/null < "$TMP/runs/preempted/train.csv" || echo 0)" -gt 10 ] && break
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

# 4. a time limit shorter than a CIFAR epoch: Slurm's signal before the limit
# (--signal=B:USR1@30 with --time=1) reaches the ranks within the epoch; they
# checkpoint at their step, the job requeues, and so on until the epoch and
# the run are done: bitwise the uninterrupted run, with exactly its rows.
# The data is sized from this machine's speed (--plan on a small set) for an
# epoch of EPOCH_TARGET seconds: longer than the limit, and no longer (an
# AVX2 machine is several times slower than an AVX-512 one)
EPOCH_TARGET=90
cifar=(--set "data.dir=\"$TMP/cifar\"" --set data.max_train=0 --set data.folds=1 --set data.validation=100 --set model.channels=64 --set 'model.depths=[8]' --set model.ode=false
  --set train.epochs=1 --set train.batch=32 --set train.eval_batch=500 --set train.log_every=20 --set checkpoint.every_seconds=0 --set output.plot=false)
mkdir -p "$TMP/cifar"
"$RN_MAKE_CIFAR" "$TMP/cifar" 1000 > /dev/null || bad "could not generate data"
rn 2 "$SRC/configs/cifar-small.cfg" "${cifar[@]}" --set "run.dir=\"$TMP/runs/limit-plan\"" --plan
per_step=$(awk '$1 == "plan:" && $2 == "resnet-N8" { print $4 }' "$out")
records=$(awk -v s="${per_step:-0}" -v t=$EPOCH_TARGET 'BEGIN { if (s <= 0) print 6000; else { r = int((t / s * 32 + 100) / 5) + 1; print (r < 1000 ? 1000 : r) } }')
echo "  the plan: ${per_step:-?} s a step: $records records a file for an epoch of about $EPOCH_TARGET s"
"$RN_MAKE_CIFAR" "$TMP/cifar" "$records" > /dev/null || bad "could not generate data"
jid=$(RESNODE_RUN_DIR=$TMP/runs/limit sbatch --parsable --nodes=1 --ntasks=2 --time=1 --signal=B:USR1@30 --output="$TMP/limit-%j.out" "$SRC/jobs/slurm/cifar.sbatch" "$SRC/configs/cifar-small.cfg" "${cifar[@]}")
[ -n "$jid" ] && ok "a CIFAR job with a one-minute limit submitted as $jid" || bad "submission failed"
wait_jobs "$jid" && ok "the job ran to the end over its requeues" || bad "job $jid still queued: $(squeue)"
stops=$(grep -c "signal received: checkpoint of step" "$TMP/limit-$jid.out")
[ "$stops" -ge 1 ] && ok "the time-limit signal stopped it within the epoch $stops time(s)" || bad "no checkpoint before the limit: $(grep -E 'epoch|signal|CANCELLED' "$TMP/limit-$jid.out" | tail -5)"
grep -q '"status": "done"' "$TMP/runs/limit/manifest.json" && ok "the run is done" || bad "manifest: $(grep -E 'status|reason' "$TMP/runs/limit/manifest.json")"
rn 2 "$SRC/configs/cifar-small.cfg" "${cifar[@]}" --set "run.dir=\"$TMP/runs/limit-ref\""
expect_status 0 "the uninterrupted CIFAR run"
epoch=$(sed -n 's/.*trained in \([0-9.]*\) s.*/\1/p' "$out")
awk -v t="${epoch:-0}" 'BEGIN { exit !(t > 60) }' && ok "the epoch ($epoch s uninterrupted) is longer than the one-minute limit" || bad "the epoch ($epoch s) is shorter than the limit: the test needs more data on this machine"
cmp -s "$TMP/runs/limit-ref/snapshots/theta-resnet-N8.bin" "$TMP/runs/limit/snapshots/theta-resnet-N8.bin" && ok "final parameters bitwise equal to the uninterrupted run" || bad "final parameters differ: $(ls "$TMP/runs/limit/snapshots")"
# (but for times: epochs.csv's time_s and images_per_s, final.csv's seconds)
for f in epochs.csv:1-7,9-13 final.csv:1-9; do
  cmp -s <(cut -d, -f"${f#*:}" "$TMP/runs/limit-ref/${f%:*}") <(cut -d, -f"${f#*:}" "$TMP/runs/limit/${f%:*}") && ok "${f%:*} has exactly the uninterrupted run's rows" || bad "${f%:*} differs: $(diff "$TMP/runs/limit-ref/${f%:*}" "$TMP/runs/limit/${f%:*}" | head -4)"
done

# 5. the paper's k-fold CIFAR study (configs/cifar.cfg, shrunk) as an array,
# one fold a task, and the analysis that merges the folds
"$RN_MAKE_CIFAR" "$TMP/cifar-tiny" 120 || bad "could not generate data"
line=$(RESNODE_SBATCH_OPTS="--ntasks=2 --time=10" bash "$SRC/jobs/slurm/cifar-folds.sh" 3 "$SRC/configs/cifar.cfg" --set "data.dir=\"$TMP/cifar-tiny\"" --set model.channels=4 --set 'model.depths=[2]' --set train.epochs=1 --set train.batch=50 --set train.eval_batch=100 --set output.plot=false)
echo "  $line"
array=$(echo "$line" | sed -n 's/.*fold array \([0-9]*\).*/\1/p')
analysis=$(echo "$line" | sed -n 's/.*analysis \([0-9]*\).*/\1/p')
[ -n "$array" ] && [ -n "$analysis" ] && ok "cifar-folds.sh submitted array $array and analysis $analysis" || bad "cifar-folds.sh said: $line"
wait_jobs "$array" "$analysis" && ok "the fold array and its analysis finished" || bad "jobs still queued: $(squeue)"
for t in 0 1 2; do
  awk -F, -v t=$t 'NR > 1 && $5 != t { bad = 1 } END { exit bad || NR != 3 }' "$RESNODE_RUNS/cifar-$array-$t/final.csv" 2> /dev/null && ok "task $t trained fold $t of 3 (the ResNet and the ODE)" || bad "task $t: $(cat "$RESNODE_RUNS/cifar-$array-$t/final.csv" 2>/dev/null)"
done
report=$RESNODE_RUNS/cifar-$array-analysis/cifar-report.md
[ "$(grep -c '^| \(resnet N = 2\|neural ODE\) | [012] | ' "$report" 2>/dev/null)" -eq 6 ] && grep -q '^| resnet N = 2 | 3 | ' "$report" && ok "the analysis merged the 3 folds of both models" || bad "report: $(cat "$report" resnode-analysis-$analysis.out 2>/dev/null | tail -8)"

# 6. docs/cluster.md's one-job ensemble: cifar.sbatch with configs/cifar-ensemble.cfg,
# one member a rank (parallel.groups = the task count), no parameter files;
# the analysis works from its gram.h5 alone (output.arrays = "hdf5", the default)
jid=$(RESNODE_RUN_DIR=$TMP/runs/onejob sbatch --parsable --ntasks=2 --time=10 --output="$TMP/onejob-%j.out" "$SRC/jobs/slurm/cifar.sbatch" "$SRC/configs/cifar-ensemble.cfg" \
  --set "data.dir=\"$TMP/cifar-tiny\"" --set ensemble.members=2 --set parallel.groups=2 --set model.channels=4 --set data.max_train=100 --set 'ensemble.depths=[2, 4]' \
  --set sgd.steps=8 --set sgd.record_every=4 --set 'ensemble.save_parameters="none"' --set output.plot=false)
[ -n "$jid" ] && ok "the one-job CIFAR ensemble submitted as $jid" || bad "submission failed"
wait_jobs "$jid" && ok "it finished" || bad "job $jid still queued: $(squeue)"
grep -q '"status": "done"' "$TMP/runs/onejob/manifest.json" 2>/dev/null && [ -z "$(ls "$TMP/runs/onejob/snapshots")" ] && ok "done, with no parameter files" || bad "one-job ensemble: $(tail -3 "$TMP/onejob-$jid.out")"
/usr/bin/python3 "$SRC/analysis/convergence" "$TMP/runs/onejob" > "$TMP/onejob.txt" 2>&1 && grep -q "errors from gram.h5" "$TMP/onejob.txt" && [ ! -e "$TMP/runs/onejob/params.h5" ] && ok "analysis/convergence from its gram.h5" || bad "analysis: $(cat "$TMP/onejob.txt")"
# 7. a study as an array (jobs/slurm/study.sh): two points a task
# (POINTS_PER_TASK), the analysis after them. Called again while its tasks
# wait (held), it submits nothing; a task lost before it ran (cancelled):
# called again, it submits that task's two points alone (one a task), and an
# analysis that waits for them (replacing the one that waited for an array
# that can no longer succeed)
cat > "$TMP/study.cfg" <<EOF
@include "$SRC/configs/node-fit.cfg"
train = { iterations = 30; };
study = { dir = "$TMP/runs/study"; axes = { train = { lr = [0.01, 0.02]; }; seed = [1, 2]; }; };
EOF
line=$(POINTS_PER_TASK=2 RESNODE_SBATCH_OPTS="--hold --time=10" bash "$SRC/jobs/slurm/study.sh" "$TMP/study.cfg")
echo "  $line"
array=$(echo "$line" | sed -n 's/^submitted: study array \([0-9]*\) (4 point(s) in 2 task(s)), analysis \([0-9]*\).*/\1/p')
analysis=$(echo "$line" | sed -n 's/^submitted: study array [0-9]* (4 point(s) in 2 task(s)), analysis \([0-9]*\).*/\1/p')
[ -n "$array" ] && [ -n "$analysis" ] && ok "study.sh submitted 4 points in an array of 2 tasks ($array) and its analysis ($analysis)" || bad "study.sh said: $line"
again=$(bash "$SRC/jobs/slurm/study.sh" "$TMP/study.cfg")
echo "$again" | grep -q "nothing to submit: 0 done, 0 failed, 4 queued or running" && ok "called again while they wait: nothing submitted, 4 queued" || bad "second call: $again"
lost=$(grep -lx "${array}_1" "$TMP"/runs/study/slurm/*.job | xargs -r -n1 basename | sed 's/\.job$//' | sort | tr '\n' ' ')
scancel "${array}_1"
scontrol release "$array"
wait_jobs "$array" && ok "the other task ran" || bad "array still queued: $(squeue)"
[ "$(grep -l '"status": "done"' "$TMP"/runs/study/points/*/manifest.json 2> /dev/null | wc -l)" -eq 2 ] && ok "its 2 points done" || bad "points: $(ls "$TMP/runs/study/points")"
third=$(bash "$SRC/jobs/slurm/study.sh" "$TMP/study.cfg")
echo "$third" | sed 's/^/  /'
array2=$(echo "$third" | sed -n 's/^submitted: study array \([0-9]*\) (2 point(s) in 2 task(s)), analysis [0-9]*; 2 done, 0 failed, 0 queued or running before$/\1/p')
analysis2=$(echo "$third" | sed -n 's/^submitted: study array [0-9]* (2 point(s) in 2 task(s)), analysis \([0-9]*\);.*/\1/p')
resubmitted=$(grep -l "^${array2}_" "$TMP"/runs/study/slurm/*.job 2> /dev/null | xargs -r -n1 basename | sed 's/\.job$//' | sort | tr '\n' ' ')
[ -n "$array2" ] && [ "$(echo $lost | wc -w)" -eq 2 ] && [ "$resubmitted" = "$lost" ] && ok "called again: only the lost task's points ($lost) submitted" || bad "third call: $third (lost: $lost; resubmitted: $resubmitted)"
echo "$third" | grep -q "the earlier analysis job $analysis .* is replaced" && ok "the analysis that waited for the lost task is replaced" || bad "analysis: $third"
wait_jobs "$array2" "$analysis2" && ok "the point and the analysis ran" || bad "still queued: $(squeue)"
[ "$(grep -c ',done,' "$TMP/runs/study/points.csv" 2> /dev/null)" -eq 4 ] && ok "the study's analysis: points.csv with the 4 points done" || bad "points.csv: $(cat "$TMP/runs/study/points.csv" "resnode-study-analysis-$analysis2.out" 2> /dev/null | tail -5)"
# 8. the same study packed as one job (study.sbatch), preempted while its
# points train: it checkpoints them, requeues, resumes them, and each point
# ends bitwise as the same config run alone on one rank
cat > "$TMP/packed.cfg" <<EOF
@include "$SRC/configs/node-fit.cfg"
train = { iterations = 1500; };
study = { dir = "$TMP/runs/packed"; axes = { seed = [1, 2]; }; };
EOF
jid=$(sbatch --parsable --ntasks=2 --time=10 --output="$TMP/packed-%j.out" "$SRC/jobs/slurm/study.sbatch" "$TMP/packed.cfg")
[ -n "$jid" ] && ok "study.sbatch submitted as $jid" || bad "submission failed"
for i in $(seq 1 600); do
  [ "$(cat "$TMP"/runs/packed/points/*/train.csv 2> /dev/null | wc -l)" -gt 40 ] && break
  sleep 0.1
done
scancel --signal=USR1 --batch "$jid"
for i in $(seq 1 150); do grep -q "requeueing" "$TMP/packed-$jid.out" 2> /dev/null && break; sleep 0.2; done
grep -q "stopped (resumable" "$TMP/packed-$jid.out" && ok "preempted: its points checkpointed and stopped" || bad "no stop: $(tail -5 "$TMP/packed-$jid.out")"
wait_jobs "$jid" && ok "the requeued study ran to the end" || bad "job $jid still queued: $(squeue)"
grep -q "2 to run ([12] resumed)" "$TMP/packed-$jid.out" && ok "the requeued job resumed the stopped points" || bad "$(grep '^study' "$TMP/packed-$jid.out")"
for seed in 1 2; do
  dir=$(ls -d "$TMP/runs/packed/points/seed=$seed-"*)
  OMP_NUM_THREADS=1 rn 1 "$SRC/configs/node-fit.cfg" --set train.iterations=1500 --set seed=$seed --set "run.dir=\"$TMP/runs/packed-alone-$seed\""
  cmp -s "$TMP/runs/packed-alone-$seed/snapshots/final.bin" "$dir/snapshots/final.bin" && cmp -s <(cut -d, -f1-4,6- "$TMP/runs/packed-alone-$seed/train.csv") <(cut -d, -f1-4,6- "$dir/train.csv") \
    && ok "point seed=$seed: its rows and final parameters bitwise those of the config run alone" || bad "point seed=$seed differs from the run alone"
done
finish
