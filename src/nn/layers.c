/* layers.c: dense layers, activations, the Net chain and the losses. The
 * convolutional layers live in conv.c, batchnorm.c and pool.c. */
#include "nnimpl.h"
#include "resnode/core/rng.h"

#include <cblas.h>
#include <math.h>
#include <string.h>

const char *const RnActivationNames[] = {"identity", "tanh", "relu", "softplus", "cube", "gelu", NULL};

PetscErrorCode RnLayerDestroy(RnLayer *layer)
{
  PetscFunctionBeginUser;
  if (!layer || !*layer) PetscFunctionReturn(0);
  if ((*layer)->impl->ops.destroy) PetscCall((*layer)->impl->ops.destroy(*layer));
  PetscCall(PetscFree((*layer)->impl->data));
  PetscCall(PetscFree((*layer)->impl));
  PetscCall(PetscFree((*layer)->state));
  PetscCall(PetscFree(*layer));
  *layer = NULL;
  PetscFunctionReturn(0);
}

PetscErrorCode RnLayerAlloc(RnLayerType type, const char *name, RnShape in, RnShape out, RnLayer *layer)
{
  RnLayer l;

  PetscFunctionBeginUser;
  PetscCall(PetscNew(&l));
  PetscCall(PetscNew(&l->impl));
  l->type = type;
  PetscCall(PetscStrncpy(l->name, name, sizeof l->name));
  l->in = in;
  l->out = out;
  l->training = PETSC_TRUE;
  l->comm = PETSC_COMM_SELF;
  *layer = l;
  PetscFunctionReturn(0);
}

PetscErrorCode RnLayerForward(RnLayer l, int batch, const double *theta, const double *x, double *y, double *tape)
{
  PetscFunctionBeginUser;
  PetscCall(l->impl->ops.forward(l, batch, theta, x, y, tape));
  PetscFunctionReturn(0);
}

PetscErrorCode RnLayerBackward(RnLayer l, int batch, const double *theta, const double *x, const double *y, const double *dy, double *dx, double *dtheta, double *tape)
{
  PetscFunctionBeginUser;
  PetscCall(l->impl->ops.backward(l, batch, theta, x, y, dy, dx, dtheta, tape));
  PetscFunctionReturn(0);
}

PetscErrorCode RnLayerInit(RnLayer l, uint64_t seed, uint32_t member, uint32_t layer_id, double *theta)
{
  PetscFunctionBeginUser;
  if (l->impl->ops.init) PetscCall(l->impl->ops.init(l, seed, member, layer_id, theta));
  PetscFunctionReturn(0);
}

/* ---- dense: y = W x + b, W (out x in) row-major, then b ---- */

/* below this many multiply-adds a product is done by plain loops */
#define RN_DENSE_SMALL 4096

RN_HOT_LOOP static PetscErrorCode DenseForward(RnLayer l, int batch, const double *theta, const double *x, double *y, double *tape)
{
  const int in = (int)RnShapeSize(l->in), out = (int)RnShapeSize(l->out);
  const double *W = theta, *b = theta + (PetscInt)in * out;

  PetscFunctionBeginUser;
  if ((size_t)batch * in * out <= RN_DENSE_SMALL) {
    /* plain loops: BLAS's per-call cost dominates products this small */
    for (int s = 0; s < batch; s++)
      for (int o = 0; o < out; o++) {
        double acc = b[o];
        for (int i = 0; i < in; i++) acc += W[(size_t)o * in + i] * x[(size_t)s * in + i];
        y[(size_t)s * out + o] = acc;
      }
    PetscFunctionReturn(0);
  }
  for (int s = 0; s < batch; s++) memcpy(y + (size_t)s * out, b, sizeof(double) * out);
  /* Y (batch x out) += X (batch x in) * W^T */
  cblas_dgemm(CblasRowMajor, CblasNoTrans, CblasTrans, batch, out, in, 1.0, x, in, W, in, 1.0, y, out);
  PetscFunctionReturn(0);
}

