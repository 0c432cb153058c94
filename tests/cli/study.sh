#!/usr/bin/env bash
# A study (src/app/study.c, docs/studies.md): a 2x2 node-fit study packed on
# 2 ranks in 2 groups, stopped (RESNODE_TEST_STOP_AT acts as SIGUSR1 at a
# named step, deterministically) and resumed on 1 rank: every point bitwise
# equal to the same config run alone. A second call does nothing and says
# so; a changed value is a new point and the old one is left; bad values are
# named at the study file's line before anything runs; a point that fails
# leaves the others to finish and is reported; --point runs one; the study's
# analysis writes points.csv, study.md and its plots.
. "$(dirname "$0")/lib.sh"

base_keys() {
  cat <<EOF
@include "$SRC/configs/node-fit.cfg"
train = { iterations = 30; log_every = 10; };
ode = { rtol = 1e-5; atol = 1e-7; };
EOF
}
base_keys > "$TMP/base.cfg"
{
  base_keys
  cat <<EOF
study = {
  dir = "$TMP/s";
  axes = {
    train = { lr = [0.01, 0.02]; };
    seed = [1, 2];
  };
};
EOF
} > "$TMP/study.cfg"

# node-fit's train.csv holds wall times: compared without them; the final parameters bitwise
same_as_alone() {
  local alone=$1 dir=$2 what=$3
  if cmp -s <(cut -d, -f1-4,6- "$alone/train.csv") <(cut -d, -f1-4,6- "$dir/train.csv") && cmp -s "$alone/prediction.csv" "$dir/prediction.csv" \
    && cmp -s "$alone/snapshots/final.bin" "$dir/snapshots/final.bin"; then
    ok "$what: train.csv, prediction.csv and the final parameters bitwise those of the point run alone"
  else
    bad "$what: differs from the point run alone: $(diff <(cut -d, -f1-4,6- "$alone/train.csv") <(cut -d, -f1-4,6- "$dir/train.csv") | head -3)"
  fi
}

rn 1 "$TMP/study.cfg" --print-config
expect_status 0 "--print-config on a study"
[ "$(grep -c '^new  *lr=0\.0[12]_seed=[12]-[0-9a-f]\{8\} train.lr=0\.0[12] seed=[12]$' "$out")" -eq 4 ] && ok "it lists the 4 points, new, named by their values and a hash" || bad "listing: $(cat "$out")"
[ ! -e "$TMP/s" ] && ok "--print-config writes nothing" || bad "--print-config created $TMP/s"
name11=$(awk '$3 == "train.lr=0.01" && $4 == "seed=1" {print $2}' "$out")
rn 1 "$TMP/study.cfg" --print-config --point "$name11"
grep -q "lr = 0.01;" "$out" && grep -q "^seed = 1;" "$out" && grep -q "run = {" "$out" && ok "--print-config --point: the point's resolved config" || bad "point config: $(head -20 "$out")"

# zipped keys and extra points: seed x (lr, log_every together) + 1 extra point
{
  base_keys
  cat <<EOF
study = {
  dir = "$TMP/z";
  axes = { seed = [1, 2]; };
  zip = ( { train = { lr = [0.01, 0.02]; log_every = [5, 10]; }; } );
  points = ( { seed = 7; train = { lr = 0.05; }; } );
};
EOF
} > "$TMP/zip.cfg"
rn 1 "$TMP/zip.cfg" --print-config
names=$(grep -v '^#' "$out" | awk '{print $2}' | sed 's/-[0-9a-f]*$//' | tr '\n' ' ')
[ "$names" = "seed=1_lr=0.01_log_every=5 seed=1_lr=0.02_log_every=10 seed=2_lr=0.01_log_every=5 seed=2_lr=0.02_log_every=10 seed=7_lr=0.05 " ] \
  && ok "zip: its keys vary together, crossed with the axes; then the extra point" || bad "zip points: $names"
sed 's/log_every = \[5, 10\]/log_every = [5]/' "$TMP/zip.cfg" > "$TMP/zip2.cfg"
rn 2 "$TMP/zip2.cfg" --print-config
expect_status 2 "a zip group whose keys have different lengths"
expect_message "1 values, and train.lr of the same zip group has 2" "it names the key and the lengths"
sed 's/points = ( { seed = 7; train = { lr = 0.05; }; } );/points = ( { seed = 2; train = { lr = 0.02; log_every = 10; }; } );/' "$TMP/zip.cfg" > "$TMP/zip3.cfg"
rn 2 "$TMP/zip3.cfg" --print-config
expect_status 2 "an extra point equal to a point of the axes"
expect_message "give the same configuration" "it names the two points"

