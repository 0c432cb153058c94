#!/usr/bin/env bash
# A member's trajectory does not depend on the number of ranks: with every
# member in a one-rank group, 1, 2 and 3 ranks (oversubscribed) write
# bitwise identical parameter files (each group its own rows, MPI-IO) and
# records.csv; the statistics, sums over the parameter columns split over
# the ranks, agree to rounding (1e-12).
. "$(dirname "$0")/lib.sh"
small=(--set ensemble.members=6 --set 'ensemble.depths=[2, 8]' --set sgd.steps=30 --set output.plot=false --set 'ensemble.save_parameters="every"' --set 'output.arrays="csv"')
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
wide=(--set ensemble.members=5 --set 'ensemble.depths=[2]' --set sgd.steps=4 --set output.plot=false --set 'output.arrays="csv"'
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
# an ensemble stopped on 4 ranks (4 groups of one rank) within a record
# interval, and resumed on half its ranks (2 groups) and on one: each unit's
# state is a checkpoint field of its own, so any group count continues the
# run (given the ranks per group: a group's sums depend on them). The
# parameters of every record and records.csv are bitwise the uninterrupted
# run's, every table has exactly its rows, and the statistics (sums over
# columns split over the ranks) agree to rounding
half=(--set parallel.groups=4 --set ensemble.members=8 --set 'ensemble.depths=[2, 4]' --set sgd.steps=400 --set sgd.record_every=40 --set checkpoint.every_steps=500 --set output.plot=false --set 'ensemble.save_parameters="every"'
  --set 'output.arrays="csv"')
rn 4 "$SRC/configs/ensemble.cfg" "${half[@]}" --set "run.dir=\"$TMP/href\""
expect_status 0 "the uninterrupted ensemble on 4 ranks"
# (the signal's arrival is up to mpirun: a stop on a record's step is tried again)
for attempt in 1 2 3; do
  rm -rf "$TMP/hcut" "$TMP/hcut.out" "$TMP/hcut.err"
  mpirun --bind-to none -n 4 "$BIN" "$SRC/configs/ensemble.cfg" "${half[@]}" --set "run.dir=\"$TMP/hcut\"" > "$TMP/hcut.out" 2> "$TMP/hcut.err" &
  pid=$!
  for i in $(seq 1 1200); do
    [ -f "$TMP/hcut/records.csv" ] && [ "$(wc -l < "$TMP/hcut/records.csv")" -gt 60 ] && break
    sleep 0.05
  done
  kill -USR1 $pid
  wait $pid
  status=$?
  err=$TMP/hcut.err
  within=$(grep -o "checkpoint of SGD step [0-9]* of 400," "$err" | grep -o "step [0-9]*" | grep -o "[0-9]*")
  [ "$status" -eq 3 ] && [ -n "$within" ] && [ $((within % 40)) -ne 0 ] && break
done
expect_status 3 "SIGUSR1 stops the ensemble on 4 ranks"
[ -n "$within" ] && [ $((within % 40)) -ne 0 ] && ok "the checkpoint is within a record interval (SGD step $within, attempt $attempt)" || bad "no checkpoint within an interval: $(grep -m1 'checkpoint of' "$err")"
cp -r "$TMP/hcut" "$TMP/hcut1"
rn 2 --resume "$TMP/hcut" --set parallel.groups=2
expect_status 0 "resumed on 2 ranks in 2 groups (it started on 4)"
rn 1 --resume "$TMP/hcut1" --set parallel.groups=1
expect_status 0 "resumed on 1 rank (it started on 4)"
for d in hcut hcut1; do
  n=0 m=0
  for f in "$TMP"/href/snapshots/theta-step*.bin; do
    m=$((m + 1))
    cmp -s "$f" "$TMP/$d/snapshots/${f##*/}" && n=$((n + 1))
  done
  [ "$m" -eq 11 ] && [ "$n" -eq "$m" ] && ok "$d: the parameters of all $m records bitwise the uninterrupted run's" || bad "$d: $n of $m record files equal"
  cmp -s "$TMP/href/records.csv" "$TMP/$d/records.csv" && ok "$d: records.csv identical" || bad "$d: records.csv: $(diff "$TMP/href/records.csv" "$TMP/$d/records.csv" | head -3)"
  /usr/bin/python3 - "$TMP/href" "$TMP/$d" > "$TMP/$d.txt" <<'PY'
import csv, sys
worst = 0.0
for f in ("stats.csv", "gram.csv", "sup.csv", "rates.csv", "laws.csv", "spectrum.csv"):
    ref = list(csv.reader(open("%s/%s" % (sys.argv[1], f))))
    got = list(csv.reader(open("%s/%s" % (sys.argv[2], f))))
    assert len(got) == len(ref) and got[0] == ref[0], (f, len(got), len(ref))
    for a, b in zip(ref[1:], got[1:]):
        assert a[:2] == b[:2], (f, a[:2], b[:2])
        for x, y in zip(a, b):
            if x != y:
                worst = max(worst, abs(float(x) - float(y)) / max(abs(float(x)), 1e-300))
print("worst relative difference %.1e" % worst)
sys.exit(0 if worst < 1e-9 else 1)
PY
  [ $? -eq 0 ] && ok "$d: every statistics table has exactly the uninterrupted run's rows, values to rounding ($(cat "$TMP/$d.txt"))" || bad "$d: $(cat "$TMP/$d.txt")"
done
finish
