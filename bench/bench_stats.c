/* bench_stats: time of the ensemble statistics (covariance spectrum and
 * Gaussian W2 of two laws), M = 64 members.
 *   mpirun -n 1|2 build/bench/bench_stats [p ...]        the p x p ScaLAPACK path (p = 2000, 8000)
 *   mpirun -n 1|2 build/bench/bench_stats gram [p ...]   the distributed Gram path (p = 1.3 M: the
 *                                                        C = 256 network), with peak memory per rank */
#include "resnode/core/rng.h"
#include "resnode/ensemble/stats.h"

#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>

static double PeakMB(void)
{
  struct rusage ru;
  getrusage(RUSAGE_SELF, &ru);
  return ru.ru_maxrss / 1024.0; /* kB on Linux */
}

/* Member matrices distributed by columns, generated on their ranks: nothing
 * of size M x p exists anywhere. */
static PetscErrorCode BenchGram(int M, long long p, int rank, int size)
{
  RnStatsLayout L;
  PetscInt off;
  double *a, *b, eig[64], *gram, t0, t_spec, t_w2, t_gram, base, peak, max_peak, max_base;
  RnGaussianW2 w;

  PetscFunctionBeginUser;
  base = PeakMB();
  RnStatsLayoutColumns(PETSC_COMM_WORLD, M, (PetscInt)p, &L, &off);
  a = malloc(sizeof(double) * M * L.nlocal), b = malloc(sizeof(double) * M * L.nlocal);
  for (int i = 0; i < M; i++) {
    RnRandNormal(1, RN_STREAM_TEST, 10 + (uint32_t)rank, (uint32_t)i, (size_t)L.nlocal, a + (size_t)i * L.nlocal);
    RnRandNormal(1, RN_STREAM_TEST, 1000 + (uint32_t)rank, (uint32_t)i, (size_t)L.nlocal, b + (size_t)i * L.nlocal);
  }
  MPI_Barrier(PETSC_COMM_WORLD);
  t0 = MPI_Wtime();
  PetscCall(RnStatsSpectrumGram(&L, a, NULL, eig));
  t_spec = MPI_Wtime() - t0;
  MPI_Barrier(PETSC_COMM_WORLD);
  t0 = MPI_Wtime();
  PetscCall(RnStatsGaussianW2Gram(&L, a, b, &w));
  t_w2 = MPI_Wtime() - t0;
  /* what the ensemble forms at every record and depth: the Gram matrix of the differences */
  gram = malloc(sizeof(double) * M * M);
  MPI_Barrier(PETSC_COMM_WORLD);
  t0 = MPI_Wtime();
  PetscCall(RnStatsGram(&L, a, gram));
  t_gram = MPI_Wtime() - t0;
  free(gram);
  peak = PeakMB();
  MPI_Reduce(&peak, &max_peak, 1, MPI_DOUBLE, MPI_MAX, 0, PETSC_COMM_WORLD);
  MPI_Reduce(&base, &max_base, 1, MPI_DOUBLE, MPI_MAX, 0, PETSC_COMM_WORLD);
  if (rank == 0)
    printf("gram: p = %lld, M = %d, %d rank(s): spectrum %.2f s, Gaussian W2 %.2f s (lambda_1 %.3f, W2 %.3f), a record's Gram of differences %.2f s; peak RSS per rank %.0f MB (%.0f MB before the data), "
           "2 x M x p / ranks doubles = %.0f MB\n",
           p, M, size, t_spec, t_w2, eig[0], w.w2, t_gram, max_peak, max_base, 2.0 * M * (double)p / size * 8 / 1048576.0);
  free(a), free(b);
  PetscFunctionReturn(0);
}

int main(int argc, char **argv)
{
  int rank, size, ps[8] = {2000, 8000}, np = 2;
  const int M = 64;

  PetscCall(PetscInitialize(&argc, &argv, NULL, NULL));
  MPI_Comm_rank(PETSC_COMM_WORLD, &rank);
  MPI_Comm_size(PETSC_COMM_WORLD, &size);
  if (argc > 1 && !strcmp(argv[1], "gram")) {
    long long p = argc > 2 ? atoll(argv[2]) : 1300000;
    PetscCall(BenchGram(M, p, rank, size));
    PetscCall(PetscFinalize());
    return 0;
  }
  if (argc > 1 && argv[1][0] != '-')
    for (np = 0; np < argc - 1 && np < 8 && argv[np + 1][0] != '-'; np++) ps[np] = atoi(argv[np + 1]);
  for (int k = 0; k < np; k++) {
    const int p = ps[k];
    double *a = NULL, *b = NULL, *mean = malloc(sizeof(double) * p), *eig = malloc(sizeof(double) * p), t0, t_spec, t_w2;
    RnGaussianW2 w;
    if (rank == 0) {
      a = malloc(sizeof(double) * M * p), b = malloc(sizeof(double) * M * p);
      RnRandNormal(1, RN_STREAM_TEST, 1, 0, (size_t)M * p, a);
      RnRandNormal(1, RN_STREAM_TEST, 2, 0, (size_t)M * p, b);
    }
    MPI_Barrier(PETSC_COMM_WORLD);
    t0 = MPI_Wtime();
    PetscCall(RnStatsCovarianceSpectrum(PETSC_COMM_WORLD, M, p, a, mean, eig));
    t_spec = MPI_Wtime() - t0;
    MPI_Barrier(PETSC_COMM_WORLD);
    t0 = MPI_Wtime();
    PetscCall(RnStatsGaussianW2(PETSC_COMM_WORLD, M, p, a, b, &w));
    t_w2 = MPI_Wtime() - t0;
    if (rank == 0) printf("p = %5d, M = %d, %d rank(s): covariance + spectrum %.2f s, Gaussian W2 (traces + M x M cross term) %.2f s, W2 = %.4f\n", p, M, size, t_spec, t_w2, w.w2);
    free(a), free(b), free(mean), free(eig);
  }
  PetscCall(PetscFinalize());
  return 0;
}
