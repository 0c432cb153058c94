#!/usr/bin/env bash
# Failure behaviour: a non-finite loss stops the run naming the iteration and
# keeps the last good checkpoint; two runs on one directory: the second
# refuses; a rank that dies makes the job end promptly, not hang.
. "$(dirname "$0")/lib.sh"
rn 2 "$SRC/configs/node-fit.cfg" --set 'model.depth="resnet"' --set model.N=15 --set 'train.optimizer="sgd"' --set train.lr=1000 --set train.iterations=300 --set checkpoint.every_steps=1 --set output.plot=false --set "run.dir=\"$TMP/nan\""
expect_status 4 "a blown-up run exits with the non-finite status"
grep -qE "the loss is (nan|inf|-nan)|gradient entry .* is|solver failed|not finite" "$err" && ok "the message names the problem: $(grep -m1 -oE 'node-fit: .*iteration [0-9]+' "$err" || head -1 "$err")" || bad "message: $(head -3 "$err")"
grep -q '"status": "failed"' "$TMP/nan/manifest.json" && grep -q '"reason": "non-finite: ' "$TMP/nan/manifest.json" && ok "manifest says failed, reason non-finite" || bad "manifest: $(grep -E 'status|reason' "$TMP/nan/manifest.json")"
ls "$TMP"/nan/checkpoints/*.done > /dev/null 2>&1 && ok "the last good checkpoint is kept" || bad "no checkpoint left"

# an adaptive ODE whose parameters diverge (sgd at lr 50): its field turns
# stiff and the steps run away; that is divergence (exit 4, say so), not an
# ode.max_steps problem found after 100000 steps
rn 2 "$SRC/configs/node-fit.cfg" --set 'train.optimizer="sgd"' --set train.lr=50 --set train.iterations=300 --set output.plot=false --set "run.dir=\"$TMP/stiff\""
expect_status 4 "diverging parameters of an adaptive ODE"
expect_message "the field has become stiff or singular as the parameters diverge; lower the learning rate" "divergence named"
grep -q "ode.max_steps" "$err" && bad "ode.max_steps blamed: $(grep -m1 error "$err")" || ok "ode.max_steps not blamed"

# two runs, one directory
timeout 120 mpirun --bind-to none -n 1 "$BIN" "$SRC/configs/node-fit.cfg" --set train.iterations=100000 --set output.plot=false --set "run.dir=\"$TMP/shared\"" > /dev/null 2>&1 &
first=$!
for i in $(seq 1 200); do [ -f "$TMP/shared/train.csv" ] && break; sleep 0.05; done
rn 1 "$SRC/configs/node-fit.cfg" --set "run.dir=\"$TMP/shared\""
expect_status 2 "a second run on the same directory refuses"
expect_message "is in use by another run" "lock message"

# a rank that dies: the job ends within seconds
rankpid=$(pgrep -f "run.dir=\"$TMP/shared\"" | while read p; do [ "$(cat /proc/$p/comm 2>/dev/null)" = "resnode-mpi" ] && echo $p; done | head -1)
start=$(date +%s)
kill -9 "$rankpid" 2>/dev/null
wait $first
status=$?
elapsed=$(( $(date +%s) - start ))
[ "$status" -ne 0 ] && [ "$elapsed" -lt 30 ] && ok "killing a rank ends the job (exit $status after ${elapsed}s)" || bad "job after killing a rank: exit $status after ${elapsed}s"

# a full disk: refused before training starts; and when it fills up during a
# run, the run stops and the last complete checkpoint stays usable
if mkdir -p "$TMP/small" && mount -t tmpfs -o size=2m tmpfs "$TMP/small" 2>/dev/null; then
  rn 2 "$SRC/configs/node-fit.cfg" --set "run.dir=\"$TMP/small/run\""
  expect_status 2 "a run directory on an almost full disk"
  expect_message "MB free on its file system" "free-space message"
  umount "$TMP/small"
  mount -t tmpfs -o size=20m tmpfs "$TMP/small"
  full=(--set train.iterations=100000 --set checkpoint.every_steps=20 --set output.plot=false --set "run.dir=\"$TMP/small/run\"")
  mpirun --bind-to none -n 2 "$BIN" "$SRC/configs/node-fit.cfg" "${full[@]}" > "$TMP/full.out" 2> "$TMP/full.err" &
  pid=$!
  for i in $(seq 1 300); do ls "$TMP"/small/run/checkpoints/*.done > /dev/null 2>&1 && break; sleep 0.05; done
  dd if=/dev/zero of="$TMP/small/filler" bs=1M count=64 2> /dev/null
  wait $pid
  status=$?
  [ "$status" -ne 0 ] && grep -qE "No space left|cannot write checkpoint|cannot write" "$TMP/full.err" && ok "a full disk stops the run with a message (exit $status)" || bad "full disk: exit $status, $(head -3 "$TMP/full.err")"
  grep -q "PETSC ERROR" "$TMP/full.err" && bad "a PETSc traceback after the disk filled: $(grep -m2 'PETSC ERROR: [a-z]' "$TMP/full.err")" || ok "no PETSc traceback after the clean message"
  rm -f "$TMP/small/filler"
  rn 2 --resume "$TMP/small/run" --set train.iterations=300
  expect_status 0 "the last complete checkpoint resumes once there is room again"
  umount "$TMP/small"
else
  echo "  skipped: the full-disk checks need to mount a small tmpfs (root)"
fi
# an error raised in one group only (its ODE gives up) ends the whole job
# with the error's status; the other group does not wait for it forever
start=$(date +%s)
rn 2 "$SRC/configs/ensemble.cfg" --set ensemble.members=2 --set 'ensemble.depths=[2]' --set ode.max_steps=1 --set parallel.groups=2 --set output.plot=false --set "run.dir=\"$TMP/onegroup\""
elapsed=$(( $(date +%s) - start ))
[ "$status" -eq 2 ] && [ "$elapsed" -lt 60 ] && ok "an error in one group ends the job (exit 2 after ${elapsed}s)" || bad "exit $status after ${elapsed}s"
grep -q "ode.max_steps = 1" "$err" && ok "the message names the key" || bad "message: $(head -3 "$err")"
# the manifest says so, although the ranks that write it were aborted
grep -q '"status": "failed"' "$TMP/onegroup/manifest.json" && grep -q '"reason": "bad input: .*ode.max_steps = 1' "$TMP/onegroup/manifest.json" && ok "manifest: failed, with the group's error as its reason" || bad "manifest: $(grep -E 'status|reason' "$TMP/onegroup/manifest.json")"
ls "$TMP"/onegroup/manifest.json.* > /dev/null 2>&1 && bad "temporary manifest files left: $(ls "$TMP"/onegroup/)" || ok "no temporary manifest files left"
finish
