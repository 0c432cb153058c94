#!/usr/bin/env bash
# resnode-mpi against PyTorch on the paper's CIFAR network, side by side in one
# session (needs python3-torch): N = 8 tied ResNet and the ODE (rk4, 4 steps),
# float32 (Winograd where the CPU has it, and direct), bfloat16 and float64;
# C = 256 at batch 128 on one core, C = 64 at batch 128 on 1 and 2 ranks.
# Usage: bench/cifar-precision.sh [build dir] [steps] [C] [small C] [batch] [two ranks: yes|no] > table.txt
# (defaults 2 steps, C = 256, small C = 64, batch 128, yes; float64 at the large C
# runs at a quarter of the batch: a batch of 128 takes minutes a step)
set -u
B=${1:-build}
S=${2:-2}
C=${3:-256}
CS=${4:-64}
BATCH=${5:-128}
TWO_RANKS=${6:-yes}
B64=$((BATCH / 4 > 0 ? BATCH / 4 : 1))
T="/usr/bin/python3 $(dirname "$0")/torch_reference.py cifar"
. "$(dirname "$0")/../scripts/mpi-env"
export OMP_NUM_THREADS=1
echo "# $(lscpu | grep 'Model name' | sed 's/  */ /g'); $(grep -o -w -E 'amx_bf16|avx512_bf16' /proc/cpuinfo | sort -u | tr '\n' ' ')"
echo "## C = $C, batch $BATCH, one core"
$T "$C" "$BATCH" "$S" 1 float32,bfloat16 both
mpirun -n 1 "$B/bench/bench_cifar" "$S" float32,float32:direct,bfloat16 "$C" "$BATCH" both
echo "## C = $C, batch $B64, one core, float64"
$T "$C" "$B64" "$S" 1 float64 resnet
mpirun -n 1 "$B/bench/bench_cifar" "$S" float64 "$C" "$B64" resnet
echo "## C = $CS, batch $BATCH, 1$([ "$TWO_RANKS" = yes ] && echo " and 2") rank(s)"
$T "$CS" "$BATCH" "$S" 1 float32,bfloat16,float64 both
mpirun -n 1 "$B/bench/bench_cifar" "$S" float32,float32:direct,bfloat16,float64 "$CS" "$BATCH" both
if [ "$TWO_RANKS" = yes ]; then
  $T "$CS" "$BATCH" "$S" 2 float32,bfloat16 both
  mpirun -n 2 "$B/bench/bench_cifar" "$S" float32,bfloat16 "$CS" "$BATCH" both
fi
