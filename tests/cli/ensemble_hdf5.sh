#!/usr/bin/env bash
# The ensemble's large arrays in HDF5 (output.arrays = "hdf5", core/arrays.h):
# - gram.h5 read back by h5py equals gram.csv of the same run exactly, and
#   params.h5 the parameter snapshots (snapshots/theta-step<j>.bin) exactly;
#   float32 parameters are the float64 ones rounded;
# - named dimensions and attributes; every chunk checksummed (Fletcher32);
#   xarray (engine "h5netcdf") opens them where it is installed;
# - a 2-rank write (2 groups, MPI-IO, collective) equals the 1-rank write:
#   the parameters bitwise, the Gram matrices (sums over the parameter
#   columns, split over the ranks) to rounding; a run stopped mid-way and resumed equals the uninterrupted
#   one with exactly its records, also when the files had records beyond the
#   checkpoint (a kill after a record was written): no duplicate, none lost;
# - resnode-convergence gives the same report from HDF5 as from CSV, also
#   when it merges an array's runs; a damaged chunk, a damaged file and a
#   file with fewer records than the checkpoint are errors naming them;
# - studies/cifar-weak.cfg (docs/cifar-rate.md), shrunk: a point chosen by
#   its values alone, its gram.h5, and resnode-study over it.
. "$(dirname "$0")/lib.sh"
py=/usr/bin/python3
if ! $py -c "import h5py" 2> /dev/null; then
  echo "skipped: h5py is not installed (scripts/install-deps installs python3-h5py)"
  exit 0
fi
# 5 members x 4 units (3 depths and the limit) in 2 groups of 10: member 2's
# units are split between the groups, and so is its chunk of params.h5
base=("$SRC/configs/ensemble.cfg" --set ensemble.members=5 --set 'ensemble.depths=[2, 4, 8]' --set sgd.steps=30 --set output.plot=false
  --set 'ensemble.save_parameters="every"')
h5=(--set 'output.arrays="hdf5"')

rn 1 "${base[@]}" --set parallel.groups=1 --set 'output.arrays="csv"' --set "run.dir=\"$TMP/csv\""
expect_status 0 "CSV arrays, 1 rank"
rn 1 "${base[@]}" --set parallel.groups=1 "${h5[@]}" --set "run.dir=\"$TMP/one\""
expect_status 0 "HDF5 arrays, 1 rank"
rn 2 "${base[@]}" "${h5[@]}" --set parallel.groups=2 --set "run.dir=\"$TMP/two\""
expect_status 0 "HDF5 arrays, 2 ranks in 2 groups"
rn 2 "${base[@]}" "${h5[@]}" --set 'ensemble.save_precision="float32"' --set "run.dir=\"$TMP/f32\""
expect_status 0 "HDF5 arrays, float32 parameters"
[ -f "$TMP/one/gram.h5" ] && [ -f "$TMP/one/params.h5" ] && [ ! -e "$TMP/one/gram.csv" ] && [ -z "$(ls "$TMP/one/snapshots" 2> /dev/null)" ] && ok "gram.h5 and params.h5, no gram.csv or snapshot files" || bad "files: $(ls "$TMP/one" "$TMP/one/snapshots")"
for f in records.csv stats.csv sup.csv rates.csv laws.csv spectrum.csv; do
  cmp -s "$TMP/csv/$f" "$TMP/one/$f" || bad "$f differs between CSV and HDF5 arrays"
done
ok "the small tables are the same with either"

