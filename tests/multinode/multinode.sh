#!/usr/bin/env bash
# The per-node promises on a cluster of 3 hosts made on this machine
# (cluster.sh: network and UTS namespaces, TCP over a private bridge), with
# mpirun and a hostfile of the nodes:
#  - parallel.groups = 0 is one group per node, on 3 nodes and on 2: each
#    group's ranks on one host (the manifest's rank_hosts, from
#    MPI_Get_processor_name), the hosts all different;
#  - the same units on one host (parallel.groups = 3, then 2) give the same
#    parameters bit for bit, and the same tables;
#  - a run on 3 nodes stopped by a signal (every node's ranks checkpoint
#    their units into the shared run directory) resumes on 1 node and on 2
#    nodes, and both end bitwise equal to the uninterrupted run, with exactly
#    its rows;
#  - a node that dies mid-run (its ranks and daemon SIGKILLed): the job,
#    through jobs/slurm/run-resnode.sh, ends within a minute, its manifest
#    says failed and names the lost host, and a resubmission resumes from
#    the last checkpoint, bitwise, with exactly the rows;
#  - one copy of the data a node (the manifest's data_copies), and every
#    rank's peak resident memory in the manifest;
#  - the ensemble's HDF5 arrays written collectively from the 3 nodes equal
#    a 1-rank write (parameters bitwise, Gram matrices to rounding);
#  - a data.dir on one node only: an input error (exit 2) naming the other
#    host, no hang;
#  - the mission's command, mpirun -n 64 resnode-mpi configs/cifar.cfg
#    (shrunk), on the 3 nodes (oversubscribed: 64 ranks on 2 cores). The
#    nodes' daemons and ranks run with a coarse timer slack (cluster.sh: else
#    Open MPI's start-up, waiting in usleep(100) loops, took from 20 s to
#    more than 10 minutes); the test checks that, and results, not time.
# Needs root (ip netns); elsewhere one "skipped:" line.
. "$(dirname "$0")/../cli/lib.sh"
. "$(dirname "$0")/lib.sh"
cluster_up 3 "the multinode tests"
ok "3 nodes up: $(tr '\n' ' ' < "$D/hostfile")"
"${RN_MAKE_CIFAR:?}" "$TMP/img" 60 > /dev/null || bad "could not generate images"
cifar=("$SRC/configs/cifar.cfg" --set "data.dir=\"$TMP/img\"" --set data.max_train=120 --set data.max_test=30 --set model.channels=4 --set 'model.depths=[1,2]'
  --set ode.steps=2 --set train.epochs=1 --set train.batch=24 --set train.eval_batch=60 --set data.folds=3 --set data.fold=0)

# the by-hand line of tests/multinode/README.md
(. "$D/mpirun-env" && timeout 120 mpirun --hostfile "$D/hostfile" -n 6 "$BIN" "$SRC/configs/node-fit.cfg" --set train.iterations=20 --set "run.dir=\"$TMP/byhand\"") > "$TMP/byhand.out" 2>&1
status=$? err=$TMP/byhand.out
expect_status 0 "the README's node-fit on the 3 nodes"
[ "$(hosts "$TMP/byhand")" = "rn1:0-1 rn2:2-3 rn3:4-5" ] && ok "  ranks on rn1, rn2, rn3" || bad "  rank_hosts: $(hosts "$TMP/byhand")"
expect_slack ranks "$(. "$D/mpirun-env" && timeout 60 mpirun --hostfile "$D/hostfile" -n 6 cat /proc/self/timerslack_ns)"

