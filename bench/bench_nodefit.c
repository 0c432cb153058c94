/* bench_nodefit: time per training iteration (forward + adjoint + Adam) of
 * the test-equation fit, for TS rk4 with dt = 0.01 and for adaptive dopri5 at
 * rtol 1e-7, atol 1e-9, with the right-hand-side evaluations per iteration.
 *
 *   build/bench/bench_nodefit [iterations]
 *
 * Reference (issue 2): torchdiffeq (PyTorch 1.13 CPU, float64, one thread) on
 * this machine: 0.085 s/iteration with rk4 at step 0.01 (backprop through the
 * solver), 0.42-0.47 s with odeint_adjoint dopri5 at these tolerances. */
#include "resnode/core/profile.h"
#include "resnode/flow/flow.h"
#include "resnode/nn/optim.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

static int CompareDouble(const void *a, const void *b)
{
  double x = *(const double *)a, y = *(const double *)b;
  return (x > y) - (x < y);
}

static PetscErrorCode Field(RnNet *net)
{
  RnShape in = {2, 1, 1}, hid = {50, 1, 1};
  RnLayer l;

  PetscFunctionBeginUser;
  PetscCall(RnNetCreate(in, net));
  PetscCall(RnLayerCreateActivation(in, RN_ACT_CUBE, &l));
  PetscCall(RnNetAdd(*net, l));
  PetscCall(RnLayerCreateDense(in, 50, &l));
  PetscCall(RnNetAdd(*net, l));
  PetscCall(RnLayerCreateActivation(hid, RN_ACT_TANH, &l));
  PetscCall(RnNetAdd(*net, l));
  PetscCall(RnLayerCreateDense(hid, 2, &l));
  PetscCall(RnNetAdd(*net, l));
  PetscCall(RnNetSetUp(*net));
  PetscFunctionReturn(0);
}

/* The data: the true solution at 16 times, by a tight dopri5 solve of A u^3. */
static PetscErrorCode Data(const double *t, double *data)
{
  RnNet net;
  RnLayer l;
  RnShape in = {2, 1, 1};
  RnFlow flow;
  RnOdeOptions opt;
  double theta[6] = {-0.1, 2.0, -2.0, -0.1, 0, 0}, u0[2] = {2, 0};

  PetscFunctionBeginUser;
  PetscCall(RnNetCreate(in, &net));
  PetscCall(RnLayerCreateActivation(in, RN_ACT_CUBE, &l));
  PetscCall(RnNetAdd(net, l));
  PetscCall(RnLayerCreateDense(in, 2, &l));
  PetscCall(RnNetAdd(net, l));
  PetscCall(RnNetSetUp(net));
  RnOdeOptionsDefault(&opt);
  strcpy(opt.solver, "dopri5");
  opt.adaptive = PETSC_TRUE;
  opt.rtol = 1e-12;
  opt.atol = 1e-14;
  PetscCall(RnFlowCreate(PETSC_COMM_SELF, net, RN_FLOW_ODE, 0, 16, t, &flow));
  PetscCall(RnFlowSetOdeOptions(flow, &opt));
  PetscCall(RnFlowSetRecord(flow, PETSC_FALSE));
  PetscCall(RnFlowForward(flow, 1, theta, u0, data));
  PetscCall(RnFlowDestroy(&flow));
  PetscCall(RnNetDestroy(&net));
  PetscFunctionReturn(0);
}

static PetscErrorCode Run(const char *label, const RnOdeOptions *opt, int iterations, const double *t, const double *data)
{
  RnNet field;
  RnFlow flow;
  RnOptim optim;
  RnOptimOptions oo;
  double *theta, *grad, pred[32], dpred[32], u0[2] = {2, 0}, loss = 0, first_loss = 0;
  double *times;
  long rhs = 0, vjp = 0;

  PetscFunctionBeginUser;
  PetscCall(Field(&field));
  PetscCall(RnFlowCreate(PETSC_COMM_SELF, field, RN_FLOW_ODE, 0, 16, t, &flow));
  PetscCall(RnFlowSetOdeOptions(flow, opt));
  PetscCall(PetscMalloc3(flow->nparams, &theta, flow->nparams, &grad, iterations, &times));
  PetscCall(RnFlowInit(flow, 1, 0, 0, theta));
  RnOptimOptionsDefault(&oo);
  oo.lr = 0.01;
  PetscCall(RnOptimCreate(flow->nparams, &oo, &optim));
  for (int it = 0; it < iterations; it++) {
    RnOdeStats st;
    double t0 = RnWallTime();
    PetscCall(RnFlowForward(flow, 1, theta, u0, pred));
    PetscCall(RnLossSquaredError(1, 32, pred, data, &loss, dpred));
    PetscCall(PetscArrayzero(grad, flow->nparams));
    PetscCall(RnFlowBackward(flow, theta, dpred, NULL, grad));
    PetscCall(RnOptimStep(optim, 1.0, theta, grad));
    times[it] = RnWallTime() - t0;
    PetscCall(RnOdeGetStats(flow->ode, &st));
    rhs += st.rhs_forward + st.rhs_backward;
    vjp += st.vjp;
    if (it == 0) first_loss = loss;
  }
  qsort(times, iterations, sizeof(double), CompareDouble);
  printf("%-28s median %8.3f ms/iteration  (min %.3f)  RHS evals/iteration %6.1f  VJPs/iteration %6.1f  loss %.4g -> %.4g\n", label, 1e3 * times[iterations / 2],
         1e3 * times[0], (double)rhs / iterations, (double)vjp / iterations, first_loss, loss);
  PetscCall(RnOptimDestroy(&optim));
  PetscCall(PetscFree3(theta, grad, times));
  PetscCall(RnFlowDestroy(&flow));
  PetscCall(RnNetDestroy(&field));
  PetscFunctionReturn(0);
}

int main(int argc, char **argv)
{
  int iterations = argc > 1 && argv[1][0] != '-' ? atoi(argv[1]) : 300;
  double t[16], data[32];
  RnOdeOptions rk4, dopri5;

  PetscBool no_profile = PETSC_FALSE;

  for (int i = 1; i < argc; i++) no_profile = no_profile || !strcmp(argv[i], "--no-profile");
  PetscCall(PetscInitialize(&argc, &argv, NULL, NULL));
  /* the application's events are tallied as in resnode-mpi; --no-profile
   * measures without them (their cost, side by side) */
  if (!no_profile) PetscCall(RnProfileRegister());
  for (int i = 0; i < 16; i++) t[i] = 1.5 * i / 15;
  PetscCall(Data(t, data));
  RnOdeOptionsDefault(&rk4);
  strcpy(rk4.solver, "rk4");
  rk4.steps = 150; /* dt = 0.01 on [0, 1.5] */
  RnOdeOptionsDefault(&dopri5);
  strcpy(dopri5.solver, "dopri5");
  dopri5.adaptive = PETSC_TRUE;
  dopri5.rtol = 1e-7;
  dopri5.atol = 1e-9;
  printf("test-equation fit, %d Adam iterations each (lr 0.01), one rank%s\n", iterations, no_profile ? ", events not tallied (--no-profile)" : "");
  PetscCall(Run("rk4, dt = 0.01", &rk4, iterations, t, data));
  PetscCall(Run("dopri5, rtol 1e-7 atol 1e-9", &dopri5, iterations, t, data));
  printf("reference torchdiffeq: rk4 85 ms/iteration, dopri5 adjoint 420-470 ms/iteration\n");
  PetscCall(PetscFinalize());
  return 0;
}
