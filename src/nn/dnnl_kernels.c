/* dnnl_kernels.c: the backend's own loops (memory-bound or tiny, so not
 * worth a primitive): conversions at the Net's boundaries, relu, batch norm
 * (its statistics from nnimpl.h's kernel, shared with the float64 layer),
 * average pooling and dense layers, on any layout. */
#include "dnnlimpl.h"

#include <cblas.h>
#include <dnnl.h>
#include <dnnl_debug.h>
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

/* double plain (batch, C, HW) <-> a layout (padding channels zeroed); one
 * loop per type, so that the type test is not inside the loop. */
RN_HOT_LOOP void DnnlFromDouble(const Layout *L, int batch, const double *x, void *out)
{
  const int C = L->C, HW = L->HW;
  const size_t blk = (size_t)L->blk;

  if (LayoutPadded(L)) memset(out, 0, (size_t)batch * LayoutSampleElems(L) * DtSize(L->dt));
  for (int n = 0; n < batch; n++)
    for (int c = 0; c < C; c++) {
      const size_t base = LayoutBase(L, (size_t)n, c);
      const double *xc = x + ((size_t)n * C + c) * HW;
      if (L->dt == dnnl_bf16) {
        uint16_t *o = (uint16_t *)out + base;
        for (int s = 0; s < HW; s++) o[s * blk] = FloatToBf16((float)xc[s]);
      } else {
        float *o = (float *)out + base;
        for (int s = 0; s < HW; s++) o[s * blk] = (float)xc[s];
      }
    }
}

RN_HOT_LOOP void DnnlToDouble(const Layout *L, int batch, const void *in, double *x)
{
  const int C = L->C, HW = L->HW;
  const size_t blk = (size_t)L->blk;

  for (int n = 0; n < batch; n++)
    for (int c = 0; c < C; c++) {
      const size_t base = LayoutBase(L, (size_t)n, c);
      double *xc = x + ((size_t)n * C + c) * HW;
      if (L->dt == dnnl_bf16) {
        const uint16_t *i = (const uint16_t *)in + base;
        for (int s = 0; s < HW; s++) xc[s] = Bf16ToFloat(i[s * blk]);
      } else {
        const float *i = (const float *)in + base;
        for (int s = 0; s < HW; s++) xc[s] = i[s * blk];
      }
    }
}

/* ---- our own ops: any layout in, any layout out ---- */

RN_HOT_LOOP void DnnlReluForward(const Layout *Li, const void *x, const Layout *Lo, void *y, int batch)
{
  if (LayoutPadded(Lo)) memset(y, 0, (size_t)batch * LayoutSampleElems(Lo) * DtSize(Lo->dt));
  for (int n = 0; n < batch; n++)
    for (int c = 0; c < Li->C; c++) {
      const size_t bi = LayoutBase(Li, (size_t)n, c), bo = LayoutBase(Lo, (size_t)n, c);
      for (int s = 0; s < Li->HW; s++) {
        const float v = Load(x, Li->dt, bi + (size_t)s * Li->blk);
        Store(y, Lo->dt, bo + (size_t)s * Lo->blk, v > 0 ? v : 0.0f);
      }
    }
}

/* dx = dy * (y > 0), layouts of y and dy given, dx in dLx */
RN_HOT_LOOP void DnnlReluBackward(const Layout *Ly, const void *y, const Layout *dLy, const void *dy, const Layout *dLx, void *dx, int batch)
{
  if (LayoutPadded(dLx)) memset(dx, 0, (size_t)batch * LayoutSampleElems(dLx) * DtSize(dLx->dt));
  for (int n = 0; n < batch; n++)
    for (int c = 0; c < Ly->C; c++) {
      const size_t by = LayoutBase(Ly, (size_t)n, c), bg = LayoutBase(dLy, (size_t)n, c), bx = LayoutBase(dLx, (size_t)n, c);
      for (int s = 0; s < Ly->HW; s++) {
        const float v = Load(y, Ly->dt, by + (size_t)s * Ly->blk);
        Store(dx, dLx->dt, bx + (size_t)s * dLx->blk, v > 0 ? Load(dy, dLy->dt, bg + (size_t)s * dLy->blk) : 0.0f);
      }
    }
}

