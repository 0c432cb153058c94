/* testutil.c: MPI-aware CUnit runner and finite-difference helpers. */
#include "testutil.h"

#include <CUnit/Basic.h>
#include <math.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "resnode/core/core.h"
#include "resnode/core/rng.h"

int rn_test_rank = 0, rn_test_size = 1;

void RnTestAddSuite(const char *suite_name, ...)
{
  va_list ap;
  CU_pSuite suite = CU_add_suite(suite_name, NULL, NULL);
  if (!suite) {
    fprintf(stderr, "cannot add suite %s\n", suite_name);
    exit(1);
  }
  va_start(ap, suite_name);
  for (;;) {
    const char *name = va_arg(ap, const char *);
    if (!name) break;
    CU_TestFunc fn = va_arg(ap, CU_TestFunc);
    if (!CU_add_test(suite, name, fn)) {
      fprintf(stderr, "cannot add test %s\n", name);
      exit(1);
    }
  }
  va_end(ap);
}

int RnTestMain(int argc, char **argv, void (*register_suites)(void))
{
  unsigned local_failures, failures = 0, local_run, run = 0;
  int status;

  if (PetscInitialize(&argc, &argv, NULL, NULL)) return 1;
  if (RnErrorHandlerPush()) return 1;
  MPI_Comm_rank(PETSC_COMM_WORLD, &rn_test_rank);
  MPI_Comm_size(PETSC_COMM_WORLD, &rn_test_size);
  if (CU_initialize_registry() != CUE_SUCCESS) return 1;
  register_suites();
  CU_basic_set_mode(rn_test_rank == 0 ? CU_BRM_VERBOSE : CU_BRM_SILENT);
  CU_basic_run_tests();
  local_failures = CU_get_number_of_failures() + CU_get_number_of_tests_failed();
  local_run = CU_get_number_of_tests_run();
  if (local_failures && rn_test_rank != 0) {
    fprintf(stderr, "rank %d: %u assertion(s)/test(s) failed\n", rn_test_rank, local_failures);
    CU_basic_show_failures(CU_get_failure_list());
    fflush(stderr);
  }
  CU_cleanup_registry();
  MPI_Allreduce(&local_failures, &failures, 1, MPI_UNSIGNED, MPI_MAX, PETSC_COMM_WORLD);
  MPI_Allreduce(&local_run, &run, 1, MPI_UNSIGNED, MPI_MIN, PETSC_COMM_WORLD);
  if (rn_test_rank == 0) {
    printf("\n%s: %u tests run on %d rank(s), failures on the worst rank: %u\n", argv[0], run, rn_test_size, failures);
    fflush(stdout);
  }
  status = (failures == 0 && run > 0) ? 0 : 1;
  PetscFinalize();
  return status;
}

double RnTestRelErr(double a, double b, double floor)
{
  double scale = fmax(fmax(fabs(a), fabs(b)), floor);
  return fabs(a - b) / scale;
}

double RnTestGradCheck(RnTestScalarFn f, void *ctx, int n, double *x, const double *grad, double h, int max_coords)
{
  double gmax = 0.0, worst = 0.0;
  int ncheck = n <= max_coords ? n : max_coords;

  for (int i = 0; i < n; i++) gmax = fmax(gmax, fabs(grad[i]));
  if (gmax < 1e-12) gmax = 1e-12;
  for (int c = 0; c < ncheck; c++) {
    int i = (n <= max_coords) ? c : (int)(RnRandUniformAt(12345, RN_STREAM_TEST, 99, 0, (uint32_t)c) * n);
    double xi = x[i], fp, fm, fd, err;
    x[i] = xi + h;
    fp = f(x, ctx);
    x[i] = xi - h;
    fm = f(x, ctx);
    x[i] = xi;
    fd = (fp - fm) / (2.0 * h);
    err = fabs(fd - grad[i]) / gmax;
    if (err > worst) worst = err;
  }
  return worst;
}

void RnTestTempDir(const char *prefix, char *path, size_t len)
{
  if (rn_test_rank == 0) {
    snprintf(path, len, "/tmp/%s-XXXXXX", prefix);
    if (!mkdtemp(path)) path[0] = 0;
  }
  MPI_Bcast(path, (int)len, MPI_CHAR, 0, PETSC_COMM_WORLD);
}

int RnTestSystem(const char *cmd)
{
  int status = system(cmd);
  if (status == -1) return -1;
  return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}

char *RnTestReadFile(const char *path)
{
  FILE *fp = fopen(path, "rb");
  long size;
  char *text;
  if (!fp) return NULL;
  fseek(fp, 0, SEEK_END);
  size = ftell(fp);
  fseek(fp, 0, SEEK_SET);
  text = malloc((size_t)size + 1);
  if (text && fread(text, 1, (size_t)size, fp) != (size_t)size) {
    free(text);
    text = NULL;
  }
  if (text) text[size] = 0;
  fclose(fp);
  return text;
}
