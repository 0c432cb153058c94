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
signal_when "$TMP/cut" train.csv 30 "$SRC/configs/node-fit.cfg" "${args[@]}"
expect_status 3 "SIGUSR1 stops the run with the preemption status"
expect_message "signal received: checkpoint of iteration" "preemption message"
grep -q '"status": "preempted"' "$TMP/cut/manifest.json" && grep -q '"reason": "signal received: checkpoint of iteration [0-9]* written' "$TMP/cut/manifest.json" && ok "manifest says preempted, with the checkpoint's step" || bad "manifest: $(grep -E 'status|reason' "$TMP/cut/manifest.json")"
ls "$TMP"/cut/checkpoints/*.done > /dev/null 2>&1 && ok "a complete checkpoint exists" || bad "no checkpoint"
rn 2 --resume "$TMP/cut"
expect_status 0 "resume"
grep -q "resumed from the checkpoint of step" "$out" && ok "resumed from a checkpoint" || bad "did not say it resumed"
cmp -s "$TMP/ref/snapshots/final.bin" "$TMP/cut/snapshots/final.bin" && ok "final parameters bitwise equal to the uninterrupted run" || bad "final parameters differ"
cmp -s <(cut -d, -f1-4,6- "$TMP/ref/train.csv") <(cut -d, -f1-4,6- "$TMP/cut/train.csv") && ok "train.csv rows identical (but for times)" || bad "train.csv differs: $(diff <(cut -d, -f1-4,6- "$TMP/ref/train.csv") <(cut -d, -f1-4,6- "$TMP/cut/train.csv") | head -5)"
grep -q '"status": "done"' "$TMP/cut/manifest.json" && grep -q '"reason": "finished"' "$TMP/cut/manifest.json" && ok "manifest says done (finished) after resume" || bad "manifest after resume: $(grep -E 'status|reason' "$TMP/cut/manifest.json")"
grep -q '"previous_attempt": "preempted"' "$TMP/cut/manifest.json" && ok "the manifest says the previous attempt was preempted" || bad "previous attempt: $(grep previous "$TMP/cut/manifest.json")"

# an ensemble preempted mid-run: the checkpoint falls between two records,
# within the members' runs (their SGD states are checkpointed), the resumed
# run goes on from there, and every table, the streamed statistics and the
# saved parameters are exactly an uninterrupted run's (records were once
# appended twice)
ens=(--set ensemble.members=12 --set 'ensemble.depths=[2, 4]' --set sgd.steps=300 --set checkpoint.every_steps=100 --set output.plot=false --set 'ensemble.save_parameters="every"' --set 'output.arrays="csv"')
rn 2 "$SRC/configs/ensemble.cfg" "${ens[@]}" --set "run.dir=\"$TMP/eref\""
expect_status 0 "uninterrupted ensemble"
# (the signal's arrival is up to mpirun: a stop that happens to fall on the
# last step is tried again, up to three times)
for attempt in 1 2 3; do
  rm -rf "$TMP/ecut"
  SIGNAL_DELAY=0.05 signal_when "$TMP/ecut" records.csv 40 "$SRC/configs/ensemble.cfg" "${ens[@]}"
  within=$(grep -o "checkpoint of SGD step [0-9]* of 300," "$err" | grep -o "step [0-9]*" | grep -o "[0-9]*")
  [ "$status" -eq 3 ] && [ -n "$within" ] && [ "$within" -lt 300 ] && break
done
expect_status 3 "SIGUSR1 stops the ensemble with the preemption status"
[ -n "$within" ] && [ "$within" -lt 300 ] && ok "the checkpoint is within a member's run (SGD step $within of 300, attempt $attempt)" || bad "no checkpoint within a member's run: $(grep -m1 'checkpoint of' "$err")"
# the groups write and read their own units (MPI-IO): a damaged byte in the
# newest checkpoint's units of group 1 is found by rank 1's checksum, and the
# resume falls back to the previous checkpoint (it ends the same)
newest=$(ls "$TMP"/ecut/checkpoints/*.bin | sort -V | tail -1)
/usr/bin/python3 - "$newest" <<'PY'
import struct, sys
raw = bytearray(open(sys.argv[1], "rb").read())
nf = struct.unpack_from("<I", raw, 12)[0]
for i in range(nf):
    name, size, _, off = struct.unpack_from("<48sQQQ", raw, 24 + 72 * i)
    if name.rstrip(b"\0") == b"unit.18":  # a unit of group 1 (36 units, 18 a group)
        raw[off + size // 2] ^= 0x40
open(sys.argv[1], "wb").write(raw)
PY
rn 2 --resume "$TMP/ecut"
expect_status 0 "resume of the ensemble"
grep -q "checkpoint skipped: .*checksum mismatch in field 'unit.18'" "$out" && ok "the damaged unit of group 1 reported, the previous checkpoint used" || bad "no report of the damaged field: $(grep -m2 'checkpoint\|resumed' "$out")"
cmp -s "$TMP/eref/records.csv" "$TMP/ecut/records.csv" && ok "records.csv identical to the uninterrupted run's ($(wc -l < "$TMP/ecut/records.csv") lines)" || bad "records.csv: $(wc -l < "$TMP/ecut/records.csv") lines, uninterrupted $(wc -l < "$TMP/eref/records.csv")"
for f in stats.csv gram.csv sup.csv laws.csv spectrum.csv; do
  cmp -s "$TMP/eref/$f" "$TMP/ecut/$f" && ok "$f identical" || bad "$f differs: $(diff "$TMP/eref/$f" "$TMP/ecut/$f" | head -3)"
done
n=0
for f in "$TMP"/eref/snapshots/theta-step*.bin; do cmp -s "$f" "$TMP/ecut/snapshots/${f##*/}" && n=$((n + 1)); done
[ "$n" -eq 31 ] && ok "the parameters of all 31 records bitwise equal" || bad "only $n of 31 record files equal"

