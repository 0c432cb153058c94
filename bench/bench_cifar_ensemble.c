/* bench_cifar_ensemble: member-steps per second of the SGD ensemble of the
 * CIFAR network (configs/cifar-ensemble.cfg's process: batch 32, float32,
 * batch norm at its initial statistics) at width C for the tied ResNet N = 8
 * and the ODE limit (rk4, 8 steps); every rank runs its own members. Only
 * the SGD steps are timed (RnEnsembleMemberAdvance): no record's risk.
 *   mpirun -n 1|2 build/bench/bench_cifar_ensemble [DIR] [C] [members] [steps]
 * DIR: CIFAR-10 binary files (default: generated ones in a temporary directory). */
#include "resnode/models/cifar.h"
#include "resnode/core/rng.h"

#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static PetscErrorCode TimeMembers(RnDataset data, int C, int N, int members, int steps, int rank, int size, double *seconds)
{
  RnEnsembleOptions o;
  RnCifarEnsembleOptions c;
  RnEnsembleProblem problem;
  RnEnsemble ens;
  PetscInt p;
  double *state, t0;

  PetscFunctionBeginUser;
  memset(&o, 0, sizeof o);
  o.classification = PETSC_TRUE, o.T = 1, o.cap.kind = RN_CAP_SMOOTH, o.cap.level = 5, o.gamma = 1e-3, o.power = 2;
  o.eta = 0.05, o.steps = steps, o.batch = 32, o.sigma = 0.01, o.record_every = steps > 0 ? steps : 1, o.members = members;
  RnOdeOptionsDefault(&o.ode);
  strcpy(o.ode.solver, "rk4");
  o.ode.adaptive = PETSC_FALSE, o.ode.steps = 8;
  c.channels = C, c.activation = RN_ACT_RELU, c.batch = 32, c.eval_batch = 500, c.precision = RN_PRECISION_FLOAT32, c.convolution = RN_CONV_AUTO, c.ode = o.ode;
  PetscCall(RnCifarEnsembleProblemCreate(PETSC_COMM_SELF, 1, data, &c, &problem, &p));
  PetscCall(RnEnsembleCreateWithProblem(PETSC_COMM_SELF, 1, p, &o, &problem, &ens));
  state = malloc(sizeof(double) * RnEnsembleMemberStateLength(ens));
  /* the SGD steps alone: a member's initial parameters (and its depth's
   * model) are made before the clock starts, and no record is taken */
  *seconds = 0;
  for (int m = rank; m < members; m += size) {
    PetscCall(RnEnsembleMemberBegin(ens, m, N, state));
    t0 = MPI_Wtime();
    PetscCall(RnEnsembleMemberAdvance(ens, state, steps));
    *seconds += MPI_Wtime() - t0;
  }
  MPI_Allreduce(MPI_IN_PLACE, seconds, 1, MPI_DOUBLE, MPI_MAX, PETSC_COMM_WORLD);
  free(state);
  PetscCall(RnEnsembleDestroy(&ens));
  PetscFunctionReturn(0);
}

int main(int argc, char **argv)
{
  int rank, size;
  const char *dir = argc > 1 && argv[1][0] != '-' ? argv[1] : NULL;
  const int C = argc > 2 ? atoi(argv[2]) : 16, members = argc > 3 ? atoi(argv[3]) : 4, steps = argc > 4 ? atoi(argv[4]) : 50;
  char tmp[64] = "";
  RnDataset data;

  PetscCall(PetscInitialize(&argc, &argv, NULL, NULL));
  MPI_Comm_rank(PETSC_COMM_WORLD, &rank);
  MPI_Comm_size(PETSC_COMM_WORLD, &size);
  RnThreadsSetUp(size); /* as resnode-mpi does: one thread a rank when there are several */
  if (!dir) {
    snprintf(tmp, sizeof tmp, "/tmp/rn-bench-cifar-%d", (int)getpid());
    MPI_Bcast(tmp, sizeof tmp, MPI_CHAR, 0, PETSC_COMM_WORLD);
    if (rank == 0) PetscCall(RnCifarWriteSynthetic(tmp, 200, 7));
    MPI_Barrier(PETSC_COMM_WORLD);
    dir = tmp;
  }
  PetscCall(RnCifarLoad(PETSC_COMM_WORLD, dir, PETSC_TRUE, 1000, &data));
  if (rank == 0) {
    char cpu[256];
    RnCpuDescribe(cpu, sizeof cpu);
    printf("CPU: %s; C = %d, batch 32, float32, %d training images of %s; %d rank(s), %d thread(s) each\n", cpu, C, data->n, tmp[0] ? "generated files" : dir, size, RnThreadsPerRank());
  }
  for (int k = 0; k < 2; k++) {
    const int N = k == 0 ? 8 : 0;
    double t_steps;
    PetscCall(TimeMembers(data, C, N, members, steps, rank, size, &t_steps));
    if (rank == 0)
      printf("%-24s %d members x %d SGD steps: %.2f s on the slowest rank: %.1f member-steps/s\n", N ? "tied ResNet N = 8" : "ODE limit (rk4, 8 steps)", members, steps, t_steps,
             members * (double)steps / t_steps);
  }
  PetscCall(RnDatasetDestroy(&data));
  if (tmp[0] && rank == 0) {
    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf %s", tmp);
    if (system(cmd)) { /* a leftover directory in /tmp is harmless */
    }
  }
  PetscCall(PetscFinalize());
  return 0;
}