/* The relu fused after a convolution, in place on the gradient of its output
 * (same layout as the output). */
RN_HOT_LOOP void DnnlReluMaskInPlace(const Layout *Ly, const void *y, const Layout *dL, void *g, int batch)
{
  const size_t n = (size_t)batch * LayoutSampleElems(Ly);
  /* y > 0 for a bfloat16 y: sign bit clear, not zero, not NaN (0x0001..0x7f80) */
#define RN_BF16_POSITIVE(h) ((uint16_t)((h) - 1u) < 0x7f80u)
  /* branch-free masks, so that the loops vectorize */
  if (Ly->dt == dnnl_bf16 && dL->dt == dnnl_bf16) {
    const uint16_t *yy = y;
    uint16_t *gg = g;
    for (size_t i = 0; i < n; i++) gg[i] &= (uint16_t)-(uint16_t)RN_BF16_POSITIVE(yy[i]);
  } else if (Ly->dt == dnnl_bf16) {
    const uint16_t *yy = y;
    uint32_t *gg = g; /* float bits */
    for (size_t i = 0; i < n; i++) gg[i] &= -(uint32_t)RN_BF16_POSITIVE(yy[i]);
  } else if (dL->dt == dnnl_bf16) {
    const float *yy = y;
    uint16_t *gg = g;
    for (size_t i = 0; i < n; i++) gg[i] &= (uint16_t)-(uint16_t)(yy[i] > 0);
  } else {
    const float *yy = y;
    float *gg = g;
    for (size_t i = 0; i < n; i++) gg[i] = yy[i] > 0 ? gg[i] : 0.0f;
  }
#undef RN_BF16_POSITIVE
}

/* Batch norm's per-channel sums over (batch, HW) in any layout, reduced over
 * the layer's communicator (nnimpl.h: RnChannelSums): of x, of (x - mean)^2,
 * or of g = dy and g xhat, xhat computed from x. */
typedef struct {
  MPI_Comm comm;
  int batch;
  const Layout *Lx, *dLy;
  const void *x, *dy;
} LayoutSums;

RN_HOT_LOOP static PetscErrorCode ChannelSums(void *ctx, int mode, const double *mean, const double *invstd, double *out)
{
  const LayoutSums *f = ctx;
  const Layout *La = mode == RN_BN_GRADIENT ? f->dLy : f->Lx, *Lb = f->Lx;
  const void *a = mode == RN_BN_GRADIENT ? f->dy : f->x, *b = f->x;
  const int C = La->C;
  double *local;

  PetscFunctionBeginUser;
  PetscCall(PetscCalloc1(2 * C, &local));
  for (int n = 0; n < f->batch; n++)
    for (int c = 0; c < C; c++) {
      const size_t ba = LayoutBase(La, (size_t)n, c), bb = mode == RN_BN_GRADIENT ? LayoutBase(Lb, (size_t)n, c) : 0;
      double s0 = 0, s1 = 0;
      for (int s = 0; s < La->HW; s++) {
        const double v = Load(a, La->dt, ba + (size_t)s * La->blk);
        if (mode == RN_BN_SUM) s0 += v;
        else if (mode == RN_BN_CENTRED) s0 += (v - mean[c]) * (v - mean[c]);
        else {
          const double xhat = (Load(b, Lb->dt, bb + (size_t)s * Lb->blk) - mean[c]) * invstd[c];
          s0 += v, s1 += v * xhat;
        }
      }
      local[c] += s0, local[C + c] += s1;
    }
  PetscCallMPI(MPI_Allreduce(local, out, 2 * C, MPI_DOUBLE, MPI_SUM, f->comm));
  PetscCall(PetscFree(local));
  PetscFunctionReturn(0);
}

