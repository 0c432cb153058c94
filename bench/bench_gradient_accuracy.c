/* bench_gradient_accuracy: how exact is each gradient? Relative error
 * (max-norm, over the parameters) against central finite differences of the
 * discretised map (for adaptive steps the map's step sizes move with theta,
 * which the discrete adjoint treats as constants), and against the
 * full-trajectory discrete adjoint, for the test-equation model and a small
 * conv block:
 *   discrete adjoint (full trajectory), checkpointed (uniform, binomial),
 *   backsolve (continuous adjoint), and backprop through the tied ResNet;
 * rk4 with fixed steps and dopri5 at several tolerances.
 *   build/bench/bench_gradient_accuracy */
#include "resnode/flow/flow.h"
#include "resnode/core/rng.h"

#include <math.h>
#include <string.h>

typedef struct {
  RnFlow flow;
  int batch;
  double *x0, *target;
  size_t nx;
} Problem;

static double Loss(Problem *p, const double *theta, double *dxT)
{
  double *xT = malloc(sizeof(double) * p->nx), l;
  RnFlowSetRecord(p->flow, dxT ? PETSC_TRUE : PETSC_FALSE);
  RnFlowForward(p->flow, p->batch, theta, p->x0, xT);
  RnLossSquaredError(1, (int)p->nx, xT, p->target, &l, dxT);
  free(xT);
  return l;
}

static double *reference; /* the full-trajectory discrete adjoint of the current setting */

/* max_i |g_i - fd_i| / max_i |fd_i| over `coords` coordinates; *vs_ref the
 * same against the full-trajectory discrete adjoint (all coordinates) */
static double Accuracy(Problem *p, double *theta, PetscInt n, int coords, PetscBool is_reference, double *vs_ref)
{
  double *g = calloc(n, sizeof(double)), *dxT = malloc(sizeof(double) * p->nx), err = 0, scale = 0;
  Loss(p, theta, dxT);
  RnFlowBackward(p->flow, theta, dxT, NULL, g);
  if (is_reference) {
    free(reference);
    reference = malloc(sizeof(double) * n);
    memcpy(reference, g, sizeof(double) * n);
  }
  *vs_ref = -1;
  if (reference) {
    double e = 0, sc = 0;
    for (PetscInt i = 0; i < n; i++) e = fmax(e, fabs(g[i] - reference[i])), sc = fmax(sc, fabs(reference[i]));
    *vs_ref = e / sc;
  }
  for (int c = 0; c < coords; c++) {
    PetscInt i = (PetscInt)(RnRandUniformAt(4, RN_STREAM_TEST, 0, 0, (uint32_t)c) * n);
    double t = theta[i], h = 1e-5 * fmax(1.0, fabs(t)), fp, fm, fd;
    theta[i] = t + h, fp = Loss(p, theta, NULL);
    theta[i] = t - h, fm = Loss(p, theta, NULL);
    theta[i] = t;
    fd = (fp - fm) / (2 * h);
    err = fmax(err, fabs(g[i] - fd));
    scale = fmax(scale, fabs(fd));
  }
  free(g), free(dxT);
  return err / scale;
}

static void Run(const char *name, RnNet field, int batch, RnFlowKind kind, int N, const RnOdeOptions *opt)
{
  double vs_ref;
  Problem p = {0};
  double T = 1.0, *theta;
  p.batch = batch;
  p.nx = (size_t)batch * RnShapeSize(field->in);
  RnFlowCreate(PETSC_COMM_SELF, field, kind, N, 1, &T, &p.flow);
  if (opt) RnFlowSetOdeOptions(p.flow, opt);
  p.x0 = malloc(sizeof(double) * p.nx), p.target = malloc(sizeof(double) * p.nx);
  RnRandNormal(2, RN_STREAM_TEST, 1, 0, p.nx, p.x0);
  RnRandNormal(2, RN_STREAM_TEST, 2, 0, p.nx, p.target);
  theta = malloc(sizeof(double) * p.flow->nparams);
  RnFlowInit(p.flow, 3, 0, 0, theta);
  {
    const PetscBool is_ref = opt && opt->adjoint == RN_ADJOINT_FULL ? PETSC_TRUE : PETSC_FALSE;
    const double fd = Accuracy(&p, theta, p.flow->nparams, 24, is_ref, &vs_ref);
    if (kind == RN_FLOW_ODE) printf("  %-44s %10.2e %14.2e\n", name, fd, vs_ref);
    else printf("  %-44s %10.2e %14s\n", name, fd, "-");
  }
  free(theta), free(p.x0), free(p.target);
  RnFlowDestroy(&p.flow);
}

