#!/usr/bin/env bash
# resnode-mpi CONFIG --plan: for shrunk node-fit, ensemble and cifar runs on
# 2 ranks, the estimated wall time must come within PLAN_FACTOR of the
# measured time of the same run (the launch of mpirun included), and the plan
# must name the units, the memory and a --time, and leave no run behind.
# Bad input is exit 2. (Docs/reference.md states the factor.)
. "$(dirname "$0")/lib.sh"
MAKE=${RN_MAKE_CIFAR:?RN_MAKE_CIFAR not set}
PLAN_FACTOR=2
"$MAKE" "$TMP/data" 600 || { bad "could not generate data"; finish; exit 1; }
cd "$TMP"

# plan_against NAME CONFIG ARGS...: the plan, then the run; their ratio
plan_against() {
  local name=$1 config=$2 estimate start end measured
  shift 2
  rn 2 "$config" "$@" --plan
  expect_status 0 "$name: --plan"
  grep -q '^plan: request --time=[0-9]*:[0-9][0-9]:00 ' "$out" && ok "$name: the plan names a --time" || bad "$name: no --time in: $(tail -5 "$out")"
  grep -q '^plan: peak resident memory per rank [0-9]* to [0-9]* MB' "$out" && ok "$name: the plan gives the peak memory per rank" || bad "$name: no memory line"
  [ -z "$(ls -A runs 2> /dev/null)" ] && ok "$name: the plan left no run" || bad "$name: the plan left $(ls runs)"
  estimate=$(sed -n 's/^plan: estimated wall time: \([0-9.]*\) s .*/\1/p' "$out")
  cp "$out" "$TMP/$name.plan"
  start=$(date +%s.%N)
  rn 2 "$config" "$@" --set "run.dir=\"$TMP/$name-run\""
  end=$(date +%s.%N)
  expect_status 0 "$name: the run itself"
  measured=$(echo "$end - $start" | bc -l)
  if [ -n "$estimate" ] && echo "$estimate > 0 && $estimate * $PLAN_FACTOR >= $measured && $measured * $PLAN_FACTOR >= $estimate" | bc -l | grep -q 1; then
    ok "$name: estimated $estimate s, measured $(printf %.1f "$measured") s (ratio $(echo "$measured / $estimate" | bc -l | cut -c1-4)): within a factor of $PLAN_FACTOR"
  else
    bad "$name: estimated '${estimate}' s, measured $measured s: not within a factor of $PLAN_FACTOR; the plan: $(cat "$TMP/$name.plan")"
  fi
}

# fixed steps: an adaptive solve's cost grows as the field trains (the plan warns)
plan_against node-fit "$SRC/configs/node-fit.cfg" --set train.iterations=3000 --set ode.solver=rk4 --set ode.adaptive=false --set ode.steps=40
grep -q '^plan: node-fit  *3000 ' "$TMP/node-fit.plan" && ok "node-fit: the plan counts its 3000 iterations" || bad "node-fit plan: $(grep '^plan: node-fit' "$TMP/node-fit.plan")"
rn 1 "$SRC/configs/node-fit.cfg" --plan
grep -q '^plan: warning: the ODE takes adaptive steps' "$out" && ok "an adaptive ODE: the plan says its estimate is a lower bound" || bad "no adaptive warning: $(tail -4 "$out")"
plan_against ensemble "$SRC/configs/ensemble.cfg" --set ensemble.members=8 --set 'ensemble.depths=[2, 4, 8, 16]' --set sgd.steps=600 --set sgd.record_every=60
cifar=(--set "data.dir=\"$TMP/data\"" --set data.max_train=600 --set model.channels=8 --set 'model.depths=[2, 4]' --set train.epochs=6 --set train.batch=50 --set data.folds=2 --set train.eval_batch=100)
plan_against cifar "$SRC/configs/cifar-small.cfg" "${cifar[@]}"
[ "$(grep -cE '^plan: (resnet-N[24]|ode)-fold[01] ' "$TMP/cifar.plan")" -eq 6 ] && ok "cifar: the plan lists its 6 units (3 models x 2 folds)" || bad "cifar plan: $(cat "$TMP/cifar.plan")"

rn 2 "$SRC/configs/annulus.cfg" --plan
expect_status 2 "--plan of annulus (a unit is one step)"
expect_message "no steps to time" "annulus --plan"
rn 1 "$SRC/configs/node-fit.cfg" --set train.lr=-1 --plan
expect_status 2 "--plan of a bad config"
rn 1 --plan --resume "$TMP/node-fit-run"
expect_status 2 "--plan with --resume"
[ -z "$(ls -A runs 2> /dev/null)" ] && ok "no run left behind by any plan" || bad "left: $(ls runs)"
finish
