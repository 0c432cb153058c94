/* Every layer's vector-Jacobian product against central finite differences,
 * conv2d against a direct loop, the losses, and batch norm split over ranks. */
#include "testutil.h"

#include <math.h>
#include <string.h>

#include "resnode/nn/layers.h"
#include "resnode/core/rng.h"

typedef struct {
  RnLayer layer;
  int batch;
  double *x, *theta, *w, *y, *tape;
  int wrt_x;
} LayerProblem;

/* f = sum(w * layer(x)) */
static double LayerObjective(const double *v, void *ctx)
{
  LayerProblem *p = ctx;
  const size_t n = (size_t)p->batch * RnShapeSize(p->layer->out);
  double f = 0;
  RnLayerForward(p->layer, p->batch, p->wrt_x ? p->theta : v, p->wrt_x ? v : p->x, p->y, p->tape);
  for (size_t i = 0; i < n; i++) f += p->w[i] * p->y[i];
  return f;
}

static void CheckLayer(const char *what, RnLayer layer, int batch, double tol)
{
  LayerProblem p = {layer, batch};
  const size_t nin = (size_t)batch * RnShapeSize(layer->in), nout = (size_t)batch * RnShapeSize(layer->out);
  const PetscInt np = layer->nparams;
  double *dx = malloc(sizeof(double) * nin), *dtheta = calloc((size_t)np + 1, sizeof(double)), ex = 0, et = 0;
  p.x = malloc(sizeof(double) * nin);
  p.theta = malloc(sizeof(double) * (np + 1));
  p.w = malloc(sizeof(double) * nout);
  p.y = malloc(sizeof(double) * nout);
  p.tape = malloc(sizeof(double) * (batch * layer->tape_per_sample + 1));
  RnRandNormal(1, RN_STREAM_TEST, 1, 0, nin, p.x);
  RnRandNormal(1, RN_STREAM_TEST, 2, 0, nout, p.w);
  RN_TEST_OK(RnLayerInit(layer, 3, 0, 0, p.theta));
  /* move parameters off their special initial values (BN's gamma = 1, beta = 0) */
  for (PetscInt i = 0; i < np; i++) p.theta[i] += 0.1 * RnRandUniformAt(1, RN_STREAM_TEST, 3, 0, (uint32_t)i);
  RnLayerForward(layer, batch, p.theta, p.x, p.y, p.tape);
  RN_TEST_OK(RnLayerBackward(layer, batch, p.theta, p.x, p.y, p.w, dx, dtheta, p.tape));
  p.wrt_x = 1;
  ex = RnTestGradCheck(LayerObjective, &p, (int)nin, p.x, dx, 1e-6, 400);
  if (np) {
    p.wrt_x = 0;
    et = RnTestGradCheck(LayerObjective, &p, (int)np, p.theta, dtheta, 1e-6, 400);
  }
  if (rn_test_rank == 0) printf("\n    %-28s FD rel. error: input %.1e, params %.1e ", what, ex, et);
  CU_ASSERT(ex <= tol);
  CU_ASSERT(et <= tol);
  free(dx), free(dtheta), free(p.x), free(p.theta), free(p.w), free(p.y), free(p.tape);
}

static void test_dense_and_activations(void)
{
  RnShape in = {5, 1, 1};
  RnLayer l;
  RN_TEST_OK(RnLayerCreateDense(in, 4, &l));
  CheckLayer("dense 5->4", l, 3, 1e-7);
  RnLayerDestroy(&l);
  for (int a = 0; RnActivationNames[a]; a++) {
    RN_TEST_OK(RnLayerCreateActivation(in, (RnActivation)a, &l));
    CheckLayer(RnActivationNames[a], l, 3, 1e-6);
    RnLayerDestroy(&l);
  }
  RN_TEST_OK(RnLayerCreateScale(in, &l));
  CheckLayer("scale", l, 3, 1e-7);
  RnLayerDestroy(&l);
}

static void test_conv_fd(void)
{
  const int cases[5][3] = {{3, 1, 1}, {3, 2, 1}, {1, 1, 0}, {3, 4, 1}, {2, 2, 0}};
  RnShape in = {3, 9, 8};
  for (int c = 0; c < 5; c++) {
    RnLayer l;
    char name[64];
    RN_TEST_OK(RnLayerCreateConv2d(in, 4, cases[c][0], cases[c][1], cases[c][2], &l));
    snprintf(name, sizeof name, "conv k%d s%d p%d", cases[c][0], cases[c][1], cases[c][2]);
    CheckLayer(name, l, 2, 1e-7);
    RnLayerDestroy(&l);
  }
}

/* conv2d by the definition, on a case with several chunks */
static void test_conv_direct(void)
{
  RnShape in = {2, 7, 6};
  const int K = 3, k = 3, stride = 2, pad = 1, batch = 5;
  RnLayer l;
  RN_TEST_OK(RnLayerCreateConv2d(in, K, k, stride, pad, &l));
  const int Ho = l->out.h, Wo = l->out.w;
  double *x = malloc(sizeof(double) * batch * 84), *theta = malloc(sizeof(double) * l->nparams), *y = malloc(sizeof(double) * batch * K * Ho * Wo), worst = 0;
  RnRandNormal(2, RN_STREAM_TEST, 1, 0, batch * 84, x);
  RnRandNormal(2, RN_STREAM_TEST, 2, 0, l->nparams, theta);
  RN_TEST_OK(RnLayerForward(l, batch, theta, x, y, NULL));
  for (int s = 0; s < batch; s++)
    for (int o = 0; o < K; o++)
      for (int i = 0; i < Ho; i++)
        for (int j = 0; j < Wo; j++) {
          double v = theta[K * 2 * k * k + o];
          for (int c = 0; c < 2; c++)
            for (int a = 0; a < k; a++)
              for (int b = 0; b < k; b++) {
                int ii = i * stride - pad + a, jj = j * stride - pad + b;
                if (ii >= 0 && ii < 7 && jj >= 0 && jj < 6) v += theta[((o * 2 + c) * k + a) * k + b] * x[((s * 2 + c) * 7 + ii) * 6 + jj];
              }
          worst = fmax(worst, fabs(v - y[((s * K + o) * Ho + i) * Wo + j]));
        }
  CU_ASSERT(Ho == 4 && Wo == 3);
  CU_ASSERT(worst < 1e-13);
  free(x), free(theta), free(y);
  RnLayerDestroy(&l);
}

