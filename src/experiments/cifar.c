/* cifar.c: CIFAR-10 with the paper's architecture (Avelin and Nystrom):
 *   stem:  conv3x3(3 -> C, stride 2) + ReLU, batch norm
 *   block: N weight-tied steps x += (1/N) conv3x3(relu(conv3x3(x)))  (or untied,
 *          or the neural ODE dx/dt = conv(relu(conv(x))) on [0, 1] through TS)
 *   head:  batch norm, conv3x3(C -> 64, stride 4) + ReLU, batch norm,
 *          4x4 average pooling, linear 64 -> 10, softmax cross-entropy.
 * Data-parallel within a group (the batch split over its ranks, one
 * Allreduce of the flat gradient, batch norm reduced over the group); the
 * groups train the models of the depth sweep side by side, in rounds. */
#include "resnode/core/profile.h"
#include "resnode/core/snapshot.h"
#include "resnode/core/trainer.h"
#include "resnode/core/units.h"
#include "resnode/models/cifar.h"
#include "resnode/data/data.h"
#include "resnode/flow/flow.h"
#include "resnode/nn/optim.h"
#include "resnode/core/rng.h"
#include "resnode/experiments/experiments.h"

#include <math.h>
#include <string.h>

#define CIFAR_MAX_UNITS 64
/* the stem and head of a unit's network, in block evaluations (cost model) */
#define CIFAR_STEM_HEAD_COST 0.5
#define CIFAR_EPOCHS_HEADER "group,member,N,model,fold,epoch,step,time_s,lr,train_loss,train_acc,val_acc,test_acc,images_per_s"
#define CIFAR_FINAL_HEADER "group,member,N,model,fold,params,test_acc,val_acc,train_acc,seconds"

typedef struct {
  char dir[PETSC_MAX_PATH_LEN];
  int max_train, max_test, validation;
  PetscBool normalize_std;
  RnAugment augment;
  PetscBool use_augment;
  int channels;
  RnActivation activation;
  RnPrecision precision;
  RnConvAlgorithm convolution;
  int ndepths, depths[CIFAR_MAX_UNITS];
  PetscBool ode, untied;
  RnOdeOptions ode_opt;
  RnOptimOptions optim;
  RnLrSchedule schedule;
  double bn_momentum, bn_eps; /* PyTorch's convention: the weight of the new batch */
  int epochs, batch, eval_batch, log_every;
  int folds, fold_first, fold_count; /* k-fold; the folds this run trains */
  int groups;
  double half_rate_batch;
  char group_shape[256]; /* the group shape and its predicted busy fraction (log and manifest) */
  RnCheckpointOptions checkpoint;
} CifarOptions;

static const char *const rn_fill_names[] = {"edge", "zero", NULL};
static void CifarUnits(const CifarOptions *o, const int *model_N, int nunits, int steps_per_epoch, RnUnitInfo *units);

