/* ensemble.c: the SGD process for one member at one depth (see ensemble.h). */
#include "resnode/ensemble/ensemble.h"
#include "resnode/core/profile.h"
#include "resnode/core/rng.h"

#include <errno.h>
#include <math.h>
#include <string.h>

struct RnEnsemble_s {
  MPI_Comm comm;
  int rank, size;
  uint64_t seed;
  RnNet field;
  const RnEnsembleOptions *opt;
  PetscInt p;
  int nrec;
  /* work */
  double *capped, *grad, *grad_sum, *noise, *xb, *yb, *xT, *dxT;
  int *idx;
  RnFlow flow; /* of depth flow_N, kept between calls */
  int flow_N;
  RnEnsembleProblem problem; /* the field's own, or one given */
  PetscErrorCode (*monitor)(void *ctx, int N, int member, int step, const double *noise, PetscInt p);
  void *monitor_ctx;
};

static const char *const rn_data_kinds[] = {"synthetic", "csv", "cifar", NULL};
static const char *const rn_targets[] = {"sine", "linear", NULL};
static const char *const rn_presets[] = {"reduced", "full", NULL};

/* data.file: rows of 2 * dim numbers (x then y), '#' comments, a header line
 * allowed; lines of any length (getline), every number finite. */
static PetscErrorCode ReadCsvData(RnConfig cfg, const char *path, int dim, RnEnsembleOptions *opt)
{
  FILE *fp = fopen(path, "r");
  char *line = NULL;
  size_t line_cap = 0;
  double *v;
  int lineno = 0, n = 0, cap = 1024;

  PetscFunctionBeginUser;
  if (!fp) PetscCall(RnConfigError(cfg, "data.file", "cannot open '%s': %s", path, strerror(errno)));
  PetscCall(PetscMalloc2((size_t)cap * dim, &opt->x, (size_t)cap * dim, &opt->y));
  PetscCall(PetscMalloc1(2 * (size_t)dim + 1, &v));
  while (getline(&line, &line_cap, fp) > 0) {
    int k = 0;
    char *p = line, *end;
    lineno++;
    if (line[0] == '#' || line[strspn(line, " \t\r\n")] == 0) continue;
    while (k <= 2 * dim) {
      double d = strtod(p, &end);
      if (end == p) break;
      v[k++] = d;
      p = end + strspn(end, " \t,");
    }
    if (k == 0 && n == 0 && lineno == 1) continue; /* a header */
    if (k != 2 * dim || p[strspn(p, " \t\r\n")] != 0) {
      const PetscBool text = p[strspn(p, " \t\r\n")] ? PETSC_TRUE : PETSC_FALSE;
      fclose(fp);
      free(line);
      RnInputError(RnConfigComm(cfg), "%s:%d: expected %d numbers (x_1..x_%d then y_1..y_%d), found %s%d%s", path, lineno, 2 * dim, dim, dim, k > 2 * dim ? "more than " : "",
                   k > 2 * dim ? 2 * dim : k, text && k <= 2 * dim ? " and text that is not a number" : "");
    }
    for (int j = 0; j < k; j++)
      if (!isfinite(v[j])) {
        fclose(fp);
        free(line);
        RnInputError(RnConfigComm(cfg), "%s:%d: number %d is %s: the data must be finite", path, lineno, j + 1, isnan(v[j]) ? "nan" : (v[j] > 0 ? "inf" : "-inf"));
      }
    if (n == cap) {
      double *x2, *y2;
      PetscCall(PetscMalloc2((size_t)2 * cap * dim, &x2, (size_t)2 * cap * dim, &y2));
      PetscCall(PetscArraycpy(x2, opt->x, (size_t)n * dim));
      PetscCall(PetscArraycpy(y2, opt->y, (size_t)n * dim));
      PetscCall(PetscFree2(opt->x, opt->y));
      opt->x = x2, opt->y = y2, cap *= 2;
    }
    for (int d = 0; d < dim; d++) {
      opt->x[(size_t)n * dim + d] = v[d];
      opt->y[(size_t)n * dim + d] = v[dim + d];
    }
    n++;
  }
  free(line);
  PetscCall(PetscFree(v));
  fclose(fp);
  RnInputCheck(n >= 1, RnConfigComm(cfg), "%s: no data rows (expected lines of %d numbers)", path, 2 * dim);
  opt->samples = n;
  PetscFunctionReturn(0);
}

