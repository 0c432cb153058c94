rn_add_test(test_stats SOURCES test_stats.c LABELS stats)
rn_add_test(test_stats SOURCES test_stats.c RANKS 2 LABELS stats)
rn_add_test(test_stats SOURCES test_stats.c RANKS 3 LABELS stats)
rn_add_test(test_stats SOURCES test_stats.c RANKS 4 LABELS stats)
