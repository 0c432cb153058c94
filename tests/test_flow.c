/* Gradients of the depth models (ResNet, untied ResNet, neural ODE through
 * TS + TSAdjoint) against central finite differences, ResNet == TS Euler, and
 * the data-parallel path against the serial one. */
#include "testutil.h"

#include <math.h>
#include <string.h>

#include "resnode/flow/flow.h"
#include "resnode/core/rng.h"

#define DIM 2
#define BATCH 5
#define NOBS 3

static const double tobs[NOBS] = {0.25, 0.5, 1.0};

/* The test-equation field: u -> u^3 -> Dense(2, 8, tanh) -> Dense(8, 2). */
static RnNet MakeField(void)
{
  RnNet net;
  RnLayer l;
  RnShape in = {DIM, 1, 1}, hid = {8, 1, 1};
  RnNetCreate(in, &net);
  RnLayerCreateActivation(in, RN_ACT_CUBE, &l), RnNetAdd(net, l);
  RnLayerCreateDense(in, 8, &l), RnNetAdd(net, l);
  RnLayerCreateActivation(hid, RN_ACT_TANH, &l), RnNetAdd(net, l);
  RnLayerCreateDense(hid, DIM, &l), RnNetAdd(net, l);
  RnNetSetUp(net);
  return net;
}

typedef struct {
  RnFlow flow;
  int batch;
  double *x0, *target, *theta;
  int wrt_x0; /* finite differences in x0 instead of theta */
} Problem;

/* L = sum_i sum |x(t_i) - target_i|^2 */
static double Loss(Problem *p, const double *theta, const double *x0, double *dxobs)
{
  double loss = 0.0;
  const int n = NOBS * p->batch * DIM;
  double *xobs = malloc(sizeof(double) * n);
  CU_ASSERT_EQUAL(RnFlowForward(p->flow, p->batch, theta, x0, xobs), 0);
  RnLossSquaredError(1, n, xobs, p->target, &loss, dxobs);
  free(xobs);
  return loss;
}

static double LossOfVector(const double *v, void *ctx)
{
  Problem *p = ctx;
  return p->wrt_x0 ? Loss(p, p->theta, v, NULL) : Loss(p, v, p->x0, NULL);
}

static void SetUpProblem(Problem *p, RnNet field, RnFlowKind kind, int depth, const RnOdeOptions *opt, MPI_Comm comm, int batch, int first_sample)
{
  memset(p, 0, sizeof *p);
  RN_TEST_OK(RnFlowCreate(comm, field, kind, depth, NOBS, tobs, &p->flow));
  if (opt) RN_TEST_OK(RnFlowSetOdeOptions(p->flow, opt));
  p->batch = batch;
  p->theta = malloc(sizeof(double) * p->flow->nparams);
  p->x0 = malloc(sizeof(double) * batch * DIM);
  p->target = malloc(sizeof(double) * NOBS * batch * DIM);
  RN_TEST_OK(RnFlowInit(p->flow, 7, 0, 0, p->theta));
  /* samples are keyed by their global index, so any split sees the same data */
  for (int s = 0; s < batch; s++)
    for (int d = 0; d < DIM; d++) p->x0[s * DIM + d] = 1.2 * (RnRandUniformAt(3, RN_STREAM_TEST, 1, first_sample + s, d) - 0.5);
  for (int i = 0; i < NOBS; i++)
    for (int s = 0; s < batch; s++)
      for (int d = 0; d < DIM; d++) p->target[(i * batch + s) * DIM + d] = RnRandUniformAt(3, RN_STREAM_TEST, 2 + i, first_sample + s, d) - 0.5;
}

static void TearDownProblem(Problem *p)
{
  RnFlowDestroy(&p->flow);
  free(p->theta), free(p->x0), free(p->target);
}

/* Gradient of the loss by the flow's backward pass. */
static void Gradient(Problem *p, double *dtheta, double *dx0)
{
  const int n = NOBS * p->batch * DIM;
  double *dxobs = malloc(sizeof(double) * n);
  Loss(p, p->theta, p->x0, dxobs);
  memset(dtheta, 0, sizeof(double) * p->flow->nparams);
  CU_ASSERT_EQUAL(RnFlowBackward(p->flow, p->theta, dxobs, dx0, dtheta), 0);
  free(dxobs);
}

static void CheckFD(RnFlowKind kind, int depth, const RnOdeOptions *opt, double tol, int max_coords)
{
  RnNet field = MakeField();
  Problem p;
  SetUpProblem(&p, field, kind, depth, opt, PETSC_COMM_SELF, BATCH, 0);
  double *dtheta = malloc(sizeof(double) * p.flow->nparams), dx0[BATCH * DIM];
  Gradient(&p, dtheta, dx0);
  p.wrt_x0 = 0;
  double err_theta = RnTestGradCheck(LossOfVector, &p, (int)p.flow->nparams, p.theta, dtheta, 1e-5, max_coords);
  p.wrt_x0 = 1;
  double err_x0 = RnTestGradCheck(LossOfVector, &p, BATCH * DIM, p.x0, dx0, 1e-5, max_coords);
  if (rn_test_rank == 0) printf("\n    %s depth %d %s: FD rel. error theta %.2e, x0 %.2e ", RnFlowKindNames[kind], depth, opt ? opt->solver : "", err_theta, err_x0);
  CU_ASSERT(err_theta <= tol);
  CU_ASSERT(err_x0 <= tol);
  free(dtheta);
  TearDownProblem(&p);
  RnNetDestroy(&field);
}