PetscErrorCode RnEnsembleOptionsFromConfig(RnConfig cfg, RnEnsembleOptions *opt)
{
  int kind, target, preset, cap;
  double amplitude;
  uint64_t data_seed = 12345;
  long long seed_ll;
  const int reduced_depths[] = {2, 4, 8, 16, 32, 64}, full_depths[] = {2, 4, 8, 16, 32, 64, 128};

  PetscFunctionBeginUser;
  memset(opt, 0, sizeof *opt);
  PetscCall(RnConfigGetChoice(cfg, "ensemble.preset", "reduced", rn_presets, &preset));
  PetscCall(RnConfigGetInt(cfg, "data.dim", 2, 1, 4096, &opt->dim));
  PetscCall(RnConfigGetChoice(cfg, "data.kind", "synthetic", rn_data_kinds, &kind));
  if (kind == 0) {
    PetscCall(RnConfigGetInt(cfg, "data.samples", 256, 1, 100000000, &opt->samples));
    PetscCall(RnConfigGetChoice(cfg, "data.target", "sine", rn_targets, &target));
    PetscCall(RnConfigGetReal(cfg, "data.amplitude", 0.5, -1e3, 1e3, &amplitude));
    PetscCall(RnConfigGetInt64(cfg, "data.seed", 12345, 0, (long long)1 << 62, &seed_ll));
    data_seed = (uint64_t)seed_ll;
    PetscCall(PetscMalloc2((size_t)opt->samples * opt->dim, &opt->x, (size_t)opt->samples * opt->dim, &opt->y));
    /* x uniform in [-1, 1]^d; y a fixed smooth map of x */
    RnRandUniform(data_seed, RN_STREAM_DATA, 0, 0, (size_t)opt->samples * opt->dim, opt->x);
    for (size_t i = 0; i < (size_t)opt->samples * opt->dim; i++) {
      opt->x[i] = 2.0 * opt->x[i] - 1.0;
      opt->y[i] = target == 0 ? opt->x[i] + amplitude * sin(PETSC_PI * opt->x[i]) : amplitude * opt->x[i];
    }
  } else if (kind == 1) {
    char path[PETSC_MAX_PATH_LEN];
    /* a config made for synthetic data (ensemble.cfg) switched to a file with
     * --set data.kind: its synthetic keys are this experiment's, validated,
     * and unused (the samples are the file's rows), not unknown */
    if (RnConfigHas(cfg, "data.samples")) PetscCall(RnConfigGetInt(cfg, "data.samples", 256, 1, 100000000, &opt->samples));
    if (RnConfigHas(cfg, "data.target")) PetscCall(RnConfigGetChoice(cfg, "data.target", "sine", rn_targets, &target));
    if (RnConfigHas(cfg, "data.amplitude")) PetscCall(RnConfigGetReal(cfg, "data.amplitude", 0.5, -1e3, 1e3, &amplitude));
    if (RnConfigHas(cfg, "data.seed")) PetscCall(RnConfigGetInt64(cfg, "data.seed", 12345, 0, (long long)1 << 62, &seed_ll));
    PetscCall(RnConfigGetPath(cfg, "data.file", RN_REQUIRED, 1, path, sizeof path));
    /* empty only when the keys are described (config.h: RnConfigSetDescribing) */
    if (path[0]) PetscCall(ReadCsvData(cfg, path, opt->dim, opt));
  } else opt->classification = PETSC_TRUE; /* CIFAR-10: the experiment loads it, with its network */
  PetscCall(RnConfigGetReal(cfg, "model.T", 1.0, 1e-9, 1e9, &opt->T));
  PetscCall(RnConfigGetChoice(cfg, "model.cap", "smooth", RnCapKindNames, &cap));
  opt->cap.kind = (RnCapKind)cap;
  PetscCall(RnConfigGetReal(cfg, "model.cap_level", 5.0, 1e-9, 1e9, &opt->cap.level));
  PetscCall(RnConfigGetReal(cfg, "penalty.gamma", 1e-3, 0.0, 1e9, &opt->gamma));
  PetscCall(RnConfigGetReal(cfg, "penalty.power", 2.0, 2.0, 64.0, &opt->power));
  if (fabs(opt->power / 2.0 - round(opt->power / 2.0)) > 0) PetscCall(RnConfigError(cfg, "penalty.power", "must be an even integer (2, 4, ...) so H is convex with quadratic growth, got %g", opt->power));
  PetscCall(RnConfigGetReal(cfg, "sgd.eta", 0.05, 1e-12, 1e3, &opt->eta));
  PetscCall(RnConfigGetInt(cfg, "sgd.steps", preset ? 400 : 200, 1, 1000000000, &opt->steps));
  PetscCall(RnConfigGetInt(cfg, "sgd.batch", 32, 0, 100000000, &opt->batch));
  PetscCall(RnConfigGetReal(cfg, "sgd.sigma", 0.1, 0.0, 1e6, &opt->sigma));
  if (RnConfigHas(cfg, "sgd.sigma_diag")) {
    PetscCall(PetscMalloc1(1 << 20, &opt->sigma_diag));
    PetscCall(RnConfigGetRealArray(cfg, "sgd.sigma_diag", 0, NULL, 0.0, 1e6, 1, 1 << 20, &opt->nsigma_diag, opt->sigma_diag));
  }
  PetscCall(RnConfigGetInt(cfg, "sgd.record_every", preset ? 20 : 10, 1, 1000000000, &opt->record_every));
  PetscCall(RnConfigGetInt(cfg, "ensemble.members", preset ? 64 : 32, 1, 1000000, &opt->members));
  if (opt->members < 2)
    PetscCall(RnConfigError(cfg, "ensemble.members", "1 member has no spread: the statistics over members (variances, the covariance spectrum) need at least 2; use ensemble.members >= 2 (in an array job, MEMBERS_PER_TASK >= 2)"));
  PetscCall(RnConfigGetInt(cfg, "ensemble.first_member", 0, 0, 1 << 30, &opt->first_member));
  PetscCall(RnConfigGetIntArray(cfg, "ensemble.depths", preset ? 7 : 6, preset ? full_depths : reduced_depths, 1, 1 << 20, 1, 64, &opt->ndepths, opt->depths));
  PetscCall(RnConfigGetBool(cfg, "ensemble.limit", PETSC_TRUE, &opt->limit));
  PetscCall(RnOdeOptionsFromConfig(cfg, "ode", &opt->ode));
  PetscFunctionReturn(0);
}

