#!/usr/bin/env bash
# The depth sweep as units that groups take from a queue, largest first, at
# their own pace (units.h): every unit bitwise the same whichever group
# trains it and when; a stop checkpoints every unit in progress; a resume
# continues on another group count, bitwise, with exactly the uninterrupted
# rows; an error in one group ends the others within a step; "auto" chooses
# the group shape and says so. One thread a rank: results do not depend on
# the group, but oneDNN's sums do on the threads.
. "$(dirname "$0")/lib.sh"
export OMP_NUM_THREADS=1
MAKE=${RN_MAKE_CIFAR:?RN_MAKE_CIFAR not set}
"$MAKE" "$TMP/data" 300 || { bad "could not generate data"; finish; exit 1; }
# unequal units: the ODE (rk4, 4 steps: 16 evaluations), N = 4 and N = 1, two folds each
args=(--set "data.dir=\"$TMP/data\"" --set data.folds=2 --set model.channels=8 --set 'model.depths=[1, 4]' --set model.ode=true --set train.epochs=3 --set train.batch=20
  --set train.eval_batch=100 --set train.log_every=1 --set checkpoint.every_seconds=0 --set output.plot=false)
run_on() { # NP GROUPS DIR ARGS...: an uninterrupted run
  local np=$1 groups=$2 dir=$3
  shift 3
  timeout 300 mpirun -x OMP_NUM_THREADS --bind-to none -n "$np" "$BIN" "$SRC/configs/cifar-small.cfg" "${args[@]}" --set parallel.groups="$groups" --set "run.dir=\"$dir\"" "$@" > "$dir.out" 2> "$dir.err"
  status=$?
  out=$dir.out err=$dir.err
}
same_units() { # DIR_A DIR_B WHAT: snapshots bitwise, rows but for the group and times
  local a=$1 b=$2 what=$3 n=0 diffs=""
  for f in "$a"/snapshots/theta-*.bin; do
    n=$((n + 1))
    cmp -s "$f" "$b/snapshots/$(basename "$f")" || diffs="$diffs $(basename "$f")"
  done
  [ "$n" -eq 6 ] && [ -z "$diffs" ] && ok "$what: the 6 units' parameters bitwise equal" || bad "$what: $n snapshots, differing:$diffs"
  cmp -s <(cut -d, -f2-7,9-13 "$a/epochs.csv") <(cut -d, -f2-7,9-13 "$b/epochs.csv") && [ "$(wc -l < "$a/epochs.csv")" -eq 19 ] && ok "$what: epochs.csv has the same 18 rows (but for group and times)" || bad "$what: epochs.csv differs: $(diff <(cut -d, -f2-7,9-13 "$a/epochs.csv") <(cut -d, -f2-7,9-13 "$b/epochs.csv") | head -4)"
  cmp -s <(cut -d, -f2-9 "$a/final.csv") <(cut -d, -f2-9 "$b/final.csv") && ok "$what: final.csv the same (but for group and times)" || bad "$what: final.csv differs: $(diff "$a/final.csv" "$b/final.csv")"
}

run_on 2 2 "$TMP/two"
expect_status 0 "the sweep on 2 groups of 1 rank"
order=$(sed -n 's/^units: 6 to train on 2 group(s), largest first, each group taking the next when free: //p' "$out")
[ "$order" = "ode-fold0, ode-fold1, resnet-N4-fold0, resnet-N4-fold1, resnet-N1-fold0, resnet-N1-fold1" ] && ok "units handed out largest first: $order" || bad "unit order: '$order'"
grep -q '"schedule": "2 group(s) of 1 rank(s); predicted busy fraction' "$TMP/two/manifest.json" && ok "the manifest says the group shape and its predicted busy fraction" || bad "manifest: $(grep schedule "$TMP/two/manifest.json")"
ls "$TMP"/two/units/*/checkpoints/*.done > /dev/null 2>&1 && [ "$(ls -d "$TMP"/two/units/*/ | wc -l)" -eq 6 ] && ok "one directory of checkpoints and tables a unit" || bad "units: $(ls "$TMP/two/units")"
# both groups took units from the queue (final.csv's group column: which
# group takes which unit is the queue's, but each takes one at the start)
g0=$(awk -F, 'NR > 1 && $1 == 0' "$TMP/two/final.csv" | wc -l); g1=$(awk -F, 'NR > 1 && $1 == 1' "$TMP/two/final.csv" | wc -l)
[ $((g0 + g1)) -eq 6 ] && [ "$g0" -ge 1 ] && [ "$g1" -ge 1 ] && ok "both groups took units from the queue ($g0 and $g1)" || bad "units per group: $g0 and $g1"

