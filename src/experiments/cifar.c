/* cifar.c: CIFAR-10 with the paper's architecture (Avelin and Nystrom):
 *   stem:  conv3x3(3 -> C, stride 2) + ReLU, batch norm
 *   block: N weight-tied steps x += (1/N) conv3x3(relu(conv3x3(x)))  (or untied,
 *          or the neural ODE dx/dt = conv(relu(conv(x))) on [0, 1] through TS)
 *   head:  batch norm, conv3x3(C -> 64, stride 4) + ReLU, batch norm,
 *          4x4 average pooling, linear 64 -> 10, softmax cross-entropy.
 * Data-parallel within a group (the batch split over its ranks, one
 * Allreduce of the flat gradient, batch norm reduced over the group); the
 * groups train the models of the depth sweep side by side, in rounds. */
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

typedef struct {
  char dir[PETSC_MAX_PATH_LEN];
  int max_train, max_test, validation;
  PetscBool normalize_std;
  RnAugment augment;
  PetscBool use_augment;
  int channels;
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
  RnCheckpointOptions checkpoint;
} CifarOptions;

static const char *const rn_fill_names[] = {"edge", "zero", NULL};

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
  PetscCall(RnGroupsFromConfig(ctx, cfg, 1, PETSC_TRUE, &o->groups));
  if (o->batch < ctx->world_size / o->groups)
    PetscCall(RnConfigError(cfg, "train.batch", "a batch of %d cannot be split over the %d ranks of a group", o->batch, ctx->world_size / o->groups));
  PetscCall(RnCheckpointOptionsFromConfig(cfg, &o->checkpoint));
  *options = o;
  PetscFunctionReturn(0);
}

static int CifarGroupCount(RnCtx ctx, const void *options) { return ((const CifarOptions *)options)->groups; }

