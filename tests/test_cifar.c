/* The CIFAR-10 network: gradients of the whole network against finite
 * differences (ResNet and ODE paths, batch norm in training mode), and
 * training with the batch split over 2 ranks against 1 rank. */
#include "testutil.h"

#include <math.h>
#include <string.h>

#include "resnode/experiments/cifar.h"
#include "resnode/nn/optim.h"
#include "resnode/core/rng.h"

typedef struct {
  RnCifarModel m;
  int batch;
} Net;

static double Loss(const double *theta, void *ctx)
{
  Net *n = ctx;
  double l;
  int c;
  RnCifarModelPass(&n->m, n->batch, n->batch, theta, NULL, &l, &c);
  return l / n->batch;
}

static void Setup(Net *n, MPI_Comm comm, RnFlowKind kind, int C, int batch, int first, double **theta)
{
  RnOdeOptions ode;
  RnOdeOptionsDefault(&ode);
  strcpy(ode.solver, "rk4");
  ode.steps = 2;
  RN_TEST_OK(RnCifarModelCreate(comm, C, kind, 2, &ode, RN_PRECISION_FLOAT64, &n->m));
  RN_TEST_OK(RnCifarModelReserve(&n->m, PetscMax(batch, 1)));
  n->batch = batch;
  *theta = malloc(sizeof(double) * n->m.n);
  RnNetInit(n->m.stem, 1, 0, 0, *theta);
  RnFlowInit(n->m.flow, 1, 0, 100, *theta + n->m.nstem);
  RnNetInit(n->m.head, 1, 0, 200, *theta + n->m.nstem + n->m.nblock);
  /* images keyed by their global index */
  for (int s = 0; s < batch; s++) {
    RnRandNormal(9, RN_STREAM_TEST, 1, (uint32_t)(first + s), 3072, n->m.x + (size_t)s * 3072);
    n->m.labels[s] = (first + s) % 10;
  }
}

static void CheckFD(RnFlowKind kind)
{
  Net n;
  double *theta, *grad, l;
  int c;
  Setup(&n, PETSC_COMM_SELF, kind, 2, 4, 0, &theta);
  grad = calloc(n.m.n, sizeof(double));
  RN_TEST_OK(RnCifarModelPass(&n.m, 4, 4, theta, grad, &l, &c));
  double err = RnTestGradCheck(Loss, &n, (int)n.m.n, theta, grad, 1e-6, 80);
  if (rn_test_rank == 0) printf("\n    %s network (C = 2, %d parameters): FD rel. error %.2e ", kind == RN_FLOW_ODE ? "ODE" : "ResNet", (int)n.m.n, err);
  CU_ASSERT(err < 1e-6);
  free(grad), free(theta);
  RnCifarModelDestroy(&n.m);
}

static void test_network_fd_resnet(void) { CheckFD(RN_FLOW_RESNET); }
static void test_network_fd_ode(void) { CheckFD(RN_FLOW_ODE); }

/* three Adam steps on one rank and on the ranks of PETSC_COMM_WORLD */
static void CheckSplitTraining(RnFlowKind kind)
{
  const int B = 6, lo = B * rn_test_rank / rn_test_size, hi = B * (rn_test_rank + 1) / rn_test_size;
  Net whole, part;
  double *tw, *tp;
  RnOptim ow, op;
  RnOptimOptions oo;
  Setup(&whole, PETSC_COMM_SELF, kind, 3, B, 0, &tw);
  Setup(&part, PETSC_COMM_WORLD, kind, 3, hi - lo, lo, &tp);
  const PetscInt n = whole.m.n;
  double *gw = malloc(sizeof(double) * n), *gp = malloc(sizeof(double) * n), *gs = malloc(sizeof(double) * n), l, worst = 0;
  int c;
  RnOptimOptionsDefault(&oo);
  RnOptimCreate(n, &oo, &ow);
  RnOptimCreate(n, &oo, &op);
  for (int step = 0; step < 3; step++) {
    memset(gw, 0, sizeof(double) * n);
    memset(gp, 0, sizeof(double) * n);
    RN_TEST_OK(RnCifarModelPass(&whole.m, B, B, tw, gw, &l, &c));
    RN_TEST_OK(RnCifarModelPass(&part.m, hi - lo, B, tp, gp, &l, &c));
    MPI_Allreduce(gp, gs, (int)n, MPI_DOUBLE, MPI_SUM, PETSC_COMM_WORLD);
    RnOptimStep(ow, 1.0, tw, gw);
    RnOptimStep(op, 1.0, tp, gs);
  }
  for (PetscInt i = 0; i < n; i++) worst = fmax(worst, RnTestRelErr(tw[i], tp[i], 1e-3));
  if (rn_test_rank == 0) printf("\n    %s: parameters after 3 steps on %d ranks vs 1: %.1e ", kind == RN_FLOW_ODE ? "ODE" : "ResNet", rn_test_size, worst);
  CU_ASSERT(worst <= 1e-12);
  RnOptimDestroy(&ow), RnOptimDestroy(&op);
  free(gw), free(gp), free(gs), free(tw), free(tp);
  RnCifarModelDestroy(&whole.m);
  RnCifarModelDestroy(&part.m);
}

static void test_split_resnet(void) { CheckSplitTraining(RN_FLOW_RESNET); }
static void test_split_ode(void) { CheckSplitTraining(RN_FLOW_ODE); }

static void Register(void)
{
  RnTestAddSuite("cifar_network", "network_fd_resnet", test_network_fd_resnet, "network_fd_ode", test_network_fd_ode, "split_resnet", test_split_resnet, "split_ode",
                 test_split_ode, NULL);
}

int main(int argc, char **argv) { return RnTestMain(argc, argv, Register); }
