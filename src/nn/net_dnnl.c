/* net_dnnl.c: a Net run in float32 or bfloat16 through oneDNN (RnNetSetPrecision).
 *
 * The Net's layers stay what they are (shapes, parameter slices, init,
 * batch-norm state); this file compiles them into a program of ops:
 *   conv   oneDNN convolution forward / backward data / backward weights, a
 *          following relu fused as a post-op;
 *   relu, batch norm, average pooling, dense   our own loops (memory-bound or
 *          tiny), batch-norm sums reduced over the layer's communicator as
 *          in the float64 layer.
 * Between ops a tensor lives in the layout oneDNN chose for the convolution
 * that touches it (blocked nChw16c, nhwc or plain nchw: all three are
 * "channel blocks of blk channels"), so a tied block never reorders inside.
 * In bfloat16 a tensor that a convolution reads is stored in bfloat16, every
 * other one in float32; convolutions accumulate in float32, weight gradients
 * are float32. The double tape given by the caller holds the tensors of the
 * batch; conversions from and to double happen at the Net's input and
 * output only, and the parameters are converted when theta changes. */
#include "resnode/nn/layers.h"

#include <cblas.h>
#include <dnnl.h>
#include <dnnl_debug.h>
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

const char *const RnPrecisionNames[] = {"float64", "float32", "bfloat16", NULL};
const char *const RnConvAlgorithmNames[] = {"auto", "direct", NULL};

double RnPrecisionEpsilon(RnPrecision p) { return p == RN_PRECISION_FLOAT64 ? 0x1p-53 : (p == RN_PRECISION_FLOAT32 ? 0x1p-24 : 0x1p-8); }

