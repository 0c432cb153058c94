/* layers.h: differentiable layers on a batch, and the Net that chains them.
 *
 * Conventions (all layers):
 *  - data are double, sample-major: x[b * size(in) + i]; an image sample is
 *    (c, h, w) row-major, a vector sample has h = w = 1;
 *  - a layer's parameters are a slice theta[0 .. nparams) of the owner's
 *    flat buffer, its gradient the same slice of the flat gradient buffer;
 *  - forward(x) -> y may keep per-sample values in its tape slice;
 *  - backward takes x, y, dy and returns dx = (dy/dx)^T dy (overwritten;
 *    dx may be NULL when the input needs no gradient) and adds
 *    (dy/dtheta)^T dy into dtheta (accumulated);
 *  - layers that need statistics over the whole batch (batch norm) reduce them
 *    over the layer's communicator, so the result does not depend on how the
 *    batch was split over the ranks of a group. */
#ifndef RESNODE_LAYERS_H
#define RESNODE_LAYERS_H

#include "resnode/core/config.h"
#include "resnode/core/core.h"

typedef struct {
  int c, h, w;
} RnShape;

static inline PetscInt RnShapeSize(RnShape s) { return (PetscInt)s.c * s.h * s.w; }

typedef enum {
  RN_LAYER_DENSE,
  RN_LAYER_ACTIVATION,
  RN_LAYER_CONV2D,
  RN_LAYER_BATCHNORM,
  RN_LAYER_AVGPOOL,
  RN_LAYER_GLOBALAVGPOOL,
  RN_LAYER_SCALE
} RnLayerType;

typedef enum {
  RN_ACT_IDENTITY,
  RN_ACT_TANH,
  RN_ACT_RELU,
  RN_ACT_SOFTPLUS,
  RN_ACT_CUBE,
  RN_ACT_GELU /* x Phi(x), Phi the standard normal CDF (the erf form) */
} RnActivation;

extern const char *const RnActivationNames[]; /* "identity", "tanh", "relu", "softplus", "cube", "gelu", NULL */

typedef struct RnLayer_s *RnLayer;

struct RnLayer_s {
  RnLayerType type;
  char name[32];
  RnShape in, out;
  PetscInt nparams;        /* parameters in the flat buffer */
  PetscInt tape_per_sample;/* doubles per sample kept from forward to backward */
  PetscInt nstate;         /* non-parameter state (batch-norm running statistics) */
  double *state;           /* nstate doubles, owned by the layer */
  PetscBool training;      /* batch norm: batch statistics (true) or running ones */
  MPI_Comm comm;           /* batch statistics are reduced over this communicator */
  struct RnLayerImpl_s *impl; /* what it computes and how: src/nn/nnimpl.h */
};

/* One layer alone on a batch (the Net runs them in a chain): y = layer(x),
 * and its backward pass as the conventions above say. */
PetscErrorCode RnLayerForward(RnLayer layer, int batch, const double *theta, const double *x, double *y, double *tape);
PetscErrorCode RnLayerBackward(RnLayer layer, int batch, const double *theta, const double *x, const double *y, const double *dy, double *dx, double *dtheta, double *tape);
/* Initial parameters from the stream (seed, member, layer_id); none for a layer without random weights. */
PetscErrorCode RnLayerInit(RnLayer layer, uint64_t seed, uint32_t member, uint32_t layer_id, double *theta);

/* Constructors. */
PetscErrorCode RnLayerCreateDense(RnShape in, int out, RnLayer *layer);
PetscErrorCode RnLayerCreateActivation(RnShape in, RnActivation act, RnLayer *layer);
/* y = theta * x componentwise (a diagonal linear map; the linear test field). */
PetscErrorCode RnLayerCreateScale(RnShape in, RnLayer *layer);
/* conv2d with cout output channels, k x k kernel, stride, zero padding; bias. */
PetscErrorCode RnLayerCreateConv2d(RnShape in, int cout, int k, int stride, int pad, RnLayer *layer);
/* PyTorch's defaults: the weight of the new batch in the running averages, and eps */
#define RN_BATCHNORM_MOMENTUM 0.1
#define RN_BATCHNORM_EPS 1e-5
/* Batch norm over (batch, h, w) per channel with affine scale and shift;
 * momentum for the running averages (PyTorch convention, 0.1), eps 1e-5. */
PetscErrorCode RnLayerCreateBatchNorm(MPI_Comm comm, RnShape in, double momentum, double eps, RnLayer *layer);
/* Changes a batch norm's momentum (weight of the new batch) and eps. */
PetscErrorCode RnLayerBatchNormSetParameters(RnLayer l, double momentum, double eps);
/* Average pooling with a k x k window and stride k. */
PetscErrorCode RnLayerCreateAvgPool(RnShape in, int k, RnLayer *layer);
PetscErrorCode RnLayerCreateGlobalAvgPool(RnShape in, RnLayer *layer);
PetscErrorCode RnLayerDestroy(RnLayer *layer);

/* The precision a Net computes in. The parameters, the Net's inputs and
 * outputs and the tape's owner stay double; float32 and bfloat16 (bfloat16
 * products with float32 accumulation, float32 batch-norm arithmetic) run
 * through oneDNN, converting at the Net's boundaries only (and the
 * parameters once per new theta). float64 is the reference path. */
