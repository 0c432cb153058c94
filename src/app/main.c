/* resnode-mpi: the one binary. Everything is in the library; see app.h. */
#include "resnode/app/app.h"
#include "resnode/core/checkpoint.h"

#include <sys/prctl.h>

#define RN_PROCESS_NAME "resnode-mpi"

/* A preemption notice (SIGUSR1, SIGTERM) can come at any moment, also while
 * the ranks still load their libraries: the handlers that count it go in
 * before any library's constructor runs (the executable's preinit array),
 * and the run acts on it at its first step. */
static void CatchSignalsFirst(int argc, char **argv, char **envp)
{
  (void)argc, (void)argv, (void)envp;
  (void)RnSignalsCatch();
  /* the ranks keep the launcher's name in ps, top and pgrep -x (the kernel
   * would show this file's, cut to 15 characters: "resnode-mpi-mai") */
  (void)prctl(PR_SET_NAME, RN_PROCESS_NAME, 0, 0, 0);
}
__attribute__((section(".preinit_array"), used)) static void (*const rn_preinit)(int, char **, char **) = CatchSignalsFirst;

int main(int argc, char **argv)
{
  return RnMain(argc, argv);
}
