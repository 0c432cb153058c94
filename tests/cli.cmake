# Command-line tests: the binary under mpirun, driven by shell scripts.
function(rn_add_cli_test name)
  cmake_parse_arguments(T "" "TIMEOUT" "LABELS" ${ARGN})
  if(NOT T_TIMEOUT)
    set(T_TIMEOUT 600)
  endif()
  add_test(NAME ${name} COMMAND bash ${CMAKE_CURRENT_SOURCE_DIR}/cli/${name}.sh)
  set_tests_properties(${name} PROPERTIES LABELS "cli;${T_LABELS}" TIMEOUT ${T_TIMEOUT} PROCESSORS 2
    ENVIRONMENT "RESNODE_BINARY=$<TARGET_FILE:resnode-mpi>;RESNODE_SOURCE_DIR=${CMAKE_SOURCE_DIR};RN_MAKE_CIFAR=$<TARGET_FILE:rn_make_cifar>")
endfunction()
rn_add_cli_test(nodefit_e2e)
rn_add_cli_test(input_errors)
rn_add_cli_test(ensemble_ranks LABELS ensemble)
rn_add_cli_test(resume LABELS checkpoint)
rn_add_cli_test(failures LABELS checkpoint)
rn_add_cli_test(cifar_e2e LABELS cifar)
rn_add_cli_test(get_cifar10 LABELS cifar)
# The Slurm scripts on a single-node Slurm brought up by the test itself.
add_test(NAME slurm_jobs COMMAND bash ${CMAKE_CURRENT_SOURCE_DIR}/slurm/slurm_jobs.sh)
set_tests_properties(slurm_jobs PROPERTIES LABELS "slurm;cli" TIMEOUT 900 PROCESSORS 2
  ENVIRONMENT "RESNODE_BINARY=$<TARGET_FILE:resnode-mpi>;RESNODE_SOURCE_DIR=${CMAKE_SOURCE_DIR}")
rn_add_cli_test(experiments_e2e)
# 64 ranks oversubscribed on the machine's cores (the cluster layout, shrunk)
rn_add_cli_test(scale64 LABELS scale TIMEOUT 900)
