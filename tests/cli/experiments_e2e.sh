#!/usr/bin/env bash
# The other experiments end to end under mpirun -n 2: identity, annulus, and
# the ensemble study with its offline analysis.
. "$(dirname "$0")/lib.sh"
rn 2 "$SRC/configs/identity.cfg" --set train.max_epochs=300 --set "run.dir=\"$TMP/identity\""
expect_status 0 "identity"
grep -q '^residual,[0-9]' "$TMP/identity/summary.csv" && ok "the residual net reaches the target: $(grep residual "$TMP/identity/summary.csv")" || bad "summary: $(cat "$TMP/identity/summary.csv")"
run_analysis
expect_file "$TMP/identity/identity.png" "identity plot"
rn 2 "$SRC/configs/annulus.cfg" --set train.epochs=3 --set data.samples=200 --set 'model.depths=[1, 4]' --set train.folds=3 --set "run.dir=\"$TMP/annulus\""
expect_status 0 "annulus"
[ "$(wc -l < "$TMP/annulus/accuracy.csv")" -eq 4 ] && ok "accuracy for N = 1, 4 and the ODE" || bad "accuracy.csv: $(cat "$TMP/annulus/accuracy.csv")"
[ "$(wc -l < "$TMP/annulus/folds.csv")" -eq 10 ] && ok "9 fold results" || bad "folds.csv lines: $(wc -l < "$TMP/annulus/folds.csv")"
run_analysis
expect_file "$TMP/annulus/annulus.png" "annulus plot"
rn 2 "$SRC/configs/ensemble.cfg" --set ensemble.members=8 --set 'ensemble.depths=[4, 8, 16]' --set sgd.steps=40 --set "run.dir=\"$TMP/ensemble\""
expect_status 0 "ensemble"
for f in records.csv stats.csv sup.csv rates.csv laws.csv spectrum.csv; do expect_file "$TMP/ensemble/$f" "ensemble leaves $f"; done
run_analysis
for f in convergence-rates.png convergence-report.md; do expect_file "$TMP/ensemble/$f" "the analysis leaves $f"; done
/usr/bin/python3 "$SRC/analysis/convergence" "$TMP/ensemble" > "$TMP/conv.txt" 2>&1 && ok "analysis/convergence runs" || bad "analysis failed: $(cat "$TMP/conv.txt")"
# 8 members leave e_theta unresolved from its noise, which scales like 1 / N too: the rate over all depths
alpha=$(awk -F, '$1 == "e_theta" { print $7 }' "$TMP/ensemble/convergence-rates.csv")
awk -v a="$alpha" 'BEGIN { exit !(a > 0.8 && a < 1.2) }' && ok "weak-error rate $alpha (all depths) is near 1" || bad "weak-error rate: $(cat "$TMP/conv.txt")"
alpha=$(awk -F, '$1 == "s_theta" && $6 == "4 8 16" { print $2 }' "$TMP/ensemble/convergence-rates.csv")
awk -v a="$alpha" 'BEGIN { exit !(a > 0.8 && a < 1.2) }' && ok "strong-error rate $alpha over its resolved depths (all) is near 1" || bad "strong-error rate: $(cat "$TMP/ensemble/convergence-rates.csv")"
# the ensemble of the CIFAR network (configs/cifar-ensemble.cfg, shrunk) on
# generated images, with its analysis
"${RN_MAKE_CIFAR:?RN_MAKE_CIFAR not set}" "$TMP/images" 40 || bad "could not generate data"
rn 2 "$SRC/configs/cifar-ensemble.cfg" --set "data.dir=\"$TMP/images\"" --set data.max_train=120 --set model.channels=4 --set ensemble.members=4 --set 'ensemble.depths=[2, 4]' --set sgd.steps=12 --set sgd.record_every=4 --set "run.dir=\"$TMP/cens\""
expect_status 0 "an ensemble of the CIFAR network"
grep -q "the CIFAR network (width C = 4" "$out" && ok "it says it trains the CIFAR network" || bad "log: $(head -3 "$out")"
[ "$(awk -F, 'NR > 1' "$TMP/cens/records.csv" | wc -l)" -eq 48 ] && ok "records: 4 members x 3 depths x 4 records" || bad "records.csv: $(wc -l < "$TMP/cens/records.csv") lines"
/usr/bin/python3 "$SRC/analysis/convergence" "$TMP/cens" > "$TMP/conv3.txt" 2>&1 && grep -q "e_theta" "$TMP/conv3.txt" && ok "analysis/convergence on the CIFAR ensemble" || bad "analysis: $(cat "$TMP/conv3.txt")"
# a smooth activation, and the rounding floor from a float64 run of the same members
cens=(--set "data.dir=\"$TMP/images\"" --set data.max_train=120 --set model.channels=4 --set sgd.steps=12 --set sgd.record_every=4 --set 'model.activation="softplus"')
rn 2 "$SRC/configs/cifar-ensemble.cfg" "${cens[@]}" --set ensemble.members=4 --set 'ensemble.depths=[2, 4]' --set "run.dir=\"$TMP/soft32\""
expect_status 0 "the ensemble with model.activation = softplus"
grep -q "the CIFAR network (width C = 4, softplus, float32" "$out" && ok "it names the activation" || bad "log: $(head -3 "$out")"
rn 2 "$SRC/configs/cifar-ensemble.cfg" "${cens[@]}" --set ensemble.members=2 --set 'ensemble.depths=[4]' --set 'model.precision="float64"' --set "run.dir=\"$TMP/soft64\""
expect_status 0 "two of its members in float64 at N = 4"
/usr/bin/python3 "$SRC/analysis/convergence" --float64 "$TMP/soft64" "$TMP/soft32" > "$TMP/conv4.txt" 2>&1 && ok "the analysis with --float64" || bad "analysis --float64: $(cat "$TMP/conv4.txt")"
awk '/^rounding floor at N = 4 / { found = 1; if (!($(NF - 7) > 0 && $(NF - 7) < 1e-3 * $(NF - 4))) exit 1 } END { exit !found }' "$TMP/conv4.txt" \
  && ok "float32's rounding at N = 4 is non-zero and far below s_theta: $(grep '^rounding floor at N = 4 ' "$TMP/conv4.txt")" || bad "rounding floor: $(cat "$TMP/conv4.txt")"
/usr/bin/python3 "$SRC/analysis/convergence" --float64 "$TMP/soft32" "$TMP/soft32" > "$TMP/conv5.txt" 2>&1
grep -q "^rounding floor at N = 4 .*strong 0.00e+00" "$TMP/conv5.txt" && ok "a run against itself: no rounding floor" || bad "self comparison: $(cat "$TMP/conv5.txt")"
rn 2 "$SRC/configs/cifar-ensemble.cfg" "${cens[@]}" --set 'model.activation="cube"'
expect_status 2 "model.activation = cube"; expect_message "model.activation" "the key named"
rn 2 "$SRC/configs/cifar-ensemble.cfg" --set "data.dir=\"$TMP/images\"" --set 'model.field=( { type = "dense"; out = 4; } )'
expect_status 2 "a field with the CIFAR network"; expect_message "model.field: not used with data.kind = \"cifar\"" "the conflict named"
/usr/bin/python3 "$SRC/analysis/convergence" "$TMP/nowhere" > "$TMP/conv2.txt" 2>&1
[ $? -eq 2 ] && grep -q "is not a directory" "$TMP/conv2.txt" && ok "the analysis names a missing run directory" || bad "analysis on a missing dir: $(cat "$TMP/conv2.txt")"
finish
