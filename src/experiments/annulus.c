/* annulus.c: the paper's two-class star-shaped rings in the plane
 * (x = r (cos phi, sin phi), r = rho (2 + cos 5 phi); inner class rho in
 * [0, 1], outer class rho in [1.5, 3]), optionally zero-padded to more
 * dimensions; a tied ResNet (or the ODE) with a width-16 ReLU block
 * f(x) = W2 relu(W1 x + b1) + b2 and a linear softmax head; accuracy
 * against N and for the ODE by k-fold cross-validation. Work units (depth,
 * fold) go to the groups from a queue (units.h), largest first. */
#include "resnode/flow/flow.h"
#include "resnode/nn/optim.h"
#include "resnode/core/profile.h"
#include "resnode/core/rng.h"
#include "resnode/experiments/experiments.h"
#include "resnode/core/trainer.h"
#include "resnode/core/units.h"

#include <math.h>
#include <string.h>

#define ANNULUS_MAX_DEPTHS 32
#define ANNULUS_FOLDS_HEADER "group,member,N,model,fold,train_acc,test_acc,seconds"

typedef struct {
  int samples, pad, width, folds, epochs, batch, groups;
  int ndepths, depths[ANNULUS_MAX_DEPTHS];
  PetscBool ode;
  RnOdeOptions ode_opt;
  RnOptimOptions optim;
  RnCheckpointOptions checkpoint;
} AnnulusOptions;

static PetscErrorCode AnnulusReadOptions(RnCtx ctx, RnConfig cfg, void **options)
{
  AnnulusOptions *o;
  const int depths_default[6] = {1, 2, 4, 8, 16, 32};

  PetscFunctionBeginUser;
  PetscCall(PetscNew(&o));
  PetscCall(RnConfigGetInt(cfg, "data.samples", 1000, 10, 10000000, &o->samples));
  PetscCall(RnConfigGetInt(cfg, "data.pad_dims", 0, 0, 1000, &o->pad));
  PetscCall(RnConfigGetInt(cfg, "model.width", 16, 1, 100000, &o->width));
  PetscCall(RnConfigGetIntArray(cfg, "model.depths", 6, depths_default, 1, 100000, 0, ANNULUS_MAX_DEPTHS, &o->ndepths, o->depths));
  PetscCall(RnConfigGetBool(cfg, "model.ode", PETSC_TRUE, &o->ode));
  if (o->ndepths == 0 && !o->ode) PetscCall(RnConfigError(cfg, "model.depths", "no model to train: give depths, or set model.ode = true"));
  PetscCall(RnOdeOptionsFromConfig(cfg, "ode", &o->ode_opt));
  PetscCall(RnOptimOptionsFromConfig(cfg, "train", &o->optim));
  PetscCall(RnConfigGetInt(cfg, "train.epochs", 50, 1, 1000000, &o->epochs));
  PetscCall(RnConfigGetInt(cfg, "train.batch", 64, 1, 4096, &o->batch));
  PetscCall(RnConfigGetInt(cfg, "train.folds", 5, 2, 100, &o->folds));
  if (o->samples < 2 * o->folds) PetscCall(RnConfigError(cfg, "train.folds", "%d folds need at least %d samples (data.samples = %d)", o->folds, 2 * o->folds, o->samples));
  {
    /* the smallest training part of a fold must hold a batch, or nothing trains */
    const int smallest = o->samples - (o->samples + o->folds - 1) / o->folds;
    if (o->batch > smallest)
      PetscCall(RnConfigError(cfg, "train.batch", "%d is larger than the %d training samples of a fold (data.samples = %d, train.folds = %d): nothing would train", o->batch, smallest, o->samples,
                              o->folds));
  }
  PetscCall(RnGroupsFromConfig(ctx, cfg, ctx->world_size, PETSC_FALSE, PETSC_FALSE, &o->groups));
  PetscCall(RnCheckpointOptionsFromConfig(cfg, &o->checkpoint));
  *options = o;
  PetscFunctionReturn(0);
}

static int AnnulusGroupCount(RnCtx ctx, const void *options) { return ((const AnnulusOptions *)options)->groups; }