static void test_batchnorm_and_pools(void)
{
  RnShape in = {3, 4, 4};
  RnLayer l;
  RN_TEST_OK(RnLayerCreateBatchNorm(PETSC_COMM_SELF, in, 0.1, 1e-5, &l));
  CheckLayer("batchnorm (training)", l, 4, 1e-6);
  l->training = PETSC_FALSE;
  l->state[0] = 0.3, l->state[4] = 2.0; /* some running statistics */
  CheckLayer("batchnorm (inference)", l, 4, 1e-7);
  RnLayerDestroy(&l);
  RN_TEST_OK(RnLayerCreateAvgPool(in, 2, &l));
  CheckLayer("avgpool 2", l, 2, 1e-7);
  RnLayerDestroy(&l);
  RN_TEST_OK(RnLayerCreateGlobalAvgPool(in, &l));
  CheckLayer("global avgpool", l, 2, 1e-7);
  RnLayerDestroy(&l);
}

static double CEObjective(const double *z, void *ctx)
{
  const int *labels = ctx;
  double loss;
  RnLossSoftmaxCrossEntropy(3, 4, z, labels, &loss, NULL, NULL);
  return loss;
}

static void test_cross_entropy(void)
{
  int labels[3] = {0, 3, 2}, correct;
  double z[12], g[12], loss;
  RnRandNormal(4, RN_STREAM_TEST, 1, 0, 12, z);
  RN_TEST_OK(RnLossSoftmaxCrossEntropy(3, 4, z, labels, &loss, g, &correct));
  CU_ASSERT(RnTestGradCheck(CEObjective, labels, 12, z, g, 1e-6, 100) < 1e-7);
  CU_ASSERT(loss > 0);
  /* a confident right answer costs almost nothing */
  double big[4] = {0, 0, 50, 0};
  int lab = 2;
  RN_TEST_OK(RnLossSoftmaxCrossEntropy(1, 4, big, &lab, &loss, NULL, &correct));
  CU_ASSERT(loss < 1e-20 && correct == 1);
}

/* batch norm with the batch split over the ranks == the whole batch on one */
static void test_batchnorm_split(void)
{
  RnShape in = {2, 3, 3};
  const int total = 5, lo = total * rn_test_rank / rn_test_size, hi = total * (rn_test_rank + 1) / rn_test_size, n = 18;
  RnLayer whole, part;
  double x[5 * 18], w[5 * 18], yw[5 * 18], yp[5 * 18], tw[5 * 18], tp[5 * 18], dxw[5 * 18], dxp[5 * 18], theta[4] = {1.2, 0.7, 0.1, -0.3};
  double gw[4] = {0}, gp[4] = {0}, gsum[4], worst = 0;
  RnRandNormal(6, RN_STREAM_TEST, 1, 0, total * n, x);
  RnRandNormal(6, RN_STREAM_TEST, 2, 0, total * n, w);
  RN_TEST_OK(RnLayerCreateBatchNorm(PETSC_COMM_SELF, in, 0.1, 1e-5, &whole));
  RN_TEST_OK(RnLayerCreateBatchNorm(PETSC_COMM_WORLD, in, 0.1, 1e-5, &part));
  RN_TEST_OK(RnLayerForward(whole, total, theta, x, yw, tw));
  RN_TEST_OK(RnLayerForward(part, hi - lo, theta, x + lo * n, yp, tp));
  RN_TEST_OK(RnLayerBackward(whole, total, theta, x, yw, w, dxw, gw, tw));
  RN_TEST_OK(RnLayerBackward(part, hi - lo, theta, x + lo * n, yp, w + lo * n, dxp, gp, tp));
  MPI_Allreduce(gp, gsum, 4, MPI_DOUBLE, MPI_SUM, PETSC_COMM_WORLD);
  for (int i = 0; i < (hi - lo) * n; i++) worst = fmax(worst, fmax(RnTestRelErr(yw[lo * n + i], yp[i], 1e-3), RnTestRelErr(dxw[lo * n + i], dxp[i], 1e-3)));
  for (int i = 0; i < 4; i++) worst = fmax(worst, RnTestRelErr(gw[i], gsum[i], 1e-3));
  for (int i = 0; i < 4; i++) worst = fmax(worst, RnTestRelErr(whole->state[i], part->state[i], 1e-3));
  if (rn_test_rank == 0) printf("\n    batch norm on %d ranks vs 1: %.1e ", rn_test_size, worst);
  CU_ASSERT(worst < 1e-12);
  RnLayerDestroy(&whole);
  RnLayerDestroy(&part);
}

static void Register(void)
{
  RnTestAddSuite("layers", "dense_and_activations", test_dense_and_activations, "conv_fd", test_conv_fd, "conv_direct", test_conv_direct, "batchnorm_and_pools",
                 test_batchnorm_and_pools, "cross_entropy", test_cross_entropy, "batchnorm_split", test_batchnorm_split, NULL);
}

int main(int argc, char **argv) { return RnTestMain(argc, argv, Register); }
