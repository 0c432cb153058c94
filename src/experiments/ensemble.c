/* ensemble.c: the deep-limit study. M SGD realisations (members) for
 * each depth N of a list and for the ODE limit, coupled through the RNG; the
 * weak and strong errors in theta and the weak error in the risk against the
 * limit, their fitted rates in N, and the laws of theta at the final time
 * (covariance spectra and Gaussian Wasserstein-2 distances, with ScaLAPACK,
 * or from M x M products above p = 2048). The model is a field on regression
 * data (model.field) or, with data.kind = "cifar", the CIFAR network on CIFAR
 * images (experiments/cifar.h: the same SGD process and coupling).
 *
 * Work units (depth, member) are handed out in rounds, one per group; after a
 * round the group leaders send their records to rank 0, which appends them
 * to records.csv and the snapshots. The trainer counts SGD steps within the
 * rounds, so checkpoints fall within a member's run (its state is per-group
 * checkpoint state). */
#include "resnode/core/trainer.h"
#include "resnode/ensemble/ensemble.h"
#include "resnode/core/run.h"
#include "resnode/ensemble/stats.h"
#include "resnode/experiments/cifar.h"

#include <math.h>
#include <string.h>

/* How the laws' statistics are formed: the p x p covariance (ScaLAPACK), or
 * M x M products of the member matrices split by columns over the ranks. */
typedef enum { STATS_AUTO, STATS_COVARIANCE, STATS_GRAM } StatsPath;
static const char *const rn_stats_paths[] = {"auto", "covariance", "gram", NULL};
#define STATS_GRAM_ABOVE 2048 /* auto: the Gram path for p above this */

typedef struct {
  RnEnsembleOptions ens;
  /* data.kind = "cifar": the CIFAR network on the first data.max_train training images */
  char cifar_dir[PETSC_MAX_PATH_LEN];
  int cifar_images;
  RnCifarEnsembleOptions cifar;
  StatsPath stats;
  int groups;
  RnCheckpointOptions checkpoint;
  PetscBool plot;
  RnConfig cfg;
} EnsembleExpOptions;