# a run killed before its first checkpoint, started again with --resume:
# its tables start over (they used to keep the killed attempt's rows)
nock=(--set train.iterations=500 --set checkpoint.every_steps=0 --set checkpoint.every_seconds=0 --set output.plot=false --set 'ode.solver="rk4"' --set ode.adaptive=false --set ode.steps=150)
rn 2 "$SRC/configs/node-fit.cfg" "${nock[@]}" --set "run.dir=\"$TMP/nref\""
mpirun --bind-to none -n 2 "$BIN" "$SRC/configs/node-fit.cfg" "${nock[@]}" --set "run.dir=\"$TMP/killed\"" > /dev/null 2>&1 &
pid=$!
for i in $(seq 1 600); do
  [ -f "$TMP/killed/train.csv" ] && [ "$(wc -l < "$TMP/killed/train.csv")" -gt 30 ] && break
  sleep 0.05
done
pkill -9 -f "run.dir=\"$TMP/killed\"" ; wait $pid 2> /dev/null
rn 2 --resume "$TMP/killed"
expect_status 0 "restart of a killed run without a checkpoint"
grep -q "no checkpoint in $TMP/killed/checkpoints: starting from step 0" "$out" && ok "it says it starts from step 0" || bad "no word of the missing checkpoint: $(head -3 "$out")"
grep -q "the previous attempt is stale: it ended without a status, its last heartbeat at 20" "$out" && grep -q '"previous_attempt": "stale"' "$TMP/killed/manifest.json" && ok "the killed attempt is named stale, with its last heartbeat, in the log and the manifest" || bad "killed attempt not named: $(grep previous "$TMP/killed/manifest.json")"
cmp -s <(cut -d, -f1-4,6- "$TMP/nref/train.csv") <(cut -d, -f1-4,6- "$TMP/killed/train.csv") && ok "train.csv has exactly the uninterrupted run's rows" || bad "train.csv: $(wc -l < "$TMP/killed/train.csv") lines, uninterrupted $(wc -l < "$TMP/nref/train.csv")"
cmp -s "$TMP/nref/data.csv" "$TMP/killed/data.csv" && ok "data.csv written once" || bad "data.csv: $(wc -l < "$TMP/killed/data.csv") lines, expected $(wc -l < "$TMP/nref/data.csv")"
rn 2 --resume "$TMP/nref"
expect_status 0 "--resume of a finished run"
cmp -s "$TMP/nref/prediction.csv" "$TMP/killed/prediction.csv" && ok "prediction.csv not doubled by the resume of a finished run" || bad "prediction.csv: $(wc -l < "$TMP/nref/prediction.csv") lines"

