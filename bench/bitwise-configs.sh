#!/usr/bin/env bash
# Every config, shrunk, run by two binaries (say, before and after a
# refactoring) on the same ranks; their result files must be the same bit for
# bit, except the columns that are wall-clock times, and the group column of
# runs whose units come from a queue (units.h: which group trains a unit is
# the queue's choice; the unit's results are not).
#   bench/bitwise-configs.sh OLD_BINARY NEW_BINARY [RANKS]
# Prints one line per config (same / DIFFERENT with the first difference)
# and exits 1 if any differs; RN_BITWISE_CONFIGS="node-fit cifar" runs some. CIFAR configs run on generated images
# (build/tests/rn_make_cifar).
set -u
old=${1:?usage: bench/bitwise-configs.sh OLD_BINARY NEW_BINARY [RANKS]}
new=${2:?usage: bench/bitwise-configs.sh OLD_BINARY NEW_BINARY [RANKS]}
ranks=${3:-2}
cd "$(dirname "$0")/.."
. scripts/mpi-env
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
make_cifar=${RN_MAKE_CIFAR:-build/tests/rn_make_cifar}
"$make_cifar" "$work/images" 40 > /dev/null || { echo "bitwise-configs: cannot generate images with $make_cifar"; exit 2; }
images="data.dir=\"$work/images\""
# the shrunk command line of each config (output.plot where the experiment has it)
config_args() {
  case $1 in
  node-fit) args=(configs/node-fit.cfg --set train.iterations=60 --set output.plot=false) ;;
  identity) args=(configs/identity.cfg --set train.max_epochs=200) ;;
  annulus) args=(configs/annulus.cfg --set train.epochs=2 --set data.samples=160 --set train.batch=32 --set 'model.depths=[1,4]' --set train.folds=2 --set output.plot=false) ;;
  ensemble) args=(configs/ensemble.cfg --set ensemble.members=6 --set 'ensemble.depths=[4,8]' --set sgd.steps=30 --set output.plot=false) ;;
  cifar-small) args=(configs/cifar-small.cfg --set "$images" --set data.max_train=160 --set data.max_test=40 --set model.channels=4 --set 'model.depths=[1,2]' --set train.epochs=2 --set train.batch=16 --set data.folds=2 --set output.plot=false) ;;
  cifar) args=(configs/cifar.cfg --set "$images" --set data.max_train=160 --set data.max_test=40 --set model.channels=4 --set 'model.depths=[1,3]' --set ode.steps=2 --set train.epochs=1 --set train.batch=16 --set data.folds=2 --set parallel.groups=2 --set output.plot=false) ;;
  cifar-untied) args=(configs/cifar-small.cfg --set "$images" --set data.max_train=80 --set data.max_test=20 --set model.channels=2 --set 'model.depths=[8]' --set model.ode=false --set model.untied=true --set train.epochs=1 --set train.batch=16 --set data.folds=1 --set data.validation=16 --set output.plot=false) ;;
  cifar-ensemble) args=(configs/cifar-ensemble.cfg --set "$images" --set data.max_train=120 --set model.channels=4 --set ensemble.members=4 --set 'ensemble.depths=[2,4]' --set sgd.steps=8 --set sgd.record_every=4 --set output.plot=false) ;;
  esac
}
failed=0
# RN_BITWISE_CONFIGS: a subset of the names below (default all)
for name in ${RN_BITWISE_CONFIGS:-node-fit identity annulus ensemble cifar-small cifar cifar-untied cifar-ensemble}; do
  for which in old new; do
    bin=$old; [ $which = new ] && bin=$new
    config_args "$name"
    mpirun -n "$ranks" "$bin" "${args[@]}" --set "run.dir=\"$work/$name-$which\"" > "$work/$name-$which.log" 2>&1 \
      || { echo "$name: the $which binary failed: $(grep -m1 -i error "$work/$name-$which.log")"; failed=1; continue 2; }
  done
  if verdict=$(python3 - "$work/$name-old" "$work/$name-new" <<'PY'
import csv, filecmp, os, re, sys
a, b = sys.argv[1], sys.argv[2]
timing = re.compile(r"time|seconds|per_s|elapsed|wall")
queued = os.path.isdir(os.path.join(a, "units")) or os.path.isdir(os.path.join(b, "units"))
files = 0
for root, _, names in os.walk(a):
    for n in sorted(names):
        pa = os.path.join(root, n)
        rel = os.path.relpath(pa, a)
        if "checkpoints" in rel.split(os.sep) or not n.endswith((".csv", ".bin", ".h5")):
            continue
        pb = os.path.join(b, rel)
        files += 1
        if not os.path.exists(pb):
            sys.exit(f"{rel}: missing in the new run")
        if n.endswith((".bin", ".h5")):  # HDF5 arrays hold no times (core/arrays.c): the same run, the same bytes
            if not filecmp.cmp(pa, pb, shallow=False):
                sys.exit(f"{rel}: the bytes differ")
            continue
        ra, rb = list(csv.reader(open(pa))), list(csv.reader(open(pb)))
        if len(ra) != len(rb) or ra[:1] != rb[:1]:
            sys.exit(f"{rel}: {len(ra)} against {len(rb)} rows, or another header")
        keep = [i for i, h in enumerate(ra[0]) if not timing.search(h) and not (queued and h == "group")]
        for k, (x, y) in enumerate(zip(ra, rb)):
            if [x[i] for i in keep if i < len(x)] != [y[i] for i in keep if i < len(y)]:
                sys.exit(f"{rel} row {k}: {x} against {y}")
print(f"{files} result files the same")
PY
  ); then echo "$name: same ($verdict)"; else echo "$name: DIFFERENT: $verdict"; failed=1; fi
done
exit $failed
