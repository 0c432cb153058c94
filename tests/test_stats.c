/* The ScaLAPACK covariance spectrum and Gaussian W2 against a serial LAPACK
 * computation of the full p x p matrices. */
#include "testutil.h"

#include <math.h>
#include <string.h>

#include "resnode/core/rng.h"
#include "resnode/ensemble/stats.h"

extern void dsyev_(const char *jobz, const char *uplo, const int *n, double *a, const int *lda, double *w, double *work, const int *lwork, int *info);

/* Symmetric eigen-decomposition: w ascending, A overwritten by eigenvectors (column-major). */
static void Eig(int n, double *A, double *w)
{
  int lwork = -1, info;
  double wq;
  dsyev_("V", "U", &n, A, &n, w, &wq, &lwork, &info);
  lwork = (int)wq + 1;
  double *work = malloc(sizeof(double) * lwork);
  dsyev_("V", "U", &n, A, &n, w, work, &lwork, &info);
  CU_ASSERT_EQUAL(info, 0);
  free(work);
}

static void Covariance(int M, int p, const double *X, double *C, double *mean)
{
  for (int k = 0; k < p; k++) {
    mean[k] = 0;
    for (int i = 0; i < M; i++) mean[k] += X[i * p + k] / M;
  }
  for (int a = 0; a < p; a++)
    for (int b = 0; b < p; b++) {
      double s = 0;
      for (int i = 0; i < M; i++) s += (X[i * p + a] - mean[a]) * (X[i * p + b] - mean[b]);
      C[a * p + b] = s / (M - 1);
    }
}

/* The p x p route: C1^1/2 from eigenpairs, S = C1^1/2 C2 C1^1/2, tr S^1/2. */
static double SerialW2(int M, int p, const double *X1, const double *X2)
{
  double *C1 = malloc(sizeof(double) * p * p), *C2 = malloc(sizeof(double) * p * p), *R = malloc(sizeof(double) * p * p), *T = malloc(sizeof(double) * p * p);
  double *m1 = malloc(sizeof(double) * p), *m2 = malloc(sizeof(double) * p), *w = malloc(sizeof(double) * p);
  double d2 = 0, tr1 = 0, tr2 = 0, cross = 0;
  Covariance(M, p, X1, C1, m1);
  Covariance(M, p, X2, C2, m2);
  for (int k = 0; k < p; k++) d2 += (m1[k] - m2[k]) * (m1[k] - m2[k]), tr1 += C1[k * p + k], tr2 += C2[k * p + k];
  Eig(p, C1, w); /* C1 now holds eigenvectors V (column-major: V[k*p + i] = v_k(i)) */
  for (int i = 0; i < p; i++)
    for (int j = 0; j < p; j++) {
      double s = 0;
      for (int k = 0; k < p; k++) s += C1[k * p + i] * sqrt(fmax(w[k], 0)) * C1[k * p + j];
      R[i * p + j] = s;
    }
  for (int i = 0; i < p; i++) /* T = R C2 R */
    for (int j = 0; j < p; j++) {
      double s = 0;
      for (int k = 0; k < p; k++) s += R[i * p + k] * C2[k * p + j];
      C1[i * p + j] = s;
    }
  for (int i = 0; i < p; i++)
    for (int j = 0; j < p; j++) {
      double s = 0;
      for (int k = 0; k < p; k++) s += C1[i * p + k] * R[k * p + j];
      T[i * p + j] = s;
    }
  Eig(p, T, w);
  for (int k = 0; k < p; k++) cross += sqrt(fmax(w[k], 0));
  free(C1), free(C2), free(R), free(T), free(m1), free(m2), free(w);
  return sqrt(fmax(d2 + tr1 + tr2 - 2 * cross, 0));
}

static void Members(int M, int p, uint32_t key, double shift, double *X)
{
  /* correlated coordinates with different scales */
  RnRandNormal(21, RN_STREAM_TEST, key, 0, (size_t)M * p, X);
  for (int i = 0; i < M; i++)
    for (int k = 0; k < p; k++) X[i * p + k] = (1.0 + 0.1 * k) * X[i * p + k] + 0.5 * X[i * p] + shift;
}

