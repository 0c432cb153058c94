/* stats.h: statistics of an ensemble's parameter vectors, distributed with
 * ScaLAPACK: the covariance over members (p x p, formed by pdsyrk from the
 * centred member matrix), its spectrum (pdsyev, eigenvalues only), and the Gaussian
 * Wasserstein-2 distance between two laws
 *   W2^2 = |m1 - m2|^2 + tr C1 + tr C2 - 2 tr (C1^1/2 C2 C1^1/2)^1/2.
 * Every rank of comm takes part; the member matrices (M x p, row-major) are
 * given on rank 0 of comm only. */
#ifndef RESNODE_STATS_H
#define RESNODE_STATS_H

#include "resnode/core/core.h"

typedef struct {
  double mean_sq_dist; /* |m1 - m2|^2 */
  double trace1, trace2;
  double cross;        /* tr (C1^1/2 C2 C1^1/2)^1/2 */
  double w2;           /* the distance itself (not squared) */
} RnGaussianW2;

/* mean (p) and the eigenvalues of the covariance (p, descending) on every rank. */
PetscErrorCode RnStatsCovarianceSpectrum(MPI_Comm comm, int M, int p, const double *members, double *mean, double *eigenvalues);
PetscErrorCode RnStatsGaussianW2(MPI_Comm comm, int M, int p, const double *members1, const double *members2, RnGaussianW2 *out);

/* The same without gathering: the member matrices distributed by columns
 * (parameters), rank r of comm holding columns [offset, offset + nlocal) of
 * the M x p matrix as an M x nlocal row-major block. Every product is M x M:
 * the covariance's non-zero eigenvalues are those of the Gram matrix
 * Xc Xc^T / (M - 1), and the W2 cross term is the nuclear norm of A1 A2^T,
 * both sums of local products (BLAS on chunks of 256 centred columns, the
 * only copy, their means taken chunk by chunk) reduced over the ranks.
 * Memory per rank: the blocks given plus M x (M + 512) + 512 doubles; work
 * M^2 p / ranks. Use it where p exceeds M (the
 * p x p path above costs p^3 and holds p^2 / ranks); the ensemble switches
 * at p > 2048. */
typedef struct {
  MPI_Comm comm;
  int M;
  PetscInt p, nlocal;
} RnStatsLayout;
/* Columns split evenly: this rank's count in layout->nlocal, its first column in *offset. */
void RnStatsLayoutColumns(MPI_Comm comm, int M, PetscInt p, RnStatsLayout *layout, PetscInt *offset);
/* The M leading eigenvalues of the covariance (descending; the rest of its
 * p are 0) on every rank, and the local column means into mean_local
 * (nlocal; may be NULL). */
PetscErrorCode RnStatsSpectrumGram(const RnStatsLayout *layout, const double *local, double *mean_local, double *eigenvalues);
PetscErrorCode RnStatsGaussianW2Gram(const RnStatsLayout *layout, const double *local1, const double *local2, RnGaussianW2 *out);
/* The Gram matrix X X^T (M x M, not centred, both triangles) on every rank:
 * the inner products of the members' rows (the ensemble's differences). */
PetscErrorCode RnStatsGram(const RnStatsLayout *layout, const double *local, double *gram);

#endif
