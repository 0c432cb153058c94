/* The CIFAR-10 reader (record layout, input checks on every rank), the split,
 * mean/std normalisation, and augmentation (hand-computed shifts and flips,
 * keyed by sample and epoch only). */
#include "testutil.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "resnode/data/data.h"
#include "resnode/core/checksum.h"
#include "resnode/core/rng.h"

static char dir[256];
static char last_message[2048];

static PetscErrorCode Capture(MPI_Comm comm, int line, const char *fun, const char *file, PetscErrorCode n, PetscErrorType p, const char *mess, void *ctx)
{
  if (p == PETSC_ERROR_INITIAL) snprintf(last_message, sizeof last_message, "%s", mess);
  return n;
}

static const char *const train_files[] = {"data_batch_1.bin", "data_batch_2.bin", "data_batch_3.bin", "data_batch_4.bin", "data_batch_5.bin", "test_batch.bin"};

/* the hand-written files: record r of file f */
static int KnownLabel(int f, int r) { return (3 * r + f) % 10; }
/* differs between channels at a pixel, and between (i, j) and (j, i) */
static int KnownPixel(int f, int r, int c, int i, int j) { return (1 + r + 11 * f + 50 * c + 3 * i + 7 * j) % 256; }

/* dir/sub with files in the documented layout: label, then R, G, B planes, each row-major */
static void WriteKnown(const char *sub, int records_train, int records_test)
{
  char path[400];
  if (rn_test_rank == 0) {
    snprintf(path, sizeof path, "%s/%s", dir, sub);
    CU_ASSERT_EQUAL_FATAL(mkdir(path, 0775), 0);
    for (int f = 0; f < 6; f++) {
      FILE *fp;
      const int nrec = f < 5 ? records_train : records_test;
      snprintf(path, sizeof path, "%s/%s/%s", dir, sub, train_files[f]);
      fp = fopen(path, "wb");
      CU_ASSERT_PTR_NOT_NULL_FATAL(fp);
      for (int r = 0; r < nrec; r++) {
        unsigned char rec[RN_CIFAR_RECORD];
        rec[0] = (unsigned char)KnownLabel(f, r);
        for (int c = 0; c < 3; c++)
          for (int i = 0; i < 32; i++)
            for (int j = 0; j < 32; j++) rec[1 + c * 1024 + i * 32 + j] = (unsigned char)KnownPixel(f, r, c, i, j);
        CU_ASSERT_EQUAL(fwrite(rec, 1, sizeof rec, fp), sizeof rec);
      }
      CU_ASSERT_EQUAL(fclose(fp), 0);
    }
  }
  MPI_Barrier(PETSC_COMM_WORLD);
}

static void MakeSynthetic(const char *sub, int records, uint64_t seed)
{
  char path[400];
  snprintf(path, sizeof path, "%s/%s", dir, sub);
  if (rn_test_rank == 0) RN_TEST_OK(RnCifarWriteSynthetic(path, records, seed));
  MPI_Barrier(PETSC_COMM_WORLD);
}

static void Path(char *path, size_t len, const char *sub) { snprintf(path, len, "%s/%s", dir, sub); }

/* ---------------------------------------------------------------- reader */

static void test_read_back(void)
{
  char path[400];
  RnDataset ds;
  double *x;
  int *idx, *lab;

  WriteKnown("known", 6, 4);
  Path(path, sizeof path, "known");
  RN_TEST_OK(RnCifarLoad(PETSC_COMM_WORLD, path, PETSC_TRUE, 0, &ds));
  CU_ASSERT_EQUAL_FATAL(ds->n, 30);
  CU_ASSERT(ds->channels == 3 && ds->h == 32 && ds->w == 32 && ds->nclasses == 10);
  /* file order, records in order; pixels as (c, h, w) */
  int bad_labels = 0, bad_pixels = 0;
  for (int s = 0; s < 30; s++) {
    const int f = s / 6, r = s % 6;
    bad_labels += ds->labels[s] != KnownLabel(f, r) || ds->origin[s] != s;
    for (int c = 0; c < 3; c++)
      for (int i = 0; i < 32; i++)
        for (int j = 0; j < 32; j++) bad_pixels += ds->pixels[(size_t)s * 3072 + c * 1024 + i * 32 + j] != KnownPixel(f, r, c, i, j);
  }
  CU_ASSERT_EQUAL(bad_labels, 0);
  CU_ASSERT_EQUAL(bad_pixels, 0);
  /* a batch without normalisation or augmentation: pixel / 255 at (c, h, w) */
  RN_TEST_OK(PetscMalloc3(3 * 3072, &x, 3, &idx, 3, &lab));
  idx[0] = 29, idx[1] = 0, idx[2] = 13;
  RN_TEST_OK(RnDatasetGetBatch(ds, idx, 3, NULL, NULL, NULL, 1, 0, x, lab));
  bad_pixels = 0;
  for (int b = 0; b < 3; b++) {
    CU_ASSERT_EQUAL(lab[b], KnownLabel(idx[b] / 6, idx[b] % 6));
    for (int c = 0; c < 3; c++)
      for (int i = 0; i < 32; i++)
        for (int j = 0; j < 32; j++) bad_pixels += x[b * 3072 + c * 1024 + i * 32 + j] != KnownPixel(idx[b] / 6, idx[b] % 6, c, i, j) / 255.0;
  }
  CU_ASSERT_EQUAL(bad_pixels, 0);
  RN_TEST_OK(PetscFree3(x, idx, lab));
  RN_TEST_OK(RnDatasetDestroy(&ds));
  CU_ASSERT_PTR_NULL(ds);

  /* the test batch */
  RN_TEST_OK(RnCifarLoad(PETSC_COMM_WORLD, path, PETSC_FALSE, 0, &ds));
  CU_ASSERT_EQUAL_FATAL(ds->n, 4);
  CU_ASSERT(ds->labels[3] == KnownLabel(5, 3) && ds->pixels[3 * 3072 + 2 * 1024 + 5 * 32 + 9] == KnownPixel(5, 3, 2, 5, 9));
  RN_TEST_OK(RnDatasetDestroy(&ds));

  /* max_records: the first records, across a file boundary */
  RN_TEST_OK(RnCifarLoad(PETSC_COMM_WORLD, path, PETSC_TRUE, 8, &ds));
  CU_ASSERT_EQUAL_FATAL(ds->n, 8);
  CU_ASSERT(ds->labels[7] == KnownLabel(1, 1) && ds->pixels[7 * 3072 + 1024 + 31 * 32 + 0] == KnownPixel(1, 1, 1, 31, 0));
  RN_TEST_OK(RnDatasetDestroy(&ds));
  RN_TEST_OK(RnCifarLoad(PETSC_COMM_WORLD, path, PETSC_TRUE, 1000, &ds));
  CU_ASSERT_EQUAL(ds->n, 30);
  RN_TEST_OK(RnDatasetDestroy(&ds));
}