#define DnnlCall(expr) \
  do { \
    dnnl_status_t s_ = (expr); \
    PetscCheck(s_ == dnnl_success, PETSC_COMM_SELF, PETSC_ERR_LIB, "oneDNN: %s: %s", #expr, dnnl_status2str(s_)); \
  } while (0)

#define RN_MAX_PLANS 4 /* batch sizes whose primitives are kept (train, eval, a last partial batch) */

static dnnl_engine_t rn_engine;
static dnnl_stream_t rn_stream;

static PetscErrorCode DnnlFinalize(void)
{
  PetscFunctionBeginUser;
  if (rn_stream) DnnlCall(dnnl_stream_destroy(rn_stream));
  if (rn_engine) DnnlCall(dnnl_engine_destroy(rn_engine));
  rn_stream = NULL, rn_engine = NULL;
  PetscFunctionReturn(0);
}

static PetscErrorCode DnnlEngine(void)
{
  PetscFunctionBeginUser;
  if (rn_engine) PetscFunctionReturn(0);
  DnnlCall(dnnl_engine_create(&rn_engine, dnnl_cpu, 0));
  DnnlCall(dnnl_stream_create(&rn_stream, rn_engine, dnnl_stream_default_flags));
  PetscCall(PetscRegisterFinalize(DnnlFinalize));
  PetscFunctionReturn(0);
}

static const char *IsaName(dnnl_cpu_isa_t isa)
{
  switch (isa) {
  case dnnl_cpu_isa_sse41: return "sse41";
  case dnnl_cpu_isa_avx: return "avx";
  case dnnl_cpu_isa_avx2: return "avx2";
  case dnnl_cpu_isa_avx2_vnni: return "avx2_vnni";
  case dnnl_cpu_isa_avx512_core: return "avx512_core";
  case dnnl_cpu_isa_avx512_core_vnni: return "avx512_core_vnni";
  case dnnl_cpu_isa_avx512_core_bf16: return "avx512_core_bf16";
  case dnnl_cpu_isa_avx512_core_amx: return "avx512_core_amx";
  default: return "other";
  }
}

void RnDnnlDescribe(char *buf, size_t len)
{
  const dnnl_version_t *v = dnnl_version();
  snprintf(buf, len, "oneDNN %d.%d.%d, ISA %s", v->major, v->minor, v->patch, IsaName(dnnl_get_effective_cpu_isa()));
}

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

static PetscErrorCode LayoutFromDesc(const dnnl_memory_desc_t *md, RnShape s, Layout *L)
{
  const dnnl_blocking_desc_t *b = &md->format_desc.blocking;
  const dnnl_dim_t C = s.c, HW = (dnnl_dim_t)s.h * s.w, W = s.w;

  PetscFunctionBeginUser;
  L->C = s.c, L->HW = s.h * s.w, L->dt = md->data_type;
  PetscCheck(md->format_kind == dnnl_blocked && md->offset0 == 0 && (md->ndims == 4 || md->ndims == 2), PETSC_COMM_SELF, PETSC_ERR_SUP, "oneDNN chose a layout this program cannot address");
  if (md->ndims == 2) { /* (batch, features): plain */
    L->Cb = s.c, L->blk = 1;
    PetscFunctionReturn(0);
  }
  if (b->inner_nblks == 0 && b->strides[1] == 1 && b->strides[3] == C && b->strides[2] == W * C && b->strides[0] == HW * C) {
    L->Cb = 1, L->blk = s.c; /* nhwc */
  } else if (b->inner_nblks == 0 && b->strides[3] == 1 && b->strides[2] == W && b->strides[1] == HW && b->strides[0] == C * HW) {
    L->Cb = s.c, L->blk = 1; /* nchw */
  } else if (b->inner_nblks == 1 && b->inner_idxs[0] == 1) {
    const dnnl_dim_t k = b->inner_blks[0], Cb = md->padded_dims[1] / k;
    PetscCheck(b->strides[3] == k && b->strides[2] == W * k && b->strides[1] == HW * k && b->strides[0] == Cb * HW * k, PETSC_COMM_SELF, PETSC_ERR_SUP,
               "oneDNN chose a channel-blocked layout in an order this program cannot address");
    L->Cb = (int)Cb, L->blk = (int)k; /* nChw<k>c */
  } else SETERRQ(PETSC_COMM_SELF, PETSC_ERR_SUP, "oneDNN chose a layout this program cannot address (%d inner blocks)", b->inner_nblks);
  PetscFunctionReturn(0);
}

/* ---- the program ---- */

typedef enum { OP_CONV, OP_RELU, OP_BN, OP_POOL, OP_DENSE } OpKind;

typedef struct {
  OpKind kind;
  RnLayer layer;      /* the float64 layer: shapes, constants, batch-norm state */
  PetscInt theta_off; /* its parameter slice in the Net's theta */
  PetscBool relu;     /* conv: a relu is fused after it */
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

struct RnNetLowp_s {
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
#define RN_ALIGN 64

static PetscErrorCode AlignedMalloc(size_t bytes, void **ptr)
{
  PetscFunctionBeginUser;
  *ptr = aligned_alloc(RN_ALIGN, (bytes + RN_ALIGN - 1) / RN_ALIGN * RN_ALIGN);
  PetscCheck(*ptr, PETSC_COMM_SELF, PETSC_ERR_MEM, "out of memory allocating %zu bytes for oneDNN", bytes);
  memset(*ptr, 0, bytes);
  PetscFunctionReturn(0);
}

static void AlignedFree(void **ptr)
{
  free(*ptr);
  *ptr = NULL;
}

static PetscErrorCode MemoryCreate(const dnnl_memory_desc_t *md, void *ptr, dnnl_memory_t *m)
{
  PetscFunctionBeginUser;
  DnnlCall(dnnl_memory_create(m, md, rn_engine, ptr ? ptr : DNNL_MEMORY_NONE));
  PetscFunctionReturn(0);
}

/* Execute prim with up to 6 (arg, md, pointer) triples plus the scratchpad. */
typedef struct {
  int arg;
  const dnnl_memory_desc_t *md;
  void *ptr;
} ExecArg;

static PetscErrorCode Execute(dnnl_primitive_t prim, Plan *plan, int n, const ExecArg *a)
{
  dnnl_exec_arg_t args[8];
  dnnl_memory_t mem[8];
  const dnnl_memory_desc_t *smd;
  const_dnnl_primitive_desc_t pd;
  int k = 0;

  PetscFunctionBeginUser;
  for (; k < n; k++) {
    PetscCall(MemoryCreate(a[k].md, a[k].ptr, &mem[k]));
    args[k].arg = a[k].arg, args[k].memory = mem[k];
  }
  DnnlCall(dnnl_primitive_get_primitive_desc(prim, &pd));
  smd = dnnl_primitive_desc_query_md(pd, dnnl_query_scratchpad_md, 0);
  if (smd && dnnl_memory_desc_get_size(smd) > 0) {
    PetscCall(MemoryCreate(smd, plan->scratch, &mem[k]));
    args[k].arg = DNNL_ARG_SCRATCHPAD, args[k].memory = mem[k];
    k++;
  }
  DnnlCall(dnnl_primitive_execute(prim, rn_stream, k, args));
  DnnlCall(dnnl_stream_wait(rn_stream));
  for (int i = 0; i < k; i++) DnnlCall(dnnl_memory_destroy(mem[i]));
  PetscFunctionReturn(0);
}

static PetscErrorCode PrimitiveCreate(const_dnnl_op_desc_t desc, const_dnnl_primitive_attr_t attr, const_dnnl_primitive_desc_t hint, dnnl_primitive_desc_t *pd, dnnl_primitive_t *prim,
                                      size_t *scratch_bytes, char *impl, size_t impl_len)
{
  const char *name = NULL;
  const dnnl_memory_desc_t *smd;

  PetscFunctionBeginUser;
  DnnlCall(dnnl_primitive_desc_create(pd, desc, attr, rn_engine, hint));
  DnnlCall(dnnl_primitive_create(prim, *pd));
  smd = dnnl_primitive_desc_query_md(*pd, dnnl_query_scratchpad_md, 0);
  if (smd) *scratch_bytes = PetscMax(*scratch_bytes, dnnl_memory_desc_get_size(smd));
  if (impl) {
    DnnlCall(dnnl_primitive_desc_query(*pd, dnnl_query_impl_info_str, 0, &name));
    snprintf(impl, impl_len, "%s", name ? name : "?");
  }
  PetscFunctionReturn(0);
}

/* The primitive for desc with Winograd when asked and oneDNN has a kernel for
 * it, else desc_direct (the same operation with direct convolution). */
static PetscErrorCode ConvPrimitiveCreate(const dnnl_convolution_desc_t *desc, const dnnl_convolution_desc_t *desc_direct, const_dnnl_primitive_attr_t attr, const_dnnl_primitive_desc_t hint,
                                          dnnl_primitive_desc_t *pd, dnnl_primitive_t *prim, size_t *scratch_bytes, char *impl, size_t impl_len)
{
  PetscFunctionBeginUser;
  if (desc && dnnl_primitive_desc_create(pd, desc, attr, rn_engine, hint) == dnnl_success) {
    DnnlCall(dnnl_primitive_desc_destroy(*pd));
    PetscCall(PrimitiveCreate(desc, attr, hint, pd, prim, scratch_bytes, impl, impl_len));
  } else PetscCall(PrimitiveCreate(desc_direct, attr, hint, pd, prim, scratch_bytes, impl, impl_len));
  PetscFunctionReturn(0);
}

static PetscErrorCode ReorderCreate(const dnnl_memory_desc_t *from, const dnnl_memory_desc_t *to, dnnl_primitive_t *prim)
{
  dnnl_primitive_desc_t pd;

  PetscFunctionBeginUser;
  DnnlCall(dnnl_reorder_primitive_desc_create(&pd, from, rn_engine, to, rn_engine, NULL));
  DnnlCall(dnnl_primitive_create(prim, pd));
  DnnlCall(dnnl_primitive_desc_destroy(pd));
  PetscFunctionReturn(0);
}

static dnnl_data_type_t ComputeType(RnNetLowp p) { return p->precision == RN_PRECISION_BFLOAT16 ? dnnl_bf16 : dnnl_f32; }

/* Data type of a tensor and of its gradient: bfloat16 where a bfloat16
 * convolution reads it (forward) or produces it (gradient), float32 else. */
static dnnl_data_type_t TensorType(RnNetLowp p, const Tensor *t) { return p->precision == RN_PRECISION_BFLOAT16 && t->conv_reads ? dnnl_bf16 : dnnl_f32; }
static dnnl_data_type_t GradType(RnNetLowp p, const Tensor *t) { return p->precision == RN_PRECISION_BFLOAT16 && t->conv_writes ? dnnl_bf16 : dnnl_f32; }

static void PlainLayout(RnShape s, dnnl_data_type_t dt, Layout *L)
{
  L->C = s.c, L->Cb = s.c, L->blk = 1, L->HW = s.h * s.w, L->dt = dt;
}

static PetscErrorCode PlanDestroy(Plan *plan, RnNetLowp p)
{
  PetscFunctionBeginUser;
  if (!plan->batch) PetscFunctionReturn(0);
  for (int i = 0; i < p->nops; i++) {
    ConvPlan *c = &plan->conv[i];
    if (p->ops[i].kind != OP_CONV) continue;
    if (c->fwd) DnnlCall(dnnl_primitive_destroy(c->fwd));
    if (c->bwd_data) DnnlCall(dnnl_primitive_destroy(c->bwd_data));
    if (c->bwd_weights) DnnlCall(dnnl_primitive_destroy(c->bwd_weights));
    if (c->reorder_fwd) DnnlCall(dnnl_primitive_destroy(c->reorder_fwd));
    if (c->reorder_bwd) DnnlCall(dnnl_primitive_destroy(c->reorder_bwd));
    if (c->reorder_dw) DnnlCall(dnnl_primitive_destroy(c->reorder_dw));
    AlignedFree(&c->dw_kernel);
    AlignedFree(&c->w_fwd);
    AlignedFree(&c->w_bwd);
    AlignedFree((void **)&c->dw);
    AlignedFree((void **)&c->wpad);
  }
  PetscCall(PetscFree(plan->conv));
  PetscCall(PetscFree3(plan->L, plan->dL, plan->md));
  AlignedFree(&plan->scratch);
  AlignedFree(&plan->diff[0]);
  AlignedFree(&plan->diff[1]);
  PetscCall(PetscMemzero(plan, sizeof *plan));
  PetscFunctionReturn(0);
}

static PetscErrorCode ActivationDesc(RnShape s, int batch, dnnl_data_type_t dt, dnnl_format_tag_t tag, dnnl_memory_desc_t *md)
{
  const dnnl_dims_t dims = {batch, s.c, s.h, s.w};

  PetscFunctionBeginUser;
  DnnlCall(dnnl_memory_desc_init_by_tag(md, 4, dims, dt, tag));
  PetscFunctionReturn(0);
}

/* The convolution primitives of op i for a batch size, fixing the layouts
 * of its input and output tensors (the input's may be fixed already). */
static PetscErrorCode PlanConv(RnNetLowp p, Plan *plan, int i, PetscBool *fixed, PetscBool blocked)
{
  Op *op = &p->ops[i];
  ConvPlan *c = &plan->conv[i];
  RnLayer l = op->layer;
  const int B = plan->batch, k = l->info.k;
  const PetscBool dense_next = (PetscBool)(i + 1 < p->nops && p->ops[i + 1].kind == OP_DENSE);
  /* blocked: channel-blocked layouts forced where oneDNN's own choice left a reference kernel,
   * with the channels padded to whole blocks (zero weights there), RGB input excepted */
  const int bs = dnnl_get_effective_cpu_isa() >= dnnl_cpu_isa_avx512_core ? 16 : 8;
  const dnnl_format_tag_t btag = bs == 16 ? dnnl_nChw16c : dnnl_nChw8c;
  const int Cp = blocked && !(op->in == 0 && l->in.c <= 3) ? (l->in.c + bs - 1) / bs * bs : l->in.c;
  const int Kp = blocked && !dense_next ? (l->out.c + bs - 1) / bs * bs : l->out.c;
  const RnShape sin = {Cp, l->in.h, l->in.w}, sout = {Kp, l->out.h, l->out.w};
  const dnnl_dims_t strides = {l->info.stride, l->info.stride}, pad = {l->info.pad, l->info.pad}, wdims = {Kp, Cp, k, k}, bdims = {Kp};
  const int pad_r_h = (l->out.h - 1) * l->info.stride + k - l->in.h - l->info.pad, pad_r_w = (l->out.w - 1) * l->info.stride + k - l->in.w - l->info.pad;
  const dnnl_dims_t pad_r = {pad_r_h, pad_r_w};
  Tensor *tin = &p->tensors[op->in], *tout = &p->tensors[op->out];
  const dnnl_data_type_t ct = ComputeType(p);
  dnnl_memory_desc_t src_md, dst_md, w_any, b_md, dsrc_md, ddst_md, dw_md, dw_any;
  /* Winograd: float32 3x3 stride 1 with >= 32 channels each way (at 16 it is not faster here) */
  const PetscBool wino = (PetscBool)(p->algorithm == RN_CONV_AUTO && ct == dnnl_f32 && k == 3 && l->info.stride == 1 && Cp >= 32 && Kp >= 32);
  dnnl_convolution_desc_t desc, desc_wino;
  dnnl_primitive_attr_t attr;
  dnnl_post_ops_t post;
  dnnl_primitive_desc_t fwd_pd, bd_pd, bw_pd;
  const dnnl_memory_desc_t *q;


  PetscFunctionBeginUser;
  c->Kp = Kp, c->Cp = Cp;
  if (fixed[op->in]) src_md = plan->md[op->in];
  else PetscCall(ActivationDesc(sin, B, TensorType(p, tin), blocked && Cp != l->in.c ? btag : dnnl_format_tag_any, &src_md));
  PetscCall(ActivationDesc(sout, B, TensorType(p, tout), dense_next ? dnnl_nchw : (blocked ? btag : dnnl_format_tag_any), &dst_md));
  PetscCheck(src_md.dims[1] == Cp, PETSC_COMM_SELF, PETSC_ERR_PLIB, "conv %d: input channels %d as produced, %d as consumed", i, (int)src_md.dims[1], Cp);
  DnnlCall(dnnl_memory_desc_init_by_tag(&w_any, 4, wdims, ct, dnnl_format_tag_any));
  DnnlCall(dnnl_memory_desc_init_by_tag(&b_md, 1, bdims, dnnl_f32, dnnl_x));
  DnnlCall(dnnl_memory_desc_init_by_tag(&dw_md, 4, wdims, dnnl_f32, dnnl_oihw));
  DnnlCall(dnnl_memory_desc_init_by_tag(&dw_any, 4, wdims, dnnl_f32, dnnl_format_tag_any));
  DnnlCall(dnnl_primitive_attr_create(&attr));
  DnnlCall(dnnl_primitive_attr_set_scratchpad_mode(attr, dnnl_scratchpad_mode_user));
  if (op->relu) {
    DnnlCall(dnnl_post_ops_create(&post));
    DnnlCall(dnnl_post_ops_append_eltwise(post, 1.0f, dnnl_eltwise_relu, 0.0f, 0.0f));
    DnnlCall(dnnl_primitive_attr_set_post_ops(attr, post));
    DnnlCall(dnnl_post_ops_destroy(post));
  }
  DnnlCall(dnnl_convolution_forward_desc_init(&desc, dnnl_forward_training, dnnl_convolution_direct, &src_md, &w_any, &b_md, &dst_md, strides, pad, pad_r));
  if (wino) DnnlCall(dnnl_convolution_forward_desc_init(&desc_wino, dnnl_forward_training, dnnl_convolution_winograd, &src_md, &w_any, &b_md, &dst_md, strides, pad, pad_r));
  PetscCall(ConvPrimitiveCreate(wino ? &desc_wino : NULL, &desc, attr, NULL, &fwd_pd, &c->fwd, &plan->scratch_bytes, c->impl[0], sizeof c->impl[0]));
  DnnlCall(dnnl_primitive_attr_destroy(attr));
  DnnlCall(dnnl_primitive_attr_create(&attr));
  DnnlCall(dnnl_primitive_attr_set_scratchpad_mode(attr, dnnl_scratchpad_mode_user));
  c->src_md = *dnnl_primitive_desc_query_md(fwd_pd, dnnl_query_src_md, 0);
  c->dst_md = *dnnl_primitive_desc_query_md(fwd_pd, dnnl_query_dst_md, 0);
  c->w_md = *dnnl_primitive_desc_query_md(fwd_pd, dnnl_query_weights_md, 0);
  c->b_md = b_md;
  plan->md[op->in] = c->src_md, plan->md[op->out] = c->dst_md;
  fixed[op->in] = fixed[op->out] = PETSC_TRUE;
  PetscCall(LayoutFromDesc(&c->src_md, l->in, &plan->L[op->in]));
  PetscCall(LayoutFromDesc(&c->dst_md, l->out, &plan->L[op->out]));
  /* gradients: the layouts of the tensors, in their gradient types */
  dsrc_md = c->src_md, ddst_md = c->dst_md;
  dsrc_md.data_type = GradType(p, tin), ddst_md.data_type = GradType(p, tout);
  plan->dL[op->in] = plan->L[op->in], plan->dL[op->out] = plan->L[op->out];
  plan->dL[op->in].dt = dsrc_md.data_type, plan->dL[op->out].dt = ddst_md.data_type;
  c->dsrc_md = dsrc_md, c->ddst_md = ddst_md;
  DnnlCall(dnnl_convolution_backward_data_desc_init(&desc, dnnl_convolution_direct, &dsrc_md, &w_any, &ddst_md, strides, pad, pad_r));
  if (wino) DnnlCall(dnnl_convolution_backward_data_desc_init(&desc_wino, dnnl_convolution_winograd, &dsrc_md, &w_any, &ddst_md, strides, pad, pad_r));
  PetscCall(ConvPrimitiveCreate(wino ? &desc_wino : NULL, &desc, attr, fwd_pd, &bd_pd, &c->bwd_data, &plan->scratch_bytes, c->impl[1], sizeof c->impl[1]));
  q = dnnl_primitive_desc_query_md(bd_pd, dnnl_query_weights_md, 0);
  c->wb_md = *q;
  /* the weight gradient in the kernel's own layout (a plain one can force a reference kernel), reordered to oihw */
  DnnlCall(dnnl_convolution_backward_weights_desc_init(&desc, dnnl_convolution_direct, &c->src_md, &dw_any, &b_md, &ddst_md, strides, pad, pad_r));
  if (wino) DnnlCall(dnnl_convolution_backward_weights_desc_init(&desc_wino, dnnl_convolution_winograd, &c->src_md, &dw_any, &b_md, &ddst_md, strides, pad, pad_r));
  PetscCall(ConvPrimitiveCreate(wino ? &desc_wino : NULL, &desc, attr, fwd_pd, &bw_pd, &c->bwd_weights, &plan->scratch_bytes, c->impl[2], sizeof c->impl[2]));
  c->dw_md = *dnnl_primitive_desc_query_md(bw_pd, dnnl_query_diff_weights_md, 0);
  if (!dnnl_memory_desc_equal(&c->dw_md, &dw_md)) {
    PetscCall(ReorderCreate(&c->dw_md, &dw_md, &c->reorder_dw));
    PetscCall(AlignedMalloc(dnnl_memory_desc_get_size(&c->dw_md), &c->dw_kernel));
  }
  DnnlCall(dnnl_primitive_attr_destroy(attr));
  /* weights: float32 oihw -> the kernels' layouts and type */
  c->wplain_md = dw_md;
  PetscCall(ReorderCreate(&c->wplain_md, &c->w_md, &c->reorder_fwd));
  PetscCall(AlignedMalloc(dnnl_memory_desc_get_size(&c->w_md), &c->w_fwd));
  if (!dnnl_memory_desc_equal(&c->wb_md, &c->w_md)) {
    PetscCall(ReorderCreate(&c->wplain_md, &c->wb_md, &c->reorder_bwd));
    PetscCall(AlignedMalloc(dnnl_memory_desc_get_size(&c->wb_md), &c->w_bwd));
  }
  PetscCall(AlignedMalloc(sizeof(float) * ((size_t)Kp * Cp * k * k + Kp), (void **)&c->dw));
  PetscCall(AlignedMalloc(sizeof(float) * ((size_t)Kp * Cp * k * k + Kp), (void **)&c->wpad));
  DnnlCall(dnnl_primitive_desc_destroy(fwd_pd));
  DnnlCall(dnnl_primitive_desc_destroy(bd_pd));
  DnnlCall(dnnl_primitive_desc_destroy(bw_pd));
  PetscFunctionReturn(0);
}

static PetscBool PlanHasReferenceKernel(RnNetLowp p, const Plan *plan)
{
  for (int i = 0; i < p->nops; i++)
    for (int k = 0; p->ops[i].kind == OP_CONV && k < 3; k++)
      if (!strncmp(plan->conv[i].impl[k], "ref", 3)) return PETSC_TRUE;
  return PETSC_FALSE;
}

static PetscErrorCode PlanCreate(RnNetLowp p, int batch, Plan *plan, PetscBool blocked)
{
  PetscBool *fixed;
  size_t maxg = 0;

  PetscFunctionBeginUser;
  PetscCall(DnnlEngine());
  plan->batch = batch;
  plan->weights_version = -1;
  PetscCall(PetscCalloc3(p->ntensors, &plan->L, p->ntensors, &plan->dL, p->ntensors, &plan->md));
  PetscCall(PetscCalloc1(p->nops, &plan->conv));
  PetscCall(PetscCalloc1(p->ntensors, &fixed));
  /* convolutions first: they choose the layouts of the tensors they touch */
  for (int i = 0; i < p->nops; i++)
    if (p->ops[i].kind == OP_CONV) PetscCall(PlanConv(p, plan, i, fixed, blocked));
  if (!blocked && PlanHasReferenceKernel(p, plan)) {
    PetscCall(PetscFree(fixed));
    /* oneDNN's layouts for few channels leave a reference kernel (hundreds of
     * times slower) for a backward pass: blocked layouts have fast ones */
    PetscCall(PlanDestroy(plan, p));
    PetscCall(PlanCreate(p, batch, plan, PETSC_TRUE));
    PetscFunctionReturn(0);
  }
  /* the rest is plain (nchw) */
  for (int t = 0; t < p->ntensors; t++) {
    if (!fixed[t]) {
      PlainLayout(p->tensors[t].shape, TensorType(p, &p->tensors[t]), &plan->L[t]);
      plan->dL[t] = plan->L[t];
      plan->dL[t].dt = GradType(p, &p->tensors[t]);
    }
    PetscCheck(LayoutSampleElems(&plan->L[t]) * DtSize(plan->L[t].dt) <= p->tensors[t].bound, PETSC_COMM_SELF, PETSC_ERR_PLIB, "oneDNN padded tensor %d beyond the tape's reserve", t);
    maxg = PetscMax(maxg, LayoutSampleElems(&plan->dL[t]) * DtSize(plan->dL[t].dt));
  }
  PetscCall(PetscFree(fixed));
  plan->diff_bytes = maxg * (size_t)batch;
  PetscCall(AlignedMalloc(plan->diff_bytes, &plan->diff[0]));
  PetscCall(AlignedMalloc(plan->diff_bytes, &plan->diff[1]));
  if (plan->scratch_bytes) PetscCall(AlignedMalloc(plan->scratch_bytes, &plan->scratch));
  PetscFunctionReturn(0);
}

static PetscErrorCode PlanGet(RnNetLowp p, int batch, Plan **out)
{
  Plan *victim = &p->plans[0];

  PetscFunctionBeginUser;
  p->clock++;
  for (int i = 0; i < RN_MAX_PLANS; i++)
    if (p->plans[i].batch == batch) {
      p->plans[i].last_use = p->clock;
      *out = &p->plans[i];
      PetscFunctionReturn(0);
    }
  for (int i = 1; i < RN_MAX_PLANS; i++)
    if (p->plans[i].last_use < victim->last_use) victim = &p->plans[i];
  PetscCall(PlanDestroy(victim, p));
  PetscCall(PlanCreate(p, batch, victim, PETSC_FALSE));
  victim->last_use = p->clock;
  *out = victim;
  PetscFunctionReturn(0);
}

/* The float32 copies of the parameters when theta changed, and the kernels'
 * weights of the plan when they are older than that. */
static PetscErrorCode PlanWeights(RnNet net, Plan *plan, const double *theta)
{
  RnNetLowp p = net->lowp;

  PetscFunctionBeginUser;
  if (p->version < 0 || memcmp(theta, p->theta_seen, sizeof(double) * (size_t)net->nparams)) {
    PetscCall(PetscArraycpy(p->theta_seen, theta, net->nparams));
    for (int i = 0; i < p->nops; i++) {
      Op *op = &p->ops[i];
      if (!op->w) continue;
      for (PetscInt j = 0; j < op->layer->nparams; j++) op->w[j] = (float)theta[op->theta_off + j];
    }
    p->version++;
  }
  if (plan->weights_version == p->version) PetscFunctionReturn(0);
  for (int i = 0; i < p->nops; i++) {
    ConvPlan *c = &plan->conv[i];
    RnLayer l = p->ops[i].layer;
    const int K = l->out.c, C = l->in.c, kk = l->info.k * l->info.k;
    if (p->ops[i].kind != OP_CONV) continue;
    for (int o = 0; o < K; o++) {
      for (int ci = 0; ci < C; ci++) PetscCall(PetscArraycpy(c->wpad + ((size_t)o * c->Cp + ci) * kk, p->ops[i].w + ((size_t)o * C + ci) * kk, kk));
      c->wpad[(size_t)c->Kp * c->Cp * kk + o] = p->ops[i].w[(size_t)K * C * kk + o];
    }
    {
      ExecArg a[2] = {{DNNL_ARG_FROM, &c->wplain_md, c->wpad}, {DNNL_ARG_TO, &c->w_md, c->w_fwd}};
      PetscCall(Execute(c->reorder_fwd, plan, 2, a));
    }
    if (c->reorder_bwd) {
      ExecArg a[2] = {{DNNL_ARG_FROM, &c->wplain_md, c->wpad}, {DNNL_ARG_TO, &c->wb_md, c->w_bwd}};
      PetscCall(Execute(c->reorder_bwd, plan, 2, a));
    }
  }
  plan->weights_version = p->version;
  PetscFunctionReturn(0);
}

/* The tape's tensors start at its first 64-byte boundary (tape_per_sample has the slack). */
static inline void *TapeTensor(RnNetLowp p, double *tape, int batch, int t) { return (char *)(((uintptr_t)tape + RN_ALIGN - 1) / RN_ALIGN * RN_ALIGN) + (size_t)batch * p->tensors[t].offset; }

/* double plain (batch, C, HW) <-> a layout (padding channels zeroed); one
 * loop per type, so that the type test is not inside the loop. */
static void FromDouble(const Layout *L, int batch, const double *x, void *out)
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

static void ToDouble(const Layout *L, int batch, const void *in, double *x)
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

static void ReluForward(const Layout *Li, const void *x, const Layout *Lo, void *y, int batch)
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
static void ReluBackward(const Layout *Ly, const void *y, const Layout *dLy, const void *dy, const Layout *dLx, void *dx, int batch)
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
static void ReluMaskInPlace(const Layout *Ly, const void *y, const Layout *dL, void *g, int batch)
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

/* per-channel sums over (batch, HW) of f(a, b), reduced over comm:
 * mode 0: sum a; 1: sum (a - mean)^2; 2: sum g and sum g * xhat with a = g, b = x */
static PetscErrorCode ChannelSums(MPI_Comm comm, const Layout *La, const void *a, const Layout *Lb, const void *b, const double *mean, const double *invstd, int batch, int mode, double *out)
{
  const int C = La->C;
  double *local;

  PetscFunctionBeginUser;
  PetscCall(PetscCalloc1(2 * C, &local));
  for (int n = 0; n < batch; n++)
    for (int c = 0; c < C; c++) {
      const size_t ba = LayoutBase(La, (size_t)n, c), bb = b ? LayoutBase(Lb, (size_t)n, c) : 0;
      double s0 = 0, s1 = 0;
      for (int s = 0; s < La->HW; s++) {
        const double v = Load(a, La->dt, ba + (size_t)s * La->blk);
        if (mode == 0) s0 += v;
        else if (mode == 1) s0 += (v - mean[c]) * (v - mean[c]);
        else {
          const double xhat = (Load(b, Lb->dt, bb + (size_t)s * Lb->blk) - mean[c]) * invstd[c];
          s0 += v, s1 += v * xhat;
        }
      }
      local[c] += s0, local[C + c] += s1;
    }
  PetscCallMPI(MPI_Allreduce(local, out, 2 * C, MPI_DOUBLE, MPI_SUM, comm));
  PetscCall(PetscFree(local));
  PetscFunctionReturn(0);
}

static PetscErrorCode BatchNormForward(Op *op, const double *theta, const Layout *Li, const void *x, const Layout *Lo, void *y, int batch)
{
  RnLayer l = op->layer;
  const int C = l->in.c, HW = l->in.h * l->in.w;
  const double *gamma = theta, *beta = theta + C, eps = l->info.eps, mom = l->info.momentum;
  double *rmean = l->state, *rvar = l->state + C, *tot, count_local = (double)batch * HW, count;

  PetscFunctionBeginUser;
  if (LayoutPadded(Lo)) memset(y, 0, (size_t)batch * LayoutSampleElems(Lo) * DtSize(Lo->dt));
  if (l->training) {
    PetscCallMPI(MPI_Allreduce(&count_local, &count, 1, MPI_DOUBLE, MPI_SUM, l->comm));
    PetscCheck(count > 1, l->comm, PETSC_ERR_ARG_SIZ, "batch norm needs more than one value per channel in a batch");
    PetscCall(PetscMalloc1(2 * C, &tot));
    PetscCall(ChannelSums(l->comm, Li, x, NULL, NULL, NULL, NULL, batch, 0, tot));
    for (int c = 0; c < C; c++) op->mean[c] = tot[c] / count;
    PetscCall(ChannelSums(l->comm, Li, x, NULL, NULL, op->mean, NULL, batch, 1, tot));
    for (int c = 0; c < C; c++) {
      const double var = tot[c] / count;
      op->invstd[c] = 1.0 / sqrt(var + eps);
      rmean[c] = (1.0 - mom) * rmean[c] + mom * op->mean[c];
      rvar[c] = (1.0 - mom) * rvar[c] + mom * var * count / (count - 1.0);
    }
    PetscCall(PetscFree(tot));
  } else
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
static PetscErrorCode BatchNormBackward(Op *op, const double *theta, const Layout *Lx, const void *x, const Layout *dLy, const void *dy, const Layout *dLx, void *dx, double *dtheta, int batch)
{
  RnLayer l = op->layer;
  const int C = l->in.c, HW = l->in.h * l->in.w;
  const double *gamma = theta;
  double *dgamma = dtheta, *dbeta = dtheta + C, *tot, count_local = (double)batch * HW, count;

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
  if (l->training) {
    PetscCallMPI(MPI_Allreduce(&count_local, &count, 1, MPI_DOUBLE, MPI_SUM, l->comm));
    PetscCall(ChannelSums(l->comm, dLy, dy, Lx, x, op->mean, op->invstd, batch, 2, tot));
    for (int c = 0; c < 2 * C; c++) tot[c] /= count;
  }
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
static void PoolForward(RnLayer l, const Layout *Li, const void *x, const Layout *Lo, void *y, int batch)
{
  const int k = l->type == RN_LAYER_GLOBALAVGPOOL ? l->in.h : l->info.k, W = l->in.w, Ho = l->out.h, Wo = l->out.w;
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

static void PoolBackward(RnLayer l, const Layout *dLy, const void *dy, const Layout *dLx, void *dx, int batch)
{
  const int k = l->type == RN_LAYER_GLOBALAVGPOOL ? l->in.h : l->info.k, H = l->in.h, W = l->in.w, Ho = l->out.h, Wo = l->out.w;
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
static void DenseForward(const Op *op, const float *x, float *y, int batch)
{
  const int in = (int)RnShapeSize(op->layer->in), out = (int)RnShapeSize(op->layer->out);
  const float *W = op->w, *b = op->w + (size_t)in * out;
  for (int s = 0; s < batch; s++) memcpy(y + (size_t)s * out, b, sizeof(float) * out);
  cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, batch, out, in, 1.0f, x, in, W, in, 1.0f, y, out);
}

static PetscErrorCode DenseBackward(const Op *op, const float *x, const float *dy, float *dx, double *dtheta, int batch)
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

PetscErrorCode RnNetLowpForward(RnNet net, int batch, const double *theta, const double *x, double *y, double *tape)
{
  RnNetLowp p = net->lowp;
  Plan *plan;

  PetscFunctionBeginUser;
  PetscCall(PlanGet(p, batch, &plan));
  PetscCall(PlanWeights(net, plan, theta));
  FromDouble(&plan->L[0], batch, x, TapeTensor(p, tape, batch, 0));
  for (int i = 0; i < p->nops; i++) {
    Op *op = &p->ops[i];
    const Layout *Li = &plan->L[op->in], *Lo = &plan->L[op->out];
    void *in = TapeTensor(p, tape, batch, op->in), *out = TapeTensor(p, tape, batch, op->out);
    switch (op->kind) {
    case OP_CONV: {
      ConvPlan *c = &plan->conv[i];
      ExecArg a[4] = {{DNNL_ARG_SRC, &c->src_md, in}, {DNNL_ARG_WEIGHTS, &c->w_md, c->w_fwd}, {DNNL_ARG_BIAS, &c->b_md, c->wpad + (size_t)c->Kp * c->Cp * op->layer->info.k * op->layer->info.k}, {DNNL_ARG_DST, &c->dst_md, out}};
      PetscCall(Execute(c->fwd, plan, 4, a));
    } break;
    case OP_RELU: ReluForward(Li, in, Lo, out, batch); break;
    case OP_BN: PetscCall(BatchNormForward(op, theta + op->theta_off, Li, in, Lo, out, batch)); break;
    case OP_POOL: PoolForward(op->layer, Li, in, Lo, out, batch); break;
    case OP_DENSE: DenseForward(op, in, out, batch); break;
    }
  }
  if (y) ToDouble(&plan->L[p->ntensors - 1], batch, TapeTensor(p, tape, batch, p->ntensors - 1), y);
  PetscFunctionReturn(0);
}

PetscErrorCode RnNetLowpBackward(RnNet net, int batch, const double *theta, const double *x, const double *dy, double *dx, double *dtheta, double *tape)
{
  RnNetLowp p = net->lowp;
  Plan *plan;
  void *g, *gnext;

  PetscFunctionBeginUser;
  PetscCall(PlanGet(p, batch, &plan));
  PetscCall(PlanWeights(net, plan, theta));
  g = plan->diff[0], gnext = plan->diff[1];
  FromDouble(&plan->dL[p->ntensors - 1], batch, dy, g);
  for (int i = p->nops - 1; i >= 0; i--) {
    Op *op = &p->ops[i];
    const PetscBool want_dx = (PetscBool)(i > 0 || dx);
    const Layout *Li = &plan->L[op->in], *Lo = &plan->L[op->out], *dLi = &plan->dL[op->in], *dLo = &plan->dL[op->out];
    void *in = TapeTensor(p, tape, batch, op->in), *out = TapeTensor(p, tape, batch, op->out);
    double *dth = dtheta + op->theta_off;
    switch (op->kind) {
    case OP_CONV: {
      ConvPlan *c = &plan->conv[i];
      const int K = op->layer->out.c, C = op->layer->in.c, kk = op->layer->info.k * op->layer->info.k;
      const size_t nw = (size_t)c->Kp * c->Cp * kk;
      if (op->relu) ReluMaskInPlace(Lo, out, dLo, g, batch);
      {
        ExecArg a[4] = {{DNNL_ARG_SRC, &c->src_md, in}, {DNNL_ARG_DIFF_DST, &c->ddst_md, g}, {DNNL_ARG_DIFF_WEIGHTS, &c->dw_md, c->dw_kernel ? c->dw_kernel : c->dw}, {DNNL_ARG_DIFF_BIAS, &c->b_md, c->dw + nw}};
        PetscCall(Execute(c->bwd_weights, plan, 4, a));
      }
      if (c->reorder_dw) {
        ExecArg a[2] = {{DNNL_ARG_FROM, &c->dw_md, c->dw_kernel}, {DNNL_ARG_TO, &c->wplain_md, c->dw}};
        PetscCall(Execute(c->reorder_dw, plan, 2, a));
      }
      for (int o = 0; o < K; o++) {
        for (int ci = 0; ci < C; ci++)
          for (int j = 0; j < kk; j++) dth[((size_t)o * C + ci) * kk + j] += c->dw[((size_t)o * c->Cp + ci) * kk + j];
        dth[(size_t)K * C * kk + o] += c->dw[nw + o];
      }
      if (want_dx) {
        ExecArg a[3] = {{DNNL_ARG_DIFF_DST, &c->ddst_md, g}, {DNNL_ARG_WEIGHTS, c->w_bwd ? &c->wb_md : &c->w_md, c->w_bwd ? c->w_bwd : c->w_fwd}, {DNNL_ARG_DIFF_SRC, &c->dsrc_md, gnext}};
        PetscCall(Execute(c->bwd_data, plan, 3, a));
      }
    } break;
    case OP_RELU:
      if (want_dx) ReluBackward(Lo, out, dLo, g, dLi, gnext, batch);
      break;
    case OP_BN: PetscCall(BatchNormBackward(op, theta + op->theta_off, Li, in, dLo, g, dLi, want_dx ? gnext : NULL, dth, batch)); break;
    case OP_POOL:
      if (want_dx) PoolBackward(op->layer, dLo, g, dLi, gnext, batch);
      break;
    case OP_DENSE:
      if (want_dx && dLi->dt != dnnl_f32) {
        /* a bfloat16 convolution reads this gradient: compute it in float32 first */
        float *tmp;
        const size_t n = (size_t)batch * LayoutSampleElems(dLi);
        PetscCall(PetscMalloc1(n, &tmp));
        PetscCall(DenseBackward(op, in, g, tmp, dth, batch));
        for (size_t j = 0; j < n; j++) Store(gnext, dLi->dt, j, tmp[j]);
        PetscCall(PetscFree(tmp));
      } else PetscCall(DenseBackward(op, in, g, want_dx ? gnext : NULL, dth, batch));
      break;
    }
    if (want_dx) {
      void *t = g;
      g = gnext, gnext = t;
    }
  }
  if (dx) ToDouble(&plan->dL[0], batch, g, dx);
  PetscFunctionReturn(0);
}

PetscErrorCode RnNetLowpDestroy(RnNetLowp *lowp)
{
  RnNetLowp p;

  PetscFunctionBeginUser;
  if (!lowp || !*lowp) PetscFunctionReturn(0);
  p = *lowp;
  for (int i = 0; i < RN_MAX_PLANS; i++) PetscCall(PlanDestroy(&p->plans[i], p));
  for (int i = 0; i < p->nops; i++) {
    PetscCall(PetscFree(p->ops[i].w));
    PetscCall(PetscFree2(p->ops[i].mean, p->ops[i].invstd));
  }
  PetscCall(PetscFree(p->ops));
  PetscCall(PetscFree(p->tensors));
  PetscCall(PetscFree(p->theta_seen));
  PetscCall(PetscFree(*lowp));
  PetscFunctionReturn(0);
}

PetscErrorCode RnNetSetPrecision(RnNet net, RnPrecision precision)
{
  RnNetLowp p;
  size_t offset = 0;

  PetscFunctionBeginUser;
  PetscCheck(net->setup, PETSC_COMM_SELF, PETSC_ERR_ARG_WRONGSTATE, "RnNetSetUp before RnNetSetPrecision");
  PetscCall(RnNetLowpDestroy(&net->lowp));
  net->precision = precision;
  net->tape_per_sample = net->tape_per_sample_f64;
  if (precision == RN_PRECISION_FLOAT64) PetscFunctionReturn(0);
  PetscCall(PetscNew(&p));
  p->precision = precision;
  p->version = -1;
  PetscCall(PetscCalloc1(net->nlayers, &p->ops));
  PetscCall(PetscCalloc1(net->nlayers + 1, &p->tensors));
  p->tensors[0].shape = net->in;
  for (int i = 0; i < net->nlayers; i++) {
    RnLayer l = net->layers[i];
    Op *op = &p->ops[p->nops];
    op->layer = l;
    op->theta_off = net->param_offset[i];
    switch (l->type) {
    case RN_LAYER_CONV2D: op->kind = OP_CONV; break;
    case RN_LAYER_BATCHNORM: op->kind = OP_BN; break;
    case RN_LAYER_AVGPOOL:
    case RN_LAYER_GLOBALAVGPOOL: op->kind = OP_POOL; break;
    case RN_LAYER_DENSE: op->kind = OP_DENSE; break;
    case RN_LAYER_ACTIVATION:
      if (l->info.act == RN_ACT_RELU) {
        if (p->nops > 0 && p->ops[p->nops - 1].kind == OP_CONV && !p->ops[p->nops - 1].relu) {
          p->ops[p->nops - 1].relu = PETSC_TRUE; /* fused into the convolution */
          p->tensors[p->nops].shape = l->out;
          continue;
        }
        op->kind = OP_RELU;
        break;
      }
      /* fall through */
    default:
      PetscCall(RnNetLowpDestroy(&p));
      RnInputError(PETSC_COMM_SELF, "model.precision = \"%s\" runs conv, relu, batchnorm, avgpool, globalavgpool and dense layers; layer %d (%s) needs model.precision = \"float64\"",
                   RnPrecisionNames[precision], i + 1, l->name);
    }
    if (op->kind == OP_CONV || op->kind == OP_DENSE) PetscCall(PetscMalloc1((size_t)l->nparams, &op->w));
    if (op->kind == OP_BN) PetscCall(PetscMalloc2(l->in.c, &op->mean, l->in.c, &op->invstd));
    op->in = p->nops, op->out = p->nops + 1;
    p->tensors[p->nops + 1].shape = l->out;
    p->nops++;
  }
  p->ntensors = p->nops + 1;
  for (int i = 0; i < p->nops; i++) {
    if (p->ops[i].kind != OP_CONV) continue;
    p->tensors[p->ops[i].in].conv_reads = PETSC_TRUE;
    p->tensors[p->ops[i].out].conv_writes = PETSC_TRUE;
  }
  for (int i = 0; i < p->nops; i++) {
    /* dense reads plain float32 */
    PetscCheck(p->ops[i].kind != OP_DENSE || !p->tensors[p->ops[i].out].conv_reads, PETSC_COMM_SELF, PETSC_ERR_SUP, "a dense layer followed by a convolution is not supported in reduced precision");
  }
  /* tape: every tensor of the batch, reserved for channels padded to 16 in float32, 64-byte aligned */
  for (int t = 0; t < p->ntensors; t++) {
    const RnShape s = p->tensors[t].shape;
    const size_t bytes = (size_t)((s.c + 15) / 16 * 16) * s.h * s.w * 4;
    p->tensors[t].offset = offset;
    p->tensors[t].bound = bytes;
    offset += (bytes + 63) / 64 * 64;
  }
  PetscCall(PetscMalloc1(net->nparams, &p->theta_seen));
  net->lowp = p;
  net->tape_per_sample = (PetscInt)((offset + RN_ALIGN + sizeof(double) - 1) / sizeof(double)); /* + the slack to align the tape */
  PetscFunctionReturn(0);
}

PetscErrorCode RnNetSetConvAlgorithm(RnNet net, RnConvAlgorithm algorithm)
{
  RnNetLowp p = net->lowp;

  PetscFunctionBeginUser;
  if (!p || p->algorithm == algorithm) PetscFunctionReturn(0);
  p->algorithm = algorithm;
  for (int i = 0; i < RN_MAX_PLANS; i++) PetscCall(PlanDestroy(&p->plans[i], p)); /* built again on next use */
  PetscFunctionReturn(0);
}

PetscErrorCode RnNetDescribeKernels(RnNet net, char *buf, size_t len)
{
  RnNetLowp p = net->lowp;
  const Plan *plan = NULL;
  size_t used;

  PetscFunctionBeginUser;
  if (!p) {
    PetscCall(PetscSNPrintf(buf, len, "float64: im2col + BLAS"));
    PetscFunctionReturn(0);
  }
  RnDnnlDescribe(buf, len);
  for (int i = 0; i < RN_MAX_PLANS; i++)
    if (p->plans[i].batch && (!plan || p->plans[i].last_use > plan->last_use)) plan = &p->plans[i];
  used = strlen(buf);
  for (int i = 0; plan && i < p->nops && used + 1 < len; i++) {
    if (p->ops[i].kind != OP_CONV) continue;
    PetscCall(PetscSNPrintf(buf + used, len - used, "; conv %dx%d %d->%d: %s / %s / %s", p->ops[i].layer->info.k, p->ops[i].layer->info.k, p->ops[i].layer->in.c, p->ops[i].layer->out.c,
                            plan->conv[i].impl[0], plan->conv[i].impl[1], plan->conv[i].impl[2]));
    used = strlen(buf);
  }
  PetscFunctionReturn(0);
}
