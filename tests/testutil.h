/* testutil.h: the CUnit runner shared by all test programs (MPI-aware) and
 * small helpers for finite-difference checks and temporary files. */
#ifndef RESNODE_TESTUTIL_H
#define RESNODE_TESTUTIL_H

#include <CUnit/CUnit.h>
#include <petscsys.h>

extern int rn_test_rank, rn_test_size;

/* Initialises PETSc/MPI, calls register_suites (which adds CUnit suites), runs
 * them on every rank, and returns non-zero if any test failed on any rank. */
int RnTestMain(int argc, char **argv, void (*register_suites)(void));

/* Adds a suite with the given tests (NULL-terminated pairs name, fn). */
void RnTestAddSuite(const char *suite, ...);

/* |a - b| / max(|a|, |b|, floor) */
double RnTestRelErr(double a, double b, double floor);

/* Central finite differences of a scalar function f at x (n entries) against
 * grad, in the directions of all coordinates (n <= max_coords) or of
 * max_coords random coordinates otherwise; returns the largest relative error
 * max_i |fd_i - g_i| / max(|g|_inf, floor). x is restored. */
typedef double (*RnTestScalarFn)(const double *x, void *ctx);
double RnTestGradCheck(RnTestScalarFn f, void *ctx, int n, double *x, const double *grad, double h, int max_coords);

/* A fresh directory under /tmp (same name on every rank: rank 0 creates it
 * and broadcasts the name). */
void RnTestTempDir(const char *prefix, char *path, size_t len);

/* Runs a shell command, returns its exit status (rank-local). */
int RnTestSystem(const char *cmd);
/* Reads a whole text file into a malloc'ed string (NULL if missing). */
char *RnTestReadFile(const char *path);

/* Assert that an expression returning PetscErrorCode succeeds. */
#define RN_TEST_OK(call) CU_ASSERT_EQUAL_FATAL((call), 0)

#endif