# the points largest first: a group takes them by their experiment's estimate of their work
{
  base_keys
  cat <<EOF
study = { dir = "$TMP/o"; axes = { train = { iterations = [10, 40, 20]; }; }; };
EOF
} > "$TMP/order.cfg"
rn 1 "$TMP/order.cfg"
expect_status 0 "a study of 3 points on 1 rank"
order=$(sed -n 's/^study: group 0 runs iterations=\([0-9]*\)-.*/\1/p' "$out" | tr '\n' ' ')
[ "$order" = "40 20 10 " ] && ok "its points ran largest first (iterations 40, 20, 10)" || bad "order: $order"

rn 2 "$TMP/study.cfg" --plan
expect_status 0 "--plan on a study"
[ "$(grep -c '^plan: lr=0.0[12]_seed=[12]-[0-9a-f]\{8\}  *[0-9.]* s  *[0-9]*$' "$out")" -eq 4 ] && grep -q "^plan: the study's 4 point(s) to run, packed on 2 group(s) of 1 rank(s) .*estimated wall time" "$out" && grep -q "^plan: request --time=" "$out" \
  && ok "--plan measures each point and estimates the packed study's wall time and --time" || bad "plan: $(grep '^plan' "$out")"
[ ! -e "$TMP/s" ] && [ ! -e "$TMP/s.plan" ] && ok "--plan keeps no run" || bad "--plan left $(ls -d "$TMP"/s*)"

# stopped in the middle: each group's rank stops at its 12th step, inside its first point
RESNODE_TEST_STOP_AT=step:12 rn 2 "$TMP/study.cfg"
expect_status 3 "the study stopped in the middle (2 ranks, 2 groups)"
grep -q "on 2 group(s) of 1 rank(s)" "$out" && ok "packed: 2 groups of 1 rank" || bad "groups: $(head -3 "$out")"
[ "$(grep -c 'stopped (resumable' "$out")" -eq 2 ] && ok "both groups' points stopped at a checkpoint" || bad "stops: $(grep '^study' "$out")"
grep -q '"status": "preempted"' "$TMP/s/study.json" && grep -q '"status": "new"' "$TMP/s/study.json" && ok "study.json: stopped and new points" || bad "study.json: $(grep status "$TMP/s/study.json")"
grep -q "^\[lr=0.0[12]_seed=[12]-[0-9a-f]*\] resnode-mpi" "$out" && ok "each point's lines carry its name" || bad "no point prefix in: $(head -5 "$out")"

rn 1 "$TMP/study.cfg"
expect_status 0 "resumed on 1 rank"
grep -q "4 to run (2 resumed)" "$out" && ok "2 points resumed, 2 started" || bad "resume: $(head -2 "$out")"
grep -q "4 of 4 point(s) done" "$out" && ok "all 4 points done" || bad "$(tail -3 "$out")"
[ ! -e "$TMP/s/claims" ] && ok "the finished study left no claims/ behind" || bad "claims/ left: $(ls -R "$TMP/s/claims")"
for lr in 0.01 0.02; do
  for seed in 1 2; do
    dir=$(ls -d "$TMP/s/points/lr=${lr}_seed=$seed-"*)
    rn 1 "$TMP/base.cfg" --set train.lr=$lr --set seed=$seed --set "run.dir=\"$TMP/alone-$lr-$seed\""
    same_as_alone "$TMP/alone-$lr-$seed" "$dir" "point lr=$lr seed=$seed"
  done
done

# a second call: nothing to do, nothing written in the points
before=$(cat "$TMP"/s/points/*/manifest.json | md5sum)
rn 2 "$TMP/study.cfg"
expect_status 0 "a finished study called again"
grep -q "nothing to do: every point is done" "$out" && ok "it says there is nothing to do" || bad "$(cat "$out")"
[ "$(cat "$TMP"/s/points/*/manifest.json | md5sum)" = "$before" ] && ok "no point's manifest changed" || bad "a manifest changed"