/* The synthetic set: well-formed, deterministic, and learnable (a nearest
 * class-mean classifier on its training files gets its test file right). */
static void test_synthetic(void)
{
  char path[400], other[400];
  RnDataset train, test;
  double *cmean;
  int count[10] = {0}, hits = 0;

  MakeSynthetic("syn", 40, 11);
  Path(path, sizeof path, "syn");
  RN_TEST_OK(RnCifarLoad(PETSC_COMM_WORLD, path, PETSC_TRUE, 0, &train));
  RN_TEST_OK(RnCifarLoad(PETSC_COMM_WORLD, path, PETSC_FALSE, 0, &test));
  CU_ASSERT_EQUAL_FATAL(train->n, 200);
  CU_ASSERT_EQUAL_FATAL(test->n, 40);
  RN_TEST_OK(PetscCalloc1(10 * 3072, &cmean));
  for (int s = 0; s < train->n; s++) {
    count[train->labels[s]]++;
    for (int k = 0; k < 3072; k++) cmean[train->labels[s] * 3072 + k] += train->pixels[(size_t)s * 3072 + k];
  }
  for (int l = 0; l < 10; l++) {
    CU_ASSERT(count[l] > 0);
    for (int k = 0; k < 3072; k++) cmean[l * 3072 + k] /= PetscMax(count[l], 1);
  }
  for (int s = 0; s < test->n; s++) {
    int best = -1;
    double best_d = 1e300;
    for (int l = 0; l < 10; l++) {
      double d = 0;
      for (int k = 0; k < 3072; k++) d += PetscSqr(test->pixels[(size_t)s * 3072 + k] - cmean[l * 3072 + k]);
      if (d < best_d) best_d = d, best = l;
    }
    hits += best == test->labels[s];
  }
  if (rn_test_rank == 0) printf("\n    nearest class mean: %d / %d test images ", hits, test->n);
  CU_ASSERT(hits >= 36);
  RN_TEST_OK(PetscFree(cmean));
  RN_TEST_OK(RnDatasetDestroy(&train));
  RN_TEST_OK(RnDatasetDestroy(&test));

  /* the same seed writes the same bytes, another seed others */
  MakeSynthetic("syn-again", 40, 11);
  MakeSynthetic("syn-other", 40, 12);
  if (rn_test_rank == 0) {
    char cmd[1000];
    Path(other, sizeof other, "syn-again");
    snprintf(cmd, sizeof cmd, "cmp -s %s/data_batch_3.bin %s/data_batch_3.bin", path, other);
    CU_ASSERT_EQUAL(RnTestSystem(cmd), 0);
    Path(other, sizeof other, "syn-other");
    snprintf(cmd, sizeof cmd, "cmp -s %s/data_batch_3.bin %s/data_batch_3.bin", path, other);
    CU_ASSERT_NOT_EQUAL(RnTestSystem(cmd), 0);
  }
}

/* Loads dir/sub and expects RN_ERR_INPUT with a message holding each of the words. */
static void ExpectLoadError(const char *sub, PetscBool train, const char *word1, const char *word2, const char *word3)
{
  char path[400];
  RnDataset ds = (RnDataset)&ds; /* must come back NULL */
  PetscErrorCode err;

  Path(path, sizeof path, sub);
  last_message[0] = 0;
  RN_TEST_OK(PetscPushErrorHandler(Capture, NULL));
  err = RnCifarLoad(PETSC_COMM_WORLD, path, train, 0, &ds);
  RN_TEST_OK(PetscPopErrorHandler());
  if (rn_test_rank == 0) printf("\n    %s -> %s ", sub, last_message);
  CU_ASSERT_EQUAL(err, RN_ERR_INPUT);
  CU_ASSERT_PTR_NULL(ds);
  CU_ASSERT_PTR_NOT_NULL(strstr(last_message, word1));
  if (word2) CU_ASSERT_PTR_NOT_NULL(strstr(last_message, word2));
  if (word3) CU_ASSERT_PTR_NOT_NULL(strstr(last_message, word3));
}

static void Truncate(const char *sub, const char *file, long bytes)
{
  char path[400];
  snprintf(path, sizeof path, "%s/%s/%s", dir, sub, file);
  CU_ASSERT_EQUAL(truncate(path, bytes), 0);
}

static void SetByte(const char *sub, const char *file, long offset, int value)
{
  char path[400];
  FILE *fp;
  snprintf(path, sizeof path, "%s/%s/%s", dir, sub, file);
  fp = fopen(path, "r+b");
  CU_ASSERT_PTR_NOT_NULL_FATAL(fp);
  CU_ASSERT_EQUAL(fseek(fp, offset, SEEK_SET), 0);
  CU_ASSERT_EQUAL(fputc(value, fp), value);
  CU_ASSERT_EQUAL(fclose(fp), 0);
}