static PetscErrorCode CifarReadOptions(RnCtx ctx, RnConfig cfg, void **options)
{
  CifarOptions *o;
  int fill;
  const int depths_default[4] = {2, 4, 8, 16};

  PetscFunctionBeginUser;
  PetscCall(PetscNew(&o));
  PetscCall(RnConfigGetPath(cfg, "data.dir", RN_REQUIRED, 2, o->dir, sizeof o->dir));
  PetscCall(RnConfigGetInt(cfg, "data.max_train", 0, 0, 1000000, &o->max_train));
  PetscCall(RnConfigGetInt(cfg, "data.max_test", 0, 0, 1000000, &o->max_test));
  PetscCall(RnConfigGetInt(cfg, "data.folds", 1, 1, 100, &o->folds));
  if (o->folds > 1) {
    /* each unit is validated on its held-out fold */
    if (RnConfigHas(cfg, "data.validation"))
      PetscCall(RnConfigError(cfg, "data.validation", "not used with data.folds = %d: each model is validated on its held-out fold; remove it (or set data.folds = 1)", o->folds));
  } else PetscCall(RnConfigGetInt(cfg, "data.validation", 5000, 0, 1000000, &o->validation));
  {
    int fold;
    /* one fold only (an array task per fold): -1 trains them all */
    PetscCall(RnConfigGetInt(cfg, "data.fold", -1, -1, 99, &fold));
    if (fold >= o->folds) PetscCall(RnConfigError(cfg, "data.fold", "%d is not a fold of data.folds = %d (folds are 0 .. %d; -1: all)", fold, o->folds, o->folds - 1));
    o->fold_first = fold < 0 ? 0 : fold, o->fold_count = fold < 0 ? o->folds : 1;
  }
  PetscCall(RnConfigGetBool(cfg, "data.normalize_std", PETSC_TRUE, &o->normalize_std));
  PetscCall(RnConfigGetBool(cfg, "data.augment.enable", PETSC_TRUE, &o->use_augment));
  /* shifts in pixels, or as a fraction of the image (sub-pixel, Keras' shift ranges) */
  PetscCall(RnConfigGetReal(cfg, "data.augment.shift_fraction", 0.0, 0.0, 0.5, &o->augment.shift_fraction));
  if (o->augment.shift_fraction > 0 && RnConfigHas(cfg, "data.augment.shift"))
    PetscCall(RnConfigError(cfg, "data.augment.shift", "give the shift in pixels (shift) or as a fraction of the image (shift_fraction = %g), not both", o->augment.shift_fraction));
  if (o->augment.shift_fraction == 0) PetscCall(RnConfigGetInt(cfg, "data.augment.shift", 4, 0, 16, &o->augment.max_shift));
  PetscCall(RnConfigGetBool(cfg, "data.augment.flip", PETSC_TRUE, &o->augment.flip));
  PetscCall(RnConfigGetChoice(cfg, "data.augment.fill", "edge", rn_fill_names, &fill));
  o->augment.zero_fill = fill == 1 ? PETSC_TRUE : PETSC_FALSE;
  PetscCall(RnConfigGetInt(cfg, "model.channels", 16, 1, 4096, &o->channels));
  PetscCall(RnCifarActivationFromConfig(cfg, &o->activation));
  {
    /* Keras' convention in the config: the weight of the old running statistics */
    double keep;
    PetscCall(RnConfigGetReal(cfg, "model.batchnorm.momentum", 0.9, 0.0, 1.0, &keep));
    PetscCall(RnConfigGetReal(cfg, "model.batchnorm.eps", RN_BATCHNORM_EPS, 1e-12, 1.0, &o->bn_eps));
    o->bn_momentum = 1.0 - keep;
  }
  {
    int p;
    PetscCall(RnConfigGetChoice(cfg, "model.precision", "float32", RnPrecisionNames, &p));
    o->precision = (RnPrecision)p;
    PetscCall(RnCheckPrecision(cfg, o->precision));
    PetscCall(RnConfigGetChoice(cfg, "model.convolution", "auto", RnConvAlgorithmNames, &p));
    o->convolution = (RnConvAlgorithm)p;
  }
  PetscCall(RnConfigGetIntArray(cfg, "model.depths", 4, depths_default, 1, 100000, 0, CIFAR_MAX_UNITS - 1, &o->ndepths, o->depths));
  PetscCall(RnConfigGetBool(cfg, "model.ode", PETSC_TRUE, &o->ode));
  PetscCall(RnConfigGetBool(cfg, "model.untied", PETSC_FALSE, &o->untied));
  if (o->ndepths == 0 && !o->ode) PetscCall(RnConfigError(cfg, "model.depths", "no model to train: give depths, or set model.ode = true"));
  PetscCall(RnOdeOptionsFromConfig(cfg, "ode", &o->ode_opt));
  if (o->ode && o->ode_opt.adaptive) {
    /* an error estimate cannot resolve tolerances below the noise of the field's evaluations */
    const double tol_min = 8 * RnPrecisionEpsilon(o->precision);
    if (o->ode_opt.rtol < tol_min)
      PetscCall(RnConfigError(cfg, "ode.rtol", "%g is below what %s evaluations of the vector field resolve; use ode.rtol >= %.1e (and ode.atol >= %.1e), a fixed step (ode.adaptive = false), or model.precision = \"float64\"",
                              o->ode_opt.rtol, RnPrecisionNames[o->precision], tol_min, tol_min));
    if (o->ode_opt.atol < tol_min)
      PetscCall(RnConfigError(cfg, "ode.atol", "%g is below what %s evaluations of the vector field resolve; use ode.atol >= %.1e, a fixed step (ode.adaptive = false), or model.precision = \"float64\"",
                              o->ode_opt.atol, RnPrecisionNames[o->precision], tol_min));
  }
  PetscCall(RnOptimOptionsFromConfig(cfg, "train", &o->optim));
  PetscCall(RnConfigGetInt(cfg, "train.epochs", 10, 1, 100000, &o->epochs));
  PetscCall(RnConfigGetInt(cfg, "train.batch", 128, 1, 1000000, &o->batch));
  PetscCall(RnConfigGetInt(cfg, "train.eval_batch", 500, 1, 1000000, &o->eval_batch));
  PetscCall(RnConfigGetInt(cfg, "train.log_every", 20, 1, 1000000, &o->log_every));
  PetscCall(RnLrScheduleFromConfig(cfg, "train", &o->schedule));
  if (o->schedule.plateau && (o->schedule.metric == RN_METRIC_VAL_LOSS || o->schedule.metric == RN_METRIC_VAL_ACC) && o->folds == 1 && o->validation == 0)
    PetscCall(RnConfigError(cfg, "train.plateau.metric", "\"%s\" needs validation data: set data.validation > 0 or data.folds > 1, or watch \"train_loss\"", RnMetricKindNames[o->schedule.metric]));
  PetscCall(RnGroupsFromConfig(ctx, cfg, 1, PETSC_TRUE, PETSC_TRUE, &o->groups));
  PetscCall(RnConfigGetReal(cfg, "parallel.half_rate_batch", RN_HALF_RATE_BATCH, 0.0, 1e6, &o->half_rate_batch));
  {
    /* the group shape: chosen for the least predicted wall time ("auto"), or as given */
    const int nmodels = o->ndepths + (o->ode ? 1 : 0), nunits = nmodels * o->fold_count;
    int model_N[CIFAR_MAX_UNITS];
    double cost[CIFAR_MAX_UNITS * 100], wall, busy;
    RnUnitInfo *units;
    const PetscBool automatic = o->groups == RN_GROUPS_AUTO ? PETSC_TRUE : PETSC_FALSE;
    for (int u = 0; u < nmodels; u++) model_N[u] = u < o->ndepths ? o->depths[u] : 0;
    PetscCall(PetscMalloc1(nunits, &units));
    CifarUnits(o, model_N, nunits, 1, units);
    for (int u = 0; u < nunits; u++) cost[u] = units[u].cost;
    PetscCall(PetscFree(units));
    if (automatic) PetscCall(RnGroupsChoose(ctx, nunits, cost, o->batch, o->half_rate_batch, &o->groups, &wall, &busy));
    else RnScheduleSimulate(nunits, cost, ctx->world_size, o->groups, o->batch, o->half_rate_batch, &wall, &busy);
    PetscCall(PetscSNPrintf(o->group_shape, sizeof o->group_shape, "%d group(s) of %d rank(s)%s; predicted busy fraction %.0f%% (%d unit(s), largest first)", o->groups, ctx->world_size / o->groups,
                            automatic ? ", chosen by parallel.groups = \"auto\"" : "", 100 * busy, nunits));
  }
  if (o->batch < ctx->world_size / o->groups)
    PetscCall(RnConfigError(cfg, "train.batch", "a batch of %d cannot be split over the %d ranks of a group", o->batch, ctx->world_size / o->groups));
  PetscCall(RnCheckpointOptionsFromConfig(cfg, &o->checkpoint));
  /* every file on every node, after the keys and before the run directory is made */
  if (!RnConfigDescribing(cfg)) {
    PetscCall(RnCifarCheck(ctx->world, o->dir, PETSC_TRUE));
    PetscCall(RnCifarCheck(ctx->world, o->dir, PETSC_FALSE));
  }
  *options = o;
  PetscFunctionReturn(0);
}

