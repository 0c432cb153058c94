#!/usr/bin/env bash
# A cluster of hosts on this machine for the multinode tests: each node is a
# network namespace (its own address on a private bridge, rnbr0) and, for the
# processes started on it, a UTS namespace with its own hostname. Traffic
# between nodes is TCP over the bridge; nothing is routed anywhere else.
#   cluster.sh up N DIR     nodes rn1..rnN at 10.199.0.11.., DIR/hostfile, DIR/agent
#   cluster.sh down DIR     removes the namespaces, links and bridge
# DIR/agent is Open MPI's launch agent (plm_rsh_agent): it starts a command
# "on" a node by entering the node's namespaces. DIR/node-local is each
# node's own directory (DIR/local/NODE bound there in the node's mount
# namespace): what one node has there, the others do not. DIR/mpirun-env prints the
# MCA settings that keep MPI's TCP on the bridge. Needs root (ip netns).
#   cluster.sh slurm-up DIR  (after up) Slurm on the nodes: slurmctld on this
#                            host (the bridge's address), one slurmd a node in
#                            its namespaces (-N NODE), MpiDefault=pmix;
#                            DIR/slurm.conf
#   cluster.sh slurm-down DIR  stops them
set -eu
cmd=${1:?usage: cluster.sh up N DIR | down DIR | slurm-up DIR | slurm-down DIR}
SUBNET=10.199.0
BRIDGE=rnbr0
# Every node shares this machine's 2 cores, so 64 ranks are 32 to a core.
# Open MPI's start-up (MPI_Init's fences, MPI_Finalize) waits in a loop of
# usleep(100): 60 ranks waking 10,000 times a second each took nearly all
# the CPU from the daemons and the ranks still starting, and a 64-rank
# hello world took 22 to 245 s. A coarse timer slack (inherited by the
# daemons and their ranks) makes those sleeps last about this long instead:
# the same start took 5 to 9 s. Only timed sleeps stretch; MPI's own waits
# (yield or poll) and the computation do not.
TIMER_SLACK_NS=10000000

down() {
  local dir=$1
  for ns in $(cat "$dir/nodes" 2> /dev/null); do
    ip netns pids "$ns" 2> /dev/null | xargs -r kill -9 2> /dev/null || true
    ip netns del "$ns" 2> /dev/null || true
    ip link del "v$ns" 2> /dev/null || true
    rm -rf "/etc/netns/$ns"
  done
  ip link del "$BRIDGE" 2> /dev/null || true
  rm -f "$dir/nodes"
}