static void test_bad_files(void)
{
  char path[400];
  const char *subs[] = {"truncated", "short", "empty", "badlabel", "badtest", "missing", "notest", "parent"};
  for (int k = 0; k < 8; k++) MakeSynthetic(subs[k], 5, 3);
  if (rn_test_rank == 0) {
    Truncate("truncated", "data_batch_3.bin", 3 * RN_CIFAR_RECORD + 100);
    Truncate("short", "data_batch_2.bin", 2 * RN_CIFAR_RECORD); /* whole records, too few */
    Truncate("empty", "data_batch_1.bin", 0);
    SetByte("badlabel", "data_batch_4.bin", 2L * RN_CIFAR_RECORD, 12);
    SetByte("badtest", "test_batch.bin", 4L * RN_CIFAR_RECORD, 255);
    snprintf(path, sizeof path, "%s/missing/data_batch_5.bin", dir);
    CU_ASSERT_EQUAL(remove(path), 0);
    snprintf(path, sizeof path, "%s/notest/test_batch.bin", dir);
    CU_ASSERT_EQUAL(remove(path), 0);
    /* parent/cifar-10-batches-bin holds the files, parent is given */
    snprintf(path, sizeof path, "mv %s/parent %s/batches && mkdir %s/parent && mv %s/batches %s/parent/cifar-10-batches-bin", dir, dir, dir, dir, dir);
    CU_ASSERT_EQUAL(RnTestSystem(path), 0);
    snprintf(path, sizeof path, "%s/plainfile", dir);
    FILE *fp = fopen(path, "w");
    CU_ASSERT_PTR_NOT_NULL_FATAL(fp);
    fclose(fp);
  }
  MPI_Barrier(PETSC_COMM_WORLD);
  ExpectLoadError("truncated", PETSC_TRUE, "truncated/data_batch_3.bin: 9319 bytes", "3 records and 100 bytes over", "truncated");
  ExpectLoadError("short", PETSC_TRUE, "short/data_batch_2.bin: 2 records", "data_batch_1.bin has 5", "truncated");
  ExpectLoadError("empty", PETSC_TRUE, "empty/data_batch_1.bin: empty", "0 records", NULL);
  ExpectLoadError("badlabel", PETSC_TRUE, "badlabel/data_batch_4.bin: record 2 has label 12", "0..9", NULL);
  ExpectLoadError("badtest", PETSC_FALSE, "badtest/test_batch.bin: record 4 has label 255", "0..9", NULL);
  ExpectLoadError("missing", PETSC_TRUE, "missing/data_batch_5.bin: missing", "data_batch_1.bin .. data_batch_5.bin and test_batch.bin", "scripts/get-cifar10 DIR");
  ExpectLoadError("notest", PETSC_FALSE, "notest/test_batch.bin: missing", "scripts/get-cifar10 DIR", NULL);
  ExpectLoadError("no-such-directory", PETSC_TRUE, "no-such-directory: No such file or directory", "test_batch.bin", "scripts/get-cifar10 DIR");
  ExpectLoadError("plainfile", PETSC_TRUE, "plainfile: not a directory", "scripts/get-cifar10 DIR", NULL);
  ExpectLoadError("parent", PETSC_TRUE, "parent/data_batch_1.bin: missing", "did you mean", "parent/cifar-10-batches-bin?");

  /* the training set without the test file, and labels beyond max_records, are fine */
  RnDataset ds;
  Path(path, sizeof path, "notest");
  RN_TEST_OK(RnCifarLoad(PETSC_COMM_WORLD, path, PETSC_TRUE, 0, &ds));
  CU_ASSERT_EQUAL(ds->n, 25);
  RN_TEST_OK(RnDatasetDestroy(&ds));
  Path(path, sizeof path, "badlabel");
  RN_TEST_OK(RnCifarLoad(PETSC_COMM_WORLD, path, PETSC_TRUE, 17, &ds));
  CU_ASSERT_EQUAL(ds->n, 17);
  RN_TEST_OK(RnDatasetDestroy(&ds));
}

/* Ranks that see different files (node-local disks) still fail together,
 * with the message of the lowest failing rank. */
static void test_ranks_disagree(void)
{
  char path[400];
  RnDataset ds = NULL;
  PetscErrorCode err;
  const char *bad[2] = {"missing", "badlabel"}; /* made by test_bad_files */
  const char *expect[2] = {"missing/data_batch_5.bin: missing", "badlabel/data_batch_4.bin: record 2 has label 12"};

  if (rn_test_size < 2) return; /* needs ranks that disagree */
  RnDatasetSetShared(PETSC_FALSE); /* ranks on different nodes: each reads its own files */
  for (int k = 0; k < 2; k++) {
    Path(path, sizeof path, rn_test_rank == rn_test_size - 1 ? bad[k] : "syn");
    last_message[0] = 0;
    RN_TEST_OK(PetscPushErrorHandler(Capture, NULL));
    err = RnCifarLoad(PETSC_COMM_WORLD, path, PETSC_TRUE, 0, &ds);
    RN_TEST_OK(PetscPopErrorHandler());
    CU_ASSERT_EQUAL(err, RN_ERR_INPUT);
    CU_ASSERT_PTR_NULL(ds);
    CU_ASSERT_PTR_NOT_NULL(strstr(last_message, expect[k]));
  }
  RnDatasetSetShared(PETSC_TRUE);
}

/* The ranks of a node share one copy: one allocation (the others map it),
 * the same records on every rank, and a split shares too. */
static void test_node_shared(void)
{
  char path[400];
  RnDataset ds, train, val;
  MPI_Aint size;
  int disp, node_size, sum[2], mine[2];
  void *base;
  uint64_t h, h0;

  Path(path, sizeof path, "syn");
  RN_TEST_OK(RnCifarLoad(PETSC_COMM_WORLD, path, PETSC_TRUE, 0, &ds));
  MPI_Comm_size(ds->node, &node_size);
  CU_ASSERT_EQUAL(node_size, rn_test_size); /* one machine: one node */
  MPI_Win_shared_query(ds->win, ds->node_rank, &size, &disp, &base); /* this rank's own segment */
  /* the window's memory is allocated by node rank 0 alone */
  mine[0] = ds->node_rank == 0 ? (size > 0) : (size == 0), mine[1] = 1;
  h = RnChecksum(ds->pixels, (size_t)ds->n * 3072, RN_CHECKSUM_INIT);
  h = RnChecksum(ds->labels, sizeof(int) * ds->n, h);
  h0 = h;
  MPI_Bcast(&h0, 1, MPI_UINT64_T, 0, PETSC_COMM_WORLD);
  mine[1] = h == h0;
  MPI_Allreduce(mine, sum, 2, MPI_INT, MPI_SUM, PETSC_COMM_WORLD);
  CU_ASSERT_EQUAL(sum[0], rn_test_size);
  CU_ASSERT_EQUAL(sum[1], rn_test_size);
  RN_TEST_OK(RnDatasetSplit(ds, 5, 3, &train, &val));
  h = RnChecksum(train->pixels, (size_t)train->n * 3072, RnChecksum(val->labels, sizeof(int) * val->n, RN_CHECKSUM_INIT));
  h0 = h;
  MPI_Bcast(&h0, 1, MPI_UINT64_T, 0, PETSC_COMM_WORLD);
  mine[1] = h == h0;
  MPI_Allreduce(&mine[1], &sum[1], 1, MPI_INT, MPI_SUM, PETSC_COMM_WORLD);
  CU_ASSERT_EQUAL(sum[1], rn_test_size);
  RN_TEST_OK(RnDatasetDestroy(&train));
  RN_TEST_OK(RnDatasetDestroy(&val));
  RN_TEST_OK(RnDatasetDestroy(&ds));
}

