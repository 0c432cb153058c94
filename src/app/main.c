/* resnode-mpi: the one binary. Everything is in the library; see app.h. */
#include "resnode/app/app.h"
#include "resnode/core/checkpoint.h"

/* A preemption notice (SIGUSR1, SIGTERM) can come at any moment, also while
 * the ranks still load their libraries: the handlers that count it go in
 * before any library's constructor runs (the executable's preinit array),
 * and the run acts on it at its first step. */
static void CatchSignalsFirst(int argc, char **argv, char **envp)
{
  (void)argc, (void)argv, (void)envp;
  (void)RnSignalsCatch();
}
__attribute__((section(".preinit_array"), used)) static void (*const rn_preinit)(int, char **, char **) = CatchSignalsFirst;

int main(int argc, char **argv)
{
  return RnMain(argc, argv);
}
