/* stats.c: ensemble statistics with ScaLAPACK (see stats.h).
 *
 * The p x p covariance C = Xc^T Xc / (M - 1) of the centred member matrix Xc
 * (M x p) is formed with pdsyrk on a near-square BLACS grid over comm and
 * its eigenvalues computed with pdsyev. The cross term of the Gaussian W2 distance needs
 * no p x p work: with A_i = Xc_i / sqrt(M - 1), C_i = A_i^T A_i and
 *   tr (C1^1/2 C2 C1^1/2)^1/2 = || A1 A2^T ||_* (the nuclear norm),
 * the sum of the singular values of an M x M matrix (tests compare both). */
#include "resnode/ensemble/stats.h"
#include "resnode/core/profile.h"

#include <cblas.h>
#include <float.h>
#include <math.h>
#include <string.h>

/* BLACS and ScaLAPACK (Debian ships no header) */
extern int Csys2blacs_handle(MPI_Comm comm);
extern void Cblacs_gridinit(int *context, const char *order, int nprow, int npcol);
extern void Cblacs_gridinfo(int context, int *nprow, int *npcol, int *myrow, int *mycol);
extern void Cblacs_gridexit(int context);
extern void Cfree_blacs_system_handle(int handle);
extern int numroc_(const int *n, const int *nb, const int *iproc, const int *isrcproc, const int *nprocs);
extern void descinit_(int *desc, const int *m, const int *n, const int *mb, const int *nb, const int *irsrc, const int *icsrc, const int *ictxt, const int *lld, int *info);
extern void Cpdgemr2d(int m, int n, const double *a, int ia, int ja, const int *desca, double *b, int ib, int jb, const int *descb, int gcontext);
extern void pdsyrk_(const char *uplo, const char *trans, const int *n, const int *k, const double *alpha, const double *a, const int *ia, const int *ja, const int *desca,
                    const double *beta, double *c, const int *ic, const int *jc, const int *descc);
extern void pdsyev_(const char *jobz, const char *uplo, const int *n, double *a, const int *ia, const int *ja, const int *desca, double *w, double *z, const int *iz, const int *jz,
                    const int *descz, double *work, const int *lwork, int *info);
extern void dsyev_(const char *jobz, const char *uplo, const int *n, double *a, const int *lda, double *w, double *work, const int *lwork, int *info);
extern void dgesvd_(const char *jobu, const char *jobvt, const int *m, const int *n, double *a, const int *lda, double *s, double *u, const int *ldu, double *vt, const int *ldvt,
                    double *work, const int *lwork, int *info);

/* Eigenvalues (descending) of the covariance of the M x p members given on
 * rank 0; mean too. Collective on comm. */
