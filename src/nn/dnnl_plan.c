/* dnnl_plan.c: the oneDNN engine, the layouts oneDNN chooses, and the
 * primitives of one batch size (a Plan) for every convolution of a program. */
#include "dnnlimpl.h"

#include <cblas.h>
#include <dnnl.h>
#include <dnnl_debug.h>
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

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

PetscErrorCode RnDnnlHasBfloat16(PetscBool *has)
{
  static int known = -1; /* the answer, once asked */
  const dnnl_dim_t src_dims[4] = {1, 16, 4, 4}, w_dims[4] = {16, 16, 1, 1}, strides[2] = {1, 1}, pad[2] = {0, 0};
  dnnl_memory_desc_t src_md, w_md, dst_md;
  dnnl_convolution_desc_t desc;
  dnnl_primitive_desc_t pd;

  PetscFunctionBeginUser;
  if (known < 0) {
    PetscCall(DnnlEngine());
    DnnlCall(dnnl_memory_desc_init_by_tag(&src_md, 4, src_dims, dnnl_bf16, dnnl_format_tag_any));
    DnnlCall(dnnl_memory_desc_init_by_tag(&w_md, 4, w_dims, dnnl_bf16, dnnl_format_tag_any));
    DnnlCall(dnnl_memory_desc_init_by_tag(&dst_md, 4, src_dims, dnnl_f32, dnnl_format_tag_any));
    DnnlCall(dnnl_convolution_forward_desc_init(&desc, dnnl_forward_training, dnnl_convolution_direct, &src_md, &w_md, NULL, &dst_md, strides, pad, pad));
    /* "unimplemented" on a CPU without kernels for it (oneDNN 2.6: AVX2 and older) */
    known = dnnl_primitive_desc_create(&pd, &desc, NULL, rn_engine, NULL) == dnnl_success;
    if (known) DnnlCall(dnnl_primitive_desc_destroy(pd));
  }
  *has = known ? PETSC_TRUE : PETSC_FALSE;
  PetscFunctionReturn(0);
}

