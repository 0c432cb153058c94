/* cifar.c: CIFAR-10 with the paper's architecture (Avelin and Nystrom):
 *   stem:  conv3x3(3 -> C, stride 2) + ReLU, batch norm
 *   block: N weight-tied steps x += (1/N) conv3x3(relu(conv3x3(x)))  (or untied,
 *          or the neural ODE dx/dt = conv(relu(conv(x))) on [0, 1] through TS)
 *   head:  batch norm, conv3x3(C -> 64, stride 4) + ReLU, batch norm,
 *          4x4 average pooling, linear 64 -> 10, softmax cross-entropy.
 * Data-parallel within a group (the batch split over its ranks, one
 * Allreduce of the flat gradient, batch norm reduced over the group); the
 * groups train the models of the depth sweep side by side, in rounds. */
#include "resnode/core/trainer.h"
#include "resnode/experiments/cifar.h"
#include "resnode/data/data.h"
#include "resnode/nn/model.h"
#include "resnode/nn/optim.h"
#include "resnode/core/rng.h"
#include "resnode/core/run.h"

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
  int epochs, batch, eval_batch, log_every;
  double lr_decay;
  int ndecay, decay_epochs[32];
  int groups;
  PetscBool plot;
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
  PetscCall(RnConfigGetInt(cfg, "data.validation", 5000, 0, 1000000, &o->validation));
  PetscCall(RnConfigGetBool(cfg, "data.normalize_std", PETSC_TRUE, &o->normalize_std));
  PetscCall(RnConfigGetBool(cfg, "data.augment.enable", PETSC_TRUE, &o->use_augment));
  PetscCall(RnConfigGetInt(cfg, "data.augment.shift", 4, 0, 16, &o->augment.max_shift));
  PetscCall(RnConfigGetBool(cfg, "data.augment.flip", PETSC_TRUE, &o->augment.flip));
  PetscCall(RnConfigGetChoice(cfg, "data.augment.fill", "edge", rn_fill_names, &fill));
  o->augment.zero_fill = fill == 1 ? PETSC_TRUE : PETSC_FALSE;
  PetscCall(RnConfigGetInt(cfg, "model.channels", 16, 1, 4096, &o->channels));
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
  PetscCall(RnConfigGetReal(cfg, "train.lr_decay", 0.1, 0.0, 1.0, &o->lr_decay));
  PetscCall(RnConfigGetIntArray(cfg, "train.lr_decay_epochs", 0, NULL, 1, 100000, 0, 32, &o->ndecay, o->decay_epochs));
  PetscCall(RnConfigGetInt(cfg, "parallel.groups", 1, 0, 1 << 20, &o->groups));
  if (o->groups == 0) {
    /* one group per node of the allocation */
    PetscBool balanced;
    PetscCall(RnCtxNodeCount(ctx, &o->groups, &balanced));
    if (!balanced)
      PetscCall(RnConfigError(cfg, "parallel.groups", "0 (one group per node) needs as many ranks on every node; the %d ranks are spread unevenly over %d nodes: give the group count", ctx->world_size, o->groups));
  }
  if (ctx->world_size % o->groups)
    PetscCall(RnConfigError(cfg, "parallel.groups", "%d groups do not divide the %d MPI ranks; use a divisor of the rank count, or run with a multiple of %d ranks", o->groups,
                            ctx->world_size, o->groups));
  if (o->batch < ctx->world_size / o->groups)
    PetscCall(RnConfigError(cfg, "train.batch", "a batch of %d cannot be split over the %d ranks of a group", o->batch, ctx->world_size / o->groups));
  PetscCall(RnConfigGetBool(cfg, "output.plot", PETSC_TRUE, &o->plot));
  PetscCall(RnCheckpointOptionsFromConfig(cfg, &o->checkpoint));
  *options = o;
  PetscFunctionReturn(0);
}

static int CifarGroupCount(RnCtx ctx, const void *options) { return ((const CifarOptions *)options)->groups; }