RN_HOT_LOOP static PetscErrorCode DenseBackward(RnLayer l, int batch, const double *theta, const double *x, const double *y, const double *dy, double *dx, double *dtheta, double *tape)
{
  const int in = (int)RnShapeSize(l->in), out = (int)RnShapeSize(l->out);
  const double *W = theta;
  double *dW = dtheta, *db = dtheta + (PetscInt)in * out;

  PetscFunctionBeginUser;
  if ((size_t)batch * in * out <= RN_DENSE_SMALL) {
    for (int s = 0; s < batch; s++) {
      const double *g = dy + (size_t)s * out, *xs = x + (size_t)s * in;
      for (int o = 0; o < out; o++) {
        db[o] += g[o];
        for (int i = 0; i < in; i++) dW[(size_t)o * in + i] += g[o] * xs[i];
      }
      if (dx)
        for (int i = 0; i < in; i++) {
          double acc = 0;
          for (int o = 0; o < out; o++) acc += g[o] * W[(size_t)o * in + i];
          dx[(size_t)s * in + i] = acc;
        }
    }
    PetscFunctionReturn(0);
  }
  /* dW (out x in) += dY^T X */
  cblas_dgemm(CblasRowMajor, CblasTrans, CblasNoTrans, out, in, batch, 1.0, dy, out, x, in, 1.0, dW, in);
  for (int s = 0; s < batch; s++)
    for (int o = 0; o < out; o++) db[o] += dy[(size_t)s * out + o];
  /* dX (batch x in) = dY W */
  if (dx) cblas_dgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, batch, in, out, 1.0, dy, out, W, in, 0.0, dx, in);
  PetscFunctionReturn(0);
}

/* PyTorch's default: weights and biases uniform in +-1/sqrt(fan_in). */
static PetscErrorCode DenseInit(RnLayer l, uint64_t seed, uint32_t member, uint32_t layer_id, double *theta)
{
  const PetscInt in = RnShapeSize(l->in);
  const double bound = 1.0 / sqrt((double)in);

  PetscFunctionBeginUser;
  RnRandUniform(seed, RN_STREAM_INIT, member, layer_id, (size_t)l->nparams, theta);
  for (PetscInt i = 0; i < l->nparams; i++) theta[i] = bound * (2.0 * theta[i] - 1.0);
  PetscFunctionReturn(0);
}

PetscErrorCode RnLayerCreateDense(RnShape in, int out, RnLayer *layer)
{
  RnShape oshape = {out, 1, 1};

  PetscFunctionBeginUser;
  PetscCheck(out > 0, PETSC_COMM_SELF, PETSC_ERR_ARG_OUTOFRANGE, "dense layer needs out > 0, got %d", out);
  PetscCall(RnLayerAlloc(RN_LAYER_DENSE, "dense", in, oshape, layer));
  (*layer)->nparams = RnShapeSize(in) * out + out;
  (*layer)->impl->ops.forward = DenseForward;
  (*layer)->impl->ops.backward = DenseBackward;
  (*layer)->impl->ops.init = DenseInit;
  PetscFunctionReturn(0);
}

/* ---- elementwise activations ---- */

typedef struct {
  RnActivation act;
} ActivationData;

RN_HOT_LOOP static PetscErrorCode ActivationForward(RnLayer l, int batch, const double *theta, const double *x, double *y, double *tape)
{
  const size_t n = (size_t)batch * (size_t)RnShapeSize(l->in);
  const RnActivation act = ((ActivationData *)l->impl->data)->act;

  PetscFunctionBeginUser;
  switch (act) {
  case RN_ACT_IDENTITY:
    memcpy(y, x, sizeof(double) * n);
    break;
  case RN_ACT_TANH:
    /* tanh x = expm1(2x) / (expm1(2x) + 2): what libm's tanh computes, without
     * its call overhead; exact to rounding, saturated where expm1 would overflow */
    for (size_t i = 0; i < n; i++) {
      const double v = x[i];
      if (v > 20.0) y[i] = 1.0;
      else if (v < -20.0) y[i] = -1.0;
      else {
        const double e = expm1(2.0 * v);
        y[i] = e / (e + 2.0);
      }
    }
    break;
  case RN_ACT_RELU:
    for (size_t i = 0; i < n; i++) y[i] = x[i] > 0.0 ? x[i] : 0.0;
    break;
  case RN_ACT_SOFTPLUS:
    /* log(1 + e^x) without overflow */
    for (size_t i = 0; i < n; i++) y[i] = (x[i] > 0.0 ? x[i] : 0.0) + log1p(exp(-fabs(x[i])));
    break;
  case RN_ACT_CUBE:
    for (size_t i = 0; i < n; i++) y[i] = x[i] * x[i] * x[i];
    break;
  case RN_ACT_GELU:
    /* x Phi(x) = x erfc(-x / sqrt 2) / 2: erfc keeps Phi's relative accuracy for x << 0 */
    for (size_t i = 0; i < n; i++) y[i] = 0.5 * x[i] * erfc(-x[i] * RN_SQRT1_2);
    break;
  }
  PetscFunctionReturn(0);
}

