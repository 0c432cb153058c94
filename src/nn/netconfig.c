/* netconfig.c: a Net from a config list of layers (layers.h). */
#include "resnode/nn/layers.h"

static const char *const rn_layer_types[] = {"dense", "conv", "batchnorm", "avgpool", "globalavgpool", "scale", "identity", "tanh", "relu", "softplus", "cube", "gelu", NULL};

/* An optional activation key after a dense or conv layer. */
static PetscErrorCode AddActivationFromConfig(RnConfig cfg, const char *key, RnNet net)
{
  int act;
  RnLayer layer;

  PetscFunctionBeginUser;
  PetscCall(RnConfigGetChoice(cfg, key, "identity", RnActivationNames, &act));
  if (act != RN_ACT_IDENTITY) {
    PetscCall(RnLayerCreateActivation(net->out, (RnActivation)act, &layer));
    PetscCall(RnNetAdd(net, layer));
  }
  PetscFunctionReturn(0);
}

PetscErrorCode RnNetCreateFromConfig(RnConfig cfg, const char *key, MPI_Comm comm, RnShape in, RnNet *netp)
{
  int n, type;
  RnNet net;
  char k[160];

  PetscFunctionBeginUser;
  PetscCall(RnConfigGetLength(cfg, key, &n));
  if (n < 1) PetscCall(RnConfigError(cfg, key, "missing or empty; expected a list of layers such as ( { type = \"dense\"; out = 50; activation = \"tanh\"; } )"));
  PetscCall(RnNetCreate(in, &net));
  for (int i = 0; i < n; i++) {
    RnLayer layer = NULL;
#define KEY(name) (PetscSNPrintf(k, sizeof k, "%s.[%d].%s", key, i, name), k)
    PetscCall(RnConfigGetChoice(cfg, KEY("type"), RN_REQUIRED, rn_layer_types, &type));
    switch (type) {
    case 0: { /* dense */
      int out;
      PetscCall(RnConfigGetInt(cfg, KEY("out"), net->out.c, 1, 1 << 24, &out));
      PetscCall(RnLayerCreateDense(net->out, out, &layer));
      PetscCall(RnNetAdd(net, layer));
      PetscCall(AddActivationFromConfig(cfg, KEY("activation"), net));
      break;
    }
    case 1: { /* conv */
      int channels, kernel, stride, pad;
      PetscCall(RnConfigGetInt(cfg, KEY("channels"), net->out.c, 1, 1 << 16, &channels));
      PetscCall(RnConfigGetInt(cfg, KEY("kernel"), 3, 1, 31, &kernel));
      PetscCall(RnConfigGetInt(cfg, KEY("stride"), 1, 1, 64, &stride));
      PetscCall(RnConfigGetInt(cfg, KEY("pad"), kernel / 2, 0, 31, &pad));
      if (net->out.h + 2 * pad < kernel || net->out.w + 2 * pad < kernel) PetscCall(RnConfigError(cfg, KEY("kernel"), "a %dx%d kernel does not fit the %dx%d input of this layer", kernel, kernel, net->out.h, net->out.w));
      PetscCall(RnLayerCreateConv2d(net->out, channels, kernel, stride, pad, &layer));
      PetscCall(RnNetAdd(net, layer));
      PetscCall(AddActivationFromConfig(cfg, KEY("activation"), net));
      break;
    }
    case 2: { /* batchnorm */
      double momentum;
      PetscCall(RnConfigGetReal(cfg, KEY("momentum"), RN_BATCHNORM_MOMENTUM, 0.0, 1.0, &momentum));
      PetscCall(RnLayerCreateBatchNorm(comm, net->out, momentum, RN_BATCHNORM_EPS, &layer));
      PetscCall(RnNetAdd(net, layer));
      break;
    }
    case 3: { /* avgpool */
      int size;
      PetscCall(RnConfigGetInt(cfg, KEY("size"), 2, 1, 1024, &size));
      if (net->out.h % size || net->out.w % size) PetscCall(RnConfigError(cfg, KEY("size"), "pooling size %d does not divide the %dx%d input of this layer", size, net->out.h, net->out.w));
      PetscCall(RnLayerCreateAvgPool(net->out, size, &layer));
      PetscCall(RnNetAdd(net, layer));
      break;
    }
    case 4:
      PetscCall(RnLayerCreateGlobalAvgPool(net->out, &layer));
      PetscCall(RnNetAdd(net, layer));
      break;
    case 5:
      PetscCall(RnLayerCreateScale(net->out, &layer));
      PetscCall(RnNetAdd(net, layer));
      break;
    default: /* a bare activation */
      PetscCall(RnLayerCreateActivation(net->out, (RnActivation)(type - 6), &layer));
      PetscCall(RnNetAdd(net, layer));
      break;
    }
#undef KEY
  }
  PetscCall(RnNetSetUp(net));
  *netp = net;
  PetscFunctionReturn(0);
}