static PetscErrorCode EnsembleReadOptions(RnCtx ctx, RnConfig cfg, void **options)
{
  EnsembleExpOptions *o;
  RnShape in;
  RnNet probe;

  PetscFunctionBeginUser;
  PetscCall(PetscNew(&o));
  PetscCall(RnEnsembleOptionsFromConfig(cfg, &o->ens));
  PetscCall(RnConfigGetInt(cfg, "parallel.groups", ctx->world_size, 1, 1 << 20, &o->groups));
  if (ctx->world_size % o->groups)
    PetscCall(RnConfigError(cfg, "parallel.groups", "%d groups do not divide the %d MPI ranks; use a divisor of the rank count, or run with a multiple of %d ranks", o->groups,
                            ctx->world_size, o->groups));
  if (o->ens.classification) {
    int prec;
    RnCifarModel cprobe;
    PetscCall(RnConfigGetPath(cfg, "data.dir", RN_REQUIRED, 2, o->cifar_dir, sizeof o->cifar_dir));
    PetscCall(RnConfigGetInt(cfg, "data.max_train", 2000, 1, 50000, &o->cifar_images));
    PetscCall(RnConfigGetInt(cfg, "model.channels", 8, 1, 4096, &o->cifar.channels));
    PetscCall(RnConfigGetChoice(cfg, "model.precision", "float32", RnPrecisionNames, &prec));
    o->cifar.precision = (RnPrecision)prec;
    PetscCall(RnConfigGetChoice(cfg, "model.convolution", "auto", RnConvAlgorithmNames, &prec));
    o->cifar.convolution = (RnConvAlgorithm)prec;
    PetscCall(RnConfigGetInt(cfg, "sgd.eval_batch", 500, 1, 1000000, &o->cifar.eval_batch));
    if (o->ens.batch == 0) PetscCall(RnConfigError(cfg, "sgd.batch", "full-batch SGD over CIFAR images is not offered; give a mini-batch size"));
    o->cifar.batch = o->ens.batch, o->cifar.ode = o->ens.ode;
    if (RnConfigHas(cfg, "model.field")) PetscCall(RnConfigError(cfg, "model.field", "not used with data.kind = \"cifar\": the network is the CIFAR one (model.channels, model.precision)"));
    PetscCall(RnCifarModelCreate(PETSC_COMM_SELF, o->cifar.channels, RN_FLOW_RESNET, 1, NULL, RN_PRECISION_FLOAT64, &cprobe));
    if (o->ens.sigma_diag && o->ens.nsigma_diag != cprobe.n)
      PetscCall(RnConfigError(cfg, "sgd.sigma_diag", "has %d entries; the network has %d parameters (one each)", o->ens.nsigma_diag, (int)cprobe.n));
    PetscCall(RnCifarModelDestroy(&cprobe));
  } else {
    if (!RnConfigHas(cfg, "model.field")) {
      char set[512];
      PetscCall(PetscSNPrintf(set, sizeof set, "model.field=( { type = \"dense\"; out = 16; activation = \"tanh\"; }, { type = \"dense\"; out = %d; } )", o->ens.dim));
      PetscCall(RnConfigSet(cfg, set));
    }
    in.c = o->ens.dim, in.h = 1, in.w = 1;
    PetscCall(RnNetCreateFromConfig(cfg, "model.field", PETSC_COMM_SELF, in, &probe));
    if (RnShapeSize(probe->out) != o->ens.dim) PetscCall(RnConfigError(cfg, "model.field", "the field must map R^%d to R^%d; it ends with %d outputs", o->ens.dim, o->ens.dim, (int)RnShapeSize(probe->out)));
    if (o->ens.sigma_diag && o->ens.nsigma_diag != probe->nparams)
      PetscCall(RnConfigError(cfg, "sgd.sigma_diag", "has %d entries; the model has %d parameters (one each)", o->ens.nsigma_diag, (int)probe->nparams));
    PetscCall(RnNetDestroy(&probe));
  }
  if (!o->ens.limit && o->ens.ndepths < 2) PetscCall(RnConfigError(cfg, "ensemble.depths", "without the limit (ensemble.limit = false) the deepest N is the reference: give at least two depths"));
  PetscCall(RnCheckpointOptionsFromConfig(cfg, &o->checkpoint));
  PetscCall(RnConfigGetBool(cfg, "output.plot", PETSC_TRUE, &o->plot));
  {
    int path;
    PetscCall(RnConfigGetChoice(cfg, "ensemble.stats", "auto", rn_stats_paths, &path));
    o->stats = (StatsPath)path;
  }
  o->cfg = cfg;
  *options = o;
  PetscFunctionReturn(0);
}

static int EnsembleGroupCount(RnCtx ctx, const void *options) { return ((const EnsembleExpOptions *)options)->groups; }

/* Least-squares slope of log e against log N: e ~ c N^-alpha. */
static void FitRate(int n, const double *N, const double *e, double *alpha, double *logc)
{
  double sx = 0, sy = 0, sxx = 0, sxy = 0;
  int k = 0;
  for (int i = 0; i < n; i++) {
    if (!(e[i] > 0)) continue;
    double x = log(N[i]), y = log(e[i]);
    sx += x, sy += y, sxx += x * x, sxy += x * y, k++;
  }
  if (k < 2) {
    *alpha = NAN, *logc = NAN;
    return;
  }
  double slope = (k * sxy - sx * sy) / (k * sxx - sx * sx);
  *alpha = -slope;
  *logc = (sy - slope * sx) / k;
}

typedef struct {
  int M, D, nrec;
  PetscInt p;
  int ndepths, ref; /* ref: the depth index compared against (the limit, or the deepest N) */
  double *risk;     /* [D][M][nrec] */
  double *theta;    /* [D][M][nrec][p] */
} Results;