static int CifarGroupCount(RnCtx ctx, const void *options) { return ((const CifarOptions *)options)->groups; }

/* Accuracy on a data set, in inference mode, split over the group. */
static PetscErrorCode EvaluateBody(RnCtx ctx, RnCifarModel *m, const CifarOptions *o, RnDataset ds, const int *samples, int nsamples, const double *mean, const double *std, const double *theta,
                               double *accuracy, double *loss)
{
  double local[2] = {0, 0}, total[2];
  int *idx;

  PetscFunctionBeginUser;
  *accuracy = NAN, *loss = NAN;
  if (!ds || nsamples == 0) PetscFunctionReturn(0);
  PetscCall(RnCifarModelSetTraining(m, PETSC_FALSE));
  PetscCall(PetscMalloc1(o->eval_batch, &idx));
  for (int start = 0; start < nsamples; start += o->eval_batch) {
    const int count = PetscMin(o->eval_batch, nsamples - start);
    double l;
    int c, lo, hi;
    RnBlockRange(count, ctx->group_rank, ctx->group_size, &lo, &hi);
    lo += start, hi += start;
    for (int i = lo; i < hi; i++) idx[i - lo] = samples ? samples[i] : i;
    PetscCall(RnCifarModelReserve(m, PetscMax(hi - lo, 1)));
    PetscCall(RnDatasetGetBatch(ds, idx, hi - lo, mean, std, NULL, 0, 0, m->x, m->labels));
    PetscCall(RnCifarModelPass(m, hi - lo, count, theta, NULL, &l, &c));
    local[0] += c, local[1] += l;
  }
  PetscCallMPI(MPI_Allreduce(local, total, 2, MPI_DOUBLE, MPI_SUM, ctx->group));
  *accuracy = total[0] / nsamples;
  *loss = total[1] / nsamples;
  PetscCall(PetscFree(idx));
  PetscCall(RnCifarModelSetTraining(m, PETSC_TRUE));
  PetscFunctionReturn(0);
}

/* in the evaluation stage and event */
static PetscErrorCode Evaluate(RnCtx ctx, RnCifarModel *m, const CifarOptions *o, RnDataset ds, const int *samples, int nsamples, const double *mean, const double *std, const double *theta,
                               double *accuracy, double *loss)
{
  RnStage before;

  PetscFunctionBeginUser;
  PetscCall(RnProfileEvaluationBegin(&before));
  PetscCall(EvaluateBody(ctx, m, o, ds, samples, nsamples, mean, std, theta, accuracy, loss));
  PetscCall(RnProfileEvaluationEnd(before));
  PetscFunctionReturn(0);
}

/* The depth of a unit's model, and its fold: units are model-major. */
static int UnitN(const CifarOptions *o, const int *model_N, int unit) { return model_N[unit / o->fold_count]; }
static int UnitFold(const CifarOptions *o, int unit) { return o->fold_first + unit % o->fold_count; }

/* A unit's training state, checkpointed in its own directory (units.h). */
typedef struct {
  double *theta, *optim_state, *bn;
  long optim_step;
  double epoch_sums[2]; /* loss and hits of the epoch so far (a checkpoint within an epoch) */
  RnPlateauState plateau;
} UnitState;

/* The optimizer and batch-norm state into the unit's checkpointed buffers. */
static PetscErrorCode SaveUnitState(UnitState *us, RnCifarModel *m, RnOptim optim, double loss_sum, double correct)
{
  PetscFunctionBeginUser;
  PetscCall(PetscArraycpy(us->optim_state, optim->state, optim->nstate));
  us->optim_step = optim->step;
  PetscCall(RnNetGetState(m->stem, us->bn));
  PetscCall(RnNetGetState(m->head, us->bn + RnNetStateSize(m->stem)));
  us->epoch_sums[0] = loss_sum, us->epoch_sums[1] = correct;
  PetscFunctionReturn(0);
}

