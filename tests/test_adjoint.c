/* Checkpointed adjoints (uniform, binomial) give the gradient of the
 * full-trajectory discrete adjoint; their stored states do not grow with the
 * number of steps; backsolve converges to the discrete adjoint as the
 * tolerance tightens. The batch is split over the ranks of PETSC_COMM_WORLD. */
#include "testutil.h"

#include <math.h>
#include <string.h>

#include "resnode/flow/flow.h"
#include "resnode/core/rng.h"

#define DIM 2
#define TOTAL 6
#define NOBS 4

static const double tobs[NOBS] = {0.0, 0.3, 0.65, 1.0};

static RnNet MakeField(void)
{
  RnNet net;
  RnLayer l;
  RnShape in = {DIM, 1, 1}, hid = {10, 1, 1};
  RnNetCreate(in, &net);
  RnLayerCreateActivation(in, RN_ACT_CUBE, &l), RnNetAdd(net, l);
  RnLayerCreateDense(in, 10, &l), RnNetAdd(net, l);
  RnLayerCreateActivation(hid, RN_ACT_TANH, &l), RnNetAdd(net, l);
  RnLayerCreateDense(hid, DIM, &l), RnNetAdd(net, l);
  RnNetSetUp(net);
  return net;
}

/* Gradient (theta summed over ranks, x0 of this rank's samples) for the
 * given options, computed passes times on one RnOde (the last is returned);
 * returns the stats of the last pass. */
static RnOdeStats GradientPasses(RnNet field, const RnOdeOptions *opt, int passes, double *gtheta, double *gx0)
{
  RnOde ode;
  const int lo = TOTAL * rn_test_rank / rn_test_size, hi = TOTAL * (rn_test_rank + 1) / rn_test_size, b = hi - lo;
  double x0[TOTAL * DIM], xobs[NOBS * TOTAL * DIM], target[NOBS * TOTAL * DIM], dxobs[NOBS * TOTAL * DIM], loss;
  double *theta = malloc(sizeof(double) * field->nparams), *g = calloc(field->nparams, sizeof(double));
  RnOdeStats stats;
  RnNetInit(field, 11, 0, 0, theta);
  for (int s = 0; s < b; s++)
    for (int d = 0; d < DIM; d++) x0[s * DIM + d] = RnRandUniformAt(5, RN_STREAM_TEST, 1, lo + s, d) - 0.5;
  for (int i = 0; i < NOBS; i++)
    for (int s = 0; s < b; s++)
      for (int d = 0; d < DIM; d++) target[(i * b + s) * DIM + d] = RnRandUniformAt(5, RN_STREAM_TEST, 2 + i, lo + s, d) - 0.5;
  RN_TEST_OK(RnOdeCreate(PETSC_COMM_WORLD, field, NOBS, tobs, &ode));
  RN_TEST_OK(RnOdeSetOptions(ode, opt));
  for (int pass = 0; pass < passes; pass++) {
    memset(g, 0, sizeof(double) * field->nparams);
    RN_TEST_OK(RnOdeForward(ode, b, theta, x0, xobs));
    RnLossSquaredError(1, NOBS * b * DIM, xobs, target, &loss, dxobs);
    RN_TEST_OK(RnOdeBackward(ode, dxobs, gx0, g));
  }
  RN_TEST_OK(RnOdeGetStats(ode, &stats));
  MPI_Allreduce(g, gtheta, (int)field->nparams, MPI_DOUBLE, MPI_SUM, PETSC_COMM_WORLD);
  RnOdeDestroy(&ode);
  free(theta), free(g);
  return stats;
}

static RnOdeStats Gradient(RnNet field, const RnOdeOptions *opt, double *gtheta, double *gx0) { return GradientPasses(field, opt, 1, gtheta, gx0); }

static double MaxRelDiff(int n, const double *a, const double *b)
{
  double amax = 0, worst = 0;
  for (int i = 0; i < n; i++) amax = fmax(amax, fabs(a[i]));
  for (int i = 0; i < n; i++) worst = fmax(worst, fabs(a[i] - b[i]) / amax);
  return worst;
}

