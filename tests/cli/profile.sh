#!/usr/bin/env bash
# Where the time goes (include/resnode/core/profile.h): -log_view, its CSV
# and flamegraph forms show the application's events and stages through the
# normal command line; the manifest's profile counts what the run did (an
# optimizer step and a gradient reduction an iteration), its own times
# partition the wall time, and its flops are the dense layers' closed form
# (2 flops a multiply-add, on one rank); PETSc's
# log and ours agree on them; a cifar run writes a profile per unit whose
# optimizer steps are the unit's training steps; --plan predicts the phase
# shares; the analysis commands draw profile.png.
. "$(dirname "$0")/lib.sh"
PY=$(python_with numpy)
NF=("$SRC/configs/node-fit.cfg" --set train.iterations=20 --set output.plot=false)
ITER=20

rn 2 "${NF[@]}" --set "run.dir=\"$TMP/nf\"" -log_view
expect_status 0 "node-fit with -log_view"
for e in RnOdeSolve RnOdeAdjoint RnOdeRHS RnOdeVJP RnNetForward RnNetBackward RnDense RnActivation RnOptimStep RnGradReduce RnCheckpoint TSStep TSAdjointStep; do
  grep -q "^$e " "$out" || missing="${missing:-} $e"
done
[ -z "${missing:-}" ] && ok "-log_view shows the application's events beside TSStep and TSAdjointStep" || bad "-log_view lacks:$missing"
grep -q -- "--- Event Stage [0-9]: RnSetUp" "$out" && grep -q -- "--- Event Stage [0-9]: RnTraining" "$out" && grep -q -- "--- Event Stage [0-9]: RnOutput" "$out" && ok "... in the stages set-up, training and output" || bad "stages: $(grep 'Event Stage' "$out")"
grep -q "where the time went (rank 0, own time of each phase): Rn" "$out" && ok "the log says where the time went: $(grep -o 'where the time went.*' "$out" | cut -c1-100)" || bad "no profile line in the log"

rn 2 "${NF[@]}" --set "run.dir=\"$TMP/csv\"" -log_view ":$TMP/log.csv:ascii_csv"
expect_status 0 "-log_view :file.csv:ascii_csv"
rn 2 "${NF[@]}" --set "run.dir=\"$TMP/flame\"" -log_view ":$TMP/flame.txt:ascii_flamegraph"
expect_status 0 "-log_view :file.txt:ascii_flamegraph"
grep -q "^RnOdeSolve;TSStep;TSFunctionEval;RnOdeRHS;RnNetForward;RnDense [0-9]" "$TMP/flame.txt" && grep -q "^RnOdeAdjoint;TSAdjointStep;.*RnOdeVJP;RnNetBackward;RnDense [0-9]" "$TMP/flame.txt" &&
  ok "the flamegraph nests the net's layers in the right-hand side in TSStep in the solve, and the VJPs in TSAdjointStep" || bad "flamegraph: $(grep RnDense "$TMP/flame.txt" | head -3)"

if [ -z "$PY" ]; then
  echo "skipped: the manifest checks need Python 3 with numpy"
  finish
  exit 0
fi
rn 1 "${NF[@]}" --set "run.dir=\"$TMP/one\""
expect_status 0 "node-fit on one rank"
"$PY" - "$TMP/nf/manifest.json" "$TMP/csv/manifest.json" "$TMP/log.csv" "$ITER" "$TMP/one/manifest.json" > "$TMP/check.out" 2>&1 <<'PYEOF'
import csv, json, sys
m = json.load(open(sys.argv[1]))["profile"]
iters = int(sys.argv[4])
ev = m["events"]
fails = []
def check(cond, what):
    print(("ok: " if cond else "FAILED: ") + what)
for name in ("RnOptimStep", "RnGradReduce"):
    check(ev[name]["count"] == iters, "%s: %d calls, one an iteration (%d)" % (name, ev[name]["count"], iters))
