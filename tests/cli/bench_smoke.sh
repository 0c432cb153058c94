#!/usr/bin/env bash
# Every benchmark command docs/internals.md shows runs here, shrunk to seconds, and
# must exit 0 printing its figures: a benchmark that crashes is found by CI,
# not by the next person who measures. (Timings are not checked: they are
# measured by hand, side by side, and reported with the CPU.)
. "$(dirname "$0")/lib.sh"
MAKE=${RN_MAKE_CIFAR:?RN_MAKE_CIFAR not set}
B=$(dirname "$BIN")
mkdir -p "$TMP/cifar"
"$MAKE" "$TMP/cifar" 200 || { bad "could not generate data"; finish; exit 1; }
# the benchmark lines of docs/internals.md, to be sure none is left out below
n=$(sed -n '/^## Benchmarks/,/^## /p' "$SRC/docs/internals.md" | grep -cE '^    (mpirun|build/bench|bench/|/usr/bin/python3 bench)')

# bench ARGS...: runs a benchmark command; it must exit 0 and print PATTERN ($want)
bench() {
  local name=$1
  shift
  timeout 600 "$@" > "$TMP/bench.out" 2>&1
  local st=$?
  if [ $st -eq 0 ] && grep -qE -- "$want" "$TMP/bench.out"; then ok "$name: $(grep -m1 -E -- "$want" "$TMP/bench.out" | cut -c1-110)"; else bad "$name: exit $st, $(tail -5 "$TMP/bench.out")"; fi
  ran=$((ran + 1))
}
ran=0
want='s/iteration|ms' bench bench_nodefit "$B/bench/bench_nodefit" 2
want='images/s' bench bench_cifar mpirun --bind-to none -n 1 "$B/bench/bench_cifar" 1 float32,bfloat16,float64 8 8
grep -q "where the time went (rank 0, own time): RnConv" "$TMP/bench.out" && ok "bench_cifar: each case's phase shares" || bad "bench_cifar: no phase shares: $(tail -3 "$TMP/bench.out")"
want='queue \(parallel.groups auto\)' bench bench_schedule "$B/bench/bench_schedule" 64 8 128 30399 1.5 1.5 1.5 2.5 2.5 2.5 32.5
# the sweep at C = 4 on 300 images, one epoch, against this build itself; the prediction at C = 8
want='queue \(parallel.groups auto\)' bench sweep-busy.sh "$SRC/bench/sweep-busy.sh" "$TMP/cifar" "$B" "$BIN" 4 1 300 8
want='peak RSS per rank' RESNODE_BINARY=$BIN bench data-memory.sh "$SRC/bench/data-memory.sh" "$TMP/cifar" 1 2
# the PyTorch references, shrunk like the rest (C = 4, batch 4, one step)
if /usr/bin/python3 -c "import torch" 2> /dev/null; then
  want='C = 4, batch 4' bench cifar-precision.sh "$SRC/bench/cifar-precision.sh" "$B" 1 4 4 4 no
  want='images/s' bench "torch_reference.py conv" /usr/bin/python3 "$SRC/bench/torch_reference.py" conv 4 4 1
  want='images/s' bench "torch_reference.py cifar" /usr/bin/python3 "$SRC/bench/torch_reference.py" cifar 4 4 1
else
  echo "  skipped: cifar-precision.sh and torch_reference.py need python3-torch (not installed)"
  ran=$((ran + 3))
fi
want='e-' bench bench_gradient_accuracy "$B/bench/bench_gradient_accuracy"
want='mlp,backsolve,10' MLP_STEPS=10 CONV_STEPS=4 BENCH_ADJOINT=$B/bench/bench_adjoint bench adjoint-memory.sh "$SRC/bench/adjoint-memory.sh" "$TMP/adjoint"
want='ranks 2: peak memory' WIDTH=40 bench ensemble-memory.sh "$SRC/bench/ensemble-memory.sh" "$B"
want='^dense +4 +hdf5 ' MEMBERS=4 DENSE_MEMBERS=4 WIDTH=40 bench ensemble-arrays.sh "$SRC/bench/ensemble-arrays.sh" "$TMP/cifar" "$B"
grep -qE '^cifar +4 +csv ' "$TMP/bench.out" && grep -qE '^cifar +4 +hdf5 ' "$TMP/bench.out" && ok "ensemble-arrays.sh: the CIFAR ensemble's rows, CSV and HDF5" || bad "ensemble-arrays.sh: $(cat "$TMP/bench.out")"
want='p = +300' bench "bench_stats (p x p)" mpirun --bind-to none -n 2 "$B/bench/bench_stats" 300
want='Gram of differences' bench "bench_stats gram" mpirun --bind-to none -n 2 "$B/bench/bench_stats" gram 5000
want='[0-9] member-steps/s' bench bench_ensemble mpirun --bind-to none -n 1 "$B/bench/bench_ensemble" 2 10
want='s on the slowest rank: [0-9.]+ member-steps/s' bench bench_cifar_ensemble mpirun --bind-to none -n 2 "$B/bench/bench_cifar_ensemble" "$TMP/cifar" 4 2 2
[ "$ran" -eq "$n" ] && ok "all $n benchmark commands of docs/internals.md covered" || bad "docs/internals.md shows $n benchmark commands, $ran covered here"
finish