static void Suite(const char *title, RnNet field, int batch)
{
  RnOdeOptions o;
  char name[96];
  printf("%s\n  %-44s %10s %14s\n", title, "gradient", "vs FD", "vs discrete");
  Run("backprop through the tied ResNet, N = 16", field, batch, RN_FLOW_RESNET, 16, NULL);
  RnOdeOptionsDefault(&o);
  strcpy(o.solver, "rk4");
  o.steps = 16;
  const RnAdjointMode modes[4] = {RN_ADJOINT_FULL, RN_ADJOINT_UNIFORM, RN_ADJOINT_BINOMIAL, RN_ADJOINT_BACKSOLVE};
  for (int m = 0; m < 4; m++) {
    o.adjoint = modes[m];
    o.checkpoints = 4;
    snprintf(name, sizeof name, "rk4, 16 steps, %s adjoint", RnAdjointModeNames[m]);
    Run(name, field, batch, RN_FLOW_ODE, 0, &o);
  }
  strcpy(o.solver, "dopri5");
  o.adaptive = PETSC_TRUE;
  for (double tol = 1e-4; tol >= 1e-10; tol *= 1e-3)
    for (int m = 0; m < 4; m++) {
      o.adjoint = modes[m];
      o.rtol = tol, o.atol = tol * 1e-2;
      snprintf(name, sizeof name, "dopri5, rtol %.0e, %s adjoint", tol, RnAdjointModeNames[m]);
      Run(name, field, batch, RN_FLOW_ODE, 0, &o);
    }
}

int main(int argc, char **argv)
{
  RnNet mlp, conv;
  RnLayer l;
  RnShape in = {2, 1, 1}, hid = {50, 1, 1}, img = {4, 8, 8};

  PetscCall(PetscInitialize(&argc, &argv, NULL, NULL));
  RnNetCreate(in, &mlp);
  RnLayerCreateActivation(in, RN_ACT_CUBE, &l), RnNetAdd(mlp, l);
  RnLayerCreateDense(in, 50, &l), RnNetAdd(mlp, l);
  RnLayerCreateActivation(hid, RN_ACT_TANH, &l), RnNetAdd(mlp, l);
  RnLayerCreateDense(hid, 2, &l), RnNetAdd(mlp, l);
  RnNetSetUp(mlp);
  RnNetCreate(img, &conv);
  RnLayerCreateConv2d(img, 4, 3, 1, 1, &l), RnNetAdd(conv, l);
  /* softplus, not relu: finite differences across relu's kink mean nothing */
  RnLayerCreateActivation(img, RN_ACT_SOFTPLUS, &l), RnNetAdd(conv, l);
  RnLayerCreateConv2d(img, 4, 3, 1, 1, &l), RnNetAdd(conv, l);
  RnNetSetUp(conv);
  Suite("test-equation field u -> u^3 -> Dense(2,50,tanh) -> Dense(50,2), 8 trajectories", mlp, 8);
  Suite("conv block conv3x3(4->4) -> softplus -> conv3x3(4->4) on 8x8, batch 4", conv, 4);
  RnNetDestroy(&mlp);
  RnNetDestroy(&conv);
  PetscCall(PetscFinalize());
  return 0;
}
