#!/usr/bin/env bash
# The catalogue (analysis/runs, docs/reference.md "Finding runs"): run
# directories made here (two finished node-fits that differ in two keys, an
# ensemble, a cifar run, a preempted run, a failed one, one SIGKILLed, a
# study's two points, a damaged manifest, one from a newer version, one of
# version 1, a directory that is no run) are indexed into SQLite; the rows,
# `list --where` and `--sort`, `compare`'s differing keys, incremental
# re-indexing and the index's bad input are checked. The expected metrics are
# computed here from the runs' own CSVs, not by the catalogue's code. The
# heartbeat: it advances while a run lives; a SIGKILLed run is stale, with
# its last heartbeat, in the list and in --resume's message.
. "$(dirname "$0")/lib.sh"
RUNS=$(dirname "$BIN")/resnode-runs
PY=$(python_with numpy)
if [ -z "$PY" ] || ! "$PY" -c 'import sqlite3, matplotlib' > /dev/null 2>&1; then
  echo "skipped: no Python 3 with numpy, matplotlib and sqlite3"
  exit 0
fi
R=$TMP/runs
mkdir -p "$R"
NF=("$SRC/configs/node-fit.cfg" --set train.iterations=30 --set train.log_every=10 --set output.plot=false)
# sql QUERY: one value a line from the index
sql() { "$PY" -c 'import sqlite3, sys; [print("|".join("" if v is None else str(v) for v in r)) for r in sqlite3.connect(sys.argv[1]).execute(sys.argv[2])]' "$R/runs.sqlite" "$1"; }

rn 2 "${NF[@]}" --set "run.dir=\"$R/fit-a\""
expect_status 0 "run a"
rn 2 "${NF[@]}" --set train.lr=0.005 --set train.iterations=40 --set "run.dir=\"$R/fit-b\""
expect_status 0 "run b (train.lr and train.iterations differ)"
rn 2 "$SRC/configs/ensemble.cfg" --set ensemble.members=4 --set 'ensemble.depths=[2,4]' --set sgd.steps=20 --set "run.dir=\"$R/ens\""
expect_status 0 "an ensemble"
"${RN_MAKE_CIFAR:?}" "$TMP/cifar" 150 > /dev/null || bad "no CIFAR files"
rn 2 "$SRC/configs/cifar-small.cfg" --set "data.dir=\"$TMP/cifar\"" --set data.max_train=150 --set model.channels=4 --set 'model.depths=[2]' --set train.epochs=1 --set train.batch=50 --set train.eval_batch=75 --set "run.dir=\"$R/cifar\""
expect_status 0 "a cifar run"
RESNODE_TEST_STOP_AT=step:10 rn 2 "${NF[@]}" --set "run.dir=\"$R/stopped\""
expect_status 3 "a preempted run"
rn 2 "${NF[@]}" --set 'model.depth="resnet"' --set model.N=15 --set 'train.optimizer="sgd"' --set train.lr=1000 --set "run.dir=\"$R/diverged\""
expect_status 4 "a failed run"
# a study of two points
cat > "$TMP/study.cfg" <<EOF
@include "$SRC/configs/node-fit.cfg"
train = { iterations = 20; log_every = 10; };
output = { plot = false; };
study = { dir = "$R/st"; axes = { train = { lr = [0.01, 0.02]; }; }; };
EOF
rn 2 "$TMP/study.cfg"
expect_status 0 "a study of two points"

# the heartbeat: rewritten while the run lives (every second here), then SIGKILL
K=$R/killed
RESNODE_HEARTBEAT_SECONDS=1 mpirun --bind-to none -x RESNODE_HEARTBEAT_SECONDS -n 2 "$BIN" "$SRC/configs/node-fit.cfg" --set train.iterations=10000000 --set "run.dir=\"$K\"" > /dev/null 2>&1 &
pid=$!
beat() { sed -n 's/.*"heartbeat": {"time": "\([^"]*\)".*"steps_done": \([0-9]*\).*/\1 \2/p' "$K/manifest.json" 2> /dev/null; }
first=""
for _ in $(seq 1 600); do
  first=$(beat)
  [ -n "$first" ] && [ "${first#* }" -gt 0 ] && break
  sleep 0.05
