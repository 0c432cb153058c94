/* bench_ensemble: member-steps per second of the SGD ensemble of
 * configs/ensemble.cfg's problem (dimension 2, field 2 -> 16 tanh -> 2,
 * smooth cap, 256 samples, batch 32) at depth N = 16 and for the ODE limit
 * (dopri5, rtol 1e-9); every rank runs its own members (one-rank groups).
 * Then what the limit member's cost is made of (dopri5's steps and field
 * evaluations against the ResNet's 16) and fixed-step rk4 with S steps as the
 * limit: its speed, its error against dopri5 at 1e-9 over the whole SGD
 * trajectory, and the step-doubling estimate of that error (|S - 2S|).
 *   mpirun -n 1|2 build/bench/bench_ensemble [members] [steps] */
#include "resnode/ensemble/ensemble.h"
#include "resnode/core/rng.h"
#include "resnode/ode/ode.h"

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
    /* one forward and backward of the limit at the initial parameters: steps and evaluations */
    {
      RnFlow flow;
      RnOdeStats st;
      const double T = 1.0;
      double *th = malloc(sizeof(double) * field->nparams), *g = calloc(field->nparams, sizeof(double)), xT[64], dx[64];
      RnNetInit(field, 1, 0, 0, th);
      PetscCall(RnFlowCreate(PETSC_COMM_SELF, field, RN_FLOW_ODE, 0, 1, &T, &flow));
      PetscCall(RnFlowSetOdeOptions(flow, &o.ode));
      PetscCall(RnFlowSetRecord(flow, PETSC_TRUE));
      PetscCall(RnFlowForward(flow, 32, th, x, xT));
      for (int i = 0; i < 64; i++) dx[i] = xT[i] - y[i];
      PetscCall(RnFlowBackward(flow, th, dx, NULL, g));
      PetscCall(RnOdeGetStats(flow->ode, &st));
      if (rank == 0)
        printf("ODE limit, one SGD step: %d dopri5 steps, %ld field evaluations forward, %ld backward, %ld transposed products (the ResNet N = 16: 16 evaluations and 16 products)\n",
               st.steps, st.rhs_forward, st.rhs_backward, st.vjp);
      PetscCall(RnFlowDestroy(&flow));
      free(th), free(g);
    }
    /* fixed-step rk4 as the limit: its error against dopri5 1e-9 over the SGD trajectory */
    {
      const size_t len = (size_t)nrec * RnEnsembleParamCount(ens);
      double *ref = malloc(sizeof(double) * len * members), *prev = malloc(sizeof(double) * len * members), *cur = malloc(sizeof(double) * len * members);
      int S_prev = 0;
      for (int m = rank; m < members; m += size) PetscCall(RnEnsembleRunMember(ens, m, 0, risk, ref + len * m));
      for (int S = 4; S <= 64; S *= 2) {
        RnEnsembleOptions q = o;
        RnEnsemble e2;
        double t0, t, err = 0, est = 0, scale = 0;
        strcpy(q.ode.solver, "rk4");
        q.ode.adaptive = PETSC_FALSE, q.ode.steps = S;
        PetscCall(RnEnsembleCreate(PETSC_COMM_SELF, 1, field, &q, &e2));
        MPI_Barrier(PETSC_COMM_WORLD);
        t0 = MPI_Wtime();
        for (int m = rank; m < members; m += size) PetscCall(RnEnsembleRunMember(e2, m, 0, risk, cur + len * m));
        t = MPI_Wtime() - t0;
        for (int m = rank; m < members; m += size)
          for (size_t k = 0; k < len; k++) {
            err = fmax(err, fabs(cur[len * m + k] - ref[len * m + k]));
            if (S_prev) est = fmax(est, fabs(cur[len * m + k] - prev[len * m + k]));
            scale = fmax(scale, fabs(ref[len * m + k]));
          }
        MPI_Allreduce(MPI_IN_PLACE, &t, 1, MPI_DOUBLE, MPI_MAX, PETSC_COMM_WORLD);
        MPI_Allreduce(MPI_IN_PLACE, &err, 1, MPI_DOUBLE, MPI_MAX, PETSC_COMM_WORLD);
        MPI_Allreduce(MPI_IN_PLACE, &est, 1, MPI_DOUBLE, MPI_MAX, PETSC_COMM_WORLD);
        MPI_Allreduce(MPI_IN_PLACE, &scale, 1, MPI_DOUBLE, MPI_MAX, PETSC_COMM_WORLD);
        if (rank == 0)
          printf("ODE limit rk4, %2d steps       %d rank(s): %.0f member-steps/s; max |theta - theta_dopri5| / max |theta| = %.1e%s", S, size, members * (double)steps / t, err / scale,
                 S_prev ? "" : "\n");
        if (rank == 0 && S_prev) printf("; step-doubling estimate of the %d-step error %.1e\n", S_prev, est / scale);
        memcpy(prev, cur, sizeof(double) * len * members);
        S_prev = S;
        PetscCall(RnEnsembleDestroy(&e2));
      }
      free(ref), free(prev), free(cur);
    }
    free(risk), free(theta);
  }
  RnEnsembleDestroy(&ens);
  RnNetDestroy(&field);
  PetscCall(PetscFinalize());
  return 0;
}
