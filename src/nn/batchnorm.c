/* batchnorm.c: batch normalisation per channel over (batch, h, w), with the
 * batch statistics summed over the layer's communicator so that splitting a
 * batch over the ranks of a group changes nothing. */
#include "nnimpl.h"

#include <math.h>

/* momentum and eps are the layer's info (nnimpl.h), read by both paths */
typedef struct {
  double *mean, *invstd; /* statistics of the last training forward pass */
  double *sums;          /* 2 C scratch for the reductions */
} BatchNormData;

/* ---- the statistics, shared with the oneDNN path (nnimpl.h) ---- */

PetscErrorCode RnBatchNormBatchStatistics(RnLayer l, int batch, RnChannelSums sums, void *ctx, double *mean, double *invstd)
{
  const int C = l->in.c, HW = l->in.h * l->in.w;
  const double eps = l->impl->info.eps, momentum = l->impl->info.momentum;
  double *running_mean = l->state, *running_var = l->state + C, *tot, count_local = (double)batch * HW, count;

  PetscFunctionBeginUser;
  PetscCallMPI(MPI_Allreduce(&count_local, &count, 1, MPI_DOUBLE, MPI_SUM, l->comm));
  PetscCheck(count > 1, l->comm, PETSC_ERR_ARG_SIZ, "batch norm needs more than one value per channel in a batch");
  PetscCall(PetscMalloc1(2 * C, &tot));
  /* two passes (mean, then centred variance): accurate for large means */
  PetscCall(sums(ctx, RN_BN_SUM, NULL, NULL, tot));
  for (int c = 0; c < C; c++) mean[c] = tot[c] / count;
  PetscCall(sums(ctx, RN_BN_CENTRED, mean, NULL, tot));
  for (int c = 0; c < C; c++) {
    const double var = tot[c] / count;
    invstd[c] = 1.0 / sqrt(var + eps);
    running_mean[c] = (1.0 - momentum) * running_mean[c] + momentum * mean[c];
    running_var[c] = (1.0 - momentum) * running_var[c] + momentum * var * count / (count - 1.0); /* unbiased */
  }
  PetscCall(PetscFree(tot));
  PetscFunctionReturn(0);
}

PetscErrorCode RnBatchNormGradientMeans(RnLayer l, int batch, RnChannelSums sums, void *ctx, const double *mean, const double *invstd, double *means)
{
  const int C = l->in.c, HW = l->in.h * l->in.w;
  double count_local = (double)batch * HW, count;

  PetscFunctionBeginUser;
  PetscCallMPI(MPI_Allreduce(&count_local, &count, 1, MPI_DOUBLE, MPI_SUM, l->comm));
  PetscCall(sums(ctx, RN_BN_GRADIENT, mean, invstd, means));
  for (int c = 0; c < 2 * C; c++) means[c] /= count;
  PetscFunctionReturn(0);
}

/* ---- the float64 layer ---- */

typedef struct {
  RnLayer l;
  int batch;
  const double *x, *dy, *xhat;
} Float64Sums;

/* Sum over (local batch, h, w) per channel, then over the communicator. */
static PetscErrorCode ChannelSums(void *ctx, int mode, const double *mean, const double *invstd, double *out)
{
  const Float64Sums *f = ctx;
  RnLayer l = f->l;
  BatchNormData *d = l->impl->data;
  const int C = l->in.c, HW = l->in.h * l->in.w;
  const double *a = mode == RN_BN_GRADIENT ? f->dy : f->x, *b = f->xhat;

  PetscFunctionBeginUser;
  for (int c = 0; c < 2 * C; c++) d->sums[c] = 0;
  for (int s = 0; s < f->batch; s++)
    for (int c = 0; c < C; c++) {
      const double *ac = a + ((size_t)s * C + c) * HW, *bc = mode == RN_BN_GRADIENT ? b + ((size_t)s * C + c) * HW : NULL;
      double s0 = 0, s1 = 0;
      for (int i = 0; i < HW; i++) {
        if (mode == RN_BN_SUM) s0 += ac[i];
        else if (mode == RN_BN_CENTRED) s0 += (ac[i] - mean[c]) * (ac[i] - mean[c]);
        else s0 += ac[i], s1 += ac[i] * bc[i]; /* sum g, sum g xhat (xhat from the tape) */
      }
      d->sums[c] += s0;
      d->sums[C + c] += s1;
    }
  PetscCallMPI(MPI_Allreduce(d->sums, out, 2 * C, MPI_DOUBLE, MPI_SUM, l->comm));
  PetscFunctionReturn(0);
}

static PetscErrorCode BatchNormForward(RnLayer l, int batch, const double *theta, const double *x, double *y, double *tape)
{
  BatchNormData *d = l->impl->data;
  const int C = l->in.c, HW = l->in.h * l->in.w;
  const double *gamma = theta, *beta = theta + C, eps = l->impl->info.eps;
  double *running_mean = l->state, *running_var = l->state + C;
  Float64Sums sums = {l, batch, x, NULL, NULL};

  PetscFunctionBeginUser;
  if (!l->training) {
    for (int s = 0; s < batch; s++)
      for (int c = 0; c < C; c++) {
        const double scale = gamma[c] / sqrt(running_var[c] + eps);
        const double *xc = x + ((size_t)s * C + c) * HW;
        double *yc = y + ((size_t)s * C + c) * HW, *hc = tape + ((size_t)s * C + c) * HW;
        for (int i = 0; i < HW; i++) {
          hc[i] = (xc[i] - running_mean[c]) / sqrt(running_var[c] + eps);
          yc[i] = scale * (xc[i] - running_mean[c]) + beta[c];
        }
      }
    PetscFunctionReturn(0);
  }
  PetscCall(RnBatchNormBatchStatistics(l, batch, ChannelSums, &sums, d->mean, d->invstd));
  for (int s = 0; s < batch; s++)
    for (int c = 0; c < C; c++) {
      const double *xc = x + ((size_t)s * C + c) * HW;
      double *yc = y + ((size_t)s * C + c) * HW, *hc = tape + ((size_t)s * C + c) * HW;
      for (int i = 0; i < HW; i++) {
        hc[i] = (xc[i] - d->mean[c]) * d->invstd[c];
        yc[i] = gamma[c] * hc[i] + beta[c];
      }
    }
  PetscFunctionReturn(0);
}

