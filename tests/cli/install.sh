#!/usr/bin/env bash
# The installed tree is the product: a second, portable build installed into
# a temporary prefix, the prefix moved, then, with the source tree out of
# reach (a private mount namespace hides it and the build tree under empty
# file systems) and RESNODE_SOURCE_DIR unset, tests/install/inside.sh runs
# the default job, an ensemble and the CIFAR example shrunk, every analysis
# command, module load through Lmod, a Slurm job script from the installed
# tree, and builds a C program against the library by find_package and by
# pkg-config.
. "$(dirname "$0")/lib.sh"
unset RESNODE_SOURCE_DIR
for t in cmake make pkg-config; do command -v $t > /dev/null || { bad "$t is not installed"; finish; exit 1; }; done
build=$TMP/build
prefix0=$TMP/prefix
# found as on a cluster: pkg-config's default search path empty, PETSc by
# PETSC_DIR, the rest by their CMake packages or library names (where this
# machine has Debian's PETSc to point PETSC_DIR at)
petsc_dir=/usr/lib/petscdir/petsc3.18/x86_64-linux-gnu-real
hints=()
pc_libdir=${PKG_CONFIG_LIBDIR-}
if [ -d "$petsc_dir/lib/pkgconfig" ]; then
  mkdir -p "$TMP/no-pkgconfig"
  pc_libdir=$TMP/no-pkgconfig
  hints=(-DPETSC_DIR="$petsc_dir")
fi
if ! { PKG_CONFIG_LIBDIR=$pc_libdir cmake -S "$SRC" -B "$build" -DCMAKE_BUILD_TYPE=Release -DRESNODE_TESTS=OFF -DRESNODE_BENCHMARKS=OFF -DCMAKE_INSTALL_PREFIX="$prefix0" "${hints[@]}" > "$TMP/cmake.log" 2>&1 &&
       cmake --build "$build" -j"$(nproc)" >> "$TMP/cmake.log" 2>&1 && cmake --install "$build" >> "$TMP/cmake.log" 2>&1; }; then
  bad "configure, build or install failed: $(tail -15 "$TMP/cmake.log")"
  finish; exit 1
fi
ok "a second build (no CUnit, no benchmarks), installed into $prefix0"
if [ ${#hints[@]} -gt 0 ]; then
  grep -q "^PETSC_PREFIX:INTERNAL=$petsc_dir\$" "$build/CMakeCache.txt" && ok "with no pkg-config search path: PETSc by PETSC_DIR, ScaLAPACK, OpenBLAS, oneDNN and libconfig by their packages and library names" ||
    bad "PETSC_DIR was not used: $(grep PETSC_PREFIX "$build/CMakeCache.txt")"
fi
grep -rq -- '-march=native' "$build/CMakeFiles" && bad "the default build is native" || ok "the default build's flags carry no -march=native"
mkdir -p "$TMP/elsewhere"
mv "$prefix0" "$TMP/elsewhere/prefix"
ok "the prefix moved to $TMP/elsewhere/prefix"
# the Spack recipe parses, and asks for what CMake looks for
recipe=$SRC/spack/packages/resnode-mpi/package.py
if python3 -c "import ast, sys; ast.parse(open(sys.argv[1]).read())" "$recipe" 2> "$TMP/spack.err"; then
  missing=""
  for d in mpi petsc scalapack openblas onednn libconfig cunit PETSC_DIR SCALAPACK_LIBRARIES DNNLROOT RESNODE_NATIVE RESNODE_TESTS; do grep -q "\"$d" "$recipe" || missing="$missing $d"; done
  [ -z "$missing" ] && ok "the Spack recipe parses and names every dependency and CMake hint" || bad "the Spack recipe lacks:$missing"
else
  bad "the Spack recipe does not parse: $(cat "$TMP/spack.err")"
fi
# what the checks inside need, copied out of the source tree first
"${RN_MAKE_CIFAR:?}" "$TMP/images" 60 > /dev/null || bad "could not generate images"
mkdir -p "$TMP/kit"
cp "$SRC/tests/install/inside.sh" "$SRC/tests/install/consumer.c" "$SRC/tests/install/CMakeLists.txt" "$SRC/tests/slurm/cluster.sh" "$TMP/kit/"
export P=$TMP/elsewhere/prefix KIT=$TMP/kit WORK=$TMP
bindir=$(cd "$(dirname "$BIN")" && pwd)
hide="mount -t tmpfs none '$SRC'"
case $bindir/ in "$SRC"/*) ;; *) hide="$hide && mount -t tmpfs none '$bindir'" ;; esac
if [ "$(id -u)" -eq 0 ] && unshare --mount true 2> /dev/null; then
  unshare --mount --propagation private bash -c "$hide && exec bash '$KIT/inside.sh'" > "$TMP/inside.out" 2>&1
  where="source and build trees hidden"
else
  echo "  note: not root, no mount namespace: the source tree stays visible (the checks still use only the prefix)"
  bash "$KIT/inside.sh" > "$TMP/inside.out" 2>&1
  where="source tree visible"
fi
while IFS= read -r line; do
  case $line in
    "ok: "*) ok "${line#ok: } [$where]" ;;
    "bad: "*) bad "${line#bad: }" ;;
  esac
done < "$TMP/inside.out"
grep -q '^end of checks$' "$TMP/inside.out" && ok "every check inside ran" || bad "the checks inside stopped early: $(tail -8 "$TMP/inside.out")"
finish