static void CompareSchedules(const char *solver, PetscBool adaptive, int steps)
{
  RnNet field = MakeField();
  RnOdeOptions opt;
  const int np = (int)field->nparams;
  double *gfull = malloc(sizeof(double) * np), *gck = malloc(sizeof(double) * np), xf[TOTAL * DIM], xc[TOTAL * DIM];
  const int nloc = (TOTAL * (rn_test_rank + 1) / rn_test_size - TOTAL * rn_test_rank / rn_test_size) * DIM;
  RnOdeOptionsDefault(&opt);
  strcpy(opt.solver, solver);
  opt.adaptive = adaptive;
  opt.steps = steps;
  opt.rtol = 1e-6;
  opt.atol = 1e-8;
  RnOdeStats full = Gradient(field, &opt, gfull, xf);
  const RnAdjointMode modes[2] = {RN_ADJOINT_UNIFORM, RN_ADJOINT_BINOMIAL};
  const int budgets[3] = {1, 3, 7};
  for (int m = 0; m < 2; m++)
    for (int k = 0; k < 3; k++) {
      opt.adjoint = modes[m];
      opt.checkpoints = budgets[k];
      RnOdeStats st = Gradient(field, &opt, gck, xc);
      double d = fmax(MaxRelDiff(np, gfull, gck), nloc ? MaxRelDiff(nloc, xf, xc) : 0.0);
      if (rn_test_rank == 0)
        printf("\n    %s%s %d steps, %s(%d): rel. diff to full %.2e, stored states %d (full %d), RHS fwd+bwd %ld (full %ld) ", solver, adaptive ? " adaptive" : "",
               full.steps, RnAdjointModeNames[modes[m]], budgets[k], d, st.stored_states, full.stored_states, st.rhs_forward + st.rhs_backward,
               full.rhs_forward + full.rhs_backward);
      CU_ASSERT(d <= 1e-12);
      CU_ASSERT_EQUAL(st.steps, full.steps);
    }
  free(gfull), free(gck);
  RnNetDestroy(&field);
}

static void test_checkpointed_rk4(void) { CompareSchedules("rk4", PETSC_FALSE, 40); }
static void test_checkpointed_dopri5(void) { CompareSchedules("dopri5", PETSC_TRUE, 0); }

/* The binomial schedule's stored states stay flat from 10 to 2000 steps. */
static void test_binomial_memory_flat(void)
{
  RnNet field = MakeField();
  RnOdeOptions opt;
  const int np = (int)field->nparams;
  double *g = malloc(sizeof(double) * np), x[TOTAL * DIM];
  int stored[3], nsteps[3] = {10, 200, 2000};
  RnOdeOptionsDefault(&opt);
  strcpy(opt.solver, "rk4");
  opt.adjoint = RN_ADJOINT_BINOMIAL;
  opt.checkpoints = 6;
  for (int i = 0; i < 3; i++) {
    opt.steps = nsteps[i];
    RnOdeStats st = Gradient(field, &opt, g, x);
    stored[i] = st.stored_states;
    if (rn_test_rank == 0) printf("\n    binomial(6), %d steps: %d states stored, %ld RHS evaluations ", nsteps[i], stored[i], st.rhs_forward + st.rhs_backward);
    CU_ASSERT(stored[i] <= opt.checkpoints + 3);
  }
  CU_ASSERT(stored[2] <= stored[0] + 1);
  /* and the full trajectory does grow */
  opt.adjoint = RN_ADJOINT_FULL;
  RnOdeStats st = Gradient(field, &opt, g, x);
  CU_ASSERT(st.stored_states >= 2000);
  free(g);
  RnNetDestroy(&field);
}

/* Backsolve converges to the discrete adjoint as the steps shrink. */
static void test_backsolve_converges(void)
{
  RnNet field = MakeField();
  RnOdeOptions opt;
  const int np = (int)field->nparams;
  double *gd = malloc(sizeof(double) * np), *gb = malloc(sizeof(double) * np), x[TOTAL * DIM], xb[TOTAL * DIM];
  double err[3];
  const int steps[3] = {5, 20, 80};
  RnOdeOptionsDefault(&opt);
  strcpy(opt.solver, "rk4");
  for (int i = 0; i < 3; i++) {
    opt.steps = steps[i];
    opt.adjoint = RN_ADJOINT_FULL;
    Gradient(field, &opt, gd, x);
    opt.adjoint = RN_ADJOINT_BACKSOLVE;
    Gradient(field, &opt, gb, xb);
    err[i] = MaxRelDiff(np, gd, gb);
    if (rn_test_rank == 0) printf("\n    backsolve vs discrete adjoint, rk4 with %d steps: %.2e ", steps[i], err[i]);
  }
  /* fourth order: the error falls by about 4^4 per refinement */
  CU_ASSERT(err[1] < err[0] / 30);
  CU_ASSERT(err[2] < err[1] / 30);
  CU_ASSERT(err[0] > 0.0);
  free(gd), free(gb);
  RnNetDestroy(&field);
}

/* Passes repeated on one RnOde give the first pass's gradient, also on a
 * fixed grid that observation times split (0.65 is not a multiple of 1/12:
 * steps of different sizes), and the RnOde is destroyed cleanly after them
 * (this crashed in TSDestroy once the memory trajectory was kept across
 * passes). */
