/* float32 and bfloat16 (oneDNN) against the float64 path on the same
 * parameters and inputs: every layer kind the compiled Net runs (outputs,
 * input gradients, parameter gradients), the whole CIFAR network (ResNet and
 * ODE), on 1 and 2 ranks (batch norm reduced over the ranks); and float32
 * training on 2 ranks against 1 rank.
 *
 * Tolerances (relative, in the 2-norm over all entries): float32 1e-5, about
 * 100 unit roundoffs of sums of hundreds of products (measured: 1e-7 to 3e-7);
 * bfloat16 1e-2 for smooth layers, a few bfloat16 roundoffs (2^-8 = 3.9e-3)
 * of the inputs and weights of a product accumulated in float32 (measured:
 * 2.5e-3). Behind a relu, bfloat16 gradients also differ where the rounding
 * moves a pre-activation across 0, which passes or stops the whole gradient
 * entry: the error is then about sqrt(fraction of such entries), measured
 * 2e-2 to 6e-2 here, so gradients through relus get 1e-1 (a wrong kernel
 * gives errors of order 1). Losses agree to 1e-3 relative in bfloat16. */
#include "testutil.h"

#include <dnnl.h>
#include <math.h>
#include <string.h>

#include "resnode/core/rng.h"
#include "resnode/models/cifar.h"
#include "resnode/nn/optim.h"

static double Tolerance(RnPrecision p, PetscBool through_relu) { return p == RN_PRECISION_FLOAT32 ? 1e-5 : (through_relu ? 1e-1 : 1e-2); }

/* ||a - b|| / ||b|| */
static double RelNormErr(size_t n, const double *a, const double *b)
{
  double d = 0, s = 0;
  for (size_t i = 0; i < n; i++) d += (a[i] - b[i]) * (a[i] - b[i]), s += b[i] * b[i];
  return s > 0 ? sqrt(d / s) : sqrt(d);
}

typedef enum { L_CONV, L_CONV_RELU, L_CONV_SMALL, L_RELU, L_BN, L_POOL, L_GPOOL, L_DENSE, L_CONV_WIDE, L_CONV_TANH, L_CONV_SOFTPLUS, L_CONV_GELU } Kind;
static const char *const kind_names[] = {"conv 16->16", "conv+relu 16->16", "conv 3->5 stride 2", "relu", "batch norm", "avgpool 4", "global avgpool", "dense 64->10", "conv+relu 32->32",
                                         "conv+tanh 16->16", "conv+softplus 16->16", "conv+gelu 16->16"};
/* the smooth activations after a convolution (model.activation) */
static RnActivation SmoothActivation(Kind kind) { return kind == L_CONV_TANH ? RN_ACT_TANH : (kind == L_CONV_SOFTPLUS ? RN_ACT_SOFTPLUS : RN_ACT_GELU); }

/* A net of one layer kind (plus what it needs around it to be compiled). */
static RnNet MakeNet(Kind kind)
{
  RnShape in = {16, 8, 8};
  RnNet net;
  RnLayer l;
  if (kind == L_CONV_SMALL) in = (RnShape){3, 9, 9};
  if (kind == L_DENSE) in = (RnShape){4, 4, 4};
  if (kind == L_CONV_WIDE) in = (RnShape){32, 12, 12};
  RnNetCreate(in, &net);
  switch (kind) {
  case L_CONV:
  case L_CONV_RELU:
  case L_CONV_WIDE:
    RnLayerCreateConv2d(in, in.c, 3, 1, 1, &l);
    RnNetAdd(net, l);
    if (kind != L_CONV) {
      RnLayerCreateActivation(net->out, RN_ACT_RELU, &l);
      RnNetAdd(net, l);
    }
    break;
  case L_CONV_TANH:
  case L_CONV_SOFTPLUS:
  case L_CONV_GELU:
    RnLayerCreateConv2d(in, in.c, 3, 1, 1, &l);
    RnNetAdd(net, l);
    RnLayerCreateActivation(net->out, SmoothActivation(kind), &l);
    RnNetAdd(net, l);
    break;
  case L_CONV_SMALL:
    RnLayerCreateConv2d(in, 5, 3, 2, 1, &l);
    RnNetAdd(net, l);
    break;
  case L_RELU: RnLayerCreateActivation(in, RN_ACT_RELU, &l), RnNetAdd(net, l); break;
  case L_BN: RnLayerCreateBatchNorm(PETSC_COMM_WORLD, in, 0.1, 1e-5, &l), RnNetAdd(net, l); break;
  case L_POOL: RnLayerCreateAvgPool(in, 4, &l), RnNetAdd(net, l); break;
  case L_GPOOL: RnLayerCreateGlobalAvgPool(in, &l), RnNetAdd(net, l); break;
  case L_DENSE: RnLayerCreateDense(in, 10, &l), RnNetAdd(net, l); break;
  }
  RnNetSetUp(net);
  return net;
}