static inline double *RiskAt(Results *r, int di, int m) { return r->risk + ((size_t)di * r->M + m) * r->nrec; }
static inline double *ThetaAt(Results *r, int di, int m, int i) { return r->theta + (((size_t)di * r->M + m) * r->nrec + i) * r->p; }

/* Errors against the reference for every depth and record (collective;
 * only rank 0's rows reach the files). */
static PetscErrorCode WriteStatistics(RnCtx ctx, RnRunDir rd, const EnsembleExpOptions *o, Results *r)
{
  RnMetrics stats_csv, sup_csv, rates_csv;
  double *diff, *mean, Ns[64], sup_e[64], sup_s[64], sup_r[64];
  const int M = r->M;
  int nfit = 0;

  PetscFunctionBeginUser;
  PetscCall(RnMetricsOpen(rd, "stats.csv", "N,step,time,e_theta,e_theta_se,s_theta,s_theta_se,e_R,e_R_se", &stats_csv));
  PetscCall(RnMetricsOpen(rd, "sup.csv", "N,e_theta,s_theta,e_R", &sup_csv));
  PetscCall(PetscMalloc2(r->p, &diff, r->p, &mean));
  for (int di = 0; di < r->ndepths; di++) {
    if (di == r->ref) continue;
    double se_max = 0, ss_max = 0, er_max = 0;
    for (int i = 0; i < r->nrec; i++) {
      const int step = PetscMin(i * o->ens.record_every, o->ens.steps);
      double e_theta, tr = 0, s = 0, s2 = 0, dr = 0, dr2 = 0;
      PetscCall(PetscArrayzero(mean, r->p));
      for (int m = 0; m < M; m++) {
        const double *a = ThetaAt(r, r->ref, m, i), *b = ThetaAt(r, di, m, i);
        double nrm = 0, d;
        for (PetscInt k = 0; k < r->p; k++) {
          diff[k] = a[k] - b[k];
          mean[k] += diff[k] / M;
          nrm += diff[k] * diff[k];
        }
        nrm = sqrt(nrm);
        s += nrm / M, s2 += nrm * nrm / M;
        d = RiskAt(r, r->ref, m)[i] - RiskAt(r, di, m)[i];
        dr += d / M, dr2 += d * d / M;
      }
      e_theta = 0;
      for (PetscInt k = 0; k < r->p; k++) e_theta += mean[k] * mean[k];
      e_theta = sqrt(e_theta);
      /* standard error of the mean vector's norm: sqrt(trace(cov) / M) */
      for (int m = 0; m < M; m++) {
        const double *a = ThetaAt(r, r->ref, m, i), *b = ThetaAt(r, di, m, i);
        for (PetscInt k = 0; k < r->p; k++) {
          double c = (a[k] - b[k]) - mean[k];
          tr += c * c / PetscMax(M - 1, 1);
        }
      }
      PetscCall(RnMetricsRow(stats_csv, "%d,%d,%.10g,%.10e,%.4e,%.10e,%.4e,%.10e,%.4e", o->ens.depths[di], step, step * o->ens.eta, e_theta, sqrt(tr / M), s,
                             sqrt(PetscMax(s2 - s * s, 0) / PetscMax(M - 1, 1)), fabs(dr), sqrt(PetscMax(dr2 - dr * dr, 0) / PetscMax(M - 1, 1))));
      se_max = PetscMax(se_max, e_theta), ss_max = PetscMax(ss_max, s), er_max = PetscMax(er_max, fabs(dr));
    }
    PetscCall(RnMetricsRow(sup_csv, "%d,%.10e,%.10e,%.10e", o->ens.depths[di], se_max, ss_max, er_max));
    Ns[nfit] = o->ens.depths[di], sup_e[nfit] = se_max, sup_s[nfit] = ss_max, sup_r[nfit] = er_max;
    nfit++;
  }
  PetscCall(RnMetricsClose(&stats_csv));
  PetscCall(RnMetricsClose(&sup_csv));
  PetscCall(RnMetricsOpen(rd, "rates.csv", "quantity,alpha,log_c,depths", &rates_csv));
  {
    const char *names[3] = {"e_theta", "s_theta", "e_R"};
    double *vals[3] = {sup_e, sup_s, sup_r};
    for (int q = 0; q < 3; q++) {
      double alpha, logc;
      FitRate(nfit, Ns, vals[q], &alpha, &logc);
      PetscCall(RnMetricsRow(rates_csv, "%s,%.6f,%.6f,%d", names[q], alpha, logc, nfit));
      PetscCall(RnLog(ctx, "ensemble: %-8s ~ c N^-alpha with alpha = %.3f (fit over %d depths; confidence intervals: analysis/convergence)\n", names[q], alpha, nfit));
    }
  }
  PetscCall(RnMetricsClose(&rates_csv));
  PetscCall(PetscFree2(diff, mean));
  PetscFunctionReturn(0);
}

