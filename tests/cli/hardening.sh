#!/usr/bin/env bash
# Defects found by trying bad input, faults and resumes as users would: each
# check below failed on the code before its fix (issue "hardening").
. "$(dirname "$0")/lib.sh"
fit=(--set train.iterations=20 --set output.plot=false)

# tree_sum DIR: every file's path and checksum, for "left byte for byte as it was"
tree_sum() { (cd "$1" && find . -type f -print0 | sort -z | xargs -0 sha256sum); }

# A NUL byte ended a config silently: the keys after it took their defaults
# (1000 iterations at lr 0.001), also inside an @include'd base
printf 'experiment = "node-fit";\nseed = 1;\0\ntrain = { lr = 0.01; iterations = 3; };\n' > "$TMP/nul.cfg"
rn 2 "$TMP/nul.cfg" --set "run.dir=\"$TMP/nul\""
expect_status 2 "a NUL byte in a config"; expect_message "nul.cfg:2: a NUL byte (byte 35)" "the NUL's line and byte"
[ ! -e "$TMP/nul" ] && ok "nothing run or written" || bad "a run directory was made"
printf '@include "nul.cfg"\ntrain = { iterations = 3; };\n' > "$TMP/top.cfg"
rn 2 "$TMP/top.cfg"; expect_status 2 "a NUL byte in an included base"; expect_message "nul.cfg:2: a NUL byte" "the base named"

# --resume of a directory that holds no run started a full run there
rn 2 "$SRC/configs/node-fit.cfg" "${fit[@]}" --resume "$TMP/typo-dir"
expect_status 2 "--resume of a missing directory with a CONFIG"; expect_message "--resume $TMP/typo-dir: no such directory; check the path, or start a new run there without --resume" "the path named"
[ ! -e "$TMP/typo-dir" ] && ok "the directory is not created" || bad "--resume created $TMP/typo-dir"
mkdir -p "$TMP/empty-dir"
rn 2 "$SRC/configs/node-fit.cfg" "${fit[@]}" --resume "$TMP/empty-dir"
expect_status 2 "--resume of a directory with no run"; expect_message "--resume $TMP/empty-dir: no run there (no manifest.json)" "no run there"
[ -z "$(ls -A "$TMP/empty-dir")" ] && ok "nothing written into it" || bad "written into the empty directory: $(ls -A "$TMP/empty-dir")"

# A resume refused for its checkpoints rewrote config.cfg (dropping its
# header) and the manifest: a refused resume leaves the directory as it was
rn 2 "$SRC/configs/node-fit.cfg" "${fit[@]}" --set checkpoint.every_steps=5 --set "run.dir=\"$TMP/refused\""
expect_status 0 "a run to resume"
for f in "$TMP"/refused/checkpoints/ckpt-*.bin; do printf 'garbage' | dd of="$f" bs=1 seek=100 conv=notrunc 2> /dev/null; done
before=$(tree_sum "$TMP/refused")
rn 2 --resume "$TMP/refused"
expect_status 2 "a resume with only damaged checkpoints"; expect_message "no usable checkpoint in $TMP/refused/checkpoints" "why"
[ "$(tree_sum "$TMP/refused")" = "$before" ] && ok "the refused resume left every file byte for byte as it was" || bad "changed by the refused resume: $(diff <(echo "$before") <(tree_sum "$TMP/refused") | grep '^[<>]' | head -4)"
# a resume refused because the config was shortened below the checkpoint
rn 2 "$SRC/configs/node-fit.cfg" "${fit[@]}" --set checkpoint.every_steps=5 --set "run.dir=\"$TMP/short\""
before=$(tree_sum "$TMP/short")
rn 2 "$SRC/configs/node-fit.cfg" "${fit[@]}" --set train.iterations=10 --resume "$TMP/short"
expect_status 2 "a resume with fewer iterations than its checkpoint"; expect_message "beyond the 10 steps of this configuration" "why"
[ "$(tree_sum "$TMP/short")" = "$before" ] && ok "left as it was (train.csv not cut back)" || bad "changed: $(diff <(echo "$before") <(tree_sum "$TMP/short") | grep '^[<>]' | head -4)"