/* Accuracy on a data set, in inference mode, split over the group. */
static PetscErrorCode Evaluate(RnCtx ctx, RnCifarModel *m, const CifarOptions *o, RnDataset ds, const int *samples, int nsamples, const double *mean, const double *std, const double *theta,
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

/* A group's row of an epoch, gathered by rank 0 from the group leaders
 * (unit -1: the group trained nothing this round). */
enum { ER_UNIT, ER_EPOCH, ER_STEP, ER_LR, ER_TRAIN_LOSS, ER_TRAIN_ACC, ER_VAL_ACC, ER_TEST_ACC, ER_IMAGES_PER_S, EPOCH_FIELDS };
/* ... and of a unit's end */
enum { FR_UNIT, FR_PARAMS, FR_TEST_ACC, FR_VAL_ACC, FR_TRAIN_ACC, FR_SECONDS, FINAL_FIELDS };

/* The depth of a unit's model, and its fold. */
static int UnitN(const CifarOptions *o, const int *model_N, int unit) { return model_N[unit / o->fold_count]; }
static int UnitFold(const CifarOptions *o, int unit) { return o->fold_first + unit % o->fold_count; }

/* A group's training state in buffers sized for the largest model of the
 * sweep, so one checkpoint layout serves every round. */
typedef struct {
  PetscInt nmax, nbn;
  double *theta, *optim_state, *bn;
  long optim_step;
  double epoch_sums[2]; /* loss and hits of the epoch so far (a checkpoint within an epoch) */
  RnPlateauState plateau;
} GroupState;

/* The optimizer and batch-norm state into the group's checkpointed buffers. */
static PetscErrorCode SaveGroupState(GroupState *gs, RnCifarModel *m, RnOptim optim, double loss_sum, double correct)
{
  PetscFunctionBeginUser;
  PetscCall(PetscArraycpy(gs->optim_state, optim->state, optim->nstate));
  gs->optim_step = optim->step;
  PetscCall(RnNetGetState(m->stem, gs->bn));
  PetscCall(RnNetGetState(m->head, gs->bn + RnNetStateSize(m->stem)));
  gs->epoch_sums[0] = loss_sum, gs->epoch_sums[1] = correct;
  PetscFunctionReturn(0);
}

/* The group's sum of the flat gradient (loss and hits ride along). In float32
 * and bfloat16 the gradient is float32 arithmetic already: it travels as
 * float32 (half the bytes); float64 keeps double. */
static PetscErrorCode AllreduceGradient(RnCtx ctx, RnPrecision precision, PetscInt n, const double *grad, float *buf, double *sum)
{
  PetscFunctionBeginUser;
  if (precision == RN_PRECISION_FLOAT64 || ctx->group_size == 1) {
    PetscCallMPI(MPI_Allreduce(grad, sum, (int)n, MPI_DOUBLE, MPI_SUM, ctx->group));
    PetscFunctionReturn(0);
  }
  /* the last two entries (loss sum, hits) stay exact in double */
  for (PetscInt i = 0; i < n - 2; i++) buf[i] = (float)grad[i];
  PetscCallMPI(MPI_Allreduce(MPI_IN_PLACE, buf, (int)(n - 2), MPI_FLOAT, MPI_SUM, ctx->group));
  PetscCallMPI(MPI_Allreduce(grad + n - 2, sum + n - 2, 2, MPI_DOUBLE, MPI_SUM, ctx->group));
  for (PetscInt i = 0; i < n - 2; i++) sum[i] = buf[i];
  PetscFunctionReturn(0);
}

/* Says once what computes: the CPU, the precision and oneDNN's kernels (log and manifest). */
static PetscErrorCode NameKernels(RnCtx ctx, RnRunDir rd, RnCifarModel *m, RnPrecision precision)
{
  char cpu[256], stem[640], field[640], head[640], all[2048];

  PetscFunctionBeginUser;
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

/* Rank 0 writes the groups' epoch rows (epochs.csv) and logs them. */
static PetscErrorCode WriteEpochRows(RnCtx ctx, const CifarOptions *o, const int *model_N, const double *rows, double elapsed, RnMetrics epochs_csv)
{
  PetscFunctionBeginUser;
  if (ctx->world_rank != 0) PetscFunctionReturn(0);
  for (int g = 0; g < ctx->group_count; g++) {
    const double *r = rows + (size_t)g * EPOCH_FIELDS;
    if (r[ER_UNIT] < 0) continue;
    const int unit = (int)r[ER_UNIT], uN = UnitN(o, model_N, unit), uf = UnitFold(o, unit);
    PetscCall(RnMetricsRow(epochs_csv, "%d,0,%d,%s,%d,%d,%d,%.3f,%.6g,%.6f,%.6f,%.6f,%.6f,%.1f", g, uN, ModelKind(o, uN), uf, (int)r[ER_EPOCH], (int)r[ER_STEP], elapsed, r[ER_LR], r[ER_TRAIN_LOSS],
                           r[ER_TRAIN_ACC], r[ER_VAL_ACC], r[ER_TEST_ACC], r[ER_IMAGES_PER_S]));
    if (o->folds > 1)
      PetscCall(RnLog(ctx, "  %s N=%d fold %d: epoch %d  lr %.3g  train loss %.4f acc %.4f  held-out %.4f  test %.4f  (%.0f img/s)\n", ModelKind(o, uN), uN, uf, (int)r[ER_EPOCH], r[ER_LR],
                      r[ER_TRAIN_LOSS], r[ER_TRAIN_ACC], r[ER_VAL_ACC], r[ER_TEST_ACC], r[ER_IMAGES_PER_S]));
    else
      PetscCall(RnLog(ctx, "  %s N=%d: epoch %d  train loss %.4f acc %.4f  val %.4f  test %.4f  (%.0f img/s)\n", ModelKind(o, uN), uN, (int)r[ER_EPOCH], r[ER_TRAIN_LOSS], r[ER_TRAIN_ACC],
                      r[ER_VAL_ACC], r[ER_TEST_ACC], r[ER_IMAGES_PER_S]));
  }
  PetscFunctionReturn(0);
}

/* Rank 0 writes the groups' rows of their units' ends (final.csv). */
static PetscErrorCode WriteFinalRows(RnCtx ctx, const CifarOptions *o, const int *model_N, const double *rows, RnMetrics final_csv)
{
  PetscFunctionBeginUser;
  if (ctx->world_rank != 0) PetscFunctionReturn(0);
  for (int g = 0; g < ctx->group_count; g++) {
    const double *r = rows + (size_t)g * FINAL_FIELDS;
    if (r[FR_UNIT] < 0) continue;
    const int unit = (int)r[FR_UNIT], uN = UnitN(o, model_N, unit);
    PetscCall(RnMetricsRow(final_csv, "%d,0,%d,%s,%d,%d,%.6f,%.6f,%.6f,%.1f", g, uN, ModelKind(o, uN), UnitFold(o, unit), (int)r[FR_PARAMS], r[FR_TEST_ACC], r[FR_VAL_ACC], r[FR_TRAIN_ACC],
                           r[FR_SECONDS]));
  }
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

/* A group's state buffers, sized by the largest model of the run. */
static PetscErrorCode GroupStateSetUp(const CifarOptions *o, const int *model_N, int nmodels, GroupState *gs)
{
  PetscFunctionBeginUser;
  for (int u = 0; u < nmodels; u++) {
    RnCifarModel probe;
    PetscCall(RnCifarModelCreate(PETSC_COMM_SELF, o->channels, UnitKind(o, model_N[u]), model_N[u], &o->ode_opt, RN_PRECISION_FLOAT64, &probe));
    gs->nmax = PetscMax(gs->nmax, probe.n);
    gs->nbn = RnNetStateSize(probe.stem) + RnNetStateSize(probe.head);
    PetscCall(RnCifarModelDestroy(&probe));
  }
  PetscCall(PetscCalloc3(gs->nmax, &gs->theta, RnOptimStateSize(&o->optim, gs->nmax), &gs->optim_state, gs->nbn, &gs->bn));
  PetscFunctionReturn(0);
}

static PetscErrorCode CifarRun(RnCtx ctx, RnRunDir rd, void *options)
{
  CifarOptions *o = options;
  RnDataset all = NULL, test = NULL;
  double start = RnWallTime();
  const int nmodels = o->ndepths + (o->ode ? 1 : 0), nunits = nmodels * o->fold_count;
  const int rounds = RnRoundCount(nunits, ctx->group_count);
  int model_N[CIFAR_MAX_UNITS], steps_per_epoch = 0, *perm, *idx, *fold_of = NULL, first_round = 0, first_epoch = 0, first_step = 0, lo, hi;
  RnMetrics epochs_csv, final_csv;
  GroupState gs = {0};
  UnitData ud = {0};
  RnTrainer tr;
  long long resumed;
  double *recv = NULL;

  PetscFunctionBeginUser;
  RnBlockRange(o->batch, ctx->group_rank, ctx->group_size, &lo, &hi);
  for (int u = 0; u < nmodels; u++) model_N[u] = u < o->ndepths ? o->depths[u] : 0;
  /* data: every rank reads and checks the same files */
  PetscCall(RnCifarLoad(ctx->world, o->dir, PETSC_TRUE, o->max_train, &all));
  PetscCall(RnCifarLoad(ctx->world, o->dir, PETSC_FALSE, o->max_test, &test));
  PetscCall(FoldsSetUp(ctx, o, all, &fold_of, &steps_per_epoch));
  PetscCall(PetscMalloc3(all->n, &ud.train, all->n, &ud.val, 3072, &ud.mean));
  if (o->folds > 1)
    PetscCall(RnLog(ctx, "cifar: %d training images in %d stratified folds (%s), %d test images from %s; width C = %d; %d model(s) x %d fold(s) on %d group(s) of %d rank(s), %d round(s)\n",
                    all->n, o->folds, o->fold_count == 1 ? "one of them here" : "each model trained on k-1, validated on the held-out one", test->n, o->dir, o->channels, nmodels,
                    o->fold_count, ctx->group_count, ctx->group_size, rounds));
  else
    PetscCall(RnLog(ctx, "cifar: %d training, %d validation, %d test images from %s; width C = %d; %d model(s) on %d group(s) of %d rank(s), %d round(s)\n", all->n - o->validation,
                    o->validation, test->n, o->dir, o->channels, nmodels, ctx->group_count, ctx->group_size, rounds));

  PetscCall(GroupStateSetUp(o, model_N, nmodels, &gs));
  PetscCall(PetscMalloc2(all->n, &perm, o->batch, &idx));
  if (ctx->world_rank == 0) PetscCall(PetscMalloc1((size_t)PetscMax(EPOCH_FIELDS, FINAL_FIELDS) * ctx->group_count, &recv));
  /* checkpoints at step granularity: every group's state, from its leader;
   * a step is a training step, counted over all rounds and epochs */
  PetscCall(RnTrainerCreate(ctx, rd, &o->checkpoint, "cifar", &tr));
  PetscCall(RnTrainerAddGroupState(tr, "theta", gs.theta, sizeof(double) * gs.nmax));
  PetscCall(RnTrainerAddGroupState(tr, "optimizer", gs.optim_state, sizeof(double) * RnOptimStateSize(&o->optim, gs.nmax)));
  PetscCall(RnTrainerAddGroupState(tr, "optimizer_step", &gs.optim_step, sizeof gs.optim_step));
  PetscCall(RnTrainerAddGroupState(tr, "batchnorm", gs.bn, sizeof(double) * gs.nbn));
  PetscCall(RnTrainerAddGroupState(tr, "epoch_sums", gs.epoch_sums, sizeof gs.epoch_sums));
  PetscCall(RnTrainerAddGroupState(tr, "plateau", &gs.plateau, sizeof gs.plateau));
  PetscCall(RnTrainerOpenMetrics(tr, "epochs.csv", "group,member,N,model,fold,epoch,step,time_s,lr,train_loss,train_acc,val_acc,test_acc,images_per_s", &epochs_csv));
  PetscCall(RnTrainerOpenMetrics(tr, "final.csv", "group,member,N,model,fold,params,test_acc,val_acc,train_acc,seconds", &final_csv));
  PetscCall(RnTrainerStart(tr, (long long)rounds * o->epochs * steps_per_epoch, &resumed));
  if (resumed > 0) {
    /* the trainer's step counts over rounds, then epochs, then steps */
    const long long per_round = (long long)o->epochs * steps_per_epoch;
    first_round = (int)(resumed / per_round);
    first_epoch = (int)(resumed % per_round / steps_per_epoch);
    first_step = (int)(resumed % steps_per_epoch);
  }

  for (int round = first_round; round < rounds; round++) {
    const int unit = RnRoundUnit(round, ctx->group_id, ctx->group_count, nunits);
    const PetscBool active = unit >= 0 ? PETSC_TRUE : PETSC_FALSE;
    /* unit = model x (the folds of this run); idle groups of the last round
     * train a copy of the first unit (and log nothing) */
    const int fold = UnitFold(o, active ? unit : 0), N = UnitN(o, model_N, active ? unit : 0);
    const double *stdp = o->normalize_std ? ud.std : NULL;
    RnCifarModel m;
    RnOptim optim;
    double *grad, *gsum, row[EPOCH_FIELDS], unit_start = RnWallTime();
    float *grad32;
    char describe[64] = "-", fold_name[32] = "";
    const int epoch0 = round == first_round ? first_epoch : 0, step0 = round == first_round ? first_step : 0;

    PetscCall(UnitDataSetUp(o, all, fold_of, ctx->seed, fold, &ud));
    PetscCall(RnCifarModelCreate(ctx->group, o->channels, UnitKind(o, N), N, &o->ode_opt, o->precision, &m));
    PetscCall(RnCifarModelSetConvAlgorithm(&m, o->convolution));
    PetscCall(RnCifarModelSetBatchNorm(&m, o->bn_momentum, o->bn_eps));
    PetscCall(PetscMalloc2(m.n + 2, &grad, m.n + 2, &gsum));
    PetscCall(PetscMalloc1(m.n + 2, &grad32));
    PetscCall(RnOptimCreate(m.n, &o->optim, &optim));
    PetscCall(RnCifarModelReserve(&m, PetscMax(hi - lo, 1)));
    if (epoch0 == 0 && step0 == 0) {
      /* the same initial stem and head for every model; the block from its own layer ids */
      PetscCall(RnCifarModelInit(&m, ctx->seed, 0, gs.theta));
      RnPlateauStart(&gs.plateau);
    } else {
      PetscCall(PetscArraycpy(optim->state, gs.optim_state, optim->nstate));
      optim->step = gs.optim_step;
      PetscCall(RnNetSetState(m.stem, gs.bn));
      PetscCall(RnNetSetState(m.head, gs.bn + RnNetStateSize(m.stem)));
    }
    if (N) PetscCall(PetscSNPrintf(describe, sizeof describe, "%s(N=%d)", ModelKind(o, N), N));
    else {
      RnDepthOptions d = {RN_FLOW_ODE, 0, o->ode_opt};
      RnDepthDescribe(&d, describe, sizeof describe);
    }
    if (o->folds > 1) PetscCall(PetscSNPrintf(fold_name, sizeof fold_name, " on fold %d", fold));
    PetscCall(RnLog(ctx, "round %d/%d: %d model(s) side by side; group 0 trains %s%s with %d parameters%s\n", round + 1, rounds, PetscMin(ctx->group_count, nunits - round * ctx->group_count),
                    describe, fold_name, (int)m.n, epoch0 || step0 ? " (resumed)" : ""));

    for (int epoch = epoch0; epoch < o->epochs; epoch++) {
      const int first = epoch == epoch0 ? step0 : 0; /* a checkpoint within the epoch: go on from its step */
      const double lr_scale = RnLrScheduleFactor(&o->schedule, epoch + 1) * gs.plateau.scale;
      double loss_sum = first ? gs.epoch_sums[0] : 0, correct = first ? gs.epoch_sums[1] : 0, t0 = RnWallTime(), val_acc, test_acc, vloss, tloss;
      /* the global order of an epoch: a permutation from (seed, epoch), the same for every model */
      RnRandPermutation(ctx->seed, RN_STREAM_ORDER, 0, (uint32_t)epoch, ud.ntrain, perm);
      for (int step = first; step < steps_per_epoch; step++) {
        double l;
        int c;
        for (int i = lo; i < hi; i++) idx[i - lo] = ud.train[perm[step * o->batch + i]];
        PetscCall(RnDatasetGetBatch(all, idx, hi - lo, ud.mean, stdp, o->use_augment ? &o->augment : NULL, ctx->seed, (uint32_t)epoch, m.x, m.labels));
        PetscCall(PetscArrayzero(grad, m.n + 2));
        PetscCall(RnCifarModelPass(&m, hi - lo, o->batch, gs.theta, grad, &l, &c));
        /* loss and hits ride along in the one Allreduce */
        grad[m.n] = l, grad[m.n + 1] = c;
        PetscCall(AllreduceGradient(ctx, o->precision, m.n + 2, grad, grad32, gsum));
        if (!isfinite(gsum[m.n]))
          RnCollectiveError(ctx->group, RN_ERR_NONFINITE, "cifar: the loss of %s%s is %g at epoch %d step %d; lower train.lr (the last good checkpoint is kept)", describe, fold_name, gsum[m.n],
                            epoch + 1, step);
        loss_sum += gsum[m.n], correct += gsum[m.n + 1];
        PetscCall(RnOptimStep(optim, lr_scale, gs.theta, gsum));
        if (round == first_round && epoch == epoch0 && step == first) PetscCall(NameKernels(ctx, rd, &m, o->precision));
        if (step % o->log_every == 0 || step == steps_per_epoch - 1) {
          const double el = RnWallTime() - t0, ips = (step + 1 - first) * (double)o->batch / el;
          PetscCall(RnProgress(ctx, "[%s%s] epoch %d/%d step %d/%d  loss %.4f  acc %.3f  %.0f img/s  epoch ETA %.0f s", describe, fold_name, epoch + 1, o->epochs, step + 1, steps_per_epoch,
                               loss_sum / ((step + 1) * (double)o->batch), correct / ((step + 1) * (double)o->batch), ips, (steps_per_epoch - step - 1) * (double)o->batch / ips));
        }
        if (step + 1 < steps_per_epoch) {
          /* signals and checkpoint.every_* are looked at after every step (the
           * epoch's last step is checkpointed after its evaluation, below) */
          const long long done = ((long long)round * o->epochs + epoch) * steps_per_epoch + step + 1;
          PetscCall(SaveGroupState(&gs, &m, optim, loss_sum, correct));
          PetscCall(RnTrainerStepDone(tr, done, PETSC_FALSE, "step %d/%d of epoch %d of round %d", step + 1, steps_per_epoch, epoch + 1, round + 1));
        }
      }
      PetscCall(RnProgressEnd(ctx));
      PetscCall(Evaluate(ctx, &m, o, all, ud.val, ud.nval, ud.mean, stdp, gs.theta, &val_acc, &vloss));
      PetscCall(Evaluate(ctx, &m, o, test, NULL, test->n, ud.mean, stdp, gs.theta, &test_acc, &tloss));
      row[ER_UNIT] = active ? unit : -1, row[ER_EPOCH] = epoch + 1, row[ER_STEP] = (double)(epoch + 1) * steps_per_epoch, row[ER_LR] = o->optim.lr * lr_scale;
      row[ER_TRAIN_LOSS] = loss_sum / ((double)steps_per_epoch * o->batch), row[ER_TRAIN_ACC] = correct / ((double)steps_per_epoch * o->batch);
      row[ER_VAL_ACC] = val_acc, row[ER_TEST_ACC] = test_acc;
      row[ER_IMAGES_PER_S] = (double)(steps_per_epoch - first) * o->batch / (RnWallTime() - t0);
      {
        /* the plateau reducer looks at the epoch's metric; the group's ranks agree on it */
        const double metric[4] = {vloss, val_acc, row[ER_TRAIN_LOSS], row[ER_TRAIN_ACC]};
        PetscBool reduced;
        RnPlateauUpdate(&o->schedule, &gs.plateau, o->optim.lr, epoch + 1, metric[o->schedule.metric], &reduced);
      }
      PetscCall(RnGatherLeaderRows(ctx, row, EPOCH_FIELDS, recv));
      PetscCall(WriteEpochRows(ctx, o, model_N, recv, RnWallTime() - start, epochs_csv));
      if (epoch + 1 == o->epochs) {
        /* the round's final accuracies, written before its last checkpoint */
        double fin[FINAL_FIELDS] = {active ? unit : -1, (double)m.n, test_acc, val_acc, row[ER_TRAIN_ACC], RnWallTime() - unit_start};
        PetscCall(RnGatherLeaderRows(ctx, fin, FINAL_FIELDS, recv));
        PetscCall(WriteFinalRows(ctx, o, model_N, recv, final_csv));
        if (ctx->group_rank == 0 && active) PetscCall(WriteUnitSnapshot(rd, o, N, fold, (long long)o->epochs * steps_per_epoch, m.n, gs.theta));
      }
      /* the state after this epoch */
      PetscCall(SaveGroupState(&gs, &m, optim, 0.0, 0.0));
      PetscCall(RnTrainerStepDone(tr, ((long long)round * o->epochs + epoch + 1) * steps_per_epoch, epoch + 1 == o->epochs ? PETSC_TRUE : PETSC_FALSE, "the end of epoch %d of round %d",
                                  epoch + 1, round + 1));
    }
    PetscCall(RnOptimDestroy(&optim));
    PetscCall(PetscFree2(grad, gsum));
    PetscCall(PetscFree(grad32));
    PetscCall(RnCifarModelDestroy(&m));
  }
  PetscCall(RnTrainerFinish(tr));
  PetscCall(RnTrainerDestroy(&tr));
  PetscCall(RnMetricsClose(&epochs_csv));
  PetscCall(RnMetricsClose(&final_csv));
  PetscCall(RnLog(ctx, "cifar: %d model(s) trained in %.1f s\n", nunits, RnWallTime() - start));
  PetscCall(PetscFree(recv));
  PetscCall(PetscFree2(perm, idx));
  PetscCall(PetscFree3(gs.theta, gs.optim_state, gs.bn));
  PetscCall(PetscFree3(ud.train, ud.val, ud.mean));
  PetscCall(PetscFree(fold_of));
  PetscCall(RnDatasetDestroy(&all));
  PetscCall(RnDatasetDestroy(&test));
  PetscFunctionReturn(0);
}

const RnExperiment RnExperimentCifar = {"cifar", "CIFAR-10: tied ResNets of depth N and the neural ODE, data-parallel; accuracy vs N", CifarReadOptions, CifarGroupCount, CifarRun, "plot-cifar", RnExperimentOdePrefixes};
