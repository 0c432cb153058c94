/* resnode-mpi: the launcher. A preemption notice (Slurm's --signal, an
 * mpirun forwarding SIGUSR1 or SIGTERM) can reach a rank at any moment,
 * also in the tens of milliseconds the dynamic loader takes to map the
 * real program's hundred shared libraries (PETSc's), when no handler of
 * ours can be in place and the default action kills the rank. This static
 * program, with no libraries to load, blocks both signals and executes the
 * real program (resnode-mpi-main, beside it): a blocked signal stays
 * pending across exec, and the real program takes it once its handler is
 * in (main.c), so the run checkpoints and exits 3 instead of dying. */
#define _GNU_SOURCE
#include <errno.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#define RN_MAIN_PROGRAM "resnode-mpi-main"

int main(int argc, char **argv)
{
  sigset_t notices;
  char self[PATH_MAX], real[PATH_MAX + sizeof RN_MAIN_PROGRAM];
  ssize_t n;
  char *slash;

  (void)argc;
  sigemptyset(&notices);
  sigaddset(&notices, SIGUSR1);
  sigaddset(&notices, SIGTERM);
  sigprocmask(SIG_BLOCK, &notices, NULL);
  n = readlink("/proc/self/exe", self, sizeof self - 1);
  if (n <= 0) {
    fprintf(stderr, "resnode-mpi: error: cannot find this program's directory (/proc/self/exe: %s)\n", strerror(errno));
    return 1;
  }
  self[n] = 0;
  slash = strrchr(self, '/');
  *slash = 0;
  snprintf(real, sizeof real, "%s/%s", self, RN_MAIN_PROGRAM);
  execv(real, argv);
  fprintf(stderr, "resnode-mpi: error: cannot run %s: %s (the installation is incomplete: it is installed beside resnode-mpi)\n", real, strerror(errno));
  return 1;
}