static void test_resnet_fd(void) { CheckFD(RN_FLOW_RESNET, 8, NULL, 1e-6, 1000); }
static void test_untied_fd(void) { CheckFD(RN_FLOW_UNTIED, 4, NULL, 1e-6, 1000); }

static void test_ode_rk4_fd(void)
{
  RnOdeOptions opt;
  RnOdeOptionsDefault(&opt);
  strcpy(opt.solver, "rk4");
  opt.steps = 16;
  CheckFD(RN_FLOW_ODE, 0, &opt, 1e-6, 1000);
}

static void CheckAdaptive(const char *solver)
{
  RnOdeOptions opt;
  RnOdeOptionsDefault(&opt);
  strcpy(opt.solver, solver);
  opt.adaptive = PETSC_TRUE;
  opt.rtol = 1e-10;
  opt.atol = 1e-12;
  /* the discrete adjoint treats step sizes as constants; the difference to
   * the derivative of the adaptive map is of the order of the tolerance */
  CheckFD(RN_FLOW_ODE, 0, &opt, 1e-6, 60);
}

static void test_ode_3bs_fd(void) { CheckAdaptive("3bs"); }
static void test_ode_5dp_fd(void) { CheckAdaptive("dopri5"); }

/* ResNet of depth N == TS forward Euler with N steps, values and gradients. */
static void test_resnet_equals_ts_euler(void)
{
  RnNet field = MakeField();
  RnOdeOptions opt;
  Problem pr, po;
  const int N = 12;
  RnOdeOptionsDefault(&opt);
  strcpy(opt.solver, "1fe");
  opt.steps = N;
  SetUpProblem(&pr, field, RN_FLOW_RESNET, N, NULL, PETSC_COMM_SELF, BATCH, 0);
  SetUpProblem(&po, field, RN_FLOW_ODE, 0, &opt, PETSC_COMM_SELF, BATCH, 0);
  const int n = NOBS * BATCH * DIM;
  double xr[NOBS * BATCH * DIM], xo[NOBS * BATCH * DIM];
  RN_TEST_OK(RnFlowForward(pr.flow, BATCH, pr.theta, pr.x0, xr));
  RN_TEST_OK(RnFlowForward(po.flow, BATCH, po.theta, po.x0, xo));
  double worst = 0;
  for (int i = 0; i < n; i++) worst = fmax(worst, RnTestRelErr(xr[i], xo[i], 1e-3));
  CU_ASSERT(worst <= 1e-12);
  double *gr = malloc(sizeof(double) * pr.flow->nparams), *go = malloc(sizeof(double) * po.flow->nparams), dxr[BATCH * DIM], dxo[BATCH * DIM];
  Gradient(&pr, gr, dxr);
  Gradient(&po, go, dxo);
  double gworst = 0, gmax = 0;
  for (PetscInt i = 0; i < pr.flow->nparams; i++) gmax = fmax(gmax, fabs(gr[i]));
  for (PetscInt i = 0; i < pr.flow->nparams; i++) gworst = fmax(gworst, fabs(gr[i] - go[i]) / gmax);
  for (int i = 0; i < BATCH * DIM; i++) gworst = fmax(gworst, RnTestRelErr(dxr[i], dxo[i], 1e-3));
  if (rn_test_rank == 0) printf("\n    ResNet vs TS 1fe: values %.2e gradients %.2e ", worst, gworst);
  CU_ASSERT(gworst <= 1e-12);
  free(gr), free(go);
  TearDownProblem(&pr);
  TearDownProblem(&po);
  RnNetDestroy(&field);
}

/* The batch split over the ranks of PETSC_COMM_WORLD, gradients summed with
 * one Allreduce, equals the whole batch on one rank. */