PetscErrorCode RnEnsembleOptionsDestroy(RnEnsembleOptions *opt)
{
  PetscFunctionBeginUser;
  PetscCall(PetscFree2(opt->x, opt->y));
  PetscCall(PetscFree(opt->sigma_diag));
  PetscFunctionReturn(0);
}

static PetscErrorCode FieldGradient(void *ctx, int N, int member, int step, const double *capped, double *grad_sum);
static PetscErrorCode FieldLoss(void *ctx, int N, const double *capped, double *loss);
static PetscErrorCode FieldInit(void *ctx, int N, int member, double *theta);

PetscErrorCode RnEnsembleCreateWithProblem(MPI_Comm comm, uint64_t seed, PetscInt p, const RnEnsembleOptions *opt, const RnEnsembleProblem *problem, RnEnsemble *ensp)
{
  RnEnsemble e;

  PetscFunctionBeginUser;
  if (opt->sigma_diag) PetscCheck(opt->nsigma_diag == p, comm, RN_ERR_INPUT, "sgd.sigma_diag has %d entries; the model has %d parameters (one each)", opt->nsigma_diag, (int)p);
  PetscCall(PetscNew(&e));
  e->comm = comm;
  PetscCallMPI(MPI_Comm_rank(comm, &e->rank));
  PetscCallMPI(MPI_Comm_size(comm, &e->size));
  e->seed = seed;
  e->opt = opt;
  e->p = p;
  e->nrec = opt->steps / opt->record_every + 1 + (opt->steps % opt->record_every ? 1 : 0);
  e->problem = *problem;
  PetscCall(PetscMalloc4(e->p, &e->capped, e->p, &e->grad, e->p, &e->grad_sum, e->p + 1, &e->noise));
  *ensp = e;
  PetscFunctionReturn(0);
}

PetscErrorCode RnEnsembleSetStepMonitor(RnEnsemble e, PetscErrorCode (*monitor)(void *ctx, int N, int member, int step, const double *noise, PetscInt p), void *ctx)
{
  PetscFunctionBeginUser;
  e->monitor = monitor, e->monitor_ctx = ctx;
  PetscFunctionReturn(0);
}

