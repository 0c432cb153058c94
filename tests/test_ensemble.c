/* The SGD process on the linear test field f_theta(x) = theta * x (diagonal),
 * where the ResNet map is (1 + theta T / N)^N and the limit exp(theta T):
 * trajectories against the closed form, the fitted rate of the weak error in
 * N, and the split of a member's batch over the ranks of a group. */
#include "testutil.h"

#include <math.h>
#include <string.h>

#include "resnode/ensemble/ensemble.h"
#include "resnode/core/rng.h"

#define D 2
#define SAMPLES 64

static void Options(RnEnsembleOptions *o, double *x, double *y)
{
  memset(o, 0, sizeof *o);
  o->dim = D;
  o->samples = SAMPLES;
  RnRandUniform(5, RN_STREAM_DATA, 0, 0, SAMPLES * D, x);
  for (int i = 0; i < SAMPLES * D; i++) x[i] = 2 * x[i] - 1, y[i] = 1.5 * x[i];
  o->x = x, o->y = y;
  o->T = 1.0;
  o->cap.kind = RN_CAP_NONE;
  o->gamma = 1e-2;
  o->power = 2;
  o->eta = 0.05;
  o->steps = 60;
  o->batch = 8;
  o->sigma = 0.05;
  o->record_every = 10;
  o->members = 16;
  RnOdeOptionsDefault(&o->ode);
  strcpy(o->ode.solver, "dopri5");
  o->ode.adaptive = PETSC_TRUE;
  o->ode.rtol = 1e-12;
  o->ode.atol = 1e-14;
}

static RnNet LinearField(void)
{
  RnNet net;
  RnLayer l;
  RnShape in = {D, 1, 1};
  RnNetCreate(in, &net);
  RnLayerCreateScale(in, &l);
  RnNetAdd(net, l);
  RnNetSetUp(net);
  return net;
}

/* The same SGD with the closed-form flow map phi(theta) = exp(theta T) (N = 0)
 * or (1 + theta T / N)^N, and the same batches and noise. */
static void ClosedForm(const RnEnsembleOptions *o, int member, int N, const double *theta0, double *theta_rec)
{
  double th[D];
  int rec = 0;
  memcpy(th, theta0, sizeof th);
  for (int j = 0; j <= o->steps; j++) {
    if (j % o->record_every == 0 || j == o->steps) memcpy(theta_rec + D * rec++, th, sizeof th);
    if (j == o->steps) break;
    double g[D] = {0}, xi[D];
    for (int i = 0; i < o->batch; i++) {
      int idx = (int)(RnRandUniformAt(1, RN_STREAM_ORDER, (uint32_t)member, (uint32_t)j, (uint32_t)i) * o->samples);
      for (int k = 0; k < D; k++) {
        double phi, dphi, xk = o->x[idx * D + k];
        if (N == 0) phi = exp(th[k] * o->T), dphi = o->T * phi;
        else phi = pow(1 + th[k] * o->T / N, N), dphi = o->T * pow(1 + th[k] * o->T / N, N - 1);
        g[k] += 2 * (phi * xk - o->y[idx * D + k]) * dphi * xk / o->batch;
      }
    }
    RnRandNormal(1, RN_STREAM_NOISE, (uint32_t)member, (uint32_t)j, D, xi);
    for (int k = 0; k < D; k++) th[k] += -o->eta * (g[k] + o->gamma * th[k]) + sqrt(o->eta) * o->sigma * xi[k];
  }
}

static void test_closed_form(void)
{
  double x[SAMPLES * D], y[SAMPLES * D];
  RnEnsembleOptions o;
  RnNet field = LinearField();
  RnEnsemble ens;
  Options(&o, x, y);
  RN_TEST_OK(RnEnsembleCreate(PETSC_COMM_SELF, 1, field, &o, &ens));
  const int nrec = RnEnsembleRecordCount(ens), depths[3] = {0, 4, 32};
  double risk[16], theta[16 * D], ref[16 * D], theta0[D];
  RnNetInit(field, 1, 3, 0, theta0);
  for (int c = 0; c < 3; c++) {
    double worst = 0;
    RN_TEST_OK(RnEnsembleRunMember(ens, 3, depths[c], risk, theta));
    ClosedForm(&o, 3, depths[c], theta0, ref);
    for (int i = 0; i < nrec * D; i++) worst = fmax(worst, fabs(theta[i] - ref[i]));
    if (rn_test_rank == 0) printf("\n    %s: max |theta - closed form| = %.2e ", depths[c] ? (depths[c] == 4 ? "ResNet N = 4" : "ResNet N = 32") : "ODE limit", worst);
    /* the ResNet is exact arithmetic of the same formula; the ODE is solved at rtol 1e-12 */
    CU_ASSERT(worst < (depths[c] ? 1e-12 : 1e-8));
  }
  RnEnsembleDestroy(&ens);
  RnNetDestroy(&field);
}