/* The group's sum of the flat gradient (loss and hits ride along). In float32
 * and bfloat16 the gradient is float32 arithmetic already: it travels as
 * float32 (half the bytes); float64 keeps double. */
static PetscErrorCode AllreduceGradient(RnCtx ctx, RnPrecision precision, PetscInt n, const double *grad, float *buf, double *sum)
{
  PetscFunctionBeginUser;
  if (precision == RN_PRECISION_FLOAT64 || ctx->group_size == 1) {
    PetscCall(RnGradientSum(grad, sum, n, ctx->group));
    PetscFunctionReturn(0);
  }
  PetscCall(RnEventBegin(RN_EV_GRAD_REDUCE));
  /* the last two entries (loss sum, hits) stay exact in double */
  for (PetscInt i = 0; i < n - 2; i++) buf[i] = (float)grad[i];
  PetscCallMPI(MPI_Allreduce(MPI_IN_PLACE, buf, (int)(n - 2), MPI_FLOAT, MPI_SUM, ctx->group));
  PetscCallMPI(MPI_Allreduce(grad + n - 2, sum + n - 2, 2, MPI_DOUBLE, MPI_SUM, ctx->group));
  for (PetscInt i = 0; i < n - 2; i++) sum[i] = buf[i];
  PetscCall(RnEventEnd(RN_EV_GRAD_REDUCE));
  PetscFunctionReturn(0);
}

/* Says once what computes: the CPU, the precision and oneDNN's kernels (log
 * and manifest; group 0, which holds world rank 0, writes them). */
static PetscErrorCode NameKernels(RnCtx ctx, RnRunDir rd, RnCifarModel *m, RnPrecision precision)
{
  char cpu[256], stem[640], field[640], head[640], all[2048];

  PetscFunctionBeginUser;
  if (ctx->group_id != 0) PetscFunctionReturn(0);
  RnCpuDescribe(cpu, sizeof cpu);
  PetscCall(RnNetDescribeKernels(m->stem, stem, sizeof stem));
  PetscCall(RnNetDescribeKernels(m->field, field, sizeof field));
  PetscCall(RnNetDescribeKernels(m->head, head, sizeof head));
  PetscCall(PetscSNPrintf(all, sizeof all, "%s on %s, %d thread(s) a rank | stem: %s | field: %s | head: %s", RnPrecisionNames[precision], cpu, RnThreadsPerRank(), stem, field, head));
  PetscCall(RnLog(ctx, "kernels: %s\n", all));
  PetscCall(RnRunDirSetKernels(rd, all));
  PetscCall(RnRunDirSetStatus(rd, "running", ""));
  PetscFunctionReturn(0);
}

static RnFlowKind UnitKind(const CifarOptions *o, int N) { return N ? (o->untied ? RN_FLOW_UNTIED : RN_FLOW_RESNET) : RN_FLOW_ODE; }
static const char *ModelKind(const CifarOptions *o, int N) { return N ? (o->untied ? "untied" : "resnet") : "ode"; }

/* A unit's data: the indices into the training files it trains on and is
 * validated on (its held-out fold with data.folds > 1, else the validation
 * split), and the mean and std of its training part. */
typedef struct {
  int fold, ntrain, nval;
  int *train, *val;
  double *mean, std[3];
} UnitData;

static PetscErrorCode UnitDataSetUp(const CifarOptions *o, RnDataset all, const int *fold_of, uint64_t seed, int fold, UnitData *u)
{
  PetscFunctionBeginUser;
  u->fold = fold;
  if (o->folds == 1) {
    u->nval = o->validation, u->ntrain = all->n - o->validation;
    PetscCall(RnDatasetSplitIndices(all->n, o->validation, seed, u->train, u->val));
  } else {
    u->ntrain = u->nval = 0;
    for (int i = 0; i < all->n; i++) {
      if (fold_of[i] == fold) u->val[u->nval++] = i;
      else u->train[u->ntrain++] = i;
    }
  }
  PetscCall(RnDatasetMeanStdOf(all, u->train, u->ntrain, u->mean, o->normalize_std ? u->std : NULL));
  PetscFunctionReturn(0);
}

/* snapshots/theta-<kind>-N<N>[-fold<f>].bin: a unit's final parameters. */
static PetscErrorCode WriteUnitSnapshot(RnRunDir rd, const CifarOptions *o, int N, int fold, long long steps, PetscInt n, const double *theta)
{
  char path[PETSC_MAX_PATH_LEN + 64], suffix[32] = "";
  RnSnapshotInfo info = {0, N, steps, (double)o->epochs};

  PetscFunctionBeginUser;
  if (o->folds > 1) PetscCall(PetscSNPrintf(suffix, sizeof suffix, "-fold%d", fold));
  PetscCall(PetscSNPrintf(path, sizeof path, "%s/snapshots/theta-%s-N%d%s.bin", rd->path, ModelKind(o, N), N, suffix));
  PetscCall(RnSnapshotWrite(path, &info, n, theta));
  PetscFunctionReturn(0);
}

/* The folds (k > 1: stratified, fold_of[i] for each image; 1: the validation
 * split) and the steps of an epoch: the same for every unit, the smallest
 * training set's (fold sizes differ by at most one). */
