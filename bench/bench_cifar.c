/* bench_cifar: training throughput (images/s, forward + backward + Adam) of
 * the paper's CIFAR-10 network (cifar.h) for the tied ResNet with N = 8 and
 * the neural ODE with rk4 and 4 steps, on random images, for each precision
 * and width asked for:
 *
 *   mpirun -n 1 build/bench/bench_cifar [steps] [precisions] [widths] [batch] [resnet|ode|both]
 *   mpirun -n 2 build/bench/bench_cifar 3 float32,bfloat16 256,64 128
 *   mpirun -n 1 build/bench/bench_cifar 2 float32,float32:direct 256 32 resnet
 *
 * (a precision with ":direct" keeps float32 convolutions direct, not Winograd;
 * see RnConvAlgorithm)
 * (defaults: 3 steps, float32,bfloat16,float64, widths 64, batch 128; the
 * batch is split over the ranks). One thread a rank unless OMP_NUM_THREADS
 * says otherwise. Prints the CPU, then per case the median time per step,
 * images/s and the GFLOP/s of the convolutions (multiply-adds counted as 2
 * flops), and where the timed steps' time went (rank 0's own time of each
 * phase: profile.h). bench/torch_reference.py cifar runs the same network in
 * PyTorch. */
#include "resnode/core/profile.h"
#include "resnode/models/cifar.h"
#include "resnode/nn/optim.h"
#include "resnode/core/rng.h"

#include <stdlib.h>
#include <string.h>

static int CompareDouble(const void *a, const void *b)
{
  double x = *(const double *)a, y = *(const double *)b;
  return (x > y) - (x < y);
}

/* flops of one field evaluation (two 3x3 convolutions C -> C on 16 x 16) and of stem + head, per image */
static double FieldFlops(int C) { return 2.0 * (2.0 * C * C * 9 * 256); }
static double OuterFlops(int C) { return 2.0 * 3 * C * 9 * 256 + 2.0 * C * 64 * 9 * 16 + 2.0 * 64 * 10; }

static PetscErrorCode Run(MPI_Comm comm, int rank, int size, int C, RnFlowKind kind, RnPrecision precision, RnConvAlgorithm alg, int B, int steps)
{
  const int lo = B * rank / size, hi = B * (rank + 1) / size, b = hi - lo;
  RnCifarModel m;
  RnOdeOptions ode;
  RnOptim optim;
  RnOptimOptions oo;
  double *theta, *grad, *gsum, *times, field_evals = 0;
  RnProfileMark timed;
  char shares[256];

  PetscFunctionBeginUser;
  RnOdeOptionsDefault(&ode);
  strcpy(ode.solver, "rk4");
  ode.steps = 4;
  PetscCall(RnCifarModelCreate(comm, C, RN_ACT_RELU, kind, 8, &ode, precision, &m));
  PetscCall(RnCifarModelSetConvAlgorithm(&m, alg));
  PetscCall(RnCifarModelReserve(&m, b));
  PetscCall(PetscMalloc4(m.n, &theta, m.n, &grad, m.n, &gsum, steps, &times));
  PetscCall(RnCifarModelInit(&m, 1, 0, theta));
  RnOptimOptionsDefault(&oo);
  PetscCall(RnOptimCreate(m.n, &oo, &optim));
  RnRandNormal(3, RN_STREAM_TEST, 0, (uint32_t)rank, (size_t)b * 3072, m.x);
  for (int i = 0; i < b; i++) m.labels[i] = (lo + i) % 10;
  for (int s = 0; s <= steps; s++) {
    double l, t0;
    int c;
    PetscCallMPI(MPI_Barrier(comm));
    if (s == 1) RnProfileMarkNow(&timed);
    t0 = MPI_Wtime();
    PetscCall(PetscArrayzero(grad, m.n));
    PetscCall(RnCifarModelPass(&m, b, B, theta, grad, &l, &c));
    PetscCallMPI(MPI_Allreduce(grad, gsum, (int)m.n, MPI_DOUBLE, MPI_SUM, comm));
    PetscCall(RnOptimStep(optim, 1.0, theta, gsum));
    if (s > 0) times[s - 1] = MPI_Wtime() - t0; /* the first step warms up */
    if (s == 1 && kind == RN_FLOW_ODE) {
      RnOdeStats st;
      PetscCall(RnOdeGetStats(m.flow->ode, &st));
      /* RHS evaluations (forward and Jacobian set-up) cost one field pass, a VJP two */
      field_evals = (double)(st.rhs_forward + st.rhs_backward) + 2.0 * st.vjp;
    }
  }
  if (kind != RN_FLOW_ODE) field_evals = 3.0 * 8; /* 8 forward, 8 VJPs */
  RnProfileShares(&timed, shares, sizeof shares);
  qsort(times, steps, sizeof(double), CompareDouble);
  {
    const double t = times[steps / 2], flops = B * (field_evals * FieldFlops(C) + 3.0 * OuterFlops(C));
    char name[32];
    PetscCall(PetscSNPrintf(name, sizeof name, "%s%s", RnPrecisionNames[precision], alg == RN_CONV_DIRECT ? ":direct" : ""));
    if (rank == 0)
      printf("C = %3d  %-15s %-17s batch %d ranks %d  median %8.3f s/step  %8.1f images/s  %7.1f GFLOP/s (conv)\n", C, name,
             kind == RN_FLOW_ODE ? "ODE rk4, 4 steps" : "tied ResNet N = 8", B, size, t, B / t, flops / t * 1e-9);
    if (rank == 0) printf("         where the time went (rank 0, own time): %s\n", shares);
  }
  PetscCall(RnOptimDestroy(&optim));
  PetscCall(PetscFree4(theta, grad, gsum, times));
  PetscCall(RnCifarModelDestroy(&m));
  PetscFunctionReturn(0);
}

