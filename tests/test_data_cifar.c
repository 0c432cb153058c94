/* The CIFAR-10 reader, its input checks, the split, and augmentation. */
#include "testutil.h"

#include <math.h>
#include <string.h>
#include <unistd.h>

#include "resnode/data.h"

static char dir[256];
static char last_message[2048];

static PetscErrorCode Capture(MPI_Comm comm, int line, const char *fun, const char *file, PetscErrorCode n, PetscErrorType p, const char *mess, void *ctx)
{
  if (p == PETSC_ERROR_INITIAL) snprintf(last_message, sizeof last_message, "%s", mess);
  return n;
}

static void MakeData(const char *sub, int records)
{
  char path[300];
  snprintf(path, sizeof path, "%s/%s", dir, sub);
  if (rn_test_rank == 0) RN_TEST_OK(RnCifarWriteSynthetic(path, records, 3));
  MPI_Barrier(PETSC_COMM_WORLD);
}

static void test_read_back(void)
{
  char path[300];
  RnDataset ds;
  FILE *fp;
  unsigned char rec[RN_CIFAR_RECORD];
  MakeData("good", 20);
  snprintf(path, sizeof path, "%s/good", dir);
  RN_TEST_OK(RnCifarLoad(PETSC_COMM_WORLD, path, PETSC_TRUE, 0, &ds));
  CU_ASSERT_EQUAL(ds->n, 100);
  /* record 3 of data_batch_2 is sample 23: label and planes as in the file */
  snprintf(path, sizeof path, "%s/good/data_batch_2.bin", dir);
  fp = fopen(path, "rb");
  fseek(fp, 3L * RN_CIFAR_RECORD, SEEK_SET);
  CU_ASSERT_EQUAL(fread(rec, 1, RN_CIFAR_RECORD, fp), RN_CIFAR_RECORD);
  fclose(fp);
  CU_ASSERT_EQUAL(ds->labels[23], rec[0]);
  CU_ASSERT(memcmp(ds->pixels + 23 * 3072, rec + 1, 3072) == 0);
  RnDatasetDestroy(&ds);
  snprintf(path, sizeof path, "%s/good", dir);
  RN_TEST_OK(RnCifarLoad(PETSC_COMM_WORLD, path, PETSC_FALSE, 7, &ds));
  CU_ASSERT_EQUAL(ds->n, 7);
  RnDatasetDestroy(&ds);
}

static void ExpectLoadError(const char *sub, const char *words1, const char *words2)
{
  char path[300];
  RnDataset ds = NULL;
  PetscErrorCode err;
  snprintf(path, sizeof path, "%s/%s", dir, sub);
  last_message[0] = 0;
  PetscPushErrorHandler(Capture, NULL);
  err = RnCifarLoad(PETSC_COMM_WORLD, path, PETSC_TRUE, 0, &ds);
  PetscPopErrorHandler();
  if (rn_test_rank == 0) printf("\n    -> %s ", last_message);
  CU_ASSERT_EQUAL(err, RN_ERR_INPUT);
  CU_ASSERT_PTR_NOT_NULL(strstr(last_message, words1));
  CU_ASSERT_PTR_NOT_NULL(strstr(last_message, words2));
  RnDatasetDestroy(&ds);
}

static void test_bad_files(void)
{
  char path[300];
  MakeData("truncated", 5);
  MakeData("badlabel", 5);
  MakeData("missing", 5);
  MPI_Barrier(PETSC_COMM_WORLD);
  if (rn_test_rank == 0) {
    FILE *fp;
    snprintf(path, sizeof path, "%s/truncated/data_batch_3.bin", dir);
    RnTestSystem("true");
    CU_ASSERT_EQUAL(truncate(path, 3 * RN_CIFAR_RECORD + 100), 0);
    snprintf(path, sizeof path, "%s/badlabel/data_batch_4.bin", dir);
    fp = fopen(path, "r+b");
    fseek(fp, 2L * RN_CIFAR_RECORD, SEEK_SET);
    fputc(12, fp);
    fclose(fp);
    snprintf(path, sizeof path, "%s/missing/data_batch_5.bin", dir);
    remove(path);
  }
  MPI_Barrier(PETSC_COMM_WORLD);
  ExpectLoadError("truncated", "truncated/data_batch_3.bin", "3 whole records and 100 bytes over");
  ExpectLoadError("badlabel", "badlabel/data_batch_4.bin: record 2 has label 12", "0..9");
  ExpectLoadError("missing", "missing/data_batch_5.bin: missing", "test_batch.bin");
  ExpectLoadError("no-such-directory", "no-such-directory' does not exist", "scripts/get-cifar10");
}