RN_HOT_LOOP PetscErrorCode DnnlBatchNormForward(Op *op, const double *theta, const Layout *Li, const void *x, const Layout *Lo, void *y, int batch)
{
  RnLayer l = op->layer;
  const int C = l->in.c, HW = l->in.h * l->in.w;
  const double *gamma = theta, *beta = theta + C, eps = l->impl->info.eps;
  const double *rmean = l->state, *rvar = l->state + C;
  LayoutSums sums = {l->comm, batch, Li, NULL, x, NULL};

  PetscFunctionBeginUser;
  if (LayoutPadded(Lo)) memset(y, 0, (size_t)batch * LayoutSampleElems(Lo) * DtSize(Lo->dt));
  if (l->training) PetscCall(RnBatchNormBatchStatistics(l, batch, ChannelSums, &sums, op->mean, op->invstd));
  else
    for (int c = 0; c < C; c++) op->mean[c] = rmean[c], op->invstd[c] = 1.0 / sqrt(rvar[c] + eps);
  for (int n = 0; n < batch; n++)
    for (int c = 0; c < C; c++) {
      const size_t bi = LayoutBase(Li, (size_t)n, c), bo = LayoutBase(Lo, (size_t)n, c);
      const float scale = (float)(gamma[c] * op->invstd[c]), shift = (float)(beta[c] - gamma[c] * op->invstd[c] * op->mean[c]);
      for (int s = 0; s < HW; s++) Store(y, Lo->dt, bo + (size_t)s * Lo->blk, scale * Load(x, Li->dt, bi + (size_t)s * Li->blk) + shift);
    }
  PetscFunctionReturn(0);
}

/* The statistics op->mean/invstd are those of the forward pass of this batch
 * (the running ones in inference mode). */
RN_HOT_LOOP PetscErrorCode DnnlBatchNormBackward(Op *op, const double *theta, const Layout *Lx, const void *x, const Layout *dLy, const void *dy, const Layout *dLx, void *dx, double *dtheta, int batch)
{
  RnLayer l = op->layer;
  const int C = l->in.c, HW = l->in.h * l->in.w;
  const double *gamma = theta;
  double *dgamma = dtheta, *dbeta = dtheta + C, *tot;
  LayoutSums sums = {l->comm, batch, Lx, dLy, x, dy};

  PetscFunctionBeginUser;
  for (int n = 0; n < batch; n++)
    for (int c = 0; c < C; c++) {
      const size_t bx = LayoutBase(Lx, (size_t)n, c), bg = LayoutBase(dLy, (size_t)n, c);
      double sg = 0, sgh = 0;
      for (int s = 0; s < HW; s++) {
        const double g = Load(dy, dLy->dt, bg + (size_t)s * dLy->blk), xhat = (Load(x, Lx->dt, bx + (size_t)s * Lx->blk) - op->mean[c]) * op->invstd[c];
        sg += g, sgh += g * xhat;
      }
      dgamma[c] += sgh, dbeta[c] += sg;
    }
  if (!dx) PetscFunctionReturn(0);
  if (LayoutPadded(dLx)) memset(dx, 0, (size_t)batch * LayoutSampleElems(dLx) * DtSize(dLx->dt));
  PetscCall(PetscCalloc1(2 * C, &tot));
  if (l->training) PetscCall(RnBatchNormGradientMeans(l, batch, ChannelSums, &sums, op->mean, op->invstd, tot));
  /* dx = gamma invstd (g - mean(g) - xhat mean(g xhat)) in training, gamma invstd g in inference */
  for (int n = 0; n < batch; n++)
    for (int c = 0; c < C; c++) {
      const size_t bx = LayoutBase(Lx, (size_t)n, c), bg = LayoutBase(dLy, (size_t)n, c), bo = LayoutBase(dLx, (size_t)n, c);
      const float scale = (float)(gamma[c] * op->invstd[c]), mg = (float)tot[c], mgh = (float)tot[C + c], mean = (float)op->mean[c], invstd = (float)op->invstd[c];
      for (int s = 0; s < HW; s++) {
        const float g = Load(dy, dLy->dt, bg + (size_t)s * dLy->blk), xhat = (Load(x, Lx->dt, bx + (size_t)s * Lx->blk) - mean) * invstd;
        Store(dx, dLx->dt, bo + (size_t)s * dLx->blk, scale * (g - mg - xhat * mgh));
      }
    }
  PetscCall(PetscFree(tot));
  PetscFunctionReturn(0);
}

