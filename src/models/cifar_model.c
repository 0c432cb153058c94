/* cifar_model.c: the paper's CIFAR-10 network (see cifar.h). */
#include "resnode/models/cifar.h"

#include <string.h>


const char *const RnCifarActivationNames[] = {"relu", "softplus", "gelu", "tanh", NULL};
static const RnActivation rn_cifar_activations[] = {RN_ACT_RELU, RN_ACT_SOFTPLUS, RN_ACT_GELU, RN_ACT_TANH};

PetscErrorCode RnCifarActivationFromConfig(RnConfig cfg, RnActivation *activation)
{
  int choice;

  PetscFunctionBeginUser;
  PetscCall(RnConfigGetChoice(cfg, "model.activation", "relu", RnCifarActivationNames, &choice));
  *activation = rn_cifar_activations[choice];
  PetscFunctionReturn(0);
}

PetscErrorCode RnCifarModelCreate(MPI_Comm comm, int channels, RnActivation activation, RnFlowKind kind, int N, const RnOdeOptions *ode, RnPrecision precision, RnCifarModel *m)
{
  RnShape img = {3, 32, 32}, s;
  RnLayer l;
  const double T = 1.0;

  PetscFunctionBeginUser;
  memset(m, 0, sizeof *m);
  m->N = kind == RN_FLOW_ODE ? 0 : N;
  m->precision = precision;
  PetscCall(RnNetCreate(img, &m->stem));
  PetscCall(RnLayerCreateConv2d(img, channels, 3, 2, 1, &l));
  PetscCall(RnNetAdd(m->stem, l));
  PetscCall(RnLayerCreateActivation(m->stem->out, activation, &l));
  PetscCall(RnNetAdd(m->stem, l));
  PetscCall(RnLayerCreateBatchNorm(comm, m->stem->out, RN_BATCHNORM_MOMENTUM, RN_BATCHNORM_EPS, &l));
  PetscCall(RnNetAdd(m->stem, l));
  PetscCall(RnNetSetUp(m->stem));
  PetscCall(RnNetSetPrecision(m->stem, precision));
  s = m->stem->out;
  PetscCall(RnNetCreate(s, &m->field));
  PetscCall(RnLayerCreateConv2d(s, channels, 3, 1, 1, &l));
  PetscCall(RnNetAdd(m->field, l));
  PetscCall(RnLayerCreateActivation(s, activation, &l));
  PetscCall(RnNetAdd(m->field, l));
  PetscCall(RnLayerCreateConv2d(s, channels, 3, 1, 1, &l));
  PetscCall(RnNetAdd(m->field, l));
  PetscCall(RnNetSetUp(m->field));
  PetscCall(RnNetSetPrecision(m->field, precision));
  PetscCall(RnNetCreate(s, &m->head));
  PetscCall(RnLayerCreateBatchNorm(comm, s, RN_BATCHNORM_MOMENTUM, RN_BATCHNORM_EPS, &l));
  PetscCall(RnNetAdd(m->head, l));
  PetscCall(RnLayerCreateConv2d(s, 64, 3, 4, 1, &l));
  PetscCall(RnNetAdd(m->head, l));
  PetscCall(RnLayerCreateActivation(m->head->out, activation, &l));
  PetscCall(RnNetAdd(m->head, l));
  PetscCall(RnLayerCreateBatchNorm(comm, m->head->out, RN_BATCHNORM_MOMENTUM, RN_BATCHNORM_EPS, &l));
  PetscCall(RnNetAdd(m->head, l));
  PetscCall(RnLayerCreateAvgPool(m->head->out, m->head->out.h, &l));
  PetscCall(RnNetAdd(m->head, l));
  PetscCall(RnLayerCreateDense(m->head->out, 10, &l));
  PetscCall(RnNetAdd(m->head, l));
  PetscCall(RnNetSetUp(m->head));
  PetscCall(RnNetSetPrecision(m->head, precision));
  PetscCall(RnFlowCreate(comm, m->field, kind, N, 1, &T, &m->flow));
  if (kind == RN_FLOW_ODE && ode) PetscCall(RnFlowSetOdeOptions(m->flow, ode));
  m->nstem = m->stem->nparams;
  m->nblock = m->flow->nparams;
  m->nhead = m->head->nparams;
  m->n = m->nstem + m->nblock + m->nhead;
  PetscFunctionReturn(0);
}

PetscErrorCode RnCifarModelSetBatchNorm(RnCifarModel *m, double momentum, double eps)
{
  RnNet nets[2] = {m->stem, m->head};

  PetscFunctionBeginUser;
  for (int k = 0; k < 2; k++)
    for (int i = 0; i < nets[k]->nlayers; i++)
      if (nets[k]->layers[i]->type == RN_LAYER_BATCHNORM) PetscCall(RnLayerBatchNormSetParameters(nets[k]->layers[i], momentum, eps));
  PetscFunctionReturn(0);
}

/* Layer ids key the initialisation streams (rng.h: RN_STREAM_INIT, b = id).
 * The stem's come first, the block's from CIFAR_BLOCK_FIRST_ID, the head's
 * after the block's last one, and never below CIFAR_HEAD_FIRST_ID: every model
 * whose block fits below it (tied, the ODE, untied N < 34) keeps the initial
 * parameters it had when these ids were fixed numbers. */
#define CIFAR_BLOCK_FIRST_ID 100
#define CIFAR_HEAD_FIRST_ID 200

