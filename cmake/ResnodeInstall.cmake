# ResnodeInstall.cmake: what `cmake --install build --prefix P` puts in P.
# Everything finds everything else relative to itself, so a moved prefix
# still works:
#   bin/resnode-mpi                    the binary (no source tree, no Python): a static
#                                      launcher of bin/resnode-mpi-main (src/app/launch.c)
#   bin/resnode-<analysis>             the analysis commands (python3 on PATH)
#   lib/libresnode_<layer>.a           the library, one archive per layer
#   include/resnode/                   the public headers
#   lib/cmake/resnode/                 find_package(resnode): resnode::resnode
#   lib/pkgconfig/resnode.pc           pkg-config resnode
#   share/resnode/{configs,studies,jobs/slurm,analysis,bench}
#   share/modulefiles/resnode/VERSION  an environment module (Lmod or Tcl modules)

# The analysis commands: bin/resnode-<name> runs analysis/<name>. In the build
# tree the same commands sit next to the binary and run the source tree's
# scripts, so a run can name its command wherever it ran from.
set(RESNODE_ANALYSIS_SCRIPTS convergence plot-node-fit plot-identity plot-annulus plot-cifar plot-adjoint-memory study runs)
# the fallback Python: the first with numpy and matplotlib of RESNODE_PYTHON,
# python3 on PATH and the system's (a cluster's module may be neither)
set(RESNODE_PYTHON_FALLBACK "")
find_program(RN_PATH_PYTHON3 python3)
foreach(py ${RESNODE_PYTHON} $ENV{RESNODE_PYTHON} ${RN_PATH_PYTHON3} /usr/bin/python3)
  if(NOT RESNODE_PYTHON_FALLBACK AND EXISTS "${py}")
    execute_process(COMMAND ${py} -c "import numpy, matplotlib" RESULT_VARIABLE py_status OUTPUT_QUIET ERROR_QUIET)
    if(py_status EQUAL 0)
      set(RESNODE_PYTHON_FALLBACK "${py}")
    endif()
  endif()
endforeach()
if(NOT RESNODE_PYTHON_FALLBACK)
  message(STATUS "resnode-mpi: no Python 3 with numpy and matplotlib found: the analysis commands will look for one when run")
endif()
foreach(script ${RESNODE_ANALYSIS_SCRIPTS})
  set(RESNODE_ANALYSIS_SCRIPT ${script})
  set(RESNODE_ANALYSIS_DIR_FROM_BIN "../${CMAKE_INSTALL_DATADIR}/resnode/analysis")
  configure_file(${CMAKE_SOURCE_DIR}/cmake/analysis-command.in ${CMAKE_BINARY_DIR}/install-bin/resnode-${script} @ONLY
    FILE_PERMISSIONS OWNER_READ OWNER_WRITE OWNER_EXECUTE GROUP_READ GROUP_EXECUTE WORLD_READ WORLD_EXECUTE)
  set(RESNODE_ANALYSIS_DIR_FROM_BIN "${CMAKE_SOURCE_DIR}/analysis")
  configure_file(${CMAKE_SOURCE_DIR}/cmake/analysis-command.in ${CMAKE_BINARY_DIR}/resnode-${script} @ONLY
    FILE_PERMISSIONS OWNER_READ OWNER_WRITE OWNER_EXECUTE GROUP_READ GROUP_EXECUTE WORLD_READ WORLD_EXECUTE)
  install(PROGRAMS ${CMAKE_BINARY_DIR}/install-bin/resnode-${script} DESTINATION ${CMAKE_INSTALL_BINDIR})
  install(PROGRAMS ${CMAKE_SOURCE_DIR}/analysis/${script} DESTINATION ${CMAKE_INSTALL_DATADIR}/resnode/analysis)
endforeach()
install(FILES ${CMAKE_SOURCE_DIR}/analysis/rnlib.py ${CMAKE_SOURCE_DIR}/analysis/rncatalog.py DESTINATION ${CMAKE_INSTALL_DATADIR}/resnode/analysis)

install(TARGETS resnode-mpi resnode-mpi-main RUNTIME DESTINATION ${CMAKE_INSTALL_BINDIR})
set(layer_targets resnode)
foreach(layer ${RESNODE_LAYERS})
  list(APPEND layer_targets resnode_${layer})
endforeach()
install(TARGETS ${layer_targets} EXPORT resnodeTargets ARCHIVE DESTINATION ${CMAKE_INSTALL_LIBDIR})
install(DIRECTORY ${CMAKE_SOURCE_DIR}/include/resnode DESTINATION ${CMAKE_INSTALL_INCLUDEDIR})

