#!/usr/bin/env bash
# The checks tests/cli/install.sh runs with the source tree out of reach:
# only the moved prefix $P, the copies in $KIT and a work folder $WORK (with
# generated CIFAR images in $WORK/images). Prints "ok: ..." or "bad: ..." a
# check, and "end of checks".
set -u
ok() { echo "ok: $*"; }
bad() { echo "bad: $*"; }
cd "$WORK"
export PATH=$P/bin:$PATH
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 OMPI_MCA_rmaps_base_oversubscribe=1 OPENBLAS_NUM_THREADS=1
share=$P/share/resnode

# analyse LOG: the command the run's last line names, run as a user copies it
analyse() {
  local line
  line=$(tail -1 "$1" | sed -n 's/^done: results in .*; plots and report: //p')
  if [ -z "$line" ]; then bad "no analysis command on the last line: $(tail -1 "$1")"; return 1; fi
  if eval "$line" > "$1.analysis" 2>&1; then ok "$line"; else bad "$line: $(tail -3 "$1.analysis")"; fi
}

# 1. the default job (the embedded test-equation fit), shrunk by --set
mpirun -n 2 resnode-mpi --set train.iterations=30 --set 'run.dir="runs/default"' > default.log 2>&1 && ok "resnode-mpi: the default job" || bad "the default job: $(tail -3 default.log)"
analyse default.log
[ -s runs/default/node-fit.png ] && ok "resnode-plot-node-fit drew node-fit.png" || bad "no node-fit.png"
grep -q '"build": "portable build' runs/default/manifest.json && ok "the manifest names the build: $(grep '"build"' runs/default/manifest.json | tr -s ' ')" || bad "manifest: $(grep build runs/default/manifest.json)"

# 2. an ensemble from the installed configs, and its analysis
mpirun -n 2 resnode-mpi "$share/configs/ensemble.cfg" --set ensemble.members=4 --set 'ensemble.depths=[2,4]' --set sgd.steps=20 --set 'run.dir="runs/ensemble"' > ensemble.log 2>&1 && ok "an ensemble from $share/configs" || bad "ensemble: $(tail -3 ensemble.log)"
analyse ensemble.log
[ -s runs/ensemble/convergence-report.md ] && ok "resnode-convergence wrote the report" || bad "no convergence report"

# 3. the CIFAR example, shrunk, and its analysis
mpirun -n 2 resnode-mpi "$share/configs/cifar-small.cfg" --set "data.dir=\"$WORK/images\"" --set data.max_train=120 --set data.folds=1 --set data.validation=40 --set model.channels=4 \
  --set 'model.depths=[2]' --set train.epochs=1 --set train.batch=40 --set train.eval_batch=60 --set 'run.dir="runs/cifar"' > cifar.log 2>&1 && ok "the CIFAR example" || bad "cifar: $(tail -3 cifar.log)"
analyse cifar.log
[ -s runs/cifar/cifar-depth.png ] && ok "resnode-plot-cifar drew cifar-depth.png" || bad "no cifar-depth.png"

# 4. the other analysis commands: identity and annulus runs, adjoint-memory on a table
mpirun -n 2 resnode-mpi "$share/configs/identity.cfg" --set train.max_epochs=50 --set 'run.dir="runs/identity"' > identity.log 2>&1 || bad "identity: $(tail -3 identity.log)"
analyse identity.log
mpirun -n 2 resnode-mpi "$share/configs/annulus.cfg" --set train.epochs=1 --set data.samples=120 --set train.batch=20 --set 'model.depths=[1]' --set train.folds=2 --set 'run.dir="runs/annulus"' > annulus.log 2>&1 || bad "annulus: $(tail -3 annulus.log)"
analyse annulus.log
printf 'problem,mode,steps,checkpoints,seconds_per_iteration,peak_rss_mb,stored_states\nmlp,full,10,0,0.01,40,11\nmlp,full,20,0,0.02,41,21\n' > adjoint.csv
resnode-plot-adjoint-memory adjoint.csv > adjoint.out 2>&1 && [ -s adjoint.png ] && ok "resnode-plot-adjoint-memory adjoint.csv" || bad "plot-adjoint-memory: $(tail -3 adjoint.out)"
resnode-runs list runs --where 'status = done' --csv > runs.out 2> runs.err && [ "$(tail -n +2 runs.out | wc -l)" -eq 5 ] && ok "resnode-runs lists the 5 finished runs" || bad "resnode-runs list: $(cat runs.out runs.err | tail -4)"
for c in "$P"/bin/resnode-*; do
  [ "$c" = "$P/bin/resnode-mpi" ] && continue
  "$c" --help > help.out 2>&1 && ok "$(basename "$c") --help" || bad "$(basename "$c") --help: $(tail -2 help.out)"