void RnEnsembleBatchIndices(uint64_t seed, int member, int step, int batch, int samples, int *idx)
{
  /* drawn with replacement, keyed by (member, step, i): the same at every depth */
  for (int i = 0; i < batch; i++) idx[i] = PetscMin(samples - 1, (int)(RnRandUniformAt(seed, RN_STREAM_ORDER, (uint32_t)member, (uint32_t)step, (uint32_t)i) * samples));
}

PetscErrorCode RnEnsembleCreate(MPI_Comm comm, uint64_t seed, RnNet field, const RnEnsembleOptions *opt, RnEnsemble *ensp)
{
  RnEnsemble e;
  const int B = opt->batch > 0 ? opt->batch : opt->samples;
  const size_t maxb = (size_t)PetscMax(B, opt->samples);

  PetscFunctionBeginUser;
  PetscCheck(RnShapeSize(field->in) == opt->dim && RnShapeSize(field->out) == opt->dim, comm, RN_ERR_INPUT,
             "model.field maps %d to %d entries; the data have dimension %d (x and y of equal dimension)", (int)RnShapeSize(field->in), (int)RnShapeSize(field->out), opt->dim);
  {
    RnEnsembleProblem field_problem = {NULL, FieldGradient, FieldLoss, FieldInit, NULL};
    PetscCall(RnEnsembleCreateWithProblem(comm, seed, field->nparams, opt, &field_problem, &e));
  }
  e->problem.ctx = e;
  e->field = field;
  PetscCall(PetscMalloc5(maxb * opt->dim, &e->xb, maxb * opt->dim, &e->yb, maxb * opt->dim, &e->xT, maxb * opt->dim, &e->dxT, B, &e->idx));
  *ensp = e;
  PetscFunctionReturn(0);
}

PetscInt RnEnsembleParamCount(RnEnsemble e) { return e->p; }
int RnEnsembleRecordCount(RnEnsemble e) { return e->nrec; }

static PetscErrorCode MakeFlow(RnEnsemble e, int N, RnFlow *flow)
{
  PetscFunctionBeginUser;
  PetscCall(RnFlowCreate(e->comm, e->field, N > 0 ? RN_FLOW_RESNET : RN_FLOW_ODE, N, 1, &e->opt->T, flow));
  if (N == 0) PetscCall(RnFlowSetOdeOptions(*flow, &e->opt->ode));
  PetscFunctionReturn(0);
}

static double Penalty(const RnEnsembleOptions *o, PetscInt p, const double *theta)
{
  double h = 0.0;
  for (PetscInt k = 0; k < p; k++) h += pow(fabs(theta[k]), o->power) / o->power;
  return o->gamma * h;
}

/* mean over the given samples (this rank's share of count) of |y - x_T|^2,
 * summed over the group; grad (may be NULL) gets the local gradient wrt the
 * capped parameters. */
static PetscErrorCode BatchLoss(RnEnsemble e, RnFlow flow, int count, int local, double *loss, double *grad)
{
  const int d = e->opt->dim;
  double local_sum;

  PetscFunctionBeginUser;
  PetscCall(RnFlowSetRecord(flow, grad ? PETSC_TRUE : PETSC_FALSE));
  PetscCall(RnFlowForward(flow, local, e->capped, e->xb, e->xT));
  PetscCall(RnLossSquaredError(1, local * d, e->xT, e->yb, &local_sum, e->dxT));
  PetscCallMPI(MPI_Allreduce(&local_sum, loss, 1, MPI_DOUBLE, MPI_SUM, e->comm));
  *loss /= count;
  if (grad) {
    for (int i = 0; i < local * d; i++) e->dxT[i] /= count;
    PetscCall(PetscArrayzero(grad, e->p));
    PetscCall(RnFlowBackward(flow, e->capped, e->dxT, NULL, grad));
  }
  PetscFunctionReturn(0);
}

static PetscErrorCode FlowForDepth(RnEnsemble e, int N, RnFlow *flow);

