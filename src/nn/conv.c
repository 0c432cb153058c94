/* conv.c: 2-D convolution (any kernel, stride, zero padding, bias) by im2col
 * and one GEMM per chunk of samples. */
#include "nnimpl.h"
#include "resnode/core/rng.h"

#include <cblas.h>
#include <math.h>
#include <string.h>

#ifndef RN_CONV_CHUNK_DOUBLES
#define RN_CONV_CHUNK_DOUBLES (256u << 10) /* an im2col buffer of 2 MB: it stays in cache */
#endif

typedef struct {
  int k, stride, pad;
  double *col, *out; /* workspaces for a chunk of samples */
  int chunk;         /* samples per GEMM */
} ConvData;

/* col (ckk x (S * HoWo)): column block s holds sample s's patches */
RN_HOT_LOOP static void Im2Col(const double *x, int S, RnShape in, RnShape out, int k, int stride, int pad, double *col)
{
  const int HoWo = out.h * out.w, ncols = S * HoWo;
  for (int c = 0; c < in.c; c++)
    for (int ki = 0; ki < k; ki++)
      for (int kj = 0; kj < k; kj++) {
        double *row = col + (size_t)((c * k + ki) * k + kj) * ncols;
        for (int s = 0; s < S; s++) {
          const double *xs = x + ((size_t)s * in.c + c) * in.h * in.w;
          double *r = row + (size_t)s * HoWo;
          for (int oi = 0; oi < out.h; oi++) {
            const int ii = oi * stride - pad + ki;
            if (ii < 0 || ii >= in.h) {
              memset(r + oi * out.w, 0, sizeof(double) * out.w);
              continue;
            }
            for (int oj = 0; oj < out.w; oj++) {
              const int jj = oj * stride - pad + kj;
              r[oi * out.w + oj] = (jj >= 0 && jj < in.w) ? xs[ii * in.w + jj] : 0.0;
            }
          }
        }
      }
}

/* dx += col2im(dcol) */
RN_HOT_LOOP static void Col2Im(const double *col, int S, RnShape in, RnShape out, int k, int stride, int pad, double *dx)
{
  const int HoWo = out.h * out.w, ncols = S * HoWo;
  for (int c = 0; c < in.c; c++)
    for (int ki = 0; ki < k; ki++)
      for (int kj = 0; kj < k; kj++) {
        const double *row = col + (size_t)((c * k + ki) * k + kj) * ncols;
        for (int s = 0; s < S; s++) {
          double *xs = dx + ((size_t)s * in.c + c) * in.h * in.w;
          const double *r = row + (size_t)s * HoWo;
          for (int oi = 0; oi < out.h; oi++) {
            const int ii = oi * stride - pad + ki;
            if (ii < 0 || ii >= in.h) continue;
            for (int oj = 0; oj < out.w; oj++) {
              const int jj = oj * stride - pad + kj;
              if (jj >= 0 && jj < in.w) xs[ii * in.w + jj] += r[oi * out.w + oj];
            }
          }
        }
      }
}

static PetscErrorCode ConvForward(RnLayer l, int batch, const double *theta, const double *x, double *y, double *tape)
{
  ConvData *d = l->impl->data;
  const int K = l->out.c, ckk = l->in.c * d->k * d->k, HoWo = l->out.h * l->out.w;
  const double *W = theta, *b = theta + (size_t)K * ckk;
  const PetscInt isz = RnShapeSize(l->in), osz = RnShapeSize(l->out);

  PetscFunctionBeginUser;
  for (int s0 = 0; s0 < batch; s0 += d->chunk) {
    const int S = PetscMin(d->chunk, batch - s0);
    Im2Col(x + (size_t)s0 * isz, S, l->in, l->out, d->k, d->stride, d->pad, d->col);
    /* out (K x S HoWo) = W (K x ckk) col (ckk x S HoWo) */
    cblas_dgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, K, S * HoWo, ckk, 1.0, W, ckk, d->col, S * HoWo, 0.0, d->out, S * HoWo);
    for (int s = 0; s < S; s++)
      for (int o = 0; o < K; o++) {
        double *ys = y + (size_t)(s0 + s) * osz + (size_t)o * HoWo;
        const double *src = d->out + (size_t)o * S * HoWo + (size_t)s * HoWo;
        for (int i = 0; i < HoWo; i++) ys[i] = src[i] + b[o];
      }
  }
  PetscFunctionReturn(0);
}

