#!/usr/bin/env bash
# Peak memory per rank of a CIFAR run on the full data set, for several rank
# counts: RSS (counts the node-shared data set in every rank) and PSS (each
# rank's share of it), sampled from /proc every 0.5 s.
#   bench/data-memory.sh CIFAR_DIR [ranks ...]     (default ranks: 1 2 8)
set -u
dir=${1:?usage: bench/data-memory.sh CIFAR_DIR [ranks ...]}
shift
cd "$(dirname "$0")/.."
. scripts/mpi-env
for np in "${@:-1 2 8}"; do
  for n in $np; do
    run=$(mktemp -d)/run
    mpirun -n "$n" "${RESNODE_BINARY:-build/resnode-mpi}" configs/cifar-small.cfg --set "data.dir=\"$dir\"" --set model.channels=4 --set 'model.depths=[1]' --set model.ode=false \
      --set train.epochs=1 --set train.batch=512 --set output.plot=false --set "run.dir=\"$run\"" > "$run.log" 2>&1 &
    mp=$!
    maxrss=0 maxpss=0 maxsum=0
    while kill -0 $mp 2>/dev/null; do
      sum=0
      for p in $(pgrep -f "resnode-mpi configs/cifar-small.cfg"); do
        r=$(awk '/^Rss:/{print $2}' /proc/$p/smaps_rollup 2>/dev/null); s=$(awk '/^Pss:/{print $2}' /proc/$p/smaps_rollup 2>/dev/null)
        [ -n "$r" ] && [ -n "$s" ] || continue
        [ "$r" -gt "$maxrss" ] && maxrss=$r
        [ "$s" -gt "$maxpss" ] && maxpss=$s
        sum=$((sum + s))
      done
      [ $sum -gt $maxsum ] && maxsum=$sum
      sleep 0.5
    done
    wait $mp || { echo "ranks $n: the run failed, see $run.log"; continue; }
    echo "ranks $n: peak RSS per rank $((maxrss / 1024)) MB, peak PSS per rank $((maxpss / 1024)) MB, PSS summed over ranks $((maxsum / 1024)) MB"
  done
done