static void CheckSpectrum(int M, int p)
{
  double *X = malloc(sizeof(double) * M * p), *C = malloc(sizeof(double) * p * p), *mean = malloc(sizeof(double) * p), *w = malloc(sizeof(double) * p);
  double *mean_d = malloc(sizeof(double) * p), *eig = malloc(sizeof(double) * p), worst = 0;
  Members(M, p, 1, 0.0, X);
  Covariance(M, p, X, C, mean);
  Eig(p, C, w);
  RN_TEST_OK(RnStatsCovarianceSpectrum(PETSC_COMM_WORLD, M, p, rn_test_rank == 0 ? X : NULL, mean_d, eig));
  for (int k = 0; k < p; k++) worst = fmax(worst, fabs(eig[k] - w[p - 1 - k]) / w[p - 1]);
  for (int k = 0; k < p; k++) worst = fmax(worst, fabs(mean[k] - mean_d[k]));
  if (rn_test_rank == 0) printf("\n    M %d p %d on %d ranks: spectrum vs LAPACK %.2e ", M, p, rn_test_size, worst);
  CU_ASSERT(worst < 1e-10);
  /* rank deficient: at most M - 1 nonzero eigenvalues; the others are
   * rounding noise that differs with the process grid, written as exact 0 */
  if (p > M) {
    int noise_nonzero = 0;
    for (int k = M - 1; k < p; k++) noise_nonzero += eig[k] != 0.0;
    CU_ASSERT_EQUAL(noise_nonzero, 0);
  }
  free(X), free(C), free(mean), free(w), free(mean_d), free(eig);
}

static void test_spectrum_small(void) { CheckSpectrum(20, 7); }
static void test_spectrum_medium(void) { CheckSpectrum(20, 50); }
static void test_spectrum_large(void) { CheckSpectrum(20, 130); }

static void test_w2_against_serial(void)
{
  /* the serial p x p route needs full-rank covariances (p < M): square roots
   * of rounding-level eigenvalues would spoil the reference otherwise */
  const int Ms[2] = {20, 90}, ps[2] = {7, 60};
  for (int c = 0; c < 2; c++) {
    const int p = ps[c], M = Ms[c];
    double *X1 = malloc(sizeof(double) * M * p), *X2 = malloc(sizeof(double) * M * p);
    RnGaussianW2 w;
    Members(M, p, 1, 0.0, X1);
    Members(M, p, 2, 0.3, X2);
    RN_TEST_OK(RnStatsGaussianW2(PETSC_COMM_WORLD, M, p, rn_test_rank == 0 ? X1 : NULL, rn_test_rank == 0 ? X2 : NULL, &w));
    double ref = SerialW2(M, p, X1, X2);
    if (rn_test_rank == 0) printf("\n    W2 p %d: %.12f vs serial %.12f ", p, w.w2, ref);
    /* W2^2 is a difference of traces: compare it on the traces' scale */
    CU_ASSERT(fabs(w.w2 * w.w2 - ref * ref) < 1e-10 * (w.trace1 + w.trace2));
    /* with itself: zero; against a shifted copy: the shift */
    RN_TEST_OK(RnStatsGaussianW2(PETSC_COMM_WORLD, M, p, rn_test_rank == 0 ? X1 : NULL, rn_test_rank == 0 ? X1 : NULL, &w));
    CU_ASSERT(w.w2 < 1e-6 * sqrt(w.trace1));
    for (int i = 0; i < M * p; i++) X2[i] = X1[i] + 0.25;
    RN_TEST_OK(RnStatsGaussianW2(PETSC_COMM_WORLD, M, p, rn_test_rank == 0 ? X1 : NULL, rn_test_rank == 0 ? X2 : NULL, &w));
    CU_ASSERT(fabs(w.w2 - 0.25 * sqrt((double)p)) < 1e-6);
    free(X1), free(X2);
  }
}