/* The field's loss over all samples (this rank's share), at e->capped. */
static PetscErrorCode FieldLoss(void *ctx, int N, const double *capped, double *loss)
{
  RnEnsemble e = ctx;
  const RnEnsembleOptions *o = e->opt;
  const int n = o->samples, lo = (int)((long long)n * e->rank / e->size), hi = (int)((long long)n * (e->rank + 1) / e->size);
  RnFlow flow = NULL;

  PetscFunctionBeginUser;
  PetscCall(FlowForDepth(e, N, &flow));
  PetscCall(PetscArraycpy(e->xb, o->x + (size_t)lo * o->dim, (size_t)(hi - lo) * o->dim));
  PetscCall(PetscArraycpy(e->yb, o->y + (size_t)lo * o->dim, (size_t)(hi - lo) * o->dim));
  PetscCall(BatchLoss(e, flow, n, hi - lo, loss, NULL));
  PetscFunctionReturn(0);
}

/* The field's mini-batch gradient (summed over the group), at e->capped. */
static PetscErrorCode FieldGradient(void *ctx, int N, int member, int step, const double *capped, double *grad_sum)
{
  RnEnsemble e = ctx;
  const RnEnsembleOptions *o = e->opt;
  const int B = o->batch > 0 ? o->batch : o->samples;
  const int lo = (int)((long long)B * e->rank / e->size), hi = (int)((long long)B * (e->rank + 1) / e->size);
  RnFlow flow = NULL;
  double loss;

  PetscFunctionBeginUser;
  PetscCall(FlowForDepth(e, N, &flow));
  /* mini-batch j of member m: indices drawn with replacement, keyed by (m, j) */
  if (o->batch > 0) RnEnsembleBatchIndices(e->seed, member, step, B, o->samples, e->idx);
  else
    for (int i = 0; i < B; i++) e->idx[i] = i;
  for (int i = lo; i < hi; i++) {
    PetscCall(PetscArraycpy(e->xb + (size_t)(i - lo) * o->dim, o->x + (size_t)e->idx[i] * o->dim, o->dim));
    PetscCall(PetscArraycpy(e->yb + (size_t)(i - lo) * o->dim, o->y + (size_t)e->idx[i] * o->dim, o->dim));
  }
  PetscCall(BatchLoss(e, flow, B, hi - lo, &loss, e->grad));
  PetscCall(RnGradientSum(e->grad, grad_sum, e->p, e->comm));
  PetscFunctionReturn(0);
}

static PetscErrorCode FieldInit(void *ctx, int N, int member, double *theta)
{
  RnEnsemble e = ctx;

  PetscFunctionBeginUser;
  PetscCall(RnNetInit(e->field, e->seed, (uint32_t)member, 0, theta));
  PetscFunctionReturn(0);
}

/* The risk R^N(theta) = loss at T_L(theta) + gamma H(theta). */
static PetscErrorCode Risk(RnEnsemble e, int N, const double *theta, double *risk)
{
  double loss;

  PetscFunctionBeginUser;
  RnCapApply(e->opt->cap, e->p, theta, e->capped);
  PetscCall(e->problem.risk(e->problem.ctx, N, e->capped, &loss));
  *risk = loss + Penalty(e->opt, e->p, theta);
  PetscFunctionReturn(0);
}

PetscErrorCode RnEnsembleRisk(RnEnsemble e, int N, const double *theta, double *risk)
{
  PetscFunctionBeginUser;
  PetscCall(Risk(e, N, theta, risk));
  PetscFunctionReturn(0);
}

/* The layout of a member's state (ensemble.h): [0] member, [1] N, [2] SGD
 * steps done, [3] reserved, then theta[p]. */
#define MEMBER_HEADER 4
static inline double *StateTheta(double *state) { return state + MEMBER_HEADER; }

size_t RnEnsembleMemberStateLength(RnEnsemble e) { return MEMBER_HEADER + (size_t)e->p; }
double *RnEnsembleMemberTheta(RnEnsemble e, double *state) { return StateTheta(state); }
int RnEnsembleMemberSteps(RnEnsemble e, const double *state) { return (int)state[2]; }

PetscErrorCode RnEnsembleMemberBegin(RnEnsemble e, int member, int N, double *state)
{
  PetscFunctionBeginUser;
  PetscCall(PetscArrayzero(state, RnEnsembleMemberStateLength(e)));
  state[0] = member, state[1] = N, state[2] = 0, state[3] = 0;
  /* the same initial parameters for every depth: keyed by the member only */
  PetscCall(e->problem.init(e->problem.ctx, N, member, StateTheta(state)));
  PetscFunctionReturn(0);
}

/* The flow of depth N, kept while consecutive calls use the same depth (a
 * flow holds no state from one solve to the next). */