static PetscErrorCode StatsCovarianceSpectrumBody(MPI_Comm comm, int M, int p, const double *members, double *mean, double *eigenvalues)
{
  int rank, size, nprow, npcol, myrow, mycol, ctx_grid, ctx_root, handle_grid, handle_root;
  int descX[9], descX0[9], descC[9], descZ[9], info, izero = 0, ione = 1;
  const int nb = p < 256 ? 16 : 64;
  double *Xc = NULL, *Xloc, *Cloc, *Zloc, *work, wq;
  int lwork, mloc_x, nloc_x, mloc_c, nloc_c;
  const double alpha = 1.0 / PetscMax(M - 1, 1), beta = 0.0;

  PetscFunctionBeginUser;
  PetscCallMPI(MPI_Comm_rank(comm, &rank));
  PetscCallMPI(MPI_Comm_size(comm, &size));
  PetscCheck(M >= 2 && p >= 1, comm, PETSC_ERR_ARG_OUTOFRANGE, "a covariance needs at least 2 members (got %d) and 1 parameter", M);
  /* the centred member matrix on rank 0, stored column-major for ScaLAPACK */
  if (rank == 0) {
    PetscCall(PetscMalloc1((size_t)M * p, &Xc));
    for (int k = 0; k < p; k++) {
      double m = 0;
      for (int i = 0; i < M; i++) m += members[(size_t)i * p + k];
      mean[k] = m / M;
      for (int i = 0; i < M; i++) Xc[(size_t)k * M + i] = members[(size_t)i * p + k] - mean[k];
    }
  }
  PetscCallMPI(MPI_Bcast(mean, p, MPI_DOUBLE, 0, comm));
  /* a near-square process grid */
  for (nprow = (int)sqrt((double)size); size % nprow; nprow--) {
  }
  npcol = size / nprow;
  handle_grid = Csys2blacs_handle(comm);
  ctx_grid = handle_grid;
  Cblacs_gridinit(&ctx_grid, "R", nprow, npcol);
  Cblacs_gridinfo(ctx_grid, &nprow, &npcol, &myrow, &mycol);
  handle_root = Csys2blacs_handle(comm);
  ctx_root = handle_root;
  Cblacs_gridinit(&ctx_root, "R", 1, 1); /* rank 0 alone holds the input */

  mloc_x = numroc_(&M, &nb, &myrow, &izero, &nprow);
  nloc_x = numroc_(&p, &nb, &mycol, &izero, &npcol);
  mloc_c = numroc_(&p, &nb, &myrow, &izero, &nprow);
  nloc_c = numroc_(&p, &nb, &mycol, &izero, &npcol);
  {
    int lld = PetscMax(1, mloc_x);
    descinit_(descX, &M, &p, &nb, &nb, &izero, &izero, &ctx_grid, &lld, &info);
    PetscCheck(info == 0, comm, PETSC_ERR_LIB, "descinit (X) failed: %d", info);
    lld = PetscMax(1, mloc_c);
    descinit_(descC, &p, &p, &nb, &nb, &izero, &izero, &ctx_grid, &lld, &info);
    PetscCheck(info == 0, comm, PETSC_ERR_LIB, "descinit (C) failed: %d", info);
    descinit_(descZ, &p, &p, &nb, &nb, &izero, &izero, &ctx_grid, &lld, &info);
    PetscCheck(info == 0, comm, PETSC_ERR_LIB, "descinit (Z) failed: %d", info);
  }
  if (rank == 0) {
    descinit_(descX0, &M, &p, &M, &p, &izero, &izero, &ctx_root, &M, &info);
    PetscCheck(info == 0, comm, PETSC_ERR_LIB, "descinit (X0) failed: %d", info);
  } else descX0[1] = -1; /* not in the root grid */
  PetscCall(PetscMalloc3((size_t)PetscMax(1, mloc_x) * PetscMax(1, nloc_x), &Xloc, (size_t)PetscMax(1, mloc_c) * PetscMax(1, nloc_c), &Cloc,
                         (size_t)PetscMax(1, mloc_c) * PetscMax(1, nloc_c), &Zloc));
  Cpdgemr2d(M, p, Xc, 1, 1, descX0, Xloc, 1, 1, descX, ctx_grid);
  /* C = Xc^T Xc / (M - 1), upper triangle */
  pdsyrk_("U", "T", &p, &M, &alpha, Xloc, &ione, &ione, descX, &beta, Cloc, &ione, &ione, descC);
  /* eigenvalues only (pdsyev, JOBZ = N): the spectrum needs no vectors, and
   * their back-transformation would triple the work of pdsyevd */
  lwork = -1;
  pdsyev_("N", "U", &p, Cloc, &ione, &ione, descC, eigenvalues, Zloc, &ione, &ione, descZ, &wq, &lwork, &info);
  PetscCheck(info == 0, comm, PETSC_ERR_LIB, "pdsyev workspace query failed: %d", info);
  lwork = (int)wq + 1;
  PetscCall(PetscMalloc1(lwork, &work));
  pdsyev_("N", "U", &p, Cloc, &ione, &ione, descC, eigenvalues, Zloc, &ione, &ione, descZ, work, &lwork, &info);
  PetscCheck(info == 0, comm, PETSC_ERR_LIB, "pdsyev failed: info = %d", info);
  /* ascending from LAPACK: turn around */
  for (int i = 0; i < p / 2; i++) {
    double t = eigenvalues[i];
    eigenvalues[i] = eigenvalues[p - 1 - i];
    eigenvalues[p - 1 - i] = t;
  }
  /* eigenvalues below p eps lambda_max are rounding (the covariance has rank
   * <= M - 1 < p for few members): they change with the process grid, so
   * they are written as 0 and results compare equal across rank counts */
  {
    const double floor_ = p * DBL_EPSILON * fabs(eigenvalues[0]);
    for (int i = 0; i < p; i++)
      if (fabs(eigenvalues[i]) <= floor_) eigenvalues[i] = 0.0;
  }
  PetscCall(PetscFree(work));
  PetscCall(PetscFree3(Xloc, Cloc, Zloc));
  PetscCall(PetscFree(Xc));
  if (rank == 0) Cblacs_gridexit(ctx_root);
  Cblacs_gridexit(ctx_grid);
  Cfree_blacs_system_handle(handle_grid);
  Cfree_blacs_system_handle(handle_root);
  /* every rank returns the same spectrum */
  PetscCallMPI(MPI_Bcast(eigenvalues, p, MPI_DOUBLE, 0, comm));
  PetscFunctionReturn(0);
}