done
later=$first
for _ in $(seq 1 600); do
  later=$(beat)
  [ "${later%% *}" != "${first%% *}" ] && break
  sleep 0.05
done
[ -n "$first" ] && [ "${later%% *}" != "${first%% *}" ] && [ "${later#* }" -gt "${first#* }" ] && ok "the heartbeat advances while the run lives: $first -> $later (time, steps done)" || bad "heartbeat: '$first' then '$later'"
"$RUNS" list "$R" --where 'status = running' --columns status > "$TMP/alive.out" 2>&1
grep -q "^$K *running" "$TMP/alive.out" && ok "a live run is listed running" || bad "live run: $(cat "$TMP/alive.out")"
pkill -9 -f "run.dir=\"$K\""
wait $pid 2> /dev/null
last_beat=$(sed -n 's/.*"heartbeat": {"time": "\([^"]*\)".*/\1/p' "$K/manifest.json")
cp -r "$K" "$R/elsewhere" # the same, as if run on another host (its lock not visible here)
sed -i 's/^pid \([0-9]*\) on [^ ]*/pid \1 on elsewhere-node/' "$R/elsewhere/.lock"
sed -i 's/"every_s": 1,/"every_s": 3600,/' "$R/elsewhere/manifest.json" # a beat an hour: its heartbeat is fresh

# bad directories
cp -r "$R/fit-a" "$R/damaged" && head -c 200 "$R/fit-a/manifest.json" > "$R/damaged/manifest.json"
cp -r "$R/fit-a" "$R/newer" && sed -i 's/"manifest_version": 2/"manifest_version": 99/' "$R/newer/manifest.json"
cp -r "$R/fit-a" "$R/old" && sed -i '/"manifest_version"/d; /"heartbeat"/d' "$R/old/manifest.json"
mkdir -p "$R/notes" && echo hi > "$R/notes/readme.txt"

"$RUNS" index "$R" > "$TMP/index.out" 2> "$TMP/index.err"
status=$?
err=$TMP/index.err
expect_status 0 "resnode-runs index"
grep -q "skipped $R/damaged: manifest.json is damaged or half-written" "$TMP/index.err" && grep -q "skipped $R/newer: manifest_version 99 is from a newer" "$TMP/index.err" &&
  grep -q "skipped $R/notes: not a run directory" "$TMP/index.err" && ok "a damaged manifest, a newer one and a directory that is no run: one line each, naming it" || bad "skip lines: $(cat "$TMP/index.err")"
[ "$(grep -c skipped "$TMP/index.err")" -eq 3 ] && ok "nothing else skipped" || bad "$(grep -c skipped "$TMP/index.err") skipped"
grep -q "note $R/old: manifest version 1" "$TMP/index.err" && ok "a version-1 manifest is indexed, with a note" || bad "no note of the old manifest"
[ "$(sql "SELECT count(*) FROM runs")" -eq 11 ] && ok "11 runs indexed" || bad "runs: $(sql 'SELECT id, status FROM runs')"
want="cifar|done
diverged|failed
elsewhere|running
ens|done
fit-a|done
fit-b|done
killed|stale
old|done
st/points/lr=0.01-*|done
st/points/lr=0.02-*|done
stopped|preempted"
got=$(sql "SELECT id, status FROM runs ORDER BY id" | sed 's/-[0-9a-f]\{8\}|/-*|/')
[ "$(echo "$got" | grep -v '^st/points')" = "$(echo "$want" | grep -v '^st/points')" ] && [ "$(echo "$got" | grep -c '^st/points/lr=0.0[12]-\*|done')" -eq 2 ] &&
  ok "each run's status: done, failed, preempted, stale (SIGKILLed), running (another host, fresh heartbeat)" || bad "statuses: $got"