static PetscErrorCode FlowForDepth(RnEnsemble e, int N, RnFlow *flow)
{
  PetscFunctionBeginUser;
  if (!e->flow || e->flow_N != N) {
    PetscCall(RnFlowDestroy(&e->flow));
    PetscCall(MakeFlow(e, N, &e->flow));
    e->flow_N = N;
  }
  *flow = e->flow;
  PetscFunctionReturn(0);
}

PetscErrorCode RnEnsembleMemberAdvance(RnEnsemble e, double *state, int steps)
{
  const RnEnsembleOptions *o = e->opt;
  const int member = (int)state[0], N = (int)state[1];
  const double sq = sqrt(o->eta);
  double *theta = StateTheta(state);
  int j = (int)state[2];
  const int stop = (int)PetscMin((long long)j + steps, (long long)o->steps);

  PetscFunctionBeginUser;
  for (; j < stop; j++) {
    RnCapApply(o->cap, e->p, theta, e->capped);
    PetscCall(e->problem.gradient(e->problem.ctx, N, member, j, e->capped, e->grad_sum));
    /* the SGD step with its noise: the optimizer's */
    PetscCall(RnEventBegin(RN_EV_OPTIMIZER));
    RnCapBackward(o->cap, e->p, theta, e->grad_sum, e->grad_sum);
    RnRandNormal(e->seed, RN_STREAM_NOISE, (uint32_t)member, (uint32_t)j, (size_t)e->p, e->noise);
    if (e->monitor) PetscCall(e->monitor(e->monitor_ctx, N, member, j, e->noise, e->p));
    for (PetscInt k = 0; k < e->p; k++) {
      const double h_prime = o->power == 2.0 ? theta[k] : copysign(pow(fabs(theta[k]), o->power - 1.0), theta[k]);
      const double g = e->grad_sum[k] + o->gamma * h_prime;
      const double s = o->sigma_diag ? o->sigma_diag[k] : o->sigma;
      theta[k] += -o->eta * g + sq * s * e->noise[k];
    }
    PetscCall(RnEventEnd(RN_EV_OPTIMIZER));
  }
  state[2] = j;
  PetscFunctionReturn(0);
}

PetscErrorCode RnEnsembleMemberRecord(RnEnsemble e, double *state, double *risk)
{
  const int member = (int)state[0], N = (int)state[1];

  PetscFunctionBeginUser;
  PetscCall(Risk(e, N, StateTheta(state), risk));
  PetscCheck(isfinite(*risk), e->comm, RN_ERR_NONFINITE, "ensemble: the risk of member %d at depth %d is %g at step %d; lower sgd.eta or raise the cap", member, N, *risk, (int)state[2]);
  PetscFunctionReturn(0);
}

int RnEnsembleRecordStep(const RnEnsembleOptions *opt, int record) { return PetscMin(record * opt->record_every, opt->steps); }

PetscErrorCode RnEnsembleRunMember(RnEnsemble e, int member, int N, double *risk, double *theta_rec)
{
  double *state;

  PetscFunctionBeginUser;
  PetscCall(PetscMalloc1(RnEnsembleMemberStateLength(e), &state));
  PetscCall(RnEnsembleMemberBegin(e, member, N, state));
  for (int rec = 0; rec < e->nrec; rec++) {
    PetscCall(RnEnsembleMemberAdvance(e, state, RnEnsembleRecordStep(e->opt, rec) - (int)state[2]));
    PetscCall(RnEnsembleMemberRecord(e, state, &risk[rec]));
    PetscCall(PetscArraycpy(theta_rec + (size_t)rec * e->p, StateTheta(state), e->p));
  }
  PetscCall(PetscFree(state));
  PetscFunctionReturn(0);
}

PetscErrorCode RnEnsembleDestroy(RnEnsemble *e)
{
  PetscFunctionBeginUser;
  if (!e || !*e) PetscFunctionReturn(0);
  PetscCall(PetscFree4((*e)->capped, (*e)->grad, (*e)->grad_sum, (*e)->noise));
  if ((*e)->field) PetscCall(PetscFree5((*e)->xb, (*e)->yb, (*e)->xT, (*e)->dxT, (*e)->idx));
  PetscCall(RnFlowDestroy(&(*e)->flow));
  if ((*e)->problem.destroy) PetscCall((*e)->problem.destroy((*e)->problem.ctx));
  PetscCall(PetscFree(*e));
  *e = NULL;
  PetscFunctionReturn(0);
}
