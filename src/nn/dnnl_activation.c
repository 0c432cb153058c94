/* dnnl_activation.c: the oneDNN backend's smooth activations (tanh,
 * softplus, gelu): f and f' of the pre-activation, which the tape keeps.
 * Compiled with -ffast-math, so that GCC calls glibc's vector expf, log1pf,
 * erfcf and tanhf (libmvec): at the CIFAR block's widths these loops, not
 * the convolutions, set the step time (scalar libm calls made a softplus
 * step about 3 times a relu one). NaN and infinity tests do not belong here. */
#include "dnnlimpl.h"

#include <math.h>
#include <string.h>

/* A float32 tensor in the same layout on both sides: one flat loop. */
static PetscBool SameFloatLayout(const Layout *a, const Layout *b) { return (PetscBool)(a->dt == dnnl_f32 && b->dt == dnnl_f32 && a->C == b->C && a->Cb == b->Cb && a->blk == b->blk && a->HW == b->HW); }

/* zero the padding channels (C..Cb blk) of a flat float32 tensor */
static void ZeroPadding(const Layout *L, int batch, float *y)
{
  if (!LayoutPadded(L)) return;
  for (int n = 0; n < batch; n++)
    for (int c = L->C; c < L->Cb * L->blk; c++) {
      const size_t base = LayoutBase(L, (size_t)n, c);
      for (int s = 0; s < L->HW; s++) y[base + (size_t)s * L->blk] = 0.0f;
    }
}

/* f and f' of one pre-activation, in float32 */
static inline float ActivationValue(RnActivation act, float v)
{
  switch (act) {
  case RN_ACT_TANH: return tanhf(v);
  case RN_ACT_SOFTPLUS: return fmaxf(v, 0.0f) + log1pf(expf(-fabsf(v))); /* log(1 + e^v) without overflow */
  case RN_ACT_GELU: return 0.5f * v * erfcf(-v * (float)RN_SQRT1_2);
  default: return v > 0 ? v : 0.0f;
  }
}

static inline float ActivationSlope(RnActivation act, float v)
{
  switch (act) {
  case RN_ACT_TANH: {
    const float t = tanhf(v);
    return 1.0f - t * t;
  }
  case RN_ACT_SOFTPLUS: return 1.0f / (1.0f + expf(-v));
  case RN_ACT_GELU: return 0.5f * erfcf(-v * (float)RN_SQRT1_2) + v * (float)RN_INV_SQRT_2PI * expf(-0.5f * v * v);
  default: return v > 0 ? 1.0f : 0.0f;
  }
}

/* The same, over a flat float32 tensor: one loop per activation, so that
 * each inlines to calls of the vector functions. */
RN_HOT_LOOP static void FlatForward(RnActivation act, size_t n, const float *restrict x, float *restrict y)
{
  switch (act) {
  case RN_ACT_TANH:
    for (size_t i = 0; i < n; i++) y[i] = ActivationValue(RN_ACT_TANH, x[i]);
    break;
  case RN_ACT_SOFTPLUS:
    for (size_t i = 0; i < n; i++) y[i] = ActivationValue(RN_ACT_SOFTPLUS, x[i]);
    break;
  default:
    for (size_t i = 0; i < n; i++) y[i] = ActivationValue(RN_ACT_GELU, x[i]);
  }
}

/* g *= f'(x), in place */
RN_HOT_LOOP static void FlatSlope(RnActivation act, size_t n, const float *restrict x, float *restrict g)
{
  switch (act) {
  case RN_ACT_TANH:
    for (size_t i = 0; i < n; i++) g[i] *= ActivationSlope(RN_ACT_TANH, x[i]);
    break;
  case RN_ACT_SOFTPLUS:
    for (size_t i = 0; i < n; i++) g[i] *= ActivationSlope(RN_ACT_SOFTPLUS, x[i]);
    break;
  default:
    for (size_t i = 0; i < n; i++) g[i] *= ActivationSlope(RN_ACT_GELU, x[i]);
  }
}

/* Any layouts and types (bfloat16): element by element. */
void DnnlActivationForward(RnActivation act, const Layout *Li, const void *x, const Layout *Lo, void *y, int batch)
{
  if (SameFloatLayout(Li, Lo)) {
    FlatForward(act, (size_t)batch * LayoutSampleElems(Li), x, y);
    ZeroPadding(Lo, batch, y);
    return;
  }
  if (LayoutPadded(Lo)) memset(y, 0, (size_t)batch * LayoutSampleElems(Lo) * DtSize(Lo->dt));
  for (int n = 0; n < batch; n++)
    for (int c = 0; c < Li->C; c++) {
      const size_t bi = LayoutBase(Li, (size_t)n, c), bo = LayoutBase(Lo, (size_t)n, c);
      for (int s = 0; s < Li->HW; s++) Store(y, Lo->dt, bo + (size_t)s * Lo->blk, ActivationValue(act, Load(x, Li->dt, bi + (size_t)s * Li->blk)));
    }
}

/* dx = dy f'(x) */
void DnnlActivationBackward(RnActivation act, const Layout *Lx, const void *x, const Layout *dLy, const void *dy, const Layout *dLx, void *dx, int batch)
{
  if (SameFloatLayout(Lx, dLy) && SameFloatLayout(Lx, dLx)) {
    const size_t n = (size_t)batch * LayoutSampleElems(Lx);
    memcpy(dx, dy, n * sizeof(float));
    FlatSlope(act, n, x, dx);
    ZeroPadding(dLx, batch, dx);
    return;
  }
  if (LayoutPadded(dLx)) memset(dx, 0, (size_t)batch * LayoutSampleElems(dLx) * DtSize(dLx->dt));
  for (int n = 0; n < batch; n++)
    for (int c = 0; c < Lx->C; c++) {
      const size_t bx = LayoutBase(Lx, (size_t)n, c), bg = LayoutBase(dLy, (size_t)n, c), bd = LayoutBase(dLx, (size_t)n, c);
      for (int s = 0; s < Lx->HW; s++)
        Store(dx, dLx->dt, bd + (size_t)s * dLx->blk, Load(dy, dLy->dt, bg + (size_t)s * dLy->blk) * ActivationSlope(act, Load(x, Lx->dt, bx + (size_t)s * Lx->blk)));
    }
}