static void CheckSplit(RnFlowKind kind, const char *solver, PetscBool adaptive)
{
  RnNet field = MakeField();
  RnOdeOptions opt;
  Problem whole, part;
  const int total = 7; /* uneven split on purpose */
  int lo = total * rn_test_rank / rn_test_size, hi = total * (rn_test_rank + 1) / rn_test_size;
  RnOdeOptionsDefault(&opt);
  strcpy(opt.solver, solver);
  opt.adaptive = adaptive;
  opt.steps = 10;
  opt.rtol = 1e-6;
  opt.atol = 1e-8;
  SetUpProblem(&whole, field, kind, 8, &opt, PETSC_COMM_SELF, total, 0);
  SetUpProblem(&part, field, kind, 8, &opt, PETSC_COMM_WORLD, hi - lo, lo);
  const PetscInt np = whole.flow->nparams;
  double *gw = malloc(sizeof(double) * np), *gp = malloc(sizeof(double) * np), *gsum = malloc(sizeof(double) * np);
  double dxw[7 * DIM], dxp[7 * DIM];
  Gradient(&whole, gw, dxw);
  Gradient(&part, gp, dxp);
  MPI_Allreduce(gp, gsum, (int)np, MPI_DOUBLE, MPI_SUM, PETSC_COMM_WORLD);
  double worst = 0, gmax = 0;
  for (PetscInt i = 0; i < np; i++) gmax = fmax(gmax, fabs(gw[i]));
  for (PetscInt i = 0; i < np; i++) worst = fmax(worst, fabs(gw[i] - gsum[i]) / gmax);
  for (int i = 0; i < (hi - lo) * DIM; i++) worst = fmax(worst, RnTestRelErr(dxw[lo * DIM + i], dxp[i], 1e-3));
  if (rn_test_rank == 0) printf("\n    %s %s on %d ranks vs 1: %.2e ", RnFlowKindNames[kind], solver, rn_test_size, worst);
  CU_ASSERT(worst <= 1e-12);
  free(gw), free(gp), free(gsum);
  TearDownProblem(&whole);
  TearDownProblem(&part);
  RnNetDestroy(&field);
}

static void test_split_resnet(void) { CheckSplit(RN_FLOW_RESNET, "", PETSC_FALSE); }
static void test_split_rk4(void) { CheckSplit(RN_FLOW_ODE, "rk4", PETSC_FALSE); }
static void test_split_dopri5(void) { CheckSplit(RN_FLOW_ODE, "dopri5", PETSC_TRUE); }

/* An evaluation pass (no record) of a tied and an untied ResNet gives the
 * recorded pass's observations bitwise, without growing the N-layer tape to
 * its batch (evaluation over large batches used to allocate N x batch
 * states and tapes: 2.3 GB a rank for the CIFAR ensemble's N = 32); a
 * backward pass after it is refused. */
static void test_forward_without_record(void)
{
  const int big = 64, N = 16;
  RnNet field = MakeField();
  for (int kind = 0; kind < 2; kind++) {
    RnFlow flow;
    const RnFlowKind k = kind ? RN_FLOW_UNTIED : RN_FLOW_RESNET;
    double *x0 = malloc(sizeof(double) * big * DIM), *rec = malloc(sizeof(double) * NOBS * big * DIM), *eval = malloc(sizeof(double) * NOBS * big * DIM), *theta, *g;
    RN_TEST_OK(RnFlowCreate(PETSC_COMM_SELF, field, k, N, NOBS, tobs, &flow));
    theta = malloc(sizeof(double) * flow->nparams), g = calloc(flow->nparams, sizeof(double));
    RN_TEST_OK(RnFlowInit(flow, 3, 0, 0, theta));
    RnRandNormal(5, RN_STREAM_TEST, 1, 0, (size_t)big * DIM, x0);
    /* a training pass at a small batch sets the tape's size */
    RN_TEST_OK(RnFlowForward(flow, BATCH, theta, x0, rec));
    CU_ASSERT_EQUAL(flow->tape_batch, BATCH);
    RN_TEST_OK(RnFlowSetRecord(flow, PETSC_FALSE));
    RN_TEST_OK(RnFlowForward(flow, big, theta, x0, eval));
    CU_ASSERT_EQUAL(flow->tape_batch, BATCH); /* the tape did not grow */
    RN_TEST_OK(PetscPushErrorHandler(PetscReturnErrorHandler, NULL));
    CU_ASSERT_NOT_EQUAL(RnFlowBackward(flow, theta, rec, NULL, g), 0);
    RN_TEST_OK(PetscPopErrorHandler());
    RN_TEST_OK(RnFlowSetRecord(flow, PETSC_TRUE));
    RN_TEST_OK(RnFlowForward(flow, big, theta, x0, rec));
    CU_ASSERT_EQUAL(memcmp(rec, eval, sizeof(double) * NOBS * big * DIM), 0);
    RnFlowDestroy(&flow);
    free(x0), free(rec), free(eval), free(theta), free(g);
  }
  RnNetDestroy(&field);
}

static void Register(void)
{
  RnTestAddSuite("flow", "resnet_fd", test_resnet_fd, "untied_fd", test_untied_fd, "ode_rk4_fd", test_ode_rk4_fd, "ode_3bs_fd", test_ode_3bs_fd, "ode_5dp_fd",
                 test_ode_5dp_fd, "resnet_equals_ts_euler", test_resnet_equals_ts_euler, "split_resnet", test_split_resnet, "split_rk4", test_split_rk4,
                 "split_dopri5", test_split_dopri5, "forward_without_record", test_forward_without_record, NULL);
}

int main(int argc, char **argv) { return RnTestMain(argc, argv, Register); }