/* Member m's row of theta at the last record, for depth di: this rank's columns (from rank 0). */
static PetscErrorCode ScatterColumns(RnCtx ctx, Results *r, int di, const RnStatsLayout *L, const int *counts, const int *displs, double *local)
{
  PetscFunctionBeginUser;
  for (int m = 0; m < r->M; m++)
    PetscCallMPI(MPI_Scatterv(ctx->world_rank == 0 ? ThetaAt(r, di, m, r->nrec - 1) : NULL, counts, displs, MPI_DOUBLE, local + (size_t)m * L->nlocal, (int)L->nlocal, MPI_DOUBLE, 0,
                              ctx->world));
  PetscFunctionReturn(0);
}

/* The laws by the Gram path: the member matrices split by columns over the
 * ranks, M x M products only (stats.h), M eigenvalues per depth. */
static PetscErrorCode WriteLawsGram(RnCtx ctx, const EnsembleExpOptions *o, Results *r, RnMetrics laws_csv, RnMetrics spec_csv)
{
  RnStatsLayout L;
  PetscInt off;
  int *counts, *displs;
  double *a, *b, *mean, *eig;
  const int M = r->M;

  PetscFunctionBeginUser;
  RnStatsLayoutColumns(ctx->world, M, r->p, &L, &off);
  PetscCall(PetscMalloc2(ctx->world_size, &counts, ctx->world_size, &displs));
  for (int q = 0; q < ctx->world_size; q++) {
    displs[q] = (int)((long long)r->p * q / ctx->world_size);
    counts[q] = (int)((long long)r->p * (q + 1) / ctx->world_size) - displs[q];
  }
  PetscCall(PetscMalloc4((size_t)M * PetscMax(L.nlocal, 1), &a, (size_t)M * PetscMax(L.nlocal, 1), &b, PetscMax(L.nlocal, 1), &mean, M, &eig));
  PetscCall(ScatterColumns(ctx, r, r->ref, &L, counts, displs, b));
  for (int di = 0; di < r->D; di++) {
    const int N = di < r->ndepths ? o->ens.depths[di] : 0;
    PetscCall(ScatterColumns(ctx, r, di, &L, counts, displs, a));
    PetscCall(RnStatsSpectrumGram(&L, a, mean, eig));
    for (int k = 0; k < M; k++) PetscCall(RnMetricsRow(spec_csv, "%d,%d,%.10e", N, k, eig[k]));
    if (di != r->ref) {
      RnGaussianW2 w;
      PetscCall(RnStatsGaussianW2Gram(&L, a, b, &w));
      PetscCall(RnMetricsRow(laws_csv, "%d,%.10e,%.10e,%.10e,%.10e", N, w.mean_sq_dist, w.trace1, w.trace2, w.w2));
    }
  }
  PetscCall(PetscFree4(a, b, mean, eig));
  PetscCall(PetscFree2(counts, displs));
  PetscFunctionReturn(0);
}

