#!/usr/bin/env bash
# The Slurm scripts on a Slurm of 3 nodes made on this machine (cluster.sh
# up, then slurm-up: one slurmctld, one slurmd a node in the node's network,
# UTS and mount namespaces, MpiDefault=pmix, srun as the launcher):
#  - jobs/slurm/cifar.sbatch with --nodes=2 and --nodes=3 and
#    parallel.groups = 0: one group per node, each group's ranks on one host,
#    and the units bitwise equal to the same units on one host;
#  - a 2-node job preempted by a higher partition (SIGTERM, GraceTime,
#    requeue): every node's ranks checkpoint, the job runs again and ends
#    bitwise equal to an uninterrupted run, with exactly its rows;
#  - the mission's command through sbatch: configs/cifar.cfg (shrunk) on 64
#    tasks over the 3 nodes (--overcommit), started by srun, yielding;
#  - jobs/slurm/sweep.sh: the ensemble array's tasks on different nodes, and
#    the analysis that merges them.
# Needs root (ip netns) and Debian's slurmctld/slurmd; elsewhere one "skipped:" line.
. "$(dirname "$0")/../cli/lib.sh"
. "$(dirname "$0")/lib.sh"
command -v slurmd > /dev/null || { echo "skipped: the Slurm multinode tests need Debian's slurmd (scripts/install-deps installs it)"; exit 0; }
cluster_up 3 "the Slurm multinode tests"
bash "$here/cluster.sh" slurm-up "$D" > "$TMP/slurm.log" 2>&1 || { bad "slurm did not come up: $(cat "$TMP/slurm.log")"; finish; exit 1; }
ok "$(tail -1 "$TMP/slurm.log"): $(sinfo -h -N -o '%N' | tr '\n' ' ')"
export SLURM_CONF=$D/slurm.conf
. "$D/mpirun-env"
expect_slack tasks "$(timeout 60 srun -N3 -n3 cat /proc/self/timerslack_ns)"
export RESNODE_HOME=$SRC RESNODE_BIN=$BIN RESNODE_RUNS=$TMP/runs
mkdir -p "$RESNODE_RUNS"
cd "$TMP"
"${RN_MAKE_CIFAR:?}" "$TMP/img" 200 > /dev/null || bad "could not generate images"
cifar=(--set "data.dir=\"$TMP/img\"" --set data.max_train=0 --set data.max_test=60 --set model.channels=4 --set 'model.depths=[1, 2]' --set ode.steps=2
  --set train.epochs=1 --set train.batch=24 --set train.eval_batch=60 --set data.fold=-1 --set checkpoint.every_seconds=0 --set output.plot=false)

# one group per node through cifar.sbatch
for nodes in 2 3; do
  jid=$(RESNODE_RUN_DIR=$TMP/runs/nodes$nodes sbatch --parsable --nodes=$nodes --ntasks-per-node=2 --time=10 --output="$TMP/nodes$nodes-%j.out" "$SRC/jobs/slurm/cifar.sbatch" "$SRC/configs/cifar.cfg" "${cifar[@]}" --set parallel.groups=0)
  wait_jobs "$jid" && grep -q '"status": "done"' "$TMP/runs/nodes$nodes/manifest.json" 2> /dev/null && ok "cifar.sbatch --nodes=$nodes: job $jid done" || { bad "job $jid: $(tail -5 "$TMP"/nodes$nodes-*.out)"; continue; }
  grep -q "tasks by srun" "$TMP/nodes$nodes-$jid.out" && ok "  srun --mpi=pmix started the ranks" || bad "  launcher: $(head -3 "$TMP/nodes$nodes-$jid.out")"
  want=$(for i in $(seq 1 $nodes); do printf 'rn%d:%d-%d ' "$i" $((2 * i - 2)) $((2 * i - 1)); done)
  [ "$(hosts "$TMP/runs/nodes$nodes")" = "${want% }" ] && ok "  one group per node, on its own host: $(hosts "$TMP/runs/nodes$nodes")" || bad "  rank_hosts: '$(hosts "$TMP/runs/nodes$nodes")', expected '${want% }'"
  timeout 300 mpirun --bind-to none -n $((2 * nodes)) "$BIN" "$SRC/configs/cifar.cfg" "${cifar[@]}" --set parallel.groups=$nodes --set "run.dir=\"$TMP/one$nodes\"" > "$TMP/one$nodes.out" 2>&1
  same_units "$TMP/runs/nodes$nodes" "$TMP/one$nodes" 9
done

# a 2-node job preempted: the low partition's job gets SIGTERM (GraceTime 30 s)
# when a high-partition job needs its nodes, checkpoints on every node, is
# requeued, and runs again to the end
long=("${cifar[@]}" --set train.epochs=3 --set model.channels=8)
jid=$(RESNODE_RUN_DIR=$TMP/runs/preempted sbatch --parsable -p low --nodes=2 --ntasks-per-node=2 --time=10 --output="$TMP/preempted-%j.out" "$SRC/jobs/slurm/cifar.sbatch" "$SRC/configs/cifar.cfg" "${long[@]}" --set parallel.groups=0)
for i in $(seq 1 600); do
  [ "$(cat "$TMP"/runs/preempted/units/*/epochs.csv 2> /dev/null | grep -c ',resnet,\|,ode,')" -ge 1 ] && break
  sleep 0.1
