#!/usr/bin/env bash
# Bad input of every kind through the binary on 2 ranks: exit status 2, one
# clear message naming what is wrong and where, no hang.
. "$(dirname "$0")/lib.sh"
cfg=$TMP/bad.cfg
printf 'experiment = "node-fit";\ntrain = {\n  iterations = 10;\n  lrate = 0.1;\n};\n' > "$cfg"
rn 2 "$cfg"; expect_status 2 "unknown key"; expect_message "bad.cfg:4: train.lrate: unknown key; did you mean 'train.lr'?" "unknown key"
printf 'experiment = "node-fit";\ntrain = { iterations = "many"; };\n' > "$cfg"
rn 2 "$cfg"; expect_status 2 "wrong type"; expect_message "bad.cfg:2: train.iterations: expected an integer" "wrong type"
printf 'experiment = "node-fit";\node = { rtol = -1.0; };\n' > "$cfg"
rn 2 "$cfg"; expect_status 2 "out of range"; expect_message "bad.cfg:2: ode.rtol: must be in" "out of range"
printf 'experiment = "node-fits";\n' > "$cfg"
rn 2 "$cfg"; expect_status 2 "unknown experiment"; expect_message 'bad.cfg:1: experiment: "node-fits" is not one of' "unknown experiment"
printf 'experiment = "node-fit"\ntrain = { lr = 0.1 ;; };\n' > "$cfg"
rn 2 "$cfg"; expect_status 2 "syntax error"; expect_message "bad.cfg:2: syntax error" "syntax error"
rn 2 "$TMP/none.cfg"; expect_status 2 "missing config"; expect_message "none.cfg: cannot open the config file" "missing config"
rn 2 "$SRC/configs/node-fit.cfg" --set train.lr=abc; expect_status 2 "bad --set"; expect_message '--set train.lr=abc: train.lr: expected a number in [0, 1000], got a string ("abc")' "a bare word for a number key"
rn 2 "$SRC/configs/node-fit.cfg" --set 'ode.solver="rk4"' --set ode.adaptive=true; expect_status 2 "adaptive without an error estimate"; expect_message "ode.adaptive: solver \"rk4\" has no error estimate" "adaptive rk4"
rn 2 "$SRC/configs/ensemble.cfg" --set parallel.groups=3; expect_status 2 "groups not dividing the ranks"; expect_message "3 groups do not divide the 2 MPI ranks" "groups"
# the CIFAR ensemble in 2 groups on 1 rank: the group count named, not data.dir taken for a typo of data.dim
rn 1 "$SRC/configs/cifar-ensemble.cfg" --set parallel.groups=2 --set "data.dir=\"$TMP\""; expect_status 2 "the CIFAR ensemble's 2 groups on 1 rank"; expect_message "2 groups do not divide the 1 MPI ranks" "groups, not a typo"
rn 2 "$SRC/configs/ensemble.cfg" --set ensemble.members=0; expect_status 2 "no members"; expect_message "ensemble.members: must be in [1," "members"
rn 2 "$SRC/configs/ensemble.cfg" --set ensemble.members=1 --set 'ensemble.depths=[2]' --set sgd.steps=2; expect_status 2 "one member"; expect_message "ensemble.members: 1 member has no spread" "one member refused up front"
rn 2 "$SRC/configs/ensemble.cfg" --set 'ensemble.depths=[]'; expect_status 2 "empty depth list"; expect_message "ensemble.depths: expected 1 to 64 entries, got 0" "depths"
printf '# x1 x2 y1 y2\n0.1 0.2 0.3 0.4\n0.5 oops 0.7 0.8\n' > "$TMP/data.txt"
rn 2 "$SRC/configs/ensemble.cfg" --set 'data.kind="csv"' --set "data.file=\"$TMP/data.txt\""; expect_status 2 "bad data file"; expect_message "data.txt:3: expected 4 numbers" "data file line"
rn 2 "$SRC/configs/node-fit.cfg" --set 'run.dir="/proc/forbidden/run"'; expect_status 2 "unwritable run directory"; expect_message "run directory /proc/forbidden/run: cannot create it" "run dir"
rn 2 --resume "$TMP/no-such-run"; expect_status 2 "resume of a missing run"; expect_message "--resume $TMP/no-such-run: no such directory; check the path" "resume"
# the common keys are accepted by every experiment
rn 2 "$SRC/configs/identity.cfg" --set parallel.groups=1 --set checkpoint.every_steps=100 --set train.max_epochs=200 --set "run.dir=\"$TMP/common\""
expect_status 0 "identity takes parallel.groups = 1 and checkpoint.*"
rn 2 "$SRC/configs/node-fit.cfg" --set parallel.groups=2
expect_status 2 "node-fit with two groups"; expect_message "parallel.groups: node-fit trains one model on all the ranks: use 1, got 2" "one group named"
# a scalar or an array where a group is expected names the type (it used to be replaced by the defaults)
printf 'experiment = "node-fit";\ntrain = 5;\n' > "$TMP/scalar.cfg"
rn 2 "$TMP/scalar.cfg"; expect_status 2 "a scalar where a group is expected"; expect_message "scalar.cfg:2: train: expected a group { ... } holding optimizer, got an integer" "the group's type named"
printf 'experiment = "ensemble";\nsgd = [1];\n' > "$TMP/array.cfg"
rn 2 "$TMP/array.cfg"; expect_status 2 "an array where a group is expected"; expect_message "array.cfg:2: sgd: expected a group { ... } holding eta, got an array" "the array named"
# the command line: usage errors once (rank 0), a second CONFIG refused, a PETSc option before CONFIG
rn 2 "$SRC/configs/node-fit.cfg" "$SRC/configs/ensemble.cfg"; expect_status 2 "two configs"; expect_message "two configs given" "two configs named, once"
rn 2 "$SRC/configs/node-fit.cfg" --frobnicate; expect_status 2 "an unknown option"; expect_message "unknown option --frobnicate" "unknown option named, once"
rn 2 -log_view "$SRC/configs/identity.cfg" --set train.max_epochs=20 --set "run.dir=\"$TMP/logview\""; expect_status 0 "a PETSc option before CONFIG"
grep -q "identity on 2 rank" "$out" && ok "the config after a PETSc option is the CONFIG" || bad "log: $(head -2 "$out")"
# CSV data: non-finite numbers are input errors at their line; rows wider than 512 numbers are read
printf '# x1 x2 y1 y2\n0.1 0.2 0.3 0.4\n0.5 nan 0.7 0.8\n' > "$TMP/nan.txt"
rn 2 "$SRC/configs/ensemble.cfg" --set 'data.kind="csv"' --set "data.file=\"$TMP/nan.txt\""; expect_status 2 "a nan in the data"; expect_message "nan.txt:3: number 2 is nan: the data must be finite" "the nan's line and column"
/usr/bin/python3 -c "
import random
random.seed(1)
with open('$TMP/wide.txt', 'w') as f:
    for i in range(40): f.write(' '.join('%.6f' % random.uniform(-1, 1) for _ in range(600)) + '\\n')