# find_package(resnode): the targets, and the dependencies found again the same way
set(cmake_dir ${CMAKE_INSTALL_LIBDIR}/cmake/resnode)
install(EXPORT resnodeTargets NAMESPACE resnode:: DESTINATION ${cmake_dir})
include(CMakePackageConfigHelpers)
configure_package_config_file(${CMAKE_SOURCE_DIR}/cmake/resnodeConfig.cmake.in ${CMAKE_BINARY_DIR}/resnodeConfig.cmake INSTALL_DESTINATION ${cmake_dir})
write_basic_package_version_file(${CMAKE_BINARY_DIR}/resnodeConfigVersion.cmake COMPATIBILITY SameMinorVersion)
install(FILES ${CMAKE_BINARY_DIR}/resnodeConfig.cmake ${CMAKE_BINARY_DIR}/resnodeConfigVersion.cmake ${CMAKE_SOURCE_DIR}/cmake/ResnodeDependencies.cmake DESTINATION ${cmake_dir})

# pkg-config: the layers in link order, then what they were built against
set(RESNODE_PC_LIBS "")
list(REVERSE RESNODE_LAYERS)
foreach(layer ${RESNODE_LAYERS})
  string(APPEND RESNODE_PC_LIBS " -lresnode_${layer}")
endforeach()
list(REVERSE RESNODE_LAYERS)
set(RESNODE_PC_DEPS_LIBS "")
set(RESNODE_PC_DEPS_CFLAGS "")
foreach(prefix PETSC SCALAPACK OPENBLAS LIBCONFIG)
  if(${prefix}_FOUND)
    foreach(flag ${${prefix}_LDFLAGS})
      string(APPEND RESNODE_PC_DEPS_LIBS " ${flag}")
    endforeach()
    foreach(flag ${${prefix}_CFLAGS})
      string(APPEND RESNODE_PC_DEPS_CFLAGS " ${flag}")
    endforeach()
  endif()
endforeach()
foreach(dep scalapack openblas dnnl libconfig hdf5)
  get_target_property(links resnode::dep_${dep} INTERFACE_LINK_LIBRARIES)
  get_target_property(incs resnode::dep_${dep} INTERFACE_INCLUDE_DIRECTORIES)
  foreach(l ${links})
    if(l MATCHES "^/")
      string(APPEND RESNODE_PC_DEPS_LIBS " ${l}")
    elseif(l STREQUAL "DNNL::dnnl")
      get_target_property(dnnl_lib DNNL::dnnl LOCATION)
      get_target_property(dnnl_inc DNNL::dnnl INTERFACE_INCLUDE_DIRECTORIES)
      string(APPEND RESNODE_PC_DEPS_LIBS " ${dnnl_lib}")
      foreach(i ${dnnl_inc})
        string(APPEND RESNODE_PC_DEPS_CFLAGS " -I${i}")
      endforeach()
    endif()
  endforeach()
  foreach(i ${incs})
    if(i)
      string(APPEND RESNODE_PC_DEPS_CFLAGS " -I${i}")
    endif()
  endforeach()
endforeach()
foreach(i ${MPI_C_INCLUDE_DIRS})
  string(APPEND RESNODE_PC_DEPS_CFLAGS " -I${i}")
endforeach()
foreach(l ${MPI_C_LIBRARIES})
  string(APPEND RESNODE_PC_DEPS_LIBS " ${l}")
endforeach()
string(APPEND RESNODE_PC_DEPS_LIBS " ${OpenMP_C_FLAGS} ${CMAKE_THREAD_LIBS_INIT} -lm")
string(APPEND RESNODE_PC_DEPS_CFLAGS " ${OpenMP_C_FLAGS}")
configure_file(${CMAKE_SOURCE_DIR}/cmake/resnode.pc.in ${CMAKE_BINARY_DIR}/resnode.pc @ONLY)
install(FILES ${CMAKE_BINARY_DIR}/resnode.pc DESTINATION ${CMAKE_INSTALL_LIBDIR}/pkgconfig)

# the environment module, relocatable (it finds the prefix from its own path)
configure_file(${CMAKE_SOURCE_DIR}/cmake/resnode.module.in ${CMAKE_BINARY_DIR}/resnode.module @ONLY)
install(FILES ${CMAKE_BINARY_DIR}/resnode.module DESTINATION ${CMAKE_INSTALL_DATADIR}/modulefiles/resnode RENAME ${PROJECT_VERSION})

# configs, studies, the Slurm scripts and the benchmarks' reference scripts
install(DIRECTORY ${CMAKE_SOURCE_DIR}/configs/ DESTINATION ${CMAKE_INSTALL_DATADIR}/resnode/configs)
install(DIRECTORY ${CMAKE_SOURCE_DIR}/studies/ DESTINATION ${CMAKE_INSTALL_DATADIR}/resnode/studies)
install(DIRECTORY ${CMAKE_SOURCE_DIR}/jobs/slurm/ DESTINATION ${CMAKE_INSTALL_DATADIR}/resnode/jobs/slurm USE_SOURCE_PERMISSIONS)
install(PROGRAMS ${CMAKE_SOURCE_DIR}/bench/torch_reference.py ${CMAKE_SOURCE_DIR}/bench/cifar-precision.sh DESTINATION ${CMAKE_INSTALL_DATADIR}/resnode/bench)
