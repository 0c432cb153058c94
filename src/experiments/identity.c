/* identity.c: learn y = x on {-10, ..., 10} with four tanh layers of
 * width 1 (the last one linear), as a plain chain and with a skip connection
 * around the first three: the residual net trains, the plain one suffers
 * from vanishing gradients. Reports epochs until mse < target and the
 * gradient norm of every layer. */
#include "resnode/nn/layers.h"
#include "resnode/nn/optim.h"
#include "resnode/core/profile.h"
#include "resnode/core/rng.h"
#include "resnode/experiments/experiments.h"
#include "resnode/core/trainer.h"
#include "resnode/core/units.h"

#include <math.h>
#include <string.h>

typedef struct {
  int max_epochs, batch, npoints;
  double xmax, target_mse;
  RnOptimOptions optim;
  RnCheckpointOptions checkpoint;
} IdentityOptions;

static PetscErrorCode IdentityReadOptions(RnCtx ctx, RnConfig cfg, void **options)
{
  IdentityOptions *o;

  PetscFunctionBeginUser;
  PetscCall(PetscNew(&o));
  PetscCall(RnConfigGetReal(cfg, "data.xmax", 10.0, 1e-3, 1e6, &o->xmax));
  PetscCall(RnConfigGetInt(cfg, "data.points", 21, 2, 1000000, &o->npoints));
  PetscCall(RnConfigGetInt(cfg, "train.max_epochs", 10000, 1, 100000000, &o->max_epochs));
  PetscCall(RnConfigGetInt(cfg, "train.batch", 8, 1, 1000000, &o->batch));
  PetscCall(RnConfigGetReal(cfg, "train.target_mse", 0.01, 0.0, 1e6, &o->target_mse));
  PetscCall(RnOptimOptionsFromConfig(cfg, "train", &o->optim));
  PetscCall(RnCheckpointOptionsFromConfig(cfg, &o->checkpoint));
  PetscCall(RnConfigOneGroup(cfg, "identity"));
  *options = o;
  PetscFunctionReturn(0);
}

#define ID_LAYERS 4

/* chain: dense(1,1)+tanh three times; head: dense(1,1). */
static PetscErrorCode BuildChain(RnNet *chain, RnNet *head)
{
  RnShape one = {1, 1, 1};
  RnLayer layer;

  PetscFunctionBeginUser;
  PetscCall(RnNetCreate(one, chain));
  for (int i = 0; i < 3; i++) {
    PetscCall(RnLayerCreateDense(one, 1, &layer));
    PetscCall(RnNetAdd(*chain, layer));
    PetscCall(RnLayerCreateActivation(one, RN_ACT_TANH, &layer));
    PetscCall(RnNetAdd(*chain, layer));
  }
  PetscCall(RnNetSetUp(*chain));
  PetscCall(RnNetCreate(one, head));
  PetscCall(RnLayerCreateDense(one, 1, &layer));
  PetscCall(RnNetAdd(*head, layer));
  PetscCall(RnNetSetUp(*head));
  PetscFunctionReturn(0);
}

typedef struct {
  RnNet chain, head;
  PetscBool residual;
  double *tape_chain, *tape_head, *h, *y, *dy, *dh;
  int capacity;
} IdentityModel;

/* loss sum over the samples; grad += its gradient when grad != NULL */
static PetscErrorCode ModelLoss(IdentityModel *m, int n, const double *x, const double *theta, double *loss, double *grad)
{
  const double *th_head = theta + m->chain->nparams;

  PetscFunctionBeginUser;
  PetscCall(RnNetForward(m->chain, n, theta, x, m->h, m->tape_chain));
  if (m->residual)
    for (int i = 0; i < n; i++) m->h[i] += x[i];
  PetscCall(RnNetForward(m->head, n, th_head, m->h, m->y, m->tape_head));
  PetscCall(RnLossSquaredError(n, 1, m->y, x, loss, m->dy));
  if (grad) {
    PetscCall(RnNetBackward(m->head, n, th_head, m->h, m->dy, m->dh, grad + m->chain->nparams, m->tape_head));
    /* the skip adds dh to dx, which nobody needs; the chain sees dh either way */
    PetscCall(RnNetBackward(m->chain, n, theta, x, m->dh, NULL, grad, m->tape_chain));
  }
  PetscFunctionReturn(0);
}

/* What a resumed run needs: the parameters and optimizer of the model in
 * training, and the results of the models done. */
typedef struct {
  double *theta, *optim_state;
  long optim_step;
  double epochs_needed[2], final_mse[2];
} IdentityState;

