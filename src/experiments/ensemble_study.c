/* ensemble.c: the deep-limit study. M SGD realisations (members) for
 * each depth N of a list and for the ODE limit, coupled through the RNG; the
 * weak and strong errors in theta and the weak error in the risk against the
 * limit, their fitted rates in N, and the laws of theta at the final time
 * (covariance spectra and Gaussian Wasserstein-2 distances, with ScaLAPACK,
 * or from M x M products above p = 2048). The model is a field on regression
 * data (model.field) or, with data.kind = "cifar", the CIFAR network on CIFAR
 * images (experiments/cifar.h: the same SGD process and coupling).
 *
 * Work units (depth, member) are spread over the groups, a few members with
 * all their depths each, and advanced together one record interval at a
 * time. When every unit reaches a record, its statistics are computed at
 * once and the record is dropped: each depth's member matrix is exchanged
 * by columns (a rank holds M x p / ranks of it, never M x p), the errors
 * come from the M x M Gram matrix of the differences, and the parameters
 * reach snapshots/ only as ensemble.save_parameters asks (MPI-IO, each group
 * writing its own rows). With output.arrays = "hdf5" (the default) the Gram
 * matrices go to gram.h5 and the parameters to params.h5 (core/arrays.h).
 * A group's units are its checkpoint state; the trainer counts SGD steps of
 * units, so a checkpoint can fall anywhere. */
#include "resnode/core/arrays.h"
#include "resnode/core/checksum.h"
#include "resnode/core/profile.h"
#include "resnode/core/trainer.h"
#include "resnode/core/units.h"
#include "resnode/ensemble/ensemble.h"
#include "resnode/experiments/experiments.h"
#include "resnode/ensemble/stats.h"
#include "resnode/models/cifar.h"

#include <errno.h>
#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <string.h>
#include <sys/resource.h>

/* How the laws' statistics are formed: the p x p covariance (ScaLAPACK), or
 * M x M products of the member matrices split by columns over the ranks. */
typedef enum { STATS_AUTO, STATS_COVARIANCE, STATS_GRAM } StatsPath;
/* ensemble.save_parameters: which records' parameter vectors reach snapshots/ */
typedef enum { SAVE_NONE, SAVE_FINAL, SAVE_EVERY } SaveParameters;
static const char *const rn_save_names[] = {"none", "final", "every", NULL};
static const char *const rn_stats_paths[] = {"auto", "covariance", "gram", NULL};
/* output.arrays: where the Gram matrices and parameters go */
typedef enum { ARRAYS_CSV, ARRAYS_HDF5 } ArraysFormat;
static const char *const rn_arrays_names[] = {"csv", "hdf5", NULL};
#define STATS_GRAM_ABOVE 2048 /* auto: the Gram path for p above this */