"
cat > "$TMP/wide.cfg" <<CFG
experiment = "ensemble";
data = { kind = "csv"; file = "$TMP/wide.txt"; dim = 300; };
model = { field = ( { type = "dense"; out = 8; activation = "tanh"; }, { type = "dense"; out = 300; } ); };
ensemble = { members = 2; depths = [2, 4]; limit = false; };
sgd = { steps = 2; batch = 8; };
output = { plot = false; };
CFG
rn 2 "$TMP/wide.cfg" --set "run.dir=\"$TMP/wide\""
expect_status 0 "data.dim = 300 (rows of 600 numbers) is read"
# config files: a directory or a FIFO is refused at once (a FIFO used to block every rank);
# a relative @include is relative to the including file; integers beyond 32 bits are refused
mkdir -p "$TMP/cfgdir" "$TMP/inc" "$TMP/cwd"
rn 2 "$TMP/cfgdir"; expect_status 2 "a directory as CONFIG"; expect_message "the config is not a regular file (a directory)" "directory named"
mkfifo "$TMP/fifo.cfg"
rn 2 "$TMP/fifo.cfg"; expect_status 2 "a FIFO as CONFIG"; expect_message "the config is not a regular file (a FIFO)" "FIFO named"
printf 'train = { max_epochs = 20; };\n' > "$TMP/inc/part.cfg"
printf 'experiment = "identity";\n@include "part.cfg"\n' > "$TMP/inc/main.cfg"
(cd "$TMP/cwd" && rn 2 "$TMP/inc/main.cfg" --set "run.dir=\"$TMP/included\""; echo "$status" > "$TMP/status")
status=$(cat "$TMP/status")
expect_status 0 "a relative @include from another working directory"
grep -q "max_epochs = 20" "$TMP/included/config.cfg" && ok "the included keys applied" || bad "config: $(grep max_epochs "$TMP/included/config.cfg")"
mkfifo "$TMP/inc/pipe.cfg"
printf 'experiment = "identity";\n@include "pipe.cfg"\n' > "$TMP/inc/bad.cfg"
rn 2 "$TMP/inc/bad.cfg"; expect_status 2 "an @include of a FIFO"; expect_message '@include "pipe.cfg"' "the include named"
printf 'experiment = "node-fit";\ntrain = { iterations = 4294967299; };\n' > "$TMP/wrap.cfg"
rn 2 "$TMP/wrap.cfg"; expect_status 2 "an integer beyond 32 bits in a file"; expect_message "wrap.cfg:2: the integer 4294967299 does not fit in 32 bits" "the literal and its line named"
rn 2 "$SRC/configs/node-fit.cfg" --set train.iterations=9223372036854775808; expect_status 2 "an integer beyond 32 bits in --set"; expect_message "the integer 9223372036854775808 does not fit in 32 bits" "the --set literal named"
# PETSc options: a bad value is an input error, an unused (misspelled) one is reported
rn 2 "$SRC/configs/node-fit.cfg" --set train.iterations=3 -ts_rk_type nonsense; expect_status 2 "-ts_rk_type nonsense"; expect_message "-ts_rk_type 'nonsense': " "the bad option reported, no traceback"
# checked before step 1, nothing written (a 14-hour run with -ts_rk_typ 3bs used
# to run rk4 and say so at its end); each of these was accepted or a traceback
petsc_bad() { # NAME MESSAGE OPTION...
  local name=$1 message=$2
  shift 2
  rn 2 "$SRC/configs/node-fit.cfg" --set train.iterations=3 --set "run.dir=\"$TMP/petsc-bad\"" "$@"
  expect_status 2 "$name"; expect_message "$message" "$name named"
  [ ! -e "$TMP/petsc-bad" ] && ok "  nothing written" || { bad "  $name wrote $TMP/petsc-bad"; rm -rf "$TMP/petsc-bad"; }
}
petsc_bad "a misspelled PETSc option" "the PETSc option -ts_rk_typ is read by nothing in this node-fit run: did you mean -ts_rk_type?" -ts_rk_typ 3bs
petsc_bad "an implicit TS type" "-ts_type beuler: resnode's neural ODE is integrated by explicit Runge-Kutta methods" -ts_type beuler
petsc_bad "a negative step limit" "-ts_max_steps -5: set by the config's ode.max_steps" -ts_max_steps -5
petsc_bad "an option without its value" "-ts_rk_type is given without a value" -ts_rk_type
petsc_bad "a missing options file" "-options_file /nonexistent/opts: cannot read it" -options_file /nonexistent/opts
rn 2 "$SRC/configs/identity.cfg" --set train.max_epochs=3 -ts_rk_type 3bs; expect_status 2 "a TS option for an experiment without an ODE"
expect_message "the PETSc option -ts_rk_type is read by nothing in this identity run" "the experiment named"
rn 2 "$SRC/configs/node-fit.cfg" --set train.iterations=3 --set "run.dir=\"$TMP/petsc-ok\"" -ts_rk_type 3bs -rn_data_ts_adapt_safety 0.8 -ts_monitor
expect_status 0 "valid options for both of node-fit's solvers"
# did-you-mean: for a misspelled required key, and before a cross-key check that the typo caused
printf 'experimnet = "node-fit";\n' > "$TMP/typo1.cfg"
rn 2 "$TMP/typo1.cfg"; expect_status 2 "a misspelled required key"; expect_message "experiment: missing; expected a \"string\" (is 'experimnet' at $TMP/typo1.cfg:1 a misspelling of it?)" "the misspelling pointed at"
printf 'experiment = "node-fit";\node = { sovler = "rk4"; adaptive = true; };\n' > "$TMP/typo2.cfg"
rn 2 "$TMP/typo2.cfg"; expect_status 2 "a misspelled key that a cross-key check trips over"; expect_message "typo2.cfg:2: ode.sovler: unknown key; did you mean 'ode.solver'?" "the typo reported first"
# errors inside model.field carry the line of the layer: a misspelled key, a scalar for a layer
printf 'experiment = "ensemble";\nmodel = {\n  field = ( { type = "dense"; out = 16; },\n    { typ = "dense"; out = 2; } );\n};\n' > "$TMP/field1.cfg"
rn 2 "$TMP/field1.cfg"; expect_status 2 "a misspelled key in a layer"; expect_message "field1.cfg:4: model.field.[1].type: missing; expected a \"string\" (is 'model.field.[1].typ' at $TMP/field1.cfg:4 a misspelling of it?)" "the layer's line and the misspelling"
printf 'experiment = "ensemble";\nmodel = {\n  field = ( { type = "dense"; out = 16; },\n    5 );\n};\n' > "$TMP/field2.cfg"
rn 2 "$TMP/field2.cfg"; expect_status 2 "a number where a layer is expected"; expect_message "field2.cfg:4: model.field.[1]: expected a group { ... } such as { type = \"dense\"; out = 16; }, got an integer" "the element's line and type"
# a size no rank can hold (10^6 members: their M x M Gram matrix is 7.3 TiB):
# one line and exit 2, not a malloc traceback
rn 2 "$SRC/configs/ensemble.cfg" --set ensemble.members=1000000 --set sgd.steps=20000 --set "run.dir=\"$TMP/huge\""
expect_status 2 "an ensemble too large for memory"
grep -q "out of memory: one allocation of 7.3 TiB with .* available on the node (in RecorderSetUp)" "$err" && ! grep -q "PETSC ERROR" "$err" && ok "out of memory said in one line with the size asked for, no traceback" || bad "out of memory: $(grep -m3 -v Configure "$err")"
grep -q '"reason": "out of memory: one allocation of 7.3 TiB' "$TMP/huge/manifest.json" && ok "the manifest says out of memory" || bad "manifest: $(grep -E 'status|reason' "$TMP/huge/manifest.json")"
finish
