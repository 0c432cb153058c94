/* dnnl_net.c: a Net run in float32 or bfloat16 through oneDNN (RnNetSetPrecision).
 *
 * The Net's layers stay what they are (shapes, parameter slices, init,
 * batch-norm state); this file compiles them into a program of ops:
 *   conv   oneDNN convolution forward / backward data / backward weights, a
 *          following relu fused as a post-op;
 *   activations (relu, tanh, softplus, gelu), batch norm, average pooling,
 *          dense   our own loops (memory-bound or
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
#include "dnnlimpl.h"

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


/* An op's event: its layer's (a relu fused into a convolution is the convolution's). */
static PetscErrorCode OpEventBegin(const Op *op, PetscBool backward)
{
  return op->kind == OP_RELU || op->kind == OP_ACT ? RnEventBegin(RN_EV_ACTIVATION) : RnLayerEventBegin(op->layer, backward);
}
static PetscErrorCode OpEventEnd(const Op *op, int batch, PetscBool backward)
{
  return op->kind == OP_RELU || op->kind == OP_ACT ? RnEventEnd(RN_EV_ACTIVATION) : RnLayerEventEnd(op->layer, batch, backward);
}

static PetscErrorCode DnnlNetForward(RnNet net, int batch, const double *theta, const double *x, double *y, double *tape)
{
  DnnlProgram p = net->impl->backend_data;
  Plan *plan;

  PetscFunctionBeginUser;
  PetscCall(DnnlPlanGet(p, batch, &plan));
  PetscCall(RnEventBegin(RN_EV_CONVERT));
  PetscCall(DnnlPlanWeights(net, plan, theta));
  DnnlFromDouble(&plan->L[0], batch, x, TapeTensor(p, tape, batch, 0));
  PetscCall(RnEventEnd(RN_EV_CONVERT));
  for (int i = 0; i < p->nops; i++) {
    Op *op = &p->ops[i];
    const Layout *Li = &plan->L[op->in], *Lo = &plan->L[op->out];
    void *in = TapeTensor(p, tape, batch, op->in), *out = TapeTensor(p, tape, batch, op->out);
    PetscCall(OpEventBegin(op, PETSC_FALSE));
    switch (op->kind) {
    case OP_CONV: {
      ConvPlan *c = &plan->conv[i];
      ExecArg a[4] = {{DNNL_ARG_SRC, &c->src_md, in}, {DNNL_ARG_WEIGHTS, &c->w_md, c->w_fwd}, {DNNL_ARG_BIAS, &c->b_md, c->wpad + (size_t)c->Kp * c->Cp * op->layer->impl->info.k * op->layer->impl->info.k}, {DNNL_ARG_DST, &c->dst_md, out}};
      PetscCall(DnnlExecute(c->fwd, plan, 4, a));
    } break;
    case OP_RELU: DnnlReluForward(Li, in, Lo, out, batch); break;
    case OP_ACT: DnnlActivationForward(op->act, Li, in, Lo, out, batch); break;
    case OP_BN: PetscCall(DnnlBatchNormForward(op, theta + op->theta_off, Li, in, Lo, out, batch)); break;
    case OP_POOL: DnnlPoolForward(op->layer, Li, in, Lo, out, batch); break;
    case OP_DENSE: DnnlDenseForward(op, in, out, batch); break;
    }
    PetscCall(OpEventEnd(op, batch, PETSC_FALSE));
  }
  PetscCall(RnEventBegin(RN_EV_CONVERT));
  if (y) DnnlToDouble(&plan->L[p->ntensors - 1], batch, TapeTensor(p, tape, batch, p->ntensors - 1), y);
  PetscCall(RnEventEnd(RN_EV_CONVERT));
  PetscFunctionReturn(0);
}

