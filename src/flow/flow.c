/* model.c: tied and untied ResNets, the ODE flow, and the parameter cap. */
#include "resnode/flow/flow.h"

#include <math.h>
#include <string.h>

const char *const RnFlowKindNames[] = {"resnet", "untied", "ode", NULL};
const char *const RnCapKindNames[] = {"none", "hard", "smooth", NULL};

/* t_i / T N this close to an integer k: observation i is the state x_k */
#define RN_FLOW_STEP_BOUNDARY 1e-8

PetscErrorCode RnFlowCreate(MPI_Comm comm, RnNet field, RnFlowKind kind, int depth, int nobs, const double *tobs, RnFlow *flow)
{
  RnFlow f;
  const double T = tobs[nobs - 1];

  PetscFunctionBeginUser;
  PetscCheck(field->setup, comm, PETSC_ERR_ARG_WRONGSTATE, "RnNetSetUp the vector field first");
  PetscCheck(RnShapeSize(field->in) == RnShapeSize(field->out), comm, PETSC_ERR_ARG_SIZ, "the residual block must map its input shape to itself");
  PetscCall(PetscNew(&f));
  f->kind = kind;
  f->record = PETSC_TRUE;
  f->comm = comm;
  f->field = field;
  f->depth = depth;
  f->nobs = nobs;
  f->dim = (int)RnShapeSize(field->in);
  PetscCall(PetscMalloc2(nobs, &f->tobs, nobs, &f->obs_layer));
  PetscCall(PetscArraycpy(f->tobs, tobs, nobs));
  f->nparams = kind == RN_FLOW_UNTIED ? field->nparams * depth : field->nparams;
  if (kind == RN_FLOW_ODE) {
    PetscCall(RnOdeCreate(comm, field, nobs, tobs, &f->ode));
  } else {
    PetscCheck(depth >= 1, comm, RN_ERR_INPUT, "a ResNet needs depth N >= 1, got %d", depth);
    /* observations of a ResNet are states x_k: t_i must be a multiple of T/N */
    for (int i = 0; i < nobs; i++) {
      double k = tobs[i] / T * depth;
      f->obs_layer[i] = (int)lround(k);
      PetscCheck(fabs(k - f->obs_layer[i]) < RN_FLOW_STEP_BOUNDARY, comm, RN_ERR_INPUT,
                 "observation time %g is not a step boundary of the depth-%d ResNet on [0, %g]: use a depth that is a multiple of the number of observation intervals",
                 tobs[i], depth, T);
    }
  }
  *flow = f;
  PetscFunctionReturn(0);
}

PetscErrorCode RnFlowSetOdeOptions(RnFlow flow, const RnOdeOptions *opt)
{
  PetscFunctionBeginUser;
  if (flow->ode) PetscCall(RnOdeSetOptions(flow->ode, opt));
  PetscFunctionReturn(0);
}

PetscErrorCode RnFlowSetRecord(RnFlow flow, PetscBool record)
{
  PetscFunctionBeginUser;
  flow->record = record;
  if (flow->ode) PetscCall(RnOdeSetRecord(flow->ode, record));
  PetscFunctionReturn(0);
}

static inline const double *StepTheta(RnFlow f, const double *theta, int k) { return f->kind == RN_FLOW_UNTIED ? theta + (size_t)k * f->field->nparams : theta; }

/* x_{k+1} = x_k + h f(x_k) without keeping the layers: two states in turn
 * and one layer's tape (the same arithmetic as the recorded pass). */
static PetscErrorCode ForwardWithoutRecord(RnFlow f, int batch, const double *theta, const double *x0, double *xobs)
{
  const size_t nx = (size_t)batch * f->dim;
  const double h = f->tobs[f->nobs - 1] / f->depth;
  double *x, *next;

  PetscFunctionBeginUser;
  if (batch > f->pass_batch || !f->pass_states) {
    PetscCall(PetscFree2(f->pass_states, f->pass_tape));
    PetscCall(PetscMalloc2(2 * PetscMax(nx, 1), &f->pass_states, (size_t)PetscMax(batch, 1) * f->field->tape_per_sample + 1, &f->pass_tape));
    f->pass_batch = batch;
  }
  x = f->pass_states, next = f->pass_states + nx;
  PetscCall(PetscArraycpy(x, x0, nx));
  for (int k = 0; k <= f->depth; k++) {
    if (xobs)
      for (int i = 0; i < f->nobs; i++)
        if (f->obs_layer[i] == k) PetscCall(PetscArraycpy(xobs + i * nx, x, nx));
    if (k == f->depth) break;
    PetscCall(RnNetForward(f->field, batch, StepTheta(f, theta, k), x, next, f->pass_tape));
    for (size_t i = 0; i < nx; i++) next[i] = x[i] + h * next[i];
    {
      double *t = x;
      x = next, next = t;
    }
  }
  PetscFunctionReturn(0);
}