/* Winograd is what RN_CONV_AUTO gives float32 3x3 convolutions with >= 32 channels on AVX-512 */
static PetscBool HasWinograd(void) { return (PetscBool)(dnnl_get_effective_cpu_isa() >= dnnl_cpu_isa_avx512_core); }

static void CheckLayer(Kind kind, RnPrecision prec, RnConvAlgorithm alg)
{
  const int B = 6, lo = B * rn_test_rank / rn_test_size, b = B * (rn_test_rank + 1) / rn_test_size - lo;
  RnNet ref = MakeNet(kind), low = MakeNet(kind);
  const size_t nin = (size_t)RnShapeSize(ref->in), nout = (size_t)RnShapeSize(ref->out);
  double *theta, *x, *dy, *y[2], *dx[2], *dth[2], *tape[2], err[3], worst[3];

  RN_TEST_OK(RnNetSetPrecision(low, prec));
  RN_TEST_OK(RnNetSetConvAlgorithm(low, alg));
  theta = malloc(sizeof(double) * (ref->nparams + 1));
  RnNetInit(ref, 5, 0, 0, theta);
  /* batch norm: a non-trivial scale and shift */
  if (kind == L_BN)
    for (PetscInt i = 0; i < ref->nparams; i++) theta[i] += 0.3 * sin(1.0 + i);
  x = malloc(sizeof(double) * nin * b);
  dy = malloc(sizeof(double) * nout * b);
  for (int s = 0; s < b; s++) {
    RnRandNormal(11, RN_STREAM_TEST, 1, (uint32_t)(lo + s), nin, x + (size_t)s * nin);
    RnRandNormal(11, RN_STREAM_TEST, 2, (uint32_t)(lo + s), nout, dy + (size_t)s * nout);
  }
  for (int v = 0; v < 2; v++) {
    RnNet net = v ? low : ref;
    y[v] = malloc(sizeof(double) * nout * b), dx[v] = malloc(sizeof(double) * nin * b), dth[v] = calloc((size_t)ref->nparams + 1, sizeof(double));
    tape[v] = malloc(sizeof(double) * ((size_t)net->tape_per_sample * b + 1));
    RN_TEST_OK(RnNetForward(net, b, theta, x, y[v], tape[v]));
    RN_TEST_OK(RnNetBackward(net, b, theta, x, dy, dx[v], dth[v], tape[v]));
  }
  /* the parameter gradient is this rank's share: compare the sums */
  MPI_Allreduce(MPI_IN_PLACE, dth[0], (int)ref->nparams, MPI_DOUBLE, MPI_SUM, PETSC_COMM_WORLD);
  MPI_Allreduce(MPI_IN_PLACE, dth[1], (int)ref->nparams, MPI_DOUBLE, MPI_SUM, PETSC_COMM_WORLD);
  err[0] = RelNormErr(nout * b, y[1], y[0]);
  err[1] = RelNormErr(nin * b, dx[1], dx[0]);
  err[2] = RelNormErr((size_t)ref->nparams, dth[1], dth[0]);
  MPI_Allreduce(err, worst, 3, MPI_DOUBLE, MPI_MAX, PETSC_COMM_WORLD);
  if (rn_test_rank == 0) printf("\n    %-9s %-6s %-20s y %.1e  dx %.1e  dtheta %.1e ", RnPrecisionNames[prec], RnConvAlgorithmNames[alg], kind_names[kind], worst[0], worst[1], worst[2]);
  CU_ASSERT(worst[0] < Tolerance(prec, PETSC_FALSE));
  CU_ASSERT(worst[1] < Tolerance(prec, (PetscBool)(kind == L_CONV_RELU || kind == L_CONV_WIDE)));
  CU_ASSERT(worst[2] < Tolerance(prec, (PetscBool)(kind == L_CONV_RELU || kind == L_CONV_WIDE)));
  if (kind == L_CONV_WIDE) {
    /* the kernels that ran are the ones asked for */
    char kernels[1024];
    RN_TEST_OK(RnNetDescribeKernels(low, kernels, sizeof kernels));
    CU_ASSERT_EQUAL(strstr(kernels, "wino") != NULL, prec == RN_PRECISION_FLOAT32 && alg == RN_CONV_AUTO && HasWinograd());
  }
  for (int v = 0; v < 2; v++) free(y[v]), free(dx[v]), free(dth[v]), free(tape[v]);
  free(theta), free(x), free(dy);
  RnNetDestroy(&ref);
  RnNetDestroy(&low);
}