#define ID_PARAMS (2 * ID_LAYERS) /* a weight and a bias per layer */

/* Model r (0 plain, 1 residual) from epoch first_epoch on; a step of the
 * trainer is an epoch, model r's epochs are steps r * max_epochs + epoch. */
static PetscErrorCode TrainOne(RnCtx ctx, const IdentityOptions *o, int r, int first_epoch, RnTrainer tr, RnMetrics csv, IdentityState *st)
{
  const PetscBool residual = r ? PETSC_TRUE : PETSC_FALSE;
  IdentityModel m = {0};
  RnOptim optim;
  const int P = o->npoints;
  const long long base = (long long)r * o->max_epochs;
  double *x, *theta = st->theta, *grad, *grad_sum, *xb;
  int *perm;
  PetscInt np;

  PetscFunctionBeginUser;
  PetscCall(BuildChain(&m.chain, &m.head));
  m.residual = residual;
  np = m.chain->nparams + m.head->nparams;
  PetscCheck(np == ID_PARAMS, PETSC_COMM_SELF, PETSC_ERR_PLIB, "identity: %d parameters, expected %d", (int)np, ID_PARAMS);
  PetscCall(PetscMalloc5(P, &x, np, &grad, np, &grad_sum, P, &perm, P, &xb));
  PetscCall(PetscMalloc6((size_t)P * m.chain->tape_per_sample, &m.tape_chain, (size_t)P * m.head->tape_per_sample, &m.tape_head, P, &m.h, P, &m.y, P, &m.dy, P, &m.dh));
  for (int i = 0; i < P; i++) x[i] = -o->xmax + 2.0 * o->xmax * i / (P - 1);
  PetscCall(RnOptimCreate(np, &o->optim, &optim));
  if (first_epoch == 0) {
    /* the same initial weights for both variants */
    PetscCall(RnNetInit(m.chain, ctx->seed, 0, 0, theta));
    PetscCall(RnNetInit(m.head, ctx->seed, 0, (uint32_t)m.chain->nlayers, theta + m.chain->nparams));
    st->epochs_needed[r] = -1;
  } else {
    PetscCall(PetscArraycpy(optim->state, st->optim_state, optim->nstate));
    optim->step = st->optim_step;
  }
  for (int epoch = first_epoch; epoch < o->max_epochs; epoch++) {
    double norms[ID_LAYERS] = {0}, mse;
    RnRandPermutation(ctx->seed, RN_STREAM_ORDER, 0, (uint32_t)epoch, P, perm);
    for (int start = 0; start < P; start += o->batch) {
      const int count = PetscMin(o->batch, P - start);
      /* this rank's slice of the mini-batch */
      int lo, hi;
      double loss;
      RnBlockRange(count, ctx->group_rank, ctx->group_size, &lo, &hi);
      lo += start, hi += start;
      for (int i = lo; i < hi; i++) xb[i - lo] = x[perm[i]];
      PetscCall(PetscArrayzero(grad, np));
      PetscCall(ModelLoss(&m, hi - lo, xb, theta, &loss, grad));
      PetscCall(RnGradientSum(grad, grad_sum, np, ctx->group));
      for (PetscInt i = 0; i < np; i++) grad_sum[i] /= count; /* mean squared error */
      for (int l = 0; l < ID_LAYERS; l++) norms[l] += hypot(grad_sum[2 * l], grad_sum[2 * l + 1]);
      PetscCall(RnOptimStep(optim, 1.0, theta, grad_sum));
    }
    PetscCall(ModelLoss(&m, P, x, theta, &mse, NULL));
    mse /= P;
    /* every rank has the same mse: the decision is collective */
    if (!isfinite(mse)) RnCollectiveError(ctx->world, RN_ERR_NONFINITE, "identity: the mse of the %s net is %g at epoch %d; lower train.lr (the last good checkpoint is kept)", residual ? "residual" : "plain", mse, epoch + 1);
    {
      const int batches = (P + o->batch - 1) / o->batch;
      PetscCall(RnMetricsRow(csv, "%d,%d,%d,%s,%d,%.10g,%.6e,%.6e,%.6e,%.6e", ctx->group_id, 0, ID_LAYERS, residual ? "residual" : "plain", epoch + 1, mse,
                             norms[0] / batches, norms[1] / batches, norms[2] / batches, norms[3] / batches));
    }
    if ((epoch + 1) % 500 == 0) PetscCall(RnProgress(ctx, "%s: epoch %d mse %.4e  ETA %.0f s", residual ? "residual" : "plain", epoch + 1, mse, RnTrainerETA(tr, base + epoch + 1)));
    st->final_mse[r] = mse;
    PetscCall(PetscArraycpy(st->optim_state, optim->state, optim->nstate));
    st->optim_step = optim->step;
    if (mse < o->target_mse) {
      st->epochs_needed[r] = epoch + 1;
      /* done: the next step is the next model's first */
      PetscCall(RnTrainerStepDone(tr, base + o->max_epochs, PETSC_TRUE, "the %s net, epoch %d", residual ? "residual" : "plain", epoch + 1));
      break;
    }
    PetscCall(RnTrainerStepDone(tr, base + epoch + 1, PETSC_FALSE, "the %s net, epoch %d", residual ? "residual" : "plain", epoch + 1));
    if (RnTrainerPlanDone(tr)) break; /* --plan: measured enough */
  }
  PetscCall(RnProgressEnd(ctx));
  PetscCall(RnOptimDestroy(&optim));
  PetscCall(PetscFree5(x, grad, grad_sum, perm, xb));
  PetscCall(PetscFree6(m.tape_chain, m.tape_head, m.h, m.y, m.dy, m.dh));
  PetscCall(RnNetDestroy(&m.chain));
  PetscCall(RnNetDestroy(&m.head));
  PetscFunctionReturn(0);
}