# h5py against the CSV outputs of the same run, exactly
$py - "$TMP/csv" "$TMP/one" "$TMP/f32" > "$TMP/h5py.txt" 2>&1 <<'PY'
import csv, glob, struct, sys
import h5py
import numpy as np
csv_run, h5_run, f32_run = sys.argv[1:]
g, p = h5py.File(h5_run + "/gram.h5", "r"), h5py.File(h5_run + "/params.h5", "r")
steps, Ns, members = list(g["step"][:]), list(g["N"][:]), list(g["member_a"][:])
M = 5
assert steps == [0, 10, 20, 30] and Ns == [2, 4, 8] and members == list(range(M)), (steps, Ns, members)
assert [d.label or d[0].name for d in g["gram"].dims] == ["/step", "/N", "/member_a", "/member_b"], [d[0].name for d in g["gram"].dims]
assert [d[0].name for d in p["theta"].dims] == ["/step", "/member", "/N", "/parameter"]
assert g["gram"].fletcher32 and p["theta"].fletcher32 and g["gram"].chunks == (1, 1, M, M), g["gram"].chunks
assert int(g.attrs["reference_N"][0]) == 0 and abs(float(g.attrs["eta"]) - 0.05) < 1e-15, dict(g.attrs)
assert np.array_equal(g["time"][:], np.array(steps) * 0.05)
G = g["gram"][:]
rows = list(csv.DictReader(open(csv_run + "/gram.csv")))
assert len(rows) == 4 * 3 * M * (M + 1) // 2, len(rows)
for r in rows:
    i, k, a, b = steps.index(int(r["step"])), Ns.index(int(r["N"])), int(r["member_a"]), int(r["member_b"])
    assert G[i, k, a, b] == float(r["dot"]) == G[i, k, b, a], r
theta = p["theta"][:]
pN, pm, pp = list(p["N"][:]), list(p["member"][:]), list(p["step"][:])
assert pN == [2, 4, 8, 0] and pp == steps, (pN, pp)
n = 0
for name in glob.glob(csv_run + "/snapshots/theta-step*.bin"):
    raw = open(name, "rb").read()
    _, _, nrows, width, step, _ = struct.unpack_from("<8sIiqqd", raw)
    table = [struct.unpack_from("<iiQ", raw, 40 + 16 * r) for r in range(nrows)]
    values = np.frombuffer(raw, "<f8", nrows * width, 40 + 16 * nrows).reshape(nrows, width)
    for (member, N, _), v in zip(table, values):
        assert np.array_equal(theta[pp.index(step), pm.index(member), pN.index(N)], v), (step, member, N)
        n += 1
assert n == 4 * M * 4, n
f32 = h5py.File(f32_run + "/params.h5", "r")["theta"]
assert f32.dtype == np.float32 and np.array_equal(f32[:], theta.astype(np.float32))
print("gram.h5 = gram.csv (%d rows), params.h5 = the snapshots (%d rows), float32 = float64 rounded" % (len(rows), n))
PY
[ $? -eq 0 ] && ok "h5py: $(cat "$TMP/h5py.txt")" || bad "h5py against CSV: $(cat "$TMP/h5py.txt")"
if $py -c "import xarray, h5netcdf" 2> /dev/null; then
  $py -c "
import sys, xarray
g = xarray.open_dataset(sys.argv[1] + '/gram.h5', engine='h5netcdf')
p = xarray.open_dataset(sys.argv[1] + '/params.h5', engine='h5netcdf')
assert g.gram.dims == ('step', 'N', 'member_a', 'member_b') and p.theta.dims == ('step', 'member', 'N', 'parameter')
assert float(g.gram.sel(N=4, step=30, member_a=1, member_b=1)) > 0
print(dict(p.sizes))" "$TMP/one" > "$TMP/xr.txt" 2>&1 && ok "xarray (h5netcdf) opens both by name: $(cat "$TMP/xr.txt")" || bad "xarray: $(cat "$TMP/xr.txt")"
else
  echo "  (xarray with h5netcdf is not installed here: h5py only)"
fi

# 2 ranks' parallel write against 1 rank's
h5same() { # RUN_A RUN_B [RTOL]: gram.h5 and params.h5 the same (lib.sh: h5_same)
  h5_same "$1/gram.h5" "$2/gram.h5" ${3:-} && h5_same "$1/params.h5" "$2/params.h5" ${3:-}
}
h5same "$TMP/one" "$TMP/two" 1e-12 && ok "2 ranks (MPI-IO, collective) write the parameters of 1 rank bitwise, the Gram matrices to 1e-12" || bad "2-rank HDF5 differs from 1-rank"

