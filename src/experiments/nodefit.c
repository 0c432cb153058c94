/* nodefit.c: the test equation. Data from du/dt = A u^3 (a tight solve),
 * a neural ODE (or ResNet) with the field u -> u^3 -> Dense(2,50,tanh) ->
 * Dense(50,2) fitted to the 16 samples by Adam. */
#include "resnode/core/profile.h"
#include "resnode/core/snapshot.h"
#include "resnode/core/trainer.h"
#include "resnode/core/units.h"
#include "resnode/flow/flow.h"
#include "resnode/nn/optim.h"
#include "resnode/experiments/experiments.h"

#include <math.h>
#include <string.h>

#define NF_MAX_SAMPLES 4096

typedef struct {
  double A[4], u0[2];
  int samples;
  double t_end, data_rtol;
  RnDepthOptions depth;
  RnOptimOptions optim;
  int iterations, log_every, plot_points;
  RnCheckpointOptions checkpoint;
  RnConfig cfg; /* kept to build the field in run() (read-only by then) */
} NodeFitOptions;

static const char nf_default_field[] = "( { type = \"cube\"; }, { type = \"dense\"; out = 50; activation = \"tanh\"; }, { type = \"dense\"; out = 2; } )";

static PetscErrorCode CheckReference(RnConfig cfg, const NodeFitOptions *o);

static PetscErrorCode NodeFitReadOptions(RnCtx ctx, RnConfig cfg, void **options)
{
  NodeFitOptions *o;
  int n;
  const double A_default[4] = {-0.1, 2.0, -2.0, -0.1}, u0_default[2] = {2.0, 0.0};
  RnNet probe;
  RnShape in = {2, 1, 1};

  PetscFunctionBeginUser;
  PetscCall(PetscNew(&o));
  PetscCall(RnConfigGetRealArray(cfg, "data.A", 4, A_default, -1e3, 1e3, 4, 4, &n, o->A));
  PetscCall(RnConfigGetRealArray(cfg, "data.u0", 2, u0_default, -1e3, 1e3, 2, 2, &n, o->u0));
  PetscCall(RnConfigGetInt(cfg, "data.samples", 16, 2, NF_MAX_SAMPLES, &o->samples));
  PetscCall(RnConfigGetReal(cfg, "data.t_end", 1.5, 1e-6, 1e6, &o->t_end));
  PetscCall(RnConfigGetReal(cfg, "data.rtol", 1e-12, 1e-15, 1e-3, &o->data_rtol));
  if (!RnConfigHas(cfg, "model.field")) {
    char set[256];
    PetscCall(PetscSNPrintf(set, sizeof set, "model.field=%s", nf_default_field));
    PetscCall(RnConfigSet(cfg, set));
  }
  /* build once here so layer errors are reported with the other config errors */
  PetscCall(RnNetCreateFromConfig(cfg, "model.field", PETSC_COMM_SELF, in, &probe));
  if (RnShapeSize(probe->out) != 2) PetscCall(RnConfigError(cfg, "model.field", "the vector field must end with 2 outputs (the state u), it ends with %d", (int)RnShapeSize(probe->out)));
  PetscCall(RnNetDestroy(&probe));
  PetscCall(RnDepthOptionsFromConfig(cfg, "model", &o->depth));
  if (o->depth.kind != RN_FLOW_ODE && o->depth.N % (o->samples - 1))
    PetscCall(RnConfigError(cfg, "model.N", "a ResNet must have a layer at every sample time: N = %d is not a multiple of samples - 1 = %d", o->depth.N, o->samples - 1));
  PetscCall(RnOptimOptionsFromConfig(cfg, "train", &o->optim));
  PetscCall(RnConfigGetInt(cfg, "train.iterations", 1000, 0, 100000000, &o->iterations));
  PetscCall(RnConfigGetInt(cfg, "train.log_every", 10, 1, 100000000, &o->log_every));
  PetscCall(RnConfigGetInt(cfg, "output.plot_points", 151, 2, 100000, &o->plot_points));
  PetscCall(RnCheckpointOptionsFromConfig(cfg, &o->checkpoint));
  PetscCall(RnConfigOneGroup(cfg, "node-fit"));
  o->cfg = cfg;
  if (!RnConfigDescribing(cfg)) PetscCall(CheckReference(cfg, o));
  *options = o;
  PetscFunctionReturn(0);
}