/* The loaded copy is read-only in fact: a write into its pixels or labels,
 * from any rank, is a crash (SIGSEGV), not a silent change of the data other
 * ranks read. Tried in a forked child, which stores back the byte it reads
 * (so nothing would change even if the store went through). */
static int StrayWriteCrashes(volatile uint8_t *byte)
{
  int status;
  const pid_t child = fork();
  if (child == 0) {
    signal(SIGSEGV, SIG_DFL); /* not PETSc's or MPI's handler: die of it */
    *byte = *byte;
    _exit(0);
  }
  if (child < 0 || waitpid(child, &status, 0) != child) return 0;
  return WIFSIGNALED(status) && WTERMSIG(status) == SIGSEGV;
}

static void test_read_only(void)
{
  char path[400];
  RnDataset ds, train, val;
  int crashed;

  Path(path, sizeof path, "syn");
  RN_TEST_OK(RnCifarLoad(PETSC_COMM_WORLD, path, PETSC_TRUE, 0, &ds));
  RN_TEST_OK(RnDatasetSplit(ds, 5, 3, &train, &val));
  crashed = StrayWriteCrashes(ds->pixels + 1024) + StrayWriteCrashes((volatile uint8_t *)&ds->labels[ds->n - 1]) + StrayWriteCrashes(train->pixels + (size_t)train->n * 3072 - 1) +
            StrayWriteCrashes((volatile uint8_t *)&val->origin[0]);
  if (rn_test_rank == 0) printf("\n    %d of 4 stray writes (pixels, labels, a split's pixels, origin) crashed ", crashed);
  CU_ASSERT_EQUAL(crashed, 4);
  RN_TEST_OK(RnDatasetDestroy(&train));
  RN_TEST_OK(RnDatasetDestroy(&val));
  RN_TEST_OK(RnDatasetDestroy(&ds));
}

/* ----------------------------------------------------------------- split */

static void test_split(void)
{
  char path[400];
  RnDataset all, train, val, t2, v2;
  int seen[100] = {0}, perm[100], moved = 0;
  PetscErrorCode err;

  MakeSynthetic("split", 20, 5);
  Path(path, sizeof path, "split");
  RN_TEST_OK(RnCifarLoad(PETSC_COMM_WORLD, path, PETSC_TRUE, 0, &all));
  CU_ASSERT_EQUAL_FATAL(all->n, 100);
  RN_TEST_OK(RnDatasetSplit(all, 30, 5, &train, &val));
  CU_ASSERT_EQUAL_FATAL(train->n, 70);
  CU_ASSERT_EQUAL_FATAL(val->n, 30);
  for (int i = 0; i < train->n; i++) seen[train->origin[i]]++;
  for (int i = 0; i < val->n; i++) seen[val->origin[i]]++;
  for (int i = 0; i < 100; i++) CU_ASSERT_EQUAL(seen[i], 1); /* disjoint and complete */
  /* the documented permutation; samples move with their labels and pixels */
  RnRandPermutation(5, RN_STREAM_SPLIT, 0, 0, 100, perm);
  for (int i = 0; i < 100; i++) {
    RnDataset d = i < 30 ? val : train;
    const int j = i < 30 ? i : i - 30;
    CU_ASSERT_EQUAL(d->origin[j], perm[i]);
    CU_ASSERT_EQUAL(d->labels[j], all->labels[perm[i]]);
    CU_ASSERT(memcmp(d->pixels + (size_t)j * 3072, all->pixels + (size_t)perm[i] * 3072, 3072) == 0);
  }
  /* deterministic in the seed */
  RN_TEST_OK(RnDatasetSplit(all, 30, 5, &t2, &v2));
  CU_ASSERT(memcmp(v2->origin, val->origin, 30 * sizeof(int)) == 0 && memcmp(t2->origin, train->origin, 70 * sizeof(int)) == 0);
  RN_TEST_OK(RnDatasetDestroy(&t2));
  RN_TEST_OK(RnDatasetDestroy(&v2));
  RN_TEST_OK(RnDatasetSplit(all, 30, 6, &t2, &v2));
  for (int i = 0; i < 30; i++) moved += v2->origin[i] != val->origin[i];
  CU_ASSERT(moved > 20);
  RN_TEST_OK(RnDatasetDestroy(&t2));
  RN_TEST_OK(RnDatasetDestroy(&v2));
  /* a split of a split keeps the original indices */
  RN_TEST_OK(RnDatasetSplit(train, 10, 7, &t2, &v2));
  for (int i = 0; i < 10; i++) CU_ASSERT(memcmp(v2->pixels + (size_t)i * 3072, all->pixels + (size_t)v2->origin[i] * 3072, 3072) == 0);
  RN_TEST_OK(RnDatasetDestroy(&t2));
  RN_TEST_OK(RnDatasetDestroy(&v2));
  /* no validation: everything trains */
  RN_TEST_OK(RnDatasetSplit(all, 0, 5, &t2, &v2));
  CU_ASSERT(t2->n == 100 && v2->n == 0);
  RN_TEST_OK(RnDatasetDestroy(&t2));
  RN_TEST_OK(RnDatasetDestroy(&v2));
  /* nothing left to train on, or a negative count: input errors */
  for (int k = 0; k < 2; k++) {
    last_message[0] = 0;
    RN_TEST_OK(PetscPushErrorHandler(Capture, NULL));
    err = RnDatasetSplit(all, k == 0 ? 100 : -1, 5, &t2, &v2);
    RN_TEST_OK(PetscPopErrorHandler());
    CU_ASSERT_EQUAL(err, RN_ERR_INPUT);
    CU_ASSERT_PTR_NOT_NULL(strstr(last_message, "the data set has 100"));
  }
  RN_TEST_OK(RnDatasetDestroy(&all));
  RN_TEST_OK(RnDatasetDestroy(&train));
  RN_TEST_OK(RnDatasetDestroy(&val));
}

/* --------------------------------------------------------- normalisation */

