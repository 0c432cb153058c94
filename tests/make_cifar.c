/* rn_make_cifar DIR RECORDS_PER_FILE: a small synthetic CIFAR-10 data set in
 * the standard binary format, for the command-line tests. */
#include <stdlib.h>

#include "resnode/data/data.h"

int main(int argc, char **argv)
{
  if (argc != 3) {
    fprintf(stderr, "usage: rn_make_cifar DIR RECORDS_PER_FILE\n");
    return 2;
  }
  PetscCall(PetscInitialize(&argc, &argv, NULL, NULL));
  PetscCall(RnCifarWriteSynthetic(argv[1], atoi(argv[2]), 7));
  PetscCall(PetscFinalize());
  return 0;
}