void RnDnnlDescribe(char *buf, size_t len)
{
  const dnnl_version_t *v = dnnl_version();
  snprintf(buf, len, "oneDNN %d.%d.%d, ISA %s", v->major, v->minor, v->patch, IsaName(dnnl_get_effective_cpu_isa()));
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


PetscErrorCode DnnlExecute(dnnl_primitive_t prim, Plan *plan, int n, const ExecArg *a)
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

static void PlainLayout(RnShape s, dnnl_data_type_t dt, Layout *L)
{
  L->C = s.c, L->Cb = s.c, L->blk = 1, L->HW = s.h * s.w, L->dt = dt;
}

PetscErrorCode DnnlPlanDestroy(Plan *plan, DnnlProgram p)
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
static PetscErrorCode PlanConv(DnnlProgram p, Plan *plan, int i, PetscBool *fixed, PetscBool blocked)
{
  Op *op = &p->ops[i];
  ConvPlan *c = &plan->conv[i];
  RnLayer l = op->layer;
  const int B = plan->batch, k = l->impl->info.k;
  const PetscBool dense_next = (PetscBool)(i + 1 < p->nops && p->ops[i + 1].kind == OP_DENSE);
  /* blocked: channel-blocked layouts forced where oneDNN's own choice left a reference kernel,
   * with the channels padded to whole blocks (zero weights there), RGB input excepted */
  const int bs = dnnl_get_effective_cpu_isa() >= dnnl_cpu_isa_avx512_core ? 16 : 8;
  const dnnl_format_tag_t btag = bs == 16 ? dnnl_nChw16c : dnnl_nChw8c;
  const int Cp = blocked && !(op->in == 0 && l->in.c <= 3) ? (l->in.c + bs - 1) / bs * bs : l->in.c;
  const int Kp = blocked && !dense_next ? (l->out.c + bs - 1) / bs * bs : l->out.c;
  const RnShape sin = {Cp, l->in.h, l->in.w}, sout = {Kp, l->out.h, l->out.w};
  const dnnl_dims_t strides = {l->impl->info.stride, l->impl->info.stride}, pad = {l->impl->info.pad, l->impl->info.pad}, wdims = {Kp, Cp, k, k}, bdims = {Kp};
  const int pad_r_h = (l->out.h - 1) * l->impl->info.stride + k - l->in.h - l->impl->info.pad, pad_r_w = (l->out.w - 1) * l->impl->info.stride + k - l->in.w - l->impl->info.pad;
  const dnnl_dims_t pad_r = {pad_r_h, pad_r_w};
  Tensor *tin = &p->tensors[op->in], *tout = &p->tensors[op->out];
  const dnnl_data_type_t ct = ComputeType(p);
  dnnl_memory_desc_t src_md, dst_md, w_any, b_md, dsrc_md, ddst_md, dw_md, dw_any;
  /* Winograd: float32 3x3 stride 1 with >= 32 channels each way (at 16 it is not faster here) */
  const PetscBool wino = (PetscBool)(p->algorithm == RN_CONV_AUTO && ct == dnnl_f32 && k == 3 && l->impl->info.stride == 1 && Cp >= 32 && Kp >= 32);
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

static PetscBool PlanHasReferenceKernel(DnnlProgram p, const Plan *plan)
{
  for (int i = 0; i < p->nops; i++)
    for (int k = 0; p->ops[i].kind == OP_CONV && k < 3; k++)
      if (!strncmp(plan->conv[i].impl[k], "ref", 3)) return PETSC_TRUE;
  return PETSC_FALSE;
}

static PetscErrorCode PlanCreate(DnnlProgram p, int batch, Plan *plan, PetscBool blocked)
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
    PetscCall(DnnlPlanDestroy(plan, p));
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

PetscErrorCode DnnlPlanGet(DnnlProgram p, int batch, Plan **out)
{
  Plan *victim = &p->plans[0];

  PetscFunctionBeginUser;
  /* batch 0 marks an empty slot */
  PetscCheck(batch > 0, PETSC_COMM_SELF, PETSC_ERR_ARG_OUTOFRANGE, "a oneDNN plan needs a batch of at least one sample, got %d", batch);
  p->clock++;
  for (int i = 0; i < RN_MAX_PLANS; i++)
    if (p->plans[i].batch == batch) {
      p->plans[i].last_use = p->clock;
      *out = &p->plans[i];
      PetscFunctionReturn(0);
    }
  for (int i = 1; i < RN_MAX_PLANS; i++)
    if (p->plans[i].last_use < victim->last_use) victim = &p->plans[i];
  PetscCall(DnnlPlanDestroy(victim, p));
  PetscCall(PlanCreate(p, batch, victim, PETSC_FALSE));
  victim->last_use = p->clock;
  *out = victim;
  PetscFunctionReturn(0);
}

/* The float32 copies of the parameters when theta changed, and the kernels'
 * weights of the plan when they are older than that. */
PetscErrorCode DnnlPlanWeights(RnNet net, Plan *plan, const double *theta)
{
  DnnlProgram p = net->impl->backend_data;

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
    const int K = l->out.c, C = l->in.c, kk = l->impl->info.k * l->impl->info.k;
    if (p->ops[i].kind != OP_CONV) continue;
    for (int o = 0; o < K; o++) {
      for (int ci = 0; ci < C; ci++) PetscCall(PetscArraycpy(c->wpad + ((size_t)o * c->Cp + ci) * kk, p->ops[i].w + ((size_t)o * C + ci) * kk, kk));
      c->wpad[(size_t)c->Kp * c->Cp * kk + o] = p->ops[i].w[(size_t)K * C * kk + o];
    }
    {
      ExecArg a[2] = {{DNNL_ARG_FROM, &c->wplain_md, c->wpad}, {DNNL_ARG_TO, &c->w_md, c->w_fwd}};
      PetscCall(DnnlExecute(c->reorder_fwd, plan, 2, a));
    }
    if (c->reorder_bwd) {
      ExecArg a[2] = {{DNNL_ARG_FROM, &c->wplain_md, c->wpad}, {DNNL_ARG_TO, &c->wb_md, c->w_bwd}};
      PetscCall(DnnlExecute(c->reorder_bwd, plan, 2, a));
    }
  }
  plan->weights_version = p->version;
  PetscFunctionReturn(0);
}

