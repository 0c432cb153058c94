#!/usr/bin/env bash
# Every resnode-mpi command README.md shows (and the analysis commands that
# follow them) runs here as a user would type it, from a directory laid out
# like a clone (build/, configs/, analysis/, data/cifar-10-batches-bin/ with
# generated files), shrunk by --set overrides placed after the config, and
# must exit 0 leaving a completed run. An example that crashes cannot land.
# (scripts/run-default and run-tests are what CI runs; the jobs/slurm lines
# run in the slurm test; scripts/get-cifar10 in get_cifar10; the install
# lines, the same with a temporary prefix, in the install test.)
. "$(dirname "$0")/lib.sh"
MAKE=${RN_MAKE_CIFAR:?RN_MAKE_CIFAR not set}
W=$TMP/clone
mkdir -p "$W/data/cifar-10-batches-bin"
ln -s "$(dirname "$BIN")" "$W/build"
ln -s "$SRC/configs" "$W/configs"
ln -s "$SRC/analysis" "$W/analysis"
"$MAKE" "$W/data/cifar-10-batches-bin" 120 || { bad "could not generate data"; finish; exit 1; }

# shrink CONFIG: the overrides that make a README example take seconds
shrink() {
  case $1 in
    *node-fit.cfg) echo "--set train.iterations=30" ;;
    *ensemble.cfg) echo "--set ensemble.members=4 --set ensemble.depths=[2,4] --set sgd.steps=20" ;;
    *cifar-ensemble.cfg) echo "--set data.max_train=100 --set model.channels=4 --set ensemble.members=4 --set ensemble.depths=[2,4] --set sgd.steps=8 --set sgd.record_every=4" ;;
    *cifar*.cfg) echo "--set data.max_train=300 --set model.channels=4 --set model.depths=[2] --set train.epochs=1 --set train.batch=50 --set train.eval_batch=100" ;;
  esac
}

n=0
last_run=""
while IFS= read -r line; do
  cmd=$(echo "$line" | sed 's/^    //; s/  *#.*$//')
  case $cmd in
    mpirun*resnode-mpi* | build/resnode-mpi*) ;;
    /usr/bin/python3\ analysis/*) ;;
    build/resnode-[a-z]*) ;;
    *) continue ;;
  esac
  n=$((n + 1))
  eval "set -- $cmd"
  args=()
  for a in "$@"; do
    case $a in
      *...) a="$last_run" ;; # the run directory of the example before
    esac
    args+=("$a")
    case $a in
      *.cfg) for s in $(shrink "$a"); do args+=("$s"); done ;;
    esac
  done
  before=$(ls -d "$W"/runs/*/ 2> /dev/null | wc -l)
  (cd "$W" && timeout 300 "${args[@]}" < /dev/null > "$TMP/readme.out" 2> "$TMP/readme.err")
  status=$?
  err=$TMP/readme.err
  expect_status 0 "README: $cmd"
  if [[ $cmd == *resnode-mpi*.cfg* ]]; then
    last_run=$(ls -td "$W"/runs/*/ 2> /dev/null | head -1)
    last_run=${last_run%/}
    after=$(ls -d "$W"/runs/*/ 2> /dev/null | wc -l)
    [ "$after" -gt "$before" ] && grep -q '"status": "done"' "$last_run/manifest.json" && ok "  it left a completed run ($(basename "$last_run"))" || bad "  no completed run: $(tail -3 "$TMP/readme.err")"
  fi
done < "$SRC/README.md"
[ "$n" -ge 8 ] && ok "$n README commands ran" || bad "only $n README commands found"
finish