[ "$(sql "SELECT study IS NOT NULL, point LIKE 'lr=%' FROM runs WHERE id LIKE 'st/points/%'" | sort -u)" = "1|1" ] && ok "the study's points name their study and point" || bad "study columns: $(sql "SELECT study, point FROM runs WHERE id LIKE 'st/%'")"
[ "$(sql "SELECT heartbeat FROM runs WHERE id = 'killed'")" = "$last_beat" ] && sql "SELECT reason FROM runs WHERE id = 'killed'" | grep -q "no process holds its lock; last heartbeat $last_beat" &&
  ok "the SIGKILLed run: stale, with its last heartbeat ($last_beat)" || bad "killed: $(sql "SELECT status, reason, heartbeat FROM runs WHERE id = 'killed'")"

# params, typed; metrics from the runs' own CSVs
[ "$(sql "SELECT value, type FROM params WHERE run_id = 'fit-b' AND key = 'train.lr'")" = "0.005|float" ] && [ "$(sql "SELECT value, type FROM params WHERE run_id = 'fit-b' AND key = 'train.iterations'")" = "40|int" ] &&
  [ "$(sql "SELECT value FROM params WHERE run_id = 'cifar' AND key = 'model.depths'")" = "[2]" ] && [ "$(sql "SELECT value FROM params WHERE run_id = 'fit-a' AND key = 'model.field.1.activation'")" = "tanh" ] &&
  ok "params: every resolved key, flattened and typed" || bad "params: $(sql "SELECT key, value, type FROM params WHERE run_id = 'fit-b' AND key LIKE 'train.%'")"
close() { awk -v a="$1" -v b="$2" 'BEGIN { d = a - b; if (d < 0) d = -d; s = (a < 0 ? -a : a); exit !(d <= 1e-6 * (s > 1e-12 ? s : 1e-12)) }'; }
for run in fit-a fit-b; do
  want=$(tail -1 "$R/$run/train.csv" | cut -d, -f6)
  got=$(sql "SELECT value FROM metrics WHERE run_id = '$run' AND key = 'final_loss'")
  close "$got" "$want" && ok "$run: final_loss $got = train.csv's last loss" || bad "$run: final_loss $got, train.csv $want"
done
want=$(awk -F, '$1 == "e_theta" { print $2 }' "$R/ens/rates.csv")
got=$(sql "SELECT value FROM metrics WHERE run_id = 'ens' AND key = 'alpha_e_theta'")
close "$got" "$want" && ok "ensemble: alpha_e_theta $got = rates.csv" || bad "ensemble rate $got, rates.csv $want"
last=$(tail -n +2 "$R/ens/records.csv" | cut -d, -f3 | sort -g | tail -1)
deepest=$(awk -F, -v s="$last" 'NR > 1 && $3 == s { print $2 }' "$R/ens/records.csv" | sort -g | tail -1)
want=$(awk -F, -v s="$last" -v N="$deepest" 'NR > 1 && $3 == s && $2 == N { t += $5; k++ } END { print t / k }' "$R/ens/records.csv")
got=$(sql "SELECT value FROM metrics WHERE run_id = 'ens' AND key = 'final_loss'")
close "$got" "$want" && ok "ensemble: final_loss $got = the mean risk at the last step and the deepest N" || bad "ensemble final_loss $got, records.csv $want"
n_test=$(grep -o '[0-9]* test images from' "$R/cifar/log.txt" | cut -d' ' -f1)
read -r want lo hi < <(awk -F, -v n="$n_test" 'NR > 1 && $4 == "resnet" && $3 == 2 { s += $7; k++ } END { p = s / k; h = 1.959963984540054 * sqrt(p * (1 - p) / (n * k)); printf "%.15g %.15g %.15g\n", p, p - h, p + h }' "$R/cifar/final.csv")
read -r got glo ghi < <(sql "SELECT value, ci_low, ci_high FROM metrics WHERE run_id = 'cifar' AND key = 'test_acc_N2'" | tr '|' ' ')
close "$got" "$want" && close "$glo" "$lo" && close "$ghi" "$hi" && ok "cifar: test_acc_N2 $got [$glo, $ghi] = final.csv's mean over folds, binomial 95% interval on $n_test test images" || bad "cifar accuracy $got [$glo, $ghi], expected $want [$lo, $hi]"
want=$("$PY" -c 'import json, sys; print(max(json.load(open(sys.argv[1]))["peak_rss_mb"]))' "$R/fit-a/manifest.json")
close "$(sql "SELECT value FROM metrics WHERE run_id = 'fit-a' AND key = 'peak_rss_mb'")" "$want" && sql "SELECT key FROM metrics WHERE run_id = 'fit-a'" | grep -qx wall_s && ok "peak memory (the manifest's largest rank) and wall time" || bad "fit-a metrics: $(sql "SELECT key, value FROM metrics WHERE run_id = 'fit-a'")"
[ "$(sql "SELECT bytes, kind FROM artifacts WHERE run_id = 'fit-a' AND path = 'train.csv'")" = "$(stat -c %s "$R/fit-a/train.csv")|table" ] && sql "SELECT path FROM artifacts WHERE run_id = 'fit-a'" | grep -qx 'checkpoints/' && ok "artifacts: the files with their sizes, the subdirectories" || bad "artifacts: $(sql "SELECT * FROM artifacts WHERE run_id = 'fit-a'")"