/* sample i: class i % 2, keyed by i alone */
static void AnnulusSample(uint64_t seed, int i, int dim, double *x, int *label)
{
  const double phi = 2 * PETSC_PI * RnRandUniformAt(seed, RN_STREAM_DATA, 7, (uint32_t)i, 0);
  const double u = RnRandUniformAt(seed, RN_STREAM_DATA, 7, (uint32_t)i, 1);
  const int c = i % 2;
  const double rho = c == 0 ? u : 1.5 + 1.5 * u, r = rho * (2 + cos(5 * phi));
  memset(x, 0, sizeof(double) * dim);
  x[0] = r * cos(phi), x[1] = r * sin(phi);
  *label = c;
}

typedef struct {
  RnNet field, head;
  RnFlow flow;
  PetscInt nblock, n;
  double *xT, *logits, *dlogits, *dxT, *tape;
} AnnulusModel;

static PetscErrorCode ModelCreate(MPI_Comm comm, const AnnulusOptions *o, int N, int cap, AnnulusModel *m)
{
  const int d = 2 + o->pad;
  RnShape in = {d, 1, 1}, hid = {o->width, 1, 1};
  RnLayer l;
  const double T = 1.0;

  PetscFunctionBeginUser;
  memset(m, 0, sizeof *m);
  PetscCall(RnNetCreate(in, &m->field));
  PetscCall(RnLayerCreateDense(in, o->width, &l));
  PetscCall(RnNetAdd(m->field, l));
  PetscCall(RnLayerCreateActivation(hid, RN_ACT_RELU, &l));
  PetscCall(RnNetAdd(m->field, l));
  PetscCall(RnLayerCreateDense(hid, d, &l));
  PetscCall(RnNetAdd(m->field, l));
  PetscCall(RnNetSetUp(m->field));
  PetscCall(RnNetCreate(in, &m->head));
  PetscCall(RnLayerCreateDense(in, 2, &l));
  PetscCall(RnNetAdd(m->head, l));
  PetscCall(RnNetSetUp(m->head));
  PetscCall(RnFlowCreate(comm, m->field, N ? RN_FLOW_RESNET : RN_FLOW_ODE, N, 1, &T, &m->flow));
  if (!N) PetscCall(RnFlowSetOdeOptions(m->flow, &o->ode_opt));
  m->nblock = m->flow->nparams;
  m->n = m->nblock + m->head->nparams;
  PetscCall(PetscMalloc5((size_t)cap * d, &m->xT, (size_t)cap * 2, &m->logits, (size_t)cap * 2, &m->dlogits, (size_t)cap * d, &m->dxT, (size_t)cap * m->head->tape_per_sample + 1, &m->tape));
  PetscFunctionReturn(0);
}

static PetscErrorCode ModelDestroy(AnnulusModel *m)
{
  PetscFunctionBeginUser;
  PetscCall(PetscFree5(m->xT, m->logits, m->dlogits, m->dxT, m->tape));
  PetscCall(RnFlowDestroy(&m->flow));
  PetscCall(RnNetDestroy(&m->field));
  PetscCall(RnNetDestroy(&m->head));
  PetscFunctionReturn(0);
}

/* loss sum and hits on b local samples; gradient of the mean over `global` when grad */
static PetscErrorCode ModelPass(AnnulusModel *m, int b, int global, const double *theta, const double *x, const int *labels, double *grad, double *loss, int *hits)
{
  PetscFunctionBeginUser;
  PetscCall(RnFlowSetRecord(m->flow, grad ? PETSC_TRUE : PETSC_FALSE));
  PetscCall(RnFlowForward(m->flow, b, theta, x, m->xT));
  PetscCall(RnNetForward(m->head, b, theta + m->nblock, m->xT, m->logits, m->tape));
  PetscCall(RnLossSoftmaxCrossEntropy(b, 2, m->logits, labels, loss, m->dlogits, hits));
  if (!grad) PetscFunctionReturn(0);
  for (int i = 0; i < 2 * b; i++) m->dlogits[i] /= global;
  PetscCall(RnNetBackward(m->head, b, theta + m->nblock, m->xT, m->dlogits, m->dxT, grad + m->nblock, m->tape));
  PetscCall(RnFlowBackward(m->flow, theta, m->dxT, NULL, grad));
  PetscFunctionReturn(0);
}

