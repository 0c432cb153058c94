rn_add_test(test_config SOURCES test_config.c LABELS config)
rn_add_test(test_config SOURCES test_config.c RANKS 2 LABELS config)