/* The true trajectory at the given times: the "field" u -> A u^3 is itself a
 * Net (cube, then a dense layer with W = A, b = 0), solved by dopri5 at a
 * tight tolerance on one rank. */
static PetscErrorCode TrueTrajectory(const NodeFitOptions *o, int n, const double *t, double *u)
{
  RnNet net;
  RnLayer layer;
  RnShape in = {2, 1, 1};
  RnFlow flow;
  RnOdeOptions opt;
  double theta[6];

  PetscFunctionBeginUser;
  PetscCall(RnNetCreate(in, &net));
  PetscCall(RnLayerCreateActivation(in, RN_ACT_CUBE, &layer));
  PetscCall(RnNetAdd(net, layer));
  PetscCall(RnLayerCreateDense(in, 2, &layer));
  PetscCall(RnNetAdd(net, layer));
  PetscCall(RnNetSetUp(net));
  memcpy(theta, o->A, sizeof o->A);
  theta[4] = theta[5] = 0.0;
  RnOdeOptionsDefault(&opt);
  strcpy(opt.solver, "dopri5");
  opt.adaptive = PETSC_TRUE;
  /* the data's own TS: -ts_* options on the command line are for the model */
  PetscCall(PetscStrncpy(opt.options_prefix, "rn_data_", sizeof opt.options_prefix));
  opt.rtol = o->data_rtol;
  opt.atol = o->data_rtol * 1e-2;
  opt.dt0 = 1e-4;
  PetscCall(RnFlowCreate(PETSC_COMM_SELF, net, RN_FLOW_ODE, 0, n, t, &flow));
  PetscCall(RnFlowSetOdeOptions(flow, &opt));
  PetscCall(RnFlowSetRecord(flow, PETSC_FALSE));
  PetscCall(RnFlowForward(flow, 1, theta, o->u0, u));
  PetscCall(RnFlowDestroy(&flow));
  PetscCall(RnNetDestroy(&net));
  PetscFunctionReturn(0);
}

/* The data must exist: a field u -> A u^3 whose solution blows up before
 * data.t_end (a positive growth rate) has none. Solved here, before the run
 * directory is made, every rank alike (PETSc's floating-point check would
 * otherwise abort inside the solver). */
static PetscErrorCode CheckReference(RnConfig cfg, const NodeFitOptions *o)
{
  double t[NF_MAX_SAMPLES], u[2 * NF_MAX_SAMPLES];
  PetscErrorCode err;
  int finite = 1;

  PetscFunctionBeginUser;
  for (int i = 0; i < o->samples; i++) t[i] = o->t_end * i / (o->samples - 1);
  PetscCall(PetscPushErrorHandler(PetscReturnErrorHandler, NULL));
  err = TrueTrajectory(o, o->samples, t, u);
  PetscCall(PetscPopErrorHandler());
  for (int i = 0; !err && i < 2 * o->samples; i++) finite = finite && PetscIsNormalReal(u[i]) | (u[i] == 0.0);
  if (err || !finite)
    PetscCall(RnConfigError(cfg, "data.A",
                            "the data's solution of du/dt = A u^3 from u0 = (%g, %g) blows up before data.t_end = %g with A = [%g, %g, %g, %g] (it needs a damping diagonal, A[0] and A[3] <= 0, or a shorter data.t_end)",
                            o->u0[0], o->u0[1], o->t_end, o->A[0], o->A[1], o->A[2], o->A[3]));
  PetscFunctionReturn(0);
}