static PetscErrorCode FoldsSetUp(RnCtx ctx, const CifarOptions *o, RnDataset all, int **fold_of, int *steps_per_epoch)
{
  int min_train = all->n - o->validation;

  PetscFunctionBeginUser;
  if (o->folds == 1 && o->validation >= all->n) RnInputError(ctx->world, "data.validation = %d leaves no training samples (the training files hold %d); lower it", o->validation, all->n);
  if (o->folds > 1) {
    int largest = 0, *size;
    RnInputCheck(o->folds <= all->n, ctx->world, "data.folds = %d is more than the %d training images", o->folds, all->n);
    PetscCall(PetscMalloc1(all->n, fold_of));
    PetscCall(RnDatasetStratifiedFolds(all, o->folds, ctx->seed, *fold_of));
    PetscCall(PetscCalloc1(o->folds, &size));
    for (int i = 0; i < all->n; i++) size[(*fold_of)[i]]++;
    for (int f = 0; f < o->folds; f++) largest = PetscMax(largest, size[f]);
    PetscCall(PetscFree(size));
    min_train = all->n - largest;
  }
  *steps_per_epoch = min_train / o->batch;
  RnInputCheck(*steps_per_epoch >= 1, ctx->world, "train.batch = %d is larger than the %d training images", o->batch, min_train);
  PetscFunctionReturn(0);
}

/* What every unit of a run shares: the data, the folds, the work buffers. */
typedef struct {
  const CifarOptions *o;
  RnCtx ctx;
  RnRunDir rd;
  RnUnitQueue queue;
  RnDataset all, test;
  int *fold_of, steps_per_epoch, model_N[CIFAR_MAX_UNITS];
  int lo, hi; /* this rank's block of a batch */
  int *perm, *idx;
  UnitData ud;
  double start;
  PetscBool named; /* the kernels are named in the log and manifest */
} CifarRunCtx;

/* --plan: an epoch's evaluation (held-out and test images) timed on a
 * part of it, one evaluation batch a rank, and scaled to all its images. */
static PetscErrorCode PlanEvaluation(RnCtx ctx, RnCifarModel *m, const CifarOptions *o, const CifarRunCtx *rc, const UnitData *ud, const double *stdp, const double *theta, RnTrainer tr, int spe)
{
  const int nval = ud->nval, ntest = rc->test ? rc->test->n : 0, images = nval + ntest;
  const int measured = PetscMin(nval > 0 ? nval : ntest, o->eval_batch * ctx->group_size);
  double t0, acc, loss;

  PetscFunctionBeginUser;
  PetscCall(RnEventBegin(RN_EV_BARRIER));
  PetscCallMPI(MPI_Barrier(ctx->group));
  PetscCall(RnEventEnd(RN_EV_BARRIER));
  t0 = RnWallTime();
  if (nval > 0) PetscCall(Evaluate(ctx, m, o, rc->all, ud->val, measured, ud->mean, stdp, theta, &acc, &loss));
  else PetscCall(Evaluate(ctx, m, o, rc->test, NULL, measured, ud->mean, stdp, theta, &acc, &loss));
  PetscCall(RnTrainerPlanPeriod(tr, spe, measured > 0 ? (RnWallTime() - t0) * images / measured : 0.0));
  PetscFunctionReturn(0);
}