static PetscErrorCode ConvBackward(RnLayer l, int batch, const double *theta, const double *x, const double *y, const double *dy, double *dx, double *dtheta, double *tape)
{
  ConvData *d = l->impl->data;
  const int K = l->out.c, ckk = l->in.c * d->k * d->k, HoWo = l->out.h * l->out.w;
  const double *W = theta;
  double *dW = dtheta, *db = dtheta + (size_t)K * ckk;
  const PetscInt isz = RnShapeSize(l->in), osz = RnShapeSize(l->out);

  PetscFunctionBeginUser;
  if (dx) PetscCall(PetscArrayzero(dx, (size_t)batch * isz));
  for (int s0 = 0; s0 < batch; s0 += d->chunk) {
    const int S = PetscMin(d->chunk, batch - s0);
    /* gather dy of the chunk as (K x S HoWo) */
    for (int s = 0; s < S; s++)
      for (int o = 0; o < K; o++) {
        const double *src = dy + (size_t)(s0 + s) * osz + (size_t)o * HoWo;
        double *dst = d->out + (size_t)o * S * HoWo + (size_t)s * HoWo;
        double sum = 0;
        for (int i = 0; i < HoWo; i++) dst[i] = src[i], sum += src[i];
        db[o] += sum;
      }
    Im2Col(x + (size_t)s0 * isz, S, l->in, l->out, d->k, d->stride, d->pad, d->col);
    /* dW (K x ckk) += dY (K x S HoWo) col^T */
    cblas_dgemm(CblasRowMajor, CblasNoTrans, CblasTrans, K, ckk, S * HoWo, 1.0, d->out, S * HoWo, d->col, S * HoWo, 1.0, dW, ckk);
    if (dx) {
      /* dcol (ckk x S HoWo) = W^T dY, then scattered back */
      cblas_dgemm(CblasRowMajor, CblasTrans, CblasNoTrans, ckk, S * HoWo, K, 1.0, W, ckk, d->out, S * HoWo, 0.0, d->col, S * HoWo);
      Col2Im(d->col, S, l->in, l->out, d->k, d->stride, d->pad, dx + (size_t)s0 * isz);
    }
  }
  PetscFunctionReturn(0);
}

/* PyTorch's default: uniform in +-1/sqrt(fan_in) for weights and bias. */
static PetscErrorCode ConvInit(RnLayer l, uint64_t seed, uint32_t member, uint32_t layer_id, double *theta)
{
  ConvData *d = l->impl->data;
  const double bound = 1.0 / sqrt((double)(l->in.c * d->k * d->k));

  PetscFunctionBeginUser;
  RnRandUniform(seed, RN_STREAM_INIT, member, layer_id, (size_t)l->nparams, theta);
  for (PetscInt i = 0; i < l->nparams; i++) theta[i] = bound * (2.0 * theta[i] - 1.0);
  PetscFunctionReturn(0);
}

static PetscErrorCode ConvDestroy(RnLayer l)
{
  ConvData *d = l->impl->data;

  PetscFunctionBeginUser;
  PetscCall(PetscFree2(d->col, d->out));
  PetscFunctionReturn(0);
}

PetscErrorCode RnLayerCreateConv2d(RnShape in, int cout, int k, int stride, int pad, RnLayer *layer)
{
  RnLayer l;
  ConvData *d;
  RnShape out;
  size_t per_sample;

  PetscFunctionBeginUser;
  PetscCheck(k >= 1 && stride >= 1 && pad >= 0 && cout >= 1, PETSC_COMM_SELF, PETSC_ERR_ARG_OUTOFRANGE, "conv2d: bad kernel %d, stride %d, pad %d or channels %d", k, stride, pad, cout);
  PetscCheck(in.h + 2 * pad >= k && in.w + 2 * pad >= k, PETSC_COMM_SELF, PETSC_ERR_ARG_SIZ, "conv2d: a %dx%d kernel does not fit a %dx%d input with padding %d", k, k, in.h, in.w, pad);
  out.c = cout;
  out.h = (in.h + 2 * pad - k) / stride + 1;
  out.w = (in.w + 2 * pad - k) / stride + 1;
  PetscCall(RnLayerAlloc(RN_LAYER_CONV2D, "conv2d", in, out, &l));
  l->nparams = (PetscInt)cout * in.c * k * k + cout;
  PetscCall(PetscNew(&d));
  d->k = k, d->stride = stride, d->pad = pad;
  l->impl->info.k = k, l->impl->info.stride = stride, l->impl->info.pad = pad;
  /* chunks of RN_CONV_CHUNK_DOUBLES of im2col buffer: GEMMs big enough, buffers in cache */
  per_sample = (size_t)PetscMax(in.c * k * k, cout) * out.h * out.w;
  d->chunk = (int)PetscMax(1, PetscMin(256, (RN_CONV_CHUNK_DOUBLES) / PetscMax(per_sample, 1)));
  PetscCall(PetscMalloc2((size_t)d->chunk * in.c * k * k * out.h * out.w, &d->col, (size_t)d->chunk * PetscMax(cout, 1) * out.h * out.w, &d->out));
  l->impl->data = d;
  l->impl->ops.forward = ConvForward;
  l->impl->ops.backward = ConvBackward;
  l->impl->ops.init = ConvInit;
  l->impl->ops.destroy = ConvDestroy;
  *layer = l;
  PetscFunctionReturn(0);
}