RN_HOT_LOOP static PetscErrorCode ActivationBackward(RnLayer l, int batch, const double *theta, const double *x, const double *y, const double *dy, double *dx, double *dtheta, double *tape)
{
  const size_t n = (size_t)batch * (size_t)RnShapeSize(l->in);
  const RnActivation act = ((ActivationData *)l->impl->data)->act;

  PetscFunctionBeginUser;
  if (!dx) PetscFunctionReturn(0);
  switch (act) {
  case RN_ACT_IDENTITY:
    memcpy(dx, dy, sizeof(double) * n);
    break;
  case RN_ACT_TANH:
    for (size_t i = 0; i < n; i++) dx[i] = dy[i] * (1.0 - y[i] * y[i]);
    break;
  case RN_ACT_RELU:
    for (size_t i = 0; i < n; i++) dx[i] = x[i] > 0.0 ? dy[i] : 0.0;
    break;
  case RN_ACT_SOFTPLUS:
    for (size_t i = 0; i < n; i++) dx[i] = dy[i] / (1.0 + exp(-x[i]));
    break;
  case RN_ACT_CUBE:
    for (size_t i = 0; i < n; i++) dx[i] = dy[i] * 3.0 * x[i] * x[i];
    break;
  case RN_ACT_GELU:
    /* Phi(x) + x phi(x) */
    for (size_t i = 0; i < n; i++) dx[i] = dy[i] * (0.5 * erfc(-x[i] * RN_SQRT1_2) + x[i] * RN_INV_SQRT_2PI * exp(-0.5 * x[i] * x[i]));
    break;
  }
  PetscFunctionReturn(0);
}

PetscErrorCode RnLayerCreateActivation(RnShape in, RnActivation act, RnLayer *layer)
{
  ActivationData *data;

  PetscFunctionBeginUser;
  PetscCall(RnLayerAlloc(RN_LAYER_ACTIVATION, RnActivationNames[act], in, in, layer));
  PetscCall(PetscNew(&data));
  data->act = act;
  (*layer)->impl->info.act = act;
  (*layer)->impl->data = data;
  (*layer)->impl->ops.forward = ActivationForward;
  (*layer)->impl->ops.backward = ActivationBackward;
  PetscFunctionReturn(0);
}

/* ---- scale: y = theta * x componentwise ---- */

static PetscErrorCode ScaleForward(RnLayer l, int batch, const double *theta, const double *x, double *y, double *tape)
{
  const PetscInt n = RnShapeSize(l->in);

  PetscFunctionBeginUser;
  for (int s = 0; s < batch; s++)
    for (PetscInt i = 0; i < n; i++) y[s * n + i] = theta[i] * x[s * n + i];
  PetscFunctionReturn(0);
}

static PetscErrorCode ScaleBackward(RnLayer l, int batch, const double *theta, const double *x, const double *y, const double *dy, double *dx, double *dtheta, double *tape)
{
  const PetscInt n = RnShapeSize(l->in);

  PetscFunctionBeginUser;
  for (int s = 0; s < batch; s++)
    for (PetscInt i = 0; i < n; i++) {
      dtheta[i] += dy[s * n + i] * x[s * n + i];
      if (dx) dx[s * n + i] = dy[s * n + i] * theta[i];
    }
  PetscFunctionReturn(0);
}

/* Initial scales uniform in [-1, 1]. */
static PetscErrorCode ScaleInit(RnLayer l, uint64_t seed, uint32_t member, uint32_t layer_id, double *theta)
{
  PetscFunctionBeginUser;
  RnRandUniform(seed, RN_STREAM_INIT, member, layer_id, (size_t)l->nparams, theta);
  for (PetscInt i = 0; i < l->nparams; i++) theta[i] = 2.0 * theta[i] - 1.0;
  PetscFunctionReturn(0);
}

PetscErrorCode RnLayerCreateScale(RnShape in, RnLayer *layer)
{
  PetscFunctionBeginUser;
  PetscCall(RnLayerAlloc(RN_LAYER_SCALE, "scale", in, in, layer));
  (*layer)->nparams = RnShapeSize(in);
  (*layer)->impl->ops.forward = ScaleForward;
  (*layer)->impl->ops.backward = ScaleBackward;
  (*layer)->impl->ops.init = ScaleInit;
  PetscFunctionReturn(0);
}

