#!/usr/bin/env bash
# analysis/convergence on a run written here with known errors: member m's
# difference at depth N is (a / N) u + b_m(N), the b_m in +- pairs, so the
# weak error is exactly a / N (rate 1, every local slope 1) and the strong
# error and standard errors are set by b. At the deepest N the b_m are large:
# that depth is unresolved and must be left out of the fit. limit.csv says
# the limit's risk error is large against e_R at the deepest depths.
. "$(dirname "$0")/lib.sh"
PY=$(python_with numpy)
[ -n "$PY" ] && "$PY" -c "import matplotlib" 2> /dev/null || { echo "skipped: no Python 3 with numpy and matplotlib"; exit 0; }
mkdir -p "$TMP/run"
"$PY" - "$TMP/run" << 'PY'
import json, os, sys
import numpy as np
run = sys.argv[1]
M, depths, steps, eta, a = 8, [2, 4, 8, 16, 32], [0, 10, 20], 0.1, 1e-2
u = np.array([0.6, 0.8, 0.0])
rng = np.random.default_rng(5)
with open(os.path.join(run, "manifest.json"), "w") as f:
    json.dump({"experiment": "ensemble", "seed": 1, "status": "done"}, f)
rec = open(os.path.join(run, "records.csv"), "w")
gram = open(os.path.join(run, "gram.csv"), "w")
rec.write("member,N,step,time,risk,theta_norm\n")
gram.write("N,step,member_a,member_b,dot\n")
for j in steps:
    grow = j / steps[-1]  # the errors grow in t: the sup is at the last record
    for m in range(M):
        rec.write("%d,0,%d,%g,1.0,1.0\n" % (m, j, j * eta))
    for N in depths:
        size = 50 * a / N if N == depths[-1] else 0.05 * a / N
        half = [size * rng.standard_normal(3) for _ in range(M // 2)]
        d = [grow * (a / N * u + (half[m // 2] if m % 2 == 0 else -half[m // 2])) for m in range(M)]
        for m in range(M):
            # e_R: the risk difference a / N^2 exactly (rate 2) plus +- pairs
            rec.write("%d,%d,%d,%g,%.17g,1.0\n" % (m, N, j, j * eta, 1.0 - grow * (a / N ** 2 + (1e-6 if m % 2 else -1e-6)), ))
            for k in range(m, M):
                gram.write("%d,%d,%d,%d,%.17e\n" % (N, j, m, k, d[m] @ d[k]))
with open(os.path.join(run, "limit.csv"), "w") as f:
    f.write("solver,check,mean_risk_error,max_risk_error,N_deepest,e_R_deepest\nrk4,8 steps against 16,2e-6,3e-6,32,%g\n" % (a / 32 ** 2))
PY
"$PY" "$SRC/analysis/convergence" --bootstrap 200 "$TMP/run" > "$TMP/out.txt" 2>&1
expect_code() { [ "$1" -eq 0 ] && ok "$2" || bad "$2: $(cat "$TMP/out.txt")"; }
expect_code $? "the analysis runs"
cat "$TMP/out.txt"
row() { awk -F, -v q="$1" '$1 == q' "$TMP/run/convergence-rates.csv"; }
alpha=$(row e_theta | cut -d, -f2)
awk -v a="$alpha" 'BEGIN { exit !(a > 0.999 && a < 1.001) }' && ok "e_theta's rate is 1 over the resolved depths ($alpha)" || bad "e_theta rate: $(row e_theta)"
[ "$(row e_theta | cut -d, -f6)" = "2 4 8 16" ] && ok "N = 32 (unresolved) left out of the fit" || bad "fit depths: $(row e_theta)"
awk -F, '$1 == "e_theta" && $2 == 32 { exit !($5 == 0) } $1 == "e_theta" && $2 < 32 { if ($5 != 1) exit 1 }' "$TMP/run/convergence-depths.csv" && ok "resolution per depth" || bad "depths: $(cat "$TMP/run/convergence-depths.csv")"
awk -F, '$1 == "e_theta" && $3 < 32 { n++; if ($4 < 0.999 || $4 > 1.001 || !$7) exit 1 } END { exit !(n == 3) }' "$TMP/run/convergence-slopes.csv" && ok "local slopes 1, with 1 inside their intervals" || bad "slopes: $(grep e_theta "$TMP/run/convergence-slopes.csv")"
awk -F, '$1 == "e_R" && $3 < 32 { n++; if ($4 < 1.99 || $4 > 2.01 || $7) exit 1 } END { exit !(n == 3) }' "$TMP/run/convergence-slopes.csv" && ok "e_R's local slopes 2, 1 outside" || bad "e_R slopes: $(grep e_R "$TMP/run/convergence-slopes.csv")"
# limit's error 2e-6 >= a tenth of e_R = a / N^2 for N^2 >= 500 (N = 32 only)
awk -F, '$1 == "e_R" { if (($2 == 32) != ($6 == 1)) exit 1 }' "$TMP/run/convergence-depths.csv" && ok "N = 32 marked as limited by the ODE solve" || bad "solver-limited: $(grep e_R "$TMP/run/convergence-depths.csv")"
grep -q "limited by the ODE solve at N = 32" "$TMP/out.txt" && ok "and said" || bad "no word on the limit: $(cat "$TMP/out.txt")"
# the weak error less its noise: U (the mean off-diagonal Gram entry) and its
# jackknife error against a brute-force leave-one-out over gram.csv, and U
# against the known |E d|^2 = (a / N)^2 (the +- pairs' share is 1e-3 of it)
"$PY" - "$TMP/run" > "$TMP/weak.txt" 2>&1 <<'PY'
import csv, sys
import numpy as np
run, M, a = sys.argv[1], 8, 1e-2
G = {}
for r in csv.DictReader(open(run + "/gram.csv")):
    if r["step"] == "20":
        g = G.setdefault(int(r["N"]), np.zeros((M, M)))
        g[int(r["member_a"]), int(r["member_b"])] = g[int(r["member_b"]), int(r["member_a"])] = float(r["dot"])
rows = list(csv.DictReader(open(run + "/convergence-weak.csv")))
assert len(rows) == 5, rows
for r in rows:
    N, g = int(r["N"]), G[int(r["N"])]
    off = lambda keep: sum(g[i, j] for i in keep for j in keep if i != j) / (len(keep) * (len(keep) - 1))
    U = off(range(M))
    loo = np.array([off([i for i in range(M) if i != k]) for k in range(M)])
    se = np.sqrt((M - 1) / M * ((loo - loo.mean()) ** 2).sum())
    assert abs(float(r["U"]) - U) <= 1e-6 * abs(U) and abs(float(r["U_se"]) - se) <= 1e-5 * se, (r, U, se)
    if N < 32:
        assert abs(U / (a / N) ** 2 - 1) < 1e-2, (N, U, (a / N) ** 2)
print("U and its jackknife error = brute force at 5 depths; U = (a/N)^2 within 1% at the resolved ones")
PY
[ $? -eq 0 ] && ok "convergence-weak.csv: $(cat "$TMP/weak.txt")" || bad "convergence-weak.csv: $(cat "$TMP/weak.txt")"
grep -q "unresolved" "$TMP/run/convergence-report.md" && ok "the report marks the unresolved depth" || bad "report: $(cat "$TMP/run/convergence-report.md")"
finish