static void test_mean_std(void)
{
  char path[400];
  RnDataset ds;
  double *mean, *ref, std[3], *x, sum[3] = {0}, sq[3] = {0};
  int *idx, *lab;

  Path(path, sizeof path, "split");
  RN_TEST_OK(RnCifarLoad(PETSC_COMM_WORLD, path, PETSC_TRUE, 0, &ds));
  RN_TEST_OK(PetscMalloc3(3072, &mean, 3072, &ref, (size_t)ds->n * 3072, &x));
  RN_TEST_OK(PetscMalloc2(ds->n, &idx, ds->n, &lab));
  RN_TEST_OK(RnDatasetMeanStd(ds, mean, std));
  /* the definition, in floating point */
  for (int k = 0; k < 3072; k++) {
    double s = 0;
    for (int n = 0; n < ds->n; n++) s += ds->pixels[(size_t)n * 3072 + k] / 255.0;
    ref[k] = s / ds->n;
    CU_ASSERT_DOUBLE_EQUAL(mean[k], ref[k], 1e-14);
  }
  for (int c = 0; c < 3; c++) {
    double s = 0;
    for (int n = 0; n < ds->n; n++)
      for (int k = c * 1024; k < (c + 1) * 1024; k++) s += PetscSqr(ds->pixels[(size_t)n * 3072 + k] / 255.0 - ref[k]);
    CU_ASSERT(RnTestRelErr(std[c], sqrt(s / (ds->n * 1024.0)), 1e-300) < 1e-12);
  }
  /* so the normalised data has mean 0 and variance 1 in each channel */
  for (int n = 0; n < ds->n; n++) idx[n] = n;
  RN_TEST_OK(RnDatasetGetBatch(ds, idx, ds->n, mean, std, NULL, 0, 0, x, lab));
  for (int n = 0; n < ds->n; n++)
    for (int k = 0; k < 3072; k++) sum[k / 1024] += x[(size_t)n * 3072 + k], sq[k / 1024] += PetscSqr(x[(size_t)n * 3072 + k]);
  for (int c = 0; c < 3; c++) {
    CU_ASSERT_DOUBLE_EQUAL(sum[c] / (ds->n * 1024.0), 0.0, 1e-12);
    CU_ASSERT_DOUBLE_EQUAL(sq[c] / (ds->n * 1024.0), 1.0, 1e-12);
  }
  /* a constant channel is left unscaled, and the mean alone works: a copy
   * of the data with channel 1 constant (the loaded copy is read-only) */
  {
    RnDataset flat;
    RN_TEST_OK(RnDatasetCreate(PETSC_COMM_WORLD, ds->n, 3, 32, 32, 10, &flat));
    if (RnDatasetWriter(flat)) {
      memcpy(flat->pixels, ds->pixels, (size_t)ds->n * 3072);
      memcpy(flat->labels, ds->labels, sizeof(int) * ds->n);
      for (int n = 0; n < ds->n; n++) memset(flat->pixels + (size_t)n * 3072 + 1024, 77, 1024);
    }
    RN_TEST_OK(RnDatasetPublish(flat));
    RN_TEST_OK(RnDatasetMeanStd(flat, mean, std));
    CU_ASSERT_DOUBLE_EQUAL(std[1], 1.0, 0);
    CU_ASSERT_DOUBLE_EQUAL(mean[1024 + 500], 77 / 255.0, 1e-15);
    RN_TEST_OK(RnDatasetMeanStd(flat, ref, NULL));
    CU_ASSERT(memcmp(ref, mean, 3072 * sizeof(double)) == 0);
    RN_TEST_OK(RnDatasetDestroy(&flat));
  }
  RN_TEST_OK(PetscFree3(mean, ref, x));
  RN_TEST_OK(PetscFree2(idx, lab));
  RN_TEST_OK(RnDatasetDestroy(&ds));
}

/* ---------------------------------------------------------- augmentation */

/* An epoch whose draw for `sample` is (dy, dx, flip), or -1. */
static int FindEpoch(const RnAugment *aug, uint64_t seed, uint32_t sample, int dy, int dx, PetscBool flip)
{
  for (int e = 0; e < 10000; e++) {
    int ddy, ddx;
    PetscBool f;
    RnAugmentDraw(aug, seed, (uint32_t)e, sample, &ddy, &ddx, &f);
    if (ddy == dy && ddx == dx && f == flip) return e;
  }
  return -1;
}

/* One 2 x 3 x 4 image, channel 0:  1  2  3  4   channel 1: 100 more.
 *                                 11 12 13 14
 *                                 21 22 23 24 */
