#!/usr/bin/env bash
# CIFAR preempted within an epoch: the ranks look at signals after every
# step (not only at epoch ends), checkpoint there, exit 3; --resume goes on
# from that step and ends bitwise equal to an uninterrupted run, with the
# same rows in epochs.csv and final.csv.
. "$(dirname "$0")/lib.sh"
MAKE=${RN_MAKE_CIFAR:?RN_MAKE_CIFAR not set}
"$MAKE" "$TMP/data" 300 || { bad "could not generate data"; finish; exit 1; }
args=(--set "data.dir=\"$TMP/data\"" --set data.folds=1 --set data.validation=100 --set model.channels=16 --set 'model.depths=[8]' --set model.ode=false --set 'model.precision="float64"'
  --set train.epochs=2 --set train.batch=20 --set train.eval_batch=100 --set train.log_every=1 --set checkpoint.every_seconds=0 --set output.plot=false)
rn 2 "$SRC/configs/cifar-small.cfg" "${args[@]}" --set "run.dir=\"$TMP/ref\""
expect_status 0 "uninterrupted run"
mpirun --bind-to none -n 2 "$BIN" "$SRC/configs/cifar-small.cfg" "${args[@]}" --set "run.dir=\"$TMP/cut\"" > "$TMP/cut.out" 2> "$TMP/cut.err" &
pid=$!
# signal in the middle of the first epoch
for i in $(seq 1 1200); do
  grep -q "epoch 1/2 step 2[0-9]/" "$TMP/cut.out" 2> /dev/null && break
  sleep 0.05
done
kill -USR1 $pid
wait $pid
status=$?
err=$TMP/cut.err
expect_status 3 "SIGUSR1 within an epoch stops the run with the preemption status"
expect_message "signal received: checkpoint of step" "the message names the step"
grep -q '"status": "preempted"' "$TMP/cut/manifest.json" && ok "manifest says preempted" || bad "manifest: $(grep status "$TMP/cut/manifest.json")"
[ "$(wc -l < "$TMP/cut/epochs.csv")" -eq 1 ] && ok "no epoch row yet: the checkpoint is within the first epoch" || bad "epochs.csv: $(cat "$TMP/cut/epochs.csv")"
rn 2 --resume "$TMP/cut"
expect_status 0 "resume"
grep -q "(resumed)" "$out" && ok "the round says it resumed" || bad "no resume in the log: $(head -5 "$out")"
cmp -s "$TMP/ref/snapshots/theta-resnet-N8.bin" "$TMP/cut/snapshots/theta-resnet-N8.bin" && ok "final parameters bitwise equal to the uninterrupted run" || bad "final parameters differ"
# columns without wall times: epoch rows and final accuracies
cmp -s <(cut -d, -f1-7,9-13 "$TMP/ref/epochs.csv") <(cut -d, -f1-7,9-13 "$TMP/cut/epochs.csv") && ok "epochs.csv rows identical (but for times)" || bad "epochs.csv differs: $(diff <(cut -d, -f1-7,9-13 "$TMP/ref/epochs.csv") <(cut -d, -f1-7,9-13 "$TMP/cut/epochs.csv") | head -6)"
cmp -s <(cut -d, -f1-9 "$TMP/ref/final.csv") <(cut -d, -f1-9 "$TMP/cut/final.csv") && ok "final.csv identical (but for times)" || bad "final.csv differs: $(diff "$TMP/ref/final.csv" "$TMP/cut/final.csv")"

# the learning rate per epoch: a step schedule (x 0.1 after epoch 2) and the
# plateau reducer (x 0.5 after every epoch that does not improve the training
# loss by 1e5, i.e. every epoch after the first), preempted after epoch 2 and
# resumed: by hand 1e-3, 1e-3, 1e-3 x 0.1 x 0.5, 1e-3 x 0.1 x 0.25
sched=(--set "data.dir=\"$TMP/data\"" --set data.folds=1 --set data.validation=100 --set model.channels=4 --set 'model.depths=[2]' --set model.ode=false --set train.lr=1e-3
  --set train.epochs=4 --set train.batch=20 --set train.eval_batch=100 --set train.log_every=1 --set checkpoint.every_seconds=0 --set output.plot=false
  --set 'train.lr_schedule={ epochs = [2]; factors = [0.1]; }' --set 'train.plateau={ enable = true; metric = "train_loss"; factor = 0.5; patience = 1; min_delta = 1e5; min_lr = 0.0; }')
signal_when "$TMP/lr" units/resnet-N2/epochs.csv 2 "$SRC/configs/cifar-small.cfg" "${sched[@]}"
expect_status 3 "the scheduled run preempted after its second epoch"
rn 2 --resume "$TMP/lr"
expect_status 0 "and resumed"
lrs=$(awk -F, 'NR > 1 { printf "%s ", $9 }' "$TMP/lr/epochs.csv")
[ "$lrs" = "0.001 0.001 5e-05 2.5e-05 " ] && ok "learning rates per epoch as computed by hand: $lrs" || bad "learning rates per epoch: $lrs (expected 0.001 0.001 5e-05 2.5e-05)"
finish