/* logged as statistics */
PetscErrorCode RnStatsCovarianceSpectrum(MPI_Comm comm, int M, int p, const double *members, double *mean, double *eigenvalues)
{
  PetscFunctionBeginUser;
  PetscCall(RnEventBegin(RN_EV_STATS));
  PetscCall(StatsCovarianceSpectrumBody(comm, M, p, members, mean, eigenvalues));
  PetscCall(RnEventEnd(RN_EV_STATS));
  PetscFunctionReturn(0);
}

/* Nuclear norm of B (n x n): the sum of its singular values. An SVD, not
 * sqrt(eig(B B^T)): B is rank deficient (rank <= min(M - 1, p)) and the
 * square roots of rounding-level eigenvalues would add sqrt(eps) each. */
static PetscErrorCode NuclearNorm(int n, const double *B, double *norm)
{
  double *A, *sv, *work, wq, dummy;
  int lwork = -1, info, one = 1;

  PetscFunctionBeginUser;
  PetscCall(PetscMalloc2((size_t)n * n, &A, n, &sv));
  PetscCall(PetscArraycpy(A, B, (size_t)n * n)); /* singular values of B^T = those of B */
  dgesvd_("N", "N", &n, &n, A, &n, sv, &dummy, &one, &dummy, &one, &wq, &lwork, &info);
  lwork = (int)wq + 1;
  PetscCall(PetscMalloc1(lwork, &work));
  dgesvd_("N", "N", &n, &n, A, &n, sv, &dummy, &one, &dummy, &one, work, &lwork, &info);
  PetscCheck(info == 0, PETSC_COMM_SELF, PETSC_ERR_LIB, "dgesvd failed: %d", info);
  *norm = 0;
  for (int i = 0; i < n; i++) *norm += sv[i];
  PetscCall(PetscFree(work));
  PetscCall(PetscFree2(A, sv));
  PetscFunctionReturn(0);
}