static void test_layers_float32(void)
{
  for (Kind k = L_CONV; k <= L_CONV_GELU; k++) CheckLayer(k, RN_PRECISION_FLOAT32, RN_CONV_AUTO);
  CheckLayer(L_CONV_WIDE, RN_PRECISION_FLOAT32, RN_CONV_DIRECT);
}

/* Whether this CPU runs bfloat16 (oneDNN 2.6: AVX-512 cores); where not,
 * one "skipped:" line for all the bfloat16 checks. */
static PetscBool HasBfloat16(void)
{
  static int said;
  PetscBool has = PETSC_FALSE;
  int rank;
  CU_ASSERT_EQUAL(RnDnnlHasBfloat16(&has), 0);
  MPI_Comm_rank(PETSC_COMM_WORLD, &rank);
  if (!has && !said++ && rank == 0) printf("\nskipped: the bfloat16 checks (oneDNN has no bfloat16 convolutions on this CPU: no AVX-512)\n");
  return has;
}

static void test_layers_bfloat16(void)
{
  if (!HasBfloat16()) return;
  for (Kind k = L_CONV; k <= L_CONV_GELU; k++) CheckLayer(k, RN_PRECISION_BFLOAT16, RN_CONV_AUTO);
}

/* An unsupported layer is an input error that names it. */
static void test_unsupported_layer(void)
{
  RnShape in = {4, 1, 1};
  RnNet net;
  RnLayer l;
  PetscErrorCode err;
  RnNetCreate(in, &net);
  RnLayerCreateActivation(in, RN_ACT_CUBE, &l);
  RnNetAdd(net, l);
  RnNetSetUp(net);
  PetscPushErrorHandler(PetscReturnErrorHandler, NULL);
  err = RnNetSetPrecision(net, RN_PRECISION_FLOAT32);
  PetscPopErrorHandler();
  CU_ASSERT_EQUAL(err, RN_ERR_INPUT);
  RnNetDestroy(&net);
}

/* An empty share of a batch (an evaluation batch's tail split over a group):
 * a compiled net does nothing and writes nothing; a training batch norm,
 * which must join its group's sums, is a clear error, not a crash. */
static void test_empty_share(void)
{
  const Kind kinds[] = {L_CONV_RELU, L_BN};
  const double sentinel = 1234.5;
  double x = 0, y = sentinel, tape = 0;
  PetscErrorCode err;

  for (size_t k = 0; k < sizeof kinds / sizeof kinds[0]; k++) {
    RnNet net = MakeNet(kinds[k]);
    double *theta = malloc(sizeof(double) * (size_t)net->nparams);
    RnNetInit(net, 5, 0, 0, theta);
    RN_TEST_OK(RnNetSetPrecision(net, RN_PRECISION_FLOAT32));
    RN_TEST_OK(RnNetSetTraining(net, PETSC_FALSE));
    RN_TEST_OK(RnNetForward(net, 0, theta, &x, &y, &tape));
    RN_TEST_OK(RnNetBackward(net, 0, theta, &x, &x, &y, theta, &tape));
    CU_ASSERT_EQUAL(y, sentinel);
    if (kinds[k] == L_BN) {
      RN_TEST_OK(RnNetSetTraining(net, PETSC_TRUE));
      PetscPushErrorHandler(PetscReturnErrorHandler, NULL);
      err = RnNetForward(net, 0, theta, &x, &y, &tape);
      PetscPopErrorHandler();
      CU_ASSERT_NOT_EQUAL(err, 0);
    }
    free(theta);
    RnNetDestroy(&net);
  }
}

typedef struct {
  RnCifarModel m;
  int batch, first;
} Net;