/* One unit, start (or checkpoint) to end, on this rank's group. */
static PetscErrorCode TrainUnit(void *run, int unit)
{
  CifarRunCtx *rc = run;
  const CifarOptions *o = rc->o;
  RnCtx ctx = rc->ctx, view = RnUnitQueueGroupView(rc->queue);
  const int fold = UnitFold(o, unit), N = UnitN(o, rc->model_N, unit), spe = rc->steps_per_epoch, lo = rc->lo, hi = rc->hi;
  const long long total = (long long)o->epochs * spe;
  const double *stdp = o->normalize_std ? rc->ud.std : NULL;
  UnitData *ud = &rc->ud;
  UnitState us = {0};
  RnCifarModel m;
  RnOptim optim;
  RnTrainer tr;
  RnMetrics epochs_csv, final_csv;
  double *grad, *gsum, unit_start = RnWallTime();
  float *grad32;
  char describe[64] = "-", fold_name[32] = "";
  long long resumed;
  int epoch0, step0;

  PetscFunctionBeginUser;
  PetscCall(UnitDataSetUp(o, rc->all, rc->fold_of, ctx->seed, fold, ud));
  PetscCall(RnCifarModelCreate(ctx->group, o->channels, o->activation, UnitKind(o, N), N, &o->ode_opt, o->precision, &m));
  PetscCall(RnCifarModelSetConvAlgorithm(&m, o->convolution));
  PetscCall(RnCifarModelSetBatchNorm(&m, o->bn_momentum, o->bn_eps));
  PetscCall(PetscMalloc2(m.n + 2, &grad, m.n + 2, &gsum));
  PetscCall(PetscMalloc1(m.n + 2, &grad32));
  PetscCall(RnOptimCreate(m.n, &o->optim, &optim));
  PetscCall(RnCifarModelReserve(&m, PetscMax(hi - lo, 1)));
  PetscCall(PetscCalloc3(m.n, &us.theta, optim->nstate, &us.optim_state, RnNetStateSize(m.stem) + RnNetStateSize(m.head), &us.bn));
  if (N) PetscCall(PetscSNPrintf(describe, sizeof describe, "%s(N=%d)", ModelKind(o, N), N));
  else {
    RnDepthOptions d = {RN_FLOW_ODE, 0, o->ode_opt};
    RnDepthDescribe(&d, describe, sizeof describe);
  }
  if (o->folds > 1) PetscCall(PetscSNPrintf(fold_name, sizeof fold_name, " on fold %d", fold));

  /* the unit's state, checkpointed by the group's leader in units/<name> */
  PetscCall(RnUnitQueueTrainerCreate(rc->queue, unit, &o->checkpoint, "cifar", &tr));
  PetscCall(RnTrainerAddState(tr, "theta", us.theta, sizeof(double) * m.n, 0));
  PetscCall(RnTrainerAddState(tr, "optimizer", us.optim_state, sizeof(double) * optim->nstate, 0));
  PetscCall(RnTrainerAddState(tr, "optimizer_step", &us.optim_step, sizeof us.optim_step, 0));
  PetscCall(RnTrainerAddState(tr, "batchnorm", us.bn, sizeof(double) * (RnNetStateSize(m.stem) + RnNetStateSize(m.head)), 0));
  PetscCall(RnTrainerAddState(tr, "epoch_sums", us.epoch_sums, sizeof us.epoch_sums, 0));
  PetscCall(RnTrainerAddState(tr, "plateau", &us.plateau, sizeof us.plateau, 0));
  PetscCall(RnTrainerOpenMetrics(tr, "epochs.csv", CIFAR_EPOCHS_HEADER, &epochs_csv));
  PetscCall(RnTrainerOpenMetrics(tr, "final.csv", CIFAR_FINAL_HEADER, &final_csv));
  PetscCall(RnTrainerStart(tr, total, &resumed));
  epoch0 = (int)(resumed / spe), step0 = (int)(resumed % spe);
  if (resumed == 0) {
    /* the same initial stem and head for every model; the block from its own layer ids */
    PetscCall(RnCifarModelInit(&m, ctx->seed, 0, us.theta));
    RnPlateauStart(&us.plateau);
  } else {
    PetscCall(PetscArraycpy(optim->state, us.optim_state, optim->nstate));
    optim->step = us.optim_step;
    PetscCall(RnNetSetState(m.stem, us.bn));
    PetscCall(RnNetSetState(m.head, us.bn + RnNetStateSize(m.stem)));
  }
  PetscCall(RnLog(view, "group %d: %s%s with %d parameters on %d rank(s)%s\n", ctx->group_id, describe, fold_name, (int)m.n, ctx->group_size, resumed ? " (resumed)" : ""));

  for (int epoch = epoch0; epoch < o->epochs; epoch++) {
    const int first = epoch == epoch0 ? step0 : 0; /* a checkpoint within the epoch: go on from its step */
    const double lr_scale = RnLrScheduleFactor(&o->schedule, epoch + 1) * us.plateau.scale;
    double loss_sum = first ? us.epoch_sums[0] : 0, correct = first ? us.epoch_sums[1] : 0, t0 = RnWallTime(), val_acc, test_acc, vloss, tloss, train_loss, train_acc, lr = o->optim.lr * lr_scale;
    /* the global order of an epoch: a permutation from (seed, epoch), the same for every model */
    RnRandPermutation(ctx->seed, RN_STREAM_ORDER, 0, (uint32_t)epoch, ud->ntrain, rc->perm);
    for (int step = first; step < spe; step++) {
      double l;
      int c;
      for (int i = lo; i < hi; i++) rc->idx[i - lo] = ud->train[rc->perm[step * o->batch + i]];
      PetscCall(RnDatasetGetBatch(rc->all, rc->idx, hi - lo, ud->mean, stdp, o->use_augment ? &o->augment : NULL, ctx->seed, (uint32_t)epoch, m.x, m.labels));
      PetscCall(PetscArrayzero(grad, m.n + 2));
      PetscCall(RnCifarModelPass(&m, hi - lo, o->batch, us.theta, grad, &l, &c));
      /* loss and hits ride along in the one Allreduce */
      grad[m.n] = l, grad[m.n + 1] = c;
      PetscCall(AllreduceGradient(ctx, o->precision, m.n + 2, grad, grad32, gsum));
      if (!isfinite(gsum[m.n]))
        RnCollectiveError(ctx->group, RN_ERR_NONFINITE, "cifar: the loss of %s%s is %g at epoch %d step %d; lower train.lr (the last good checkpoint is kept)", describe, fold_name, gsum[m.n], epoch + 1,
                          step);
      loss_sum += gsum[m.n], correct += gsum[m.n + 1];
      PetscCall(RnOptimStep(optim, lr_scale, us.theta, gsum));
      if (!rc->named) {
        PetscCall(NameKernels(ctx, rc->rd, &m, o->precision));
        rc->named = PETSC_TRUE;
      }
      if (step % o->log_every == 0 || step == spe - 1) {
        const double el = RnWallTime() - t0, ips = (step + 1 - first) * (double)o->batch / el;
        PetscCall(RnProgress(view, "[%s%s] epoch %d/%d step %d/%d  loss %.4f  acc %.3f  %.0f img/s  epoch ETA %.0f s", describe, fold_name, epoch + 1, o->epochs, step + 1, spe,
                             loss_sum / ((step + 1) * (double)o->batch), correct / ((step + 1) * (double)o->batch), ips, (spe - step - 1) * (double)o->batch / ips));
      }
      if (step + 1 < spe) {
        /* signals, the other groups' stops and checkpoint.every_* are looked
         * at after every step (the epoch's last step after its evaluation) */
        PetscCall(SaveUnitState(&us, &m, optim, loss_sum, correct));
        PetscCall(RnTrainerStepDone(tr, (long long)epoch * spe + step + 1, PETSC_FALSE, "step %d/%d of epoch %d of %s%s", step + 1, spe, epoch + 1, describe, fold_name));
        if (RnTrainerPlanDone(tr)) break; /* --plan: measured enough */
      }
    }
    PetscCall(RnProgressEnd(view));
    if (RnTrainerPlanDone(tr)) {
      PetscCall(PlanEvaluation(ctx, &m, o, rc, ud, stdp, us.theta, tr, spe));
      break;
    }
    PetscCall(Evaluate(ctx, &m, o, rc->all, ud->val, ud->nval, ud->mean, stdp, us.theta, &val_acc, &vloss));
    PetscCall(Evaluate(ctx, &m, o, rc->test, NULL, rc->test->n, ud->mean, stdp, us.theta, &test_acc, &tloss));
    train_loss = loss_sum / ((double)spe * o->batch), train_acc = correct / ((double)spe * o->batch);
    {
      /* the plateau reducer looks at the epoch's metric; the group's ranks agree on it */
      const double metric[4] = {vloss, val_acc, train_loss, train_acc};
      PetscBool reduced;
      RnPlateauUpdate(&o->schedule, &us.plateau, o->optim.lr, epoch + 1, metric[o->schedule.metric], &reduced);
    }
    PetscCall(RnMetricsRow(epochs_csv, "%d,0,%d,%s,%d,%d,%d,%.3f,%.6g,%.6f,%.6f,%.6f,%.6f,%.1f", ctx->group_id, N, ModelKind(o, N), fold, epoch + 1, (epoch + 1) * spe, RnWallTime() - rc->start, lr,
                           train_loss, train_acc, val_acc, test_acc, (double)(spe - first) * o->batch / (RnWallTime() - t0)));
    if (o->folds > 1)
      PetscCall(RnLog(view, "  %s N=%d fold %d: epoch %d  lr %.3g  train loss %.4f acc %.4f  held-out %.4f  test %.4f\n", ModelKind(o, N), N, fold, epoch + 1, lr, train_loss, train_acc, val_acc, test_acc));
    else PetscCall(RnLog(view, "  %s N=%d: epoch %d  train loss %.4f acc %.4f  val %.4f  test %.4f\n", ModelKind(o, N), N, epoch + 1, train_loss, train_acc, val_acc, test_acc));
    if (epoch + 1 == o->epochs) {
      /* the unit's final accuracies, written before its last checkpoint */
      PetscCall(RnMetricsRow(final_csv, "%d,0,%d,%s,%d,%d,%.6f,%.6f,%.6f,%.1f", ctx->group_id, N, ModelKind(o, N), fold, (int)m.n, test_acc, val_acc, train_acc, RnWallTime() - unit_start));
      if (ctx->group_rank == 0) PetscCall(WriteUnitSnapshot(rc->rd, o, N, fold, total, m.n, us.theta));
    }
    /* the state after this epoch */
    PetscCall(SaveUnitState(&us, &m, optim, 0.0, 0.0));
    PetscCall(RnTrainerStepDone(tr, (long long)(epoch + 1) * spe, epoch + 1 == o->epochs ? PETSC_TRUE : PETSC_FALSE, "the end of epoch %d of %s%s", epoch + 1, describe, fold_name));
  }
  PetscCall(RnTrainerFinish(tr));
  PetscCall(RnTrainerDestroy(&tr));
  PetscCall(RnMetricsClose(&epochs_csv));
  PetscCall(RnMetricsClose(&final_csv));
  PetscCall(PetscFree3(us.theta, us.optim_state, us.bn));
  PetscCall(RnOptimDestroy(&optim));
  PetscCall(PetscFree2(grad, gsum));
  PetscCall(PetscFree(grad32));
  PetscCall(RnCifarModelDestroy(&m));
  PetscFunctionReturn(0);
}

