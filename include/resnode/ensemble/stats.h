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

#endif