static PetscErrorCode NodeFitRun(RnCtx ctx, RnRunDir rd, void *options)
{
  NodeFitOptions *o = options;
  RnShape in = {2, 1, 1};
  RnNet field;
  RnFlow flow;
  RnOptim optim;
  RnMetrics train_csv, data_csv, pred_csv;
  const int S = o->samples;
  /* the one trajectory lives on rank 0 of the group; the other ranks join the
   * collective TS solve with no samples */
  const int batch = ctx->group_rank == 0 ? 1 : 0;
  double *t, *data, *pred, *dpred, *theta, *grad, *grad_sum, loss = 0.0, local_loss;
  char describe[64];
  double start = RnWallTime();
  RnTrainer tr;
  long long first;
  int first_it = 0;

  PetscFunctionBeginUser;
  PetscCall(PetscMalloc4(S, &t, 2 * S, &data, 2 * S, &pred, 2 * S, &dpred));
  for (int i = 0; i < S; i++) t[i] = o->t_end * i / (S - 1);
  PetscCall(TrueTrajectory(o, S, t, data));

  PetscCall(RnNetCreateFromConfig(o->cfg, "model.field", ctx->group, in, &field));
  PetscCall(RnFlowCreate(ctx->group, field, o->depth.kind, o->depth.N, S, t, &flow));
  PetscCall(RnFlowSetOdeOptions(flow, &o->depth.ode));
  PetscCall(PetscMalloc3(flow->nparams, &theta, flow->nparams, &grad, flow->nparams, &grad_sum));
  PetscCall(RnFlowInit(flow, ctx->seed, 0, 0, theta));
  PetscCall(RnOptimCreate(flow->nparams, &o->optim, &optim));
  RnDepthDescribe(&o->depth, describe, sizeof describe);
  PetscCall(RnLog(ctx, "node-fit: %d samples of du/dt = A u^3 on [0, %g]; model %s with %d parameters; %s lr %g, %d iterations\n", S, o->t_end, describe,
                  (int)flow->nparams, RnOptimKindNames[o->optim.kind], o->optim.lr, o->iterations));

  PetscCall(RnMetricsOpen(rd, "data.csv", "t,u1,u2", &data_csv));
  for (int i = 0; i < S; i++) PetscCall(RnMetricsRow(data_csv, "%.17g,%.17g,%.17g", t[i], data[2 * i], data[2 * i + 1]));
  PetscCall(RnMetricsClose(&data_csv));
  /* everything a resumed run needs to continue bit for bit */
  PetscCall(RnTrainerCreate(ctx, rd, &o->checkpoint, "node-fit", &tr));
  PetscCall(RnTrainerAddState(tr, "theta", theta, sizeof(double) * flow->nparams, 0));
  PetscCall(RnTrainerAddState(tr, "optimizer", optim->state, sizeof(double) * optim->nstate, 0));
  PetscCall(RnTrainerAddState(tr, "optimizer_step", &optim->step, sizeof optim->step, 0));
  PetscCall(RnTrainerOpenMetrics(tr, "train.csv", "group,member,N,iteration,time_s,loss,steps,rhs_forward,rhs_backward", &train_csv));
  PetscCall(RnTrainerStart(tr, o->iterations, &first));
  first_it = (int)first;

  for (int it = first_it; it <= o->iterations; it++) {
    RnOdeStats stats = {0};
    /* forward and loss: sum over the sample times of |u(t_i) - data_i|^2 */
    PetscCall(RnFlowForward(flow, batch, theta, o->u0, pred));
    PetscCall(RnLossSquaredError(1, 2 * S * batch, pred, data, &local_loss, dpred));
    PetscCallMPI(MPI_Allreduce(&local_loss, &loss, 1, MPI_DOUBLE, MPI_SUM, ctx->group));
    if (!isfinite(loss)) RnCollectiveError(ctx->world, RN_ERR_NONFINITE, "node-fit: the loss is %g at iteration %d; the last good checkpoint is kept; lower train.lr or tighten ode.rtol", loss, it);
    if (it == o->iterations) break; /* the last pass only measures */
    PetscCall(PetscArrayzero(grad, flow->nparams));
    PetscCall(RnFlowBackward(flow, theta, dpred, NULL, grad));
    PetscCall(RnGradientSum(grad, grad_sum, flow->nparams, ctx->group));
    for (PetscInt i = 0; i < flow->nparams; i++)
      if (!isfinite(grad_sum[i])) RnCollectiveError(ctx->world, RN_ERR_NONFINITE, "node-fit: gradient entry %d is %g at iteration %d; the last good checkpoint is kept", (int)i, grad_sum[i], it);
    PetscCall(RnOptimStep(optim, 1.0, theta, grad_sum));
    if (flow->ode) PetscCall(RnOdeGetStats(flow->ode, &stats));
    if (it % o->log_every == 0) {
      double elapsed = RnWallTime() - start;
      PetscCall(RnMetricsRow(train_csv, "%d,%d,%d,%d,%.6f,%.10g,%d,%ld,%ld", ctx->group_id, 0, flow->kind == RN_FLOW_ODE ? 0 : flow->depth, it, elapsed, loss, stats.steps,
                             stats.rhs_forward, stats.rhs_backward));
      PetscCall(RnProgress(ctx, "iteration %6d/%d  loss %.6e  steps %4d  %.1f it/s  ETA %.0f s", it, o->iterations, loss, stats.steps, (it + 1 - first_it) / elapsed,
                           RnTrainerETA(tr, it + 1)));
    }
    PetscCall(RnTrainerStepDone(tr, it + 1, PETSC_FALSE, "iteration %d", it + 1));
    if (RnTrainerPlanDone(tr)) break; /* --plan: measured enough */
  }
  PetscCall(RnTrainerFinish(tr));
  PetscCall(RnTrainerDestroy(&tr));
  PetscCall(RnMetricsRow(train_csv, "%d,%d,%d,%d,%.6f,%.10g,%d,%d,%d", ctx->group_id, 0, flow->kind == RN_FLOW_ODE ? 0 : flow->depth, o->iterations, RnWallTime() - start, loss, 0, 0, 0));
  PetscCall(RnMetricsClose(&train_csv));
  PetscCall(RnLog(ctx, "node-fit: final loss %.6e after %d iterations (%.1f s)\n", loss, o->iterations, RnWallTime() - start));

  /* the fitted trajectory on a fine grid, for the plot */
  {
    const int P = o->plot_points;
    double *tp, *up;
    RnFlow fine;
    PetscCall(PetscMalloc2(P, &tp, 2 * P, &up));
    for (int i = 0; i < P; i++) tp[i] = o->t_end * i / (P - 1);
    if (o->depth.kind == RN_FLOW_ODE) {
      PetscCall(RnFlowCreate(ctx->group, field, RN_FLOW_ODE, 0, P, tp, &fine));
      PetscCall(RnFlowSetOdeOptions(fine, &o->depth.ode));
      PetscCall(RnFlowSetRecord(fine, PETSC_FALSE));
      PetscCall(RnFlowForward(fine, batch, theta, o->u0, up));
      PetscCall(RnFlowDestroy(&fine));
    } else {
      /* a ResNet only has its layers: plot it at the sample times */
      PetscCall(PetscArraycpy(tp, t, S));
      PetscCall(PetscArraycpy(up, pred, 2 * S));
    }
    PetscCall(RnMetricsOpen(rd, "prediction.csv", "t,u1,u2", &pred_csv));
    for (int i = 0; i < (o->depth.kind == RN_FLOW_ODE ? P : S); i++) PetscCall(RnMetricsRow(pred_csv, "%.17g,%.17g,%.17g", tp[i], up[2 * i], up[2 * i + 1]));
    PetscCall(RnMetricsClose(&pred_csv));
    PetscCall(PetscFree2(tp, up));
  }
  if (ctx->world_rank == 0) {
    char path[PETSC_MAX_PATH_LEN + 32];
    RnSnapshotInfo info = {0, flow->kind == RN_FLOW_ODE ? 0 : flow->depth, o->iterations, 0.0};
    PetscCall(RnRunDirFile(rd, "snapshots/final.bin", path, sizeof path));
    PetscCall(RnSnapshotWrite(path, &info, flow->nparams, theta));
  }

  PetscCall(RnOptimDestroy(&optim));
  PetscCall(PetscFree3(theta, grad, grad_sum));
  PetscCall(RnFlowDestroy(&flow));
  PetscCall(RnNetDestroy(&field));
  PetscCall(PetscFree4(t, data, pred, dpred));
  PetscFunctionReturn(0);
}

/* the model's ODE (-ts_*) and the data's own (-rn_data_ts_*) */
static const char *const nodefit_prefixes[] = {"", "rn_data_", NULL};

/* iterations x samples (the field's evaluations a sample depend on the solver's steps: left out) */
static double NodeFitWork(const void *options)
{
  const NodeFitOptions *o = options;
  return (double)o->iterations * o->samples;
}

const RnExperiment RnExperimentNodeFit = {"node-fit", "fit a neural ODE to the test equation du/dt = A u^3", NodeFitReadOptions, NULL, NodeFitRun, "plot-node-fit", nodefit_prefixes, PETSC_FALSE, "iteration", NodeFitWork};
