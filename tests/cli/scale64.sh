#!/usr/bin/env bash
# The paper's config on 64 ranks (oversubscribed on 2 cores): 8 groups of 8
# ranks train the 7 depths and the ODE side by side, shrunk with --set (width,
# data, steps) to finish in minutes. Every group must leave its results. And
# the ensemble's record exchange over 64 ranks, against 1 rank.
. "$(dirname "$0")/lib.sh"
MAKE=${RN_MAKE_CIFAR:?RN_MAKE_CIFAR not set}
"$MAKE" "$TMP/data" 60 || { bad "could not generate data"; finish; exit 1; }
small=(--set "data.dir=\"$TMP/data\"" --set data.folds=1 --set data.validation=32 --set data.max_test=64 --set model.channels=4 --set train.epochs=1 --set train.batch=32
       --set train.eval_batch=64 --set ode.steps=2 --set parallel.groups=8 --set "run.dir=\"$TMP/run\"")
out=$TMP/out64 err=$TMP/err64
timeout 900 mpirun --oversubscribe --bind-to none -n 64 "$BIN" "$SRC/configs/cifar.cfg" "${small[@]}" > "$out" 2> "$err"
status=$?
expect_status 0 "configs/cifar.cfg on 64 ranks in 8 groups"
[ "$(tail -n +2 "$TMP/run/final.csv" | wc -l)" -eq 8 ] && ok "final.csv has the 7 depths and the ODE" || bad "final.csv: $(cat "$TMP/run/final.csv")"
for g in 0 1 2 3 4 5 6 7; do
  grep -q "^$g," "$TMP/run/final.csv" || bad "group $g left no result"
done
ok "every one of the 8 groups left a result"
for N in 1 2 4 8 16 32 64; do
  grep -q ",$N,resnet," "$TMP/run/final.csv" || bad "depth $N missing"
done
grep -q ",0,ode," "$TMP/run/final.csv" && ok "the ODE and depths 1..64 all present" || bad "ODE missing"
grep -q '"ranks": 64' "$TMP/run/manifest.json" && grep -q '"status": "done"' "$TMP/run/manifest.json" && ok "manifest: 64 ranks, completed" || bad "manifest: $(cat "$TMP/run/manifest.json")"

# the ensemble on 64 one-rank groups, more groups than its 18 units (46 idle):
# the record exchanges over 64 ranks (a column or two each) give the same
# parameters, bitwise, as one rank, and the same tables
ens=(--set ensemble.members=6 --set 'ensemble.depths=[2, 8]' --set sgd.steps=30 --set output.plot=false --set 'ensemble.save_parameters="every"')
timeout 600 mpirun --oversubscribe --bind-to none -n 64 "$BIN" "$SRC/configs/ensemble.cfg" "${ens[@]}" --set parallel.groups=64 --set "run.dir=\"$TMP/ens64\"" > "$out" 2> "$err"
status=$?
expect_status 0 "the ensemble on 64 ranks in 64 groups"
rn 1 "$SRC/configs/ensemble.cfg" "${ens[@]}" --set parallel.groups=1 --set "run.dir=\"$TMP/ens1\""
expect_status 0 "the same on 1 rank"
# params.h5, written collectively by 64 ranks (MPI-IO), 18 of them with rows
n=$(/usr/bin/python3 -c "
import sys, h5py
a, b = (h5py.File(d + '/params.h5', 'r')['theta'] for d in sys.argv[1:])
print(sum(a[i].tobytes() == b[i].tobytes() for i in range(a.shape[0])) if a.shape == b.shape else -1)" "$TMP/ens1" "$TMP/ens64" 2>&1)
[ "$n" = 4 ] && cmp -s "$TMP/ens1/records.csv" "$TMP/ens64/records.csv" && cmp -s "$TMP/ens1/stats.csv" "$TMP/ens64/stats.csv" && ok "parameters of the 4 records, records.csv and stats.csv as on 1 rank" || bad "64 ranks vs 1: $n of 4 records' parameters equal; $(diff "$TMP/ens1/stats.csv" "$TMP/ens64/stats.csv" | head -3)"
finish
