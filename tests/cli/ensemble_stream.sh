#!/usr/bin/env bash
# Streamed records (issue 11): the statistics are computed as each record is
# reached and the parameters are saved only as ensemble.save_parameters asks.
# - "none", "final" and "every" give the same tables; "final" writes the last
#   record only, bitwise the same as "every"'s; "none" writes no parameters.
# - stats.csv (from the distributed M x M Gram matrix) equals numpy's errors
#   recomputed from the saved parameters, at every record and depth.
# - analysis/convergence gives the same rates from gram.csv alone as from the
#   parameters; merging an array's runs needs "every" and says so; a damaged
#   parameter file is refused by name.
. "$(dirname "$0")/lib.sh"
# (the CSV arrays: output.arrays = "hdf5" is tests/cli/ensemble_hdf5.sh's)
base=(--set ensemble.members=6 --set 'ensemble.depths=[2, 4, 8]' --set sgd.steps=30 --set output.plot=false --set parallel.groups=2 --set 'output.arrays="csv"')
for mode in none final every; do
  rn 2 "$SRC/configs/ensemble.cfg" "${base[@]}" --set "ensemble.save_parameters=\"$mode\"" --set "run.dir=\"$TMP/$mode\""
  expect_status 0 "save_parameters = $mode"
done
grep -q "parameters saved: every" "$TMP/every/log.txt" && ok "the log names the mode" || bad "log: $(grep -m1 'parameters saved' "$TMP/every/log.txt")"
[ "$(ls "$TMP/every/snapshots" | tr '\n' ' ')" = "theta-step0.bin theta-step10.bin theta-step20.bin theta-step30.bin " ] && ok "every: a parameter file a record" || bad "every: $(ls "$TMP/every/snapshots")"
[ "$(ls "$TMP/final/snapshots" | tr '\n' ' ')" = "theta-step30.bin " ] && ok "final: the last record only" || bad "final: $(ls "$TMP/final/snapshots")"
[ -z "$(ls "$TMP/none/snapshots")" ] && ok "none: no parameter files" || bad "none: $(ls "$TMP/none/snapshots")"
cmp -s "$TMP/final/snapshots/theta-step30.bin" "$TMP/every/snapshots/theta-step30.bin" && ok "final's file bitwise equals every's last" || bad "final's parameters differ from every's"
for f in records.csv stats.csv gram.csv sup.csv rates.csv laws.csv spectrum.csv; do
  cmp -s "$TMP/none/$f" "$TMP/every/$f" && cmp -s "$TMP/final/$f" "$TMP/every/$f" && ok "$f the same in the three modes" || bad "$f differs between the modes"
done

# the streamed statistics against numpy on the saved parameters (the serial path)
/usr/bin/python3 - "$TMP/every" > "$TMP/numpy.txt" 2>&1 <<'PY'
import csv, glob, struct, sys
import numpy as np
run = sys.argv[1]
theta = {}
for name in glob.glob(run + "/snapshots/theta-step*.bin"):
    raw = open(name, "rb").read()
    magic, version, rows, p, step, time = struct.unpack_from("<8sIiqqd", raw)
    assert magic == b"RNENSP\x00\x01" and version == 1, magic
    table = [struct.unpack_from("<iiQ", raw, 40 + 16 * r) for r in range(rows)]
    values = np.frombuffer(raw, "<f8", rows * p, 40 + 16 * rows).reshape(rows, p)
    for (member, N, _), v in zip(table, values):
        theta[(step, N, member)] = v
rows = list(csv.DictReader(open(run + "/stats.csv")))
worst = 0.0
for r in rows:
    step, N = int(r["step"]), int(r["N"])
    d = np.array([theta[(step, 0, m)] - theta[(step, N, m)] for m in range(6)])
    e = np.linalg.norm(d.mean(axis=0))
    s = np.linalg.norm(d, axis=1).mean()
    se = np.sqrt(((d - d.mean(axis=0)) ** 2).sum() / 5 / 6)
    # e_theta and s_theta are written with 11 digits, the standard error with 5
    for got, want, digits in ((float(r["e_theta"]), e, 1e-9), (float(r["s_theta"]), s, 1e-9), (float(r["e_theta_se"]), se, 1e-4)):
        worst = max(worst, abs(got - want) / max(abs(want), 1e-300) / digits)
print("%d rows, worst difference %.2f of the digits written" % (len(rows), worst))
sys.exit(0 if len(rows) == 12 and worst < 1 else 1)
PY
[ $? -eq 0 ] && ok "stats.csv equals numpy on the parameters ($(cat "$TMP/numpy.txt"))" || bad "stats.csv vs numpy: $(cat "$TMP/numpy.txt")"