/* ---- the Net chain ---- */

PetscErrorCode RnNetCreate(RnShape in, RnNet *net)
{
  RnNet n;

  PetscFunctionBeginUser;
  PetscCall(PetscNew(&n));
  PetscCall(PetscNew(&n->impl));
  n->in = in;
  n->out = in;
  n->impl->capacity = 8;
  PetscCall(PetscMalloc1(n->impl->capacity, &n->layers));
  *net = n;
  PetscFunctionReturn(0);
}

PetscErrorCode RnNetAdd(RnNet net, RnLayer layer)
{
  PetscFunctionBeginUser;
  PetscCheck(!net->setup, PETSC_COMM_SELF, PETSC_ERR_ARG_WRONGSTATE, "RnNetAdd after RnNetSetUp");
  PetscCheck(RnShapeSize(layer->in) == RnShapeSize(net->out), PETSC_COMM_SELF, PETSC_ERR_ARG_SIZ,
             "layer %d (%s) expects %d x %d x %d inputs but the net produces %d x %d x %d", net->nlayers, layer->name,
             layer->in.c, layer->in.h, layer->in.w, net->out.c, net->out.h, net->out.w);
  if (net->nlayers == net->impl->capacity) {
    RnLayer *bigger;
    PetscCall(PetscMalloc1(2 * net->impl->capacity, &bigger));
    PetscCall(PetscArraycpy(bigger, net->layers, net->nlayers));
    PetscCall(PetscFree(net->layers));
    net->layers = bigger;
    net->impl->capacity *= 2;
  }
  net->layers[net->nlayers++] = layer;
  net->out = layer->out;
  PetscFunctionReturn(0);
}

PetscErrorCode RnNetSetUp(RnNet net)
{
  PetscInt tape = 0;
  const int n = net->nlayers;

  PetscFunctionBeginUser;
  if (net->setup) PetscFunctionReturn(0);
  PetscCall(PetscMalloc3(n + 1, &net->param_offset, n + 1, &net->impl->act_offset, n + 1, &net->impl->ltape_offset));
  net->param_offset[0] = 0;
  for (int i = 0; i < n; i++) {
    net->param_offset[i + 1] = net->param_offset[i] + net->layers[i]->nparams;
    net->impl->act_offset[i] = tape; /* output of layer i */
    tape += RnShapeSize(net->layers[i]->out);
    net->impl->ltape_offset[i] = tape;
    tape += net->layers[i]->tape_per_sample;
  }
  net->nparams = net->param_offset[n];
  net->tape_per_sample = tape;
  net->impl->tape_per_sample_f64 = tape;
  net->impl->backend = &RnNetBackendFloat64;
  net->setup = PETSC_TRUE;
  PetscFunctionReturn(0);
}

/* The tape of a batch is layer-major: the block for layer output i holds the
 * whole batch contiguously, so each layer sees ordinary sample-major arrays. */
static inline double *TapeAct(RnNet net, int batch, double *tape, int i) { return tape + (size_t)batch * (size_t)net->impl->act_offset[i]; }
static inline double *TapeLayer(RnNet net, int batch, double *tape, int i) { return tape + (size_t)batch * (size_t)net->impl->ltape_offset[i]; }

/* A rank's share of a batch split over a group may be empty (an evaluation
 * batch's tail): nothing to compute, unless a batch norm in training sums
 * its statistics over the group, which the rank must join. */
static PetscBool NetSumsOverGroup(RnNet net)
{
  for (int i = 0; i < net->nlayers; i++)
    if (net->layers[i]->type == RN_LAYER_BATCHNORM && net->layers[i]->training) return PETSC_TRUE;
  return PETSC_FALSE;
}

PetscErrorCode RnNetForward(RnNet net, int batch, const double *theta, const double *x, double *y, double *tape)
{
  PetscFunctionBeginUser;
  PetscCheck(net->setup, PETSC_COMM_SELF, PETSC_ERR_ARG_WRONGSTATE, "RnNetSetUp not called");
  if (batch == 0 && !NetSumsOverGroup(net)) PetscFunctionReturn(0);
  PetscCall(RnEventBegin(RN_EV_NET_FORWARD));
  PetscCall(net->impl->backend->forward(net, batch, theta, x, y, tape));
  PetscCall(RnEventEnd(RN_EV_NET_FORWARD));
  PetscFunctionReturn(0);
}

