/* nnimpl.h: nn's private header. What the layer files, the Net chain and the
 * oneDNN backend share, and no one else sees (as PETSc's tsimpl.h): the
 * layers' kernels, the tape's layout, the backends a Net runs its passes on,
 * and the batch-norm statistics both precision paths compute alike. */
#ifndef RESNODE_NNIMPL_H
#define RESNODE_NNIMPL_H

#include "resnode/core/profile.h"
#include "resnode/nn/layers.h"

/* gelu's constants (C11's math.h has no M_SQRT1_2) */
#define RN_SQRT1_2 0.70710678118654752440      /* 1 / sqrt(2) */
#define RN_INV_SQRT_2PI 0.39894228040143267794 /* 1 / sqrt(2 pi) */

/* What a layer computes beyond its shapes, for a backend that compiles a Net
 * (net_dnnl.c). */
typedef struct {
  int k, stride, pad;   /* conv2d (k x k kernel); avgpool: window k, stride k */
  RnActivation act;     /* activation layers */
  double momentum, eps; /* batch norm */
} RnLayerInfo;

/* A layer's float64 kernels (the reference path). */
typedef struct {
  PetscErrorCode (*forward)(RnLayer, int batch, const double *theta, const double *x, double *y, double *tape);
  PetscErrorCode (*backward)(RnLayer, int batch, const double *theta, const double *x, const double *y, const double *dy, double *dx, double *dtheta, double *tape);
  /* Initial parameters from the counter-based RNG keyed by (seed, member, layer_id). */
  PetscErrorCode (*init)(RnLayer, uint64_t seed, uint32_t member, uint32_t layer_id, double *theta);
  PetscErrorCode (*destroy)(RnLayer);
} RnLayerOps;

struct RnLayerImpl_s {
  RnLayerInfo info;
  RnLayerOps ops;
  void *data; /* type-specific, PetscFree'd with the layer */
};

/* The profile's event of a layer's pass (profile.h), and its flops: the
 * multiply-adds of convolutions and dense layers (2 flops each; a backward
 * pass does two products of the forward's size: data and weights). */
static inline RnEvent RnLayerEvent(RnLayer l)
{
  switch (l->type) {
  case RN_LAYER_CONV2D: return RN_EV_CONV_FORWARD;
  case RN_LAYER_DENSE: return RN_EV_DENSE;
  case RN_LAYER_BATCHNORM: return RN_EV_BATCHNORM;
  case RN_LAYER_AVGPOOL:
  case RN_LAYER_GLOBALAVGPOOL: return RN_EV_POOL;
  default: return RN_EV_ACTIVATION;
  }
}
static inline double RnLayerFlops(RnLayer l, int batch, PetscBool backward)
{
  double fwd = 0.0;
  if (l->type == RN_LAYER_CONV2D) fwd = 2.0 * batch * l->out.c * l->in.c * l->impl->info.k * l->impl->info.k * l->out.h * l->out.w;
  else if (l->type == RN_LAYER_DENSE) fwd = 2.0 * batch * (double)RnShapeSize(l->in) * (double)RnShapeSize(l->out);
  return backward ? 2.0 * fwd : fwd;
}
/* ... around a pass: the backward pass of a convolution is its own event */
static inline PetscErrorCode RnLayerEventBegin(RnLayer l, PetscBool backward)
{
  const RnEvent e = RnLayerEvent(l);
  return RnEventBegin(backward && e == RN_EV_CONV_FORWARD ? RN_EV_CONV_BACKWARD : e);
}
static inline PetscErrorCode RnLayerEventEnd(RnLayer l, int batch, PetscBool backward)
{
  const RnEvent e = RnLayerEvent(l);
  PetscErrorCode err = RnProfileFlops(RnLayerFlops(l, batch, backward));
  return err ? err : RnEventEnd(backward && e == RN_EV_CONV_FORWARD ? RN_EV_CONV_BACKWARD : e);
}

/* A new layer with its shapes set (for the constructors): training mode, no
 * parameters, batch statistics over PETSC_COMM_SELF. */
PetscErrorCode RnLayerAlloc(RnLayerType type, const char *name, RnShape in, RnShape out, RnLayer *layer);

/* How a Net runs its passes. float64 chains the layers' own kernels
 * (layers.c); float32 and bfloat16 run one oneDNN program (net_dnnl.c).
 * RnNetSetPrecision chooses. */
typedef struct {
  PetscErrorCode (*forward)(RnNet, int batch, const double *theta, const double *x, double *y, double *tape);
  PetscErrorCode (*backward)(RnNet, int batch, const double *theta, const double *x, const double *dy, double *dx, double *dtheta, double *tape);
  PetscErrorCode (*destroy)(RnNet); /* frees backend_data */
} RnNetBackend;

extern const RnNetBackend RnNetBackendFloat64; /* layers.c */
/* Compiles the Net for oneDNN in float32 or bfloat16 and makes that its
 * backend (net_dnnl.c); an input error names a layer it cannot run. */
PetscErrorCode RnNetBackendDnnlSetUp(RnNet net, RnPrecision precision);

struct RnNetImpl_s {
  int capacity;               /* of layers[] */
  PetscInt *act_offset;       /* per-sample offset of layer i's output in the float64 tape */
  PetscInt *ltape_offset;     /* per-sample offset of layer i's own tape */
  PetscInt tape_per_sample_f64;
  double *work;               /* gradient ping-pong buffers of the float64 backward pass */
  int work_batch;
  size_t work_stride;
  const RnNetBackend *backend;
  void *backend_data;         /* the oneDNN program */
};

/* Batch norm's statistics, one kernel for both precision paths. A path
 * brings its own per-channel sums over (local batch, h, w) of its layout,
 * reduced over the layer's communicator into out[0..2C):
 *   mode RN_BN_SUM:          out[c] = sum x
 *   mode RN_BN_CENTRED:      out[c] = sum (x - mean_c)^2
 *   mode RN_BN_GRADIENT:     out[c] = sum g, out[C + c] = sum g xhat */
enum { RN_BN_SUM, RN_BN_CENTRED, RN_BN_GRADIENT };
typedef PetscErrorCode (*RnChannelSums)(void *ctx, int mode, const double *mean, const double *invstd, double *out);
/* Training mode: the batch's mean and 1/sqrt(var + eps) per channel (two
 * passes: accurate for large means), and the running averages updated. */
PetscErrorCode RnBatchNormBatchStatistics(RnLayer l, int batch, RnChannelSums sums, void *ctx, double *mean, double *invstd);
/* The backward pass's batch means of g and g xhat (means[0..2C)). */
PetscErrorCode RnBatchNormGradientMeans(RnLayer l, int batch, RnChannelSums sums, void *ctx, const double *mean, const double *invstd, double *means);

#endif
