# ResnodeDependencies.cmake: finds what resnode-mpi links, by the standard
# means of each library, and defines one target per dependency,
# resnode::dep_<name>. The build includes it, and so does the installed
# package config (resnodeConfig.cmake), so that a program built against an
# installed resnode finds the same libraries the same way.
#
#   MPI, OpenMP      find_package (MPI_HOME, the compiler wrappers)
#   PETSc >= 3.18    PETSC_DIR / PETSC_ARCH (as PETSc documents), else pkg-config
#                    (PETSc.pc or petsc.pc)
#   ScaLAPACK        SCALAPACK_LIBRARIES (a whole link line: MKL, Cray LibSci), else
#                    pkg-config (scalapack-openmpi: Debian, scalapack: Spack and most
#                    others, scalapack-mpich), else the library scalapack under
#                    SCALAPACK_ROOT / SCALAPACK_DIR
#   OpenBLAS         pkg-config openblas, else OpenBLAS's CMake config, else
#                    libopenblas under OPENBLAS_ROOT / OpenBLAS_HOME
#   oneDNN           oneDNN's CMake config (dnnl_DIR, DNNLROOT), else dnnl.h and
#                    libdnnl under DNNLROOT / DNNL_ROOT
#   libconfig        pkg-config libconfig, else libconfig.h and libconfig under
#                    LIBCONFIG_ROOT
#   HDF5 (parallel)  CMake's FindHDF5 (HDF5_ROOT, the h5pcc wrapper on PATH): the
#                    one PETSc is built with, for the ensemble's large arrays
include_guard(GLOBAL)
include(FindPackageHandleStandardArgs)

find_package(MPI REQUIRED COMPONENTS C)
find_package(OpenMP REQUIRED COMPONENTS C)
# the manifest's heartbeat thread (rundir.c)
set(THREADS_PREFER_PTHREAD_FLAG ON)
find_package(Threads REQUIRED)
find_package(PkgConfig REQUIRED)

# _resnode_dep(NAME [LINK ...] [INCLUDE ...]): resnode::dep_NAME
function(_resnode_dep name)
  cmake_parse_arguments(D "" "" "LINK;INCLUDE" ${ARGN})
  if(NOT TARGET resnode::dep_${name})
    add_library(resnode::dep_${name} INTERFACE IMPORTED GLOBAL)
    set_target_properties(resnode::dep_${name} PROPERTIES INTERFACE_LINK_LIBRARIES "${D_LINK}" INTERFACE_INCLUDE_DIRECTORIES "${D_INCLUDE}")
  endif()
endfunction()

# _resnode_roots(VAR NAME...): the environment and cache variables NAME, as search hints
function(_resnode_roots var)
  set(hints)
  foreach(n ${ARGN})
    if(DEFINED ${n})
      list(APPEND hints ${${n}})
    endif()
    if(DEFINED ENV{${n}})
      list(APPEND hints $ENV{${n}})
    endif()
  endforeach()
  set(${var} ${hints} PARENT_SCOPE)
endfunction()

# PETSc
if(NOT DEFINED PETSC_DIR AND DEFINED ENV{PETSC_DIR})
  set(PETSC_DIR $ENV{PETSC_DIR})
endif()
if(NOT DEFINED PETSC_ARCH AND DEFINED ENV{PETSC_ARCH})
  set(PETSC_ARCH $ENV{PETSC_ARCH})
endif()
if(PETSC_DIR)
  # an in-place build keeps its pkg-config file under PETSC_ARCH, a prefix install under lib
  set(ENV{PKG_CONFIG_PATH} "${PETSC_DIR}/${PETSC_ARCH}/lib/pkgconfig:${PETSC_DIR}/lib/pkgconfig:$ENV{PKG_CONFIG_PATH}")
endif()
pkg_search_module(PETSC IMPORTED_TARGET GLOBAL PETSc>=3.18 petsc>=3.18)
if(NOT PETSC_FOUND)
  message(FATAL_ERROR "resnode-mpi: PETSc >= 3.18 not found. Set PETSC_DIR (and PETSC_ARCH for an in-place build), "
    "load its module, or install it (Debian: petsc-dev; Spack: petsc).")
endif()
_resnode_dep(petsc LINK PkgConfig::PETSC)

