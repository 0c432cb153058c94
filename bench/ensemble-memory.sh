#!/usr/bin/env bash
# Peak memory per rank of a streamed ensemble at p = 1.3 million parameters
# (a 2 -> 1140 -> 1140 -> 2 tanh field on 16 samples, the size of the
# C = 256 CIFAR network, its activations small),
# M = 16 members, depths 2 and 4 (no limit: N = 4 is the reference), on 1
# and 2 ranks. The run logs its peak resident memory on the largest rank
# beside what it must hold: its group's units' current parameters and, per
# record, two column blocks of M x p / ranks. No rank holds M x p records.
#   bench/ensemble-memory.sh [BUILD_DIR]      (WIDTH=1140: the hidden width)
set -eu
here=$(cd "$(dirname "$0")/.." && pwd)
build=${1:-$here/build}
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 OPENBLAS_NUM_THREADS=1
tmp=$(mktemp -d /tmp/rn-ensmem-XXXXXX)
trap 'rm -rf "$tmp"' EXIT
width=${WIDTH:-1140}
p=$((2 * width + width + width * width + width + width * 2 + 2))
echo "CPU: $(lscpu | sed -n 's/^Model name: *//p'); p = $p; M x p = 16 x $p doubles = $((16 * p * 8 / 1048576)) MB"
for np in 1 2; do
  mpirun --bind-to none -n $np "$build/resnode-mpi" "$here/configs/ensemble.cfg" \
    --set 'model.field=( { type = "dense"; out = '$width'; activation = "tanh"; }, { type = "dense"; out = '$width'; activation = "tanh"; }, { type = "dense"; out = 2; } )' \
    --set data.samples=16 \
    --set ensemble.members=16 --set 'ensemble.depths=[2, 4]' --set ensemble.limit=false --set sgd.steps=2 --set sgd.record_every=1 \
    --set sgd.batch=4 --set parallel.groups=$np --set output.plot=false --set 'ensemble.save_parameters="none"' --set "run.dir=\"$tmp/np$np\"" > "$tmp/out$np" 2>&1
  echo "ranks $np: $(grep -o 'peak memory.*' "$tmp/np$np/log.txt")"
done
