/* resnode-mpi: the one binary. Everything is in the library; see app.h. */
#include "resnode/app/app.h"

int main(int argc, char **argv)
{
  return RnMain(argc, argv);
}
