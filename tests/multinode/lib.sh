# Shared by the multinode tests (after tests/cli/lib.sh): the check that
# this machine can make namespaces, the cluster of N nodes in $D (torn down
# on exit, even when a test fails), and the comparisons of run directories.
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)

# cluster_up N WHAT: one "skipped:" line and exit 0 where namespaces cannot
# be made (not root, no iproute2); else N nodes in $D
cluster_up() {
  if [ "$(id -u)" -ne 0 ] || ! command -v ip > /dev/null || ! ip netns add rn-probe 2> /dev/null; then
    echo "skipped: $2 make network namespaces, which needs root and iproute2"
    exit 0
  fi
  ip netns del rn-probe
  D=$TMP/cluster
  trap 'bash "$here/cluster.sh" down "$D"; rm -rf "$TMP"' EXIT
  bash "$here/cluster.sh" up "$1" "$D" > "$TMP/up.log" 2>&1 || { bad "the cluster did not come up: $(cat "$TMP/up.log")"; finish; exit 1; }
}

# the mission's command (configs/cifar.cfg on 64 ranks) shrunk, and where its
# ranks go on the 3 nodes (mpirun's hostfile of 22, 21 and 21 slots; Slurm's
# block distribution of 64 tasks on 3 nodes is the same)
mission_shrink=(--set data.max_train=640 --set data.max_test=64 --set model.channels=4 --set 'model.depths=[1, 2]' --set ode.steps=2 --set train.epochs=1 --set train.eval_batch=64 --set data.fold=0)
mission_hosts="rn1:0-21 rn2:22-42 rn3:43-63"

# expect_slack WHAT VALUES: every node's WHAT (their /proc/self/timerslack_ns,
# one per line) sleep with the cluster's timer slack (cluster.sh TIMER_SLACK_NS)
expect_slack() {
  local want
  want=$(sed -n 's/^TIMER_SLACK_NS=//p' "$here/cluster.sh")
  [ -n "$want" ] && [ "$(sort -u <<< "$2")" = "$want" ] && ok "  the nodes' $1 sleep with a timer slack of $want ns" || bad "  the nodes' $1's timer slack: $(sort -u <<< "$2" | tr '\n' ' ') (want ${want:-TIMER_SLACK_NS in cluster.sh})"
}

# expect_went_on OUT: a resumed run (its output in OUT) went on from the
# units' checkpoints: a unit in progress resumed, or one counted as finished
# (a stop can come at a unit's last step: which one depends on when it comes)
expect_went_on() {
  grep -qE '\(resumed\)|^units: [1-9][0-9]* of [0-9]* finished already' "$1" && ok "  it went on from the units' checkpoints: $(grep -cE '\(resumed\)' "$1") resumed, $(sed -n 's/^units: \([0-9]*\) of [0-9]* finished already.*/\1/p' "$1" | tail -1 | grep . || echo 0) finished already" \
    || bad "  no unit resumed or finished already: $(grep -E '^units:|resumed' "$1" | head -4)"
}

# hosts RUN_DIR: the manifest's rank_hosts
hosts() { sed -n 's/.*"rank_hosts": "\([^"]*\)".*/\1/p' "$1/manifest.json"; }

# same_units A B [N]: N (3) snapshots bitwise, and the rows of final.csv and
# epochs.csv but for the group (the queue's choice) and the times
same_units() {
  local a=$1 b=$2 n=0 f
  for f in "$a"/snapshots/*.bin; do
    cmp -s "$f" "$b/snapshots/$(basename "$f")" || { bad "$(basename "$f") differs between $a and $b"; return; }
    n=$((n + 1))
  done
  # (the group that trained a unit is the queue's choice: column 1 is left out)
  cmp -s <(cut -d, -f2-9 "$a/final.csv") <(cut -d, -f2-9 "$b/final.csv") || { bad "final.csv differs: $(diff <(cut -d, -f2-9 "$a/final.csv") <(cut -d, -f2-9 "$b/final.csv"))"; return; }
  cmp -s <(cut -d, -f2-7,9-13 "$a/epochs.csv") <(cut -d, -f2-7,9-13 "$b/epochs.csv") || { bad "epochs.csv differs: $(diff <(cut -d, -f2-7,9-13 "$a/epochs.csv") <(cut -d, -f2-7,9-13 "$b/epochs.csv") | head -4)"; return; }
  [ "$n" -eq "${3:-3}" ] && ok "$n units' parameters bitwise the same, and the rows of final.csv and epochs.csv" || bad "$n snapshots compared, expected ${3:-3}"
}