/* accuracy over the samples idx[0..n) split over the group */
static PetscErrorCode Accuracy(RnCtx ctx, AnnulusModel *m, const double *theta, const double *X, const int *Y, const int *idx, int n, int dim, double *x, int *y, double *acc)
{
  double l, local, total;
  int h, lo, hi;

  PetscFunctionBeginUser;
  RnBlockRange(n, ctx->group_rank, ctx->group_size, &lo, &hi);
  for (int i = lo; i < hi; i++) {
    PetscCall(PetscArraycpy(x + (size_t)(i - lo) * dim, X + (size_t)idx[i] * dim, dim));
    y[i - lo] = Y[idx[i]];
  }
  PetscCall(ModelPass(m, hi - lo, n, theta, x, y, NULL, &l, &h));
  local = h;
  PetscCallMPI(MPI_Allreduce(&local, &total, 1, MPI_DOUBLE, MPI_SUM, ctx->group));
  *acc = total / n;
  PetscFunctionReturn(0);
}

/* The head's first layer id: after the field's, and never below this one, so
 * that fields of fewer layers keep the streams they had when it was fixed. */
#define ANNULUS_HEAD_FIRST_ID 50

/* What the units of a run share: the samples, the folds, work buffers. */
typedef struct {
  const AnnulusOptions *o;
  RnCtx ctx;
  RnUnitQueue queue;
  int dim, S;
  double *X, *x;
  int *Y, *y, *perm, *train_idx, *test_idx;
} AnnulusRunCtx;

static int AnnulusDepthN(const AnnulusOptions *o, int di) { return di < o->ndepths ? o->depths[di] : 0; }

/* One unit (a depth on a fold), start to end, on this rank's group: its row
 * of folds.csv in its own directory, a checkpoint when it is done. */