static PetscErrorCode EnsureResNetTape(RnFlow f, int batch)
{
  const size_t nx = (size_t)batch * f->dim;

  PetscFunctionBeginUser;
  if (batch <= f->tape_batch && f->states) PetscFunctionReturn(0);
  PetscCall(PetscFree4(f->states, f->tapes, f->adj, f->work));
  PetscCall(PetscMalloc4((f->depth + 1) * PetscMax(nx, 1), &f->states, (size_t)f->depth * PetscMax(batch, 1) * f->field->tape_per_sample + 1, &f->tapes, PetscMax(nx, 1), &f->adj,
                         PetscMax(nx, 1), &f->work));
  f->tape_batch = batch;
  PetscFunctionReturn(0);
}

PetscErrorCode RnFlowForward(RnFlow f, int batch, const double *theta, const double *x0, double *xobs)
{
  const size_t nx = (size_t)batch * f->dim;
  const double h = f->tobs[f->nobs - 1] / f->depth;

  PetscFunctionBeginUser;
  f->batch = batch;
  if (f->kind == RN_FLOW_ODE) {
    PetscCall(RnOdeForward(f->ode, batch, theta, x0, xobs));
    PetscFunctionReturn(0);
  }
  f->recorded = f->record;
  if (!f->record) {
    PetscCall(ForwardWithoutRecord(f, batch, theta, x0, xobs));
    PetscFunctionReturn(0);
  }
  PetscCall(EnsureResNetTape(f, batch));
  PetscCall(PetscArraycpy(f->states, x0, nx));
  for (int k = 0; k < f->depth; k++) {
    const double *xk = f->states + k * nx;
    double *xnext = f->states + (k + 1) * nx;
    double *tape = f->tapes + (size_t)k * batch * f->field->tape_per_sample;
    PetscCall(RnNetForward(f->field, batch, StepTheta(f, theta, k), xk, xnext, tape));
    for (size_t i = 0; i < nx; i++) xnext[i] = xk[i] + h * xnext[i];
  }
  if (xobs)
    for (int i = 0; i < f->nobs; i++) PetscCall(PetscArraycpy(xobs + i * nx, f->states + (size_t)f->obs_layer[i] * nx, nx));
  PetscFunctionReturn(0);
}

PetscErrorCode RnFlowBackward(RnFlow f, const double *theta, const double *dxobs, double *dx0, double *dtheta)
{
  const int batch = f->batch;
  const size_t nx = (size_t)batch * f->dim;
  const double h = f->tobs[f->nobs - 1] / f->depth;
  int obs = f->nobs - 1;

  PetscFunctionBeginUser;
  if (f->kind == RN_FLOW_ODE) {
    PetscCall(RnOdeBackward(f->ode, dxobs, dx0, dtheta));
    PetscFunctionReturn(0);
  }
  PetscCheck(f->recorded, f->comm, PETSC_ERR_ORDER, "RnFlowBackward after a forward pass without a record (RnFlowSetRecord)");
  /* a = dL/dx_k, going down from k = N; x_{k+1} = x_k + h f(x_k) gives
   * a_k = a_{k+1} + h J_x(x_k)^T a_{k+1}, dtheta += h J_theta(x_k)^T a_{k+1} */
  PetscCall(PetscArrayzero(f->adj, nx));
  for (int k = f->depth; k >= 0; k--) {
    while (obs >= 0 && f->obs_layer[obs] == k) {
      for (size_t i = 0; i < nx; i++) f->adj[i] += dxobs[obs * nx + i];
      obs--;
    }
    if (k == 0) break;
    {
      const int s = k - 1;
      double *tape = f->tapes + (size_t)s * batch * f->field->tape_per_sample;
      double *dth = f->kind == RN_FLOW_UNTIED ? dtheta + (size_t)s * f->field->nparams : dtheta;
      for (size_t i = 0; i < nx; i++) f->work[i] = h * f->adj[i];
      /* work <- J_x^T (h a), dth += J_theta^T (h a) */
      PetscCall(RnNetBackward(f->field, batch, StepTheta(f, theta, s), f->states + s * nx, f->work, f->work, dth, tape));
      for (size_t i = 0; i < nx; i++) f->adj[i] += f->work[i];
    }
  }
  if (dx0) PetscCall(PetscArraycpy(dx0, f->adj, nx));
  PetscFunctionReturn(0);
}