# a changed value: a new point; the old one is left and named
old=$(ls -d "$TMP/s/points/lr=0.02_seed=1-"*)
rn 1 "$TMP/study.cfg" --set 'study.axes.train.lr=[0.01, 0.03]' --print-config
new03=$(awk '$3 == "train.lr=0.03" && $4 == "seed=1" {print $2}' "$out")
rn 1 "$TMP/study.cfg" --set 'study.axes.train.lr=[0.01, 0.03]' --point "${new03##*-}"
expect_status 0 "a changed value runs as a new point (--point chose it by its hash)"
grep -q "not in the study any more (left as they are): .*lr=0.02_seed=1-" "$out" && ok "the old points are named as no longer in the study" || bad "$(head -3 "$out")"
[ -f "$old/manifest.json" ] && grep -q '"status": "done"' "$old/manifest.json" && ok "... and left as they were" || bad "the old point is gone"
[ "$(ls -d "$TMP/s/points/lr=0.03_"* | wc -l)" -eq 1 ] && ok "--point ran that point alone" || bad "points: $(ls "$TMP/s/points")"

# bad values: named at the study file's line, before anything runs
sed 's/lr = \[0.01, 0.02\]/lr = (0.01, "fast")/; s|dir = "'"$TMP"'/s"|dir = "'"$TMP"'/bad"|' "$TMP/study.cfg" > "$TMP/bad1.cfg"
line=$(grep -n '"fast"' "$TMP/bad1.cfg" | cut -d: -f1)
rn 2 "$TMP/bad1.cfg"
expect_status 2 "an axis value of the wrong type"
expect_message "bad1.cfg:$line: train.lr: expected a number" "it names the study file's line and the key"
[ ! -e "$TMP/bad" ] && ok "nothing was created" || bad "$TMP/bad exists"
sed 's/lr = \[0.01, 0.02\]/lrr = [0.01]/; s|dir = "'"$TMP"'/s"|dir = "'"$TMP"'/bad"|' "$TMP/study.cfg" > "$TMP/bad2.cfg"
rn 2 "$TMP/bad2.cfg"
expect_status 2 "a misspelt key on an axis"
expect_message "did you mean 'train.lr'?" "a did-you-mean"
sed 's/axes = {/axis = {/' "$TMP/bad1.cfg" > "$TMP/bad3.cfg"
rn 2 "$TMP/bad3.cfg"
expect_status 2 "a misspelt study key"
expect_message "study.axis: not a study key: did you mean study.axes?" "it is named, with the key meant"
sed 's/seed = \[1, 2\]/seed = 3/' "$TMP/bad2.cfg" > "$TMP/bad4.cfg"
rn 2 "$TMP/bad4.cfg"
expect_status 2 "an axis that is not a list"
expect_message "study.axes.seed: an axis is a list of the key's values" "it says what an axis is"
rn 1 "$TMP/study.cfg" --point nope
expect_status 2 "--point of no point"
rn 1 "$TMP/study.cfg" --resume "$(ls -d "$TMP"/s/points/lr=0.01_seed=1-*)"
expect_status 2 "--resume with a study file"
expect_message "run the study file again" "it says how a study resumes"

# a point that fails (its parameters diverge): the others finish; it is reported
sed 's/lr = \[0.01, 0.02\]/lr = [0.01, 900.0]/; s/iterations = 30;/iterations = 30; optimizer = "sgd";/; s|dir = "'"$TMP"'/s"|dir = "'"$TMP"'/f"|' "$TMP/study.cfg" > "$TMP/fail.cfg"
rn 2 "$TMP/fail.cfg"
expect_status 4 "a study with failing points ends with the failure's exit code"
grep -q "2 of 4 point(s) done, 2 failed" "$out" && ok "the other points finished" || bad "$(grep '^study' "$out")"
[ "$(grep -c '^study: failed: lr=900.0_seed=[12]-[0-9a-f]*: non-finite' "$out")" -eq 2 ] && ok "the failed points are listed with their reason" || bad "$(grep failed "$out")"
rn 2 "$TMP/fail.cfg"
expect_status 1 "called again: the failed points are kept, not retried"
grep -q "2 done, 2 failed before" "$out" && ok "... and it says so" || bad "$(head -2 "$out")"

rn 1 --keys study
expect_status 0 "--keys study"
grep -q '^| `study.axes` | group |' "$out" && ok "--keys study documents the study keys" || bad "$(cat "$out")"

# the study's analysis
PY=$(python_with matplotlib)
if [ -z "$PY" ]; then
  echo "  skipped: the study's analysis (no Python 3 with numpy and matplotlib)"