own = sum(e["self_s"] for e in ev.values())
check(abs(own + m["other_s"] - m["wall_s"]) <= 1e-4 * m["wall_s"] + 1e-6 and m["other_s"] >= 0, "own times %.4g + other %.4g = wall %.4g" % (own, m["other_s"], m["wall_s"]))
check(all(e["self_s"] <= e["total_s"] + 1e-9 and e["self_min_s"] <= e["self_s"] + 1e-9 <= e["self_max_s"] + 2e-9 and 0 <= e["share"] <= 1 for e in ev.values()), "own <= total, min <= mean <= max, shares in [0, 1]")
# one rank: the field (cube, dense 2 -> 50, dense 50 -> 2) on the one trajectory: a forward 2 * (2*50 + 50*2) flops, a backward twice that;
# the reference solution of the data (cube, dense 2 -> 2: 8 flops a forward) is the rest of the forwards, one dense layer each
one = json.load(open(sys.argv[5]))["profile"]["events"]
nf, nb, nd = one["RnNetForward"]["count"], one["RnNetBackward"]["count"], one["RnDense"]["count"]
nref = 2 * nf + 2 * nb - nd
want = (8.0 * nref + 400.0 * (nf - nref) + 800.0 * nb) / 1e6
check(0 < nref < nf and abs(one["RnDense"]["mflop"] - want) <= 1e-5 * want, "RnDense on one rank: %.6g Mflop = 400 a forward (%d) + 800 a backward (%d) + 8 a reference forward (%d)" % (one["RnDense"]["mflop"], nf - nref, nb, nref))
check(abs(one["RnNetForward"]["mflop"] + one["RnNetBackward"]["mflop"] - want) <= 1e-5 * want, "the net's passes enclose the dense layers' flops")
# PETSc's log of the same kind of run: its flops of RnDense over all stages and ranks, against ours
c = json.load(open(sys.argv[2]))["profile"]["events"]
petsc = sum(float(r["FLOP"]) for r in csv.DictReader(open(sys.argv[3])) if r["Event Name"] == "RnDense" and r["Stage Name"] not in ("Main Stage",))
check(abs(petsc - 1e6 * c["RnDense"]["mflop"]) <= 1e-5 * petsc, "-log_view's RnDense flops in the run's stages (%.6g) = the manifest's (%.6g)" % (petsc, 1e6 * c["RnDense"]["mflop"]))
PYEOF
while IFS= read -r line; do
  case $line in
    ok:*) ok "${line#ok: }" ;;
    *) bad "${line#FAILED: }" ;;
  esac
done < "$TMP/check.out"

# a cifar run: a profile per unit; its optimizer steps are the unit's steps
"${RN_MAKE_CIFAR:?}" "$TMP/cifar" 150 > /dev/null || bad "no CIFAR files"
rn 2 "$SRC/configs/cifar-small.cfg" --set "data.dir=\"$TMP/cifar\"" --set data.max_train=150 --set model.channels=4 --set 'model.depths=[2]' --set train.epochs=2 --set train.batch=25 --set train.eval_batch=75 --set "run.dir=\"$TMP/cifar-run\"" -log_view ":$TMP/cifar-flame.txt:ascii_flamegraph"
expect_status 0 "a cifar run of 6 units"
n=0
for u in "$TMP"/cifar-run/units/*/; do
  steps=$(tail -1 "$u/epochs.csv" | cut -d, -f7)
  got=$("$PY" -c 'import json, sys; p = json.load(open(sys.argv[1])); e = p["events"]; print(e["RnOptimStep"]["count"], int(e["RnConvFwd"]["mflop"] > 0 and e["RnConvBwd"]["mflop"] > 0), p["ranks"])' "$u/profile.json" 2> /dev/null)
  [ "$got" = "$steps 1 2" ] && n=$((n + 1)) || bad "$(basename "$u"): profile says '$got', its epochs.csv $steps steps"
done
[ "$n" -eq 6 ] && ok "each of the 6 units: profile.json with its $steps optimizer steps and its convolutions' flops" || bad "$n of 6 unit profiles right"
grep -q "^RnEvaluation;RnNetForward;RnConvFwd [0-9]" "$TMP/cifar-flame.txt" && ok "the evaluations: their convolutions inside their event (flamegraph)" || bad "evaluation stage: $(grep -m3 '^RnEvaluation' "$TMP/cifar-flame.txt")"
(cd "$TMP" && "$(dirname "$BIN")/resnode-plot-cifar" "$TMP/cifar-run") > "$TMP/plot.out" 2>&1
[ -s "$TMP/cifar-run/profile.png" ] && grep -q "^## Where the time went" "$TMP/cifar-run/cifar-report.md" && grep -q "^| convolutions | " "$TMP/cifar-run/cifar-report.md" &&
  ok "resnode-plot-cifar: profile.png (a bar a unit) and the phase table in the report" || bad "cifar analysis: $(tail -3 "$TMP/plot.out")"
"$(dirname "$BIN")/resnode-plot-node-fit" "$TMP/nf" > "$TMP/plot2.out" 2>&1
[ -s "$TMP/nf/profile.png" ] && ok "resnode-plot-node-fit: profile.png" || bad "node-fit profile.png: $(tail -3 "$TMP/plot2.out")"

# --plan predicts the phase shares
rn 2 "$SRC/configs/cifar-small.cfg" --set "data.dir=\"$TMP/cifar\"" --set data.max_train=150 --set model.channels=4 --set 'model.depths=[2]' --set train.batch=25 --set "run.dir=\"$TMP/plan\"" --plan
expect_status 0 "--plan"
grep -q "plan: predicted phase shares (own time on rank 0 in the measured steps, set-up included): RnConv" "$out" && ok "--plan: $(grep -o 'predicted phase shares.*' "$out" | cut -c1-110)" || bad "--plan: no phase shares: $(grep plan: "$out" | tail -4)"
finish