# list: --where, --sort, --csv
"$RUNS" list "$R" --where 'status = done and experiment = node-fit' --sort final_loss --csv > "$TMP/list.csv" 2> /dev/null
want=$(for run in fit-a fit-b old; do echo "$(tail -1 "$R/$run/train.csv" | cut -d, -f6) $run"; done; for p in "$R"/st/points/*/; do echo "$(tail -1 "$p/train.csv" | cut -d, -f6) st/points/$(basename "$p")"; done)
want=$(echo "$want" | sort -g | cut -d' ' -f2 | sed "s|^|$R/|")
got=$(tail -n +2 "$TMP/list.csv" | cut -d, -f1)
[ "$got" = "$want" ] && ok "list --where 'status = done and experiment = node-fit' --sort final_loss: the five, by their train.csv's last loss" || bad "list order: $got; expected $want"
"$RUNS" list "$R" --where 'train.lr = 0.005' --csv 2> /dev/null | tail -n +2 | cut -d, -f1 > "$TMP/lr.txt"
[ "$(cat "$TMP/lr.txt")" = "$R/fit-b" ] && ok "list --where 'train.lr = 0.005': fit-b alone" || bad "train.lr: $(cat "$TMP/lr.txt")"
"$RUNS" list "$R" --where '(status = stale or status = failed) and not experiment ~ ens*' --sort=-run --csv 2> /dev/null | tail -n +2 | cut -d, -f1 | tr '\n' ' ' > "$TMP/sf.txt"
[ "$(cat "$TMP/sf.txt")" = "$R/killed $R/diverged " ] && ok "parentheses, not, a glob, a descending sort" || bad "stale or failed: $(cat "$TMP/sf.txt")"
"$RUNS" list "$R" --where 'model.activaton = relu' > /dev/null 2> "$TMP/e1"
status=$?
err=$TMP/e1
expect_status 2 "an unknown key in --where"
grep -q "unknown key 'model.activaton'; did you mean 'model.activation'" "$TMP/e1" && ok "it suggests the key" || bad "message: $(cat "$TMP/e1")"
"$RUNS" list "$R" --where 'status done' > /dev/null 2> "$TMP/e2"
[ $? -eq 2 ] && grep -q "expected KEY OP VALUE" "$TMP/e2" && ok "a malformed --where: exit 2, naming what was expected" || bad "malformed: $(cat "$TMP/e2")"
"$RUNS" list "$R" --columns status,heartbeat,reason --where 'status = running' > "$TMP/running.out" 2> /dev/null
grep -q "^$R/elsewhere *running *$last_beat" "$TMP/running.out" && ok "a run on another host with a fresh heartbeat stays running" || bad "elsewhere: $(cat "$TMP/running.out")"
"$RUNS" list "$R" --stale-after 0 --columns status,reason --where 'status = stale' > "$TMP/stale.out" 2> /dev/null
grep -q "^$R/elsewhere *stale *died without a status: last heartbeat $last_beat, [0-9]* s ago (more than 0 s)" "$TMP/stale.out" && ok "... and stale once its heartbeat is older than --stale-after" || bad "stale-after: $(cat "$TMP/stale.out")"

# compare
(cd "$TMP" && "$RUNS" compare "$R/fit-a" "$R/fit-b") > "$TMP/cmp.out" 2>&1
status=$?
err=$TMP/cmp.out
expect_status 0 "compare fit-a fit-b"
diffkeys=$(sed -n '/^config keys that differ/,/^$/p' "$TMP/cmp.out" | sed -n '3,$p' | awk 'NF { print $1 }' | tr '\n' ' ')
[ "$diffkeys" = "train.iterations train.lr " ] && ok "the keys that differ: $diffkeys" || bad "differing keys: '$diffkeys'"
grep -q "final_loss *$(sql "SELECT printf('%.4g', value) FROM metrics WHERE run_id = 'fit-a' AND key = 'final_loss'") *$(sql "SELECT printf('%.4g', value) FROM metrics WHERE run_id = 'fit-b' AND key = 'final_loss'")" "$TMP/cmp.out" && [ -s "$TMP/compare.png" ] &&
  ok "the metrics side by side, the curves in compare.png" || bad "compare: $(cat "$TMP/cmp.out")"
"$RUNS" compare "$R/fit-a" "$R/damaged" > /dev/null 2> "$TMP/e3"
[ $? -eq 2 ] && grep -q "$R/damaged: manifest.json is damaged" "$TMP/e3" && ok "compare of a damaged run: exit 2, naming it" || bad "compare damaged: $(cat "$TMP/e3")"

# incremental: one more run, one run removed
rn 2 "${NF[@]}" --set train.lr=0.02 --set "run.dir=\"$R/fit-c\""
expect_status 0 "run c"
rm -rf "$R/stopped"
"$RUNS" index "$R" > "$TMP/index2.out" 2> /dev/null
grep -q ": 1 new, 0 updated, 10 unchanged, 1 removed, 3 skipped" "$TMP/index2.out" && [ "$(sql "SELECT count(*) FROM runs")" -eq 11 ] && [ "$(sql "SELECT count(*) FROM params WHERE run_id = 'stopped'")" -eq 0 ] &&
  ok "re-indexing reads the new run alone and drops the removed one: $(cat "$TMP/index2.out")" || bad "incremental: $(cat "$TMP/index2.out")"

# --resume of the SIGKILLed run says stale, with the heartbeat
rn 2 --resume "$K" --set train.iterations=60
grep -q "the previous attempt is stale: it ended without a status, its last heartbeat at $last_beat" "$out" && ok "--resume of it says stale, with the heartbeat's time" || bad "resume: $(head -3 "$out") $(head -3 "$err")"

# the index's own bad input
echo "not a database" > "$TMP/text.sqlite"
"$RUNS" list "$R" --index "$TMP/text.sqlite" > /dev/null 2> "$TMP/e4"
[ $? -eq 2 ] && grep -q "$TMP/text.sqlite: not a resnode-runs index" "$TMP/e4" && ok "an index that is no SQLite file: exit 2" || bad "text index: $(cat "$TMP/e4")"
"$PY" -c 'import sqlite3, sys; sqlite3.connect(sys.argv[1]).execute("CREATE TABLE t (x)")' "$TMP/other.sqlite"
"$RUNS" list "$R" --index "$TMP/other.sqlite" > /dev/null 2> "$TMP/e5"
[ $? -eq 2 ] && grep -q "$TMP/other.sqlite is an SQLite file of something else" "$TMP/e5" && ok "another program's SQLite file: exit 2" || bad "other index: $(cat "$TMP/e5")"
"$PY" -c '
import sqlite3, sys, time
db = sqlite3.connect(sys.argv[1], isolation_level=None)
db.execute("BEGIN EXCLUSIVE")
open(sys.argv[2], "w").close()
time.sleep(120)' "$R/runs.sqlite" "$TMP/locked" &
holder=$!
for _ in $(seq 1 200); do [ -f "$TMP/locked" ] && break; sleep 0.05; done
"$RUNS" list "$R" > /dev/null 2> "$TMP/e6"
code=$?
kill $holder 2> /dev/null
wait $holder 2> /dev/null
[ $code -eq 2 ] && grep -q "runs.sqlite is locked by another process" "$TMP/e6" && ok "an index locked by another process: exit 2, saying so" || bad "locked: exit $code, $(cat "$TMP/e6")"
finish
