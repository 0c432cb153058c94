rn_add_test(test_dnnl SOURCES test_dnnl.c LABELS dnnl)
rn_add_test(test_dnnl SOURCES test_dnnl.c RANKS 2 LABELS dnnl)
