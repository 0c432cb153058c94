#!/usr/bin/env bash
# Preemption and resume: SIGUSR1 makes every rank finish its step, write a
# checkpoint, mark the run preempted and exit 3; --resume continues and ends
# with parameters bitwise equal to an uninterrupted run's; metrics rows are
# neither lost nor duplicated.
. "$(dirname "$0")/lib.sh"
args=(--set train.iterations=1500 --set checkpoint.every_steps=50 --set output.plot=false --set 'ode.solver="rk4"' --set ode.adaptive=false --set ode.steps=300)
rn 2 "$SRC/configs/node-fit.cfg" "${args[@]}" --set "run.dir=\"$TMP/ref\""
expect_status 0 "uninterrupted run"

# the same run, signalled once it has logged some rows
mpirun --bind-to none -n 2 "$BIN" "$SRC/configs/node-fit.cfg" "${args[@]}" --set "run.dir=\"$TMP/cut\"" > "$TMP/cut.out" 2> "$TMP/cut.err" &
pid=$!
for i in $(seq 1 600); do
  [ -f "$TMP/cut/train.csv" ] && [ "$(wc -l < "$TMP/cut/train.csv")" -gt 30 ] && break
  sleep 0.05
done
kill -USR1 $pid # mpirun forwards SIGUSR1 to the ranks
wait $pid
status=$?
err=$TMP/cut.err
expect_status 3 "SIGUSR1 stops the run with the preemption status"
expect_message "signal received: checkpoint of iteration" "preemption message"
grep -q '"status": "preempted"' "$TMP/cut/manifest.json" && ok "manifest says preempted" || bad "manifest: $(grep status "$TMP/cut/manifest.json")"
ls "$TMP"/cut/checkpoints/*.done > /dev/null 2>&1 && ok "a complete checkpoint exists" || bad "no checkpoint"
rn 2 --resume "$TMP/cut"
expect_status 0 "resume"
grep -q "resumed from the checkpoint of step" "$out" && ok "resumed from a checkpoint" || bad "did not say it resumed"
cmp -s "$TMP/ref/snapshots/final.bin" "$TMP/cut/snapshots/final.bin" && ok "final parameters bitwise equal to the uninterrupted run" || bad "final parameters differ"
cmp -s <(cut -d, -f1-4,6- "$TMP/ref/train.csv") <(cut -d, -f1-4,6- "$TMP/cut/train.csv") && ok "train.csv rows identical (but for times)" || bad "train.csv differs: $(diff <(cut -d, -f1-4,6- "$TMP/ref/train.csv") <(cut -d, -f1-4,6- "$TMP/cut/train.csv") | head -5)"
grep -q '"status": "completed"' "$TMP/cut/manifest.json" && ok "manifest says completed after resume" || bad "manifest after resume"

# a corrupt newest checkpoint: reported, and the previous one is used
rn 2 "$SRC/configs/node-fit.cfg" "${args[@]}" --set train.iterations=200 --set "run.dir=\"$TMP/corrupt\""
newest=$(ls "$TMP"/corrupt/checkpoints/*.bin | sort | tail -1)
truncate -s 100 "$newest"
rn 2 --resume "$TMP/corrupt"
expect_status 0 "resume past a corrupt checkpoint"
grep -q "checkpoint skipped: .*expected" "$out" && ok "the corrupt checkpoint is reported" || bad "no report of the corrupt checkpoint: $(head -5 "$out")"
finish