static void test_augment_by_hand(void)
{
  RnDataset ds;
  RnAugment aug = {1, PETSC_FALSE, PETSC_TRUE};
  const uint64_t seed = 17;
  double x[24], mean[24], std[2] = {0.5, 0.25};
  int idx = 0, label, epoch;
  /* (dy, dx, flip) = (1, -1, yes): out(i, j) = in(i - 1, (3 - j) + 1) */
  const int a_edge[12] = {4, 4, 3, 2, 4, 4, 3, 2, 14, 14, 13, 12}, a_zero[12] = {0, 0, 0, 0, 0, 4, 3, 2, 0, 14, 13, 12};
  /* (-1, 1, no): out(i, j) = in(i + 1, j - 1) */
  const int b_edge[12] = {11, 11, 12, 13, 21, 21, 22, 23, 21, 21, 22, 23}, b_zero[12] = {0, 11, 12, 13, 0, 21, 22, 23, 0, 0, 0, 0};
  /* (0, 0, yes): a mirror */
  const int c_any[12] = {4, 3, 2, 1, 14, 13, 12, 11, 24, 23, 22, 21};
  struct {
    int dy, dx;
    PetscBool flip;
    const int *edge, *zero;
  } cases[3] = {{1, -1, PETSC_TRUE, a_edge, a_zero}, {-1, 1, PETSC_FALSE, b_edge, b_zero}, {0, 0, PETSC_TRUE, c_any, c_any}};

  RN_TEST_OK(RnDatasetCreate(PETSC_COMM_WORLD, 1, 2, 3, 4, 10, &ds));
  if (RnDatasetWriter(ds)) {
    ds->labels[0] = 6;
    for (int c = 0; c < 2; c++)
      for (int i = 0; i < 3; i++)
        for (int j = 0; j < 4; j++) ds->pixels[c * 12 + i * 4 + j] = (uint8_t)(100 * c + 10 * i + j + 1);
  }
  RN_TEST_OK(RnDatasetPublish(ds));
  for (int k = 0; k < 24; k++) mean[k] = 0.01 * k;

  /* the draws are the documented ones */
  for (uint32_t e = 0; e < 50; e++) {
    int dy, dx;
    PetscBool flip;
    RnAugmentDraw(&aug, seed, e, 0, &dy, &dx, &flip);
    CU_ASSERT_EQUAL(dy, (int)(RnRandUniformAt(seed, RN_STREAM_AUGMENT, e, 0, 0) * 3) - 1);
    CU_ASSERT_EQUAL(dx, (int)(RnRandUniformAt(seed, RN_STREAM_AUGMENT, e, 0, 1) * 3) - 1);
    CU_ASSERT_EQUAL(flip, RnRandUniformAt(seed, RN_STREAM_AUGMENT, e, 0, 2) < 0.5);
  }
  for (int k = 0; k < 3; k++)
    for (int zero = 0; zero < 2; zero++) {
      const int *expect = zero ? cases[k].zero : cases[k].edge;
      aug.zero_fill = zero ? PETSC_TRUE : PETSC_FALSE;
      epoch = FindEpoch(&aug, seed, 0, cases[k].dy, cases[k].dx, cases[k].flip);
      CU_ASSERT_FATAL(epoch >= 0);
      /* raw pixels / 255 */
      RN_TEST_OK(RnDatasetGetBatch(ds, &idx, 1, NULL, NULL, &aug, seed, (uint32_t)epoch, x, &label));
      CU_ASSERT_EQUAL(label, 6);
      for (int c = 0; c < 2; c++)
        for (int p = 0; p < 12; p++) {
          const int v = expect[p] ? expect[p] + 100 * c : 0;
          CU_ASSERT_DOUBLE_EQUAL(x[c * 12 + p], v / 255.0, 1e-15);
        }
      /* normalised: the source pixel's mean, the channel's std; the fill is 0 */
      RN_TEST_OK(RnDatasetGetBatch(ds, &idx, 1, mean, std, &aug, seed, (uint32_t)epoch, x, &label));
      for (int c = 0; c < 2; c++)
        for (int p = 0; p < 12; p++) {
          const int v = expect[p];
          /* the source index of value v: row v / 10, column v % 10 - 1 */
          const double want = v ? ((v + 100 * c) / 255.0 - mean[c * 12 + (v / 10) * 4 + v % 10 - 1]) / std[c] : 0.0;
          CU_ASSERT_DOUBLE_EQUAL(x[c * 12 + p], want, 1e-14);
        }
    }
  /* no augmentation, or none asked for: the image itself */
  RnAugment none = {0, PETSC_TRUE, PETSC_FALSE};
  RN_TEST_OK(RnDatasetGetBatch(ds, &idx, 1, NULL, NULL, &none, seed, 3, x, &label));
  for (int p = 0; p < 24; p++) CU_ASSERT_DOUBLE_EQUAL(x[p], ds->pixels[p] / 255.0, 0);
  RN_TEST_OK(RnDatasetDestroy(&ds));
}

/* A reference: pad the normalised image by s (zeros or edge copies), take
 * the crop at (s - dy, s - dx), mirror it. */
static void Reference(const RnDataset ds, int n, const double *mean, const double *std, int s, PetscBool zero, int dy, int dx, PetscBool flip, double *out)
{
  const int H = ds->h, W = ds->w, PH = H + 2 * s, PW = W + 2 * s;
  double *pad = malloc(sizeof(double) * PH * PW);
  for (int c = 0; c < ds->channels; c++) {
    for (int i = 0; i < PH; i++)
      for (int j = 0; j < PW; j++) {
        int si = i - s, sj = j - s;
        const int inside = si >= 0 && si < H && sj >= 0 && sj < W;
        si = si < 0 ? 0 : si >= H ? H - 1 : si;
        sj = sj < 0 ? 0 : sj >= W ? W - 1 : sj;
        const int k = c * H * W + si * W + sj;
        pad[i * PW + j] = (!inside && zero) ? 0.0 : (ds->pixels[(size_t)n * ds->channels * H * W + k] / 255.0 - mean[k]) / std[c];
      }
    for (int i = 0; i < H; i++)
      for (int j = 0; j < W; j++) {
        const double v = pad[(i + s - dy) * PW + (j + s - dx)];
        out[c * H * W + i * W + (flip ? W - 1 - j : j)] = v;
      }
  }
  free(pad);
}

static void test_augment_reference(void)
{
  RnDataset ds;
  double *mean, std[3] = {0.2, 0.3, 0.25}, *x, *ref;
  int idx[5] = {0, 1, 2, 3, 4}, lab[5], hist_dy[9] = {0}, hist_dx[9] = {0}, flips = 0, draws = 0, worst_bad = 0;
  double worst = 0;

  RN_TEST_OK(RnDatasetCreate(PETSC_COMM_WORLD, 5, 3, 32, 32, 10, &ds));
  RN_TEST_OK(PetscMalloc3(3072, &mean, 5 * 3072, &x, 3072, &ref));
  if (RnDatasetWriter(ds)) {
    for (int k = 0; k < 5 * 3072; k++) ds->pixels[k] = (uint8_t)(256 * RnRandUniformAt(1, RN_STREAM_TEST, 5, 0, (uint32_t)k));
    for (int n = 0; n < 5; n++) ds->labels[n] = n;
  }
  RN_TEST_OK(RnDatasetPublish(ds));
  for (int k = 0; k < 3072; k++) mean[k] = 0.4 + 0.2 * RnRandUniformAt(1, RN_STREAM_TEST, 6, 0, (uint32_t)k);
  for (int zero = 0; zero < 2; zero++) {
    RnAugment aug = {4, zero ? PETSC_TRUE : PETSC_FALSE, PETSC_TRUE};
    for (uint32_t epoch = 0; epoch < 40; epoch++) {
      RN_TEST_OK(RnDatasetGetBatch(ds, idx, 5, mean, std, &aug, 9, epoch, x, lab));
      for (int b = 0; b < 5; b++) {
        int dy, dx;
        PetscBool flip;
        RnAugmentDraw(&aug, 9, epoch, (uint32_t)b, &dy, &dx, &flip);
        Reference(ds, b, mean, std, 4, aug.zero_fill, dy, dx, flip, ref);
        for (int k = 0; k < 3072; k++) worst = PetscMax(worst, PetscAbsReal(x[b * 3072 + k] - ref[k]));
        worst_bad += lab[b] != b;
      }
    }
  }
  CU_ASSERT(worst < 1e-14);
  CU_ASSERT_EQUAL(worst_bad, 0);
  /* the draws: every shift in range, flips about half the time, none without flips */
  RnAugment aug = {4, PETSC_FALSE, PETSC_TRUE}, noflip = {4, PETSC_FALSE, PETSC_FALSE};
  for (uint32_t epoch = 0; epoch < 400; epoch++)
    for (uint32_t s = 0; s < 10; s++) {
      int dy, dx;
      PetscBool flip;
      RnAugmentDraw(&aug, 3, epoch, s, &dy, &dx, &flip);
      CU_ASSERT_FATAL(dy >= -4 && dy <= 4 && dx >= -4 && dx <= 4);
      hist_dy[dy + 4]++, hist_dx[dx + 4]++, flips += flip, draws++;
      RnAugmentDraw(&noflip, 3, epoch, s, &dy, &dx, &flip);
      CU_ASSERT(!flip);
    }
  for (int k = 0; k < 9; k++) CU_ASSERT(hist_dy[k] > draws / 9 / 2 && hist_dx[k] > draws / 9 / 2);
  CU_ASSERT(flips > 0.45 * draws && flips < 0.55 * draws);
  RN_TEST_OK(PetscFree3(mean, x, ref));
  RN_TEST_OK(RnDatasetDestroy(&ds));
}