PetscErrorCode RnCifarModelLayerIds(const RnCifarModel *m, uint32_t *stem, uint32_t *block, uint32_t *head)
{
  PetscFunctionBeginUser;
  PetscCheck(m->stem->nlayers <= CIFAR_BLOCK_FIRST_ID, PETSC_COMM_SELF, PETSC_ERR_PLIB, "the stem's %d layers overlap the block's layer ids", m->stem->nlayers);
  *stem = 0;
  *block = CIFAR_BLOCK_FIRST_ID;
  *head = PetscMax(CIFAR_HEAD_FIRST_ID, CIFAR_BLOCK_FIRST_ID + RnFlowLayerIdCount(m->flow));
  PetscFunctionReturn(0);
}

PetscErrorCode RnCifarModelInit(RnCifarModel *m, uint64_t seed, uint32_t member, double *theta)
{
  uint32_t stem, block, head;

  PetscFunctionBeginUser;
  PetscCall(RnCifarModelLayerIds(m, &stem, &block, &head));
  PetscCall(RnNetInit(m->stem, seed, member, stem, theta));
  PetscCall(RnFlowInit(m->flow, seed, member, block, theta + m->nstem));
  PetscCall(RnNetInit(m->head, seed, member, head, theta + m->nstem + m->nblock));
  PetscFunctionReturn(0);
}

PetscErrorCode RnCifarModelReserve(RnCifarModel *m, int batch)
{
  const size_t img = 3072, hid = (size_t)RnShapeSize(m->stem->out);

  PetscFunctionBeginUser;
  if (batch <= m->cap) PetscFunctionReturn(0);
  if (m->cap) {
    PetscCall(PetscFree5(m->x, m->tape_stem, m->h0, m->hT, m->tape_head));
    PetscCall(PetscFree5(m->logits, m->dlogits, m->dhT, m->dh0, m->labels));
  }
  PetscCall(PetscMalloc5(batch * img, &m->x, batch * m->stem->tape_per_sample, &m->tape_stem, batch * hid, &m->h0, batch * hid, &m->hT, batch * m->head->tape_per_sample, &m->tape_head));
  PetscCall(PetscMalloc5((size_t)batch * 10, &m->logits, (size_t)batch * 10, &m->dlogits, batch * hid, &m->dhT, batch * hid, &m->dh0, batch, &m->labels));
  m->cap = batch;
  PetscFunctionReturn(0);
}

PetscErrorCode RnCifarModelDestroy(RnCifarModel *m)
{
  PetscFunctionBeginUser;
  if (m->cap) {
    PetscCall(PetscFree5(m->x, m->tape_stem, m->h0, m->hT, m->tape_head));
    PetscCall(PetscFree5(m->logits, m->dlogits, m->dhT, m->dh0, m->labels));
  }
  PetscCall(RnFlowDestroy(&m->flow));
  PetscCall(RnNetDestroy(&m->stem));
  PetscCall(RnNetDestroy(&m->field));
  PetscCall(RnNetDestroy(&m->head));
  PetscFunctionReturn(0);
}

/* Forward (and backward when grad != NULL) on the local batch already in
 * m->x / m->labels; returns the local loss sum and correct count. */
PetscErrorCode RnCifarModelPass(RnCifarModel *m, int batch, int global_batch, const double *theta, double *grad, double *loss_sum, int *correct)
{
  const double *th_stem = theta, *th_block = theta + m->nstem, *th_head = theta + m->nstem + m->nblock;

  PetscFunctionBeginUser;
  PetscCall(RnFlowSetRecord(m->flow, grad ? PETSC_TRUE : PETSC_FALSE));
  PetscCall(RnNetForward(m->stem, batch, th_stem, m->x, m->h0, m->tape_stem));
  PetscCall(RnFlowForward(m->flow, batch, th_block, m->h0, m->hT));
  PetscCall(RnNetForward(m->head, batch, th_head, m->hT, m->logits, m->tape_head));
  PetscCall(RnLossSoftmaxCrossEntropy(batch, 10, m->logits, m->labels, loss_sum, m->dlogits, correct));
  if (!grad) PetscFunctionReturn(0);
  /* the mean over the global batch */
  for (int i = 0; i < batch * 10; i++) m->dlogits[i] /= global_batch;
  PetscCall(RnNetBackward(m->head, batch, th_head, m->hT, m->dlogits, m->dhT, grad + m->nstem + m->nblock, m->tape_head));
  PetscCall(RnFlowBackward(m->flow, th_block, m->dhT, m->dh0, grad + m->nstem));
  PetscCall(RnNetBackward(m->stem, batch, th_stem, m->x, m->dh0, NULL, grad, m->tape_stem));
  PetscFunctionReturn(0);
}

PetscErrorCode RnCifarModelSetConvAlgorithm(RnCifarModel *m, RnConvAlgorithm algorithm)
{
  PetscFunctionBeginUser;
  PetscCall(RnNetSetConvAlgorithm(m->stem, algorithm));
  PetscCall(RnNetSetConvAlgorithm(m->field, algorithm));
  PetscCall(RnNetSetConvAlgorithm(m->head, algorithm));
  PetscFunctionReturn(0);
}

PetscErrorCode RnCifarModelSetTraining(RnCifarModel *m, PetscBool training)
{
  PetscFunctionBeginUser;
  PetscCall(RnNetSetTraining(m->stem, training));
  PetscCall(RnNetSetTraining(m->head, training));
  PetscFunctionReturn(0);
}