# the analysis from gram.csv alone equals the one from the parameters
/usr/bin/python3 "$SRC/analysis/convergence" --out "$TMP" "$TMP/none" > "$TMP/gram.txt" 2>&1
[ $? -eq 0 ] && grep -q "errors from gram.csv" "$TMP/gram.txt" && ok "analysis without parameter files, from gram.csv" || bad "analysis of the none run: $(cat "$TMP/gram.txt")"
grep -q "no convergence-laws.png" "$TMP/gram.txt" && ok "says why there is no laws figure" || bad "no word on the laws figure: $(tail -2 "$TMP/gram.txt")"
/usr/bin/python3 "$SRC/analysis/convergence" --from-snapshots --out "$TMP" "$TMP/every" > "$TMP/snap.txt" 2>&1
[ $? -eq 0 ] && grep -q "errors from the parameter snapshots" "$TMP/snap.txt" && ok "analysis from the parameters" || bad "analysis from the parameters: $(cat "$TMP/snap.txt")"
[ "$(sed -n 2,5p "$TMP/gram.txt")" = "$(sed -n 2,5p "$TMP/snap.txt")" ] && ok "the same rates and bootstrap intervals: $(sed -n 3p "$TMP/gram.txt" | tr -s ' ')" || bad "rates differ: $(sed -n 2,5p "$TMP/gram.txt") vs $(sed -n 2,5p "$TMP/snap.txt")"

# an array's runs: merged from "every", refused without it
rn 2 "$SRC/configs/ensemble.cfg" "${base[@]}" --set ensemble.first_member=6 --set 'ensemble.save_parameters="every"' --set "run.dir=\"$TMP/every2\""
expect_status 0 "a second task (members 6..11)"
/usr/bin/python3 "$SRC/analysis/convergence" --out "$TMP" "$TMP/every" "$TMP/every2" > "$TMP/merge.txt" 2>&1
[ $? -eq 0 ] && grep -q "12 members" "$TMP/merge.txt" && ok "two tasks merged (12 members)" || bad "merge: $(cat "$TMP/merge.txt")"
rn 2 "$SRC/configs/ensemble.cfg" "${base[@]}" --set ensemble.first_member=6 --set "run.dir=\"$TMP/final2\""
/usr/bin/python3 "$SRC/analysis/convergence" --out "$TMP" "$TMP/final" "$TMP/final2" > "$TMP/nomerge.txt" 2>&1
status=$?
[ $status -eq 2 ] && grep -q 'ensemble.save_parameters = "every"' "$TMP/nomerge.txt" && ok "merging runs without every record's parameters: exit 2, names the setting" || bad "merge of final-only runs: exit $status, $(cat "$TMP/nomerge.txt")"

# a damaged parameter file is named
cp -r "$TMP/every" "$TMP/damaged"
printf '\x7f' | dd of="$TMP/damaged/snapshots/theta-step20.bin" bs=1 seek=1000 conv=notrunc 2> /dev/null
/usr/bin/python3 "$SRC/analysis/convergence" --from-snapshots --out "$TMP" "$TMP/damaged" > "$TMP/damaged.txt" 2>&1
status=$?
[ $status -eq 2 ] && grep -q "theta-step20.bin: row .* fails its checksum" "$TMP/damaged.txt" && ok "a damaged file: exit 2, named" || bad "damaged file: exit $status, $(cat "$TMP/damaged.txt")"

# the limit's own error is checked at the end (twice the steps, or tighter
# tolerances): small for the config's dopri5, and a warning when the limit is
# as coarse as the ResNets it is the limit of (Euler with 2 steps = N = 2)
grep -q "the limit's own error (dopri5" "$TMP/every/log.txt" && ! grep -q "warning: the ODE limit" "$TMP/every/log.txt" && [ "$(wc -l < "$TMP/every/limit.csv")" -eq 2 ] && ok "limit.csv and the log: $(grep -o "the limit's own error.*" "$TMP/every/log.txt" | cut -c1-120)" || bad "limit check: $(grep limit "$TMP/every/log.txt")"
rn 2 "$SRC/configs/ensemble.cfg" "${base[@]}" --set 'ode.solver="euler"' --set ode.adaptive=false --set ode.steps=2 --set "run.dir=\"$TMP/euler\""
expect_status 0 "an Euler limit with 2 steps"
grep -q "warning: the ODE limit's error .* raise ode.steps" "$TMP/euler/log.txt" && ok "a coarse limit is warned about" || bad "no warning: $(grep -i limit "$TMP/euler/log.txt")"

rn 2 "$SRC/configs/ensemble.cfg" "${base[@]}" --set 'ensemble.save_parameters="sometimes"'
expect_status 2 "an unknown save_parameters"
expect_message 'ensemble.save_parameters' "names the key"
finish