# A run directory whose path has a quote could be started, not resumed
q="$TMP/q\"uote 'both'"
rn 2 "$SRC/configs/node-fit.cfg" "${fit[@]}" --set checkpoint.every_steps=5 --set "train.iterations=10" --set "run.dir=\"${q//\"/\\\"}\""
expect_status 0 "a run in a directory named with quotes"
rn 2 "$SRC/configs/node-fit.cfg" "${fit[@]}" --resume "$q"
expect_status 0 "its resume"
grep -q "resumed from the checkpoint of step 10" "$out" && [ "$(tail -1 "$q/train.csv" | cut -d, -f4)" = 20 ] && ok "resumed at step 10, on to iteration 20" || bad "resume of the quoted path: $(tail -2 "$out") $(wc -l < "$q/train.csv")"

# A preemption notice while the ranks start killed them (exit 138, no
# manifest): mpirun forwards SIGUSR1 to ranks still loading their libraries.
# Both moments made deterministic: a notice pending (blocked) as the program
# starts, and one raised by a library's constructor before main; each run
# must checkpoint its first step and exit 3 with a "preempted" manifest.
early_notice() { # NAME LAUNCH...
  local name=$1 dir=$TMP/early-$RANDOM
  shift
  "$@" "$BIN" "$SRC/configs/node-fit.cfg" "${fit[@]}" --set "run.dir=\"$dir\"" > "$dir.out" 2> "$dir.err"
  status=$? err=$dir.err
  expect_status 3 "$name"
  grep -q '"status": "preempted"' "$dir/manifest.json" 2> /dev/null && grep -q "signal received: checkpoint of iteration 1 written" "$dir.err" && ok "  checkpointed at its first step, manifest preempted" || bad "  $name: $(tail -2 "$dir.err")"
}
pending_notice() { /usr/bin/python3 -c 'import os, signal, sys
signal.pthread_sigmask(signal.SIG_BLOCK, [signal.SIGUSR1]); os.kill(os.getpid(), signal.SIGUSR1); os.execv(sys.argv[1], sys.argv[1:])' "$@"; }
early_notice "a notice pending as the program starts (one rank, no mpirun)" pending_notice
early_notice "a notice while the libraries start (2 ranks)" mpirun --bind-to none -n 2 -x LD_PRELOAD="$RN_RAISE_NOTICE"
# A diverging ensemble was bad input ("raise ode.max_steps", exit 2) or
# non-finite (exit 4) depending on the group that failed first: an ODE out of
# steps after passes that reached T is divergence, on any group count
for g in 1 2; do
  rn 2 "$SRC/configs/ensemble.cfg" --set 'model.cap="none"' --set sgd.eta=20 --set ode.max_steps=2000 --set parallel.groups=$g --set output.plot=false --set "run.dir=\"$TMP/diverge$g\""
  expect_status 4 "a diverging ensemble on $g group(s)"
  grep -q "the parameters are diverging; lower the learning rate" "$err" && ok "  said to diverge: lower the learning rate" || bad "  $(grep -m1 error "$err")"
done

# node-fit with an A whose solution blows up (in range) ended in a PETSc
# floating-point traceback, exit 1
rn 2 "$SRC/configs/node-fit.cfg" --set 'data.A=[0.1, 2.0, -2.0, 0.1]' --set "run.dir=\"$TMP/blowup\""
expect_status 2 "node-fit data that blows up"
expect_message "data.A: the data's solution of du/dt = A u^3 from u0 = (2, 0) blows up before data.t_end = 1.5" "data.A named"
! grep -q "PETSC ERROR" "$err" && [ ! -e "$TMP/blowup" ] && ok "  no traceback, nothing written" || bad "  traceback or a run directory: $(grep -m2 'PETSC ERROR' "$err")"

# PETSc options: valid ones were refused (the probe had no trajectory),
# overridden ones were accepted and ignored, bad ones were tracebacks or
# messages that did not name the option
petsc_case() { # STATUS MESSAGE OPTION...
  local want=$1 message=$2 dir=$TMP/petsc-$RANDOM
  shift 2
  rn 2 "$SRC/configs/node-fit.cfg" --set train.iterations=3 --set output.plot=false --set "run.dir=\"$dir\"" "$@"
  expect_status "$want" "$*"
  if [ -n "$message" ]; then expect_message "$message" "  $*: named"; fi
  if [ "$want" -ne 0 ]; then [ ! -e "$dir" ] && ok "  nothing written" || bad "  $* wrote $dir"; fi
  ! grep -q "PETSC ERROR" "$err" || bad "  a PETSc traceback for $*"
}
(cd "$TMP" && for o in "-ts_trajectory_type basic -ts_trajectory_keep_files" "-ts_monitor" "-ts_adjoint_monitor" "-log_view" "-log_view :$TMP/lv.csv:ascii_csv" "-log_view :$TMP/lv.txt:ascii_flamegraph"; do
  petsc_case 0 "" $o
done)
[ -s "$TMP/lv.csv" ] && [ -s "$TMP/lv.txt" ] && ok "-log_view wrote its csv and flame graph files" || bad "no -log_view files"
petsc_case 2 "-ts_rtol -1: set by the config's ode.rtol" -ts_rtol -1
petsc_case 2 "-ts_rtol 1e400: set by the config's ode.rtol" -ts_rtol 1e400
petsc_case 2 "-ts_atol 1e-3: set by the config's ode.atol" -ts_atol 1e-3
petsc_case 2 "-ts_max_steps many: set by the config's ode.max_steps" -ts_max_steps many
petsc_case 2 "-ts_max_steps 1.5: set by the config's ode.max_steps" -ts_max_steps 1.5
petsc_case 2 "-ts_max_time 3: fixed by the model" -ts_max_time 3
petsc_case 2 "-rn_data_ts_rtol 1e-9: set by the solver's config" -rn_data_ts_rtol 1e-9
petsc_case 2 "-ts_type '': Unknown type" -ts_type ''
petsc_case 2 "-ts_adapt_safety 'abc': " -ts_adapt_safety abc
petsc_case 2 "-ts_monitor_lg_timestep 'x': " -ts_rk_type 3bs -ts_monitor_lg_timestep x
head -c 300 /dev/urandom > "$TMP/binary-options"; printf '\0\1' >> "$TMP/binary-options"
petsc_case 2 "-options_file $TMP: not a regular file (a directory)" -options_file "$TMP"
petsc_case 2 "-options_file $TMP/binary-options: not text" -options_file "$TMP/binary-options"

# Messages that pointed to the wrong place, or to none: each must name what
# is wrong and where. cfg_error NAME MESSAGE ARGS...: exit 2, the message once
cfg_error() {
  local name=$1 message=$2
  shift 2
  rn 1 "$@" --print-config
  expect_status 2 "$name"; expect_message "$message" "  $name"
}
long=$(/usr/bin/python3 -c "print('[' + ', '.join(['1.0'] * 1000) + ']')")
cfg_error "a 5000-character --set keeps its reason" ": data.A: expected 4 to 4 entries, got 1000" "$SRC/configs/node-fit.cfg" --set "data.A=$long"
grep -q "(5007 characters)" "$err" && ok "  its echo shortened" || bad "  echo: $(head -c 300 "$err")"
printf '@include "%s"\ntrain = { lr_schedule = { epochs = [3]; fatcors = [0.1]; }; };\n' "$SRC/configs/cifar.cfg" > "$TMP/typo-include.cfg"
"$RN_MAKE_CIFAR" "$TMP/cifar-msg" 20 > /dev/null 2>&1
cfg_error "a typo in an including file, before its base's cross-key error" "typo-include.cfg:2: train.lr_schedule.fatcors: unknown key; did you mean 'train.lr_schedule.factors'?" "$TMP/typo-include.cfg" --set "data.dir=\"$TMP/cifar-msg\""
cfg_error "--set of an element by a value of another kind" "--set model.field.[0]=3: model.field.[0] is a group {...} (" "$SRC/configs/node-fit.cfg" --set 'model.field.[0]=3'
cfg_error "--set through a value" "--set train.lr.x=1: train.lr is a number (" "$SRC/configs/node-fit.cfg" --set 'train.lr.x=1'
cfg_error "--set of an element that is not there" "--set model.field.[7].out=3: model.field has 3 elements (" "$SRC/configs/node-fit.cfg" --set 'model.field.[7].out=3'
cfg_error "--set of an element of an absent array" "--set ensemble.depths.[0]=3: ensemble.depths is not in the config" "$SRC/configs/ensemble.cfg" --set 'ensemble.depths.[0]=3'
rn 1 "$SRC/configs/node-fit.cfg" --set 'data.A.[1]=5' --print-config
grep -q "A = \[ -0.1, 5.0, -2.0, -0.1 \]" "$out" && ok "--set of a number array's element with an integer is applied" || bad "data.A.[1]=5: $(grep 'A =' "$out")"
printf 'experiment = "cifar";\ndata = 5;\n' > "$TMP/data5.cfg"
cfg_error "cifar with data = 5" "data5.cfg:2: data: expected a group { ... } holding dir, got an integer" "$TMP/data5.cfg"
cfg_error "an empty run.dir" "run.dir: empty: give the run's directory" "$SRC/configs/node-fit.cfg" --set 'run.dir=""'
cfg_error "a mixed array by --set" "--set data.A=[1, \"a\"]: the array [1, \"a\"] does not parse (libconfig: mismatched element type in array)" "$SRC/configs/node-fit.cfg" --set 'data.A=[1, "a"]'
mkdir -p "$TMP/lockdir/.lock"; echo '{"status": "done"}' > "$TMP/lockdir/manifest.json"
rn 1 "$SRC/configs/node-fit.cfg" --set train.iterations=2 --set "run.dir=\"$TMP/lockdir\""
expect_status 2 "a .lock that is a directory"; expect_message "cannot open its lock file $TMP/lockdir/.lock: Is a directory (a directory: remove it)" "  not reported as a live run"
printf 'experiment = "node-fit";\n%s = 1;\n' "$(printf 'k%.0s' $(seq 1 300))" > "$TMP/longkey.cfg"
cfg_error "a 300-character unknown key" "longkey.cfg:2: kkkk" "$TMP/longkey.cfg"
printf 'train = { lr = 0.1; };\n' > "$TMP/part.cfg"; printf 'experiment = "node-fit";\n@include "part.cfg" junk\n' > "$TMP/junk.cfg"
cfg_error "text after an @include" "junk.cfg:2: text after @include \"part.cfg\": 'junk'" "$TMP/junk.cfg"
/usr/bin/python3 -c "import random; random.seed(1); print('\n'.join(' '.join('%.3f' % random.uniform(-1, 1) for _ in range(4)) for _ in range(40)))" > "$TMP/rows.csv"
rn 1 "$SRC/configs/ensemble.cfg" --set parallel.groups=1 --set 'data.kind="csv"' --set "data.file=\"$TMP/rows.csv\"" --print-config
expect_status 0 "ensemble.cfg switched to CSV data: its synthetic keys are not unknown"
rn 1 --keys --plan; expect_status 2 "--keys with --plan"; expect_message "--keys takes no config, --set, --resume, --print-config or --plan" "  refused"
rn 1 --keys node-fit -ts_rk_type 3bs; expect_status 2 "--keys with a PETSc option"; expect_message "--keys takes no PETSc options (-ts_rk_type)" "  refused"
printf 'experiment = "node-fit";\nrun = { dir = "%s/ab\\x00cd"; };\n' "$TMP" > "$TMP/nulesc.cfg"
cfg_error "a \\x00 escape in a config string" "nulesc.cfg:2: a string holds the escape \\x00" "$TMP/nulesc.cfg"
cfg_error "a \\x00 escape in a --set string" "the string holds the escape \\x00" "$SRC/configs/node-fit.cfg" --set 'run.dir="/tmp/a\x00b"'

# A data file missing on one node only: named with its host, refused before
# the run directory is made (it used to leave a "failed" run behind, host
# unnamed). Rank 1 is made a host of its own (mount and UTS namespaces,
# hostname node-b) that lacks data_batch_3.bin.
if unshare -mu true 2> /dev/null; then
  "$RN_MAKE_CIFAR" "$TMP/cifar" 40 > /dev/null 2>&1
  mkdir -p "$TMP/cifar-partial"
  cp "$TMP"/cifar/*.bin "$TMP/cifar-partial/" && rm "$TMP/cifar-partial/data_batch_3.bin"
  cat > "$TMP/node-b.sh" <<EOS
#!/bin/sh
[ "\$OMPI_COMM_WORLD_RANK" = 1 ] || exec "\$@"
exec unshare -mu sh -c 'hostname node-b && mount --bind "$TMP/cifar-partial" "$TMP/cifar" && exec "\$0" "\$@"' "\$@"
EOS
  chmod +x "$TMP/node-b.sh"
  out=$TMP/nodeb.out err=$TMP/nodeb.err
  timeout 300 mpirun --bind-to none -n 2 "$TMP/node-b.sh" "$BIN" "$SRC/configs/cifar-small.cfg" --set "data.dir=\"$TMP/cifar\"" --set "run.dir=\"$TMP/nodeb-run\"" > "$out" 2> "$err"
  status=$?
  expect_status 2 "a CIFAR file missing on one host only"
  expect_message "$TMP/cifar/data_batch_3.bin: missing; " "the file named"
  expect_message "(on host node-b, rank 1: 1 of the 2 ranks do not see it, the others do" "the host named"
  [ ! -e "$TMP/nodeb-run" ] && ok "refused before the run directory is made" || bad "a run directory was left: $(grep -o '"status": "[a-z]*"' "$TMP/nodeb-run/manifest.json")"
else
  echo "skipped: a file missing on one host: no mount namespaces here (unshare -mu)"
fi
finish
