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

# same_outputs REF DIR WHAT: every file but the run's own bookkeeping is identical
same_outputs() {
  local ref=$1 dir=$2 what=$3 n=0 f name differ=""
  for f in "$ref"/*.csv "$ref"/snapshots/*; do
    name=${f#"$ref"/}
    n=$((n + 1))
    cmp -s "$f" "$dir/$name" || differ="$differ $name($(wc -l < "$dir/$name" 2> /dev/null || echo missing) lines, expected $(wc -l < "$f"))"
  done
  for f in "$dir"/*.csv "$dir"/snapshots/*; do
    [ -e "$ref/${f#"$dir"/}" ] || differ="$differ ${f#"$dir"/}(not in the uninterrupted run)"
  done
  if [ -z "$differ" ]; then ok "$what: all $n output files identical to the uninterrupted run's"; else bad "$what: differ:$differ"; fi
}

# stop_resume NAME POINT CONFIG ARGS...: stopped at POINT, resumed, compared with ref-NAME
stop_resume() {
  local name=$1 point=$2 cfg=$3 dir
  shift 3
  dir=$TMP/$name-${point/:/-}
  RESNODE_TEST_STOP_AT=$point rn 2 "$cfg" "$@" --set "run.dir=\"$dir\""
  expect_status 3 "$name stopped at $point"
  cp "$err" "$dir.stop.err"
  rn 2 --resume "$dir"
  expect_status 0 "$name resumed after $point"
  same_outputs "$TMP/ref-$name" "$dir" "$name stopped at $point"
}

rn 2 "$SRC/configs/ensemble.cfg" "${ens[@]}" --set "run.dir=\"$TMP/ref-ensemble\""
expect_status 0 "ensemble, uninterrupted"
# points per rank: records 0..10 (the 11th is the final one), one unit of
# each group a record interval, the limit check on the limit's units
for point in record:5 record:11 limit_check:1 unit:7 step:137 last_step:1; do
  stop_resume ensemble "$point" "$SRC/configs/ensemble.cfg" "${ens[@]}"
done
grep -q "checkpoint of SGD step 100 of 100, at record 10 (in the tables) written" "$TMP/ensemble-record-11.stop.err" && ok "a stop at the final record says the record is in the tables" || bad "the stop message does not say the final record is written: $(grep checkpoint "$TMP/ensemble-record-11.stop.err")"

rn 2 "$SRC/configs/node-fit.cfg" "${fit[@]}" --set "run.dir=\"$TMP/ref-nodefit\""
expect_status 0 "node-fit, uninterrupted"
# node-fit's train.csv holds wall times: compare it without them
for point in step:25 last_step:1; do
  dir=$TMP/nodefit-${point/:/-}
  RESNODE_TEST_STOP_AT=$point rn 2 "$SRC/configs/node-fit.cfg" "${fit[@]}" --set "run.dir=\"$dir\""
  expect_status 3 "node-fit stopped at $point"
  rn 2 --resume "$dir"
  expect_status 0 "node-fit resumed after $point"
  cmp -s <(cut -d, -f1-4,6- "$TMP/ref-nodefit/train.csv") <(cut -d, -f1-4,6- "$dir/train.csv") && ok "node-fit stopped at $point: train.csv has the uninterrupted run's rows" || bad "node-fit $point: train.csv $(wc -l < "$dir/train.csv") lines, expected $(wc -l < "$TMP/ref-nodefit/train.csv")"
  for f in data.csv prediction.csv; do cmp -s "$TMP/ref-nodefit/$f" "$dir/$f" && ok "node-fit $point: $f identical" || bad "node-fit $point: $f differs"; done
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
  dir=$TMP/cifar-${point/:/-}
  RESNODE_TEST_STOP_AT=$point rn 2 "$SRC/configs/cifar-small.cfg" "${cifar[@]}" --set "run.dir=\"$dir\""
  expect_status 3 "cifar stopped at $point"
  rn 2 --resume "$dir"
  expect_status 0 "cifar resumed after $point"
  # the rows as a set, without what scheduling decides: the group that
  # trained a unit, the rows' order, the wall times (epochs.csv's time_s and
  # images_per_s, final.csv's seconds); a row missing or twice still differs
  rows() { cut -d, -f"$2" "$1" | sort; }
  cmp -s <(rows "$TMP/ref-cifar/epochs.csv" 2-7,9-13) <(rows "$dir/epochs.csv" 2-7,9-13) && cmp -s <(rows "$TMP/ref-cifar/final.csv" 2-9) <(rows "$dir/final.csv" 2-9) \
    && ok "cifar stopped at $point: epochs.csv and final.csv have the uninterrupted run's rows" || bad "cifar $point: $(diff <(rows "$TMP/ref-cifar/final.csv" 2-9) <(rows "$dir/final.csv" 2-9) | head -4)"
  n=0
  for f in "$TMP"/ref-cifar/snapshots/*.bin; do cmp -s "$f" "$dir/snapshots/$(basename "$f")" && n=$((n + 1)); done
  [ "$n" -ge 2 ] && [ "$n" -eq "$(ls "$TMP"/ref-cifar/snapshots/*.bin | wc -l)" ] && ok "cifar $point: all $n parameter files bitwise equal" || bad "cifar $point: $n parameter files equal"
done
echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
