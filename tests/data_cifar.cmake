rn_add_test(test_data_cifar SOURCES test_data_cifar.c LABELS data)
rn_add_test(test_data_cifar SOURCES test_data_cifar.c RANKS 2 LABELS data)
# writes small CIFAR-format data sets for the command-line tests
add_executable(rn_make_cifar make_cifar.c)
target_link_libraries(rn_make_cifar PRIVATE resnode)
rn_add_test(test_cifar SOURCES test_cifar.c LABELS cifar)
rn_add_test(test_cifar SOURCES test_cifar.c RANKS 2 LABELS cifar)