/* Accuracy on a data set, in inference mode, split over the group. */
static PetscErrorCode Evaluate(RnCtx ctx, RnCifarModel *m, const CifarOptions *o, RnDataset ds, const double *mean, const double *std, const double *theta, double *accuracy, double *loss)
{
  double local[2] = {0, 0}, total[2];
  int *idx;

  PetscFunctionBeginUser;
  *accuracy = NAN, *loss = NAN;
  if (!ds || ds->n == 0) PetscFunctionReturn(0);
  PetscCall(RnCifarModelSetTraining(m, PETSC_FALSE));
  PetscCall(PetscMalloc1(o->eval_batch, &idx));
  for (int start = 0; start < ds->n; start += o->eval_batch) {
    const int count = PetscMin(o->eval_batch, ds->n - start);
    const int lo = start + (int)((long long)count * ctx->group_rank / ctx->group_size), hi = start + (int)((long long)count * (ctx->group_rank + 1) / ctx->group_size);
    double l;
    int c;
    for (int i = lo; i < hi; i++) idx[i - lo] = i;
    PetscCall(RnCifarModelReserve(m, PetscMax(hi - lo, 1)));
    PetscCall(RnDatasetGetBatch(ds, idx, hi - lo, mean, std, NULL, 0, 0, m->x, m->labels));
    PetscCall(RnCifarModelPass(m, hi - lo, count, theta, NULL, &l, &c));
    local[0] += c, local[1] += l;
  }
  PetscCallMPI(MPI_Allreduce(local, total, 2, MPI_DOUBLE, MPI_SUM, ctx->group));
  *accuracy = total[0] / ds->n;
  *loss = total[1] / ds->n;
  PetscCall(PetscFree(idx));
  PetscCall(RnCifarModelSetTraining(m, PETSC_TRUE));
  PetscFunctionReturn(0);
}

#define EPOCH_FIELDS 9 /* unit, epoch, step, lr, train_loss, train_acc, val_acc, test_acc, images_per_s */
#define FINAL_FIELDS 6 /* unit, params, test_acc, val_acc, train_acc, seconds */

/* A group's training state in buffers sized for the largest model of the
 * sweep, so one checkpoint layout serves every round. */
