/* cifar.h: the CIFAR-10 network of Avelin and Nystrom's experiment:
 *   stem:  conv3x3(3 -> C, stride 2) + sigma, batch norm
 *   block: N weight-tied steps x += (1/N) conv3x3(sigma(conv3x3(x))) (or untied,
 *          or the neural ODE dx/dt = conv(sigma(conv(x))) on [0, 1] through TS)
 *   head:  batch norm, conv3x3(C -> 64, stride 4) + sigma, batch norm,
 *          4x4 average pooling, linear 64 -> 10, softmax cross-entropy.
 * sigma is ReLU (the paper's network) or a smooth activation (model.activation).
 * Parameters in one flat buffer: stem, block, head. Batch norm reduces its
 * statistics over comm (the ranks that share a batch).
 *
 * precision: float64 runs the double layers (im2col + BLAS); float32 and
 * bfloat16 compile the stem, the field and the head for oneDNN (layers.h,
 * RnNetSetPrecision): the same parameters, initialisation and batch-norm
 * state, conversions only at the three nets' boundaries. The TS state of
 * the ODE stays double. */
#ifndef RESNODE_CIFAR_H
#define RESNODE_CIFAR_H

#include "resnode/flow/flow.h"
#include "resnode/ensemble/ensemble.h"
#include "resnode/data/data.h"

typedef struct {
  RnNet stem, field, head;
  RnFlow flow;
  PetscInt nstem, nblock, nhead, n; /* parameter counts; n = all */
  int N;                            /* 0: the ODE */
  RnPrecision precision;
  /* work for a local batch */
  int cap;
  double *x, *tape_stem, *h0, *hT, *tape_head, *logits, *dlogits, *dhT, *dh0;
  int *labels;
} RnCifarModel;

/* model.activation: "relu" (the default), "softplus", "gelu", "tanh" */
extern const char *const RnCifarActivationNames[];
PetscErrorCode RnCifarActivationFromConfig(RnConfig cfg, RnActivation *activation);
/* activation: of every nonlinearity (stem, field, head); RN_ACT_RELU is the
 * paper's network, a smooth one (softplus, gelu, tanh) gives a smooth field. */
PetscErrorCode RnCifarModelCreate(MPI_Comm comm, int channels, RnActivation activation, RnFlowKind kind, int N, const RnOdeOptions *ode, RnPrecision precision, RnCifarModel *m);
/* Initial parameters: the same stem and head for every depth (layer ids 0..,
 * 200..), the block from layer ids 100.. (untied: one draw per step). */
/* The first layer id of the stem, the block and the head: every layer has its
 * own initialisation stream, whatever the depth (untied: 3 ids a step). */
PetscErrorCode RnCifarModelLayerIds(const RnCifarModel *m, uint32_t *stem, uint32_t *block, uint32_t *head);
PetscErrorCode RnCifarModelInit(RnCifarModel *m, uint64_t seed, uint32_t member, double *theta);
/* Work buffers for local batches of up to `batch` images (m->x, m->labels are the input). */
PetscErrorCode RnCifarModelReserve(RnCifarModel *m, int batch);
/* Forward, and backward when grad != NULL (the gradient of the mean loss
 * over global_batch images is added to grad); local loss sum and hits. An
 * evaluation batch may leave a rank no image (its tail is split over the
 * group): with batch = 0 the rank adds nothing but still takes part in the
 * ODE's steps over the group (RnNetForward: an empty batch is a no-op). In
 * training every rank needs an image (the validator sees to it). */
PetscErrorCode RnCifarModelPass(RnCifarModel *m, int batch, int global_batch, const double *theta, double *grad, double *loss_sum, int *correct);
/* How its float32 convolutions compute (layers.h: RnConvAlgorithm); before the first pass. */
PetscErrorCode RnCifarModelSetConvAlgorithm(RnCifarModel *m, RnConvAlgorithm algorithm);
/* The batch norms' running-average momentum (PyTorch's convention: the
 * weight of the new batch, 0.1 by default; Keras' momentum is 1 minus it)
 * and eps (1e-5 by default). */
PetscErrorCode RnCifarModelSetBatchNorm(RnCifarModel *m, double momentum, double eps);
PetscErrorCode RnCifarModelSetTraining(RnCifarModel *m, PetscBool training);
PetscErrorCode RnCifarModelDestroy(RnCifarModel *m);

/* The network as a problem of the SGD ensemble (ensemble.h): mean
 * softmax cross-entropy over the data set's images (the per-pixel mean
 * subtracted), gradients from RnCifarModelPass, the code the CIFAR experiment
 * trains with. Batch norm runs in inference mode at its initial statistics
 * (mean 0, variance 1), i.e. as a per-channel affine map with learned scale
 * and shift: the theorem's SGD needs a sample's loss to depend on that sample
 * only, and batch statistics would couple the samples of a mini-batch (and
 * make the gradient depend on how a batch is split). The tied block and the
 * ODE have the same parameters, so member m starts from the same point at
 * every depth. */
typedef struct {
  int channels;
  RnActivation activation;
  int batch, eval_batch; /* the SGD mini-batch; images a pass when the risk is evaluated */
  RnPrecision precision;
  RnConvAlgorithm convolution;
  RnOdeOptions ode;
} RnCifarEnsembleOptions;
PetscErrorCode RnCifarEnsembleProblemCreate(MPI_Comm group, uint64_t seed, RnDataset data, const RnCifarEnsembleOptions *opt, RnEnsembleProblem *problem, PetscInt *nparams);
/* The image indices of the last mini-batch's gradient (tests read the coupling back). */
PetscErrorCode RnCifarEnsembleLastBatch(const RnEnsembleProblem *problem, const int **indices, int *count);

#endif