static PetscErrorCode BatchNormBackward(RnLayer l, int batch, const double *theta, const double *x, const double *y, const double *dy, double *dx, double *dtheta, double *tape)
{
  BatchNormData *d = l->impl->data;
  const int C = l->in.c, HW = l->in.h * l->in.w;
  const double *gamma = theta;
  double *dgamma = dtheta, *dbeta = dtheta + C;
  const double *xhat = tape;
  double *means;
  Float64Sums sums = {l, batch, x, dy, xhat};

  PetscFunctionBeginUser;
  /* parameter gradients: this rank's share (the training loop sums them) */
  for (int s = 0; s < batch; s++)
    for (int c = 0; c < C; c++) {
      const double *g = dy + ((size_t)s * C + c) * HW, *h = xhat + ((size_t)s * C + c) * HW;
      for (int i = 0; i < HW; i++) dgamma[c] += g[i] * h[i], dbeta[c] += g[i];
    }
  if (!dx) PetscFunctionReturn(0);
  if (!l->training) {
    for (int s = 0; s < batch; s++)
      for (int c = 0; c < C; c++) {
        const double scale = gamma[c] / sqrt(l->state[C + c] + l->impl->info.eps);
        for (int i = 0; i < HW; i++) dx[((size_t)s * C + c) * HW + i] = scale * dy[((size_t)s * C + c) * HW + i];
      }
    PetscFunctionReturn(0);
  }
  /* dx = gamma invstd (g - mean(g) - xhat mean(g xhat)), means over the whole batch */
  PetscCall(PetscMalloc1(2 * C, &means));
  PetscCall(RnBatchNormGradientMeans(l, batch, ChannelSums, &sums, d->mean, d->invstd, means));
  for (int s = 0; s < batch; s++)
    for (int c = 0; c < C; c++) {
      const double mg = means[c], mgh = means[C + c], scale = gamma[c] * d->invstd[c];
      const double *g = dy + ((size_t)s * C + c) * HW, *h = xhat + ((size_t)s * C + c) * HW;
      double *o = dx + ((size_t)s * C + c) * HW;
      for (int i = 0; i < HW; i++) o[i] = scale * (g[i] - mg - h[i] * mgh);
    }
  PetscCall(PetscFree(means));
  PetscFunctionReturn(0);
}

static PetscErrorCode BatchNormInit(RnLayer l, uint64_t seed, uint32_t member, uint32_t layer_id, double *theta)
{
  const int C = l->in.c;

  PetscFunctionBeginUser;
  for (int c = 0; c < C; c++) theta[c] = 1.0, theta[C + c] = 0.0;
  for (int c = 0; c < C; c++) l->state[c] = 0.0, l->state[C + c] = 1.0;
  PetscFunctionReturn(0);
}

static PetscErrorCode BatchNormDestroy(RnLayer l)
{
  BatchNormData *d = l->impl->data;

  PetscFunctionBeginUser;
  PetscCall(PetscFree3(d->mean, d->invstd, d->sums));
  PetscFunctionReturn(0);
}

PetscErrorCode RnLayerCreateBatchNorm(MPI_Comm comm, RnShape in, double momentum, double eps, RnLayer *layer)
{
  RnLayer l;
  BatchNormData *d;

  PetscFunctionBeginUser;
  PetscCall(RnLayerAlloc(RN_LAYER_BATCHNORM, "batchnorm", in, in, &l));
  l->comm = comm;
  l->nparams = 2 * in.c;
  l->tape_per_sample = RnShapeSize(in); /* xhat */
  l->nstate = 2 * in.c;
  PetscCall(PetscMalloc1(l->nstate, &l->state));
  for (int c = 0; c < in.c; c++) l->state[c] = 0.0, l->state[in.c + c] = 1.0;
  PetscCall(PetscNew(&d));
  l->impl->info.momentum = momentum, l->impl->info.eps = eps;
  PetscCall(PetscMalloc3(in.c, &d->mean, in.c, &d->invstd, 2 * in.c, &d->sums));
  l->impl->data = d;
  l->impl->ops.forward = BatchNormForward;
  l->impl->ops.backward = BatchNormBackward;
  l->impl->ops.init = BatchNormInit;
  l->impl->ops.destroy = BatchNormDestroy;
  *layer = l;
  PetscFunctionReturn(0);
}

PetscErrorCode RnLayerBatchNormSetParameters(RnLayer l, double momentum, double eps)
{
  PetscFunctionBeginUser;
  PetscCheck(l->type == RN_LAYER_BATCHNORM, PETSC_COMM_SELF, PETSC_ERR_ARG_WRONG, "layer '%s' is not a batch norm", l->name);
  PetscCheck(momentum >= 0 && momentum <= 1 && eps > 0, PETSC_COMM_SELF, PETSC_ERR_ARG_OUTOFRANGE, "batch norm momentum %g must be in [0, 1] and eps %g > 0", momentum, eps);
  l->impl->info.momentum = momentum, l->impl->info.eps = eps;
  PetscFunctionReturn(0);
}
