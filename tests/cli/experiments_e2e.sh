#!/usr/bin/env bash
# The other experiments end to end under mpirun -n 2: identity, annulus, and
# the ensemble study with its offline analysis.
. "$(dirname "$0")/lib.sh"
rn 2 "$SRC/configs/identity.cfg" --set train.max_epochs=300 --set "run.dir=\"$TMP/identity\""
expect_status 0 "identity"
grep -q '^residual,[0-9]' "$TMP/identity/summary.csv" && ok "the residual net reaches the target: $(grep residual "$TMP/identity/summary.csv")" || bad "summary: $(cat "$TMP/identity/summary.csv")"
expect_file "$TMP/identity/identity.png" "identity plot"
rn 2 "$SRC/configs/annulus.cfg" --set train.epochs=3 --set data.samples=200 --set 'model.depths=[1, 4]' --set train.folds=3 --set "run.dir=\"$TMP/annulus\""
expect_status 0 "annulus"
[ "$(wc -l < "$TMP/annulus/accuracy.csv")" -eq 4 ] && ok "accuracy for N = 1, 4 and the ODE" || bad "accuracy.csv: $(cat "$TMP/annulus/accuracy.csv")"
[ "$(wc -l < "$TMP/annulus/folds.csv")" -eq 10 ] && ok "9 fold results" || bad "folds.csv lines: $(wc -l < "$TMP/annulus/folds.csv")"
expect_file "$TMP/annulus/annulus.png" "annulus plot"
rn 2 "$SRC/configs/ensemble.cfg" --set ensemble.members=8 --set 'ensemble.depths=[4, 8, 16]' --set sgd.steps=40 --set "run.dir=\"$TMP/ensemble\""
expect_status 0 "ensemble"
for f in records.csv stats.csv sup.csv rates.csv laws.csv spectrum.csv convergence-rates.png convergence-report.md; do expect_file "$TMP/ensemble/$f" "ensemble leaves $f"; done
/usr/bin/python3 "$SRC/analysis/convergence" "$TMP/ensemble" > "$TMP/conv.txt" 2>&1 && ok "analysis/convergence runs" || bad "analysis failed: $(cat "$TMP/conv.txt")"
alpha=$(awk '$1 == "e_theta" { print $2 }' "$TMP/conv.txt")
awk -v a="$alpha" 'BEGIN { exit !(a > 0.8 && a < 1.2) }' && ok "weak-error rate $alpha is near 1" || bad "weak-error rate: $(cat "$TMP/conv.txt")"
/usr/bin/python3 "$SRC/analysis/convergence" "$TMP/nowhere" > "$TMP/conv2.txt" 2>&1
[ $? -eq 2 ] && grep -q "is not a directory" "$TMP/conv2.txt" && ok "the analysis names a missing run directory" || bad "analysis on a missing dir: $(cat "$TMP/conv2.txt")"
finish
