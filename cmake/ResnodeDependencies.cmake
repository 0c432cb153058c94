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
include_guard(GLOBAL)
include(FindPackageHandleStandardArgs)

find_package(MPI REQUIRED COMPONENTS C)
find_package(OpenMP REQUIRED COMPONENTS C)
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

# ScaLAPACK
if(SCALAPACK_LIBRARIES)
  _resnode_dep(scalapack LINK "${SCALAPACK_LIBRARIES}")
else()
  pkg_search_module(SCALAPACK IMPORTED_TARGET GLOBAL scalapack-openmpi scalapack scalapack-mpich)
  if(SCALAPACK_FOUND)
    _resnode_dep(scalapack LINK PkgConfig::SCALAPACK)
  else()
    _resnode_roots(scalapack_hints SCALAPACK_ROOT SCALAPACK_DIR)
    find_library(RESNODE_SCALAPACK_LIBRARY NAMES scalapack scalapack-openmpi HINTS ${scalapack_hints} PATH_SUFFIXES lib lib64)
    find_package_handle_standard_args(ScaLAPACK REQUIRED_VARS RESNODE_SCALAPACK_LIBRARY
      REASON_FAILURE_MESSAGE "set SCALAPACK_ROOT, or SCALAPACK_LIBRARIES to the whole link line (MKL, LibSci)")
    _resnode_dep(scalapack LINK ${RESNODE_SCALAPACK_LIBRARY})
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
    _resnode_roots(openblas_hints OPENBLAS_ROOT OpenBLAS_HOME OPENBLAS_DIR)
    find_library(RESNODE_OPENBLAS_LIBRARY NAMES openblas HINTS ${openblas_hints} PATH_SUFFIXES lib lib64)
    find_path(RESNODE_CBLAS_INCLUDE_DIR cblas.h HINTS ${openblas_hints} PATH_SUFFIXES include include/openblas)
    find_package_handle_standard_args(OpenBLAS REQUIRED_VARS RESNODE_OPENBLAS_LIBRARY RESNODE_CBLAS_INCLUDE_DIR
      REASON_FAILURE_MESSAGE "set OPENBLAS_ROOT, or load an openblas module")
    _resnode_dep(openblas LINK ${RESNODE_OPENBLAS_LIBRARY} INCLUDE ${RESNODE_CBLAS_INCLUDE_DIR})
  endif()
endif()

# oneDNN
_resnode_roots(dnnl_hints DNNLROOT DNNL_ROOT)
find_package(dnnl CONFIG QUIET HINTS ${dnnl_hints})
if(TARGET DNNL::dnnl)
  _resnode_dep(dnnl LINK DNNL::dnnl)
else()
  find_path(RESNODE_DNNL_INCLUDE_DIR dnnl.h HINTS ${dnnl_hints} PATH_SUFFIXES include)
  find_library(RESNODE_DNNL_LIBRARY NAMES dnnl HINTS ${dnnl_hints} PATH_SUFFIXES lib lib64)
  find_package_handle_standard_args(oneDNN REQUIRED_VARS RESNODE_DNNL_LIBRARY RESNODE_DNNL_INCLUDE_DIR
    REASON_FAILURE_MESSAGE "set DNNLROOT, or load a onednn module (Debian: libdnnl-dev, Spack: onednn)")
  _resnode_dep(dnnl LINK ${RESNODE_DNNL_LIBRARY} INCLUDE ${RESNODE_DNNL_INCLUDE_DIR})
endif()

# libconfig
pkg_search_module(LIBCONFIG IMPORTED_TARGET GLOBAL libconfig)
if(LIBCONFIG_FOUND)
  _resnode_dep(libconfig LINK PkgConfig::LIBCONFIG)
else()
  _resnode_roots(libconfig_hints LIBCONFIG_ROOT LIBCONFIG_DIR)
  find_path(RESNODE_LIBCONFIG_INCLUDE_DIR libconfig.h HINTS ${libconfig_hints} PATH_SUFFIXES include)
  find_library(RESNODE_LIBCONFIG_LIBRARY NAMES config HINTS ${libconfig_hints} PATH_SUFFIXES lib lib64)
  find_package_handle_standard_args(libconfig REQUIRED_VARS RESNODE_LIBCONFIG_LIBRARY RESNODE_LIBCONFIG_INCLUDE_DIR
    REASON_FAILURE_MESSAGE "set LIBCONFIG_ROOT (Debian: libconfig-dev, Spack: libconfig)")
  _resnode_dep(libconfig LINK ${RESNODE_LIBCONFIG_LIBRARY} INCLUDE ${RESNODE_LIBCONFIG_INCLUDE_DIR})
endif()

set(RESNODE_DEPENDENCY_TARGETS resnode::dep_petsc resnode::dep_scalapack resnode::dep_openblas resnode::dep_dnnl
  resnode::dep_libconfig OpenMP::OpenMP_C MPI::MPI_C m)
