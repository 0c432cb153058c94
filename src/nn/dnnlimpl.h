/* dnnlimpl.h: the oneDNN backend's private header (float32 and bfloat16
 * Nets; see dnnl_net.c for what the backend does). Shared by
 *   dnnl_plan.c     the engine, layouts and the primitives of a batch size;
 *   dnnl_kernels.c  our own loops: conversions, relu, batch norm, pooling, dense;
 *   dnnl_activation.c  the smooth activations (vector libm);
 *   dnnl_net.c      compiling a Net into a program, and its passes. */
#ifndef RESNODE_DNNLIMPL_H
#define RESNODE_DNNLIMPL_H

#include "nnimpl.h"

#include <dnnl.h>
#include <dnnl_debug.h>
#include <stdint.h>
#include <string.h>

#define DnnlCall(expr) \
  do { \
    dnnl_status_t s_ = (expr); \
    PetscCheck(s_ == dnnl_success, PETSC_COMM_SELF, PETSC_ERR_LIB, "oneDNN: %s: %s", #expr, dnnl_status2str(s_)); \
  } while (0)

#define RN_MAX_PLANS 4 /* batch sizes whose primitives are kept (train, eval, a last partial batch) */


/* ---- bfloat16 and layouts ---- */

static inline float Bf16ToFloat(uint16_t h)
{
  uint32_t u = (uint32_t)h << 16;
  float f;
  memcpy(&f, &u, sizeof f);
  return f;
}

static inline uint16_t FloatToBf16(float f)
{
  uint32_t u;
  memcpy(&u, &f, sizeof u);
  if ((u & 0x7fffffffu) > 0x7f800000u) return (uint16_t)((u >> 16) | 0x40); /* quiet NaN */
  u += 0x7fffu + ((u >> 16) & 1u);                                          /* round to nearest even */
  return (uint16_t)(u >> 16);
}

/* Element (n, c, s) of a tensor with C channels in blocks of blk (Cb blocks)
 * over HW spatial positions is at ((n Cb + c / blk) HW + s) blk + c % blk:
 * nchw is blk = 1, nhwc is blk = C (Cb = 1), nChw16c is blk = 16. */
typedef struct {
  int C, Cb, blk, HW;
  dnnl_data_type_t dt;
} Layout;

static inline size_t LayoutBase(const Layout *L, size_t n, int c) { return ((n * (size_t)L->Cb + (size_t)(c / L->blk)) * (size_t)L->HW) * (size_t)L->blk + (size_t)(c % L->blk); }
static inline size_t LayoutSampleElems(const Layout *L) { return (size_t)L->Cb * L->blk * L->HW; }
static inline size_t DtSize(dnnl_data_type_t dt) { return dt == dnnl_bf16 ? 2 : 4; }
static inline PetscBool LayoutPadded(const Layout *L) { return (PetscBool)(L->Cb * L->blk != L->C); }

static inline float Load(const void *p, dnnl_data_type_t dt, size_t i) { return dt == dnnl_bf16 ? Bf16ToFloat(((const uint16_t *)p)[i]) : ((const float *)p)[i]; }
static inline void Store(void *p, dnnl_data_type_t dt, size_t i, float v)
{
  if (dt == dnnl_bf16) ((uint16_t *)p)[i] = FloatToBf16(v);
  else ((float *)p)[i] = v;
}


/* ---- the program ---- */

typedef enum { OP_CONV, OP_RELU, OP_ACT, OP_BN, OP_POOL, OP_DENSE } OpKind;

typedef struct {
  OpKind kind;
  RnLayer layer;      /* the float64 layer: shapes, constants, batch-norm state */
  PetscInt theta_off; /* its parameter slice in the Net's theta */
  PetscBool relu;     /* conv: a relu is fused after it */
  RnActivation act;   /* OP_ACT: tanh, softplus or gelu (relu is OP_RELU or fused) */
  int in, out;        /* tensor indices */
  float *w;           /* float32 copy of the parameters (conv: oihw then bias; dense: W then b) */
  double *mean, *invstd; /* batch norm: statistics of the last training batch */
} Op;

typedef struct {
  RnShape shape;
  PetscBool conv_reads, conv_writes; /* a convolution takes it as src / produces it */
  size_t bound;  /* bytes per sample reserved in the tape */
  size_t offset; /* per-sample byte offset in the tape: the batch's region starts at batch * offset */
} Tensor;

/* Per-conv primitives of one batch size. */
typedef struct {
  dnnl_primitive_t fwd, bwd_data, bwd_weights, reorder_fwd, reorder_bwd, reorder_dw;
  dnnl_memory_desc_t src_md, dst_md, dsrc_md, ddst_md, w_md, wb_md, wplain_md, b_md, dw_md;
  void *w_fwd, *w_bwd; /* converted weights: for the forward and the backward-data kernel */
  void *dw_kernel;     /* the weight gradient in the kernel's layout, when it is not oihw */
  int Kp, Cp;          /* output and input channels as oneDNN sees them (padded in blocked mode) */
  float *wpad;         /* float32 weights (Kp x Cp x k x k, oihw) then bias (Kp), zero where padded */
  float *dw;           /* weight gradient, float32 oihw, then the bias gradient (padded as wpad) */
  char impl[3][64];
} ConvPlan;

typedef struct {
  int batch;
  long weights_version;
  Layout *L, *dL;          /* per tensor: forward and gradient layouts */
  dnnl_memory_desc_t *md;  /* per tensor (conv-facing ones only) */
  ConvPlan *conv;          /* per op (used for convolutions) */
  void *scratch, *diff[2]; /* oneDNN scratchpad; gradient ping-pong buffers */
  size_t scratch_bytes, diff_bytes;
  long last_use;
} Plan;

typedef struct DnnlProgram_s *DnnlProgram;
struct DnnlProgram_s {
  RnPrecision precision;
  int nops, ntensors;
  Op *ops;
  Tensor *tensors;
  double *theta_seen; /* parameters the float32 copies were made from */
  RnConvAlgorithm algorithm;
  long version, clock;
  Plan plans[RN_MAX_PLANS];
};


/* Every buffer oneDNN reads or writes is 64-byte aligned: the Winograd
 * kernels store with vmovntps, which faults on anything less. */
#define RN_ALIGN RN_ALIGNMENT
/* The widest channel block oneDNN chooses (nChw16c): tensors are reserved
 * for their channels padded to it. */
#define DNNL_CHANNEL_BLOCK 16

/* Execute prim with up to 6 (arg, md, pointer) triples plus the scratchpad. */
typedef struct {
  int arg;
  const dnnl_memory_desc_t *md;
  void *ptr;
} ExecArg;

static inline dnnl_data_type_t ComputeType(DnnlProgram p) { return p->precision == RN_PRECISION_BFLOAT16 ? dnnl_bf16 : dnnl_f32; }

/* Data type of a tensor and of its gradient: bfloat16 where a bfloat16
 * convolution reads it (forward) or produces it (gradient), float32 else. */
static inline dnnl_data_type_t TensorType(DnnlProgram p, const Tensor *t) { return p->precision == RN_PRECISION_BFLOAT16 && t->conv_reads ? dnnl_bf16 : dnnl_f32; }
static inline dnnl_data_type_t GradType(DnnlProgram p, const Tensor *t) { return p->precision == RN_PRECISION_BFLOAT16 && t->conv_writes ? dnnl_bf16 : dnnl_f32; }


/* The tape's tensors start at its first 64-byte boundary (tape_per_sample has the slack). */
static inline void *TapeTensor(DnnlProgram p, double *tape, int batch, int t) { return (char *)(((uintptr_t)tape + RN_ALIGN - 1) / RN_ALIGN * RN_ALIGN) + (size_t)batch * p->tensors[t].offset; }


/* across the backend's files */
PetscErrorCode DnnlExecute(dnnl_primitive_t prim, Plan *plan, int n, const ExecArg *a);
PetscErrorCode DnnlPlanDestroy(Plan *plan, DnnlProgram p);
PetscErrorCode DnnlPlanGet(DnnlProgram p, int batch, Plan **out);
PetscErrorCode DnnlPlanWeights(RnNet net, Plan *plan, const double *theta);
void DnnlFromDouble(const Layout *L, int batch, const double *x, void *out);
void DnnlToDouble(const Layout *L, int batch, const void *in, double *x);
void DnnlReluForward(const Layout *Li, const void *x, const Layout *Lo, void *y, int batch);
void DnnlReluBackward(const Layout *Ly, const void *y, const Layout *dLy, const void *dy, const Layout *dLx, void *dx, int batch);
void DnnlReluMaskInPlace(const Layout *Ly, const void *y, const Layout *dL, void *g, int batch);
void DnnlActivationForward(RnActivation act, const Layout *Li, const void *x, const Layout *Lo, void *y, int batch);
void DnnlActivationBackward(RnActivation act, const Layout *Lx, const void *x, const Layout *dLy, const void *dy, const Layout *dLx, void *dx, int batch);
PetscErrorCode DnnlBatchNormForward(Op *op, const double *theta, const Layout *Li, const void *x, const Layout *Lo, void *y, int batch);
PetscErrorCode DnnlBatchNormBackward(Op *op, const double *theta, const Layout *Lx, const void *x, const Layout *dLy, const void *dy, const Layout *dLx, void *dx, double *dtheta, int batch);
void DnnlPoolForward(RnLayer l, const Layout *Li, const void *x, const Layout *Lo, void *y, int batch);
void DnnlPoolBackward(RnLayer l, const Layout *dLy, const void *dy, const Layout *dLx, void *dx, int batch);
void DnnlDenseForward(const Op *op, const float *x, float *y, int batch);
PetscErrorCode DnnlDenseBackward(const Op *op, const float *x, const float *dy, float *dx, double *dtheta, int batch);

#endif