static PetscErrorCode StatsGaussianW2Body(MPI_Comm comm, int M, int p, const double *members1, const double *members2, RnGaussianW2 *out)
{
  int rank;
  double *mean1, *mean2, *eig1, *eig2;

  PetscFunctionBeginUser;
  PetscCallMPI(MPI_Comm_rank(comm, &rank));
  PetscCall(PetscMalloc4(p, &mean1, p, &mean2, p, &eig1, p, &eig2));
  memset(out, 0, sizeof *out);
  if (rank == 0) {
    /* means and traces (sums of variances) need no decomposition */
    for (int k = 0; k < p; k++) {
      double m1 = 0, m2 = 0, v1 = 0, v2 = 0;
      for (int i = 0; i < M; i++) m1 += members1[(size_t)i * p + k], m2 += members2[(size_t)i * p + k];
      m1 /= M, m2 /= M;
      for (int i = 0; i < M; i++) {
        const double d1 = members1[(size_t)i * p + k] - m1, d2 = members2[(size_t)i * p + k] - m2;
        v1 += d1 * d1, v2 += d2 * d2;
      }
      mean1[k] = m1, mean2[k] = m2;
      out->mean_sq_dist += (m1 - m2) * (m1 - m2);
      out->trace1 += v1 / (M - 1);
      out->trace2 += v2 / (M - 1);
    }
    /* B = A1 A2^T with A_i the centred members / sqrt(M - 1) */
    double *B;
    PetscCall(PetscMalloc1((size_t)M * M, &B));
    for (int i = 0; i < M; i++)
      for (int j = 0; j < M; j++) {
        double s = 0;
        for (int k = 0; k < p; k++) s += (members1[(size_t)i * p + k] - mean1[k]) * (members2[(size_t)j * p + k] - mean2[k]);
        B[(size_t)i * M + j] = s / (M - 1);
      }
    PetscCall(NuclearNorm(M, B, &out->cross));
    PetscCall(PetscFree(B));
  }
  PetscCallMPI(MPI_Bcast(out, 4, MPI_DOUBLE, 0, comm)); /* mean_sq_dist, traces, cross */
  out->w2 = sqrt(PetscMax(out->mean_sq_dist + out->trace1 + out->trace2 - 2.0 * out->cross, 0.0));
  PetscCall(PetscFree4(mean1, mean2, eig1, eig2));
  PetscFunctionReturn(0);
}

/* logged as statistics */
PetscErrorCode RnStatsGaussianW2(MPI_Comm comm, int M, int p, const double *members1, const double *members2, RnGaussianW2 *out)
{
  PetscFunctionBeginUser;
  PetscCall(RnEventBegin(RN_EV_STATS));
  PetscCall(StatsGaussianW2Body(comm, M, p, members1, members2, out));
  PetscCall(RnEventEnd(RN_EV_STATS));
  PetscFunctionReturn(0);
}

/* ---- distributed by columns: M x M products summed over the ranks ---- */

void RnStatsLayoutColumns(MPI_Comm comm, int M, PetscInt p, RnStatsLayout *layout, PetscInt *offset)
{
  int rank, size;
  MPI_Comm_rank(comm, &rank);
  MPI_Comm_size(comm, &size);
  layout->comm = comm, layout->M = M, layout->p = p;
  *offset = (PetscInt)((long long)p * rank / size);
  layout->nlocal = (PetscInt)((long long)p * (rank + 1) / size) - *offset;
}

#define STATS_CHUNK 256 /* columns centred at a time: the only copy is M x 256 */

/* The columns [c0, c0 + b) of X centred into Y (M x b, row-major), their
 * means into mean (b): nothing of the block's size besides the block. */
static void CentredChunk(int M, PetscInt nlocal, const double *X, PetscInt c0, int b, double *mean, double *Y)
{
  for (int t = 0; t < b; t++) mean[t] = 0;
  for (int i = 0; i < M; i++)
    for (int t = 0; t < b; t++) mean[t] += X[(size_t)i * nlocal + c0 + t];
  for (int t = 0; t < b; t++) mean[t] /= M;
  for (int i = 0; i < M; i++)
    for (int t = 0; t < b; t++) Y[(size_t)i * b + t] = X[(size_t)i * nlocal + c0 + t] - mean[t];
}