PetscErrorCode RnNetBackward(RnNet net, int batch, const double *theta, const double *x, const double *dy, double *dx, double *dtheta, double *tape)
{
  PetscFunctionBeginUser;
  PetscCheck(net->setup, PETSC_COMM_SELF, PETSC_ERR_ARG_WRONGSTATE, "RnNetSetUp not called");
  if (batch == 0 && !NetSumsOverGroup(net)) PetscFunctionReturn(0);
  PetscCall(RnEventBegin(RN_EV_NET_BACKWARD));
  PetscCall(net->impl->backend->backward(net, batch, theta, x, dy, dx, dtheta, tape));
  PetscCall(RnEventEnd(RN_EV_NET_BACKWARD));
  PetscFunctionReturn(0);
}

/* ---- the float64 backend: the layers' own kernels in a chain ---- */

static PetscErrorCode Float64Forward(RnNet net, int batch, const double *theta, const double *x, double *y, double *tape)
{
  const double *in = x;

  PetscFunctionBeginUser;
  for (int i = 0; i < net->nlayers; i++) {
    RnLayer l = net->layers[i];
    double *out = TapeAct(net, batch, tape, i);
    PetscCall(RnLayerEventBegin(l, PETSC_FALSE));
    PetscCall(l->impl->ops.forward(l, batch, theta + net->param_offset[i], in, out, TapeLayer(net, batch, tape, i)));
    PetscCall(RnLayerEventEnd(l, batch, PETSC_FALSE));
    in = out;
  }
  if (y) PetscCall(PetscArraycpy(y, in, (size_t)batch * (size_t)RnShapeSize(net->out)));
  PetscFunctionReturn(0);
}

static PetscErrorCode Float64Backward(RnNet net, int batch, const double *theta, const double *x, const double *dy, double *dx, double *dtheta, double *tape)
{
  double *g_out, *g_in;

  PetscFunctionBeginUser;
  /* two ping-pong buffers for the gradients between layers, kept in the net
   * so the hot loops of the ResNet and the ODE do not allocate */
  if (batch > net->impl->work_batch) {
    PetscInt maxsize = RnShapeSize(net->in);
    for (int i = 0; i < net->nlayers; i++) maxsize = PetscMax(maxsize, RnShapeSize(net->layers[i]->out));
    PetscCall(PetscFree(net->impl->work));
    PetscCall(PetscMalloc1(2 * (size_t)batch * maxsize, &net->impl->work));
    net->impl->work_batch = batch;
    net->impl->work_stride = (size_t)batch * maxsize;
  }
  g_out = net->impl->work;
  g_in = net->impl->work + net->impl->work_stride;
  PetscCall(PetscArraycpy(g_out, dy, (size_t)batch * RnShapeSize(net->out)));
  for (int i = net->nlayers - 1; i >= 0; i--) {
    RnLayer l = net->layers[i];
    const double *xin = i == 0 ? x : TapeAct(net, batch, tape, i - 1);
    double *target = i == 0 ? dx : g_in;
    PetscCall(RnLayerEventBegin(l, PETSC_TRUE));
    PetscCall(l->impl->ops.backward(l, batch, theta + net->param_offset[i], xin, TapeAct(net, batch, tape, i), g_out, target,
                              dtheta + net->param_offset[i], TapeLayer(net, batch, tape, i)));
    PetscCall(RnLayerEventEnd(l, batch, PETSC_TRUE));
    g_in = g_out; /* the input gradient of layer i is the output gradient of layer i-1 */
    g_out = target;
  }
  PetscFunctionReturn(0);
}

static PetscErrorCode Float64Destroy(RnNet net) { return 0; }

const RnNetBackend RnNetBackendFloat64 = {Float64Forward, Float64Backward, Float64Destroy};

PetscErrorCode RnNetSetPrecision(RnNet net, RnPrecision precision)
{
  PetscFunctionBeginUser;
  PetscCheck(net->setup, PETSC_COMM_SELF, PETSC_ERR_ARG_WRONGSTATE, "RnNetSetUp before RnNetSetPrecision");
  PetscCall(net->impl->backend->destroy(net));
  net->impl->backend = &RnNetBackendFloat64;
  net->precision = precision;
  net->tape_per_sample = net->impl->tape_per_sample_f64;
  if (precision != RN_PRECISION_FLOAT64) PetscCall(RnNetBackendDnnlSetUp(net, precision));
  PetscFunctionReturn(0);
}

