/* ensemble_cifar.c: the CIFAR-10 network as an SGD-ensemble problem (see
 * cifar.h): the gradient and the loss are RnCifarModelPass's, the same code
 * the CIFAR experiment trains with; batch norm runs in inference mode at its
 * initial statistics. */
#include "resnode/models/cifar.h"
#include "resnode/core/profile.h"
#include "resnode/data/data.h"

typedef struct {
  MPI_Comm comm;
  int rank, size;
  uint64_t seed;
  RnDataset data;
  double *mean;
  int channels, batch, eval_batch;
  RnActivation activation;
  RnPrecision precision;
  RnConvAlgorithm convolution;
  RnOdeOptions ode;
  RnCifarModel model; /* of depth model_N, kept while the depth stays */
  int model_N, have_model;
  double *grad;
  int *idx;
} CifarProblem;

static PetscErrorCode ModelForDepth(CifarProblem *c, int N, RnCifarModel **m)
{
  PetscFunctionBeginUser;
  if (!c->have_model || c->model_N != N) {
    if (c->have_model) PetscCall(RnCifarModelDestroy(&c->model));
    PetscCall(RnCifarModelCreate(c->comm, c->channels, c->activation, N ? RN_FLOW_RESNET : RN_FLOW_ODE, N, &c->ode, c->precision, &c->model));
    PetscCall(RnCifarModelSetConvAlgorithm(&c->model, c->convolution));
    /* the theorem's SGD: a sample's loss depends on its own image only */
    PetscCall(RnCifarModelSetTraining(&c->model, PETSC_FALSE));
    PetscCall(RnCifarModelReserve(&c->model, PetscMax(PetscMax(c->batch, c->eval_batch) / c->size + 1, 1)));
    c->model_N = N, c->have_model = 1;
  }
  *m = &c->model;
  PetscFunctionReturn(0);
}

static PetscErrorCode CifarGradient(void *ctx, int N, int member, int step, const double *capped, double *grad_sum)
{
  CifarProblem *c = ctx;
  const int B = c->batch, lo = (int)((long long)B * c->rank / c->size), hi = (int)((long long)B * (c->rank + 1) / c->size);
  RnCifarModel *m;
  double loss;
  int hits;

  PetscFunctionBeginUser;
  PetscCall(ModelForDepth(c, N, &m));
  RnEnsembleBatchIndices(c->seed, member, step, B, c->data->n, c->idx);
  PetscCall(RnDatasetGetBatch(c->data, c->idx + lo, hi - lo, c->mean, NULL, NULL, 0, 0, m->x, m->labels));
  PetscCall(PetscArrayzero(c->grad, m->n));
  PetscCall(RnCifarModelPass(m, hi - lo, B, capped, c->grad, &loss, &hits));
  PetscCall(RnGradientSum(c->grad, grad_sum, m->n, c->comm));
  PetscFunctionReturn(0);
}

static PetscErrorCode CifarLoss(void *ctx, int N, const double *capped, double *loss)
{
  CifarProblem *c = ctx;
  const int n = c->data->n;
  RnCifarModel *m;
  double local = 0;

  PetscFunctionBeginUser;
  PetscCall(ModelForDepth(c, N, &m));
  for (int start = 0; start < n; start += c->eval_batch) {
    const int count = PetscMin(c->eval_batch, n - start);
    const int lo = start + (int)((long long)count * c->rank / c->size), hi = start + (int)((long long)count * (c->rank + 1) / c->size);
    double l;
    int hits;
    for (int i = lo; i < hi; i++) c->idx[i - lo] = i;
    PetscCall(RnDatasetGetBatch(c->data, c->idx, hi - lo, c->mean, NULL, NULL, 0, 0, m->x, m->labels));
    PetscCall(RnCifarModelPass(m, hi - lo, count, capped, NULL, &l, &hits));
    local += l;
  }
  PetscCallMPI(MPI_Allreduce(&local, loss, 1, MPI_DOUBLE, MPI_SUM, c->comm));
  *loss /= n;
  PetscFunctionReturn(0);
}

static PetscErrorCode CifarInit(void *ctx, int N, int member, double *theta)
{
  CifarProblem *c = ctx;
  RnCifarModel *m = NULL;

  PetscFunctionBeginUser;
  PetscCall(ModelForDepth(c, N, &m));
  /* stem and head from layer ids keyed by the member, the tied block too: the same at every depth */
  PetscCall(RnCifarModelInit(m, c->seed, (uint32_t)member, theta));
  PetscFunctionReturn(0);
}

static PetscErrorCode CifarDestroy(void *ctx)
{
  CifarProblem *c = ctx;

  PetscFunctionBeginUser;
  if (c->have_model) PetscCall(RnCifarModelDestroy(&c->model));
  PetscCall(PetscFree3(c->mean, c->grad, c->idx));
  PetscCall(PetscFree(c));
  PetscFunctionReturn(0);
}

PetscErrorCode RnCifarEnsembleProblemCreate(MPI_Comm group, uint64_t seed, RnDataset data, const RnCifarEnsembleOptions *opt, RnEnsembleProblem *problem, PetscInt *nparams)
{
  CifarProblem *c;
  RnCifarModel probe;

  PetscFunctionBeginUser;
  PetscCall(PetscNew(&c));
  c->comm = group;
  PetscCallMPI(MPI_Comm_rank(group, &c->rank));
  PetscCallMPI(MPI_Comm_size(group, &c->size));
  c->seed = seed, c->data = data;
  c->channels = opt->channels, c->activation = opt->activation, c->batch = opt->batch, c->eval_batch = opt->eval_batch;
  c->precision = opt->precision, c->convolution = opt->convolution, c->ode = opt->ode;
  PetscCheck(c->batch >= c->size, group, RN_ERR_INPUT, "sgd.batch = %d cannot be split over the %d ranks of a group", c->batch, c->size);
  /* the parameter count is the same for every depth (tied block) */
  PetscCall(RnCifarModelCreate(PETSC_COMM_SELF, c->channels, c->activation, RN_FLOW_RESNET, 1, NULL, RN_PRECISION_FLOAT64, &probe));
  *nparams = probe.n;
  PetscCall(RnCifarModelDestroy(&probe));
  PetscCall(PetscMalloc3(3072, &c->mean, *nparams, &c->grad, PetscMax(c->batch, c->eval_batch), &c->idx));
  /* only the per-pixel mean (the paper's normalisation) */
  PetscCall(RnDatasetMeanStd(data, c->mean, NULL));
  problem->ctx = c;
  problem->gradient = CifarGradient;
  problem->risk = CifarLoss;
  problem->init = CifarInit;
  problem->destroy = CifarDestroy;
  PetscFunctionReturn(0);
}

PetscErrorCode RnCifarEnsembleLastBatch(const RnEnsembleProblem *problem, const int **indices, int *count)
{
  const CifarProblem *c = problem->ctx;

  PetscFunctionBeginUser;
  PetscCheck(problem->gradient == CifarGradient, PETSC_COMM_SELF, PETSC_ERR_ARG_WRONG, "not a CIFAR ensemble problem");
  *indices = c->idx, *count = c->batch;
  PetscFunctionReturn(0);
}