static PetscErrorCode TrainUnit(void *run, int unit)
{
  AnnulusRunCtx *rc = run;
  const AnnulusOptions *o = rc->o;
  RnCtx ctx = rc->ctx;
  const int S = rc->S, dim = rc->dim, di = unit / o->folds, fold = unit % o->folds, N = AnnulusDepthN(o, di);
  const int f_lo = (int)((long long)S * fold / o->folds), f_hi = (int)((long long)S * (fold + 1) / o->folds);
  int ntrain = 0, ntest = 0;
  AnnulusModel m;
  RnOptim optim;
  RnTrainer tr;
  RnMetrics folds_csv;
  double *theta, *grad, *gsum, t0 = RnWallTime(), train_acc, test_acc;
  long long done;

  PetscFunctionBeginUser;
  PetscCall(RnUnitQueueTrainerCreate(rc->queue, unit, &o->checkpoint, "annulus", &tr));
  PetscCall(RnTrainerOpenMetrics(tr, "folds.csv", ANNULUS_FOLDS_HEADER, &folds_csv));
  PetscCall(RnTrainerStart(tr, 1, &done));
  for (int i = 0; i < S; i++) {
    if (i >= f_lo && i < f_hi) rc->test_idx[ntest++] = rc->perm[i];
    else rc->train_idx[ntrain++] = rc->perm[i];
  }
  PetscCall(ModelCreate(ctx->group, o, N, PetscMax(o->batch, S), &m));
  PetscCall(PetscMalloc3(m.n, &theta, m.n + 1, &grad, m.n + 1, &gsum));
  PetscCall(RnFlowInit(m.flow, ctx->seed, (uint32_t)fold, 0, theta));
  PetscCall(RnNetInit(m.head, ctx->seed, (uint32_t)fold, PetscMax(ANNULUS_HEAD_FIRST_ID, RnFlowLayerIdCount(m.flow)), theta + m.nblock));
  PetscCall(RnOptimCreate(m.n, &o->optim, &optim));
  for (int epoch = 0; epoch < o->epochs; epoch++) {
    int *order = rc->y; /* scratch for the order */
    RnRandPermutation(ctx->seed, RN_STREAM_ORDER, (uint32_t)fold, (uint32_t)epoch, ntrain, order);
    for (int i = 0; i < ntrain; i++) order[i] = rc->train_idx[order[i]];
    for (int b0 = 0; b0 + o->batch <= ntrain; b0 += o->batch) {
      int labels[4096], h, lo, hi;
      double l;
      RnBlockRange(o->batch, ctx->group_rank, ctx->group_size, &lo, &hi);
      lo += b0, hi += b0;
      for (int i = lo; i < hi; i++) {
        PetscCall(PetscArraycpy(rc->x + (size_t)(i - lo) * dim, rc->X + (size_t)order[i] * dim, dim));
        labels[i - lo] = rc->Y[order[i]];
      }
      PetscCall(PetscArrayzero(grad, m.n + 1));
      PetscCall(ModelPass(&m, hi - lo, o->batch, theta, rc->x, labels, grad, &l, &h));
      grad[m.n] = l; /* the loss rides along */
      PetscCall(RnGradientSum(grad, gsum, m.n + 1, ctx->group));
      if (!isfinite(gsum[m.n]))
        RnCollectiveError(ctx->group, RN_ERR_NONFINITE, "annulus: the loss is %g at epoch %d (fold %d, N = %d); lower train.lr (the last good checkpoint is kept)", gsum[m.n], epoch + 1, fold, N);
      PetscCall(RnOptimStep(optim, 1.0, theta, gsum));
    }
  }
  {
    RnStage before;
    PetscCall(RnProfileEvaluationBegin(&before));
    PetscCall(Accuracy(ctx, &m, theta, rc->X, rc->Y, rc->train_idx, ntrain, dim, rc->x, rc->y, &train_acc));
    PetscCall(Accuracy(ctx, &m, theta, rc->X, rc->Y, rc->test_idx, ntest, dim, rc->x, rc->y, &test_acc));
    PetscCall(RnProfileEvaluationEnd(before));
  }
  PetscCall(RnMetricsRow(folds_csv, "%d,%d,%d,%s,%d,%.6f,%.6f,%.2f", ctx->group_id, fold, N, N ? "resnet" : "ode", fold, train_acc, test_acc, RnWallTime() - t0));
  PetscCall(RnTrainerStepDone(tr, 1, PETSC_TRUE, "%s N = %d on fold %d", N ? "resnet" : "ode", N, fold));
  PetscCall(RnTrainerDestroy(&tr));
  PetscCall(RnMetricsClose(&folds_csv));
  PetscCall(RnOptimDestroy(&optim));
  PetscCall(PetscFree3(theta, grad, gsum));
  PetscCall(ModelDestroy(&m));
  PetscFunctionReturn(0);
}

/* accuracy.csv from the run's folds.csv (rank 0): mean and std of the test
 * accuracy over the folds of each depth. */
static PetscErrorCode WriteAccuracy(RnCtx ctx, RnRunDir rd, const AnnulusOptions *o)
{
  const int D = o->ndepths + (o->ode ? 1 : 0);
  double sum[ANNULUS_MAX_DEPTHS + 1] = {0}, sq[ANNULUS_MAX_DEPTHS + 1] = {0};
  int count[ANNULUS_MAX_DEPTHS + 1] = {0};
  char path[PETSC_MAX_PATH_LEN + 32], line[512];
  RnMetrics acc_csv;
  FILE *fp;

  PetscFunctionBeginUser;
  if (ctx->world_rank == 0) {
    PetscCall(RnRunDirFile(rd, "folds.csv", path, sizeof path));
    fp = fopen(path, "r");
    PetscCheck(fp, PETSC_COMM_SELF, PETSC_ERR_FILE_OPEN, "cannot read %s", path);
    while (fgets(line, sizeof line, fp)) {
      int g, member, N, fold;
      char model[16];
      double tr, te, sec;
      if (sscanf(line, "%d,%d,%d,%15[^,],%d,%lf,%lf,%lf", &g, &member, &N, model, &fold, &tr, &te, &sec) != 8) continue; /* the header */
      for (int d = 0; d < D; d++)
        if (AnnulusDepthN(o, d) == N) {
          sum[d] += te, sq[d] += te * te, count[d]++;
          break;
        }
    }
    fclose(fp);
  }
  PetscCall(RnMetricsOpen(rd, "accuracy.csv", "N,model,folds,mean_test_acc,std_test_acc", &acc_csv));
  for (int d = 0; d < D && ctx->world_rank == 0; d++) {
    const int N = AnnulusDepthN(o, d), k = count[d];
    const double mean = k ? sum[d] / k : NAN, sd = k > 1 ? sqrt(PetscMax(sq[d] / k - mean * mean, 0) * k / (k - 1)) : NAN;
    PetscCall(RnMetricsRow(acc_csv, "%d,%s,%d,%.6f,%.6f", N, N ? "resnet" : "ode", k, mean, sd));
    PetscCall(RnLog(ctx, "annulus: %-6s N = %-4d test accuracy %.4f +- %.4f (%d folds)\n", N ? "resnet" : "ode", N, mean, sd, k));
  }
  PetscCall(RnMetricsClose(&acc_csv));
  PetscFunctionReturn(0);
}