static PetscErrorCode DnnlNetBackward(RnNet net, int batch, const double *theta, const double *x, const double *dy, double *dx, double *dtheta, double *tape)
{
  DnnlProgram p = net->impl->backend_data;
  Plan *plan;
  void *g, *gnext;

  PetscFunctionBeginUser;
  PetscCall(DnnlPlanGet(p, batch, &plan));
  PetscCall(RnEventBegin(RN_EV_CONVERT));
  PetscCall(DnnlPlanWeights(net, plan, theta));
  g = plan->diff[0], gnext = plan->diff[1];
  DnnlFromDouble(&plan->dL[p->ntensors - 1], batch, dy, g);
  PetscCall(RnEventEnd(RN_EV_CONVERT));
  for (int i = p->nops - 1; i >= 0; i--) {
    Op *op = &p->ops[i];
    const PetscBool want_dx = (PetscBool)(i > 0 || dx);
    const Layout *Li = &plan->L[op->in], *Lo = &plan->L[op->out], *dLi = &plan->dL[op->in], *dLo = &plan->dL[op->out];
    void *in = TapeTensor(p, tape, batch, op->in), *out = TapeTensor(p, tape, batch, op->out);
    double *dth = dtheta + op->theta_off;
    PetscCall(OpEventBegin(op, PETSC_TRUE));
    switch (op->kind) {
    case OP_CONV: {
      ConvPlan *c = &plan->conv[i];
      const int K = op->layer->out.c, C = op->layer->in.c, kk = op->layer->impl->info.k * op->layer->impl->info.k;
      const size_t nw = (size_t)c->Kp * c->Cp * kk;
      if (op->relu) DnnlReluMaskInPlace(Lo, out, dLo, g, batch);
      {
        ExecArg a[4] = {{DNNL_ARG_SRC, &c->src_md, in}, {DNNL_ARG_DIFF_DST, &c->ddst_md, g}, {DNNL_ARG_DIFF_WEIGHTS, &c->dw_md, c->dw_kernel ? c->dw_kernel : c->dw}, {DNNL_ARG_DIFF_BIAS, &c->b_md, c->dw + nw}};
        PetscCall(DnnlExecute(c->bwd_weights, plan, 4, a));
      }
      if (c->reorder_dw) {
        ExecArg a[2] = {{DNNL_ARG_FROM, &c->dw_md, c->dw_kernel}, {DNNL_ARG_TO, &c->wplain_md, c->dw}};
        PetscCall(DnnlExecute(c->reorder_dw, plan, 2, a));
      }
      for (int o = 0; o < K; o++) {
        for (int ci = 0; ci < C; ci++)
          for (int j = 0; j < kk; j++) dth[((size_t)o * C + ci) * kk + j] += c->dw[((size_t)o * c->Cp + ci) * kk + j];
        dth[(size_t)K * C * kk + o] += c->dw[nw + o];
      }
      if (want_dx) {
        ExecArg a[3] = {{DNNL_ARG_DIFF_DST, &c->ddst_md, g}, {DNNL_ARG_WEIGHTS, c->w_bwd ? &c->wb_md : &c->w_md, c->w_bwd ? c->w_bwd : c->w_fwd}, {DNNL_ARG_DIFF_SRC, &c->dsrc_md, gnext}};
        PetscCall(DnnlExecute(c->bwd_data, plan, 3, a));
      }
    } break;
    case OP_RELU:
      if (want_dx) DnnlReluBackward(Lo, out, dLo, g, dLi, gnext, batch);
      break;
    case OP_ACT:
      if (want_dx) DnnlActivationBackward(op->act, Li, in, dLo, g, dLi, gnext, batch);
      break;
    case OP_BN: PetscCall(DnnlBatchNormBackward(op, theta + op->theta_off, Li, in, dLo, g, dLi, want_dx ? gnext : NULL, dth, batch)); break;
    case OP_POOL:
      if (want_dx) DnnlPoolBackward(op->layer, dLo, g, dLi, gnext, batch);
      break;
    case OP_DENSE:
      if (want_dx && dLi->dt != dnnl_f32) {
        /* a bfloat16 convolution reads this gradient: compute it in float32 first */
        float *tmp;
        const size_t n = (size_t)batch * LayoutSampleElems(dLi);
        PetscCall(PetscMalloc1(n, &tmp));
        PetscCall(DnnlDenseBackward(op, in, g, tmp, dth, batch));
        for (size_t j = 0; j < n; j++) Store(gnext, dLi->dt, j, tmp[j]);
        PetscCall(PetscFree(tmp));
      } else PetscCall(DnnlDenseBackward(op, in, g, want_dx ? gnext : NULL, dth, batch));
      break;
    }
    PetscCall(OpEventEnd(op, batch, PETSC_TRUE));
    if (want_dx) {
      void *t = g;
      g = gnext, gnext = t;
    }
  }
  PetscCall(RnEventBegin(RN_EV_CONVERT));
  if (dx) DnnlToDouble(&plan->dL[0], batch, g, dx);
  PetscCall(RnEventEnd(RN_EV_CONVERT));
  PetscFunctionReturn(0);
}