typedef struct {
  PetscInt nmax, nbn;
  double *theta, *optim_state, *bn;
  long optim_step;
  double epoch_sums[2]; /* loss and hits of the epoch so far (a checkpoint within an epoch) */
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

static PetscErrorCode CifarRun(RnCtx ctx, RnRunDir rd, void *options)
{
  CifarOptions *o = options;
  RnDataset all = NULL, train = NULL, val = NULL, test = NULL;
  double *mean, std[3], *stdp, start = RnWallTime();
  const int nunits = o->ndepths + (o->ode ? 1 : 0);
  const int rounds = (nunits + ctx->group_count - 1) / ctx->group_count;
  int unit_N[CIFAR_MAX_UNITS], steps_per_epoch, *perm, *idx, first_round = 0, first_epoch = 0, first_step = 0;
  const int lo = (int)((long long)o->batch * ctx->group_rank / ctx->group_size), hi = (int)((long long)o->batch * (ctx->group_rank + 1) / ctx->group_size);
  RnMetrics epochs_csv, final_csv;
  GroupState gs = {0};
  RnTrainer tr;
  long long resumed;
  double *recv = NULL;

  PetscFunctionBeginUser;
  for (int u = 0; u < nunits; u++) unit_N[u] = u < o->ndepths ? o->depths[u] : 0;
  /* data: every rank reads and checks the same files */
  PetscCall(RnCifarLoad(ctx->world, o->dir, PETSC_TRUE, o->max_train, &all));
  PetscCall(RnCifarLoad(ctx->world, o->dir, PETSC_FALSE, o->max_test, &test));
  if (o->validation >= all->n) RnInputError(ctx->world, "data.validation = %d leaves no training samples (the training files hold %d); lower it", o->validation, all->n);
  PetscCall(RnDatasetSplit(all, o->validation, ctx->seed, &train, &val));
  PetscCall(RnDatasetDestroy(&all));
  steps_per_epoch = train->n / o->batch;
  RnInputCheck(steps_per_epoch >= 1, ctx->world, "train.batch = %d is larger than the %d training images", o->batch, train->n);
  PetscCall(PetscMalloc1(3072, &mean));
  stdp = o->normalize_std ? std : NULL;
  PetscCall(RnDatasetMeanStd(train, mean, stdp));
  PetscCall(RnLog(ctx, "cifar: %d training, %d validation, %d test images from %s; width C = %d; %d model(s) on %d group(s) of %d rank(s), %d round(s)\n", train->n, val->n, test->n,
                  o->dir, o->channels, nunits, ctx->group_count, ctx->group_size, rounds));

  /* the largest model fixes the state buffers */
  for (int u = 0; u < nunits; u++) {
    RnCifarModel probe;
    PetscCall(RnCifarModelCreate(PETSC_COMM_SELF, o->channels, UnitKind(o, unit_N[u]), unit_N[u], &o->ode_opt, RN_PRECISION_FLOAT64, &probe));
    gs.nmax = PetscMax(gs.nmax, probe.n);
    gs.nbn = RnNetStateSize(probe.stem) + RnNetStateSize(probe.head);
    PetscCall(RnCifarModelDestroy(&probe));
  }
  PetscCall(PetscCalloc3(gs.nmax, &gs.theta, 2 * gs.nmax, &gs.optim_state, gs.nbn, &gs.bn));
  PetscCall(PetscMalloc2(train->n, &perm, o->batch, &idx));
  if (ctx->world_rank == 0) PetscCall(PetscMalloc1((size_t)PetscMax(EPOCH_FIELDS, FINAL_FIELDS) * ctx->group_count, &recv));
  /* checkpoints at step granularity: every group's state, from its leader;
   * a step is a training step, counted over all rounds and epochs */
  PetscCall(RnTrainerCreate(ctx, rd, &o->checkpoint, "cifar", &tr));
  PetscCall(RnTrainerAddGroupState(tr, "theta", gs.theta, sizeof(double) * gs.nmax));
  PetscCall(RnTrainerAddGroupState(tr, "optimizer", gs.optim_state, sizeof(double) * 2 * gs.nmax));
  PetscCall(RnTrainerAddGroupState(tr, "optimizer_step", &gs.optim_step, sizeof gs.optim_step));
  PetscCall(RnTrainerAddGroupState(tr, "batchnorm", gs.bn, sizeof(double) * gs.nbn));
  PetscCall(RnTrainerAddGroupState(tr, "epoch_sums", gs.epoch_sums, sizeof gs.epoch_sums));
  PetscCall(RnTrainerOpenMetrics(tr, "epochs.csv", "group,member,N,model,epoch,step,time_s,lr,train_loss,train_acc,val_acc,test_acc,images_per_s", &epochs_csv));
  PetscCall(RnTrainerOpenMetrics(tr, "final.csv", "group,member,N,model,params,test_acc,val_acc,train_acc,seconds", &final_csv));
  PetscCall(RnTrainerStart(tr, (long long)rounds * o->epochs * steps_per_epoch, &resumed));
  if (resumed > 0) {
    const long long per_round = (long long)o->epochs * steps_per_epoch;
    first_round = (int)(resumed / per_round);
    first_epoch = (int)(resumed % per_round / steps_per_epoch);
    first_step = (int)(resumed % steps_per_epoch);
  }

  for (int round = first_round; round < rounds; round++) {
    const int unit = round * ctx->group_count + ctx->group_id;
    const PetscBool active = unit < nunits ? PETSC_TRUE : PETSC_FALSE;
    const int N = active ? unit_N[unit] : unit_N[0];
    RnCifarModel m;
    RnOptim optim;
    double *grad, *gsum, row[EPOCH_FIELDS], unit_start = RnWallTime();
    float *grad32;
    char describe[64] = "-";
    const int epoch0 = round == first_round ? first_epoch : 0, step0 = round == first_round ? first_step : 0;

    /* idle groups of the last round train a copy of the first model (and log nothing) */
    PetscCall(RnCifarModelCreate(ctx->group, o->channels, UnitKind(o, N), N, &o->ode_opt, o->precision, &m));
    PetscCall(RnCifarModelSetConvAlgorithm(&m, o->convolution));
    PetscCall(PetscMalloc2(m.n + 2, &grad, m.n + 2, &gsum));
    PetscCall(PetscMalloc1(m.n + 2, &grad32));
    PetscCall(RnOptimCreate(m.n, &o->optim, &optim));
    PetscCall(RnCifarModelReserve(&m, PetscMax(hi - lo, 1)));
    if (epoch0 == 0 && step0 == 0) {
      /* the same initial stem and head for every model; the block from its own layer ids */
      PetscCall(RnCifarModelInit(&m, ctx->seed, 0, gs.theta));
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
    PetscCall(RnLog(ctx, "round %d/%d: %d model(s) side by side; group 0 trains %s with %d parameters%s\n", round + 1, rounds, PetscMin(ctx->group_count, nunits - round * ctx->group_count),
                    describe, (int)m.n, epoch0 || step0 ? " (resumed)" : ""));

    for (int epoch = epoch0; epoch < o->epochs; epoch++) {
      const int first = epoch == epoch0 ? step0 : 0; /* a checkpoint within the epoch: go on from its step */
      double lr_scale = 1.0, loss_sum = first ? gs.epoch_sums[0] : 0, correct = first ? gs.epoch_sums[1] : 0, t0 = RnWallTime(), val_acc, test_acc, vloss, tloss;
      for (int k = 0; k < o->ndecay; k++)
        if (epoch >= o->decay_epochs[k]) lr_scale *= o->lr_decay;
      /* the global order of an epoch: a permutation from (seed, epoch), the same for every model */
      RnRandPermutation(ctx->seed, RN_STREAM_ORDER, 0, (uint32_t)epoch, train->n, perm);
      for (int step = first; step < steps_per_epoch; step++) {
        double l;
        int c;
        for (int i = lo; i < hi; i++) idx[i - lo] = perm[step * o->batch + i];
        PetscCall(RnDatasetGetBatch(train, idx, hi - lo, mean, stdp, o->use_augment ? &o->augment : NULL, ctx->seed, (uint32_t)epoch, m.x, m.labels));
        PetscCall(PetscArrayzero(grad, m.n + 2));
        PetscCall(RnCifarModelPass(&m, hi - lo, o->batch, gs.theta, grad, &l, &c));
        /* loss and hits ride along in the one Allreduce */
        grad[m.n] = l, grad[m.n + 1] = c;
        PetscCall(AllreduceGradient(ctx, o->precision, m.n + 2, grad, grad32, gsum));
        if (!isfinite(gsum[m.n]))
          RnCollectiveError(ctx->group, RN_ERR_NONFINITE, "cifar: the loss of %s is %g at epoch %d step %d; lower train.lr (the last good checkpoint is kept)", describe, gsum[m.n], epoch + 1,
                            step);
        loss_sum += gsum[m.n], correct += gsum[m.n + 1];
        PetscCall(RnOptimStep(optim, lr_scale, gs.theta, gsum));
        if (round == first_round && epoch == epoch0 && step == first) PetscCall(NameKernels(ctx, rd, &m, o->precision));
        if (step % o->log_every == 0 || step == steps_per_epoch - 1) {
          const double el = RnWallTime() - t0, ips = (step + 1 - first) * (double)o->batch / el;
          PetscCall(RnProgress(ctx, "[%s] epoch %d/%d step %d/%d  loss %.4f  acc %.3f  %.0f img/s  epoch ETA %.0f s", describe, epoch + 1, o->epochs, step + 1, steps_per_epoch,
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
      PetscCall(Evaluate(ctx, &m, o, val, mean, stdp, gs.theta, &val_acc, &vloss));
      PetscCall(Evaluate(ctx, &m, o, test, mean, stdp, gs.theta, &test_acc, &tloss));
      row[0] = active ? unit : -1, row[1] = epoch + 1, row[2] = (double)(epoch + 1) * steps_per_epoch, row[3] = o->optim.lr * lr_scale;
      row[4] = loss_sum / ((double)steps_per_epoch * o->batch), row[5] = correct / ((double)steps_per_epoch * o->batch), row[6] = val_acc, row[7] = test_acc;
      row[8] = (double)(steps_per_epoch - first) * o->batch / (RnWallTime() - t0);
      if (ctx->leaders != MPI_COMM_NULL) PetscCallMPI(MPI_Gather(row, EPOCH_FIELDS, MPI_DOUBLE, recv, EPOCH_FIELDS, MPI_DOUBLE, 0, ctx->leaders));
      if (ctx->world_rank == 0)
        for (int g = 0; g < ctx->group_count; g++) {
          const double *r = recv + (size_t)g * EPOCH_FIELDS;
          if (r[0] < 0) continue;
          const int uN = unit_N[(int)r[0]];
          PetscCall(RnMetricsRow(epochs_csv, "%d,0,%d,%s,%d,%d,%.3f,%.6g,%.6f,%.6f,%.6f,%.6f,%.1f", g, uN, ModelKind(o, uN), (int)r[1], (int)r[2], RnWallTime() - start, r[3], r[4], r[5],
                                 r[6], r[7], r[8]));
          PetscCall(RnLog(ctx, "  %s N=%d: epoch %d  train loss %.4f acc %.4f  val %.4f  test %.4f  (%.0f img/s)\n", ModelKind(o, uN), uN, (int)r[1], r[4], r[5], r[6], r[7], r[8]));
        }
      if (epoch + 1 == o->epochs) {
        /* the round's final accuracies, written before its last checkpoint */
        double fin[FINAL_FIELDS] = {active ? unit : -1, (double)m.n, test_acc, val_acc, row[5], RnWallTime() - unit_start};
        if (ctx->leaders != MPI_COMM_NULL) PetscCallMPI(MPI_Gather(fin, FINAL_FIELDS, MPI_DOUBLE, recv, FINAL_FIELDS, MPI_DOUBLE, 0, ctx->leaders));
        if (ctx->world_rank == 0)
          for (int g = 0; g < ctx->group_count; g++) {
            const double *r = recv + (size_t)g * FINAL_FIELDS;
            if (r[0] < 0) continue;
            const int uN = unit_N[(int)r[0]];
            PetscCall(RnMetricsRow(final_csv, "%d,0,%d,%s,%d,%.6f,%.6f,%.6f,%.1f", g, uN, ModelKind(o, uN), (int)r[1], r[2], r[3], r[4], r[5]));
          }
        if (ctx->group_rank == 0 && active) {
          char path[PETSC_MAX_PATH_LEN + 64];
          RnSnapshotInfo info = {0, N, (long long)o->epochs * steps_per_epoch, (double)o->epochs};
          PetscCall(PetscSNPrintf(path, sizeof path, "%s/snapshots/theta-%s-N%d.bin", rd->path, ModelKind(o, N), N));
          PetscCall(RnSnapshotWrite(path, &info, m.n, gs.theta));
        }
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
  if (o->plot) PetscCall(RnRunPlotScript(ctx, rd, "plot-cifar"));
  PetscCall(PetscFree(recv));
  PetscCall(PetscFree2(perm, idx));
  PetscCall(PetscFree3(gs.theta, gs.optim_state, gs.bn));
  PetscCall(PetscFree(mean));
  PetscCall(RnDatasetDestroy(&train));
  PetscCall(RnDatasetDestroy(&val));
  PetscCall(RnDatasetDestroy(&test));
  PetscFunctionReturn(0);
}

const RnExperiment RnExperimentCifar = {"cifar", "CIFAR-10: tied ResNets of depth N and the neural ODE, data-parallel; accuracy vs N", CifarReadOptions, CifarGroupCount, CifarRun};