slurm_down() {
  local dir=$1 pid
  for f in "$dir"/local/*/slurmd.pid "$dir/slurmctld.pid"; do
    [ -f "$f" ] || continue
    pid=$(cat "$f")
    kill "$pid" 2> /dev/null || true
    for i in $(seq 1 50); do kill -0 "$pid" 2> /dev/null || break; sleep 0.1; done
    kill -9 "$pid" 2> /dev/null || true
    rm -f "$f"
  done
}

if [ "$cmd" = down ]; then
  slurm_down "${2:?usage: cluster.sh down DIR}"
  down "$2"
  exit 0
fi
if [ "$cmd" = slurm-down ]; then
  slurm_down "${2:?usage: cluster.sh slurm-down DIR}"
  exit 0
fi
if [ "$cmd" = slurm-up ]; then
  dir=${2:?usage: cluster.sh slurm-up DIR}
  conf=$dir/slurm.conf
  mkdir -p "$dir/state"
  host=$(hostname)
  base=$((20000 + RANDOM % 20000))
  # the hardware of this machine, given to every node (several nodes share it)
  hw=$(slurmd -C | head -1 | sed 's/^NodeName=[^ ]* //; s/ UpTime=.*//')
  {
    cat <<CONF
ClusterName=rnnodes
SlurmctldHost=$host($SUBNET.1)
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
MpiDefault=pmix
SlurmdParameters=config_overrides
ReturnToService=2
JobRequeue=1
StateSaveLocation=$dir/state
SlurmctldPidFile=$dir/slurmctld.pid
SlurmctldLogFile=$dir/slurmctld.log
# each node's own (DIR/node-local is DIR/local/NODE on that node): PMIx's
# directories of a step would collide in one shared /tmp
TmpFS=$dir/node-local/tmp
SlurmdSpoolDir=$dir/node-local/spool
SlurmdPidFile=$dir/node-local/slurmd.pid
SlurmdLogFile=$dir/node-local/slurmd.log
SchedulerParameters=defer_batch=0
MinJobAge=600
PreemptType=preempt/partition_prio
PreemptMode=REQUEUE
CONF
    nodes=""
    for ns in $(cat "$dir/nodes"); do
      echo "NodeName=$ns NodeAddr=$(awk -v h="$ns" '$2 == h { print $1 }' "$dir/hosts") $hw State=UNKNOWN"
      nodes="$nodes${nodes:+,}$ns"
    done
    echo "PartitionName=debug Nodes=$nodes Default=YES MaxTime=INFINITE State=UP OverSubscribe=YES PreemptMode=OFF"
    echo "PartitionName=low Nodes=$nodes MaxTime=INFINITE State=UP PriorityTier=1 PreemptMode=REQUEUE GraceTime=30"
    echo "PartitionName=high Nodes=$nodes MaxTime=INFINITE State=UP PriorityTier=10 PreemptMode=OFF"
  } > "$conf"
  export SLURM_CONF=$conf
  slurmctld -c -f "$conf"
  for ns in $(cat "$dir/nodes"); do
    mkdir -p "$dir/local/$ns/tmp" "$dir/local/$ns/spool"
    # nsenter, not ip netns exec (which remounts /sys: slurmd would find no cgroups)
    nsenter --net="/var/run/netns/$ns" unshare --uts --mount sh -c "mount --bind $dir/local/$ns $dir/node-local && hostname $ns && echo $TIMER_SLACK_NS > /proc/self/timerslack_ns && exec slurmd -N $ns -f $conf"
  done
  n=$(wc -l < "$dir/nodes")
  for i in $(seq 1 150); do
    [ "$(sinfo -h -N -p debug -o '%N %T' 2> /dev/null | grep -c idle)" -eq "$n" ] && { echo "slurm up on $n nodes: SLURM_CONF=$conf"; exit 0; }
    sleep 0.2
  done
  echo "slurm did not come up on the nodes: $(sinfo -N 2>&1 | tail -4); logs in $dir and $dir/local/*/" >&2
  slurm_down "$dir"
  exit 1
fi
n=${2:?usage: cluster.sh up N DIR}
dir=${3:?usage: cluster.sh up N DIR}
mkdir -p "$dir"
down "$dir"
# what a killed test left (its trap did not run): the same names, any directory
for i in $(seq 1 "$n"); do
  ip netns pids "rn$i" 2> /dev/null | xargs -r kill -9 2> /dev/null || true
  ip netns del "rn$i" 2> /dev/null || true
  ip link del "vrn$i" 2> /dev/null || true
done
ip link del "$BRIDGE" 2> /dev/null || true
ip link add "$BRIDGE" type bridge
ip addr add "$SUBNET.1/24" dev "$BRIDGE"
ip link set "$BRIDGE" up
: > "$dir/hostfile"
: > "$dir/hosts"
: > "$dir/nodes"
for i in $(seq 1 "$n"); do
  echo "$SUBNET.$((10 + i)) rn$i" >> "$dir/hosts"
done
for i in $(seq 1 "$n"); do
  ns=rn$i
  echo "$ns" >> "$dir/nodes"
  ip netns add "$ns"
  ip link add "v$ns" type veth peer name eth0 netns "$ns"
  ip link set "v$ns" master "$BRIDGE"
  ip link set "v$ns" up
  ip -n "$ns" addr add "$SUBNET.$((10 + i))/24" dev eth0
  ip -n "$ns" link set eth0 up
  ip -n "$ns" link set lo up
  # ip netns exec binds /etc/netns/NS/hosts over /etc/hosts: the nodes know each other
  mkdir -p "/etc/netns/$ns"
  { echo "127.0.0.1 localhost"; cat "$dir/hosts"; } > "/etc/netns/$ns/hosts"
  echo "$SUBNET.$((10 + i)) slots=${RN_SLOTS:-2}" >> "$dir/hostfile"
  mkdir -p "$dir/local/$ns"
done
mkdir -p "$dir/node-local"
# the launch agent: "agent [options] HOST COMMAND..." as ssh would be called
cat > "$dir/agent" <<AGENT
#!/usr/bin/env bash
while [ \$# -gt 0 ] && [ "\${1#-}" != "\$1" ]; do shift; done
host=\$1
shift
ns=\$(awk -v h="\$host" '\$1 == h || \$2 == h { print \$2 }' "$dir/hosts")
[ -n "\$ns" ] || { echo "agent: unknown host \$host" >&2; exit 255; }
exec ip netns exec "\$ns" unshare --uts --mount sh -c "mount --bind $dir/local/\$ns $dir/node-local && hostname \$ns && echo $TIMER_SLACK_NS > /proc/self/timerslack_ns && exec \$*"
AGENT
chmod +x "$dir/agent"
cat > "$dir/mpirun-env" <<ENV
export OMPI_MCA_plm_rsh_agent=$dir/agent
export OMPI_MCA_btl=self,vader,tcp
export OMPI_MCA_btl_tcp_if_include=$SUBNET.0/24
export OMPI_MCA_oob_tcp_if_include=$SUBNET.0/24
export OMPI_MCA_plm_rsh_no_tree_spawn=1
# the nodes' slots are made up (every node shares this machine's cores): ranks
# waiting in MPI yield, as Open MPI does by itself on a node it knows is oversubscribed
export OMPI_MCA_mpi_yield_when_idle=1
ENV
for i in $(seq 1 "$n"); do
  ip -n "rn$i" link show eth0 | grep -q "state UP" || { echo "cluster.sh: node rn$i's link is not up" >&2; exit 1; }
done
echo "cluster up: $n nodes, hostfile $dir/hostfile; . $dir/mpirun-env before mpirun"