# stopped between units, resumed: the same records as the uninterrupted run
RESNODE_TEST_STOP_AT=unit:15 rn 2 "${base[@]}" "${h5[@]}" --set parallel.groups=2 --set "run.dir=\"$TMP/stop\""
expect_status 3 "stopped mid-way (at a unit between records)"
records=$($py -c "import h5py, sys; print(len(h5py.File(sys.argv[1], 'r')['step']))" "$TMP/stop/gram.h5")
[ "$records" -ge 1 ] && [ "$records" -lt 4 ] && ok "the stop came after $records of 4 records" || bad "records at the stop: $records"
cp -a "$TMP/stop" "$TMP/ahead"
cp -a "$TMP/stop" "$TMP/stopped"
rn 2 --resume "$TMP/stop"
expect_status 0 "resumed"
h5same "$TMP/two" "$TMP/stop" && ok "resumed: every dataset equals the uninterrupted run's, bitwise (no record twice, none lost)" || bad "resumed HDF5 differs from the uninterrupted run"
# a kill after records were written that the checkpoint does not hold: the files are ahead of it
cp "$TMP/stop/gram.h5" "$TMP/stop/params.h5" "$TMP/ahead/"
rn 2 --resume "$TMP/ahead"
expect_status 0 "resumed with files ahead of the checkpoint"
h5same "$TMP/two" "$TMP/ahead" && ok "  cut back to the checkpoint's records and continued: bitwise the uninterrupted run" || bad "files ahead of the checkpoint: the result differs"

# the analysis: the same from HDF5 as from CSV
for run in csv one; do
  $py "$SRC/analysis/convergence" --out "$TMP/an-$run/new" "$TMP/$run" > "$TMP/an-$run.txt" 2>&1 || bad "convergence of $run: $(tail -3 "$TMP/an-$run.txt")"
done
grep -q "errors from gram.h5" "$TMP/an-one.txt" && ok "resnode-convergence reads gram.h5 (and --out makes its directory)" || bad "convergence: $(head -2 "$TMP/an-one.txt")"
cmp -s "$TMP/an-csv/new/convergence-rates.csv" "$TMP/an-one/new/convergence-rates.csv" && cmp -s "$TMP/an-csv/new/convergence-depths.csv" "$TMP/an-one/new/convergence-depths.csv" &&
  ok "  the same rates and errors as from gram.csv" || bad "  rates differ between gram.csv and gram.h5"
$py "$SRC/analysis/convergence" --from-snapshots --out "$TMP/an-snap" "$TMP/one" > "$TMP/an-snap.txt" 2>&1 && grep -q "errors from the parameter snapshots" "$TMP/an-snap.txt" &&
  ok "  --from-snapshots reads params.h5" || bad "  from params.h5: $(tail -3 "$TMP/an-snap.txt")"

# an array's runs merged from HDF5 as from CSV
for fmt in csv hdf5; do
  for first in 0 3; do
    rn 1 "${base[@]}" --set parallel.groups=1 --set ensemble.members=3 --set ensemble.first_member=$first --set "output.arrays=\"$fmt\"" --set "run.dir=\"$TMP/task-$fmt-$first\""
    expect_status 0 "array task, members $first.. ($fmt)"
  done
  $py "$SRC/analysis/convergence" --out "$TMP/merge-$fmt" "$TMP/task-$fmt-0" "$TMP/task-$fmt-3" > "$TMP/merge-$fmt.txt" 2>&1 || bad "merge ($fmt): $(tail -3 "$TMP/merge-$fmt.txt")"
done
grep -q "6 members" "$TMP/merge-hdf5.txt" && cmp -s "$TMP/merge-csv/convergence-rates.csv" "$TMP/merge-hdf5/convergence-rates.csv" &&
  ok "an array's two runs merged from params.h5: 6 members, the rates of the merge from the snapshots" || bad "merge from HDF5: $(head -3 "$TMP/merge-hdf5.txt")"

# damage: a chunk of gram (its checksum), the file itself, records lost since the checkpoint
cp -a "$TMP/one" "$TMP/chunk"
$py - "$TMP/chunk/gram.h5" <<'PY' || bad "could not damage a chunk"
import sys
import h5py
with h5py.File(sys.argv[1], "r") as f:
    info = f["gram"].id.get_chunk_info(5)
