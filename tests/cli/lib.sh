# Shared by the command-line tests: run the binary under mpirun, check exit
# codes, messages and files. Every check that fails prints why and counts.
set -u
BIN=${RESNODE_BINARY:?RESNODE_BINARY not set (run through ctest)}
SRC=${RESNODE_SOURCE_DIR:?RESNODE_SOURCE_DIR not set}
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 OMPI_MCA_rmaps_base_oversubscribe=1
export OPENBLAS_NUM_THREADS=1
TMP=$(mktemp -d /tmp/rn-cli-XXXXXX)
trap 'rm -rf "$TMP"' EXIT
passed=0
failed=0

ok() { passed=$((passed + 1)); echo "  ok: $*"; }
bad() { failed=$((failed + 1)); echo "  FAILED: $*"; }

# rn NP ARGS...: runs the binary; sets $status, $out, $err (file names)
rn() {
  local np=$1
  shift
  out=$TMP/out.$RANDOM
  err=$TMP/err.$RANDOM
  timeout 300 mpirun --bind-to none -n "$np" "$BIN" "$@" > "$out" 2> "$err"
  status=$?
}

# signal_when RUN_DIR FILE ROWS ARGS...: runs the binary on 2 ranks with
# run.dir = RUN_DIR, sends SIGUSR1 (mpirun forwards it to the ranks) once
# RUN_DIR/FILE has more than ROWS lines, waits; sets $status and $err
# (stdout and stderr in RUN_DIR.out and RUN_DIR.err)
signal_when() {
  local dir=$1 file=$2 rows=$3 pid i
  shift 3
  mpirun --bind-to none -n 2 "$BIN" "$@" --set "run.dir=\"$dir\"" > "$dir.out" 2> "$dir.err" &
  pid=$!
  for i in $(seq 1 1200); do
    [ -f "$dir/$file" ] && [ "$(wc -l < "$dir/$file")" -gt "$rows" ] && break
    sleep 0.05
  done
  # SIGNAL_DELAY: seconds more, to land away from the row's own step
  [ -n "${SIGNAL_DELAY:-}" ] && sleep "$SIGNAL_DELAY"
  kill -USR1 $pid
  wait $pid
  status=$?
  err=$dir.err
}

# python_with MODULE: the first Python 3 that imports MODULE, of
# $RESNODE_PYTHON, python3 on PATH and the system's /usr/bin/python3 ("" if none)
python_with() {
  local py
  for py in ${RESNODE_PYTHON:-} python3 /usr/bin/python3; do
    if command -v "$py" > /dev/null 2>&1 && "$py" -c "import $1" > /dev/null 2>&1; then echo "$py"; return; fi
  done
}

# run_analysis: runs the analysis command the last run named on its last
# line ("done: results in DIR; plots and report: COMMAND DIR"), as a user
# would copy it; it must exit 0
run_analysis() {
  local line
  line=$(tail -1 "$out" | sed -n 's/^done: results in .*; plots and report: //p')
  if [ -z "$line" ]; then
    bad "the run's last line names no analysis command: $(tail -1 "$out")"
    return 1
  fi
  if eval "$line" > "$TMP/analysis.out" 2>&1; then ok "the command the run names: $line"; else bad "$line: $(tail -3 "$TMP/analysis.out")"; fi
}

# has_bf16: whether the binary runs bfloat16 on this CPU (oneDNN 2.6 has no
# bfloat16 convolutions without AVX-512: the binary refuses it, naming the key)
has_bf16() {
  local d=$TMP/bf16-probe
  mkdir -p "$d" && "${RN_MAKE_CIFAR:?RN_MAKE_CIFAR not set}" "$d" 10 > /dev/null 2>&1
  ! "$BIN" "$SRC/configs/cifar-small.cfg" --set "data.dir=\"$d\"" --set 'model.precision="bfloat16"' --print-config 2>&1 | grep -q "needs bfloat16 convolutions"
}

expect_status() {
  if [ "$status" -eq "$1" ]; then ok "$2 (exit $status)"; else bad "$2: exit $status, expected $1"; sed 's/^/    | /' "$err" | head -20; fi
}

# the message appears exactly once (rank 0 prints, the others do not)
expect_message() {
  local n
  n=$(grep -cF -- "$1" "$err")
  if [ "$n" -eq 1 ]; then ok "$2: says '$1'"; else bad "$2: '$1' appears $n times in stderr"; sed 's/^/    | /' "$err" | head -20; fi
}

expect_file() {
  if [ -s "$1" ]; then ok "$2"; else bad "$2: $1 missing or empty"; fi
}

# h5_same A B [RTOL]: the HDF5 files A and B hold the same datasets and
# attributes bit for bit (datasets named gram: to RTOL, if given); prints why not
h5_same() {
  /usr/bin/python3 - "$@" <<'PY'
import sys
import h5py
import numpy as np
a, b = h5py.File(sys.argv[1], "r"), h5py.File(sys.argv[2], "r")
rtol = float(sys.argv[3]) if len(sys.argv) > 3 else 0.0
if sorted(a) != sorted(b) or sorted(a.attrs) != sorted(b.attrs):
    sys.exit("%s: datasets %s, against %s" % (sys.argv[2], list(b), list(a)))
for k in a:
    x, y = a[k][()], b[k][()]
    if x.shape != y.shape:
        sys.exit("%s: %s has shape %s, expected %s" % (sys.argv[2], k, y.shape, x.shape))
    if k == "gram" and rtol:
        if not np.allclose(x, y, rtol=rtol, atol=rtol * np.abs(x).max()):
            sys.exit("%s: gram differs by %.3g" % (sys.argv[2], np.abs(x - y).max()))
    elif x.tobytes() != y.tobytes():
        sys.exit("%s: %s differs" % (sys.argv[2], k))
PY
}

finish() {
  echo "$passed passed, $failed failed"
  [ "$failed" -eq 0 ]
}

# wait_jobs ID...: until none of them is queued or running (at most ~5
# minutes). Slurm holds a requeued job about two minutes (Reason=BeginTime):
# the test starts it at once.
wait_jobs() {
  for i in $(seq 1 300); do
    [ -z "$(squeue -h -j "$(IFS=,; echo "$*")" -o %i 2>/dev/null)" ] && return 0
    for held in $(squeue -h -j "$(IFS=,; echo "$*")" -t PD -o "%i %r" 2>/dev/null | awk '$2 == "BeginTime" {print $1}'); do
      scontrol update JobId="$held" StartTime=now 2> /dev/null
    done
    sleep 1
  done
  return 1
}