/* The same sample and epoch: the same augmentation in any batch, in any
 * order, on any rank, and after a split. */
static void test_augment_keyed_by_sample(void)
{
  char path[400];
  RnDataset all, train, val;
  RnAugment aug = {4, PETSC_FALSE, PETSC_TRUE};
  double *x, *y, *z;
  int lab[20], batch[20], differ = 0;

  Path(path, sizeof path, "split");
  RN_TEST_OK(RnCifarLoad(PETSC_COMM_WORLD, path, PETSC_TRUE, 0, &all));
  RN_TEST_OK(PetscMalloc3(20 * 3072, &x, 20 * 3072, &y, 3072, &z));
  for (uint32_t epoch = 0; epoch < 3; epoch++) {
    /* samples 0..19 in order, and reversed */
    for (int b = 0; b < 20; b++) batch[b] = b;
    RN_TEST_OK(RnDatasetGetBatch(all, batch, 20, NULL, NULL, &aug, 4, epoch, x, lab));
    for (int b = 0; b < 20; b++) batch[b] = 19 - b;
    RN_TEST_OK(RnDatasetGetBatch(all, batch, 20, NULL, NULL, &aug, 4, epoch, y, lab));
    for (int b = 0; b < 20; b++) CU_ASSERT(memcmp(x + b * 3072, y + (19 - b) * 3072, 3072 * sizeof(double)) == 0);
    /* sample 7 alone */
    batch[0] = 7;
    RN_TEST_OK(RnDatasetGetBatch(all, batch, 1, NULL, NULL, &aug, 4, epoch, z, lab));
    CU_ASSERT(memcmp(z, x + 7 * 3072, 3072 * sizeof(double)) == 0);
    /* ranks: each takes a different batch around sample 7; rank 0's result is everyone's */
    for (int b = 0; b < 5; b++) batch[b] = (7 + 13 * (b + rn_test_rank)) % 100;
    batch[rn_test_rank % 5] = 7;
    RN_TEST_OK(RnDatasetGetBatch(all, batch, 5, NULL, NULL, &aug, 4, epoch, y, lab));
    memcpy(z, y + (rn_test_rank % 5) * 3072, 3072 * sizeof(double));
    CU_ASSERT_EQUAL(MPI_Bcast(z, 3072, MPI_DOUBLE, 0, PETSC_COMM_WORLD), MPI_SUCCESS);
    CU_ASSERT(memcmp(z, y + (rn_test_rank % 5) * 3072, 3072 * sizeof(double)) == 0);
  }
  /* another epoch, another transform (for most samples) */
  for (int b = 0; b < 20; b++) batch[b] = b;
  RN_TEST_OK(RnDatasetGetBatch(all, batch, 20, NULL, NULL, &aug, 4, 100, y, lab));
  for (int b = 0; b < 20; b++) differ += memcmp(x + b * 3072, y + b * 3072, 3072 * sizeof(double)) != 0;
  CU_ASSERT(differ >= 15);
  /* after a split, a sample keeps the transform of its original index */
  RN_TEST_OK(RnDatasetSplit(all, 40, 8, &train, &val));
  for (int k = 0; k < 5; k++) {
    batch[0] = k;
    RN_TEST_OK(RnDatasetGetBatch(train, batch, 1, NULL, NULL, &aug, 4, 2, z, lab));
    batch[0] = train->origin[k];
    RN_TEST_OK(RnDatasetGetBatch(all, batch, 1, NULL, NULL, &aug, 4, 2, y, lab));
    CU_ASSERT(memcmp(z, y, 3072 * sizeof(double)) == 0);
  }
  RN_TEST_OK(PetscFree3(x, y, z));
  RN_TEST_OK(RnDatasetDestroy(&all));
  RN_TEST_OK(RnDatasetDestroy(&train));
  RN_TEST_OK(RnDatasetDestroy(&val));
}

/* Stratified folds: in range, covering, every class (and the fold sizes)
 * within one across folds, from the seed alone (the same on every rank). */
static void test_folds(void)
{
  const int n = 103;
  RnDataset ds;
  int fold[103], again[103], lo[103], hi[103], moved = 0;

  RN_TEST_OK(RnDatasetCreate(PETSC_COMM_WORLD, n, 1, 2, 2, 10, &ds));
  /* unequal classes: class 0 has 30 samples, the rest share the others */
  for (int i = 0; i < n && RnDatasetWriter(ds); i++) ds->labels[i] = i < 30 ? 0 : 1 + (i * 7) % 9;
  RN_TEST_OK(RnDatasetPublish(ds));
  for (int k = 2; k <= 5; k++) {
    RN_TEST_OK(RnDatasetStratifiedFolds(ds, k, 11, fold));
    int size[5] = {0}, worst_class = 0, worst_size;
    for (int i = 0; i < n; i++) {
      CU_ASSERT_FATAL(fold[i] >= 0 && fold[i] < k);
      size[fold[i]]++;
    }
    for (int c = 0; c < 10; c++) {
      int count[5] = {0}, mn = n, mx = 0;
      for (int i = 0; i < n; i++)
        if (ds->labels[i] == c) count[fold[i]]++;
      for (int f = 0; f < k; f++) mn = PetscMin(mn, count[f]), mx = PetscMax(mx, count[f]);
      worst_class = PetscMax(worst_class, mx - mn);
    }
    worst_size = 0;
    for (int f = 0; f < k; f++)
      for (int g = 0; g < k; g++) worst_size = PetscMax(worst_size, size[f] - size[g]);
    CU_ASSERT(worst_class <= 1);
    CU_ASSERT(worst_size <= 1);
    /* every rank, the same folds */
    MPI_Allreduce(fold, lo, n, MPI_INT, MPI_MIN, PETSC_COMM_WORLD);
    MPI_Allreduce(fold, hi, n, MPI_INT, MPI_MAX, PETSC_COMM_WORLD);
    CU_ASSERT(memcmp(lo, hi, sizeof fold) == 0);
    RN_TEST_OK(RnDatasetStratifiedFolds(ds, k, 11, again));
    CU_ASSERT(memcmp(fold, again, sizeof fold) == 0);
  }
  RN_TEST_OK(RnDatasetStratifiedFolds(ds, 3, 12, again));
  RN_TEST_OK(RnDatasetStratifiedFolds(ds, 3, 11, fold));
  for (int i = 0; i < n; i++) moved += fold[i] != again[i];
  CU_ASSERT(moved > n / 3); /* another seed, other folds */
  RN_TEST_OK(RnDatasetDestroy(&ds));
}

