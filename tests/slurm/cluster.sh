#!/usr/bin/env bash
# A single-node Slurm cluster on this machine for the tests:
#   cluster.sh start DIR     writes DIR/slurm.conf, starts slurmctld and slurmd
#   cluster.sh stop DIR      stops them (by the PIDs in their pid files)
# Needs Debian's slurmctld, slurmd and slurm-client (scripts/install-deps
# installs them); no munge (auth/none), no systemd.
set -eu
cmd=${1:?usage: cluster.sh start|stop DIR}
dir=${2:?usage: cluster.sh start|stop DIR}
conf=$dir/slurm.conf

stop() {
  for d in slurmd slurmctld; do
    if [ -f "$dir/$d.pid" ]; then
      pid=$(cat "$dir/$d.pid")
      kill "$pid" 2>/dev/null || true
      for i in $(seq 1 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
      kill -9 "$pid" 2>/dev/null || true
      rm -f "$dir/$d.pid"
    fi
  done
}

if [ "$cmd" = stop ]; then
  stop
  exit 0
fi

mkdir -p "$dir/state" "$dir/spool"
node=$(slurmd -C | head -1 | sed 's/^NodeName=[^ ]*/NodeName=localhost/; s/ UpTime=.*//')
# ports that nothing listens on
base=$((20000 + RANDOM % 20000))
cat > "$conf" <<CONF
ClusterName=rntest
SlurmctldHost=localhost
SlurmctldPort=$base
SlurmdPort=$((base + 1))
AuthType=auth/none
CredType=cred/none
SlurmUser=root
SlurmdUser=root
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
SchedulerType=sched/backfill
SelectType=select/cons_tres
SelectTypeParameters=CR_Core
MpiDefault=none
ReturnToService=2
JobRequeue=1
DependencyParameters=kill_invalid_depend
StateSaveLocation=$dir/state
SlurmdSpoolDir=$dir/spool
SlurmctldPidFile=$dir/slurmctld.pid
SlurmdPidFile=$dir/slurmd.pid
SlurmctldLogFile=$dir/slurmctld.log
SlurmdLogFile=$dir/slurmd.log
SchedulerParameters=defer_batch=0
MinJobAge=600
$node State=UNKNOWN
PreemptType=preempt/partition_prio
PreemptMode=REQUEUE
PartitionName=debug Nodes=localhost Default=YES MaxTime=INFINITE State=UP OverSubscribe=YES PreemptMode=OFF
# a preemptible partition and one that preempts it (SIGTERM, GraceTime, requeue), as on real clusters
PartitionName=low Nodes=localhost MaxTime=INFINITE State=UP PriorityTier=1 PreemptMode=REQUEUE GraceTime=30
PartitionName=high Nodes=localhost MaxTime=INFINITE State=UP PriorityTier=10 PreemptMode=OFF
CONF
export SLURM_CONF=$conf
slurmctld -c -f "$conf"
slurmd -N localhost -f "$conf"
# up when the node is idle
for i in $(seq 1 100); do
  if sinfo -h -o %T 2>/dev/null | grep -q idle; then
    echo "slurm up: SLURM_CONF=$conf"
    exit 0
  fi
  sleep 0.3
done
echo "slurm did not come up; logs in $dir" >&2
tail -5 "$dir/slurmctld.log" "$dir/slurmd.log" >&2 || true
stop
exit 1