typedef enum { RN_PRECISION_FLOAT64, RN_PRECISION_FLOAT32, RN_PRECISION_BFLOAT16 } RnPrecision;
extern const char *const RnPrecisionNames[]; /* "float64", "float32", "bfloat16", NULL */
/* Unit roundoff of a precision: 2^-53, 2^-24, 2^-8. */
double RnPrecisionEpsilon(RnPrecision p);

/* Net: a chain of layers. Its parameters are the concatenation of its
 * layers' slices; its tape holds every intermediate activation and each
 * layer's own tape, per sample. */
typedef struct RnNet_s *RnNet;
struct RnNet_s {
  int nlayers;
  RnLayer *layers;
  PetscInt *param_offset;   /* nlayers + 1 entries */
  PetscInt nparams;
  PetscInt tape_per_sample; /* doubles a sample in the tape, in the Net's precision */
  RnShape in, out;
  PetscBool setup;
  RnPrecision precision;
  struct RnNetImpl_s *impl; /* the tape's layout and the backend: src/nn/nnimpl.h */
};

PetscErrorCode RnNetCreate(RnShape in, RnNet *net);
/* Appends a layer; the net owns it. Its input shape must be the net's current output. */
PetscErrorCode RnNetAdd(RnNet net, RnLayer layer);
PetscErrorCode RnNetSetUp(RnNet net);
/* y = net(x); tape has batch * tape_per_sample doubles. */
PetscErrorCode RnNetForward(RnNet net, int batch, const double *theta, const double *x, double *y, double *tape);
/* dx (may be NULL) and dtheta += from dy; uses the tape of the forward at the same x. */
PetscErrorCode RnNetBackward(RnNet net, int batch, const double *theta, const double *x, const double *dy, double *dx, double *dtheta, double *tape);
PetscErrorCode RnNetInit(RnNet net, uint64_t seed, uint32_t member, uint32_t first_layer_id, double *theta);
PetscErrorCode RnNetSetTraining(RnNet net, PetscBool training);
/* Total non-parameter state and copies in/out of it (for checkpoints). */
PetscInt RnNetStateSize(RnNet net);
PetscErrorCode RnNetGetState(RnNet net, double *state);
PetscErrorCode RnNetSetState(RnNet net, const double *state);
PetscErrorCode RnNetDestroy(RnNet *net);

/* Compile a set-up Net for a precision (changes tape_per_sample: size tapes
 * after this call). float32/bfloat16 support conv2d, the activations relu,
 * tanh, softplus and gelu, batch norm, avgpool, globalavgpool and dense
 * layers (an input error names any other); a relu right after a conv is
 * fused into it. Parameters, their layout and
 * initialisation, and batch-norm state are those of the float64 Net. */
PetscErrorCode RnNetSetPrecision(RnNet net, RnPrecision precision);
/* How float32 computes 3x3 stride-1 convolutions: RN_CONV_AUTO (the default)
 * takes oneDNN's Winograd F(4x4, 3x3) kernels where they exist (float32,
 * AVX-512) and both channel counts are >= 32, 2.5-3x faster than direct there
 * at a few 1e-6 more relative error; direct convolution elsewhere and in
 * bfloat16 (oneDNN has no bfloat16 Winograd). RN_CONV_DIRECT: always direct. */
typedef enum { RN_CONV_AUTO, RN_CONV_DIRECT } RnConvAlgorithm;
extern const char *const RnConvAlgorithmNames[]; /* "auto", "direct", NULL */
PetscErrorCode RnNetSetConvAlgorithm(RnNet net, RnConvAlgorithm algorithm);
/* One line on what runs: oneDNN version, CPU ISA, and the kernel oneDNN chose
 * for each convolution of the last batch size used (float64: "BLAS"). */
PetscErrorCode RnNetDescribeKernels(RnNet net, char *buf, size_t len);
/* Whether oneDNN has bfloat16 convolutions on this CPU (oneDNN 2.6 has
 * them on AVX-512 cores, not on AVX2 ones). */
PetscErrorCode RnDnnlHasBfloat16(PetscBool *has);
/* oneDNN's version and the CPU ISA it uses ("avx512_core_bf16", ...). */
void RnDnnlDescribe(char *buf, size_t len);

/* Losses on a batch. They return the SUM over the batch (callers divide);
 * grad (may be NULL) receives d(sum)/d(input). */
PetscErrorCode RnLossSquaredError(int batch, int dim, const double *pred, const double *target, double *loss_sum, double *grad);
/* Softmax cross-entropy on logits; correct (may be NULL) counts argmax hits. */
PetscErrorCode RnLossSoftmaxCrossEntropy(int batch, int nclasses, const double *logits, const int *labels, double *loss_sum, double *grad, int *correct);

/* A Net from a config list of layer groups, e.g.
 *   field = ( { type = "cube"; }, { type = "dense"; out = 50; activation = "tanh"; },
 *             { type = "dense"; out = 2; } );
 * types: dense (out, activation), scale (y = theta * x), conv (channels, kernel, stride, pad,
 * activation), batchnorm (momentum), avgpool (size), globalavgpool, and the
 * activations identity, tanh, relu, softplus, cube, gelu. Batch norm reduces its
 * statistics over comm. */
PetscErrorCode RnNetCreateFromConfig(RnConfig cfg, const char *key, MPI_Comm comm, RnShape in, RnNet *net);

#endif