static PetscErrorCode StatsSpectrumGramBody(const RnStatsLayout *L, const double *local, double *mean_local, double *eigenvalues)
{
  const int M = L->M;
  double *G, *Gsum = NULL, *Y, *cm, wq, *work;
  int rank, lwork = -1, info;

  PetscFunctionBeginUser;
  PetscCheck(M >= 2, L->comm, PETSC_ERR_ARG_OUTOFRANGE, "a covariance needs at least 2 members (got %d)", M);
  PetscCallMPI(MPI_Comm_rank(L->comm, &rank));
  PetscCall(PetscCalloc3((size_t)M * M, &G, (size_t)M * STATS_CHUNK, &Y, STATS_CHUNK, &cm));
  /* G = Xc Xc^T / (M - 1), the upper triangle, a chunk of columns at a time */
  for (PetscInt c0 = 0; c0 < L->nlocal; c0 += STATS_CHUNK) {
    const int b = (int)PetscMin((PetscInt)STATS_CHUNK, L->nlocal - c0);
    CentredChunk(M, L->nlocal, local, c0, b, cm, Y);
    if (mean_local) PetscCall(PetscArraycpy(mean_local + c0, cm, b));
    cblas_dsyrk(CblasRowMajor, CblasUpper, CblasNoTrans, M, b, 1.0 / (M - 1), Y, b, 1.0, G, M);
  }
  if (rank == 0) PetscCall(PetscMalloc1((size_t)M * M, &Gsum));
  PetscCallMPI(MPI_Reduce(G, Gsum, M * M, MPI_DOUBLE, MPI_SUM, 0, L->comm));
  if (rank == 0) {
    /* row-major upper = column-major lower */
    dsyev_("N", "L", &M, Gsum, &M, eigenvalues, &wq, &lwork, &info);
    lwork = (int)wq + 1;
    PetscCall(PetscMalloc1(lwork, &work));
    dsyev_("N", "L", &M, Gsum, &M, eigenvalues, work, &lwork, &info);
    PetscCheck(info == 0, PETSC_COMM_SELF, PETSC_ERR_LIB, "dsyev failed: info = %d", info);
    PetscCall(PetscFree(work));
    for (int i = 0; i < M / 2; i++) {
      const double t = eigenvalues[i];
      eigenvalues[i] = eigenvalues[M - 1 - i], eigenvalues[M - 1 - i] = t;
    }
    /* rounding-level eigenvalues (the Gram matrix of centred members has rank <= M - 1) are 0 */
    for (int i = 0; i < M; i++)
      if (fabs(eigenvalues[i]) <= M * DBL_EPSILON * fabs(eigenvalues[0])) eigenvalues[i] = 0.0;
  }
  PetscCallMPI(MPI_Bcast(eigenvalues, M, MPI_DOUBLE, 0, L->comm));
  PetscCall(PetscFree(Gsum));
  PetscCall(PetscFree3(G, Y, cm));
  PetscFunctionReturn(0);
}

/* logged as statistics */
PetscErrorCode RnStatsSpectrumGram(const RnStatsLayout *L, const double *local, double *mean_local, double *eigenvalues)
{
  PetscFunctionBeginUser;
  PetscCall(RnEventBegin(RN_EV_STATS));
  PetscCall(StatsSpectrumGramBody(L, local, mean_local, eigenvalues));
  PetscCall(RnEventEnd(RN_EV_STATS));
  PetscFunctionReturn(0);
}