# the check of the PETSc options reads TS's options with -help on: its lists
# of types must not reach the job's output (they did, on every run)
grep -q '<now ' "$TMP/two.out" && bad "PETSc's help lines in the output: $(grep '<now ' "$TMP/two.out" | head -2)" || ok "no PETSc help lines in the output"

run_on 1 1 "$TMP/one"
expect_status 0 "the same sweep on one group"
same_units "$TMP/two" "$TMP/one" "2 groups against 1"

# stopped by a signal while the groups are inside their units, resumed on 1
# rank: every unit in progress goes on from its own checkpoint
signal_when "$TMP/cut" units/resnet-N4-fold0/epochs.csv 1 "$SRC/configs/cifar-small.cfg" "${args[@]}" --set parallel.groups=2
expect_status 3 "SIGUSR1 stops both groups with the preemption status"
expect_message "signal received: checkpoint of" "the message names the unit's step"
grep -q '"status": "preempted"' "$TMP/cut/manifest.json" && ok "manifest says preempted" || bad "manifest: $(grep -E 'status|reason' "$TMP/cut/manifest.json")"
[ "$(ls "$TMP"/cut/units/*/checkpoints/*.done | wc -l)" -ge 3 ] && ok "the finished units and the ones in progress are checkpointed" || bad "checkpoints: $(ls "$TMP"/cut/units/*/checkpoints/)"
timeout 300 mpirun -x OMP_NUM_THREADS --bind-to none -n 1 "$BIN" --resume "$TMP/cut" --set parallel.groups=1 > "$TMP/resume.out" 2> "$TMP/resume.err"
status=$? out=$TMP/resume.out err=$TMP/resume.err
expect_status 0 "resumed on 1 rank in 1 group (the run had 2 groups)"
grep -q "finished already" "$out" && grep -q "(resumed)" "$out" && ok "the resume skips the finished units and continues the others" || bad "resume log: $(grep '^units\|resumed' "$out")"
same_units "$TMP/two" "$TMP/cut" "resumed on 1 group against uninterrupted on 2"

# an error in one group's unit (the ODE's solver gives up at its first step)
# ends the other group within a step of its own: the job's status is the
# error's (2), the manifest names it, and the other group's unit in progress
# is checkpointed where it stopped
run_on 2 2 "$TMP/fail" --set 'model.depths=[4]' --set data.folds=1 --set data.validation=100 --set 'model.precision="float64"' --set 'ode.solver="dopri5"' --set ode.adaptive=true --set ode.max_steps=1
expect_status 2 "an error in the ODE's group ends the job with its status"
grep -q '"status": "failed"' "$TMP/fail/manifest.json" && grep -q '"reason": "bad input: .*max_steps' "$TMP/fail/manifest.json" && ok "manifest: failed, with the ODE group's error" || bad "manifest: $(grep -E 'status|reason' "$TMP/fail/manifest.json")"
# (the ODE fails at its first solve, while the other group sets its unit up:
# whether that unit has started when the stop comes depends on the machine's
# load, and both outcomes are right: it checkpoints the unit where it
# stopped, or it takes no unit at all)
step=$(ls "$TMP"/fail/units/resnet-N4/checkpoints/ 2> /dev/null | sed -n 's/ckpt-0*\([0-9]*\)\.done/\1/p' | tail -1)
if [ -d "$TMP/fail/units/resnet-N4" ]; then
  [ -n "$step" ] && [ "$step" -lt 111 ] && ok "the other group stopped within its unit and checkpointed it (step $step of 111)" || bad "the ResNet unit's checkpoints: $(ls "$TMP/fail/units/resnet-N4/checkpoints" 2>&1)"
else
  [ -z "$step" ] && ok "the other group had not started its unit when the error came, and started none" || bad "a checkpoint of a unit that never started: $step"
fi

# "auto": the group count with the least predicted wall time, said in the log
timeout 300 mpirun -x OMP_NUM_THREADS --bind-to none -n 2 "$BIN" "$SRC/configs/cifar-small.cfg" "${args[@]}" --set 'parallel.groups="auto"' --set train.epochs=1 --set "run.dir=\"$TMP/auto\"" > "$TMP/auto.out" 2>&1
status=$? err=$TMP/auto.out
expect_status 0 "parallel.groups = \"auto\""
grep -q '^schedule: 2 group(s) of 1 rank(s), chosen by parallel.groups = "auto"; predicted busy fraction' "$TMP/auto.out" && ok "auto: 2 groups of 1 rank for 6 units at 20 images a batch" || bad "auto: $(grep schedule "$TMP/auto.out")"
rn 2 "$SRC/configs/cifar-small.cfg" "${args[@]}" --set 'parallel.groups="many"'
expect_status 2 "a word other than auto"
expect_message 'parallel.groups: "many" is not a group count: give a number (0: one group per node) or "auto"' "the error names the key and the choices"
finish