PetscErrorCode RnFlowInit(RnFlow f, uint64_t seed, uint32_t member, uint32_t first_layer_id, double *theta)
{
  PetscFunctionBeginUser;
  if (f->kind == RN_FLOW_UNTIED) {
    for (int k = 0; k < f->depth; k++)
      PetscCall(RnNetInit(f->field, seed, member, first_layer_id + (uint32_t)k * (uint32_t)f->field->nlayers, theta + (size_t)k * f->field->nparams));
  } else {
    PetscCall(RnNetInit(f->field, seed, member, first_layer_id, theta));
  }
  PetscFunctionReturn(0);
}

uint32_t RnFlowLayerIdCount(RnFlow f)
{
  const uint32_t steps = f->kind == RN_FLOW_UNTIED ? (uint32_t)f->depth : 1;
  return steps * (uint32_t)f->field->nlayers;
}

PetscErrorCode RnFlowDestroy(RnFlow *flow)
{
  PetscFunctionBeginUser;
  if (!flow || !*flow) PetscFunctionReturn(0);
  PetscCall(RnOdeDestroy(&(*flow)->ode));
  PetscCall(PetscFree2((*flow)->tobs, (*flow)->obs_layer));
  PetscCall(PetscFree4((*flow)->states, (*flow)->tapes, (*flow)->adj, (*flow)->work));
  PetscCall(PetscFree2((*flow)->pass_states, (*flow)->pass_tape));
  PetscCall(PetscFree(*flow));
  *flow = NULL;
  PetscFunctionReturn(0);
}

void RnCapApply(RnCap cap, PetscInt n, const double *theta, double *capped)
{
  const double L = cap.level;
  for (PetscInt i = 0; i < n; i++) {
    switch (cap.kind) {
    case RN_CAP_NONE:
      capped[i] = theta[i];
      break;
    case RN_CAP_HARD:
      capped[i] = theta[i] > L ? L : (theta[i] < -L ? -L : theta[i]);
      break;
    case RN_CAP_SMOOTH:
      capped[i] = L * tanh(theta[i] / L);
      break;
    }
  }
}

void RnCapBackward(RnCap cap, PetscInt n, const double *theta, const double *dcapped, double *dtheta)
{
  const double L = cap.level;
  for (PetscInt i = 0; i < n; i++) {
    double d = 1.0;
    if (cap.kind == RN_CAP_HARD) d = fabs(theta[i]) < L ? 1.0 : 0.0;
    else if (cap.kind == RN_CAP_SMOOTH) {
      double th = tanh(theta[i] / L);
      d = 1.0 - th * th;
    }
    dtheta[i] = d * dcapped[i];
  }
}

PetscErrorCode RnDepthOptionsFromConfig(RnConfig cfg, const char *prefix, RnDepthOptions *opt)
{
  char key[128];
  int kind;

  PetscFunctionBeginUser;
  PetscCall(PetscSNPrintf(key, sizeof key, "%s.depth", prefix));
  PetscCall(RnConfigGetChoice(cfg, key, "ode", RnFlowKindNames, &kind));
  opt->kind = (RnFlowKind)kind;
  PetscCall(PetscSNPrintf(key, sizeof key, "%s.N", prefix));
  PetscCall(RnConfigGetInt(cfg, key, 16, 1, 1 << 20, &opt->N));
  PetscCall(RnOdeOptionsFromConfig(cfg, "ode", &opt->ode));
  PetscFunctionReturn(0);
}

void RnDepthDescribe(const RnDepthOptions *opt, char *buf, size_t len)
{
  if (opt->kind == RN_FLOW_ODE) {
    if (opt->ode.adaptive) snprintf(buf, len, "ode(%s, rtol %g)", opt->ode.solver, opt->ode.rtol);
    else snprintf(buf, len, "ode(%s, %d steps)", opt->ode.solver, opt->ode.steps);
  } else snprintf(buf, len, "%s(N=%d)", RnFlowKindNames[opt->kind], opt->N);
}