typedef struct {
  RnEnsembleOptions ens;
  /* data.kind = "cifar": the CIFAR network on the first data.max_train training images */
  char cifar_dir[PETSC_MAX_PATH_LEN];
  int cifar_images;
  RnCifarEnsembleOptions cifar;
  StatsPath stats;
  SaveParameters save;
  ArraysFormat arrays;
  RnArrayType save_type; /* params.h5's values */
  PetscBool limit_check;
  int groups;
  RnCheckpointOptions checkpoint;
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
  if (o->ens.classification) {
    int prec;
    RnCifarModel cprobe;
    PetscCall(RnConfigGetPath(cfg, "data.dir", RN_REQUIRED, 2, o->cifar_dir, sizeof o->cifar_dir));
    PetscCall(RnConfigGetInt(cfg, "data.max_train", 2000, 1, 50000, &o->cifar_images));
    PetscCall(RnConfigGetInt(cfg, "model.channels", 8, 1, 4096, &o->cifar.channels));
    PetscCall(RnCifarActivationFromConfig(cfg, &o->cifar.activation));
    PetscCall(RnConfigGetChoice(cfg, "model.precision", "float32", RnPrecisionNames, &prec));
    o->cifar.precision = (RnPrecision)prec;
    PetscCall(RnCheckPrecision(cfg, o->cifar.precision));
    PetscCall(RnConfigGetChoice(cfg, "model.convolution", "auto", RnConvAlgorithmNames, &prec));
    o->cifar.convolution = (RnConvAlgorithm)prec;
    PetscCall(RnConfigGetInt(cfg, "sgd.eval_batch", 500, 1, 1000000, &o->cifar.eval_batch));
    if (o->ens.batch == 0) PetscCall(RnConfigError(cfg, "sgd.batch", "full-batch SGD over CIFAR images is not offered; give a mini-batch size"));
    o->cifar.batch = o->ens.batch, o->cifar.ode = o->ens.ode;
    if (RnConfigHas(cfg, "model.field")) PetscCall(RnConfigError(cfg, "model.field", "not used with data.kind = \"cifar\": the network is the CIFAR one (model.channels, model.precision)"));
    PetscCall(RnCifarModelCreate(PETSC_COMM_SELF, o->cifar.channels, o->cifar.activation, RN_FLOW_RESNET, 1, NULL, RN_PRECISION_FLOAT64, &cprobe));
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
  {
    int path;
    PetscCall(RnConfigGetChoice(cfg, "ensemble.stats", "auto", rn_stats_paths, &path));
    o->stats = (StatsPath)path;
    PetscCall(RnConfigGetChoice(cfg, "ensemble.save_parameters", "final", rn_save_names, &path));
    o->save = (SaveParameters)path;
    PetscCall(RnConfigGetChoice(cfg, "output.arrays", "hdf5", rn_arrays_names, &path));
    o->arrays = (ArraysFormat)path;
    PetscCall(RnConfigGetChoice(cfg, "ensemble.save_precision", "float64", RnArrayTypeNames, &path));
    o->save_type = (RnArrayType)path;
    if (o->save_type != RN_ARRAY_FLOAT64 && o->arrays != ARRAYS_HDF5)
      PetscCall(RnConfigError(cfg, "ensemble.save_precision", "\"%s\" needs output.arrays = \"hdf5\" (the snapshots of output.arrays = \"csv\" hold float64)", RnArrayTypeNames[o->save_type]));
    PetscCall(RnConfigGetBool(cfg, "ensemble.limit_check", PETSC_TRUE, &o->limit_check));
  }
  /* after every other key is read: an error here first looks for typos
   * among the keys, and one not read yet would look like one */
  PetscCall(RnGroupsFromConfig(ctx, cfg, ctx->world_size, PETSC_FALSE, PETSC_FALSE, &o->groups));
  o->cfg = cfg;
  /* every file on every node, after the keys and before the run directory is made */
  if (o->ens.classification && !RnConfigDescribing(cfg)) PetscCall(RnCifarCheck(ctx->world, o->cifar_dir, PETSC_TRUE));
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

/* ---- the schedule: units over the groups, advanced a record interval at a time ---- */

/* Unit u = m * D + di (member-major: a group holds every depth of a few
 * members, so the depths' unequal costs are shared evenly); group g owns the
 * units [g U, (g + 1) U). Within a record interval a group advances its
 * units depth by depth (the model of a depth is built once an interval). */
typedef struct {
  int M, ndepths, D, ref, nrec, S;
  PetscInt p;
  int units, U;
  int groups, group_size, group_id, group_rank;
  int *order;       /* this group's slots in the order they advance: by depth, then member */
  size_t slot_len;  /* a slot: the risk at the last record, then the member's state */
} Schedule;

static inline int DepthN(const RnEnsembleOptions *eo, int di) { return di < eo->ndepths ? eo->depths[di] : 0; }
static inline double *SlotRisk(const Schedule *s, double *slots, int k) { return slots + (size_t)k * s->slot_len; }
static inline double *SlotState(const Schedule *s, double *slots, int k) { return slots + (size_t)k * s->slot_len + 1; }

/* The members [*lo, *hi) whose depth-di units group g holds. */
static void GroupMembersAtDepth(const Schedule *s, int g, int di, int *lo, int *hi)
{
  const long long first = (long long)g * s->U, end = first + s->U;
  *lo = (int)PetscMin((first - di + s->D - 1) / s->D, (long long)s->M);
  *hi = (int)PetscMin((end - di + s->D - 1) / s->D, (long long)s->M);
}

static PetscErrorCode ScheduleSetUp(RnCtx ctx, const RnEnsembleOptions *eo, RnEnsemble ens, Schedule *s)
{
  int n = 0;

  PetscFunctionBeginUser;
  s->M = eo->members, s->ndepths = eo->ndepths, s->D = eo->ndepths + (eo->limit ? 1 : 0);
  s->ref = s->D - 1; /* the limit, or the deepest N */
  s->nrec = RnEnsembleRecordCount(ens), s->S = eo->steps, s->p = RnEnsembleParamCount(ens);
  s->units = s->D * s->M, s->groups = ctx->group_count, s->U = (s->units + s->groups - 1) / s->groups;
  s->group_size = ctx->group_size, s->group_id = ctx->group_id, s->group_rank = ctx->group_rank;
  s->slot_len = 1 + RnEnsembleMemberStateLength(ens);
  /* a rank receives its block of a record's member matrix in one MPI count */
  PetscCheck((double)s->M * (double)((s->p + ctx->world_size - 1) / ctx->world_size) < 2147483647.0, ctx->world, RN_ERR_INPUT,
             "ensemble.members x parameters / ranks = %d x %d / %d exceeds 2^31 values, the most one MPI transfer of a rank's block of a record can carry; use more ranks, or fewer members per run (an array job, ensemble.first_member)",
             s->M, (int)s->p, ctx->world_size);
  PetscCall(PetscMalloc1(s->U, &s->order));
  for (int di = 0; di < s->D; di++)
    for (int k = 0; k < s->U; k++) {
      const int u = s->group_id * s->U + k;
      if (u < s->units && u % s->D == di) s->order[n++] = k;
    }
  for (int k = 0; k < s->U; k++)
    if (s->group_id * s->U + k >= s->units) s->order[n++] = k; /* idle slots keep the groups in step */
  PetscFunctionReturn(0);
}

/* Depth di's member matrix redistributed by columns: rank q gets columns
 * [col[q], col[q + 1]) of every member's theta, an M x (col[q + 1] - col[q])
 * row-major block. Rank r of a group sends its group's members to the ranks
 * q with q % group_size = r; the rows arrive in member order (groups hold
 * increasing members at increasing ranks). The columns go straight from the
 * units' states to the blocks (MPI datatypes of absolute addresses: no
 * packing copy, no int byte offsets), so a rank holds its units and the
 * block, nothing more. Collective on the world. */
static PetscErrorCode ColumnsOfDepth(RnCtx ctx, const Schedule *s, RnEnsemble ens, int di, double *slots, const PetscInt *col, double *dst)
{
  const int R = ctx->world_size;
  const PetscInt wme = col[ctx->world_rank + 1] - col[ctx->world_rank];
  int *sc, *sd, *rc, *rd, *lens, lo, hi;
  MPI_Datatype *st, *rt;
  MPI_Aint *addr;
  size_t roff = 0;

  PetscFunctionBeginUser;
  PetscCall(PetscMalloc4(R, &sc, R, &sd, R, &rc, R, &rd));
  PetscCall(PetscMalloc2(R, &st, R, &rt));
  PetscCall(PetscMalloc2(s->M, &lens, s->M, &addr));
  GroupMembersAtDepth(s, s->group_id, di, &lo, &hi);
  for (int q = 0; q < R; q++) {
    const PetscInt w = col[q + 1] - col[q];
    sd[q] = rd[q] = 0, sc[q] = rc[q] = 0, st[q] = rt[q] = MPI_DOUBLE;
    if (q % s->group_size == s->group_rank && w > 0 && hi > lo) {
      /* one block of w columns from each of this group's members of depth di */
      for (int m = lo; m < hi; m++) {
        lens[m - lo] = (int)w;
        PetscCallMPI(MPI_Get_address(RnEnsembleMemberTheta(ens, SlotState(s, slots, m * s->D + di - s->group_id * s->U)) + col[q], &addr[m - lo]));
      }
      PetscCallMPI(MPI_Type_create_hindexed(hi - lo, lens, addr, MPI_DOUBLE, &st[q]));
      PetscCallMPI(MPI_Type_commit(&st[q]));
      sc[q] = 1;
    }
  }
  for (int src = 0; src < R; src++) {
    int glo, ghi;
    GroupMembersAtDepth(s, src / s->group_size, di, &glo, &ghi);
    if (src % s->group_size == ctx->world_rank % s->group_size && ghi > glo && wme > 0) {
      MPI_Aint where;
      const int len = (int)((size_t)(ghi - glo) * wme);
      PetscCheck((size_t)(ghi - glo) * wme < 2147483647u, PETSC_COMM_SELF, PETSC_ERR_SUP, "%d members x %d columns exceed an MPI count", ghi - glo, (int)wme);
      PetscCallMPI(MPI_Get_address(dst + roff, &where));
      PetscCallMPI(MPI_Type_create_hindexed(1, &len, &where, MPI_DOUBLE, &rt[src]));
      PetscCallMPI(MPI_Type_commit(&rt[src]));
      rc[src] = 1, roff += (size_t)len;
    }
  }
  PetscCheck(roff == (size_t)s->M * wme, PETSC_COMM_SELF, PETSC_ERR_PLIB, "depth %d: %zu values arrive for %d members x %d columns", di, roff, s->M, (int)wme);
  PetscCallMPI(MPI_Alltoallw(MPI_BOTTOM, sc, sd, st, MPI_BOTTOM, rc, rd, rt, ctx->world));
  for (int q = 0; q < R; q++) {
    if (sc[q]) PetscCallMPI(MPI_Type_free(&st[q]));
    if (rc[q]) PetscCallMPI(MPI_Type_free(&rt[q]));
  }
  PetscCall(PetscFree2(lens, addr));
  PetscCall(PetscFree2(st, rt));
  PetscCall(PetscFree4(sc, sd, rc, rd));
  PetscFunctionReturn(0);
}

/* What a record needs besides the units: the tables, the blocks of the
 * exchange and, on rank 0, every unit's risk at the record. */
typedef struct {
  RnMetrics records_csv, stats_csv, gram_csv;
  RnArrays gram_h5, params_h5; /* output.arrays = "hdf5": gram.h5 (rank 0), params.h5 (every rank); else NULL */
  double *risk, *norm_sq;    /* rank 0: [di * M + m] at the current record */
  double *sup;               /* [3][D]: sups over the records so far of e_theta, s_theta, e_R (rank 0; checkpointed) */
  double *A, *B, *gram, *leader_send, *leader_recv;
  uint64_t *sum_send, *sum_recv;
  PetscInt *col, *col_root;  /* column splits: even over the ranks; all on rank 0 */
  RnStatsLayout L;
  PetscBool gram_laws;       /* the laws by M x M products (else the p x p covariance on rank 0) */
  RnEnsemble accurate;       /* the limit solved more accurately (ensemble.limit_check), or NULL */
  RnEnsembleOptions accurate_opt;
  int reached;               /* records written to the tables so far (checkpointed with them: a resume never writes one twice) */
} Recorder;

static PetscErrorCode RecorderSetUp(RnCtx ctx, const EnsembleExpOptions *o, const Schedule *s, Recorder *rc)
{
  const int R = ctx->world_size;
  PetscInt off, width, block;

  PetscFunctionBeginUser;
  rc->gram_laws = o->stats == STATS_GRAM || (o->stats == STATS_AUTO && s->p > STATS_GRAM_ABOVE) ? PETSC_TRUE : PETSC_FALSE;
  RnStatsLayoutColumns(ctx->world, s->M, s->p, &rc->L, &off);
  PetscCall(PetscMalloc2(R + 1, &rc->col, R + 1, &rc->col_root));
  for (int q = 0; q <= R; q++) rc->col[q] = (PetscInt)((long long)s->p * q / R), rc->col_root[q] = q ? s->p : 0;
  PetscCheck(rc->col[ctx->world_rank] == off, PETSC_COMM_SELF, PETSC_ERR_PLIB, "column layouts disagree");
  /* the p x p path gathers M x p on rank 0: where p is small (stats.h) */
  width = rc->gram_laws || ctx->world_rank ? rc->L.nlocal : s->p;
  block = (PetscInt)s->M * PetscMax(width, 1);
  PetscCall(PetscMalloc4(block, &rc->A, block, &rc->B, (size_t)s->M * s->M, &rc->gram, 3 * (size_t)s->D, &rc->sup));
  PetscCall(PetscArrayzero(rc->sup, 3 * (size_t)s->D));
  PetscCall(PetscMalloc4(3 * (size_t)s->U, &rc->leader_send, ctx->world_rank ? 0 : 3 * (size_t)s->U * s->groups, &rc->leader_recv, (size_t)s->U, &rc->sum_send,
                         ctx->world_rank ? 0 : (size_t)s->U * s->groups, &rc->sum_recv));
  PetscCall(PetscCalloc2((size_t)s->units, &rc->risk, (size_t)s->units, &rc->norm_sq)); /* filled on rank 0 */
  PetscFunctionReturn(0);
}

/* The records of params.h5 before record `reached`: the saved ones. */
static long long SavedBefore(const EnsembleExpOptions *o, const Schedule *s, int reached)
{
  if (o->save == SAVE_EVERY) return reached;
  if (o->save == SAVE_FINAL) return reached >= s->nrec ? 1 : 0;
  return 0;
}

#define ARRAYS_TIME_CHUNK  256       /* records of the time variable in a chunk */
#define ARRAYS_CHUNK_BYTES (1 << 20) /* params.h5: rows in a chunk up to about this (a chunk is a unit of I/O and of the checksum) */

/* output.arrays = "hdf5": gram.h5, written by rank 0, holds the M x M Gram
 * matrix of the differences theta_ref - theta_N of every compared depth at
 * every record (step x N x member_a x member_b, a record of a depth a
 * chunk); params.h5, written by every rank, the saved records' parameters
 * (step x member x N x parameter, chunks of rows, each group leader its
 * units' rows: the member-major unit order is the file's). A resumed run
 * cuts both back to the records its checkpoint holds. Collective. */
static PetscErrorCode ArraysSetUp(RnCtx ctx, RnRunDir rd, const EnsembleExpOptions *o, const Schedule *s, PetscBool resumed, Recorder *rc)
{
  const RnEnsembleOptions *eo = &o->ens;
  const char *const gram_dims[] = {"step", "N", "member_a", "member_b"}, *const theta_dims[] = {"step", "member", "N", "parameter"}, *const time_dims[] = {"step"};
  /* params.h5's chunk: a member's rows of every depth, and more members, up
   * to about ARRAYS_CHUNK_BYTES (one row if larger); a chunk that two groups
   * share is written collectively all the same */
  const PetscInt row_bytes = 8 * s->p, depths_per_chunk = PetscMax(1, PetscMin(s->D, ARRAYS_CHUNK_BYTES / row_bytes));
  const PetscInt members_per_chunk = depths_per_chunk < s->D ? 1 : PetscMax(1, PetscMin(s->M, ARRAYS_CHUNK_BYTES / (row_bytes * s->D)));
  const PetscInt gram_chunk[] = {1, 1, s->M, s->M}, theta_chunk[] = {1, members_per_chunk, depths_per_chunk, s->p}, time_chunk[] = {ARRAYS_TIME_CHUNK};
  const int ncompared = s->ndepths - (eo->limit ? 0 : 1); /* depths [0, ncompared): the reference is the last */
  int *members, *depths;

  PetscFunctionBeginUser;
  if (o->arrays != ARRAYS_HDF5) PetscFunctionReturn(0);
  PetscCall(PetscMalloc2(s->M, &members, s->D, &depths));
  for (int m = 0; m < s->M; m++) members[m] = eo->first_member + m;
  for (int di = 0; di < s->D; di++) depths[di] = DepthN(eo, di);
  if (ctx->world_rank == 0) {
    RnArrays a;
    PetscCall(RnArraysCreate(PETSC_COMM_SELF, rd, "gram", &rc->gram_h5));
    a = rc->gram_h5;
    PetscCall(RnArraysRecordDimension(a, "step", "the SGD step of the record"));
    PetscCall(RnArraysDimension(a, "N", ncompared, depths, "the depth N compared with the reference"));
    PetscCall(RnArraysDimension(a, "member_a", s->M, members, "member"));
    PetscCall(RnArraysDimension(a, "member_b", s->M, members, "member"));
    PetscCall(RnArraysVariable(a, "time", RN_ARRAY_FLOAT64, 1, time_dims, time_chunk, "t = step x eta"));
    PetscCall(RnArraysVariable(a, "gram", RN_ARRAY_FLOAT64, 4, gram_dims, gram_chunk, "<theta_ref - theta_N of member_a, theta_ref - theta_N of member_b>"));
    PetscCall(RnArraysAttributeString(a, "format", "resnode-mpi ensemble gram 1"));
    PetscCall(RnArraysAttributeInts(a, "reference_N", 1, &depths[s->ref]));
    PetscCall(RnArraysAttributeDouble(a, "eta", eo->eta));
    PetscCall(RnArraysSetUp(a, resumed ? rc->reached : -1));
  }
  if (o->save != SAVE_NONE) {
    RnArrays a;
    PetscCall(RnArraysCreate(ctx->world, rd, "params", &rc->params_h5));
    a = rc->params_h5;
    PetscCall(RnArraysRecordDimension(a, "step", "the SGD step of the record"));
    PetscCall(RnArraysDimension(a, "member", s->M, members, "member"));
    PetscCall(RnArraysDimension(a, "N", s->D, depths, "the depth N (0: the ODE limit)"));
    PetscCall(RnArraysDimension(a, "parameter", s->p, NULL, "parameter"));
    PetscCall(RnArraysVariable(a, "time", RN_ARRAY_FLOAT64, 1, time_dims, time_chunk, "t = step x eta"));
    PetscCall(RnArraysVariable(a, "theta", o->save_type, 4, theta_dims, theta_chunk, "the member's parameters at depth N"));
    PetscCall(RnArraysAttributeString(a, "format", "resnode-mpi ensemble parameters 1"));
    PetscCall(RnArraysAttributeString(a, "saved", rn_save_names[o->save]));
    PetscCall(RnArraysAttributeInts(a, "reference_N", 1, &depths[s->ref]));
    PetscCall(RnArraysAttributeDouble(a, "eta", eo->eta));
    PetscCall(RnArraysSetUp(a, resumed ? SavedBefore(o, s, rc->reached) : -1));
  }
  PetscCall(PetscFree2(members, depths));
  PetscFunctionReturn(0);
}

static PetscErrorCode RecorderDestroy(Recorder *rc)
{
  PetscFunctionBeginUser;
  PetscCall(RnArraysDestroy(&rc->gram_h5));
  PetscCall(RnArraysDestroy(&rc->params_h5));
  PetscCall(PetscFree2(rc->col, rc->col_root));
  PetscCall(PetscFree4(rc->A, rc->B, rc->gram, rc->sup));
  PetscCall(PetscFree4(rc->leader_send, rc->leader_recv, rc->sum_send, rc->sum_recv));
  PetscCall(PetscFree2(rc->risk, rc->norm_sq));
  PetscFunctionReturn(0);
}

/* The leaders' units at this record go to rank 0: (unit, risk, |theta|^2)
 * and, when parameters are saved, each theta's row checksum. */
static PetscErrorCode GatherUnits(RnCtx ctx, const Schedule *s, RnEnsemble ens, double *slots, PetscBool checksums, Recorder *rc)
{
  PetscFunctionBeginUser;
  if (ctx->leaders == MPI_COMM_NULL) PetscFunctionReturn(0);
  for (int k = 0; k < s->U; k++) {
    const int u = s->group_id * s->U + k;
    double *out = rc->leader_send + 3 * (size_t)k, nrm = 0;
    out[0] = -1, out[1] = out[2] = 0, rc->sum_send[k] = 0;
    if (u >= s->units) continue;
    const double *theta = RnEnsembleMemberTheta(ens, SlotState(s, slots, k));
    for (PetscInt i = 0; i < s->p; i++) nrm += theta[i] * theta[i];
    out[0] = u, out[1] = *SlotRisk(s, slots, k), out[2] = nrm;
    if (checksums) rc->sum_send[k] = RnChecksumWords(theta, (size_t)s->p);
  }
  PetscCallMPI(MPI_Gather(rc->leader_send, 3 * s->U, MPI_DOUBLE, rc->leader_recv, 3 * s->U, MPI_DOUBLE, 0, ctx->leaders));
  if (checksums) PetscCallMPI(MPI_Gather(rc->sum_send, s->U, MPI_UINT64_T, rc->sum_recv, s->U, MPI_UINT64_T, 0, ctx->leaders));
  PetscFunctionReturn(0);
}

/* A row of the member matrices by depth then member: the order of the tables and snapshots. */
static inline int RowOfUnit(const Schedule *s, int u) { return (u % s->D) * s->M + u / s->D; }

/* snapshots/theta-step<j>.bin, written by the group leaders in parallel
 * (MPI-IO), each its own units' rows; layout in the README. */
static PetscErrorCode WriteParametersBody(RnCtx ctx, RnRunDir rd, const EnsembleExpOptions *o, const Schedule *s, RnEnsemble ens, double *slots, int step, Recorder *rc)
{
  const RnEnsembleOptions *eo = &o->ens;
  const size_t header = 40, table = 16 * (size_t)s->units;
  char path[PETSC_MAX_PATH_LEN + 64], tmp[PETSC_MAX_PATH_LEN + 80], msg[MPI_MAX_ERROR_STRING];
  MPI_File fh;
  int err, len;

  PetscFunctionBeginUser;
  PetscCall(PetscSNPrintf(path, sizeof path, "%s/snapshots/theta-step%d.bin", rd->path, step));
  PetscCall(PetscSNPrintf(tmp, sizeof tmp, "%s.tmp", path));
  err = MPI_File_open(ctx->world, tmp, MPI_MODE_CREATE | MPI_MODE_WRONLY, MPI_INFO_NULL, &fh);
  if (err == MPI_SUCCESS) err = MPI_File_set_size(fh, (MPI_Offset)(header + table + sizeof(double) * (size_t)s->units * s->p));
  if (err == MPI_SUCCESS && ctx->world_rank == 0) {
    unsigned char *head;
    const uint32_t version = 1;
    const int32_t rows = s->units;
    const int64_t p = s->p, st = step;
    const double time = step * eo->eta;
    PetscCall(PetscCalloc1(header + table, &head));
    memcpy(head, "RNENSP\0\1", 8), memcpy(head + 8, &version, 4), memcpy(head + 12, &rows, 4), memcpy(head + 16, &p, 8), memcpy(head + 24, &st, 8), memcpy(head + 32, &time, 8);
    for (int g = 0; g < s->groups; g++)
      for (int k = 0; k < s->U; k++) {
        const double *in = rc->leader_recv + 3 * ((size_t)g * s->U + k);
        if (in[0] < 0) continue;
        const int u = (int)in[0], row = RowOfUnit(s, u);
        const int32_t member = eo->first_member + u / s->D, N = DepthN(eo, u % s->D);
        unsigned char *t = head + header + 16 * (size_t)row;
        memcpy(t, &member, 4), memcpy(t + 4, &N, 4), memcpy(t + 8, &rc->sum_recv[(size_t)g * s->U + k], 8);
      }
    err = MPI_File_write_at(fh, 0, head, (int)(header + table), MPI_BYTE, MPI_STATUS_IGNORE);
    PetscCall(PetscFree(head));
  }
  if (err == MPI_SUCCESS && ctx->group_rank == 0)
    for (int k = 0; k < s->U && err == MPI_SUCCESS; k++) {
      const int u = s->group_id * s->U + k;
      if (u >= s->units) continue;
      err = MPI_File_write_at(fh, (MPI_Offset)(header + table + sizeof(double) * (size_t)RowOfUnit(s, u) * s->p), RnEnsembleMemberTheta(ens, SlotState(s, slots, k)), (int)s->p,
                              MPI_DOUBLE, MPI_STATUS_IGNORE);
    }
  if (err != MPI_SUCCESS) {
    MPI_Error_string(err, msg, &len);
    SETERRQ(PETSC_COMM_SELF, PETSC_ERR_FILE_WRITE, "cannot write the parameters to %s: %s (is the disk full? records.csv and stats.csv hold the run so far; ensemble.save_parameters = \"none\" writes none)", tmp, msg);
  }
  PetscCallMPI(MPI_File_sync(fh));
  PetscCallMPI(MPI_File_close(&fh));
  if (ctx->world_rank == 0) PetscCheck(rename(tmp, path) == 0, PETSC_COMM_SELF, PETSC_ERR_FILE_WRITE, "cannot rename %s to %s: %s", tmp, path, strerror(errno));
  PetscFunctionReturn(0);
}

/* params.h5's record of the parameters at record rec: each group leader
 * writes its units' rows straight from their slots. Collective. */
static PetscErrorCode WriteParametersHdf5(RnCtx ctx, const EnsembleExpOptions *o, const Schedule *s, RnEnsemble ens, double *slots, int rec, int step, Recorder *rc)
{
  const long long index = SavedBefore(o, s, rec);
  const int first = s->group_id * s->U, rows = ctx->group_rank == 0 ? PetscMax(0, PetscMin(s->U, s->units - first)) : 0;
  const PetscInt start = index, one = 1, none = 0;
  const double time = step * o->ens.eta;

  PetscFunctionBeginUser;
  PetscCall(RnArraysBeginRecord(rc->params_h5, index, step));
  PetscCall(RnArraysWrite(rc->params_h5, "time", &start, ctx->world_rank ? &none : &one, &time));
  PetscCall(RnArraysWriteRows(rc->params_h5, "theta", first, rows, s->slot_len, rows ? RnEnsembleMemberTheta(ens, SlotState(s, slots, 0)) : NULL));
  PetscCall(RnArraysEndRecord(rc->params_h5));
  PetscFunctionReturn(0);
}

/* logged as a snapshot */
static PetscErrorCode WriteParameters(RnCtx ctx, RnRunDir rd, const EnsembleExpOptions *o, const Schedule *s, RnEnsemble ens, double *slots, int rec, int step, Recorder *rc)
{
  PetscFunctionBeginUser;
  PetscCall(RnEventBegin(RN_EV_SNAPSHOT));
  if (rc->params_h5) PetscCall(WriteParametersHdf5(ctx, o, s, ens, slots, rec, step, rc));
  else PetscCall(WriteParametersBody(ctx, rd, o, s, ens, slots, step, rc));
  PetscCall(RnEventEnd(RN_EV_SNAPSHOT));
  PetscFunctionReturn(0);
}

/* Laws of theta at the final record: spectra and Gaussian W2 against the
 * reference, from M x M products of column blocks, or (small p) the p x p
 * covariance of the members gathered on rank 0. Collective. */
static PetscErrorCode WriteLaws(RnCtx ctx, RnRunDir rd, const EnsembleExpOptions *o, const Schedule *s, RnEnsemble ens, double *slots, Recorder *rc)
{
  RnMetrics laws_csv, spec_csv;
  const PetscInt *col = rc->gram_laws ? rc->col : rc->col_root;
  const PetscInt neig = rc->gram_laws ? s->M : s->p;
  double *mean, *eig;

  PetscFunctionBeginUser;
  PetscCall(RnMetricsOpen(rd, "laws.csv", "N,mean_dist_sq,trace_N,trace_ref,w2", &laws_csv));
  PetscCall(RnMetricsOpen(rd, "spectrum.csv", "N,index,eigenvalue", &spec_csv));
  /* the p x p path returns p means and eigenvalues (small p); the Gram path M eigenvalues */
  PetscCall(PetscMalloc2(rc->gram_laws ? 1 : PetscMax(s->p, 1), &mean, PetscMax(neig, s->M), &eig));
  PetscCall(ColumnsOfDepth(ctx, s, ens, s->ref, slots, col, rc->B));
  for (int di = 0; di < s->D; di++) {
    const double *X = di == s->ref ? rc->B : rc->A;
    const int N = DepthN(&o->ens, di);
    if (di != s->ref) PetscCall(ColumnsOfDepth(ctx, s, ens, di, slots, col, rc->A));
    if (rc->gram_laws) PetscCall(RnStatsSpectrumGram(&rc->L, X, NULL, eig));
    else PetscCall(RnStatsCovarianceSpectrum(ctx->world, s->M, (int)s->p, X, mean, eig));
    for (PetscInt k = 0; k < neig; k++) PetscCall(RnMetricsRow(spec_csv, "%d,%d,%.10e", N, (int)k, eig[k]));
    if (di != s->ref) {
      RnGaussianW2 w;
      if (rc->gram_laws) PetscCall(RnStatsGaussianW2Gram(&rc->L, rc->A, rc->B, &w));
      else PetscCall(RnStatsGaussianW2(ctx->world, s->M, (int)s->p, rc->A, rc->B, &w));
      PetscCall(RnMetricsRow(laws_csv, "%d,%.10e,%.10e,%.10e,%.10e", N, w.mean_sq_dist, w.trace1, w.trace2, w.w2));
    }
  }
  PetscCall(PetscFree2(mean, eig));
  PetscCall(RnMetricsClose(&laws_csv));
  PetscCall(RnMetricsClose(&spec_csv));
  PetscFunctionReturn(0);
}

/* The limit's own error at the final parameters: the risk of every limit
 * member again with twice the steps (fixed steps) or tolerances 100 times
 * tighter (adaptive), against e_R at the deepest N, the smallest error the
 * rates rest on. limit.csv and a line in the log; a warning when the
 * limit's error is not below a tenth of it. Collective. */
static PetscErrorCode CheckLimit(RnCtx ctx, RnRunDir rd, const EnsembleExpOptions *o, const Schedule *s, double *slots, Recorder *rc)
{
  const RnEnsembleOptions *eo = &o->ens;
  const int M = s->M;
  int deep = 0;
  double local[2] = {0, 0}, sum[2], e_R = 0;
  RnMetrics limit_csv;
  char how[64];

  PetscFunctionBeginUser;
  for (int di = 1; di < s->ndepths; di++)
    if (eo->depths[di] > eo->depths[deep]) deep = di;
  for (int k = 0; k < s->U; k++) {
    const int u = s->group_id * s->U + k;
    double accurate;
    if (u >= s->units || u % s->D != s->ref) continue;
    PetscCall(RnEnsembleRisk(rc->accurate, 0, RnEnsembleMemberTheta(rc->accurate, SlotState(s, slots, k)), &accurate));
    RnTestStopPoint("limit_check"); /* inside the limit check */
    if (ctx->group_rank == 0) local[0] += (*SlotRisk(s, slots, k) - accurate) / M, local[1] = PetscMax(local[1], fabs(*SlotRisk(s, slots, k) - accurate));
  }
  PetscCallMPI(MPI_Reduce(&local[0], &sum[0], 1, MPI_DOUBLE, MPI_SUM, 0, ctx->world));
  PetscCallMPI(MPI_Reduce(&local[1], &sum[1], 1, MPI_DOUBLE, MPI_MAX, 0, ctx->world));
  for (int m = 0; m < M; m++) e_R += (rc->risk[s->ref * M + m] - rc->risk[deep * M + m]) / M;
  e_R = fabs(e_R);
  if (eo->ode.adaptive) PetscCall(PetscSNPrintf(how, sizeof how, "rtol %g against %g", eo->ode.rtol, rc->accurate_opt.ode.rtol));
  else PetscCall(PetscSNPrintf(how, sizeof how, "%d steps against %d", eo->ode.steps, rc->accurate_opt.ode.steps));
  PetscCall(RnMetricsOpen(rd, "limit.csv", "solver,check,mean_risk_error,max_risk_error,N_deepest,e_R_deepest", &limit_csv));
  PetscCall(RnMetricsRow(limit_csv, "%s,%s,%.6e,%.6e,%d,%.6e", eo->ode.solver, how, fabs(sum[0]), sum[1], eo->depths[deep], e_R));
  PetscCall(RnMetricsClose(&limit_csv));
  PetscCall(RnLog(ctx, "ensemble: the limit's own error (%s, %s, at the final parameters): |mean risk error| %.2e, max %.2e; e_R at N = %d is %.2e\n", eo->ode.solver, how, fabs(sum[0]),
                  sum[1], eo->depths[deep], e_R));
  if (ctx->world_rank == 0 && fabs(sum[0]) > 0.1 * e_R)
    PetscCall(RnLog(ctx, "warning: the ODE limit's error (%.2e) is not small against e_R at the deepest N (%.2e): the errors there measure the limit's solver too; raise %s\n", fabs(sum[0]), e_R,
                    eo->ode.adaptive ? "the accuracy (ode.rtol, ode.atol)" : "ode.steps"));
  PetscFunctionReturn(0);
}

/* Record rec is reached by every unit: its rows of records.csv, the errors
 * against the reference from the M x M Gram matrix of the differences
 * (stats.csv, gram.csv), the laws at the final record, and the parameters
 * when asked. Nothing of the record is kept afterwards. Collective. */
static PetscErrorCode RecordReached(RnCtx ctx, RnRunDir rd, const EnsembleExpOptions *o, const Schedule *s, RnEnsemble ens, double *slots, int rec, Recorder *rc)
{
  const RnEnsembleOptions *eo = &o->ens;
  const int step = RnEnsembleRecordStep(eo, rec), M = s->M, last = rec == s->nrec - 1;
  const double time = step * eo->eta;
  const PetscBool save = o->save == SAVE_EVERY || (o->save == SAVE_FINAL && last) ? PETSC_TRUE : PETSC_FALSE;

  PetscFunctionBeginUser;
  /* the tables hold it already (a resume from a checkpoint taken after it) */
  if (rec < rc->reached) PetscFunctionReturn(0);
  PetscCall(GatherUnits(ctx, s, ens, slots, save, rc));
  if (ctx->world_rank == 0) {
    for (size_t i = 0; i < 3 * (size_t)s->U * s->groups; i += 3)
      if (rc->leader_recv[i] >= 0) {
        const int row = RowOfUnit(s, (int)rc->leader_recv[i]);
        rc->risk[row] = rc->leader_recv[i + 1], rc->norm_sq[row] = rc->leader_recv[i + 2];
      }
    for (int di = 0; di < s->D; di++)
      for (int m = 0; m < M; m++)
        PetscCall(RnMetricsRow(rc->records_csv, "%d,%d,%d,%.10g,%.12e,%.12e", eo->first_member + m, DepthN(eo, di), step, time, rc->risk[di * M + m], sqrt(rc->norm_sq[di * M + m])));
  }
  /* the differences theta_ref - theta_N, by columns; their M x M Gram matrix holds every error */
  if (rc->gram_h5) {
    const PetscInt start = rec, one = 1;
    PetscCall(RnEventBegin(RN_EV_SNAPSHOT));
    PetscCall(RnArraysBeginRecord(rc->gram_h5, rec, step));
    PetscCall(RnArraysWrite(rc->gram_h5, "time", &start, &one, &time));
    PetscCall(RnEventEnd(RN_EV_SNAPSHOT));
  }
  PetscCall(ColumnsOfDepth(ctx, s, ens, s->ref, slots, rc->col, rc->B));
  for (int di = 0; di < s->ndepths; di++) {
    if (di == s->ref) continue;
    const double *G = rc->gram;
    double sum = 0, s1 = 0, s2 = 0, tr = 0, e, dr = 0, dr2 = 0;
    PetscCall(ColumnsOfDepth(ctx, s, ens, di, slots, rc->col, rc->A));
    for (size_t i = 0; i < (size_t)M * rc->L.nlocal; i++) rc->A[i] = rc->B[i] - rc->A[i];
    PetscCall(RnStatsGram(&rc->L, rc->A, rc->gram));
    if (ctx->world_rank) continue;
    for (int a = 0; a < M; a++) {
      const double d = rc->risk[s->ref * M + a] - rc->risk[di * M + a];
      for (int b = 0; b < M; b++) sum += G[(size_t)a * M + b];
      s1 += sqrt(PetscMax(G[(size_t)a * M + a], 0)) / M, s2 += G[(size_t)a * M + a] / M, tr += G[(size_t)a * M + a];
      dr += d / M, dr2 += d * d / M;
    }
    /* the Gram matrix itself: a record's largest output (logged with the parameters) */
    PetscCall(RnEventBegin(RN_EV_SNAPSHOT));
    if (rc->gram_h5) {
      const PetscInt start[] = {rec, di, 0, 0}, count[] = {1, 1, M, M}; /* the compared depths come before the reference */
      PetscCall(RnArraysWrite(rc->gram_h5, "gram", start, count, G));
    } else
      for (int a = 0; a < M; a++)
        for (int b = a; b < M; b++) PetscCall(RnMetricsRow(rc->gram_csv, "%d,%d,%d,%d,%.17e", DepthN(eo, di), step, eo->first_member + a, eo->first_member + b, G[(size_t)a * M + b]));
    PetscCall(RnEventEnd(RN_EV_SNAPSHOT));
    /* |mean difference|, and the trace of the differences' covariance for its standard error */
    e = sqrt(PetscMax(sum, 0)) / M;
    tr = PetscMax(tr - M * e * e, 0) / (M - 1);
    PetscCall(RnMetricsRow(rc->stats_csv, "%d,%d,%.10g,%.10e,%.4e,%.10e,%.4e,%.10e,%.4e", DepthN(eo, di), step, time, e, sqrt(tr / M), s1, sqrt(PetscMax(s2 - s1 * s1, 0) / (M - 1)), fabs(dr),
                           sqrt(PetscMax(dr2 - dr * dr, 0) / (M - 1))));
    rc->sup[di] = PetscMax(rc->sup[di], e), rc->sup[s->D + di] = PetscMax(rc->sup[s->D + di], s1), rc->sup[2 * s->D + di] = PetscMax(rc->sup[2 * s->D + di], fabs(dr));
  }
  if (rc->gram_h5) {
    PetscCall(RnEventBegin(RN_EV_SNAPSHOT));
    PetscCall(RnArraysEndRecord(rc->gram_h5));
    PetscCall(RnEventEnd(RN_EV_SNAPSHOT));
  }
  if (last) PetscCall(WriteLaws(ctx, rd, o, s, ens, slots, rc));
  if (last && rc->accurate) PetscCall(CheckLimit(ctx, rd, o, s, slots, rc));
  if (save) PetscCall(WriteParameters(ctx, rd, o, s, ens, slots, rec, step, rc));
  rc->reached = rec + 1;
  RnTestStopPoint("record");
  PetscFunctionReturn(0);
}

/* sup.csv and rates.csv from the sups over the records (collective; rank 0's rows). */
static PetscErrorCode WriteRates(RnCtx ctx, RnRunDir rd, const EnsembleExpOptions *o, const Schedule *s, const Recorder *rc)
{
  RnMetrics sup_csv, rates_csv;
  const char *names[3] = {"e_theta", "s_theta", "e_R"};
  double Ns[64];
  int nfit = 0;

  PetscFunctionBeginUser;
  PetscCall(RnMetricsOpen(rd, "sup.csv", "N,e_theta,s_theta,e_R", &sup_csv));
  for (int di = 0; di < s->ndepths; di++) {
    if (di == s->ref) continue;
    PetscCall(RnMetricsRow(sup_csv, "%d,%.10e,%.10e,%.10e", o->ens.depths[di], rc->sup[di], rc->sup[s->D + di], rc->sup[2 * s->D + di]));
    Ns[nfit++] = o->ens.depths[di];
  }
  PetscCall(RnMetricsClose(&sup_csv));
  PetscCall(RnMetricsOpen(rd, "rates.csv", "quantity,alpha,log_c,depths", &rates_csv));
  for (int q = 0; q < 3; q++) {
    double alpha, logc;
    FitRate(nfit, Ns, rc->sup + (size_t)q * s->D, &alpha, &logc);
    PetscCall(RnMetricsRow(rates_csv, "%s,%.6f,%.6f,%d", names[q], alpha, logc, nfit));
    PetscCall(RnLog(ctx, "ensemble: %-8s ~ c N^-alpha with alpha = %.3f (fit over %d depths; confidence intervals: analysis/convergence)\n", names[q], alpha, nfit));
  }
  PetscCall(RnMetricsClose(&rates_csv));
  PetscFunctionReturn(0);
}

/* The SGD steps every unit of the world has taken once `done` iterations of
 * this schedule are complete: the trainer's step count. It does not depend
 * on the group count, so a run continues on any number of groups. In record
 * interval i (SGD steps [j0, j1), L = j1 - j0), a group's slots advance one
 * after another: those before position pos are at j1, the one at pos at j + 1,
 * the rest at j0; a group's real units hold its first positions. */
static long long WorldUnitSteps(const RnEnsembleOptions *eo, const Schedule *s, long long done)
{
  long long last, t0, sum = 0;
  int i, j0, j1, L, pos, j;

  if (done <= 0) return 0;
  last = done - 1;
  i = (int)PetscMin(last / ((long long)eo->record_every * s->U), (long long)s->nrec - 2);
  j0 = RnEnsembleRecordStep(eo, i), j1 = RnEnsembleRecordStep(eo, i + 1), L = j1 - j0;
  t0 = (long long)j0 * s->U;
  pos = (int)((last - t0) / L), j = j0 + (int)((last - t0) % L);
  for (int g = 0; g < s->groups; g++) {
    const int n = (int)PetscMax(0, PetscMin((long long)s->U, (long long)s->units - (long long)g * s->U));
    sum += (long long)n * j0 + (long long)PetscMin(n, pos) * L + (pos < n ? j + 1 - j0 : 0);
  }
  (void)j1;
  return sum;
}

/* A resumed run's units may have been checkpointed by another group count,
 * anywhere inside a record interval: every group brings its units to the
 * interval's end (units are independent: the order does not change a bit),
 * the record is reached, and the schedule starts at the next interval.
 * Returns the iteration to go on from. Collective on the world. */
static PetscErrorCode CatchUp(RnCtx ctx, RnRunDir rd, const EnsembleExpOptions *o, const Schedule *s, RnEnsemble ens, double *slots, Recorder *rc, long long *t_next)
{
  const RnEnsembleOptions *eo = &o->ens;
  int mine[2] = {INT_MAX, INT_MAX}, lo, hi, i = 0, j1; /* the least step, and minus the most */

  PetscFunctionBeginUser;
  for (int k = 0; k < s->U; k++)
    if (s->group_id * s->U + k < s->units) {
      const int steps = RnEnsembleMemberSteps(ens, SlotState(s, slots, k));
      mine[0] = PetscMin(mine[0], steps), mine[1] = PetscMin(mine[1], -steps);
    }
  {
    int world[2];
    PetscCallMPI(MPI_Allreduce(mine, world, 2, MPI_INT, MPI_MIN, ctx->world));
    lo = world[0], hi = -world[1];
  }
  while (i + 1 < s->nrec - 1 && RnEnsembleRecordStep(eo, i + 1) <= lo) i++;
  j1 = RnEnsembleRecordStep(eo, i + 1);
  if (lo == hi && lo == RnEnsembleRecordStep(eo, i)) {
    /* at a record: it was reached before the checkpoint */
    *t_next = (long long)lo * s->U;
    PetscFunctionReturn(0);
  }
  PetscCheck(hi <= j1, ctx->world, RN_ERR_INPUT, "ensemble: the checkpoint's units are at SGD steps %d to %d, more than one record interval apart; the checkpoint is not this run's", lo, hi);
  for (int pos = 0; pos < s->U; pos++) {
    const int k = s->order[pos];
    double *state = SlotState(s, slots, k);
    if (s->group_id * s->U + k >= s->units || RnEnsembleMemberSteps(ens, state) == j1) continue;
    while (RnEnsembleMemberSteps(ens, state) < j1) PetscCall(RnEnsembleMemberAdvance(ens, state, 1));
    PetscCall(RnEnsembleMemberRecord(ens, state, SlotRisk(s, slots, k)));
  }
  PetscCall(RecordReached(ctx, rd, o, s, ens, slots, i + 1, rc));
  *t_next = (long long)j1 * s->U;
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
  RnTrainer tr;
  Schedule s = {0};
  Recorder rc = {0};
  double *slots, start = RnWallTime(), peak_mb, peak_max;
  long long resumed, total;
  struct rusage ru;

  PetscFunctionBeginUser;
  if (eo->classification) {
    RnEnsembleProblem problem;
    PetscInt p;
    PetscCall(RnCifarLoad(ctx->world, o->cifar_dir, PETSC_TRUE, o->cifar_images, &images));
    PetscCall(RnCifarEnsembleProblemCreate(ctx->group, ctx->seed, images, &o->cifar, &problem, &p));
    PetscCall(RnEnsembleCreateWithProblem(ctx->group, ctx->seed, p, eo, &problem, &ens));
    PetscCall(RnLog(ctx, "ensemble: the CIFAR network (width C = %d, %s, %s, batch norm at its initial statistics) on %d training images of %s\n", o->cifar.channels, RnActivationNames[o->cifar.activation],
                    RnPrecisionNames[o->cifar.precision], images->n, o->cifar_dir));
  } else {
    PetscCall(RnNetCreateFromConfig(o->cfg, "model.field", ctx->group, in, &field));
    PetscCall(RnEnsembleCreate(ctx->group, ctx->seed, field, eo, &ens));
  }
  PetscCall(ScheduleSetUp(ctx, eo, ens, &s));
  PetscCall(RecorderSetUp(ctx, o, &s, &rc));
  if (eo->limit && o->limit_check && s.ndepths >= 1) {
    /* the same problem, its limit solved more accurately */
    rc.accurate_opt = *eo;
    if (eo->ode.adaptive) rc.accurate_opt.ode.rtol /= 100, rc.accurate_opt.ode.atol /= 100;
    else rc.accurate_opt.ode.steps *= 2;
    if (eo->classification) {
      RnCifarEnsembleOptions accurate_cifar = o->cifar;
      RnEnsembleProblem problem;
      PetscInt p;
      accurate_cifar.ode = rc.accurate_opt.ode;
      PetscCall(RnCifarEnsembleProblemCreate(ctx->group, ctx->seed, images, &accurate_cifar, &problem, &p));
      PetscCall(RnEnsembleCreateWithProblem(ctx->group, ctx->seed, p, &rc.accurate_opt, &problem, &rc.accurate));
    } else PetscCall(RnEnsembleCreate(ctx->group, ctx->seed, field, &rc.accurate_opt, &rc.accurate));
  }
  PetscCall(RnLog(ctx, "ensemble: %d members x %d depths%s, %d parameters, %d SGD steps (eta %g, sigma %g, batch %d); %d groups of %d rank(s), %d units each; %d records, "
                       "statistics as each is reached (laws by %s), parameters saved: %s\n",
                  s.M, eo->ndepths, eo->limit ? " + the ODE limit" : "", (int)s.p, eo->steps, eo->eta, eo->sigma, eo->batch, s.groups, s.group_size, s.U, s.nrec,
                  rc.gram_laws ? "M x M products" : "the p x p covariance", rn_save_names[o->save]));
  /* a group's units are its checkpoint state; a loop iteration is one SGD
   * step of one unit of every group, so a checkpoint can fall anywhere (the
   * trainer counts the world's unit steps: WorldUnitSteps) */
  PetscCall(PetscCalloc1((size_t)s.U * s.slot_len, &slots));
  PetscCall(RnTrainerCreate(ctx, rd, &o->checkpoint, "ensemble", &tr));
  /* each unit's slot is a field of its own, written and read by the group
   * that holds it: a run continues on any number of groups */
  for (int u = 0; u < s.units; u++) {
    char name[32];
    const int g = u / s.U;
    PetscCall(PetscSNPrintf(name, sizeof name, "unit.%d", u));
    PetscCall(RnTrainerAddState(tr, name, g == s.group_id ? SlotRisk(&s, slots, u % s.U) : NULL, sizeof(double) * s.slot_len, g * s.group_size));
  }
  PetscCall(RnTrainerAddState(tr, "sup", rc.sup, sizeof(double) * 3 * s.D, 0));
  PetscCall(RnTrainerAddState(tr, "records", &rc.reached, sizeof rc.reached, 0));
  PetscCall(RnTrainerOpenMetrics(tr, "records.csv", "member,N,step,time,risk,theta_norm", &rc.records_csv));
  PetscCall(RnTrainerOpenMetrics(tr, "stats.csv", "N,step,time,e_theta,e_theta_se,s_theta,s_theta_se,e_R,e_R_se", &rc.stats_csv));
  if (o->arrays == ARRAYS_CSV) PetscCall(RnTrainerOpenMetrics(tr, "gram.csv", "N,step,member_a,member_b,dot", &rc.gram_csv));
  total = (long long)s.S * s.U; /* iterations of this schedule; the trainer counts the world's unit steps */
  PetscCall(RnTrainerStart(tr, (long long)s.S * s.units, &resumed));
  PetscCall(ArraysSetUp(ctx, rd, o, &s, resumed > 0 ? PETSC_TRUE : PETSC_FALSE, &rc));
  /* --plan: a round is a record interval (every unit's steps to the next record) */
  if (RnTrainerPlanning(tr)) PetscCall(RnTrainerPlanPeriod(tr, (long long)eo->record_every * s.units, 0.0));
  if (resumed == 0) {
    for (int pos = 0; pos < s.U; pos++) {
      const int k = s.order[pos], u = s.group_id * s.U + k;
      if (u >= s.units) continue;
      PetscCall(RnEnsembleMemberBegin(ens, eo->first_member + u / s.D, DepthN(eo, u % s.D), SlotState(&s, slots, k)));
      PetscCall(RnEnsembleMemberRecord(ens, SlotState(&s, slots, k), SlotRisk(&s, slots, k)));
    }
    PetscCall(RecordReached(ctx, rd, o, &s, ens, slots, 0, &rc));
  }
  {
    long long t_start = 0;
    if (resumed > 0) PetscCall(CatchUp(ctx, rd, o, &s, ens, slots, &rc, &t_start));
    resumed = t_start;
  }
  for (long long t = resumed; t < total; t++) {
    /* t -> record interval i (SGD steps [j0, j1)), the unit at position pos, its step j */
    const int i = (int)PetscMin(t / ((long long)eo->record_every * s.U), (long long)s.nrec - 2);
    const int j0 = RnEnsembleRecordStep(eo, i), j1 = RnEnsembleRecordStep(eo, i + 1), L = j1 - j0;
    const long long t0 = (long long)j0 * s.U;
    const int pos = (int)((t - t0) / L), j = j0 + (int)((t - t0) % L), k = s.order[pos];
    if (s.group_id * s.U + k < s.units) {
      double *state = SlotState(&s, slots, k);
      PetscCheck(RnEnsembleMemberSteps(ens, state) == j, PETSC_COMM_SELF, PETSC_ERR_PLIB, "unit slot %d is at SGD step %d, the schedule at %d", k, RnEnsembleMemberSteps(ens, state), j);
      PetscCall(RnEnsembleMemberAdvance(ens, state, 1));
      if (j == j1 - 1) PetscCall(RnEnsembleMemberRecord(ens, state, SlotRisk(&s, slots, k)));
    }
    if (j == j1 - 1) RnTestStopPoint("unit"); /* between units */
    if (pos == s.U - 1 && j == j1 - 1) PetscCall(RecordReached(ctx, rd, o, &s, ens, slots, i + 1, &rc));
    if (pos == s.U - 1 && j == j1 - 1 ? PETSC_TRUE : t % PetscMax(1, total / 200) == 0)
      PetscCall(RnProgress(ctx, "record %d/%d  SGD step %d/%d of unit %d/%d  %.1f s  ETA %.0f s", i + 1, s.nrec - 1, j + 1, s.S, pos + 1, s.U, RnWallTime() - start, RnTrainerETA(tr, t + 1)));
    if (pos == s.U - 1 && j == j1 - 1) PetscCall(RnTrainerStepDone(tr, WorldUnitSteps(eo, &s, t + 1), PETSC_FALSE, "SGD step %d of %d, at record %d (in the tables)", j + 1, s.S, i + 1));
    else PetscCall(RnTrainerStepDone(tr, WorldUnitSteps(eo, &s, t + 1), PETSC_FALSE, "SGD step %d of %d, unit %d of %d, between records %d and %d", j + 1, s.S, pos + 1, s.U, i, i + 1));
    /* --plan: one record interval holds every unit (each depth) and a record's statistics */
    if (RnTrainerPlanning(tr) && pos == s.U - 1 && j == j1 - 1) break;
  }
  PetscCall(RnTrainerFinish(tr));
  PetscCall(RnTrainerDestroy(&tr));
  PetscCall(RnMetricsClose(&rc.records_csv));
  PetscCall(RnMetricsClose(&rc.stats_csv));
  PetscCall(RnMetricsClose(&rc.gram_csv));
  PetscCall(WriteRates(ctx, rd, o, &s, &rc));
  getrusage(RUSAGE_SELF, &ru);
  peak_mb = ru.ru_maxrss / 1024.0;
  PetscCallMPI(MPI_Reduce(&peak_mb, &peak_max, 1, MPI_DOUBLE, MPI_MAX, 0, ctx->world));
  PetscCall(RnLog(ctx, "ensemble: %d units in %.1f s; peak memory %.0f MB on the largest rank, of which a group's %d units' parameters %.1f MB and a record's member matrix by columns %.1f MB (M x p / ranks) times 2\n",
                  s.units, RnWallTime() - start, peak_max, s.U, 8.0 * s.U * s.p / 1048576.0, 8.0 * s.M * s.p / ctx->world_size / 1048576.0));

  PetscCall(RnEnsembleDestroy(&rc.accurate)); /* its options share the data: not destroyed */
  PetscCall(RecorderDestroy(&rc));
  PetscCall(PetscFree(slots));
  PetscCall(PetscFree(s.order));
  PetscCall(RnEnsembleDestroy(&ens));
  PetscCall(RnNetDestroy(&field));
  PetscCall(RnDatasetDestroy(&images));
  PetscCall(RnEnsembleOptionsDestroy(&o->ens));
  PetscFunctionReturn(0);
}

/* members x SGD steps x the depths' block evaluations (the limit's: its solver's) a sample of a batch */
static double EnsembleWork(const void *options)
{
  const RnEnsembleOptions *eo = &((const EnsembleExpOptions *)options)->ens;
  double per_sample = eo->limit ? RnOdeFieldEvaluationsPerPass(&eo->ode) : 0;
  for (int d = 0; d < eo->ndepths; d++) per_sample += eo->depths[d];
  return per_sample * eo->members * eo->steps * (eo->batch ? eo->batch : 1);
}

const RnExperiment RnExperimentEnsemble = {"ensemble", "SGD ensembles for a list of depths N and the ODE limit; convergence rates in N", EnsembleReadOptions, EnsembleGroupCount, EnsembleRun, "convergence", RnExperimentOdePrefixes, PETSC_TRUE, "record interval", EnsembleWork};
