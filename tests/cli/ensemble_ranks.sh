#!/usr/bin/env bash
# A member's trajectory does not depend on the number of ranks: with every
# member in a one-rank group, 1, 2 and 3 ranks (oversubscribed) write
# bitwise identical snapshots; and every result table is the same file.
. "$(dirname "$0")/lib.sh"
small=(--set ensemble.members=6 --set 'ensemble.depths=[2, 8]' --set sgd.steps=30 --set output.plot=false)
for np in 1 2 3; do
  rn $np "$SRC/configs/ensemble.cfg" "${small[@]}" --set parallel.groups=$np --set "run.dir=\"$TMP/np$np\""
  expect_status 0 "ensemble on $np rank(s)"
done
n=0
for f in "$TMP"/np1/snapshots/theta-*.bin; do
  name=$(basename "$f")
  for np in 2 3; do
    if cmp -s "$f" "$TMP/np$np/snapshots/$name"; then n=$((n + 1)); else bad "$name differs between 1 and $np ranks"; fi
  done
done
[ "$n" -eq 36 ] && ok "all 18 member trajectories bitwise identical on 1, 2 and 3 ranks" || bad "only $n of 36 comparisons identical"
# every result table is the same file whatever the layout (no group column, no grid-dependent rounding noise)
for f in records.csv stats.csv sup.csv rates.csv laws.csv spectrum.csv; do
  for np in 2 3; do
    cmp -s "$TMP/np1/$f" "$TMP/np$np/$f" && ok "$f identical on 1 and $np ranks" || bad "$f differs between 1 and $np ranks: $(diff "$TMP/np1/$f" "$TMP/np$np/$f" | head -4)"
  done
done

# the laws of a wide field (p = 2052 > 2048: the Gram path, M x M products of
# columns split over the ranks) equal the p x p covariance path's
wide=(--set ensemble.members=5 --set 'ensemble.depths=[2]' --set sgd.steps=4 --set output.plot=false
  --set 'model.field=( { type = "dense"; out = 410; activation = "tanh"; }, { type = "dense"; out = 2; } )')
rn 2 "$SRC/configs/ensemble.cfg" "${wide[@]}" --set "run.dir=\"$TMP/gram\""
expect_status 0 "a wide field (p = 2052): the Gram path by default"
rn 2 "$SRC/configs/ensemble.cfg" "${wide[@]}" --set 'ensemble.stats="covariance"' --set "run.dir=\"$TMP/pxp\""
expect_status 0 "the same with the p x p covariance"
rn 1 "$SRC/configs/ensemble.cfg" "${wide[@]}" --set parallel.groups=1 --set "run.dir=\"$TMP/gram1\""
[ "$(grep -c '^2,' "$TMP/gram/spectrum.csv")" -eq 5 ] && [ "$(grep -c '^2,' "$TMP/pxp/spectrum.csv")" -eq 2052 ] && ok "the Gram path writes M = 5 eigenvalues a depth, the p x p path p = 2052" || bad "spectrum rows: $(wc -l "$TMP"/gram/spectrum.csv "$TMP"/pxp/spectrum.csv)"
/usr/bin/python3 - "$TMP" > "$TMP/gram.txt" <<'PY'
import csv, sys
def rows(d, f): return [r for r in csv.DictReader(open("%s/%s/%s" % (sys.argv[1], d, f)))]
worst = 0.0
for d in ("gram", "gram1"):
    for a, b in zip(rows(d, "laws.csv"), rows("pxp", "laws.csv")):
        scale = float(b["trace_N"]) + float(b["trace_ref"])
        for k in ("mean_dist_sq", "trace_N", "trace_ref"):
            worst = max(worst, abs(float(a[k]) - float(b[k])) / scale)
        worst = max(worst, abs(float(a["w2"]) ** 2 - float(b["w2"]) ** 2) / scale)
    g = [r for r in rows(d, "spectrum.csv")]
    c = {(r["N"], r["index"]): float(r["eigenvalue"]) for r in rows("pxp", "spectrum.csv")}
    for r in g:
        top = c[(r["N"], "0")]
        worst = max(worst, abs(float(r["eigenvalue"]) - c[(r["N"], r["index"])]) / top)
print("worst %.2e" % worst)
sys.exit(0 if worst < 1e-10 else 1)
PY
[ $? -eq 0 ] && ok "Gram path on 2 and 1 ranks = p x p path: laws and the M leading eigenvalues ($(cat "$TMP/gram.txt"))" || bad "Gram vs p x p: $(cat "$TMP/gram.txt")"
finish
