/* pool.c: average pooling (k x k windows, stride k) and global average pooling. */
#include "nnimpl.h"

typedef struct {
  int k;
} PoolData;

static PetscErrorCode AvgPoolForward(RnLayer l, int batch, const double *theta, const double *x, double *y, double *tape)
{
  const int k = ((PoolData *)l->impl->data)->k, H = l->in.h, W = l->in.w, Ho = l->out.h, Wo = l->out.w;
  const double scale = 1.0 / (k * k);

  PetscFunctionBeginUser;
  for (int s = 0; s < batch; s++)
    for (int c = 0; c < l->in.c; c++) {
      const double *xc = x + ((size_t)s * l->in.c + c) * H * W;
      double *yc = y + ((size_t)s * l->out.c + c) * Ho * Wo;
      for (int i = 0; i < Ho; i++)
        for (int j = 0; j < Wo; j++) {
          double sum = 0;
          for (int a = 0; a < k; a++)
            for (int b = 0; b < k; b++) sum += xc[(i * k + a) * W + j * k + b];
          yc[i * Wo + j] = scale * sum;
        }
    }
  PetscFunctionReturn(0);
}

static PetscErrorCode AvgPoolBackward(RnLayer l, int batch, const double *theta, const double *x, const double *y, const double *dy, double *dx, double *dtheta, double *tape)
{
  const int k = ((PoolData *)l->impl->data)->k, H = l->in.h, W = l->in.w, Ho = l->out.h, Wo = l->out.w;
  const double scale = 1.0 / (k * k);

  PetscFunctionBeginUser;
  if (!dx) PetscFunctionReturn(0);
  for (int s = 0; s < batch; s++)
    for (int c = 0; c < l->in.c; c++) {
      double *dxc = dx + ((size_t)s * l->in.c + c) * H * W;
      const double *dyc = dy + ((size_t)s * l->out.c + c) * Ho * Wo;
      for (int i = 0; i < H; i++)
        for (int j = 0; j < W; j++) dxc[i * W + j] = (i / k < Ho && j / k < Wo) ? scale * dyc[(i / k) * Wo + j / k] : 0.0;
    }
  PetscFunctionReturn(0);
}

PetscErrorCode RnLayerCreateAvgPool(RnShape in, int k, RnLayer *layer)
{
  RnLayer l;
  PoolData *d;

  PetscFunctionBeginUser;
  PetscCheck(k >= 1 && in.h >= k && in.w >= k, PETSC_COMM_SELF, PETSC_ERR_ARG_SIZ, "avgpool: window %d does not fit a %dx%d input", k, in.h, in.w);
  PetscCall(RnLayerAlloc(RN_LAYER_AVGPOOL, "avgpool", in, (RnShape){in.c, in.h / k, in.w / k}, &l));
  PetscCall(PetscNew(&d));
  d->k = k;
  l->impl->info.k = k, l->impl->info.stride = k;
  l->impl->data = d;
  l->impl->ops.forward = AvgPoolForward;
  l->impl->ops.backward = AvgPoolBackward;
  *layer = l;
  PetscFunctionReturn(0);
}

static PetscErrorCode GlobalPoolForward(RnLayer l, int batch, const double *theta, const double *x, double *y, double *tape)
{
  const int HW = l->in.h * l->in.w;

  PetscFunctionBeginUser;
  for (size_t sc = 0; sc < (size_t)batch * l->in.c; sc++) {
    double sum = 0;
    for (int i = 0; i < HW; i++) sum += x[sc * HW + i];
    y[sc] = sum / HW;
  }
  PetscFunctionReturn(0);
}

static PetscErrorCode GlobalPoolBackward(RnLayer l, int batch, const double *theta, const double *x, const double *y, const double *dy, double *dx, double *dtheta, double *tape)
{
  const int HW = l->in.h * l->in.w;

  PetscFunctionBeginUser;
  if (!dx) PetscFunctionReturn(0);
  for (size_t sc = 0; sc < (size_t)batch * l->in.c; sc++)
    for (int i = 0; i < HW; i++) dx[sc * HW + i] = dy[sc] / HW;
  PetscFunctionReturn(0);
}

PetscErrorCode RnLayerCreateGlobalAvgPool(RnShape in, RnLayer *layer)
{
  RnLayer l;

  PetscFunctionBeginUser;
  PetscCall(RnLayerAlloc(RN_LAYER_GLOBALAVGPOOL, "globalavgpool", in, (RnShape){in.c, 1, 1}, &l));
  l->impl->ops.forward = GlobalPoolForward;
  l->impl->ops.backward = GlobalPoolBackward;
  *layer = l;
  PetscFunctionReturn(0);
}
