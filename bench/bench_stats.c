/* bench_stats: time of the ScaLAPACK ensemble statistics (covariance spectrum
 * and Gaussian W2 of two laws) for p = 2000 and 8000 parameters, M = 64
 * members.   mpirun -n 1|2 build/bench/bench_stats [p ...] */
#include "resnode/core/rng.h"
#include "resnode/ensemble/stats.h"

#include <stdlib.h>

int main(int argc, char **argv)
{
  int rank, size, ps[8] = {2000, 8000}, np = 2;
  const int M = 64;

  PetscCall(PetscInitialize(&argc, &argv, NULL, NULL));
  MPI_Comm_rank(PETSC_COMM_WORLD, &rank);
  MPI_Comm_size(PETSC_COMM_WORLD, &size);
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
