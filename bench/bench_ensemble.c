/* bench_ensemble: member-steps per second of the SGD ensemble of
 * configs/ensemble.cfg's problem (dimension 2, field 2 -> 16 tanh -> 2,
 * smooth cap, 256 samples, batch 32) at depth N = 16 and for the ODE limit
 * (dopri5, rtol 1e-9); every rank runs its own members (one-rank groups).
 *   mpirun -n 1|2 build/bench/bench_ensemble [members] [steps] */
#include "resnode/ensemble/ensemble.h"
#include "resnode/core/rng.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

int main(int argc, char **argv)
{
  int rank, size, members = argc > 1 && argv[1][0] != '-' ? atoi(argv[1]) : 8, steps = argc > 2 && argv[2][0] != '-' ? atoi(argv[2]) : 200;
  RnEnsembleOptions o;
  RnNet field;
  RnLayer l;
  RnShape in = {2, 1, 1}, hid = {16, 1, 1};
  RnEnsemble ens;
  double x[512], y[512];

  PetscCall(PetscInitialize(&argc, &argv, NULL, NULL));
  MPI_Comm_rank(PETSC_COMM_WORLD, &rank);
  MPI_Comm_size(PETSC_COMM_WORLD, &size);
  memset(&o, 0, sizeof o);
  o.dim = 2, o.samples = 256, o.x = x, o.y = y;
  RnRandUniform(12345, RN_STREAM_DATA, 0, 0, 512, x);
  for (int i = 0; i < 512; i++) x[i] = 2 * x[i] - 1, y[i] = x[i] + 0.5 * sin(PETSC_PI * x[i]);
  o.T = 1, o.cap.kind = RN_CAP_SMOOTH, o.cap.level = 5, o.gamma = 1e-3, o.power = 2;
  o.eta = 0.05, o.steps = steps, o.batch = 32, o.sigma = 0.1, o.record_every = 10, o.members = members;
  RnOdeOptionsDefault(&o.ode);
  strcpy(o.ode.solver, "dopri5");
  o.ode.adaptive = PETSC_TRUE, o.ode.rtol = 1e-9, o.ode.atol = 1e-11;
  RnNetCreate(in, &field);
  RnLayerCreateDense(in, 16, &l), RnNetAdd(field, l);
  RnLayerCreateActivation(hid, RN_ACT_TANH, &l), RnNetAdd(field, l);
  RnLayerCreateDense(hid, 2, &l), RnNetAdd(field, l);
  RnNetSetUp(field);
  PetscCall(RnEnsembleCreate(PETSC_COMM_SELF, 1, field, &o, &ens));
  {
    const int nrec = RnEnsembleRecordCount(ens);
    double *risk = malloc(sizeof(double) * nrec), *theta = malloc(sizeof(double) * nrec * RnEnsembleParamCount(ens));
    for (int c = 0; c < 2; c++) {
      const int N = c == 0 ? 16 : 0;
      double t0, t;
      MPI_Barrier(PETSC_COMM_WORLD);
      t0 = MPI_Wtime();
      for (int m = rank; m < members; m += size) PetscCall(RnEnsembleRunMember(ens, m, N, risk, theta));
      t = MPI_Wtime() - t0;
      MPI_Allreduce(MPI_IN_PLACE, &t, 1, MPI_DOUBLE, MPI_MAX, PETSC_COMM_WORLD);
      if (rank == 0) printf("%-24s %d rank(s): %d members x %d steps in %.2f s: %.0f member-steps/s\n", N ? "tied ResNet N = 16" : "ODE limit (dopri5 1e-9)", size, members, steps, t, members * (double)steps / t);
    }
    free(risk), free(theta);
  }
  RnEnsembleDestroy(&ens);
  RnNetDestroy(&field);
  PetscCall(PetscFinalize());
  return 0;
}