static PetscErrorCode AnnulusRun(RnCtx ctx, RnRunDir rd, void *options)
{
  AnnulusOptions *o = options;
  AnnulusRunCtx rc = {0};
  const int D = o->ndepths + (o->ode ? 1 : 0), nunits = D * o->folds;
  RnUnitInfo *units;
  const double start = RnWallTime();

  PetscFunctionBeginUser;
  rc.o = o, rc.ctx = ctx, rc.dim = 2 + o->pad, rc.S = o->samples;
  PetscCall(PetscMalloc3((size_t)rc.S * rc.dim, &rc.X, rc.S, &rc.Y, rc.S, &rc.perm));
  PetscCall(PetscMalloc4((size_t)rc.S * rc.dim, &rc.x, rc.S, &rc.y, rc.S, &rc.train_idx, rc.S, &rc.test_idx));
  for (int i = 0; i < rc.S; i++) AnnulusSample(ctx->seed, i, rc.dim, rc.X + (size_t)i * rc.dim, &rc.Y[i]);
  /* the folds: a fixed permutation of the samples cut in k pieces */
  RnRandPermutation(ctx->seed, RN_STREAM_SPLIT, 0, 0, rc.S, rc.perm);
  PetscCall(RnLog(ctx, "annulus: %d samples in R^%d, width %d, %d depths%s, %d-fold cross-validation: %d units on %d group(s)\n", rc.S, rc.dim, o->width, o->ndepths,
                  o->ode ? " + the ODE" : "", o->folds, nunits, ctx->group_count));
  /* the units (depth-major) and their work: N block evaluations, the ODE's by its solver */
  PetscCall(PetscMalloc1(nunits, &units));
  for (int u = 0; u < nunits; u++) {
    const int N = AnnulusDepthN(o, u / o->folds);
    if (N) snprintf(units[u].name, sizeof units[u].name, "resnet-N%d-fold%d", N, u % o->folds);
    else snprintf(units[u].name, sizeof units[u].name, "ode-fold%d", u % o->folds);
    units[u].cost = N ? N : RnOdeFieldEvaluationsPerPass(&o->ode_opt);
    units[u].steps = 1;
  }
  PetscCall(RnUnitQueueCreate(ctx, rd, nunits, units, &rc.queue));
  PetscCall(RnUnitQueueAddTable(rc.queue, "folds.csv", ANNULUS_FOLDS_HEADER));
  PetscCall(RnUnitQueueRun(rc.queue, TrainUnit, &rc));
  PetscCall(RnUnitQueueDestroy(&rc.queue));
  PetscCall(WriteAccuracy(ctx, rd, o));
  PetscCall(RnLog(ctx, "annulus: %d unit(s) in %.1f s\n", nunits, RnWallTime() - start));
  PetscCall(PetscFree(units));
  PetscCall(PetscFree3(rc.X, rc.Y, rc.perm));
  PetscCall(PetscFree4(rc.x, rc.y, rc.train_idx, rc.test_idx));
  PetscFunctionReturn(0);
}

const RnExperiment RnExperimentAnnulus = {"annulus", "two-class star-shaped rings: accuracy of tied ResNets against N and of the ODE, k-fold CV", AnnulusReadOptions, AnnulusGroupCount, AnnulusRun, "plot-annulus", RnExperimentOdePrefixes, PETSC_TRUE, NULL, NULL};
