#!/usr/bin/env bash
# The ensemble's large arrays at scale, CSV against HDF5 (output.arrays):
# for each M, a CIFAR-network ensemble (C = 8, p about 1e4, depth 2 and the
# ODE limit, 1 SGD step: 2 records, every record's parameters saved)
# with each format, and the dense ensemble at p about 1e6. Per run, from its
# manifest: the largest rank's peak resident memory, the statistics' time per
# record (RnStats, the largest rank), the output's write time per record
# (RnSnapshot: the Gram matrices and the parameters, the largest rank) and its
# size per record (gram and parameter files).
#   bench/ensemble-arrays.sh CIFAR_DIR [BUILD_DIR]
# MEMBERS="64 256 1024", RANKS=2, DENSE_MEMBERS="16 64" (p = 1.3e6; 0: none;
# WIDTH=1140 the dense field's hidden width);
# CLUSTER=DIR runs on the hosts of a cluster made on this machine by
# tests/multinode/cluster.sh up 3 DIR (its README), a rank a node with RANKS=3.
set -eu
here=$(cd "$(dirname "$0")/.." && pwd)
data=${1:?usage: bench/ensemble-arrays.sh CIFAR_DIR [BUILD_DIR]}
build=${2:-$here/build}
. "$here/scripts/mpi-env"
export OPENBLAS_NUM_THREADS=1 OMP_NUM_THREADS=1
ranks=${RANKS:-2}
hosts=()
if [ -n "${CLUSTER:-}" ]; then
  . "$CLUSTER/mpirun-env"
  hosts=(--hostfile "$CLUSTER/hostfile" --map-by node)
fi
tmp=$(mktemp -d "${BENCH_TMP:-/tmp}/rn-arrays-XXXXXX")
trap 'rm -rf "$tmp"' EXIT
cpu=$(lscpu | sed -n 's/^Model name: *//p')
flags=$(grep -o -w 'avx512_bf16\|amx_bf16' /proc/cpuinfo | sort -u | tr '\n' ' ')
echo "CPU: $cpu (${flags:-no avx512_bf16, no AMX}); $ranks ranks${CLUSTER:+ on the nodes of $CLUSTER/hostfile: $(cut -d' ' -f1 "$CLUSTER/hostfile" | tr '\n' ' ')}"
printf '%-6s %-8s %-6s %9s %10s %12s %12s %14s %10s\n' model M format p "peak MB" "stats s/rec" "write s/rec" "output MB/rec" "wall s"

# run NAME ARGS...: one run; prints its row
run() {
  local name=$1 model=$2 members=$3 format=$4
  shift 4
  local dir=$tmp/$name
  if ! mpirun --bind-to none "${hosts[@]}" -n "$ranks" "$build/resnode-mpi" "$@" --set ensemble.members="$members" --set parallel.groups="$ranks" \
    --set "output.arrays=\"$format\"" --set 'ensemble.save_parameters="every"' --set output.plot=false --set "run.dir=\"$dir\"" > "$dir.out" 2>&1; then
    echo "$model M = $members $format: failed: $(grep -m1 -i 'error' "$dir.out")"
    return
  fi
  /usr/bin/python3 - "$dir" "$model" "$members" "$format" <<'PY'
import glob, json, os, re, sys
d, model, members, fmt = sys.argv[1:]
m = json.load(open(os.path.join(d, "manifest.json")))
ev = m["profile"]["events"]
log = open(os.path.join(d, "log.txt")).read()
p = int(re.search(r"(\d+) parameters", log).group(1))
records = int(re.search(r"(\d+) records", log).group(1))
files = glob.glob(os.path.join(d, "gram.*")) + glob.glob(os.path.join(d, "params.h5")) + glob.glob(os.path.join(d, "snapshots", "theta-step*.bin"))
size = sum(os.path.getsize(f) for f in files)
stat = lambda e: ev.get(e, {}).get("self_max_s", 0.0) / records
print("%-6s %-8s %-6s %9d %10.0f %12.4f %12.4f %14.2f %10.1f" % (model, members, fmt, p, max(m["peak_rss_mb"]), stat("RnStats"), stat("RnSnapshot"), size / records / 1048576, m["profile"]["wall_s"]))
PY
}

cifar=("$here/configs/cifar-ensemble.cfg" --set "data.dir=\"$data\"" --set data.max_train=64 --set model.channels=8 --set 'model.activation="softplus"'
  --set 'ensemble.depths=[2]' --set sgd.steps=1 --set sgd.record_every=1 --set sgd.eval_batch=64 --set checkpoint.every_seconds=0)
for M in ${MEMBERS:-64 256 1024}; do
  for format in csv hdf5; do
    run "cifar-$M-$format" cifar "$M" "$format" "${cifar[@]}"
  done
done
width=${WIDTH:-1140} # p = 1.3e6: a 2 -> 1140 -> 1140 -> 2 tanh field, the size of the C = 256 CIFAR network
dense=("$here/configs/ensemble.cfg" --set "model.field=( { type = \"dense\"; out = $width; activation = \"tanh\"; }, { type = \"dense\"; out = $width; activation = \"tanh\"; }, { type = \"dense\"; out = 2; } )"
  --set data.samples=16 --set sgd.batch=4 --set 'ensemble.depths=[2, 4]' --set ensemble.limit=false --set sgd.steps=2 --set sgd.record_every=1 --set checkpoint.every_seconds=0)
for M in ${DENSE_MEMBERS:-16 64}; do
  [ "$M" = 0 ] && continue
  for format in csv hdf5; do
    run "dense-$M-$format" dense "$M" "$format" "${dense[@]}"
  done
done