/* e_theta(N) = sup_t |mean_m (theta_t - theta_t^N)| falls like 1/N. */
static void test_rate(void)
{
  double x[SAMPLES * D], y[SAMPLES * D];
  RnEnsembleOptions o;
  RnNet field = LinearField();
  RnEnsemble ens;
  const int Ns[5] = {4, 8, 16, 32, 64};
  Options(&o, x, y);
  o.ode.rtol = 1e-10, o.ode.atol = 1e-12;
  RN_TEST_OK(RnEnsembleCreate(PETSC_COMM_WORLD, 1, field, &o, &ens));
  const int nrec = RnEnsembleRecordCount(ens), M = o.members;
  double *lim = malloc(sizeof(double) * M * nrec * D), *th = malloc(sizeof(double) * nrec * D), risk[16], e[5];
  for (int m = 0; m < M; m++) RN_TEST_OK(RnEnsembleRunMember(ens, m, 0, risk, lim + m * nrec * D));
  for (int c = 0; c < 5; c++) {
    double mean[16 * D] = {0};
    for (int m = 0; m < M; m++) {
      RN_TEST_OK(RnEnsembleRunMember(ens, m, Ns[c], risk, th));
      for (int i = 0; i < nrec * D; i++) mean[i] += (lim[m * nrec * D + i] - th[i]) / M;
    }
    e[c] = 0;
    for (int r = 0; r < nrec; r++) e[c] = fmax(e[c], hypot(mean[r * D], mean[r * D + 1]));
  }
  double sx = 0, sy = 0, sxx = 0, sxy = 0;
  for (int c = 0; c < 5; c++) {
    double lx = log(Ns[c]), ly = log(e[c]);
    sx += lx, sy += ly, sxx += lx * lx, sxy += lx * ly;
  }
  double alpha = -(5 * sxy - sx * sy) / (5 * sxx - sx * sx);
  if (rn_test_rank == 0) printf("\n    weak error e_theta: N = 4 %.3e ... N = 64 %.3e, fitted rate %.4f ", e[0], e[4], alpha);
  CU_ASSERT(alpha >= 0.9 && alpha <= 1.1);
  free(lim), free(th);
  RnEnsembleDestroy(&ens);
  RnNetDestroy(&field);
}

/* The D -> 6 -> D tanh field of the group tests. */
static RnNet SmallField(void)
{
  RnShape in = {D, 1, 1}, hid = {6, 1, 1};
  RnNet field;
  RnLayer l;
  RnNetCreate(in, &field);
  RnLayerCreateDense(in, 6, &l), RnNetAdd(field, l);
  RnLayerCreateActivation(hid, RN_ACT_TANH, &l), RnNetAdd(field, l);
  RnLayerCreateDense(hid, D, &l), RnNetAdd(field, l);
  RnNetSetUp(field);
  return field;
}

/* A member on one rank == the same member with its batch split over the group. */
static void test_split_group(void)
{
  double x[SAMPLES * D], y[SAMPLES * D];
  RnEnsembleOptions o;
  RnNet field = SmallField();
  RnEnsemble one, all;
  Options(&o, x, y);
  o.ode.rtol = 1e-6, o.ode.atol = 1e-8;
  o.cap.kind = RN_CAP_SMOOTH, o.cap.level = 2.0;
  RN_TEST_OK(RnEnsembleCreate(PETSC_COMM_SELF, 1, field, &o, &one));
  RN_TEST_OK(RnEnsembleCreate(PETSC_COMM_WORLD, 1, field, &o, &all));
  const int nrec = RnEnsembleRecordCount(one);
  const PetscInt p = RnEnsembleParamCount(one);
  double *a = malloc(sizeof(double) * nrec * p), *b = malloc(sizeof(double) * nrec * p), ra[16], rb[16];
  for (int N = 0; N <= 8; N += 8) {
    double worst = 0;
    RN_TEST_OK(RnEnsembleRunMember(one, 2, N, ra, a));
    RN_TEST_OK(RnEnsembleRunMember(all, 2, N, rb, b));
    for (int i = 0; i < nrec * p; i++) worst = fmax(worst, RnTestRelErr(a[i], b[i], 1e-2));
    for (int i = 0; i < nrec; i++) worst = fmax(worst, RnTestRelErr(ra[i], rb[i], 1e-2));
    if (rn_test_rank == 0) printf("\n    %s: %d ranks vs 1: %.1e ", N ? "ResNet N = 8" : "ODE limit", rn_test_size, worst);
    CU_ASSERT(worst <= 1e-12);
  }
  free(a), free(b);
  RnEnsembleDestroy(&one);
  RnEnsembleDestroy(&all);
  RnNetDestroy(&field);
}