/* This rank's columns of an M x p row-major matrix, as the distributed path takes them. */
static double *LocalColumns(int M, int p, const double *X, RnStatsLayout *L)
{
  PetscInt off;
  RnStatsLayoutColumns(PETSC_COMM_WORLD, M, p, L, &off);
  double *local = malloc(sizeof(double) * M * (L->nlocal ? L->nlocal : 1));
  for (int i = 0; i < M; i++)
    for (PetscInt k = 0; k < L->nlocal; k++) local[i * L->nlocal + k] = X[i * p + off + k];
  return local;
}

/* The Gram (M x M) path against the p x p path: the spectrum, the means and
 * every W2 term to 1e-12, for p below, near and above M, on any rank count. */
static void test_gram_equals_pxp(void)
{
  const int M = 20, ps[4] = {7, 20, 50, 130};
  for (int c = 0; c < 4; c++) {
    const int p = ps[c];
    double *X1 = malloc(sizeof(double) * M * p), *X2 = malloc(sizeof(double) * M * p), *eig = malloc(sizeof(double) * p), *mean = malloc(sizeof(double) * p);
    double geig[20], *gmean, worst = 0;
    RnStatsLayout L;
    RnGaussianW2 a, b;
    PetscInt off;
    Members(M, p, 1, 0.0, X1);
    Members(M, p, 2, 0.3, X2);
    RN_TEST_OK(RnStatsCovarianceSpectrum(PETSC_COMM_WORLD, M, p, rn_test_rank == 0 ? X1 : NULL, mean, eig));
    double *l1 = LocalColumns(M, p, X1, &L), *l2 = LocalColumns(M, p, X2, &L);
    RnStatsLayoutColumns(PETSC_COMM_WORLD, M, p, &L, &off);
    gmean = malloc(sizeof(double) * (L.nlocal ? L.nlocal : 1));
    RN_TEST_OK(RnStatsSpectrumGram(&L, l1, gmean, geig));
    for (int k = 0; k < PetscMin(M, p); k++) worst = fmax(worst, fabs(geig[k] - eig[k]) / eig[0]);
    for (int k = p; k < M; k++) worst = fmax(worst, fabs(geig[k]) / eig[0]); /* rank <= p */
    for (PetscInt k = 0; k < L.nlocal; k++) worst = fmax(worst, fabs(gmean[k] - mean[off + k]));
    RN_TEST_OK(RnStatsGaussianW2(PETSC_COMM_WORLD, M, p, rn_test_rank == 0 ? X1 : NULL, rn_test_rank == 0 ? X2 : NULL, &a));
    RN_TEST_OK(RnStatsGaussianW2Gram(&L, l1, l2, &b));
    const double scale = a.trace1 + a.trace2;
    worst = fmax(worst, fabs(a.mean_sq_dist - b.mean_sq_dist) / fmax(a.mean_sq_dist, 1e-300));
    worst = fmax(worst, fabs(a.trace1 - b.trace1) / scale);
    worst = fmax(worst, fabs(a.trace2 - b.trace2) / scale);
    worst = fmax(worst, fabs(a.cross - b.cross) / scale);
    worst = fmax(worst, fabs(a.w2 * a.w2 - b.w2 * b.w2) / scale);
    if (rn_test_rank == 0) printf("\n    M %d p %d on %d ranks: Gram vs p x p %.1e ", M, p, rn_test_size, worst);
    CU_ASSERT(worst < 1e-12);
    free(X1), free(X2), free(eig), free(mean), free(l1), free(l2), free(gmean);
  }
}

static void Register(void)
{
  RnTestAddSuite("stats", "spectrum_small", test_spectrum_small, "spectrum_medium", test_spectrum_medium, "spectrum_large", test_spectrum_large, "w2_against_serial",
                 test_w2_against_serial, "gram_equals_pxp", test_gram_equals_pxp, NULL);
}

int main(int argc, char **argv) { return RnTestMain(argc, argv, Register); }