# a resume whose config asks for fewer steps than the checkpoint holds
rn 2 --resume "$TMP/ref" --set train.iterations=100
expect_status 2 "resume with train.iterations below the checkpoint's step"
expect_message "beyond the 100 steps of this configuration" "the shortened step count named"

# a corrupt newest checkpoint: reported, and the previous one is used
rn 2 "$SRC/configs/node-fit.cfg" "${args[@]}" --set train.iterations=200 --set "run.dir=\"$TMP/corrupt\""
newest=$(ls "$TMP"/corrupt/checkpoints/*.bin | sort | tail -1)
truncate -s 100 "$newest"
rn 2 --resume "$TMP/corrupt"
expect_status 0 "resume past a corrupt checkpoint"
grep -q "checkpoint skipped: .*expected" "$out" && ok "the corrupt checkpoint is reported" || bad "no report of the corrupt checkpoint: $(head -5 "$out")"

# the stored config edited before --resume (lr and seed): refused, naming
# the changes; the run's manifest and files stay as they were
cp "$TMP/corrupt/manifest.json" "$TMP/manifest.before"
cp "$TMP/corrupt/train.csv" "$TMP/train.before"
sed -i 's/^\( *\)lr = .*;/\1lr = 0.5;/; s/^seed = .*;/seed = 7;/' "$TMP/corrupt/config.cfg"
rn 2 --resume "$TMP/corrupt"
expect_status 2 "--resume after editing lr and seed in the stored config"
expect_message "were made with another configuration: seed was 1, now 7; train.lr was 0.01, now 0.5" "the changes named"
cmp -s "$TMP/manifest.before" "$TMP/corrupt/manifest.json" && cmp -s "$TMP/train.before" "$TMP/corrupt/train.csv" && ok "manifest and train.csv untouched by the refused resume" || bad "manifest: $(grep -E 'status|reason' "$TMP/corrupt/manifest.json")"
# a longer run of the same configuration continues
rn 2 "$SRC/configs/node-fit.cfg" "${args[@]}" --set train.iterations=260 --set "run.dir=\"$TMP/corrupt\""
expect_status 0 "the same configuration with more iterations continues the run"
grep -q "resumed from the checkpoint of step 200" "$out" && ok "it resumed from step 200" || bad "not resumed: $(head -3 "$out")"
# a notice that reaches jobs/slurm/run-resnode.sh while its ranks are still
# starting (Slurm may send --signal's notice at the job's start): it is passed
# on once they are up (the run's manifest written), so they checkpoint and
# stop. It used to be passed on at once and kill ranks that had no handler
# yet (here: ranks that take 2 s to start), and the job hung on the others.
printf '#!/usr/bin/env bash\nsleep 2\nexec %s "$@"\n' "$BIN" > "$TMP/slow-start"
chmod +x "$TMP/slow-start"
SLURM_NTASKS=2 RESNODE_LAUNCHER=mpirun RESNODE_BIN=$TMP/slow-start RESNODE_ANALYSE=0 bash "$SRC/jobs/slurm/run-resnode.sh" "$TMP/early" "$SRC/configs/node-fit.cfg" --set train.iterations=20000 --set output.plot=false > "$TMP/early.out" 2>&1 &
pid=$!
sleep 0.5
kill -USR1 $pid
wait $pid
grep -q '"status": "preempted"' "$TMP/early/manifest.json" 2> /dev/null && grep -q "signal received: checkpoint of" "$TMP/early.out" && ok "a notice while the ranks start: passed on once they are up; they checkpoint and stop" || bad "early notice: $(grep -m3 -E 'signal|exited|status' "$TMP/early.out" "$TMP/early/manifest.json" 2>&1)"
finish
