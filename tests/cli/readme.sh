#!/usr/bin/env bash
# Every command the README and the docs/ pages show is run by a test. The
# resnode-mpi commands (and the analysis commands that follow them) run here
# as a user would type them, from a directory laid out like a clone
# (build/, configs/, analysis/, data/cifar-10-batches-bin/ with generated
# files), shrunk by --set overrides placed after the config, and must exit 0
# leaving a completed run (--print-config, --keys, --help, --plan: printing,
# and leaving none). Every other command is named below with the test that runs
# it; a command that is neither run here nor named fails this test, so no
# page can show a command that no test runs.
. "$(dirname "$0")/lib.sh"
MAKE=${RN_MAKE_CIFAR:?RN_MAKE_CIFAR not set}
W=$TMP/clone
mkdir -p "$W/data/cifar-10-batches-bin"
ln -s "$(dirname "$BIN")" "$W/build"
cp -r "$SRC/configs" "$W/configs" # a copy: a config's relative paths (../data) are resolved from where it is
ln -s "$SRC/analysis" "$W/analysis"
"$MAKE" "$W/data/cifar-10-batches-bin" 120 || { bad "could not generate data"; finish; exit 1; }

# shrink CONFIG: the overrides that make an example take seconds
shrink() {
  case $1 in
    *node-fit.cfg) echo "--set train.iterations=30" ;;
    *ensemble.cfg) echo "--set ensemble.members=4 --set ensemble.depths=[2,4] --set sgd.steps=20" ;;
    *cifar-ensemble.cfg) echo "--set data.max_train=100 --set model.channels=4 --set ensemble.members=4 --set ensemble.depths=[2,4] --set sgd.steps=8 --set sgd.record_every=4" ;;
    *cifar*.cfg) echo "--set data.max_train=300 --set model.channels=4 --set model.depths=[2] --set train.epochs=1 --set train.batch=50 --set train.eval_batch=100" ;;
  esac
}

# the test that runs a command a page shows ("" when it runs here, "none" when no test does)
covered_by() {
  case $1 in
    scripts/run-default*) echo run_default ;;
    scripts/run-tests*) echo ".ci/run (the whole suite)" ;;
    scripts/get-cifar10*) echo get_cifar10 ;;
    mpirun*studies/cifar-weak.cfg*) echo ensemble_hdf5 ;;
    mpirun*studies/* | build/resnode-study*) echo "rate_study, study" ;;
    build/resnode-runs\ compare\ runs/a\ *) echo runs ;;
    jobs/slurm/study.sh* | POINTS_PER_TASK=*) echo slurm_jobs ;;
    scripts/update-reference*) echo reference ;;
    scripts/build*cmake\ --install* | module\ use*) echo install ;;
    sbatch* | RESNODE_SBATCH_OPTS=*jobs/slurm/*) echo "slurm_jobs, slurm_nodes" ;;
    bench/bitwise-configs.sh*) echo bitwise_configs ;;
    bench/* | build/bench/* | mpirun*build/bench/* | /usr/bin/python3\ bench/*) echo bench_smoke ;;
    mpirun*resnode-mpi* | build/resnode-mpi* | build/resnode-[a-z]* | /usr/bin/python3\ analysis/*) echo "" ;;
    *) echo none ;;
  esac
}

n=0
for page in "$SRC/README.md" "$SRC"/docs/*.md; do
  name=${page#"$SRC/"}
  last_run=""
  while IFS= read -r line; do
    cmd=$(echo "$line" | sed 's/^ *//; s/  *#.*$//')
    # a command of a code block starts with a command word (config excerpts
    # and the usage synopsis "resnode-mpi [CONFIG] ..." do not)
    case ${cmd%% *} in
      */) continue ;; # a directory listing (docs/internals.md's layers)
    esac
    case $cmd in
      mpirun* | build/* | scripts/* | bench/* | sbatch* | srun* | RESNODE_*=* | POINTS_PER_TASK=* | jobs/* | module* | cmake* | /usr/bin/python3* | analysis/* | ctest* | spack*) ;;
      *) continue ;;
    esac
    test=$(covered_by "$cmd")
    if [ "$test" = none ]; then
      bad "$name shows a command that no test runs: $cmd"
      continue
    elif [ -n "$test" ]; then
      ok "$name: $cmd  (run by: $test)"
      continue
    fi
    n=$((n + 1))
    eval "set -- $cmd"
    args=()
    for a in "$@"; do
      case $a in
        *...) a="$last_run" ;; # the run directory of the example before
      esac
      if [[ $a == runs/*\** ]]; then
        # a glob over the clone's runs (compare runs/node-fit-*)
        for m in $(cd "$W" && compgen -G "$a"); do args+=("$m"); done
        continue
      fi
      args+=("$a")
      case $a in
        *.cfg) [[ $cmd == *--print-config* ]] || for s in $(shrink "$a"); do args+=("$s"); done ;;
      esac
    done
    before=$(ls -d "$W"/runs/*/ 2> /dev/null | wc -l)
    (cd "$W" && timeout 300 "${args[@]}" < /dev/null > "$TMP/readme.out" 2> "$TMP/readme.err")
    status=$?
    err=$TMP/readme.err
    expect_status 0 "$name: $cmd"
    after=$(ls -d "$W"/runs/*/ 2> /dev/null | wc -l)
    if [[ $cmd == *--print-config* || $cmd == *--keys* || $cmd == *--help* || $cmd == *--plan* ]]; then
      [ "$after" -eq "$before" ] && [ -s "$TMP/readme.out" ] && ok "  it printed, and wrote no run" || bad "  it printed $(wc -c < "$TMP/readme.out") bytes; runs $before -> $after"
    elif [[ $cmd == *resnode-runs\ compare* ]]; then
      grep -q '^  B  ' "$TMP/readme.out" && grep -qE '^(config keys that differ|the runs. configs are the same)' "$TMP/readme.out" && [ -s "$W/compare.png" ] && ok "  it compared $(grep -cE '^  [A-Z]  ' "$TMP/readme.out") runs, and drew compare.png" || bad "  compare: $(head -5 "$TMP/readme.out")"
    elif [[ $cmd == *resnode-runs\ list* ]]; then
      grep -qE '^[0-9]+ of [1-9][0-9]* run|^run,' "$TMP/readme.out" && ok "  it listed: $(tail -1 "$TMP/readme.out")" || bad "  list: $(head -5 "$TMP/readme.out") $(head -3 "$TMP/readme.err")"
    elif [[ $cmd == *resnode-mpi*.cfg* ]]; then
      last_run=$(ls -td "$W"/runs/*/ 2> /dev/null | head -1)
      last_run=${last_run%/}
      [ "$after" -gt "$before" ] && grep -q '"status": "done"' "$last_run/manifest.json" && ok "  it left a completed run ($(basename "$last_run"))" || bad "  no completed run: $(tail -3 "$TMP/readme.err")"
    fi
  done < <(grep -E '^    ' "$page")
done
[ "$n" -ge 10 ] && ok "$n commands of the README and docs/ ran here" || bad "only $n commands found"
finish