for nodes in 3 2; do
  head -n "$nodes" "$D/hostfile" > "$TMP/hostfile$nodes"
  ranks=$((2 * nodes))
  (. "$D/mpirun-env" && timeout 300 mpirun --bind-to none --hostfile "$TMP/hostfile$nodes" -n $ranks "$BIN" "${cifar[@]}" --set parallel.groups=0 --set "run.dir=\"$TMP/nodes$nodes\"") > "$TMP/nodes$nodes.out" 2>&1
  status=$? err=$TMP/nodes$nodes.out
  expect_status 0 "configs/cifar.cfg (shrunk) on $nodes nodes, $ranks ranks, parallel.groups = 0"
  grep -q "in $nodes group(s)" "$TMP/nodes$nodes.out" && ok "  one group per node: $nodes groups" || bad "  groups: $(grep 'group(s)' "$TMP/nodes$nodes.out" | head -1)"
  want=$(for i in $(seq 1 "$nodes"); do printf 'rn%d:%d-%d ' "$i" $((2 * i - 2)) $((2 * i - 1)); done)
  [ "$(hosts "$TMP/nodes$nodes")" = "${want% }" ] && ok "  each group's ranks on one host, every host different: $(hosts "$TMP/nodes$nodes")" || bad "  rank_hosts: '$(hosts "$TMP/nodes$nodes")', expected '${want% }'"
  grep -q "\"data_copies\": \"$nodes copies of .* on $nodes node(s), one a node\"" "$TMP/nodes$nodes/manifest.json" && ok "  one copy of the images a node: $(sed -n 's/.*"data_copies": "\(.*\)".*/\1/p' "$TMP/nodes$nodes/manifest.json")" || bad "  data copies: $(grep data_copies "$TMP/nodes$nodes/manifest.json")"
  rss=$(sed -n 's/.*"peak_rss_mb": \[\(.*\)\].*/\1/p' "$TMP/nodes$nodes/manifest.json")
  [ "$(echo "$rss" | tr ',' '\n' | grep -c '[0-9]')" -eq $ranks ] && ok "  peak resident memory of each rank (MB): $rss" || bad "  peak_rss_mb: '$rss'"
  timeout 300 mpirun --bind-to none -n $ranks "$BIN" "${cifar[@]}" --set parallel.groups=$nodes --set "run.dir=\"$TMP/one$nodes\"" > "$TMP/one$nodes.out" 2>&1
  status=$? err=$TMP/one$nodes.out
  expect_status 0 "the same units on one host ($nodes groups)"
  [ "$(hosts "$TMP/one$nodes" | wc -w)" -eq 1 ] && ok "  all on one host: $(hosts "$TMP/one$nodes")" || bad "  rank_hosts: $(hosts "$TMP/one$nodes")"
  same_units "$TMP/nodes$nodes" "$TMP/one$nodes"
done

# checkpoints across node counts: 9 units (3 folds) on 3 nodes, stopped by
# SIGUSR1 once a unit has finished an epoch (mpirun forwards it to every
# node's ranks), then resumed from copies of the run directory on 1 node and
# on 2 nodes (one group per node: groups of 2 ranks, as before)
long=("${cifar[@]}" --set data.fold=-1 --set model.channels=8 --set train.epochs=2 --set data.max_train=0 --set checkpoint.every_seconds=0)
"${RN_MAKE_CIFAR:?}" "$TMP/img" 200 > /dev/null || bad "could not generate images"
timeout 600 mpirun --bind-to none -n 6 "$BIN" "${long[@]}" --set parallel.groups=3 --set "run.dir=\"$TMP/uncut\"" > "$TMP/uncut.out" 2>&1
status=$? err=$TMP/uncut.out
expect_status 0 "the uninterrupted reference (9 units, one host)"
(. "$D/mpirun-env" && exec timeout 600 mpirun --bind-to none --hostfile "$D/hostfile" -n 6 "$BIN" "${long[@]}" --set parallel.groups=0 --set "run.dir=\"$TMP/cut\"") > "$TMP/cut.out" 2>&1 &
pid=$!
for i in $(seq 1 1200); do
  [ "$(cat "$TMP"/cut/units/*/epochs.csv 2> /dev/null | grep -c ',resnet,\|,ode,')" -ge 1 ] && break
  sleep 0.05