PetscErrorCode RnNetInit(RnNet net, uint64_t seed, uint32_t member, uint32_t first_layer_id, double *theta)
{
  PetscFunctionBeginUser;
  for (int i = 0; i < net->nlayers; i++) {
    RnLayer l = net->layers[i];
    PetscCall(RnLayerInit(l, seed, member, first_layer_id + (uint32_t)i, theta + net->param_offset[i]));
  }
  PetscFunctionReturn(0);
}

PetscErrorCode RnNetSetTraining(RnNet net, PetscBool training)
{
  PetscFunctionBeginUser;
  for (int i = 0; i < net->nlayers; i++) net->layers[i]->training = training;
  PetscFunctionReturn(0);
}

PetscInt RnNetStateSize(RnNet net)
{
  PetscInt n = 0;
  for (int i = 0; i < net->nlayers; i++) n += net->layers[i]->nstate;
  return n;
}

PetscErrorCode RnNetGetState(RnNet net, double *state)
{
  PetscFunctionBeginUser;
  for (int i = 0; i < net->nlayers; i++) {
    PetscCall(PetscArraycpy(state, net->layers[i]->state, net->layers[i]->nstate));
    state += net->layers[i]->nstate;
  }
  PetscFunctionReturn(0);
}

PetscErrorCode RnNetSetState(RnNet net, const double *state)
{
  PetscFunctionBeginUser;
  for (int i = 0; i < net->nlayers; i++) {
    PetscCall(PetscArraycpy(net->layers[i]->state, state, net->layers[i]->nstate));
    state += net->layers[i]->nstate;
  }
  PetscFunctionReturn(0);
}

PetscErrorCode RnNetDestroy(RnNet *net)
{
  PetscFunctionBeginUser;
  if (!net || !*net) PetscFunctionReturn(0);
  if ((*net)->impl->backend) PetscCall((*net)->impl->backend->destroy(*net));
  for (int i = 0; i < (*net)->nlayers; i++) PetscCall(RnLayerDestroy(&(*net)->layers[i]));
  PetscCall(PetscFree((*net)->layers));
  if ((*net)->setup) PetscCall(PetscFree3((*net)->param_offset, (*net)->impl->act_offset, (*net)->impl->ltape_offset));
  PetscCall(PetscFree((*net)->impl->work));
  PetscCall(PetscFree((*net)->impl));
  PetscCall(PetscFree(*net));
  *net = NULL;
  PetscFunctionReturn(0);
}

/* ---- losses ---- */

PetscErrorCode RnLossSquaredError(int batch, int dim, const double *pred, const double *target, double *loss_sum, double *grad)
{
  double sum = 0.0;

  PetscFunctionBeginUser;
  PetscCall(RnEventBegin(RN_EV_LOSS));
  for (size_t i = 0; i < (size_t)batch * (size_t)dim; i++) {
    double r = pred[i] - target[i];
    sum += r * r;
    if (grad) grad[i] = 2.0 * r;
  }
  *loss_sum = sum;
  PetscCall(RnEventEnd(RN_EV_LOSS));
  PetscFunctionReturn(0);
}

PetscErrorCode RnLossSoftmaxCrossEntropy(int batch, int nclasses, const double *logits, const int *labels, double *loss_sum, double *grad, int *correct)
{
  double sum = 0.0;
  int hits = 0;

  PetscFunctionBeginUser;
  PetscCall(RnEventBegin(RN_EV_LOSS));
  for (int s = 0; s < batch; s++) {
    const double *z = logits + (size_t)s * nclasses;
    double zmax = z[0], denom = 0.0;
    int argmax = 0;
    PetscCheck(labels[s] >= 0 && labels[s] < nclasses, PETSC_COMM_SELF, PETSC_ERR_ARG_OUTOFRANGE, "label %d of sample %d is not in [0, %d)", labels[s], s, nclasses);
    for (int c = 1; c < nclasses; c++)
      if (z[c] > zmax) zmax = z[c], argmax = c;
    for (int c = 0; c < nclasses; c++) denom += exp(z[c] - zmax);
    sum += log(denom) - (z[labels[s]] - zmax);
    hits += argmax == labels[s];
    if (grad)
      for (int c = 0; c < nclasses; c++) grad[(size_t)s * nclasses + c] = exp(z[c] - zmax) / denom - (c == labels[s] ? 1.0 : 0.0);
  }
  *loss_sum = sum;
  if (correct) *correct = hits;
  PetscCall(RnEventEnd(RN_EV_LOSS));
  PetscFunctionReturn(0);
}