else
  "$(dirname "$BIN")/resnode-study" "$TMP/s" > "$TMP/analysis.out" 2>&1
  [ $? -eq 0 ] && ok "resnode-study on the study" || bad "resnode-study: $(tail -5 "$TMP/analysis.out")"
  # the study as last run: lr in [0.01, 0.03], the lr = 0.03, seed = 2 point not run
  [ "$(grep -c ',done,' "$TMP/s/points.csv")" -eq 3 ] && [ "$(grep -c '^lr=0.03_seed=2-[0-9a-f]*,new,' "$TMP/s/points.csv")" -eq 1 ] && ok "points.csv: a row a point of the study as last run, with its status" || bad "points.csv: $(cat "$TMP/s/points.csv")"
  dir=$(ls -d "$TMP/s/points/lr=0.01_seed=2-"*)
  want=$(tail -1 "$dir/train.csv" | cut -d, -f6)
  got=$(awk -F, -v n="$(basename "$dir")" 'NR == 1 { for (i = 1; i <= NF; i++) if ($i == "final_loss") c = i } $1 == n { print $c }' "$TMP/s/points.csv")
  awk -v a="$want" -v b="$got" 'BEGIN { exit !(b != "" && (a - b) * (a - b) <= 1e-10 * a * a) }' && ok "points.csv: final_loss is the point's last loss ($got)" || bad "final_loss $got, train.csv says $want"
  expect_file "$TMP/s/study-train-lr.png" "the plot along the lr axis"
  grep -q '^| lr=0.01_seed=1-' "$TMP/s/study.md" && ok "study.md lists the points" || bad "study.md: $(head -8 "$TMP/s/study.md")"
  [ -f "$dir/analysis.log" ] && ok "each point's own analysis ran (its analysis.log)" || bad "no $dir/analysis.log"
  "$(dirname "$BIN")/resnode-study" "$TMP/f" > /dev/null 2>&1
  grep -q '^lr=900.0_seed=1-[0-9a-f]*,failed,.*non-finite' "$TMP/f/points.csv" && ok "points.csv reports the failed point and why" || bad "$(cat "$TMP/f/points.csv")"
  # a cifar point: its mean test accuracy, and the binomial 95% interval on the test images its log names
  "${RN_MAKE_CIFAR:?}" "$TMP/images" 60 > /dev/null || bad "could not generate data"
  cat > "$TMP/cifar.cfg" <<EOF
@include "$SRC/configs/cifar-small.cfg"
data = { dir = "$TMP/images"; max_train = 60; folds = 1; validation = 10; };
model = { channels = 4; depths = [2]; ode = false; };
train = { epochs = 1; batch = 20; eval_batch = 60; };
study = { dir = "$TMP/c"; axes = { seed = [1]; }; };
EOF
  rn 1 "$TMP/cifar.cfg"
  expect_status 0 "a one-point cifar study"
  "$(dirname "$BIN")/resnode-study" "$TMP/c" > "$TMP/canalysis.out" 2>&1 || bad "resnode-study on the cifar study: $(tail -3 "$TMP/canalysis.out")"
  dir=$(ls -d "$TMP"/c/points/seed=1-*)
  n=$(sed -n 's/.* \([0-9]*\) test images from .*/\1/p' "$dir/log.txt" | tail -1)
  acc=$(awk -F, 'NR > 1 { print $7 }' "$dir/final.csv")
  awk -F, -v n="$n" -v p="$acc" 'NR == 1 { for (i = 1; i <= NF; i++) c[$i] = i; next }
    { h = 1.959963984540054 * sqrt(p * (1 - p) / n); d = $c["test_acc"] - p; l = $c["test_acc_ci_low"] - (p - h); u = $c["test_acc_ci_high"] - (p + h)
      exit !(n > 0 && d * d < 1e-12 && l * l < 1e-10 && u * u < 1e-10) }' "$TMP/c/points.csv" \
    && ok "points.csv: the cifar point's test accuracy ($acc) and its binomial interval on its $n test images" || bad "cifar metrics: $(cat "$TMP/c/points.csv"); n=$n acc=$acc"
  "$(dirname "$BIN")/resnode-study" "$TMP" > "$TMP/bad.out" 2>&1
  [ $? -eq 2 ] && grep -q "no study.json" "$TMP/bad.out" && ok "resnode-study on a directory without a study: exit 2, named" || bad "$(cat "$TMP/bad.out")"
fi
finish
