#!/usr/bin/env bash
# The depth sweep's busy fraction, before and after the unit queue, side by
# side in one session: configs/cifar.cfg shrunk (C = 16, depths 1..16 and the
# ODE, 2 folds, 2 ranks as 2 groups), run by this build and, if given, by an
# older resnode-mpi (lock-step rounds). Then the paper's sweep (C = 256,
# depths 1..64 and the ODE, 3 folds, 200 epochs of 33,333 images) predicted
# on 8 nodes x 8 ranks and 1 node x 64 ranks from the measured costs.
#   busy = the units' training times (this build's, which do not wait) / (groups x wall)
# Usage: bench/sweep-busy.sh DATA_DIR [build dir] [old resnode-mpi] [C] [epochs] [training images] [C of the prediction]
set -u
DATA=${1:?usage: bench/sweep-busy.sh DATA_DIR [build dir] [old resnode-mpi] [C] [epochs] [training images] [C of the prediction]}
B=${2:-build}
OLD=${3:-}
C=${4:-16}
EPOCHS=${5:-2}
IMAGES=${6:-5000}
CP=${7:-256}
SRC=$(cd "$(dirname "$0")/.." && pwd)
. "$SRC/scripts/mpi-env"
export OMP_NUM_THREADS=1
OUT=$(mktemp -d /tmp/rn-sweep-busy-XXXXXX)
trap 'rm -rf "$OUT"' EXIT
ODE_COST=32.5 # rk4, 8 steps (configs/cifar.cfg) and the stem and head: CifarUnits
sweep=(--set "data.dir=\"$DATA\"" --set data.max_train="$IMAGES" --set data.max_test=1000 --set data.folds=2 --set model.channels="$C" --set 'model.depths=[1, 2, 4, 8, 16]'
  --set model.ode=true --set train.epochs="$EPOCHS" --set parallel.groups=2 --set checkpoint.every_seconds=0 --set output.plot=false)
echo "# $(lscpu | grep 'Model name' | sed 's/  */ /g'); $(grep -o -w -E 'amx_bf16|avx512_bf16' /proc/cpuinfo | sort -u | tr '\n' ' ')"
echo "## the shrunk sweep: C = $C, depths 1..16 and the ODE, 2 folds ($IMAGES images), $EPOCHS epochs, 2 ranks as 2 groups"

# run NAME BINARY: the sweep; prints its wall time (the run's own "trained in")
run() {
  mpirun --bind-to none -n 2 "$2" "$SRC/configs/cifar.cfg" "${sweep[@]}" --set "run.dir=\"$OUT/$1\"" > "$OUT/$1.out" 2>&1 || { echo "$1 failed: $(tail -3 "$OUT/$1.out")" >&2; exit 1; }
  sed -n 's/.*trained in \([0-9.]*\) s.*/\1/p' "$OUT/$1.out"
}
wall_new=$(run queue "$B/resnode-mpi")
[ -n "$OLD" ] && wall_old=$(run rounds "$OLD")
# the units' own times: this build's final.csv (N, seconds)
sum=$(awk -F, 'NR > 1 { s += $10 } END { print s }' "$OUT/queue/final.csv")
printf "units' training time (sum): %.1f s\n" "$sum"
printf "queue  (this build):  wall %6.1f s  busy %5.1f%%\n" "$wall_new" "$(echo "100 * $sum / (2 * $wall_new)" | bc -l)"
[ -n "$OLD" ] && printf "rounds (%s):  wall %6.1f s  busy %5.1f%%  (the queue's wall time is %.2fx)\n" "$OLD" "$wall_old" "$(echo "100 * $sum / (2 * $wall_old)" | bc -l)" "$(echo "$wall_new / $wall_old" | bc -l)"

# the cost model against the measured times: seconds per cost unit, by unit
echo "## the cost model (block evaluations an image, CifarUnits) against the units' times"
awk -F, -v ode="$ODE_COST" 'NR > 1 { c = ($3 > 0 ? $3 + 0.5 : ode); printf "  %-7s N = %-3d fold %d: cost %5.1f  %6.1f s  %.3f s a cost unit\n", $4, $3, $5, c, $10, $10 / c }' "$OUT/queue/final.csv"
per_cost=$(awk -F, -v ode="$ODE_COST" 'NR > 1 { c += ($3 > 0 ? $3 + 0.5 : ode); s += $10 } END { print s / c }' "$OUT/queue/final.csv")

# the paper's sweep: one rank's seconds per cost unit at C = CP, from
# bench_cifar's N = 8 images/s (8 block evaluations and the stem and head)
echo "## the paper's sweep predicted: C = $CP, depths 1..64 and the ODE (rk4, 8 steps), 3 folds, 200 epochs of 33,333 images, batch 128"
ips=$(mpirun --bind-to none -n 1 "$B/bench/bench_cifar" 2 float32 "$CP" 128 resnet | sed -n 's/.* \([0-9.]*\) images\/s.*/\1/p' | head -1)
seconds=$(echo "200 * 33333 / ($ips * 8.5)" | bc -l)
printf "one rank at C = %d: %.1f images/s at N = 8; a cost unit of a whole unit: %.0f s\n" "$CP" "$ips" "$seconds"
# model-major, as the units are numbered (the order the rounds took them in)
costs=""
for n in 1 2 4 8 16 32 64; do costs="$costs $n.5 $n.5 $n.5"; done
costs="$costs $ODE_COST $ODE_COST $ODE_COST"
for shape in "64 8" "64 64"; do
  set -- $shape
  echo "### $(($1 / $2)) node(s) x $2 ranks"
  "$B/bench/bench_schedule" "$1" "$2" 128 "$seconds" $costs
done
