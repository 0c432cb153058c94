#!/usr/bin/env bash
# A member's trajectory does not depend on the number of ranks: with every
# member in a one-rank group, 1, 2 and 3 ranks (oversubscribed) write
# bitwise identical parameter files (each group its own rows, MPI-IO) and
# records.csv; the statistics, sums over the parameter columns split over
# the ranks, agree to rounding (1e-12).
. "$(dirname "$0")/lib.sh"
small=(--set ensemble.members=6 --set 'ensemble.depths=[2, 8]' --set sgd.steps=30 --set output.plot=false --set 'ensemble.save_parameters="every"')
for np in 1 2 3; do
  rn $np "$SRC/configs/ensemble.cfg" "${small[@]}" --set parallel.groups=$np --set "run.dir=\"$TMP/np$np\""
  expect_status 0 "ensemble on $np rank(s)"
done
n=0
for f in "$TMP"/np1/snapshots/theta-step*.bin; do
  name=$(basename "$f")
  for np in 2 3; do
    if cmp -s "$f" "$TMP/np$np/snapshots/$name"; then n=$((n + 1)); else bad "$name differs between 1 and $np ranks"; fi
  done
done
[ "$n" -eq 8 ] && ok "the parameters of all 18 units at the 4 records bitwise identical on 1, 2 and 3 ranks" || bad "only $n of 8 comparisons identical"
for np in 2 3; do
  cmp -s "$TMP/np1/records.csv" "$TMP/np$np/records.csv" && ok "records.csv identical on 1 and $np ranks" || bad "records.csv differs between 1 and $np ranks: $(diff "$TMP/np1/records.csv" "$TMP/np$np/records.csv" | head -4)"
done
/usr/bin/python3 - "$TMP" > "$TMP/tables.txt" <<'PY'
import csv, sys
worst, rows = 0.0, 0
for f in ("stats.csv", "gram.csv", "sup.csv", "rates.csv", "laws.csv", "spectrum.csv"):
    ref = list(csv.reader(open("%s/np1/%s" % (sys.argv[1], f))))
    for np in (2, 3):
        other = list(csv.reader(open("%s/np%d/%s" % (sys.argv[1], np, f))))
        assert len(other) == len(ref) and other[0] == ref[0], (f, np, len(other), len(ref))
        cols = list(zip(*[[float(v) if v.replace(".", "").replace("-", "").replace("e", "").replace("+", "").isdigit() else 0.0 for v in r] for r in ref[1:]]))
        scale = [max(abs(v) for v in c) or 1.0 for c in cols]
        for a, b in zip(ref[1:], other[1:]):
            rows += 1
            for j, (x, y) in enumerate(zip(a, b)):
                if x == y:
                    continue
                worst = max(worst, abs(float(x) - float(y)) / scale[j])
print("%d rows, worst relative difference %.1e" % (rows, worst))
sys.exit(0 if rows > 0 and worst < 1e-12 else 1)
PY
[ $? -eq 0 ] && ok "stats, gram, sup, rates, laws and spectrum agree on 1, 2 and 3 ranks ($(cat "$TMP/tables.txt"))" || bad "the statistics differ between rank counts: $(cat "$TMP/tables.txt")"

# groups of several ranks (data-parallel members) send their members' columns
# from different ranks: 4 ranks in 2 groups and 3 ranks in 1 group give the
# same statistics (the batch sums split over a group round differently: 1e-9)
for layout in "4 2" "3 1"; do
  set -- $layout
  rn $1 "$SRC/configs/ensemble.cfg" "${small[@]}" --set parallel.groups=$2 --set "run.dir=\"$TMP/g$1\""
  expect_status 0 "ensemble on $1 ranks in $2 group(s)"
done
/usr/bin/python3 - "$TMP" > "$TMP/groups.txt" <<'PY'
import sys
import numpy as np
ref = np.genfromtxt(sys.argv[1] + "/np1/stats.csv", delimiter=",", names=True)
worst = 0.0
for d in ("g4", "g3"):
    got = np.genfromtxt(sys.argv[1] + "/%s/stats.csv" % d, delimiter=",", names=True)
    assert got.shape == ref.shape and got.size > 0
    worst = max(worst, max(np.max(np.abs(ref[n] - got[n])) / (np.abs(ref[n]).max() or 1.0) for n in ref.dtype.names))
print("worst relative difference %.1e" % worst)
sys.exit(0 if worst < 1e-9 else 1)
PY
[ $? -eq 0 ] && ok "groups of 2 and 3 ranks: stats.csv as on 1 rank ($(cat "$TMP/groups.txt"))" || bad "groups of several ranks: $(cat "$TMP/groups.txt")"

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