static PetscErrorCode StatsGaussianW2GramBody(const RnStatsLayout *L, const double *local1, const double *local2, RnGaussianW2 *out)
{
  const int M = L->M;
  double *m1, *m2, *Y1, *Y2, *B, *Bsum = NULL, part[3] = {0, 0, 0}, sum[3];
  int rank;

  PetscFunctionBeginUser;
  PetscCheck(M >= 2, L->comm, PETSC_ERR_ARG_OUTOFRANGE, "a covariance needs at least 2 members (got %d)", M);
  PetscCallMPI(MPI_Comm_rank(L->comm, &rank));
  PetscCall(PetscMalloc5(STATS_CHUNK, &m1, STATS_CHUNK, &m2, (size_t)M * STATS_CHUNK, &Y1, (size_t)M * STATS_CHUNK, &Y2, (size_t)M * M, &B));
  PetscCall(PetscArrayzero(B, (size_t)M * M));
  /* B = A1 A2^T (A_i the centred members / sqrt(M - 1)), the traces and
   * |m1 - m2|^2, a chunk at a time */
  for (PetscInt c0 = 0; c0 < L->nlocal; c0 += STATS_CHUNK) {
    const int b = (int)PetscMin((PetscInt)STATS_CHUNK, L->nlocal - c0);
    CentredChunk(M, L->nlocal, local1, c0, b, m1, Y1);
    CentredChunk(M, L->nlocal, local2, c0, b, m2, Y2);
    for (int t = 0; t < b; t++) part[0] += (m1[t] - m2[t]) * (m1[t] - m2[t]);
    for (size_t t = 0; t < (size_t)M * b; t++) part[1] += Y1[t] * Y1[t], part[2] += Y2[t] * Y2[t];
    cblas_dgemm(CblasRowMajor, CblasNoTrans, CblasTrans, M, M, b, 1.0 / (M - 1), Y1, b, Y2, b, 1.0, B, M);
  }
  part[1] /= M - 1, part[2] /= M - 1;
  if (rank == 0) PetscCall(PetscMalloc1((size_t)M * M, &Bsum));
  PetscCallMPI(MPI_Reduce(B, Bsum, M * M, MPI_DOUBLE, MPI_SUM, 0, L->comm));
  PetscCallMPI(MPI_Reduce(part, sum, 3, MPI_DOUBLE, MPI_SUM, 0, L->comm));
  memset(out, 0, sizeof *out);
  if (rank == 0) {
    out->mean_sq_dist = sum[0], out->trace1 = sum[1], out->trace2 = sum[2];
    PetscCall(NuclearNorm(M, Bsum, &out->cross));
  }
  PetscCallMPI(MPI_Bcast(out, 4, MPI_DOUBLE, 0, L->comm));
  out->w2 = sqrt(PetscMax(out->mean_sq_dist + out->trace1 + out->trace2 - 2.0 * out->cross, 0.0));
  PetscCall(PetscFree(Bsum));
  PetscCall(PetscFree5(m1, m2, Y1, Y2, B));
  PetscFunctionReturn(0);
}

/* logged as statistics */
PetscErrorCode RnStatsGaussianW2Gram(const RnStatsLayout *L, const double *local1, const double *local2, RnGaussianW2 *out)
{
  PetscFunctionBeginUser;
  PetscCall(RnEventBegin(RN_EV_STATS));
  PetscCall(StatsGaussianW2GramBody(L, local1, local2, out));
  PetscCall(RnEventEnd(RN_EV_STATS));
  PetscFunctionReturn(0);
}

static PetscErrorCode StatsGramBody(const RnStatsLayout *L, const double *local, double *gram)
{
  const int M = L->M;
  double *G;

  PetscFunctionBeginUser;
  PetscCall(PetscCalloc1((size_t)M * M, &G));
  /* the block itself is the operand: no copy */
  if (L->nlocal > 0) cblas_dsyrk(CblasRowMajor, CblasUpper, CblasNoTrans, M, (int)L->nlocal, 1.0, local, (int)L->nlocal, 0.0, G, M);
  PetscCallMPI(MPI_Allreduce(G, gram, M * M, MPI_DOUBLE, MPI_SUM, L->comm));
  for (int a = 0; a < M; a++)
    for (int b = 0; b < a; b++) gram[(size_t)a * M + b] = gram[(size_t)b * M + a];
  PetscCall(PetscFree(G));
  PetscFunctionReturn(0);
}

/* logged as statistics */
PetscErrorCode RnStatsGram(const RnStatsLayout *L, const double *local, double *gram)
{
  PetscFunctionBeginUser;
  PetscCall(RnEventBegin(RN_EV_STATS));
  PetscCall(StatsGramBody(L, local, gram));
  PetscCall(RnEventEnd(RN_EV_STATS));
  PetscFunctionReturn(0);
}
