# Sourced by the job scripts here: where resnode is, from RESNODE_HOME (the
# folder that holds configs/ and jobs/slurm/), in either layout:
#   a clone:            HOME = the clone, the binary in HOME/build
#   an installed prefix: HOME = PREFIX/share/resnode, the binary in PREFIX/bin
# Sets RESNODE_BIN (the binary; kept if set), RESNODE_BINDIR (where the
# analysis commands resnode-<name> are: beside the binary) and RESNODE_RUNS
# (run directories: kept if set; a clone's runs/, else the submit directory's).
home=${RESNODE_HOME:?locate.sh: RESNODE_HOME not set}
if [ -x "$home/../../bin/resnode-mpi" ]; then
  installed_bin=$(cd "$home/../../bin" && pwd)/resnode-mpi
  export RESNODE_BIN=${RESNODE_BIN:-$installed_bin}
  export RESNODE_RUNS=${RESNODE_RUNS:-${SLURM_SUBMIT_DIR:-$PWD}/runs}
else
  export RESNODE_BIN=${RESNODE_BIN:-$home/build/resnode-mpi}
  export RESNODE_RUNS=${RESNODE_RUNS:-$home/runs}
fi
export RESNODE_BINDIR=$(dirname "$RESNODE_BIN")