done
# to mpirun itself ($pid is `timeout`, exec'ed by the subshell, which would die of it)
kill -USR1 "$(pgrep -P $pid mpirun)"
wait $pid
status=$? err=$TMP/cut.out
expect_status 3 "the 3-node run stopped by SIGUSR1"
[ "$(hosts "$TMP/cut")" = "rn1:0-1 rn2:2-3 rn3:4-5" ] && ok "  its ranks were on rn1, rn2, rn3" || bad "  rank_hosts: $(hosts "$TMP/cut")"
inprogress=$(ls "$TMP"/cut/units/*/checkpoints/*.done 2> /dev/null | wc -l)
[ "$inprogress" -ge 3 ] && ok "  every node's group checkpointed its unit in the shared run directory ($inprogress unit checkpoints)" || bad "  unit checkpoints: $(ls "$TMP"/cut/units/*/checkpoints/ 2>&1)"
cp -a "$TMP/cut" "$TMP/cut1"
mv "$TMP/cut" "$TMP/cut2"
timeout 600 mpirun --bind-to none -n 2 "$BIN" --resume "$TMP/cut1" > "$TMP/cut1.out" 2>&1
status=$? err=$TMP/cut1.out
expect_status 0 "resumed on 1 node (1 group of 2 ranks)"
same_units "$TMP/uncut" "$TMP/cut1" 9
head -n 2 "$D/hostfile" > "$TMP/hostfile2"
(. "$D/mpirun-env" && exec timeout 600 mpirun --bind-to none --hostfile "$TMP/hostfile2" -n 4 "$BIN" --resume "$TMP/cut2") > "$TMP/cut2.out" 2>&1
status=$? err=$TMP/cut2.out
expect_status 0 "resumed on 2 nodes (2 groups of 2 ranks)"
[ "$(hosts "$TMP/cut2")" = "rn1:0-1 rn2:2-3" ] && ok "  its ranks on rn1 and rn2" || bad "  rank_hosts: $(hosts "$TMP/cut2")"
same_units "$TMP/uncut" "$TMP/cut2" 9
# a node dies: rn3's processes (its ranks and Open MPI's daemon) SIGKILLed
# once the run has checkpointed a unit (checkpoint.every_steps = 2)
(. "$D/mpirun-env" && export OMPI_MCA_orte_default_hostfile="$D/hostfile" SLURM_NTASKS=6 RESNODE_LAUNCHER=mpirun RESNODE_BIN=$BIN RESNODE_ANALYSE=0 &&
  exec bash "$SRC/jobs/slurm/run-resnode.sh" "$TMP/dies" "${long[@]}" --set parallel.groups=0 --set checkpoint.every_steps=2) > "$TMP/dies.out" 2>&1 &
pid=$!
for i in $(seq 1 1200); do
  ls "$TMP"/dies/units/*/checkpoints/*.done > /dev/null 2>&1 && break
  sleep 0.05
done
killed=$(date +%s)
ip netns pids rn3 | xargs -r kill -9
wait $pid
status=$? err=$TMP/dies.out
took=$(($(date +%s) - killed))
[ "$status" -ne 0 ] && [ "$took" -le 60 ] && ok "node rn3 killed: the job ended in ${took} s with status $status (bound: 60 s)" || bad "after rn3 died: status $status after ${took} s"
# (mpirun names the node by the hostfile's address when its daemon is gone)
rn3=$(sed -n 3p "$D/hostfile" | cut -d' ' -f1)
grep -q '"status": "failed"' "$TMP/dies/manifest.json" && grep -qE "\"reason\": \"lost: (rank [0-9]* on )?host (rn3|$rn3)[ ;]" "$TMP/dies/manifest.json" && ok "  manifest: failed, $(sed -n 's/.*"reason": "\([^;]*\);.*/\1/p' "$TMP/dies/manifest.json")" || bad "  manifest: $(grep -E '"status|"reason' "$TMP/dies/manifest.json")"
timeout 600 mpirun --bind-to none -n 4 "$BIN" --resume "$TMP/dies" --set parallel.groups=2 > "$TMP/dies-resume.out" 2>&1
status=$? err=$TMP/dies-resume.out
expect_status 0 "the resubmission (one host, 2 groups of 2) resumes from the last checkpoint"
expect_went_on "$TMP/dies-resume.out"
same_units "$TMP/uncut" "$TMP/dies" 9