done

# 5. module load through Lmod
lmod_init=
for f in /usr/share/lmod/lmod/init/bash /usr/share/lmod/init/bash; do [ -f "$f" ] && lmod_init=$f && break; done
if [ -n "$lmod_init" ]; then
  (
    . "$lmod_init" > /dev/null 2>&1
    export PATH=/usr/bin:/bin:/usr/sbin:/sbin
    module use "$P/share/modulefiles" && module load resnode 2> module.err
    [ "$(command -v resnode-mpi)" = "$P/bin/resnode-mpi" ] && ok "module load resnode: resnode-mpi is $P/bin/resnode-mpi" || bad "after module load: $(command -v resnode-mpi) $(cat module.err)"
    [ "$RESNODE_HOME" -ef "$P" ] && ok "the module sets RESNODE_HOME to the moved prefix" || bad "RESNODE_HOME=$RESNODE_HOME"
    resnode-mpi --version > version.out 2>&1 && ok "resnode-mpi --version under the module: $(cat version.out)" || bad "--version: $(cat version.out)"
  )
else
  bad "Lmod is not installed (Debian: lmod; scripts/install-deps installs it)"
fi

# 6. a Slurm job script from the installed tree, on a Slurm started here
if command -v slurmctld > /dev/null && bash "$KIT/cluster.sh" start "$WORK/cluster" > cluster.out 2>&1; then
  export SLURM_CONF=$WORK/cluster/slurm.conf
  mkdir -p "$WORK/submit"
  (
    cd "$WORK/submit"
    sbatch --wait --ntasks=2 --time=10 "$share/jobs/slurm/cifar.sbatch" "$share/configs/cifar-small.cfg" --set "data.dir=\"$WORK/images\"" --set data.max_train=120 --set data.folds=1 \
      --set data.validation=40 --set model.channels=4 --set 'model.depths=[2]' --set model.ode=false --set train.epochs=1 --set train.batch=40 --set train.eval_batch=60 > sbatch.out 2>&1
  )
  run=$(ls -d "$WORK"/submit/runs/cifar-* 2> /dev/null | head -1)
  if [ -n "$run" ] && grep -q '"status": "done"' "$run/manifest.json"; then ok "sbatch $share/jobs/slurm/cifar.sbatch: done in $run"; else bad "the Slurm job: $(cat "$WORK"/submit/*.out 2> /dev/null | tail -5)"; fi
  [ -n "$run" ] && [ -s "$run/cifar-depth.png" ] && ok "the job ran its analysis as a step of its own" || bad "no plot from the job's analysis step: $(grep run-resnode "$WORK"/submit/resnode-cifar-*.out 2> /dev/null | tail -3)"
  bash "$KIT/cluster.sh" stop "$WORK/cluster"
else
  bad "Slurm did not start: $(tail -3 cluster.out 2> /dev/null)"
fi

# 7. a program of one's own against the library: find_package and pkg-config
if cmake -S "$KIT" -B consumer-cmake -DCMAKE_PREFIX_PATH="$P" > consumer.log 2>&1 && cmake --build consumer-cmake >> consumer.log 2>&1; then
  [ "$(consumer-cmake/consumer --philox)" = "philox 6627e8d5" ] && ok "find_package(resnode): a program linked against resnode::resnode runs" || bad "the find_package program printed $(consumer-cmake/consumer --philox)"
  consumer-cmake/consumer --version > cv.out 2>&1 && ok "  and its RnMain: $(cat cv.out)" || bad "consumer --version: $(cat cv.out)"
else
  bad "find_package(resnode): $(tail -8 consumer.log)"
fi
export PKG_CONFIG_PATH=$P/lib/pkgconfig
if cc -o consumer-pc "$KIT/consumer.c" $(pkg-config --cflags --libs resnode) > pc.log 2>&1; then
  [ "$(./consumer-pc --philox)" = "philox 6627e8d5" ] && ok "pkg-config resnode: a program built by cc \$(pkg-config --cflags --libs resnode) runs" || bad "the pkg-config program printed $(./consumer-pc --philox)"
else
  bad "pkg-config resnode: $(tail -5 pc.log)"
fi
echo "end of checks"