/* The index split is RnDatasetSplit's, and the mean over indices is the mean
 * of the split set. */
static void test_split_indices(void)
{
  char path[400];
  RnDataset all, train, val;
  int tr[100], va[100];
  double m1[3072], m2[3072], s1[3], s2[3];

  Path(path, sizeof path, "split");
  RN_TEST_OK(RnCifarLoad(PETSC_COMM_WORLD, path, PETSC_TRUE, 0, &all));
  RN_TEST_OK(RnDatasetSplit(all, 30, 5, &train, &val));
  RN_TEST_OK(RnDatasetSplitIndices(100, 30, 5, tr, va));
  for (int i = 0; i < 70; i++) CU_ASSERT_EQUAL(tr[i], train->origin[i]);
  for (int i = 0; i < 30; i++) CU_ASSERT_EQUAL(va[i], val->origin[i]);
  RN_TEST_OK(RnDatasetMeanStd(train, m1, s1));
  RN_TEST_OK(RnDatasetMeanStdOf(all, tr, 70, m2, s2));
  CU_ASSERT(memcmp(m1, m2, sizeof m1) == 0 && memcmp(s1, s2, sizeof s1) == 0);
  RN_TEST_OK(RnDatasetDestroy(&all));
  RN_TEST_OK(RnDatasetDestroy(&train));
  RN_TEST_OK(RnDatasetDestroy(&val));
}

/* Sub-pixel shifts: bilinear interpolation is exact on a ramp, so inside the
 * image out(i, j) = ramp(i - ty, j' - tx); outside, the edge value (or 0). */
static void test_augment_subpixel(void)
{
  RnDataset ds;
  RnAugment aug = {0, PETSC_FALSE, PETSC_TRUE, 0.1};
  double x[2 * 32 * 32], worst = 0, worst_edge = 0;
  int idx = 0, label, checked = 0, edges = 0;

  RN_TEST_OK(RnDatasetCreate(PETSC_COMM_WORLD, 1, 2, 32, 32, 10, &ds));
  if (RnDatasetWriter(ds)) {
    ds->labels[0] = 3;
    for (int c = 0; c < 2; c++)
      for (int i = 0; i < 32; i++)
        for (int j = 0; j < 32; j++) ds->pixels[c * 1024 + i * 32 + j] = (uint8_t)(c ? 4 * i + 3 * j : 7 * j + i);
  }
  RN_TEST_OK(RnDatasetPublish(ds));
  for (uint32_t e = 0; e < 20; e++) {
    double ty, tx;
    PetscBool flip;
    RnAugmentDrawFraction(&aug, 32, 32, 9, e, 0, &ty, &tx, &flip);
    CU_ASSERT(fabs(ty) <= 3.2 && fabs(tx) <= 3.2);
    RN_TEST_OK(RnDatasetGetBatch(ds, &idx, 1, NULL, NULL, &aug, 9, e, x, &label));
    CU_ASSERT_EQUAL(label, 3);
    for (int c = 0; c < 2; c++)
      for (int i = 0; i < 32; i++)
        for (int j = 0; j < 32; j++) {
          const double sy = i - ty, sx = (flip ? 31 - j : j) - tx;
          const double cy = PetscMin(PetscMax(sy, 0.0), 31.0), cx = PetscMin(PetscMax(sx, 0.0), 31.0);
          const double expect = (c ? 4 * cy + 3 * cx : 7 * cx + cy) / 255.0;
          const double err = fabs(x[c * 1024 + i * 32 + j] - expect);
          /* inside: exact; outside: the edge row or column's interpolation */
          if (sy >= 0 && sy <= 31 && sx >= 0 && sx <= 31) worst = PetscMax(worst, err), checked++;
          else worst_edge = PetscMax(worst_edge, err), edges++;
        }
  }
  CU_ASSERT(checked > 10000 && edges > 100);
  CU_ASSERT(worst < 1e-12);
  CU_ASSERT(worst_edge < 1e-12);
  RN_TEST_OK(RnDatasetDestroy(&ds));
}

static void test_cleanup(void)
{
  char cmd[400];
  MPI_Barrier(PETSC_COMM_WORLD);
  snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
  if (rn_test_rank == 0 && dir[0]) CU_ASSERT_EQUAL(RnTestSystem(cmd), 0);
}

static void Register(void)
{
  RnTestTempDir("rn-cifar", dir, sizeof dir);
  RnTestAddSuite("cifar_reader", "read_back", test_read_back, "synthetic", test_synthetic, "bad_files", test_bad_files, "ranks_disagree", test_ranks_disagree, "node_shared", test_node_shared, "read_only", test_read_only, NULL);
  RnTestAddSuite("dataset", "split", test_split, "mean_std", test_mean_std, "folds", test_folds, "split_indices", test_split_indices, NULL);
  RnTestAddSuite("augmentation", "by_hand", test_augment_by_hand, "reference", test_augment_reference, "keyed_by_sample", test_augment_keyed_by_sample, "subpixel", test_augment_subpixel, NULL);
  RnTestAddSuite("cleanup", "cleanup", test_cleanup, NULL);
}

int main(int argc, char **argv) { return RnTestMain(argc, argv, Register); }
