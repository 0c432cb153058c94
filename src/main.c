/* resnode-mpi: the one binary. Everything is in the library; see run.h. */
#include "resnode/core/run.h"

int main(int argc, char **argv)
{
  return RnMain(argc, argv);
}