with open(sys.argv[1], "r+b") as f:
    f.seek(info.byte_offset + 8)
    b = f.read(1)
    f.seek(info.byte_offset + 8)
    f.write(bytes([b[0] ^ 0xFF]))
PY
$py "$SRC/analysis/convergence" --out "$TMP/an-chunk" "$TMP/chunk" > "$TMP/chunk.txt" 2>&1
status=$?
[ $status -eq 2 ] && grep -q "gram.h5: dataset gram is damaged" "$TMP/chunk.txt" && ! grep -q Traceback "$TMP/chunk.txt" && ok "a damaged chunk of gram.h5: exit 2, names the file and the dataset" || bad "damaged chunk: exit $status, $(cat "$TMP/chunk.txt")"
cp -a "$TMP/one" "$TMP/broken"
head -c 2000 "$TMP/one/params.h5" > "$TMP/broken/params.h5"
$py "$SRC/analysis/convergence" --from-snapshots --out "$TMP/an-broken" "$TMP/broken" > "$TMP/broken.txt" 2>&1
status=$?
[ $status -eq 2 ] && grep -q "params.h5: cannot open it" "$TMP/broken.txt" && ok "a truncated params.h5: exit 2, names it" || bad "truncated file: exit $status, $(cat "$TMP/broken.txt")"
# resuming with records lost since the checkpoint, or with a damaged file
cp -a "$TMP/stopped" "$TMP/lost"
$py -c "
import sys, h5py
with h5py.File(sys.argv[1], 'r+') as f:
    for name in ('step', 'time', 'gram'):
        f[name].resize(1, axis=0)" "$TMP/lost/gram.h5" || bad "could not cut gram.h5"
rn 1 --resume "$TMP/lost" --set parallel.groups=1
[ $status -eq 2 ] && grep -q "gram.h5: variable [a-z]* holds 1 records, the checkpoint $records: records were lost" "$err" && ok "resume with records lost from gram.h5: exit 2, says how many" || bad "lost records: exit $status, $(cat "$err")"
cp -a "$TMP/stopped" "$TMP/damaged"
head -c 3000 "$TMP/stopped/params.h5" > "$TMP/damaged/params.h5"
rn 1 --resume "$TMP/damaged" --set parallel.groups=1
[ $status -eq 2 ] && grep -q "params.h5: cannot open it" "$err" && ok "resume with a damaged params.h5: exit 2, names it" || bad "resume with a damaged params.h5: exit $status, $(cat "$err")"

# the weak-error study as docs/cifar-rate.md runs it, shrunk (its axis too)
"${RN_MAKE_CIFAR:?}" "$TMP/img" 40 > /dev/null || bad "could not generate images"
(cd "$TMP" && rn 2 "$SRC/studies/cifar-weak.cfg" --point members=4 --set "data.dir=\"$TMP/img\"" --set data.max_train=40 --set model.channels=4 --set sgd.steps=4 \
  --set sgd.record_every=2 --set 'ensemble.depths=[2]' --set 'study.axes.ensemble.members=[4, 8]' && cat "$out" > "$TMP/weak.out" && cat "$err" >> "$TMP/weak.out" && exit $status)
status=$? err=$TMP/weak.out
expect_status 0 "studies/cifar-weak.cfg --point members=4 (shrunk)"
point=$(ls -d "$TMP"/runs/cifar-weak/points/members=4-* 2> /dev/null)
[ -n "$point" ] && [ -f "$point/gram.h5" ] && [ ! -e "$point/params.h5" ] && [ -z "$(ls -d "$TMP"/runs/cifar-weak/points/members=8-* 2> /dev/null)" ] &&
  ok "  the point named by its values ran alone: gram.h5, no parameters kept" || bad "  points: $(ls "$TMP/runs/cifar-weak/points" 2>&1)"
"$(dirname "$BIN")/resnode-study" "$TMP/runs/cifar-weak" > "$TMP/weak-study.txt" 2>&1 && [ -f "$TMP/runs/cifar-weak/study.md" ] && ok "  resnode-study over it" || bad "  resnode-study: $(tail -3 "$TMP/weak-study.txt")"
finish
