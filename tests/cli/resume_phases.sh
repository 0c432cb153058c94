#!/usr/bin/env bash
# A resume is exact whatever the phase a run was stopped in: stopped (as by
# SIGUSR1, but at a named point: RESNODE_TEST_STOP_AT=POINT:N, checkpoint.h)
# after a record, inside the final limit check, after the final record,
# between units, mid-interval and at the last step, then resumed, every
# output file is byte for byte the uninterrupted run's: no table holds a row
# twice or misses one (an ensemble resumed after its last record used to
# write that record again: 264 -> 288 rows of records.csv).
. "$(dirname "$0")/lib.sh"
ens=(--set ensemble.members=6 --set 'ensemble.depths=[2, 4, 8]' --set sgd.steps=100 --set sgd.record_every=10 --set output.plot=false --set 'ensemble.save_parameters="every"' --set parallel.groups=2)
fit=(--set train.iterations=60 --set output.plot=false)

# same_outputs REF DIR WHAT: every file but the run's own bookkeeping is
# identical (HDF5 arrays: their datasets, bit for bit)
same_outputs() {
  local ref=$1 dir=$2 what=$3 n=0 f name differ=""
  shopt -s nullglob
  for f in "$ref"/*.csv "$ref"/*.h5 "$ref"/snapshots/*; do
    name=${f#"$ref"/}
    n=$((n + 1))
    if [ "${name%.h5}" != "$name" ]; then
      h5_same "$f" "$dir/$name" > "$TMP/h5.txt" 2>&1 || differ="$differ $name($(tail -1 "$TMP/h5.txt"))"
      continue
    fi
    cmp -s "$f" "$dir/$name" || differ="$differ $name($(wc -l < "$dir/$name" 2> /dev/null || echo missing) lines, expected $(wc -l < "$f"))"
  done
  for f in "$dir"/*.csv "$dir"/*.h5 "$dir"/snapshots/*; do
    [ -e "$ref/${f#"$dir"/}" ] || differ="$differ ${f#"$dir"/}(not in the uninterrupted run)"
  done
  shopt -u nullglob
  if [ -z "$differ" ]; then ok "$what: all $n output files identical to the uninterrupted run's"; else bad "$what: differ:$differ"; fi
}

# node-fit's train.csv holds wall times: compared without them
same_nodefit() {
  local ref=$1 dir=$2 what=$3 f
  cmp -s <(cut -d, -f1-4,6- "$ref/train.csv") <(cut -d, -f1-4,6- "$dir/train.csv") && ok "$what: train.csv has the uninterrupted run's rows" || bad "$what: train.csv $(wc -l < "$dir/train.csv") lines, expected $(wc -l < "$ref/train.csv")"
  for f in data.csv prediction.csv; do cmp -s "$ref/$f" "$dir/$f" && ok "$what: $f identical" || bad "$what: $f differs"; done
}

# cifar's rows as a set, without what scheduling decides: the group that
# trained a unit, the rows' order, the wall times (epochs.csv's time_s and
# images_per_s, final.csv's seconds); a row missing or twice still differs
rows() { cut -d, -f"$2" "$1" | sort; }
same_cifar() {
  local ref=$1 dir=$2 what=$3 f n=0
  cmp -s <(rows "$ref/epochs.csv" 2-7,9-13) <(rows "$dir/epochs.csv" 2-7,9-13) && cmp -s <(rows "$ref/final.csv" 2-9) <(rows "$dir/final.csv" 2-9) \
    && ok "$what: epochs.csv and final.csv have the uninterrupted run's rows" || bad "$what: $(diff <(rows "$ref/final.csv" 2-9) <(rows "$dir/final.csv" 2-9) | head -4)"
  for f in "$ref"/snapshots/*.bin; do cmp -s "$f" "$dir/snapshots/$(basename "$f")" && n=$((n + 1)); done
  [ "$n" -ge 2 ] && [ "$n" -eq "$(ls "$ref"/snapshots/*.bin | wc -l)" ] && ok "$what: all $n parameter files bitwise equal" || bad "$what: $n parameter files equal"
}

# stop_resume COMPARE NAME POINT CONFIG ARGS...: stopped at POINT, resumed,
# compared with ref-NAME by COMPARE REF DIR WHAT
stop_resume() {
  local compare=$1 name=$2 point=$3 cfg=$4 dir
  shift 4
  dir=$TMP/$name-${point/:/-}
  RESNODE_TEST_STOP_AT=$point rn 2 "$cfg" "$@" --set "run.dir=\"$dir\""
  expect_status 3 "$name stopped at $point"
  cp "$err" "$dir.stop.err"
  rn 2 --resume "$dir"
  expect_status 0 "$name resumed after $point"
  "$compare" "$TMP/ref-$name" "$dir" "$name stopped at $point"
}

rn 2 "$SRC/configs/ensemble.cfg" "${ens[@]}" --set "run.dir=\"$TMP/ref-ensemble\""
expect_status 0 "ensemble, uninterrupted"
# points per rank: records 0..10 (the 11th is the final one), one unit of
# each group a record interval, the limit check on the limit's units
for point in record:5 record:11 limit_check:1 unit:7 step:137 last_step:1; do
  stop_resume same_outputs ensemble "$point" "$SRC/configs/ensemble.cfg" "${ens[@]}"
done
grep -q "checkpoint of SGD step 100 of 100, at record 10 (in the tables) written" "$TMP/ensemble-record-11.stop.err" && ok "a stop at the final record says the record is in the tables" || bad "the stop message does not say the final record is written: $(grep checkpoint "$TMP/ensemble-record-11.stop.err")"

rn 2 "$SRC/configs/node-fit.cfg" "${fit[@]}" --set "run.dir=\"$TMP/ref-nodefit\""
expect_status 0 "node-fit, uninterrupted"
for point in step:25 last_step:1; do
  stop_resume same_nodefit nodefit "$point" "$SRC/configs/node-fit.cfg" "${fit[@]}"
done

# cifar: its units (a depth on a fold) in a queue over 2 groups, each unit a
# trainer of its own: stopped at a step, at a unit's last step (its final.csv
# row written) and resumed; the rows but for wall times, and the parameters
"$RN_MAKE_CIFAR" "$TMP/cifar" 40 > /dev/null 2>&1 || bad "could not generate data"
cifar=(--set "data.dir=\"$TMP/cifar\"" --set data.folds=1 --set data.validation=40 --set model.channels=4 --set 'model.depths=[2, 4]' --set model.ode=false
  --set train.epochs=2 --set train.batch=20 --set train.eval_batch=40 --set checkpoint.every_seconds=0 --set output.plot=false --set parallel.groups=2)
rn 2 "$SRC/configs/cifar-small.cfg" "${cifar[@]}" --set "run.dir=\"$TMP/ref-cifar\""
expect_status 0 "cifar, uninterrupted"
for point in step:3 last_step:1; do
  stop_resume same_cifar cifar "$point" "$SRC/configs/cifar-small.cfg" "${cifar[@]}"
done
echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