/* k x k average pooling with stride k (global: k = h = w) */
RN_HOT_LOOP void DnnlPoolForward(RnLayer l, const Layout *Li, const void *x, const Layout *Lo, void *y, int batch)
{
  const int k = l->type == RN_LAYER_GLOBALAVGPOOL ? l->in.h : l->impl->info.k, W = l->in.w, Ho = l->out.h, Wo = l->out.w;
  const float scale = l->type == RN_LAYER_GLOBALAVGPOOL ? 1.0f / (l->in.h * l->in.w) : 1.0f / (k * k);
  const int kw = l->type == RN_LAYER_GLOBALAVGPOOL ? l->in.w : k;

  if (LayoutPadded(Lo)) memset(y, 0, (size_t)batch * LayoutSampleElems(Lo) * DtSize(Lo->dt));
  for (int n = 0; n < batch; n++)
    for (int c = 0; c < l->in.c; c++) {
      const size_t bi = LayoutBase(Li, (size_t)n, c), bo = LayoutBase(Lo, (size_t)n, c);
      for (int i = 0; i < Ho; i++)
        for (int j = 0; j < Wo; j++) {
          float sum = 0;
          for (int a = 0; a < k; a++)
            for (int b = 0; b < kw; b++) sum += Load(x, Li->dt, bi + (size_t)((i * k + a) * W + j * kw + b) * Li->blk);
          Store(y, Lo->dt, bo + (size_t)(i * Wo + j) * Lo->blk, scale * sum);
        }
    }
}

RN_HOT_LOOP void DnnlPoolBackward(RnLayer l, const Layout *dLy, const void *dy, const Layout *dLx, void *dx, int batch)
{
  const int k = l->type == RN_LAYER_GLOBALAVGPOOL ? l->in.h : l->impl->info.k, H = l->in.h, W = l->in.w, Ho = l->out.h, Wo = l->out.w;
  const int kw = l->type == RN_LAYER_GLOBALAVGPOOL ? l->in.w : k;
  const float scale = 1.0f / (k * kw);

  if (LayoutPadded(dLx)) memset(dx, 0, (size_t)batch * LayoutSampleElems(dLx) * DtSize(dLx->dt));
  for (int n = 0; n < batch; n++)
    for (int c = 0; c < l->in.c; c++) {
      const size_t bg = LayoutBase(dLy, (size_t)n, c), bo = LayoutBase(dLx, (size_t)n, c);
      for (int i = 0; i < H; i++)
        for (int j = 0; j < W; j++) {
          const float v = (i / k < Ho && j / kw < Wo) ? scale * Load(dy, dLy->dt, bg + (size_t)((i / k) * Wo + j / kw) * dLy->blk) : 0.0f;
          Store(dx, dLx->dt, bo + (size_t)(i * W + j) * dLx->blk, v);
        }
    }
}

/* dense on plain float32: y = x W^T + b */
void DnnlDenseForward(const Op *op, const float *x, float *y, int batch)
{
  const int in = (int)RnShapeSize(op->layer->in), out = (int)RnShapeSize(op->layer->out);
  const float *W = op->w, *b = op->w + (size_t)in * out;
  for (int s = 0; s < batch; s++) memcpy(y + (size_t)s * out, b, sizeof(float) * out);
  cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, batch, out, in, 1.0f, x, in, W, in, 1.0f, y, out);
}

PetscErrorCode DnnlDenseBackward(const Op *op, const float *x, const float *dy, float *dx, double *dtheta, int batch)
{
  const int in = (int)RnShapeSize(op->layer->in), out = (int)RnShapeSize(op->layer->out);
  float *dW;

  PetscFunctionBeginUser;
  PetscCall(PetscMalloc1((size_t)in * out, &dW));
  cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, out, in, batch, 1.0f, dy, out, x, in, 0.0f, dW, in);
  for (size_t i = 0; i < (size_t)in * out; i++) dtheta[i] += dW[i];
  for (int s = 0; s < batch; s++)
    for (int o = 0; o < out; o++) dtheta[(size_t)in * out + o] += dy[(size_t)s * out + o];
  if (dx) cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, batch, in, out, 1.0f, dy, out, op->w, in, 0.0f, dx, in);
  PetscCall(PetscFree(dW));
  PetscFunctionReturn(0);
}