/* A member advanced in uneven chunks, across a change of depth in between
 * (the kept flow is rebuilt) and from a copy of its state (a checkpoint),
 * equals the member run in one go, bitwise. */
static void test_member_chunks(void)
{
  double x[SAMPLES * D], y[SAMPLES * D];
  RnEnsembleOptions o;
  RnNet field = SmallField();
  RnEnsemble ens;
  Options(&o, x, y);
  o.steps = 23, o.record_every = 5; /* the last record (23) off the grid */
  RN_TEST_OK(RnEnsembleCreate(PETSC_COMM_WORLD, 1, field, &o, &ens));
  const int nrec = RnEnsembleRecordCount(ens);
  const PetscInt p = RnEnsembleParamCount(ens);
  const size_t len = RnEnsembleMemberStateLength(ens);
  double *whole = malloc(sizeof(double) * nrec * p), risk[16], *state = malloc(sizeof(double) * len), *copy = malloc(sizeof(double) * len), *other = malloc(sizeof(double) * len);
  CU_ASSERT_EQUAL(nrec, 6);
  for (int N = 0; N <= 4; N += 4) {
    /* chunks that cross the record steps 0, 5, ..., 20, 23 */
    const int chunks[] = {1, 4, 5, 7, 100};
    double *chunked = malloc(sizeof(double) * nrec * p), chunked_risk[16];
    int calls = 0, rec = 0, same;
    RN_TEST_OK(RnEnsembleRunMember(ens, 3, N, risk, whole));
    RN_TEST_OK(RnEnsembleMemberBegin(ens, 3, N, state));
    for (int c = 0; rec < nrec && c < 5; c++, calls++) {
      int left = chunks[c];
      while (left >= 0 && rec < nrec) {
        /* take the record when its step is reached, as the experiment does */
        const int to_record = RnEnsembleRecordStep(&o, rec) - RnEnsembleMemberSteps(ens, state);
        if (to_record > left) {
          RN_TEST_OK(RnEnsembleMemberAdvance(ens, state, left));
          break;
        }
        RN_TEST_OK(RnEnsembleMemberAdvance(ens, state, to_record));
        left -= to_record;
        RN_TEST_OK(RnEnsembleMemberRecord(ens, state, &chunked_risk[rec]));
        memcpy(chunked + (size_t)rec * p, RnEnsembleMemberTheta(ens, state), sizeof(double) * p);
        rec++;
        if (left == 0) break;
      }
      /* a checkpoint: continue from a copy, after another depth used the flow */
      memcpy(copy, state, sizeof(double) * len);
      RN_TEST_OK(RnEnsembleMemberBegin(ens, 1, N ? 0 : 4, other));
      RN_TEST_OK(RnEnsembleMemberAdvance(ens, other, 2));
      memcpy(state, copy, sizeof(double) * len);
    }
    CU_ASSERT_EQUAL(rec, nrec);
    CU_ASSERT_EQUAL(calls, 5); /* 1 + 4 + 5 + 7 = 17 steps, then the last 6 */
    CU_ASSERT_EQUAL(RnEnsembleMemberSteps(ens, state), 23);
    /* never past sgd.steps */
    RN_TEST_OK(RnEnsembleMemberAdvance(ens, state, 5));
    CU_ASSERT_EQUAL(RnEnsembleMemberSteps(ens, state), 23);
    same = !memcmp(chunked_risk, risk, sizeof(double) * nrec) && !memcmp(chunked, whole, sizeof(double) * nrec * p);
    if (rn_test_rank == 0) printf("\n    %s: chunked run %s the whole run ", N ? "ResNet N = 4" : "ODE limit", same ? "bitwise equals" : "DIFFERS from");
    CU_ASSERT(same);
    free(chunked);
  }
  free(whole), free(state), free(copy), free(other);
  RnEnsembleDestroy(&ens);
  RnNetDestroy(&field);
}

static void Register(void)
{
  RnTestAddSuite("ensemble", "closed_form", test_closed_form, "rate", test_rate, "split_group", test_split_group, "member_chunks", test_member_chunks, NULL);
}

int main(int argc, char **argv) { return RnTestMain(argc, argv, Register); }