/* The units of the sweep (model-major: every fold of a depth, then the next
 * depth) and their work: block evaluations an image, by the ODE solver's
 * stages and steps for the ODE, and the stem and head. */
static void CifarUnits(const CifarOptions *o, const int *model_N, int nunits, int steps_per_epoch, RnUnitInfo *units)
{
  for (int u = 0; u < nunits; u++) {
    const int N = UnitN(o, model_N, u);
    char fold[16] = "";
    if (o->folds > 1) snprintf(fold, sizeof fold, "-fold%d", UnitFold(o, u));
    if (N) snprintf(units[u].name, sizeof units[u].name, "%s-N%d%s", ModelKind(o, N), N, fold);
    else snprintf(units[u].name, sizeof units[u].name, "ode%s", fold);
    units[u].cost = (N ? N : RnOdeFieldEvaluationsPerPass(&o->ode_opt)) + CIFAR_STEM_HEAD_COST;
    units[u].steps = (long long)o->epochs * steps_per_epoch;
  }
}

/* Every unit's work an image, by the images and epochs (data.max_train = 0:
 * the 50000 of CIFAR-10's training files) */
#define CIFAR_TRAIN_IMAGES 50000
static double CifarWork(const void *options)
{
  const CifarOptions *o = options;
  const int nmodels = o->ndepths + (o->ode ? 1 : 0);
  double per_image = 0;
  for (int m = 0; m < nmodels; m++) per_image += (m < o->ndepths ? o->depths[m] : RnOdeFieldEvaluationsPerPass(&o->ode_opt)) + CIFAR_STEM_HEAD_COST;
  return per_image * o->fold_count * o->epochs * (o->max_train ? o->max_train : CIFAR_TRAIN_IMAGES);
}

