#!/usr/bin/env bash
# The test-equation fit end to end under mpirun -n 2: exit 0, every file of a
# run directory, the plot, and the resolved config that resumes.
. "$(dirname "$0")/lib.sh"
run=$TMP/run
rn 2 "$SRC/configs/node-fit.cfg" --set train.iterations=60 --set "run.dir=\"$run\""
expect_status 0 "node-fit runs"
for f in config.cfg manifest.json log.txt data.csv train.csv prediction.csv snapshots/final.bin; do expect_file "$run/$f" "run directory has $f"; done
[ ! -e "$run/node-fit.png" ] && [ ! -e "$run/analysis.log" ] && ok "no Python ran inside the job" || bad "the job made plots by itself"
run_analysis
expect_file "$run/node-fit.png" "the analysis command's plot"
# output.plot = true runs it at the end; with no Python that has numpy, a one-line note and exit 0
mkdir -p "$TMP/nopython"
printf '#!/bin/sh\nexit 1\n' > "$TMP/nopython/python3"
chmod +x "$TMP/nopython/python3"
PATH=$TMP/nopython:$PATH RESNODE_PYTHON= RESNODE_PYTHON_FALLBACK=/nonexistent rn 2 "$SRC/configs/node-fit.cfg" --set train.iterations=5 --set output.plot=true --set "run.dir=\"$TMP/noplot\""
expect_status 0 "output.plot = true where no Python has numpy"
[ "$(grep -c '^note: no plots made here' "$out")" -eq 1 ] && ok "one note: $(grep '^note:' "$out" | cut -c1-90)" || bad "no note: $(tail -3 "$out")"
grep -q '"status": "done"' "$TMP/noplot/manifest.json" && ok "the run is done all the same" || bad "manifest: $(grep status "$TMP/noplot/manifest.json")"
rn 2 "$SRC/configs/node-fit.cfg" --set train.iterations=5 --set output.plot=true --set "run.dir=\"$TMP/plot\""
expect_status 0 "output.plot = true"
expect_file "$TMP/plot/node-fit.png" "the plot made at the run's end, as asked"
grep -q '"status": "done"' "$run/manifest.json" && ok "manifest says completed" || bad "manifest status: $(grep status "$run/manifest.json")"
grep -q '"ranks": 2' "$run/manifest.json" && ok "manifest records 2 ranks" || bad "manifest ranks"
[ "$(wc -l < "$run/data.csv")" -eq 17 ] && ok "16 data rows" || bad "data.csv has $(wc -l < "$run/data.csv") lines"
[ "$(wc -l < "$run/prediction.csv")" -eq 152 ] && ok "151 prediction rows" || bad "prediction.csv lines"
head -1 "$run/train.csv" | grep -q '^group,member,N,iteration' && ok "train.csv header" || bad "train.csv header: $(head -1 "$run/train.csv")"
# the loss falls
first=$(sed -n 2p "$run/train.csv" | cut -d, -f6)
last=$(tail -1 "$run/train.csv" | cut -d, -f6)
awk -v a="$first" -v b="$last" 'BEGIN { exit !(b < a) }' && ok "loss falls ($first -> $last)" || bad "loss did not fall ($first -> $last)"
# the ResNet path of the same experiment
rn 2 "$SRC/configs/node-fit.cfg" --set train.iterations=5 --set 'model.depth="resnet"' --set model.N=30 --set "run.dir=\"$TMP/resnet\""
expect_status 0 "node-fit with a tied ResNet of depth 30"
# the embedded default (no CONFIG) is the full test-equation fit: loss below 0.05
rn 2 --set "run.dir=\"$TMP/default\""
expect_status 0 "the embedded default runs"
final=$(tail -1 "$TMP/default/train.csv" | cut -d, -f6)
awk -v l="$final" 'BEGIN { exit !(l < 0.05) }' && ok "the default fit reaches loss $final < 0.05" || bad "final loss of the default fit: $final"
# PETSc's -ts_* options are for the model's TS: the generated data stay the same
rn 2 "$SRC/configs/node-fit.cfg" --set train.iterations=5 --set output.plot=false --set "run.dir=\"$TMP/plain\""
rn 2 "$SRC/configs/node-fit.cfg" --set train.iterations=5 --set output.plot=false --set "run.dir=\"$TMP/bs3\"" -ts_rk_type 3bs
expect_status 0 "-ts_rk_type 3bs"
cmp -s "$TMP/plain/data.csv" "$TMP/bs3/data.csv" && ok "-ts_rk_type leaves the data alone" || bad "data.csv changed by -ts_rk_type: $(diff "$TMP/plain/data.csv" "$TMP/bs3/data.csv" | head -3)"
cmp -s <(cut -d, -f1-4,6- "$TMP/plain/train.csv") <(cut -d, -f1-4,6- "$TMP/bs3/train.csv") && bad "-ts_rk_type changed nothing in the model either" || ok "-ts_rk_type changes the model's solver"

# the default run directory runs/<experiment>-<time stamp>: when it exists
# already (two runs started in the same second), a fresh one is made, not the
# other run's continued (it used to resume from that run's final checkpoint)
mkdir -p "$TMP/stamp" && cd "$TMP/stamp"
now=$(date -u +%s)
for k in 0 1 2 3; do
  d=runs/node-fit-$(date -u -d @$((now + k)) +%Y%m%d-%H%M%S)
  mkdir -p "$d/checkpoints" && echo taken > "$d/marker"
done
rn 2 "$SRC/configs/node-fit.cfg" --set train.iterations=20 --set output.plot=false
expect_status 0 "a run whose time-stamped directory exists already"
made=$(ls -d runs/node-fit-*-2 2> /dev/null | head -1)
[ -n "$made" ] && grep -q '"status": "done"' "$made/manifest.json" && ok "it made $made" || bad "no suffixed run directory: $(ls runs)"
cd "$SRC"
finish