static void SetupWith(Net *n, MPI_Comm comm, RnActivation act, RnFlowKind kind, RnPrecision prec, int C, int batch, int first, double *theta)
{
  RnOdeOptions ode;
  RnOdeOptionsDefault(&ode);
  strcpy(ode.solver, "rk4");
  ode.steps = 2;
  RN_TEST_OK(RnCifarModelCreate(comm, C, act, kind, 3, &ode, prec, &n->m));
  RN_TEST_OK(RnCifarModelReserve(&n->m, PetscMax(batch, 1)));
  n->batch = batch, n->first = first;
  if (theta) RN_TEST_OK(RnCifarModelInit(&n->m, 1, 0, theta));
  for (int s = 0; s < batch; s++) {
    RnRandNormal(9, RN_STREAM_TEST, 1, (uint32_t)(first + s), 3072, n->m.x + (size_t)s * 3072);
    n->m.labels[s] = (first + s) % 10;
  }
}

static void Setup(Net *n, MPI_Comm comm, RnFlowKind kind, RnPrecision prec, int C, int batch, int first, double *theta) { SetupWith(n, comm, RN_ACT_RELU, kind, prec, C, batch, first, theta); }

/* the gradient of the whole network, the batch split over the world's ranks */
static void CheckNetworkWith(RnActivation act, RnFlowKind kind, RnPrecision prec, int C)
{
  const int B = 8, lo = B * rn_test_rank / rn_test_size, b = B * (rn_test_rank + 1) / rn_test_size - lo;
  Net ref, low;
  double *theta, *g[2], l[2], e, loss[2];
  int c;
  SetupWith(&ref, PETSC_COMM_WORLD, act, kind, RN_PRECISION_FLOAT64, C, b, lo, NULL);
  theta = malloc(sizeof(double) * ref.m.n);
  RnCifarModelInit(&ref.m, 1, 0, theta);
  SetupWith(&low, PETSC_COMM_WORLD, act, kind, prec, C, b, lo, NULL);
  for (int v = 0; v < 2; v++) {
    Net *n = v ? &low : &ref;
    g[v] = calloc(ref.m.n, sizeof(double));
    RN_TEST_OK(RnCifarModelPass(&n->m, b, B, theta, g[v], &l[v], &c));
    MPI_Allreduce(MPI_IN_PLACE, g[v], (int)ref.m.n, MPI_DOUBLE, MPI_SUM, PETSC_COMM_WORLD);
  }
  MPI_Allreduce(l, loss, 2, MPI_DOUBLE, MPI_SUM, PETSC_COMM_WORLD);
  e = RelNormErr((size_t)ref.m.n, g[1], g[0]);
  if (rn_test_rank == 0)
    printf("\n    %-9s %s network, %s, C = %d, %d ranks: loss %.6f vs %.6f, gradient rel. error %.1e ", RnPrecisionNames[prec], kind == RN_FLOW_ODE ? "ODE" : "ResNet", RnActivationNames[act], C, rn_test_size, loss[1] / B,
           loss[0] / B, e);
  CU_ASSERT(fabs(loss[1] - loss[0]) <= (prec == RN_PRECISION_FLOAT32 ? 1e-5 : 1e-3) * fabs(loss[0]));
  CU_ASSERT(e < Tolerance(prec, (PetscBool)(act == RN_ACT_RELU)));
  free(g[0]), free(g[1]), free(theta);
  RnCifarModelDestroy(&ref.m);
  RnCifarModelDestroy(&low.m);
}

static void CheckNetwork(RnFlowKind kind, RnPrecision prec, int C) { CheckNetworkWith(RN_ACT_RELU, kind, prec, C); }

/* model.activation's smooth choices, both paths, both reduced precisions */
static void test_network_smooth(void)
{
  const RnActivation smooth[] = {RN_ACT_SOFTPLUS, RN_ACT_GELU, RN_ACT_TANH};
  for (int a = 0; a < 3; a++)
    for (int k = 0; k < 2; k++) {
      CheckNetworkWith(smooth[a], k ? RN_FLOW_ODE : RN_FLOW_RESNET, RN_PRECISION_FLOAT32, 16);
      if (HasBfloat16()) CheckNetworkWith(smooth[a], k ? RN_FLOW_ODE : RN_FLOW_RESNET, RN_PRECISION_BFLOAT16, 16);
    }
}