static PetscErrorCode IdentityRun(RnCtx ctx, RnRunDir rd, void *options)
{
  IdentityOptions *o = options;
  IdentityState st = {0};
  RnMetrics csv, summary;
  RnTrainer tr;
  long long first;

  PetscFunctionBeginUser;
  PetscCall(PetscCalloc2(ID_PARAMS, &st.theta, RnOptimStateSize(&o->optim, ID_PARAMS), &st.optim_state));
  PetscCall(RnTrainerCreate(ctx, rd, &o->checkpoint, "identity", &tr));
  PetscCall(RnTrainerAddState(tr, "theta", st.theta, sizeof(double) * ID_PARAMS, 0));
  PetscCall(RnTrainerAddState(tr, "optimizer", st.optim_state, sizeof(double) * RnOptimStateSize(&o->optim, ID_PARAMS), 0));
  PetscCall(RnTrainerAddState(tr, "optimizer_step", &st.optim_step, sizeof st.optim_step, 0));
  PetscCall(RnTrainerAddState(tr, "epochs_needed", st.epochs_needed, sizeof st.epochs_needed, 0));
  PetscCall(RnTrainerAddState(tr, "final_mse", st.final_mse, sizeof st.final_mse, 0));
  PetscCall(RnTrainerOpenMetrics(tr, "train.csv", "group,member,N,model,epoch,mse,grad_norm_1,grad_norm_2,grad_norm_3,grad_norm_4", &csv));
  PetscCall(RnTrainerStart(tr, 2LL * o->max_epochs, &first));
  for (int r = (int)(first / o->max_epochs); r < 2 && !RnTrainerPlanDone(tr); r++) PetscCall(TrainOne(ctx, o, r, r == first / o->max_epochs ? (int)(first % o->max_epochs) : 0, tr, csv, &st));
  PetscCall(RnTrainerFinish(tr));
  PetscCall(RnTrainerDestroy(&tr));
  PetscCall(RnMetricsOpen(rd, "summary.csv", "model,epochs_to_target,final_mse,target_mse,max_epochs", &summary));
  for (int r = 0; r < 2; r++) {
    const int epochs = (int)st.epochs_needed[r];
    PetscCall(RnMetricsRow(summary, "%s,%d,%.10g,%g,%d", r ? "residual" : "plain", epochs, st.final_mse[r], o->target_mse, o->max_epochs));
    if (epochs > 0) PetscCall(RnLog(ctx, "identity: %-8s reached mse < %g after %d epochs\n", r ? "residual" : "plain", o->target_mse, epochs));
    else PetscCall(RnLog(ctx, "identity: %-8s did not reach mse < %g in %d epochs (mse %.4g)\n", r ? "residual" : "plain", o->target_mse, o->max_epochs, st.final_mse[r]));
  }
  PetscCall(RnMetricsClose(&csv));
  PetscCall(RnMetricsClose(&summary));
  PetscCall(PetscFree2(st.theta, st.optim_state));
  PetscFunctionReturn(0);
}

const RnExperiment RnExperimentIdentity = {"identity", "y = x with 4 tanh layers of width 1, plain vs residual (vanishing gradients)", IdentityReadOptions, NULL, IdentityRun, "plot-identity", NULL, PETSC_FALSE, "epoch", NULL};