static PetscErrorCode DnnlProgramDestroy(DnnlProgram *lowp)
{
  DnnlProgram p;

  PetscFunctionBeginUser;
  if (!lowp || !*lowp) PetscFunctionReturn(0);
  p = *lowp;
  for (int i = 0; i < RN_MAX_PLANS; i++) PetscCall(DnnlPlanDestroy(&p->plans[i], p));
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

static PetscErrorCode DnnlNetDestroy(RnNet net)
{
  DnnlProgram p = net->impl->backend_data;

  PetscFunctionBeginUser;
  PetscCall(DnnlProgramDestroy(&p));
  net->impl->backend_data = NULL;
  PetscFunctionReturn(0);
}

static const RnNetBackend dnnl_backend = {DnnlNetForward, DnnlNetBackward, DnnlNetDestroy};

PetscErrorCode RnNetBackendDnnlSetUp(RnNet net, RnPrecision precision)
{
  DnnlProgram p;
  size_t offset = 0;

  PetscFunctionBeginUser;
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
      if (l->impl->info.act == RN_ACT_RELU) {
        if (p->nops > 0 && p->ops[p->nops - 1].kind == OP_CONV && !p->ops[p->nops - 1].relu) {
          p->ops[p->nops - 1].relu = PETSC_TRUE; /* fused into the convolution */
          p->tensors[p->nops].shape = l->out;
          continue;
        }
        op->kind = OP_RELU;
        break;
      }
      if (l->impl->info.act == RN_ACT_TANH || l->impl->info.act == RN_ACT_SOFTPLUS || l->impl->info.act == RN_ACT_GELU) {
        op->kind = OP_ACT;
        op->act = l->impl->info.act;
        break;
      }
      /* fall through */
    default:
      PetscCall(DnnlProgramDestroy(&p));
      RnInputError(PETSC_COMM_SELF, "model.precision = \"%s\" runs conv, relu, tanh, softplus, gelu, batchnorm, avgpool, globalavgpool and dense layers; layer %d (%s) needs model.precision = \"float64\"",
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
  /* tape: every tensor of the batch, reserved for channels padded to a
   * block of DNNL_CHANNEL_BLOCK in float32, RN_ALIGN-byte aligned */
  for (int t = 0; t < p->ntensors; t++) {
    const RnShape s = p->tensors[t].shape;
    const size_t bytes = (size_t)((s.c + DNNL_CHANNEL_BLOCK - 1) / DNNL_CHANNEL_BLOCK * DNNL_CHANNEL_BLOCK) * s.h * s.w * sizeof(float);
    p->tensors[t].offset = offset;
    p->tensors[t].bound = bytes;
    offset += (bytes + RN_ALIGN - 1) / RN_ALIGN * RN_ALIGN;
  }
  PetscCall(PetscMalloc1(net->nparams, &p->theta_seen));
  net->impl->backend = &dnnl_backend;
  net->impl->backend_data = p;
  net->tape_per_sample = (PetscInt)((offset + RN_ALIGN + sizeof(double) - 1) / sizeof(double)); /* + the slack to align the tape */
  PetscFunctionReturn(0);
}

PetscErrorCode RnNetSetConvAlgorithm(RnNet net, RnConvAlgorithm algorithm)
{
  DnnlProgram p = net->impl->backend_data;

  PetscFunctionBeginUser;
  if (!p || p->algorithm == algorithm) PetscFunctionReturn(0);
  p->algorithm = algorithm;
  for (int i = 0; i < RN_MAX_PLANS; i++) PetscCall(DnnlPlanDestroy(&p->plans[i], p)); /* built again on next use */
  PetscFunctionReturn(0);
}

PetscErrorCode RnNetDescribeKernels(RnNet net, char *buf, size_t len)
{
  DnnlProgram p = net->impl->backend_data;
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
    PetscCall(PetscSNPrintf(buf + used, len - used, "; conv %dx%d %d->%d: %s / %s / %s", p->ops[i].layer->impl->info.k, p->ops[i].layer->impl->info.k, p->ops[i].layer->in.c, p->ops[i].layer->out.c,
                            plan->conv[i].impl[0], plan->conv[i].impl[1], plan->conv[i].impl[2]));
    used = strlen(buf);
  }
  PetscFunctionReturn(0);
}