/* Laws of theta at the final time: spectra and Gaussian W2 (collective). */
static PetscErrorCode WriteLaws(RnCtx ctx, RnRunDir rd, const EnsembleExpOptions *o, Results *r)
{
  RnMetrics laws_csv, spec_csv;
  double *a = NULL, *b = NULL, *mean, *eig;
  const int M = r->M, last = r->nrec - 1;

  PetscFunctionBeginUser;
  PetscCall(RnMetricsOpen(rd, "laws.csv", "N,mean_dist_sq,trace_N,trace_ref,w2", &laws_csv));
  PetscCall(RnMetricsOpen(rd, "spectrum.csv", "N,index,eigenvalue", &spec_csv));
  if (o->stats == STATS_GRAM || (o->stats == STATS_AUTO && r->p > STATS_GRAM_ABOVE)) {
    PetscCall(WriteLawsGram(ctx, o, r, laws_csv, spec_csv));
    PetscCall(RnMetricsClose(&laws_csv));
    PetscCall(RnMetricsClose(&spec_csv));
    PetscFunctionReturn(0);
  }
  PetscCall(PetscMalloc2(r->p, &mean, r->p, &eig));
  if (ctx->world_rank == 0) PetscCall(PetscMalloc2((size_t)M * r->p, &a, (size_t)M * r->p, &b));
  for (int di = 0; di < r->D; di++) {
    const int N = di < r->ndepths ? o->ens.depths[di] : 0;
    if (ctx->world_rank == 0)
      for (int m = 0; m < M; m++) {
        PetscCall(PetscArraycpy(a + (size_t)m * r->p, ThetaAt(r, di, m, last), r->p));
        PetscCall(PetscArraycpy(b + (size_t)m * r->p, ThetaAt(r, r->ref, m, last), r->p));
      }
    PetscCall(RnStatsCovarianceSpectrum(ctx->world, M, (int)r->p, a, mean, eig));
    for (PetscInt k = 0; k < r->p; k++) PetscCall(RnMetricsRow(spec_csv, "%d,%d,%.10e", N, (int)k, eig[k]));
    if (di != r->ref) {
      RnGaussianW2 w;
      PetscCall(RnStatsGaussianW2(ctx->world, M, (int)r->p, a, b, &w));
      PetscCall(RnMetricsRow(laws_csv, "%d,%.10e,%.10e,%.10e,%.10e", N, w.mean_sq_dist, w.trace1, w.trace2, w.w2));
    }
  }
  PetscCall(PetscFree2(mean, eig));
  if (ctx->world_rank == 0) PetscCall(PetscFree2(a, b));
  PetscCall(RnMetricsClose(&laws_csv));
  PetscCall(RnMetricsClose(&spec_csv));
  PetscFunctionReturn(0);
}

/* After a round: the group leaders' members go to rank 0, which keeps their
 * records and appends them to records.csv and the snapshots. */
static PetscErrorCode CollectRound(RnCtx ctx, RnRunDir rd, const RnEnsembleOptions *eo, RnEnsemble ens, const double *send, double *recv, size_t unit_len, Results *r,
                                   RnMetrics records_csv)
{
  PetscFunctionBeginUser;
  if (ctx->leaders != MPI_COMM_NULL) PetscCallMPI(MPI_Gather(send, (int)unit_len, MPI_DOUBLE, recv, (int)unit_len, MPI_DOUBLE, 0, ctx->leaders));
  if (ctx->world_rank != 0) PetscFunctionReturn(0);
  for (int g = 0; g < ctx->group_count; g++) {
    const double *u = recv + (size_t)g * unit_len;
    if (u[0] < 0) continue;
    const int un = (int)u[0], di = un / r->M, m = un % r->M, N = di < eo->ndepths ? eo->depths[di] : 0;
    char path[PETSC_MAX_PATH_LEN + 64];
    const int id = eo->first_member + m;
    RnSnapshotInfo info = {id, N, eo->record_every, eo->record_every * eo->eta};
    PetscCall(PetscArraycpy(RiskAt(r, di, m), RnEnsembleMemberRisk(ens, u + 1), r->nrec));
    PetscCall(PetscArraycpy(ThetaAt(r, di, m, 0), RnEnsembleMemberRecords(ens, u + 1), (size_t)r->nrec * r->p));
    for (int i = 0; i < r->nrec; i++) {
      const int step = PetscMin(i * eo->record_every, eo->steps);
      double nrm = 0;
      for (PetscInt k = 0; k < r->p; k++) nrm += ThetaAt(r, di, m, i)[k] * ThetaAt(r, di, m, i)[k];
      PetscCall(RnMetricsRow(records_csv, "%d,%d,%d,%.10g,%.12e,%.12e", id, N, step, step * eo->eta, RiskAt(r, di, m)[i], sqrt(nrm)));
    }
    /* the trajectory of theta: nrec x p values, one record every record_every steps */
    PetscCall(PetscSNPrintf(path, sizeof path, "%s/snapshots/theta-N%d-m%d.bin", rd->path, N, id));
    PetscCall(RnSnapshotWrite(path, &info, (PetscInt)r->nrec * r->p, ThetaAt(r, di, m, 0)));
  }
  PetscFunctionReturn(0);
}

