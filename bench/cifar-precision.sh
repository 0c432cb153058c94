#!/usr/bin/env bash
# resnode-mpi against PyTorch on the paper's CIFAR network, side by side in one
# session (needs python3-torch): each precision, C = 256 (one core) and C = 64
# (1 and 2 ranks). Usage: bench/cifar-precision.sh [build dir] > table.txt
set -u
B=${1:-build}
. "$(dirname "$0")/../scripts/mpi-env"
export OMP_NUM_THREADS=1
echo "# $(lscpu | grep 'Model name' | sed 's/  */ /g'); $(grep -o -w -E 'amx_bf16|avx512_bf16' /proc/cpuinfo | sort -u | tr '\n' ' ')"
/usr/bin/python3 "$(dirname "$0")/torch_reference.py" cifar 256 32 2 1
mpirun -n 1 "$B/bench/bench_cifar" 2 float32,bfloat16,float64 256 32 resnet
/usr/bin/python3 "$(dirname "$0")/torch_reference.py" cifar 64 128 3 1
mpirun -n 1 "$B/bench/bench_cifar" 3 float32,bfloat16 64 128
mpirun -n 2 "$B/bench/bench_cifar" 3 float32,bfloat16 64 128