static PetscErrorCode CifarRun(RnCtx ctx, RnRunDir rd, void *options)
{
  CifarOptions *o = options;
  CifarRunCtx rc = {0};
  const int nmodels = o->ndepths + (o->ode ? 1 : 0), nunits = nmodels * o->fold_count;
  RnUnitInfo *units;

  PetscFunctionBeginUser;
  rc.o = o, rc.ctx = ctx, rc.rd = rd, rc.start = RnWallTime();
  RnBlockRange(o->batch, ctx->group_rank, ctx->group_size, &rc.lo, &rc.hi);
  for (int u = 0; u < nmodels; u++) rc.model_N[u] = u < o->ndepths ? o->depths[u] : 0;
  /* data: every rank reads and checks the same files */
  PetscCall(RnCifarLoad(ctx->world, o->dir, PETSC_TRUE, o->max_train, &rc.all));
  PetscCall(RnCifarLoad(ctx->world, o->dir, PETSC_FALSE, o->max_test, &rc.test));
  PetscCall(FoldsSetUp(ctx, o, rc.all, &rc.fold_of, &rc.steps_per_epoch));
  PetscCall(PetscMalloc3(rc.all->n, &rc.ud.train, rc.all->n, &rc.ud.val, 3072, &rc.ud.mean));
  PetscCall(PetscMalloc2(rc.all->n, &rc.perm, o->batch, &rc.idx));
  if (o->folds > 1)
    PetscCall(RnLog(ctx, "cifar: %d training images in %d stratified folds (%s), %d test images from %s; width C = %d, %s; %d model(s) x %d fold(s) on %d group(s) of %d rank(s)\n", rc.all->n, o->folds,
                    o->fold_count == 1 ? "one of them here" : "each model trained on k-1, validated on the held-out one", rc.test->n, o->dir, o->channels, RnActivationNames[o->activation], nmodels, o->fold_count, ctx->group_count,
                    ctx->group_size));
  else
    PetscCall(RnLog(ctx, "cifar: %d training, %d validation, %d test images from %s; width C = %d, %s; %d model(s) on %d group(s) of %d rank(s)\n", rc.all->n - o->validation, o->validation,
                    rc.test->n, o->dir, o->channels, RnActivationNames[o->activation], nmodels, ctx->group_count, ctx->group_size));

  {
    /* one copy of the images a node (data.h): said, so that a cluster run can be checked */
    int copies, nodes;
    double bytes;
    PetscBool balanced;
    PetscCall(RnDatasetCopies(rc.all, &copies, &bytes));
    PetscCall(RnCtxNodeCount(ctx, &nodes, &balanced));
    PetscCall(RnRunDirSetDataCopies(rd, copies, bytes, nodes));
    PetscCall(RnLog(ctx, "data: the training set in %s\n", rd->data_copies));
  }
  PetscCall(RnLog(ctx, "schedule: %s\n", o->group_shape));
  PetscCall(RnRunDirSetSchedule(rd, o->group_shape));
  PetscCall(PetscMalloc1(nunits, &units));
  CifarUnits(o, rc.model_N, nunits, rc.steps_per_epoch, units);
  PetscCall(RnUnitQueueCreate(ctx, rd, nunits, units, &rc.queue));
  PetscCall(RnUnitQueueAddTable(rc.queue, "epochs.csv", CIFAR_EPOCHS_HEADER));
  PetscCall(RnUnitQueueAddTable(rc.queue, "final.csv", CIFAR_FINAL_HEADER));
  PetscCall(RnUnitQueueRun(rc.queue, TrainUnit, &rc));
  PetscCall(RnUnitQueueDestroy(&rc.queue));
  PetscCall(RnLog(ctx, "cifar: %d unit(s) trained in %.1f s\n", nunits, RnWallTime() - rc.start));
  PetscCall(PetscFree(units));
  PetscCall(PetscFree2(rc.perm, rc.idx));
  PetscCall(PetscFree3(rc.ud.train, rc.ud.val, rc.ud.mean));
  PetscCall(PetscFree(rc.fold_of));
  PetscCall(RnDatasetDestroy(&rc.all));
  PetscCall(RnDatasetDestroy(&rc.test));
  PetscFunctionReturn(0);
}

const RnExperiment RnExperimentCifar = {"cifar", "CIFAR-10: tied ResNets of depth N and the neural ODE, data-parallel; accuracy vs N", CifarReadOptions, CifarGroupCount, CifarRun, "plot-cifar", RnExperimentOdePrefixes, PETSC_TRUE, "epoch", CifarWork};
