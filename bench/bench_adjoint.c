/* bench_adjoint: time per training iteration (forward + adjoint + Adam) and
 * peak memory of one adjoint mode at one number of steps, in a fresh process
 * (peak RSS only grows within a process); bench/adjoint-memory.sh runs the
 * grid and analysis/plot-adjoint-memory draws it.
 *
 *   bench_adjoint PROBLEM MODE STEPS [CHECKPOINTS] [ITERATIONS]
 *     PROBLEM: mlp  (1024 samples of dimension 2, field 2 -> 50 tanh -> 2)
 *              conv (batch 32 of 16 x 32 x 32, field conv3x3 -> relu -> conv3x3)
 *     MODE:    full | uniform | binomial | backsolve
 *     STEPS:   rk4 steps on [0, 1]
 *     CHECKPOINTS: uniform: every k steps (default sqrt(STEPS)); binomial: budget (default 10)
 * Prints one CSV line: problem,mode,steps,checkpoints,seconds_per_iteration,peak_rss_mb,stored_states */
#include "resnode/flow/flow.h"
#include "resnode/nn/optim.h"
#include "resnode/core/rng.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>

static PetscErrorCode Field(const char *problem, RnNet *net, int *batch)
{
  RnLayer l;

  PetscFunctionBeginUser;
  if (!strcmp(problem, "mlp")) {
    RnShape in = {2, 1, 1}, hid = {50, 1, 1};
    *batch = 1024;
    PetscCall(RnNetCreate(in, net));
    PetscCall(RnLayerCreateDense(in, 50, &l));
    PetscCall(RnNetAdd(*net, l));
    PetscCall(RnLayerCreateActivation(hid, RN_ACT_TANH, &l));
    PetscCall(RnNetAdd(*net, l));
    PetscCall(RnLayerCreateDense(hid, 2, &l));
    PetscCall(RnNetAdd(*net, l));
  } else {
    RnShape in = {16, 32, 32};
    *batch = 32;
    PetscCall(RnNetCreate(in, net));
    PetscCall(RnLayerCreateConv2d(in, 16, 3, 1, 1, &l));
    PetscCall(RnNetAdd(*net, l));
    PetscCall(RnLayerCreateActivation(in, RN_ACT_RELU, &l));
    PetscCall(RnNetAdd(*net, l));
    PetscCall(RnLayerCreateConv2d(in, 16, 3, 1, 1, &l));
    PetscCall(RnNetAdd(*net, l));
  }
  PetscCall(RnNetSetUp(*net));
  PetscFunctionReturn(0);
}

int main(int argc, char **argv)
{
  const char *problem, *mode_name;
  int steps, checkpoints, iterations, batch;
  RnNet field;
  RnFlow flow;
  RnOdeOptions opt;
  RnOptim optim;
  RnOptimOptions oo;
  double T = 1.0, *theta, *grad, *x0, *xT, *dxT, loss, best = 1e30;
  struct rusage ru;
  RnOdeStats st;

  PetscCall(PetscInitialize(&argc, &argv, NULL, NULL));
  if (argc < 4) {
    fprintf(stderr, "usage: bench_adjoint mlp|conv full|uniform|binomial|backsolve STEPS [CHECKPOINTS] [ITERATIONS]\n");
    return 2;
  }
  problem = argv[1], mode_name = argv[2], steps = atoi(argv[3]);
  checkpoints = argc > 4 ? atoi(argv[4]) : (!strcmp(mode_name, "uniform") ? (int)ceil(sqrt((double)steps)) : 10);
  iterations = argc > 5 ? atoi(argv[5]) : 3;
  PetscCall(Field(problem, &field, &batch));
  RnOdeOptionsDefault(&opt);
  strcpy(opt.solver, "rk4");
  opt.steps = steps;
  opt.checkpoints = checkpoints;
  opt.adjoint = !strcmp(mode_name, "full") ? RN_ADJOINT_FULL : !strcmp(mode_name, "uniform") ? RN_ADJOINT_UNIFORM : !strcmp(mode_name, "binomial") ? RN_ADJOINT_BINOMIAL : RN_ADJOINT_BACKSOLVE;
  PetscCall(RnFlowCreate(PETSC_COMM_SELF, field, RN_FLOW_ODE, 0, 1, &T, &flow));
  PetscCall(RnFlowSetOdeOptions(flow, &opt));
  {
    const size_t nx = (size_t)batch * RnShapeSize(field->in);
    PetscCall(PetscMalloc5(flow->nparams, &theta, flow->nparams, &grad, nx, &x0, nx, &xT, nx, &dxT));
    RnRandNormal(1, RN_STREAM_TEST, 0, 0, nx, x0);
    PetscCall(RnFlowInit(flow, 1, 0, 0, theta));
    RnOptimOptionsDefault(&oo);
    PetscCall(RnOptimCreate(flow->nparams, &oo, &optim));
    for (int it = 0; it < iterations; it++) {
      double t0 = MPI_Wtime();
      PetscCall(RnFlowForward(flow, batch, theta, x0, xT));
      PetscCall(RnLossSquaredError(1, (int)nx, xT, x0, &loss, dxT));
      PetscCall(PetscArrayzero(grad, flow->nparams));
      PetscCall(RnFlowBackward(flow, theta, dxT, NULL, grad));
      PetscCall(RnOptimStep(optim, 1.0, theta, grad));
      best = PetscMin(best, MPI_Wtime() - t0);
    }
  }
  PetscCall(RnOdeGetStats(flow->ode, &st));
  getrusage(RUSAGE_SELF, &ru);
  printf("%s,%s,%d,%d,%.6f,%.1f,%d\n", problem, mode_name, steps, opt.adjoint == RN_ADJOINT_FULL || opt.adjoint == RN_ADJOINT_BACKSOLVE ? 0 : checkpoints, best, ru.ru_maxrss / 1024.0,
         st.stored_states);
  PetscCall(RnOptimDestroy(&optim));
  PetscCall(PetscFree5(theta, grad, x0, xT, dxT));
  PetscCall(RnFlowDestroy(&flow));
  PetscCall(RnNetDestroy(&field));
  PetscCall(PetscFinalize());
  return 0;
}