/* C = 32: the tied block's convolutions run Winograd in float32 (on AVX-512) */
static void test_network_float32_resnet(void) { CheckNetwork(RN_FLOW_RESNET, RN_PRECISION_FLOAT32, 16), CheckNetwork(RN_FLOW_RESNET, RN_PRECISION_FLOAT32, 32); }
static void test_network_float32_ode(void) { CheckNetwork(RN_FLOW_ODE, RN_PRECISION_FLOAT32, 16), CheckNetwork(RN_FLOW_ODE, RN_PRECISION_FLOAT32, 32); }
static void test_network_bfloat16_resnet(void)
{
  if (HasBfloat16()) CheckNetwork(RN_FLOW_RESNET, RN_PRECISION_BFLOAT16, 16);
}
static void test_network_bfloat16_ode(void)
{
  if (HasBfloat16()) CheckNetwork(RN_FLOW_ODE, RN_PRECISION_BFLOAT16, 16);
}

/* three SGD steps in float32 on one rank and on the ranks of the world */
static void test_float32_training_ranks(void)
{
  const int B = 8, lo = B * rn_test_rank / rn_test_size, hi = B * (rn_test_rank + 1) / rn_test_size;
  Net whole, part;
  RnOptim ow, op;
  RnOptimOptions oo;
  double *tw, *tp, *gw, *gp, l, diff = 0, scale = 0;
  int c;
  PetscInt n;
  Setup(&whole, PETSC_COMM_SELF, RN_FLOW_RESNET, RN_PRECISION_FLOAT32, 16, B, 0, NULL);
  n = whole.m.n;
  tw = malloc(sizeof(double) * n), tp = malloc(sizeof(double) * n), gw = malloc(sizeof(double) * n), gp = malloc(sizeof(double) * n);
  RnCifarModelInit(&whole.m, 1, 0, tw);
  PetscArraycpy(tp, tw, n);
  Setup(&part, PETSC_COMM_WORLD, RN_FLOW_RESNET, RN_PRECISION_FLOAT32, 16, hi - lo, lo, NULL);
  RnOptimOptionsDefault(&oo);
  oo.kind = RN_OPTIM_SGD;
  oo.lr = 0.05;
  oo.momentum = 0.9;
  RnOptimCreate(n, &oo, &ow);
  RnOptimCreate(n, &oo, &op);
  for (int step = 0; step < 3; step++) {
    memset(gw, 0, sizeof(double) * n);
    memset(gp, 0, sizeof(double) * n);
    RN_TEST_OK(RnCifarModelPass(&whole.m, B, B, tw, gw, &l, &c));
    RN_TEST_OK(RnCifarModelPass(&part.m, hi - lo, B, tp, gp, &l, &c));
    MPI_Allreduce(MPI_IN_PLACE, gp, (int)n, MPI_DOUBLE, MPI_SUM, PETSC_COMM_WORLD);
    RnOptimStep(ow, 1.0, tw, gw);
    RnOptimStep(op, 1.0, tp, gp);
  }
  for (PetscInt i = 0; i < n; i++) diff = fmax(diff, fabs(tw[i] - tp[i])), scale = fmax(scale, fabs(tw[i]));
  if (rn_test_rank == 0) printf("\n    float32: parameters after 3 SGD steps on %d ranks vs 1: max difference %.1e of max |theta| %.2f ", rn_test_size, diff, scale);
  CU_ASSERT(diff <= 1e-5 * scale);
  RnOptimDestroy(&ow), RnOptimDestroy(&op);
  free(tw), free(tp), free(gw), free(gp);
  RnCifarModelDestroy(&whole.m);
  RnCifarModelDestroy(&part.m);
}

static void Register(void)
{
  RnTestAddSuite("dnnl", "layers_float32", test_layers_float32, "layers_bfloat16", test_layers_bfloat16, "unsupported_layer", test_unsupported_layer, "empty_share", test_empty_share, "network_float32_resnet",
                 test_network_float32_resnet, "network_float32_ode", test_network_float32_ode, "network_bfloat16_resnet", test_network_bfloat16_resnet, "network_bfloat16_ode",
                 test_network_bfloat16_ode, "float32_training_ranks", test_float32_training_ranks, "network_smooth", test_network_smooth, NULL);
}

int main(int argc, char **argv) { return RnTestMain(argc, argv, Register); }