# _resnode_find(DEP PRETTY LIBRARY names... [HEADER h [SUFFIXES ...]] ROOTS vars... MESSAGE text):
# the library (and header) under the ROOTS hints, as resnode::dep_DEP; the
# last resort after pkg-config and the library's own CMake package
function(_resnode_find dep pretty)
  cmake_parse_arguments(F "" "HEADER;MESSAGE" "LIBRARY;SUFFIXES;ROOTS" ${ARGN})
  _resnode_roots(hints ${F_ROOTS})
  string(TOUPPER ${dep} up)
  find_library(RESNODE_${up}_LIBRARY NAMES ${F_LIBRARY} HINTS ${hints} PATH_SUFFIXES lib lib64)
  set(required RESNODE_${up}_LIBRARY)
  if(F_HEADER)
    find_path(RESNODE_${up}_INCLUDE_DIR ${F_HEADER} HINTS ${hints} PATH_SUFFIXES include ${F_SUFFIXES})
    list(APPEND required RESNODE_${up}_INCLUDE_DIR)
  endif()
  find_package_handle_standard_args(${pretty} REQUIRED_VARS ${required} REASON_FAILURE_MESSAGE "${F_MESSAGE}")
  _resnode_dep(${dep} LINK ${RESNODE_${up}_LIBRARY} INCLUDE ${RESNODE_${up}_INCLUDE_DIR})
endfunction()

# ScaLAPACK
if(SCALAPACK_LIBRARIES)
  _resnode_dep(scalapack LINK "${SCALAPACK_LIBRARIES}")
else()
  pkg_search_module(SCALAPACK IMPORTED_TARGET GLOBAL scalapack-openmpi scalapack scalapack-mpich)
  if(SCALAPACK_FOUND)
    _resnode_dep(scalapack LINK PkgConfig::SCALAPACK)
  else()
    _resnode_find(scalapack ScaLAPACK LIBRARY scalapack scalapack-openmpi ROOTS SCALAPACK_ROOT SCALAPACK_DIR
      MESSAGE "set SCALAPACK_ROOT, or SCALAPACK_LIBRARIES to the whole link line (MKL, LibSci)")
  endif()
endif()

# OpenBLAS (CBLAS, and openblas_set_num_threads)
pkg_search_module(OPENBLAS IMPORTED_TARGET GLOBAL openblas)
if(OPENBLAS_FOUND)
  _resnode_dep(openblas LINK PkgConfig::OPENBLAS)
else()
  find_package(OpenBLAS CONFIG QUIET)
  if(OpenBLAS_FOUND)
    _resnode_dep(openblas LINK "${OpenBLAS_LIBRARIES}" INCLUDE "${OpenBLAS_INCLUDE_DIRS}")
  else()
    _resnode_find(openblas OpenBLAS LIBRARY openblas HEADER cblas.h SUFFIXES include/openblas ROOTS OPENBLAS_ROOT OpenBLAS_HOME OPENBLAS_DIR
      MESSAGE "set OPENBLAS_ROOT, or load an openblas module")
  endif()
endif()

# oneDNN
_resnode_roots(dnnl_hints DNNLROOT DNNL_ROOT)
find_package(dnnl CONFIG QUIET HINTS ${dnnl_hints})
if(TARGET DNNL::dnnl)
  _resnode_dep(dnnl LINK DNNL::dnnl)
else()
  _resnode_find(dnnl oneDNN LIBRARY dnnl HEADER dnnl.h ROOTS DNNLROOT DNNL_ROOT
    MESSAGE "set DNNLROOT, or load a onednn module (Debian: libdnnl-dev, Spack: onednn)")
endif()

# libconfig
pkg_search_module(LIBCONFIG IMPORTED_TARGET GLOBAL libconfig)
if(LIBCONFIG_FOUND)
  _resnode_dep(libconfig LINK PkgConfig::LIBCONFIG)
else()
  _resnode_find(libconfig libconfig LIBRARY config HEADER libconfig.h ROOTS LIBCONFIG_ROOT LIBCONFIG_DIR
    MESSAGE "set LIBCONFIG_ROOT (Debian: libconfig-dev, Spack: libconfig)")
endif()

# HDF5, parallel (MPI-IO), with its high-level library (dimension scales)
set(HDF5_PREFER_PARALLEL TRUE)
find_package(HDF5 COMPONENTS C HL)
if(NOT HDF5_FOUND OR NOT HDF5_IS_PARALLEL)
  if(HDF5_FOUND)
    set(_hdf5_found " (HDF5 ${HDF5_VERSION} was found, without MPI)")
  endif()
  message(FATAL_ERROR "resnode-mpi: a parallel HDF5 (built with MPI, as PETSc's) was not found${_hdf5_found}. Set HDF5_ROOT, "
    "or put its h5pcc on PATH (Debian: libhdf5-mpi-dev, Spack: hdf5+mpi, modules: hdf5 with MPI)")
endif()
_resnode_dep(hdf5 LINK "${HDF5_HL_LIBRARIES};${HDF5_C_LIBRARIES}" INCLUDE "${HDF5_INCLUDE_DIRS}")

set(RESNODE_DEPENDENCY_TARGETS resnode::dep_petsc resnode::dep_scalapack resnode::dep_openblas resnode::dep_dnnl
  resnode::dep_libconfig resnode::dep_hdf5 OpenMP::OpenMP_C Threads::Threads MPI::MPI_C m)
