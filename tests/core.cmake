rn_add_test(test_flow SOURCES test_flow.c LABELS ode)
rn_add_test(test_flow SOURCES test_flow.c RANKS 2 LABELS ode)
rn_add_test(test_adjoint SOURCES test_adjoint.c LABELS ode)
rn_add_test(test_adjoint SOURCES test_adjoint.c RANKS 2 LABELS ode)