# the ensemble's HDF5 arrays written by 3 nodes (MPI-IO, collective writes
# from every node into the shared run directory) against 1 rank: the
# parameters bitwise, the Gram matrices (column sums split over the ranks) to
# rounding, and the same records
ens=("$SRC/configs/ensemble.cfg" --set ensemble.members=6 --set 'ensemble.depths=[2, 4]' --set sgd.steps=20 --set output.plot=false --set 'ensemble.save_parameters="every"' --set 'output.arrays="hdf5"')
(. "$D/mpirun-env" && exec timeout 300 mpirun --bind-to none --hostfile "$D/hostfile" -n 3 "$BIN" "${ens[@]}" --set parallel.groups=3 --set "run.dir=\"$TMP/ens3\"") > "$TMP/ens3.out" 2>&1
status=$? err=$TMP/ens3.out
expect_status 0 "the ensemble with HDF5 arrays on 3 nodes"
timeout 300 mpirun --bind-to none -n 1 "$BIN" "${ens[@]}" --set parallel.groups=1 --set "run.dir=\"$TMP/ens1\"" > "$TMP/ens1.out" 2>&1
status=$? err=$TMP/ens1.out
expect_status 0 "the same on 1 rank"
/usr/bin/python3 - "$TMP/ens1" "$TMP/ens3" > "$TMP/ens.txt" 2>&1 <<'PY'
import sys
import h5py
import numpy as np
one, three = ({n: h5py.File("%s/%s.h5" % (d, n), "r") for n in ("gram", "params")} for d in sys.argv[1:])
a, b = one["params"]["theta"][()], three["params"]["theta"][()]
assert a.shape == b.shape == (3, 6, 3, a.shape[3]) and a.tobytes() == b.tobytes(), (a.shape, b.shape)
g, h = one["gram"]["gram"][()], three["gram"]["gram"][()]
assert g.shape == h.shape and np.allclose(g, h, rtol=1e-12, atol=1e-12 * np.abs(g).max()), np.abs(g - h).max()
print("%d records of %d x %d parameters bitwise, Gram matrices to %.1e" % (a.shape[0], a.shape[1] * a.shape[2], a.shape[3], np.abs(g - h).max() / np.abs(g).max()))
PY
[ $? -eq 0 ] && ok "  params.h5 and gram.h5 as on 1 rank: $(cat "$TMP/ens.txt")" || bad "  3 nodes against 1 rank: $(cat "$TMP/ens.txt")"

# a data.dir that one node has and the other does not (DIR/node-local is
# each node's own): an input error on every rank, naming the host without it
mkdir -p "$D/local/rn1/cifar"
cp "$TMP"/img/*.bin "$D/local/rn1/cifar/"
(. "$D/mpirun-env" && exec timeout 120 mpirun --bind-to none --hostfile "$TMP/hostfile2" -n 4 "$BIN" "${cifar[@]}" --set "data.dir=\"$D/node-local/cifar\"" --set "run.dir=\"$TMP/local\"") > "$TMP/local.out" 2>&1
status=$? err=$TMP/local.out
expect_status 2 "data.dir on rn1 only"
expect_message "no such directory '$D/node-local/cifar' on host rn2" "the error names the node without it"

# the mission's command on the cluster: 64 ranks on the 3 nodes (22, 21 and
# 21 slots, oversubscribed), configs/cifar.cfg shrunk, parallel.groups as it
# ships ("auto"): groups of 32 ranks, which span nodes, and evaluation
# batches whose tails leave ranks no image
printf '%s slots=22\n%s slots=21\n%s slots=21\n' $(cut -d' ' -f1 "$D/hostfile") > "$TMP/hostfile64"
start=$(date +%s)
(. "$D/mpirun-env" && exec timeout 300 mpirun --bind-to none --hostfile "$TMP/hostfile64" -n 64 "$BIN" "$SRC/configs/cifar.cfg" --set "data.dir=\"$TMP/img\"" "${mission_shrink[@]}" \
  --set "run.dir=\"$TMP/mission\"") > "$TMP/mission.out" 2>&1
status=$? err=$TMP/mission.out
expect_status 0 "mpirun -n 64 resnode-mpi configs/cifar.cfg (shrunk) on 3 nodes, in $(($(date +%s) - start)) s"
[ "$(hosts "$TMP/mission")" = "$mission_hosts" ] && ok "  ranks 0-21 on rn1, 22-42 on rn2, 43-63 on rn3" || bad "  rank_hosts: $(hosts "$TMP/mission")"
grep -q '^schedule: .*chosen by parallel.groups = "auto"' "$TMP/mission.out" && ok "  $(grep '^schedule:' "$TMP/mission.out")" || bad "  schedule: $(grep schedule "$TMP/mission.out")"
[ "$(grep -c ',resnet,\|,ode,' "$TMP/mission/final.csv" 2> /dev/null)" -eq 3 ] && grep -q '"status": "done"' "$TMP/mission/manifest.json" && ok "  the 3 units trained, the manifest says done" || bad "  final.csv: $(cat "$TMP/mission/final.csv")"
echo "  $(grep 'trained in' "$TMP/mission.out"); $(grep 'peak resident memory' "$TMP/mission.out")"
finish
