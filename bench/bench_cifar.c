/* bench_cifar: training throughput (images/s, forward + backward + Adam) of
 * the CIFAR-10 network for the tied ResNet with N = 8 and the neural ODE with
 * rk4 and 4 steps, at widths C = 16 and 64, batch 128, on random images.
 *
 *   mpirun -n 1 build/bench/bench_cifar [steps]
 *   mpirun -n 2 build/bench/bench_cifar [steps]      (the batch split over 2 ranks)
 *
 * Prints the median time per step, images/s and the GFLOP/s of the
 * convolutions (multiply-adds counted as 2 flops), and the dgemm rate of this
 * machine for reference. */
#include "resnode/experiments/cifar.h"
#include "resnode/nn/optim.h"
#include "resnode/core/rng.h"

#include <cblas.h>
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

static PetscErrorCode Run(MPI_Comm comm, int rank, int size, int C, RnFlowKind kind, int steps)
{
  const int B = 128, lo = B * rank / size, hi = B * (rank + 1) / size, b = hi - lo;
  RnCifarModel m;
  RnOdeOptions ode;
  RnOptim optim;
  RnOptimOptions oo;
  double *theta, *grad, *gsum, *times, field_evals = 0;

  PetscFunctionBeginUser;
  RnOdeOptionsDefault(&ode);
  strcpy(ode.solver, "rk4");
  ode.steps = 4;
  PetscCall(RnCifarModelCreate(comm, C, kind, 8, &ode, &m));
  PetscCall(RnCifarModelReserve(&m, b));
  PetscCall(PetscMalloc4(m.n, &theta, m.n, &grad, m.n, &gsum, steps, &times));
  PetscCall(RnNetInit(m.stem, 1, 0, 0, theta));
  PetscCall(RnFlowInit(m.flow, 1, 0, 100, theta + m.nstem));
  PetscCall(RnNetInit(m.head, 1, 0, 200, theta + m.nstem + m.nblock));
  RnOptimOptionsDefault(&oo);
  PetscCall(RnOptimCreate(m.n, &oo, &optim));
  RnRandNormal(3, RN_STREAM_TEST, 0, (uint32_t)rank, (size_t)b * 3072, m.x);
  for (int i = 0; i < b; i++) m.labels[i] = (lo + i) % 10;
  for (int s = 0; s <= steps; s++) {
    double l, t0;
    int c;
    PetscCallMPI(MPI_Barrier(comm));
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
  qsort(times, steps, sizeof(double), CompareDouble);
  {
    const double t = times[steps / 2], flops = B * (field_evals * FieldFlops(C) + 3.0 * OuterFlops(C));
    if (rank == 0)
      printf("C = %3d  %-22s ranks %d  median %7.3f s/step  %7.1f images/s  %6.1f GFLOP/s (conv)\n", C, kind == RN_FLOW_ODE ? "ODE rk4, 4 steps" : "tied ResNet N = 8", size, t,
             B / t, flops / t * 1e-9);
  }
  PetscCall(RnOptimDestroy(&optim));
  PetscCall(PetscFree4(theta, grad, gsum, times));
  PetscCall(RnCifarModelDestroy(&m));
  PetscFunctionReturn(0);
}

/* The block PyTorch is measured on (bench/torch_reference.py conv): 8 Euler
 * steps of x += conv(relu(conv(x))) / 8 at 16 channels on 32 x 32, global
 * pooling and a linear head, batch 128, Adam. */
static PetscErrorCode RunBlock(MPI_Comm comm, int rank, int size, int steps)
{
  const int B = 128, lo = B * rank / size, hi = B * (rank + 1) / size, b = hi - lo;
  RnShape img = {16, 32, 32};
  RnNet field, head;
  RnLayer l;
  RnFlow flow;
  RnOptim optim;
  RnOptimOptions oo;
  double T = 1.0, *theta, *grad, *gsum, *x, *xT, *dxT, *logits, *dlogits, *tape, *times, loss;
  int labels[128];
  PetscInt n;

  PetscFunctionBeginUser;
  PetscCall(RnNetCreate(img, &field));
  PetscCall(RnLayerCreateConv2d(img, 16, 3, 1, 1, &l));
  PetscCall(RnNetAdd(field, l));
  PetscCall(RnLayerCreateActivation(img, RN_ACT_RELU, &l));
  PetscCall(RnNetAdd(field, l));
  PetscCall(RnLayerCreateConv2d(img, 16, 3, 1, 1, &l));
  PetscCall(RnNetAdd(field, l));
  PetscCall(RnNetSetUp(field));
  PetscCall(RnNetCreate(img, &head));
  PetscCall(RnLayerCreateGlobalAvgPool(img, &l));
  PetscCall(RnNetAdd(head, l));
  PetscCall(RnLayerCreateDense(head->out, 10, &l));
  PetscCall(RnNetAdd(head, l));
  PetscCall(RnNetSetUp(head));
  PetscCall(RnFlowCreate(comm, field, RN_FLOW_RESNET, 8, 1, &T, &flow));
  n = flow->nparams + head->nparams;
  PetscCall(PetscMalloc5(n, &theta, n, &grad, n, &gsum, (size_t)b * 16384, &x, (size_t)b * 16384, &xT));
  PetscCall(PetscMalloc5((size_t)b * 16384, &dxT, (size_t)b * 10, &logits, (size_t)b * 10, &dlogits, (size_t)b * head->tape_per_sample + 1, &tape, steps, &times));
  PetscCall(RnFlowInit(flow, 1, 0, 0, theta));
  PetscCall(RnNetInit(head, 1, 0, 10, theta + flow->nparams));
  RnRandNormal(3, RN_STREAM_TEST, 1, (uint32_t)rank, (size_t)b * 16384, x);
  for (int i = 0; i < b; i++) labels[i] = (lo + i) % 10;
  RnOptimOptionsDefault(&oo);
  PetscCall(RnOptimCreate(n, &oo, &optim));
  for (int s = 0; s <= steps; s++) {
    double t0;
    int c;
    PetscCallMPI(MPI_Barrier(comm));
    t0 = MPI_Wtime();
    PetscCall(PetscArrayzero(grad, n));
    PetscCall(RnFlowForward(flow, b, theta, x, xT));
    PetscCall(RnNetForward(head, b, theta + flow->nparams, xT, logits, tape));
    PetscCall(RnLossSoftmaxCrossEntropy(b, 10, logits, labels, &loss, dlogits, &c));
    for (int i = 0; i < b * 10; i++) dlogits[i] /= B;
    PetscCall(RnNetBackward(head, b, theta + flow->nparams, xT, dlogits, dxT, grad + flow->nparams, tape));
    PetscCall(RnFlowBackward(flow, theta, dxT, NULL, grad));
    PetscCallMPI(MPI_Allreduce(grad, gsum, (int)n, MPI_DOUBLE, MPI_SUM, comm));
    PetscCall(RnOptimStep(optim, 1.0, theta, gsum));
    if (s > 0) times[s - 1] = MPI_Wtime() - t0;
  }
  qsort(times, steps, sizeof(double), CompareDouble);
  if (rank == 0)
    printf("block as in torch_reference.py (16 ch, 32x32, euler 8, batch 128) ranks %d: median %.3f s/step, %.1f images/s, %.1f GFLOP/s\n", size, times[steps / 2],
           B / times[steps / 2], B * 24.0 * 2.0 * (2.0 * 16 * 16 * 9 * 1024) / times[steps / 2] * 1e-9);
  PetscCall(RnOptimDestroy(&optim));
  PetscCall(PetscFree5(theta, grad, gsum, x, xT));
  PetscCall(PetscFree5(dxT, logits, dlogits, tape, times));
  PetscCall(RnFlowDestroy(&flow));
  PetscCall(RnNetDestroy(&field));
  PetscCall(RnNetDestroy(&head));
  PetscFunctionReturn(0);
}

int main(int argc, char **argv)
{
  int steps = argc > 1 && argv[1][0] != '-' ? atoi(argv[1]) : 5, rank, size;

  PetscCall(PetscInitialize(&argc, &argv, NULL, NULL));
  MPI_Comm_rank(PETSC_COMM_WORLD, &rank);
  MPI_Comm_size(PETSC_COMM_WORLD, &size);
  if (size > 1 && !getenv("OPENBLAS_NUM_THREADS")) openblas_set_num_threads(1);
  if (rank == 0) {
    /* what dgemm reaches here, for scale */
    const int n = 1024;
    double *a = malloc(sizeof(double) * n * n), *c = malloc(sizeof(double) * n * n), t0;
    for (int i = 0; i < n * n; i++) a[i] = 1.0 / (1 + i % 7);
    cblas_dgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, n, n, n, 1.0, a, n, a, n, 0.0, c, n);
    t0 = MPI_Wtime();
    cblas_dgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, n, n, n, 1.0, a, n, a, n, 0.0, c, n);
    printf("dgemm 1024^3 on rank 0 (%d BLAS thread(s)): %.1f GFLOP/s\n", openblas_get_num_threads(), 2.0 * n * n * n / (MPI_Wtime() - t0) * 1e-9);
    free(a), free(c);
  }
  PetscCall(RunBlock(PETSC_COMM_WORLD, rank, size, steps));
  for (int C = 16; C <= 64; C *= 4) {
    PetscCall(Run(PETSC_COMM_WORLD, rank, size, C, RN_FLOW_RESNET, steps));
    PetscCall(Run(PETSC_COMM_WORLD, rank, size, C, RN_FLOW_ODE, steps));
  }
  PetscCall(PetscFinalize());
  return 0;
}
