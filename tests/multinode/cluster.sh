#!/usr/bin/env bash
# A cluster of hosts on this machine for the multinode tests: each node is a
# network namespace (its own address on a private bridge, rnbr0) and, for the
# processes started on it, a UTS namespace with its own hostname. Traffic
# between nodes is TCP over the bridge; nothing is routed anywhere else.
#   cluster.sh up N DIR     nodes rn1..rnN at 10.199.0.11.., DIR/hostfile, DIR/agent
#   cluster.sh down DIR     removes the namespaces, links and bridge
# DIR/agent is Open MPI's launch agent (plm_rsh_agent): it starts a command
# "on" a node by entering the node's namespaces. DIR/mpirun-env prints the
# MCA settings that keep MPI's TCP on the bridge. Needs root (ip netns).
set -eu
cmd=${1:?usage: cluster.sh up N DIR | down DIR}
SUBNET=10.199.0
BRIDGE=rnbr0

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

if [ "$cmd" = down ]; then
  down "${2:?usage: cluster.sh down DIR}"
  exit 0
fi
n=${2:?usage: cluster.sh up N DIR}
dir=${3:?usage: cluster.sh up N DIR}
mkdir -p "$dir"
down "$dir"
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
done
# the launch agent: "agent [options] HOST COMMAND..." as ssh would be called
cat > "$dir/agent" <<AGENT
#!/usr/bin/env bash
while [ \$# -gt 0 ] && [ "\${1#-}" != "\$1" ]; do shift; done
host=\$1
shift
ns=\$(awk -v h="\$host" '\$1 == h || \$2 == h { print \$2 }' "$dir/hosts")
[ -n "\$ns" ] || { echo "agent: unknown host \$host" >&2; exit 255; }
exec ip netns exec "\$ns" unshare --uts sh -c "hostname \$ns; exec \$*"
AGENT
chmod +x "$dir/agent"
cat > "$dir/mpirun-env" <<ENV
export OMPI_MCA_plm_rsh_agent=$dir/agent
export OMPI_MCA_btl=self,vader,tcp
export OMPI_MCA_btl_tcp_if_include=$SUBNET.0/24
export OMPI_MCA_oob_tcp_if_include=$SUBNET.0/24
export OMPI_MCA_plm_rsh_no_tree_spawn=1
ENV
for i in $(seq 1 "$n"); do
  ip -n "rn$i" link show eth0 | grep -q "state UP" || { echo "cluster.sh: node rn$i's link is not up" >&2; exit 1; }
done
echo "cluster up: $n nodes, hostfile $dir/hostfile; . $dir/mpirun-env before mpirun"
