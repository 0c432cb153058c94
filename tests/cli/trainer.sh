#!/usr/bin/env bash
# Every experiment runs under the one training driver (RnTrainer): identity
# and annulus, which had no checkpoints and ignored SIGUSR1, now stop on the
# signal with a checkpoint (exit 3) and a --resume ends with exactly the
# tables of an uninterrupted run; a non-finite loss is the clean exit 4.
. "$(dirname "$0")/lib.sh"

# identity: a step is an epoch of one of the two nets
id=(--set train.max_epochs=60000 --set train.target_mse=0.0)
rn 2 "$SRC/configs/identity.cfg" "${id[@]}" --set "run.dir=\"$TMP/id-ref\""
expect_status 0 "identity, uninterrupted"
signal_when "$TMP/id-cut" train.csv 20000 "$SRC/configs/identity.cfg" "${id[@]}"
expect_status 3 "identity stops on SIGUSR1 with the preemption status"
expect_message "signal received: checkpoint of the plain net, epoch" "identity's message names the net and the epoch"
rn 2 --resume "$TMP/id-cut"
expect_status 0 "identity resumed"
for f in train.csv summary.csv; do
  cmp -s "$TMP/id-ref/$f" "$TMP/id-cut/$f" && ok "identity $f identical to the uninterrupted run's" || bad "identity $f differs: $(diff "$TMP/id-ref/$f" "$TMP/id-cut/$f" | head -4)"
done

# annulus: a unit is a depth on a fold, from the queue (units.h); rows but for the group (the queue's choice) and times
an=(--set data.samples=400 --set 'model.depths=[1, 2, 4]' --set model.ode=false --set train.epochs=600 --set output.plot=false)
rn 2 "$SRC/configs/annulus.cfg" "${an[@]}" --set "run.dir=\"$TMP/an-ref\""
expect_status 0 "annulus, uninterrupted"
signal_when "$TMP/an-cut" units/resnet-N4-fold0/folds.csv 1 "$SRC/configs/annulus.cfg" "${an[@]}"
expect_status 3 "annulus stops on SIGUSR1 with the preemption status"
rn 2 --resume "$TMP/an-cut"
expect_status 0 "annulus resumed"
cmp -s <(cut -d, -f2-7 "$TMP/an-ref/folds.csv") <(cut -d, -f2-7 "$TMP/an-cut/folds.csv") && ok "annulus folds.csv rows identical (but for times)" || bad "folds.csv differs: $(diff <(cut -d, -f1-7 "$TMP/an-ref/folds.csv") <(cut -d, -f1-7 "$TMP/an-cut/folds.csv") | head -4)"
cmp -s "$TMP/an-ref/accuracy.csv" "$TMP/an-cut/accuracy.csv" && ok "annulus accuracy.csv identical" || bad "accuracy.csv differs"
rn 2 --resume "$TMP/an-ref"
expect_status 0 "--resume of a finished annulus run"
cmp -s <(cut -d, -f2-7 "$TMP/an-ref/folds.csv") <(cut -d, -f2-7 "$TMP/an-cut/folds.csv") && ok "a finished run resumed adds no rows" || bad "folds.csv after resuming a finished run: $(wc -l < "$TMP/an-ref/folds.csv") lines"

# a blown-up run: the clean non-finite exit, not a PETSc traceback
rn 2 "$SRC/configs/identity.cfg" --set train.lr=1000 --set 'train.optimizer="sgd"' --set "run.dir=\"$TMP/id-nan\""
expect_status 4 "identity with a diverging lr exits with the non-finite status"
rn 2 "$SRC/configs/annulus.cfg" "${an[@]}" --set train.epochs=40 --set train.lr=1000 --set 'train.optimizer="sgd"' --set "run.dir=\"$TMP/an-nan\""
expect_status 4 "annulus with a diverging lr exits with the non-finite status"
rn 2 "$SRC/configs/annulus.cfg" "${an[@]}" --set train.batch=400
expect_status 2 "annulus with a batch larger than a fold's training part"; expect_message "train.batch: 400 is larger than the 320 training samples of a fold" "batch too large named"

# a signal while MPI and PETSc start up (it used to kill the rank: exit 138):
# SIGUSR1 to the rank as soon as it catches it (main's first call), whatever
# the machine's speed: before main no program can catch a signal, so the
# test waits for the handler, not for a time (it once sent it after 100 ms,
# which a loaded machine could still spend loading the shared libraries)
mpirun --bind-to none -n 1 "$BIN" "$SRC/configs/node-fit.cfg" --set train.iterations=200 --set output.plot=false --set "run.dir=\"$TMP/early\"" > "$TMP/early.out" 2> "$TMP/early.err" &
pid=$! rank= caught_it=0
for i in $(seq 1 200000); do
  if [ -z "$rank" ]; then
    for p in $(pgrep -x resnode-mpi); do grep -q "run.dir=\"$TMP/early\"" "/proc/$p/cmdline" 2> /dev/null && rank=$p; done
  else
    caught=$(awk '/SigCgt/ {print $2}' "/proc/$rank/status" 2> /dev/null)
    [ -n "$caught" ] && [ $(( 0x$caught & 0x200 )) -ne 0 ] && caught_it=1 && break
  fi
  kill -0 $pid 2> /dev/null || break
done
[ "$caught_it" -eq 1 ] && ok "the rank catches SIGUSR1 from main's first call" || bad "the rank never caught SIGUSR1 (rank '$rank')"
[ -n "$rank" ] && kill -USR1 "$rank"
wait $pid
status=$? err=$TMP/early.err
expect_status 3 "SIGUSR1 during start-up"
expect_message "signal received: checkpoint of iteration 1 written" "it takes effect at the first step"
finish