int main(int argc, char **argv)
{
  const int steps = argc > 1 ? atoi(argv[1]) : 3, B = argc > 4 ? atoi(argv[4]) : 128;
  char precisions[256] = "float32,bfloat16,float64", widths[256] = "64", cpu[256], isa[128], *save = NULL;
  int rank, size;

  if (argc > 2) snprintf(precisions, sizeof precisions, "%s", argv[2]);
  if (argc > 3) snprintf(widths, sizeof widths, "%s", argv[3]);
  PetscCall(PetscInitialize(NULL, NULL, NULL, NULL));
  MPI_Comm_rank(PETSC_COMM_WORLD, &rank);
  MPI_Comm_size(PETSC_COMM_WORLD, &size);
  RnThreadsSetUp(getenv("OMP_NUM_THREADS") ? size : 2); /* one thread a rank by default */
  PetscCall(RnProfileRegister());
  RnCpuDescribe(cpu, sizeof cpu);
  RnDnnlDescribe(isa, sizeof isa);
  if (rank == 0) printf("CPU: %s; %s; %d thread(s) a rank\n", cpu, isa, RnThreadsPerRank());
  for (char *w = strtok_r(widths, ",", &save); w; w = strtok_r(NULL, ",", &save)) {
    char list[256], *save2 = NULL;
    snprintf(list, sizeof list, "%s", precisions);
    for (char *p = strtok_r(list, ",", &save2); p; p = strtok_r(NULL, ",", &save2)) {
      int k = 0;
      char *suffix = strchr(p, ':');
      const RnConvAlgorithm alg = suffix && !strcmp(suffix, ":direct") ? RN_CONV_DIRECT : RN_CONV_AUTO;
      if (suffix) *suffix = 0;
      while (RnPrecisionNames[k] && strcmp(RnPrecisionNames[k], p)) k++;
      if (!RnPrecisionNames[k]) {
        if (rank == 0) fprintf(stderr, "bench_cifar: unknown precision %s\n", p);
        continue;
      }
      if (k == RN_PRECISION_BFLOAT16) {
        PetscBool has;
        PetscCall(RnDnnlHasBfloat16(&has));
        if (!has) {
          if (rank == 0) printf("C = %s bfloat16: skipped (oneDNN has no bfloat16 convolutions on this CPU)\n", w);
          continue;
        }
      }
      if (argc <= 5 || strcmp(argv[5], "ode")) PetscCall(Run(PETSC_COMM_WORLD, rank, size, atoi(w), RN_FLOW_RESNET, (RnPrecision)k, alg, B, steps));
      if (argc <= 5 || strcmp(argv[5], "resnet")) PetscCall(Run(PETSC_COMM_WORLD, rank, size, atoi(w), RN_FLOW_ODE, (RnPrecision)k, alg, B, steps));
    }
  }
  PetscCall(PetscFinalize());
  return 0;
}