static void test_repeated_passes(void)
{
  RnNet field = MakeField();
  RnOdeOptions opt;
  const int np = (int)field->nparams, steps[2] = {12, 20}; /* 20: a uniform grid (0.3 and 0.65 on it) */
  const int nloc = (TOTAL * (rn_test_rank + 1) / rn_test_size - TOTAL * rn_test_rank / rn_test_size) * DIM;
  const RnAdjointMode modes[3] = {RN_ADJOINT_FULL, RN_ADJOINT_UNIFORM, RN_ADJOINT_BINOMIAL};
  double *g1 = malloc(sizeof(double) * np), *g3 = malloc(sizeof(double) * np), x1[TOTAL * DIM], x3[TOTAL * DIM];
  RnOdeOptionsDefault(&opt);
  strcpy(opt.solver, "rk4");
  opt.checkpoints = 2;
  for (int s = 0; s < 2; s++)
    for (int m = 0; m < 3; m++) {
      opt.steps = steps[s];
      opt.adjoint = modes[m];
      RnOdeStats st1 = GradientPasses(field, &opt, 1, g1, x1);
      RnOdeStats st3 = GradientPasses(field, &opt, 3, g3, x3);
      double d = fmax(MaxRelDiff(np, g1, g3), nloc ? MaxRelDiff(nloc, x1, x3) : 0.0);
      if (rn_test_rank == 0) printf("\n    rk4 %d steps (%d on the grid), %s: pass 3 vs pass 1 %.1e ", steps[s], st3.steps, RnAdjointModeNames[modes[m]], d);
      CU_ASSERT(d == 0.0);
      CU_ASSERT_EQUAL(st1.steps, st3.steps);
    }
  free(g1), free(g3);
  RnNetDestroy(&field);
}

/* The tape cache (the forward evaluations' tapes kept for the adjoint's
 * linearisations) changes no bit of the gradient and saves the backward
 * pass's forward evaluations: every adjoint mode, fixed and adaptive steps. */
static void test_tape_cache(void)
{
  RnNet field = MakeField();
  RnOdeOptions opt;
  const int np = (int)field->nparams;
  const int nloc = (TOTAL * (rn_test_rank + 1) / rn_test_size - TOTAL * rn_test_rank / rn_test_size) * DIM;
  const RnAdjointMode modes[3] = {RN_ADJOINT_FULL, RN_ADJOINT_UNIFORM, RN_ADJOINT_BINOMIAL};
  double *gc = malloc(sizeof(double) * np), *gn = malloc(sizeof(double) * np), xc[TOTAL * DIM], xn[TOTAL * DIM];
  for (int adaptive = 0; adaptive < 2; adaptive++)
    for (int m = 0; m < 3; m++) {
      RnOdeOptionsDefault(&opt);
      strcpy(opt.solver, adaptive ? "dopri5" : "rk4");
      opt.adaptive = (PetscBool)adaptive;
      opt.steps = 30;
      opt.rtol = 1e-6, opt.atol = 1e-8;
      opt.adjoint = modes[m];
      opt.checkpoints = 3;
      RnOdeStats with = GradientPasses(field, &opt, 2, gc, xc);
      opt.tape_cache_mb = 0;
      RnOdeStats without = GradientPasses(field, &opt, 2, gn, xn);
      double d = fmax(MaxRelDiff(np, gn, gc), nloc ? MaxRelDiff(nloc, xn, xc) : 0.0);
      if (rn_test_rank == 0)
        printf("\n    %s %s: cached vs recomputed tapes %.1e; backward RHS evaluations %ld vs %ld ", opt.solver, RnAdjointModeNames[modes[m]], d, with.rhs_backward, without.rhs_backward);
      CU_ASSERT(d == 0.0);
      CU_ASSERT(with.rhs_backward < without.rhs_backward);
      if (modes[m] == RN_ADJOINT_FULL && !adaptive) CU_ASSERT_EQUAL(with.rhs_backward, 0); /* every stage kept */
    }
  free(gc), free(gn);
  RnNetDestroy(&field);
}

static void Register(void)
{
  RnTestAddSuite("adjoint", "checkpointed_rk4", test_checkpointed_rk4, "checkpointed_dopri5", test_checkpointed_dopri5, "binomial_memory_flat", test_binomial_memory_flat,
                 "backsolve_converges", test_backsolve_converges, "repeated_passes", test_repeated_passes, "tape_cache", test_tape_cache, NULL);
}

int main(int argc, char **argv) { return RnTestMain(argc, argv, Register); }
