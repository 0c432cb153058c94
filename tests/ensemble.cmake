rn_add_test(test_ensemble SOURCES test_ensemble.c LABELS ensemble)
rn_add_test(test_ensemble SOURCES test_ensemble.c RANKS 2 LABELS ensemble)