static void test_split(void)
{
  char path[300];
  RnDataset all, train, val;
  int seen[100] = {0};
  snprintf(path, sizeof path, "%s/good", dir);
  RN_TEST_OK(RnCifarLoad(PETSC_COMM_WORLD, path, PETSC_TRUE, 0, &all));
  RN_TEST_OK(RnDatasetSplit(all, 30, 5, &train, &val));
  CU_ASSERT(train->n == 70 && val->n == 30);
  for (int i = 0; i < train->n; i++) seen[train->origin[i]]++;
  for (int i = 0; i < val->n; i++) seen[val->origin[i]]++;
  for (int i = 0; i < 100; i++) CU_ASSERT_EQUAL(seen[i], 1); /* a partition */
  for (int i = 0; i < val->n; i++) CU_ASSERT(memcmp(val->pixels + (size_t)i * 3072, all->pixels + (size_t)val->origin[i] * 3072, 3072) == 0);
  RnDatasetDestroy(&all), RnDatasetDestroy(&train), RnDatasetDestroy(&val);
}

/* a hand-made image: pixel value = row index; shifts and flips by hand */
static void test_augmentation(void)
{
  RnDataset ds;
  RnAugment aug = {2, PETSC_FALSE, PETSC_TRUE};
  double x[3072], x2[2 * 3072];
  int labels[2], idx[2] = {0, 1};
  int found_shift = 0;
  RN_TEST_OK(PetscNew(&ds));
  ds->n = 2, ds->channels = 3, ds->h = 32, ds->w = 32, ds->nclasses = 10;
  RN_TEST_OK(PetscMalloc3(2 * 3072, &ds->pixels, 2, &ds->labels, 2, &ds->origin));
  for (int s = 0; s < 2; s++) {
    ds->labels[s] = s, ds->origin[s] = s;
    for (int c = 0; c < 3; c++)
      for (int i = 0; i < 32; i++)
        for (int j = 0; j < 32; j++) ds->pixels[s * 3072 + c * 1024 + i * 32 + j] = (uint8_t)(i * 4 + (j < 16 ? 1 : 2));
  }
  /* no augmentation: pixel / 255 */
  RN_TEST_OK(RnDatasetGetBatch(ds, idx, 1, NULL, NULL, NULL, 1, 0, x, labels));
  CU_ASSERT_DOUBLE_EQUAL(x[5 * 32 + 20], (5 * 4 + 2) / 255.0, 1e-15);
  int flips = 0;
  for (uint32_t epoch = 0; epoch < 40; epoch++) {
    RN_TEST_OK(RnDatasetGetBatch(ds, idx, 1, NULL, NULL, &aug, 1, epoch, x, labels));
    /* output (i, j) shows input row i - dy (clamped: edge fill); row 10 is never clamped */
    const int v10 = (int)lround(x[10 * 32 + 0] * 255.0), dy = 10 - v10 / 4;
    CU_ASSERT(dy >= -2 && dy <= 2);
    found_shift |= dy != 0;
    /* every row: the clamped source row */
    for (int i = 0; i < 32; i++) CU_ASSERT_EQUAL((int)lround(x[i * 32 + 16] * 255.0) / 4, PetscMin(PetscMax(i - dy, 0), 31));
    /* column 0 shows a left-half pixel (1) unflipped, a right-half one (2) flipped */
    flips += (v10 % 4) == 2;
    /* the same sample, epoch and seed give the same result in another batch */
    RN_TEST_OK(RnDatasetGetBatch(ds, (int[]){1, 0}, 2, NULL, NULL, &aug, 1, epoch, x2, labels));
    CU_ASSERT(memcmp(x, x2 + 3072, sizeof x) == 0);
  }
  CU_ASSERT(flips > 5 && flips < 35);
  CU_ASSERT(found_shift);
  /* zero fill: shifted-in pixels are 0 */
  aug.zero_fill = PETSC_TRUE;
  aug.flip = PETSC_FALSE;
  int zeros = 0;
  for (uint32_t epoch = 0; epoch < 10; epoch++) {
    RN_TEST_OK(RnDatasetGetBatch(ds, idx, 1, NULL, NULL, &aug, 2, epoch, x, labels));
    for (int i = 0; i < 3072; i++) zeros += x[i] == 0.0;
  }
  CU_ASSERT(zeros > 0);
  RnDatasetDestroy(&ds);
}

static void Register(void)
{
  RnTestTempDir("rn-cifar", dir, sizeof dir);
  RnTestAddSuite("cifar_data", "read_back", test_read_back, "bad_files", test_bad_files, "split", test_split, "augmentation", test_augmentation, NULL);
}

int main(int argc, char **argv) { return RnTestMain(argc, argv, Register); }