static PetscErrorCode EnsembleRun(RnCtx ctx, RnRunDir rd, void *options)
{
  EnsembleExpOptions *o = options;
  const RnEnsembleOptions *eo = &o->ens;
  RnShape in = {eo->dim, 1, 1};
  RnNet field = NULL;
  RnDataset images = NULL;
  RnEnsemble ens;
  RnMetrics records_csv;
  RnTrainer tr;
  Results r = {0};
  double *send, *recv = NULL, start = RnWallTime();
  int nunits, rounds, round, first_step;
  const int S = eo->steps;
  long long resumed;
  size_t unit_len;

  PetscFunctionBeginUser;
  if (eo->classification) {
    RnEnsembleProblem problem;
    PetscInt p;
    PetscCall(RnCifarLoad(ctx->world, o->cifar_dir, PETSC_TRUE, o->cifar_images, &images));
    PetscCall(RnCifarEnsembleProblemCreate(ctx->group, ctx->seed, images, &o->cifar, &problem, &p));
    PetscCall(RnEnsembleCreateWithProblem(ctx->group, ctx->seed, p, eo, &problem, &ens));
    PetscCall(RnLog(ctx, "ensemble: the CIFAR network (width C = %d, %s, batch norm at its initial statistics) on %d training images of %s\n", o->cifar.channels,
                    RnPrecisionNames[o->cifar.precision], images->n, o->cifar_dir));
  } else {
    PetscCall(RnNetCreateFromConfig(o->cfg, "model.field", ctx->group, in, &field));
    PetscCall(RnEnsembleCreate(ctx->group, ctx->seed, field, eo, &ens));
  }
  r.M = eo->members;
  r.ndepths = eo->ndepths;
  r.D = eo->ndepths + (eo->limit ? 1 : 0);
  r.ref = eo->limit ? eo->ndepths : eo->ndepths - 1;
  r.nrec = RnEnsembleRecordCount(ens);
  r.p = RnEnsembleParamCount(ens);
  nunits = r.D * r.M;
  rounds = (nunits + ctx->group_count - 1) / ctx->group_count;
  PetscCall(RnLog(ctx, "ensemble: %d members x %d depths%s, %d parameters, %d SGD steps (eta %g, sigma %g, batch %d), %d groups of %d rank(s), %d rounds\n", r.M, eo->ndepths,
                  eo->limit ? " + the ODE limit" : "", (int)r.p, eo->steps, eo->eta, eo->sigma, eo->batch, ctx->group_count, ctx->group_size, rounds));
  /* what a group leader sends after its member: the unit (-1: none), then the member's state */
  unit_len = 1 + RnEnsembleMemberStateLength(ens);
  PetscCall(PetscMalloc1(unit_len, &send));
  send[0] = -1;
  if (ctx->world_rank == 0) PetscCall(PetscMalloc1(unit_len * ctx->group_count, &recv));
  /* rank 0 holds the results; the other ranks keep room for a checkpoint's broadcast */
  PetscCall(PetscCalloc2((size_t)nunits * r.nrec, &r.risk, (size_t)nunits * r.nrec * r.p, &r.theta));
  /* a trainer step is one SGD step of every group's member: rounds x sgd.steps
   * in all, so a checkpoint (and a signal) can fall within a member's run */
  PetscCall(RnTrainerCreate(ctx, rd, &o->checkpoint, "ensemble", &tr));
  PetscCall(RnTrainerAddState(tr, "risk", r.risk, sizeof(double) * nunits * r.nrec, 0));
  PetscCall(RnTrainerAddState(tr, "theta", r.theta, sizeof(double) * nunits * r.nrec * r.p, 0));
  PetscCall(RnTrainerAddGroupState(tr, "member", send, sizeof(double) * unit_len));
  PetscCall(RnTrainerOpenMetrics(tr, "records.csv", "member,N,step,time,risk,theta_norm", &records_csv));
  PetscCall(RnTrainerStart(tr, (long long)rounds * S, &resumed));
  round = (int)(resumed / S), first_step = (int)(resumed % S);

  for (; round < rounds; round++, first_step = 0) {
    const int unit = round * ctx->group_count + ctx->group_id;
    if (first_step == 0) { /* else the checkpoint restored the member's state */
      send[0] = -1;
      if (unit < nunits) {
        const int di = unit / r.M, m = unit % r.M;
        send[0] = unit;
        PetscCall(RnEnsembleMemberBegin(ens, eo->first_member + m, di < eo->ndepths ? eo->depths[di] : 0, send + 1));
      }
    }
    for (int j = first_step; j < S; j++) {
      PetscBool finished = PETSC_FALSE;
      if (send[0] >= 0) PetscCall(RnEnsembleMemberAdvance(ens, send + 1, 1, &finished));
      if (j == S - 1) PetscCall(CollectRound(ctx, rd, eo, ens, send, recv, unit_len, &r, records_csv));
      if (j % PetscMax(1, S / 10) == 0 || j == S - 1) {
        const double elapsed = RnWallTime() - start;
        const int di = PetscMin(round * ctx->group_count / r.M, r.D - 1);
        PetscCall(RnProgress(ctx, "round %d/%d  depth %s%d  SGD step %d/%d  %.1f s  ETA %.0f s", round + 1, rounds, di < eo->ndepths ? "N=" : "ODE ", di < eo->ndepths ? eo->depths[di] : 0,
                             j + 1, S, elapsed, RnTrainerETA(tr, (long long)round * S + j + 1)));
      }
      PetscCall(RnTrainerStepDone(tr, (long long)round * S + j + 1, PETSC_FALSE, "SGD step %d of %d in round %d of %d", j + 1, S, round + 1, rounds));
    }
  }
  PetscCall(RnTrainerFinish(tr));
  PetscCall(RnTrainerDestroy(&tr));
  PetscCall(RnMetricsClose(&records_csv));
  /* collective (the metrics files are opened by all ranks); the results
   * live on rank 0, the other ranks' copies are zeros nobody writes */
  PetscCall(WriteStatistics(ctx, rd, o, &r));
  PetscCall(WriteLaws(ctx, rd, o, &r));
  PetscCall(RnLog(ctx, "ensemble: %d units in %.1f s\n", nunits, RnWallTime() - start));
  if (o->plot) PetscCall(RnRunPlotScript(ctx, rd, "convergence"));

  PetscCall(PetscFree2(r.risk, r.theta));
  PetscCall(PetscFree(send));
  PetscCall(PetscFree(recv));
  PetscCall(RnEnsembleDestroy(&ens));
  PetscCall(RnNetDestroy(&field));
  PetscCall(RnDatasetDestroy(&images));
  PetscCall(RnEnsembleOptionsDestroy(&o->ens));
  PetscFunctionReturn(0);
}

const RnExperiment RnExperimentEnsemble = {"ensemble", "SGD ensembles for a list of depths N and the ODE limit; convergence rates in N", EnsembleReadOptions, EnsembleGroupCount, EnsembleRun};