done
hi=$(sbatch --parsable -p high --nodes=2 --ntasks-per-node=2 --time=5 --output="$TMP/high-%j.out" --wrap "sleep 2")
for i in $(seq 1 300); do grep -q "preempted after a checkpoint" "$TMP/preempted-$jid.out" 2> /dev/null && break; sleep 0.2; done
grep -q "signal received: checkpoint of" "$TMP/preempted-$jid.out" && ok "the 2-node job $jid got the preemption SIGTERM on its nodes and checkpointed" || bad "no checkpoint at preemption: $(tail -5 "$TMP/preempted-$jid.out")"
wait_jobs "$jid" "$hi" && grep -q '"status": "done"' "$TMP/runs/preempted/manifest.json" && ok "it was requeued and ran to the end" || bad "job $jid: $(tail -5 "$TMP/preempted-$jid.out")"
expect_went_on "$TMP/preempted-$jid.out"
h=$(hosts "$TMP/runs/preempted")
[ "$(echo "$h" | tr ' ' '\n' | cut -d: -f1 | sort -u | wc -l)" -eq 2 ] && ok "  its last attempt ran on 2 hosts: $h" || bad "  rank_hosts: '$h'"
timeout 300 mpirun --bind-to none -n 4 "$BIN" "$SRC/configs/cifar.cfg" "${long[@]}" --set parallel.groups=2 --set "run.dir=\"$TMP/long-ref\"" > "$TMP/long-ref.out" 2>&1
same_units "$TMP/long-ref" "$TMP/runs/preempted" 9

# the mission's command through sbatch: 64 tasks on the 3 nodes' 3 CPUs
# (--overcommit: 22, 21 and 21 tasks on the 1 CPU each node gives),
# configs/cifar.cfg shrunk, groups "auto". Without the yield the environment
# gives mpirun, so that run-resnode.sh must see the node oversubscribed and
# set it. The slurmds, and so their tasks, sleep with the cluster's timer
# slack (cluster.sh): before it, one start in 5 lost a rank's PMIx set-up
start=$(date +%s)
jid=$(RESNODE_RUN_DIR=$TMP/runs/mission env -u OMPI_MCA_mpi_yield_when_idle sbatch --parsable --nodes=3 --ntasks=64 --overcommit --time=10 --output="$TMP/mission-%j.out" "$SRC/jobs/slurm/cifar.sbatch" "$SRC/configs/cifar.cfg" --set "data.dir=\"$TMP/img\"" "${mission_shrink[@]}" --set output.plot=false)
wait_jobs "$jid" && grep -q '"status": "done"' "$TMP/runs/mission/manifest.json" 2> /dev/null && ok "sbatch --nodes=3 --ntasks=64 --overcommit cifar.sbatch configs/cifar.cfg (shrunk): job $jid done in $(($(date +%s) - start)) s" || bad "job $jid: $(tail -5 "$TMP"/mission-*.out)"
grep -q "64 tasks by srun" "$TMP/mission-$jid.out" && grep -q "22 tasks on 1 CPU(s) of this node: MPI ranks yield" "$TMP/mission-$jid.out" && ok "  srun started the 64 ranks; run-resnode.sh made them yield on the oversubscribed nodes" || bad "  launcher: $(head -3 "$TMP/mission-$jid.out")"
[ "$(hosts "$TMP/runs/mission")" = "$mission_hosts" ] && ok "  ranks 0-21 on rn1, 22-42 on rn2, 43-63 on rn3" || bad "  rank_hosts: $(hosts "$TMP/runs/mission")"
[ "$(grep -c ',resnet,\|,ode,' "$TMP/runs/mission/final.csv" 2> /dev/null)" -eq 3 ] && ok "  the 3 units trained" || bad "  final.csv: $(cat "$TMP/runs/mission/final.csv")"
echo "  $(grep 'trained in' "$TMP/mission-$jid.out"); $(grep 'peak resident memory' "$TMP/mission-$jid.out")"

# the ensemble array: 2 tasks of one node each, placed on different nodes
export MEMBERS_PER_TASK=2 RESNODE_SBATCH_OPTS="--nodes=1 --ntasks=2 --time=10"
line=$(bash "$SRC/jobs/slurm/sweep.sh" 2 "$SRC/configs/ensemble.cfg" --set 'ensemble.depths=[2, 4]' --set sgd.steps=60 --set sgd.record_every=20)
array=$(echo "$line" | sed -n 's/.*ensemble array \([0-9]*\).*/\1/p')
analysis=$(echo "$line" | sed -n 's/.*analysis \([0-9]*\).*/\1/p')
[ -n "$array" ] && [ -n "$analysis" ] && ok "sweep.sh submitted array $array and analysis $analysis" || bad "sweep.sh said: $line"
wait_jobs "$array" "$analysis" && ok "the array and its analysis finished" || bad "jobs still queued: $(squeue)"
h0=$(hosts "$RESNODE_RUNS/ensemble-$array-0"); h1=$(hosts "$RESNODE_RUNS/ensemble-$array-1")
[ -n "$h0" ] && [ -n "$h1" ] && [ "${h0%%:*}" != "${h1%%:*}" ] && ok "  the tasks ran on different nodes: $h0 and $h1" || bad "  task hosts: '$h0' and '$h1'"
ls "$RESNODE_RUNS/ensemble-$array-analysis"/*.md > /dev/null 2>&1 && ok "  the analysis merged them: $(ls "$RESNODE_RUNS/ensemble-$array-analysis" | tr '\n' ' ' | cut -c1-80)" || bad "  analysis: $(ls "$RESNODE_RUNS" ; tail -3 resnode-analysis-*.out 2>/dev/null)"
finish
