#!/usr/bin/env bash
# The deep-limit rate study as a study file (studies/cifar-rate.cfg,
# docs/cifar-rate.md), shrunk by --set, on generated images, as the README
# and docs/studies.md show it: packed on 2 ranks (2 groups), its 6 points
# done; a point bitwise equal to the same config run alone; resnode-study
# runs each point's convergence analysis (the seed-1 points with their
# float64 twins: the rounding floor) and writes points.csv with the fitted
# rates and their intervals, study.md and the plots; a second call does
# nothing.
. "$(dirname "$0")/lib.sh"
PY=$(python_with matplotlib)
[ "$PY" = /usr/bin/python3 ] || { echo "skipped: /usr/bin/python3 has no numpy and matplotlib"; exit 0; }
# a tree laid out like a clone, with its data where the configs look for it
W=$TMP/clone
mkdir -p "$W/data/cifar-10-batches-bin"
# copies: a config's relative paths (../data) are resolved from where it is
cp -r "$SRC/configs" "$SRC/studies" "$W/"
ln -s "$SRC/analysis" "$W/analysis"
ln -s "$(dirname "$BIN")" "$W/build"
"${RN_MAKE_CIFAR:?RN_MAKE_CIFAR not set}" "$W/data/cifar-10-batches-bin" 60 || bad "could not generate data"
shrink=(--set data.max_train=60 --set model.channels=2 --set ensemble.members=4 --set 'ensemble.depths=[2, 4]' --set sgd.steps=4 --set sgd.record_every=2 --set sgd.eval_batch=60 --set ode.steps=1 --set sgd.batch=8)
cd "$W" || exit 1

rn 2 studies/cifar-rate.cfg "${shrink[@]}"
expect_status 0 "the rate study, packed on 2 ranks (shrunk)"
grep -q "6 point(s) in runs/cifar-rate: 0 done, 0 failed before (kept; remove a directory to run it again), 6 to run (0 resumed) on 2 group(s) of 1 rank(s)" "$out" \
  && ok "6 points on 2 groups of 1 rank" || bad "$(head -2 "$out")"
for p in activation=relu_seed=1 activation=relu_seed=2 activation=softplus_seed=1 activation=softplus_seed=2 \
  activation=relu_precision=float64_seed=1_members=8_depths=64 activation=softplus_precision=float64_seed=1_members=8_depths=64; do
  dir=$(ls -d "runs/cifar-rate/points/$p-"* 2> /dev/null)
  grep -q '"status": "done"' "$dir/manifest.json" 2> /dev/null && ok "point $p done" || bad "point $p: $(grep "^\[$p" "$out" | tail -2)"
done
grep -q 'activation = "softplus"' runs/cifar-rate/points/activation=softplus_seed=2-*/config.cfg && grep -q 'seed = 2;' runs/cifar-rate/points/activation=softplus_seed=2-*/config.cfg \
  && ok "a point's config has its values" || bad "config: $(grep -E 'activation|^seed' runs/cifar-rate/points/activation=softplus_seed=2-*/config.cfg)"

# a point run alone, on 1 rank and 1 thread as in the study (oneDNN's float32
# sums follow the thread count; alone on 1 rank it would take both cores):
# every table and parameter file bitwise the same
OMP_NUM_THREADS=1 rn 1 configs/cifar-ensemble.cfg --set data.max_train=500 --set sgd.steps=100 --set sgd.record_every=25 "${shrink[@]}" --set 'model.activation="softplus"' --set seed=2 --set "run.dir=\"$TMP/alone\""
expect_status 0 "the softplus, seed 2 point run alone"
dir=$(ls -d runs/cifar-rate/points/activation=softplus_seed=2-*)
n=0 differ=""
shopt -s nullglob
for f in "$TMP"/alone/*.csv "$TMP"/alone/*.h5 "$TMP"/alone/snapshots/*; do
  rel=${f#"$TMP/alone/"}
  if cmp -s "$f" "$dir/$rel"; then n=$((n + 1)); else differ="$differ $rel"; fi
done
shopt -u nullglob
[ -z "$differ" ] && [ "$n" -ge 9 ] && [ -f "$TMP/alone/gram.h5" ] && ok "the study's point = the point run alone: $n tables and HDF5 arrays bitwise" || bad "differ:$differ ($n equal)"

"$W/build/resnode-study" runs/cifar-rate > "$TMP/analysis.out" 2>&1
[ $? -eq 0 ] && ok "build/resnode-study runs/cifar-rate" || bad "resnode-study: $(tail -5 "$TMP/analysis.out")"
csv=runs/cifar-rate/points.csv
rows=$(awk -F, 'NR == 1 { for (i = 1; i <= NF; i++) c[$i] = i; next } $2 == "done" && $c["alpha_e_theta"] != "" && $c["alpha_e_theta_ci_low"] <= $c["alpha_e_theta"] && $c["alpha_e_theta"] <= $c["alpha_e_theta_ci_high"] && $c["alpha_s_theta"] != "" && $c["alpha_e_R"] != "" { n++ } END { print n + 0 }' "$csv")
[ "$rows" -ge 4 ] && ok "points.csv: the fitted rates with their intervals for the 4 float32 points" || bad "points.csv: $(cat "$csv")"
for p in activation=relu_seed=1 activation=softplus_seed=1; do
  f=$(ls -d "runs/cifar-rate/points/$p-"*)/convergence-rounding.csv
  [ -f "$f" ] && awk -F, 'NR == 2 { exit !($2 > 0) }' "$f" && ok "$p: the rounding floor from its float64 twin ($(sed -n 2p "$f"))" || bad "$p: no rounding floor"
done
[ ! -f "$(ls -d runs/cifar-rate/points/activation=relu_seed=2-*)/convergence-rounding.csv" ] && ok "a seed-2 point has no float64 twin, and no rounding floor" || bad "seed 2 got a rounding floor"
expect_file runs/cifar-rate/study-model-activation.png "the rates by activation (seeds as error bars)"
expect_file runs/cifar-rate/study-curves.png "each point's weak error against N"
[ "$(grep -c '^| activation=\(relu\|softplus\)_' runs/cifar-rate/study.md)" -eq 6 ] && ok "study.md: the 6 points" || bad "study.md: $(head -12 runs/cifar-rate/study.md)"

rn 1 studies/cifar-rate.cfg "${shrink[@]}"
expect_status 0 "the study called again"
grep -q "nothing to do: every point is done" "$out" && ok "it finds every point done and leaves them" || bad "$(cat "$out")"
[ -n "${KEEP:-}" ] && cp -r "$TMP" /tmp/keep-rate
finish
