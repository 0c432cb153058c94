/* data_cifar.c: the CIFAR-10 reader, splits, normalisation, augmentation. */
#include "resnode/data.h"
#include "resnode/rng.h"

#include <errno.h>
#include <math.h>
#include <string.h>
#include <sys/stat.h>

static PetscErrorCode DatasetAlloc(int n, RnDataset *ds)
{
  RnDataset d;

  PetscFunctionBeginUser;
  PetscCall(PetscNew(&d));
  d->n = n, d->channels = 3, d->h = 32, d->w = 32, d->nclasses = 10;
  PetscCall(PetscMalloc3((size_t)PetscMax(n, 1) * 3072, &d->pixels, PetscMax(n, 1), &d->labels, PetscMax(n, 1), &d->origin));
  *ds = d;
  PetscFunctionReturn(0);
}

PetscErrorCode RnDatasetDestroy(RnDataset *ds)
{
  PetscFunctionBeginUser;
  if (!ds || !*ds) PetscFunctionReturn(0);
  PetscCall(PetscFree3((*ds)->pixels, (*ds)->labels, (*ds)->origin));
  PetscCall(PetscFree(*ds));
  *ds = NULL;
  PetscFunctionReturn(0);
}

PetscErrorCode RnCifarLoad(MPI_Comm comm, const char *dir, PetscBool train, int max_records, RnDataset *dsp)
{
  const char *train_files[] = {"data_batch_1.bin", "data_batch_2.bin", "data_batch_3.bin", "data_batch_4.bin", "data_batch_5.bin"};
  const char *test_files[] = {"test_batch.bin"};
  const char **files = train ? train_files : test_files;
  const int nfiles = train ? 5 : 1;
  long long counts[5], total = 0;
  struct stat st;
  RnDataset ds;
  int filled = 0;

  PetscFunctionBeginUser;
  RnInputCheck(stat(dir, &st) == 0 && S_ISDIR(st.st_mode), comm,
               "CIFAR-10 directory '%s' does not exist; it must hold data_batch_1.bin .. data_batch_5.bin and test_batch.bin (get them with scripts/get-cifar10 DIR and set data.dir)", dir);
  for (int f = 0; f < nfiles; f++) {
    char path[PETSC_MAX_PATH_LEN];
    PetscCall(PetscSNPrintf(path, sizeof path, "%s/%s", dir, files[f]));
    RnInputCheck(stat(path, &st) == 0, comm, "%s: missing (a CIFAR-10 directory holds data_batch_1.bin .. data_batch_5.bin and test_batch.bin)", path);
    RnInputCheck(st.st_size > 0 && st.st_size % RN_CIFAR_RECORD == 0, comm,
                 "%s: %lld bytes is not a whole number of %d-byte records (truncated or not CIFAR-10 binary: %lld whole records and %lld bytes over)", path, (long long)st.st_size,
                 RN_CIFAR_RECORD, (long long)(st.st_size / RN_CIFAR_RECORD), (long long)(st.st_size % RN_CIFAR_RECORD));
    counts[f] = st.st_size / RN_CIFAR_RECORD;
    total += counts[f];
  }
  if (max_records > 0 && total > max_records) total = max_records;
  PetscCall(DatasetAlloc((int)total, &ds));
  for (int f = 0; f < nfiles && filled < total; f++) {
    char path[PETSC_MAX_PATH_LEN];
    unsigned char record[RN_CIFAR_RECORD];
    FILE *fp;
    PetscCall(PetscSNPrintf(path, sizeof path, "%s/%s", dir, files[f]));
    fp = fopen(path, "rb");
    if (!fp) {
      PetscCall(RnDatasetDestroy(&ds));
      RnInputError(comm, "%s: cannot open: %s", path, strerror(errno));
    }
    for (long long r = 0; r < counts[f] && filled < total; r++) {
      if (fread(record, 1, RN_CIFAR_RECORD, fp) != RN_CIFAR_RECORD) {
        fclose(fp);
        PetscCall(RnDatasetDestroy(&ds));
        RnInputError(comm, "%s: record %lld: short read (file changed while reading?)", path, r);
      }
      if (record[0] > 9) {
        fclose(fp);
        PetscCall(RnDatasetDestroy(&ds));
        RnInputError(comm, "%s: record %lld has label %d; CIFAR-10 labels are 0..9 (is this CIFAR-100 or another format?)", path, r, record[0]);
      }
      ds->labels[filled] = record[0];
      ds->origin[filled] = filled;
      memcpy(ds->pixels + (size_t)filled * 3072, record + 1, 3072);
      filled++;
    }
    fclose(fp);
  }
  *dsp = ds;
  PetscFunctionReturn(0);
}

PetscErrorCode RnDatasetSplit(RnDataset all, int validation, uint64_t seed, RnDataset *train, RnDataset *val)
{
  int *perm;
  const size_t chw = (size_t)all->channels * all->h * all->w;

  PetscFunctionBeginUser;
  PetscCheck(validation >= 0 && validation < all->n, PETSC_COMM_SELF, RN_ERR_INPUT, "validation split %d must be in [0, %d)", validation, all->n);
  PetscCall(PetscMalloc1(all->n, &perm));
  RnRandPermutation(seed, RN_STREAM_SPLIT, 0, 0, all->n, perm);
  PetscCall(DatasetAlloc(all->n - validation, train));
  PetscCall(DatasetAlloc(validation, val));
  for (int i = 0; i < all->n; i++) {
    RnDataset d = i < validation ? *val : *train;
    const int j = i < validation ? i : i - validation;
    memcpy(d->pixels + (size_t)j * chw, all->pixels + (size_t)perm[i] * chw, chw);
    d->labels[j] = all->labels[perm[i]];
    d->origin[j] = all->origin[perm[i]];
  }
  PetscCall(PetscFree(perm));
  PetscFunctionReturn(0);
}

PetscErrorCode RnDatasetMeanStd(RnDataset ds, double *mean, double *std)
{
  const int chw = ds->channels * ds->h * ds->w, hw = ds->h * ds->w;

  PetscFunctionBeginUser;
  for (int i = 0; i < chw; i++) {
    double s = 0;
    for (int n = 0; n < ds->n; n++) s += ds->pixels[(size_t)n * chw + i];
    mean[i] = s / 255.0 / PetscMax(ds->n, 1);
  }
  if (std)
    for (int c = 0; c < ds->channels; c++) {
      double s = 0;
      for (int n = 0; n < ds->n; n++)
        for (int i = 0; i < hw; i++) {
          double v = ds->pixels[(size_t)n * chw + c * hw + i] / 255.0 - mean[c * hw + i];
          s += v * v;
        }
      std[c] = sqrt(s / PetscMax((double)ds->n * hw, 1.0));
      if (std[c] < 1e-12) std[c] = 1.0;
    }
  PetscFunctionReturn(0);
}

PetscErrorCode RnDatasetGetBatch(RnDataset ds, const int *indices, int count, const double *mean, const double *std, const RnAugment *aug, uint64_t seed, uint32_t epoch,
                                 double *x, int *labels)
{
  const int C = ds->channels, H = ds->h, W = ds->w, hw = H * W, chw = C * hw;

  PetscFunctionBeginUser;
  for (int b = 0; b < count; b++) {
    const int n = indices[b];
    const uint8_t *px = ds->pixels + (size_t)n * chw;
    int dy = 0, dx = 0, flip = 0;
    PetscCheck(n >= 0 && n < ds->n, PETSC_COMM_SELF, PETSC_ERR_ARG_OUTOFRANGE, "sample %d out of range", n);
    if (aug) {
      /* keyed by the sample, not by its place in the batch */
      const uint32_t key = (uint32_t)ds->origin[n];
      const int span = 2 * aug->max_shift + 1;
      dy = (int)(RnRandUniformAt(seed, RN_STREAM_AUGMENT, epoch, key, 0) * span) - aug->max_shift;
      dx = (int)(RnRandUniformAt(seed, RN_STREAM_AUGMENT, epoch, key, 1) * span) - aug->max_shift;
      flip = aug->flip && RnRandUniformAt(seed, RN_STREAM_AUGMENT, epoch, key, 2) < 0.5;
    }
    labels[b] = ds->labels[n];
    for (int c = 0; c < C; c++) {
      const double s = std ? std[c] : 1.0;
      for (int i = 0; i < H; i++)
        for (int j = 0; j < W; j++) {
          /* output (i, j) shows input (i - dy, j' - dx), j' the flipped column */
          int si = i - dy, sj = (flip ? W - 1 - j : j) - dx;
          double v;
          if (si < 0 || si >= H || sj < 0 || sj >= W) {
            if (aug && aug->zero_fill) {
              x[(size_t)b * chw + c * hw + i * W + j] = 0.0; /* zero after normalisation: the mean */
              continue;
            }
            si = PetscMin(PetscMax(si, 0), H - 1);
            sj = PetscMin(PetscMax(sj, 0), W - 1);
          }
          v = px[c * hw + si * W + sj] / 255.0 - (mean ? mean[c * hw + si * W + sj] : 0.0);
          x[(size_t)b * chw + c * hw + i * W + j] = v / s;
        }
    }
  }
  PetscFunctionReturn(0);
}

PetscErrorCode RnCifarWriteSynthetic(const char *dir, int records_per_file, uint64_t seed)
{
  const char *files[] = {"data_batch_1.bin", "data_batch_2.bin", "data_batch_3.bin", "data_batch_4.bin", "data_batch_5.bin", "test_batch.bin"};
  unsigned char *buf;

  PetscFunctionBeginUser;
  PetscCheck(mkdir(dir, 0775) == 0 || errno == EEXIST, PETSC_COMM_SELF, PETSC_ERR_FILE_OPEN, "cannot create %s: %s", dir, strerror(errno));
  PetscCall(PetscMalloc1((size_t)records_per_file * RN_CIFAR_RECORD, &buf));
  for (int f = 0; f < 6; f++) {
    char path[PETSC_MAX_PATH_LEN];
    FILE *fp;
    for (int r = 0; r < records_per_file; r++) {
      unsigned char *rec = buf + (size_t)r * RN_CIFAR_RECORD;
      const int label = (int)(RnRandUniformAt(seed, RN_STREAM_DATA, (uint32_t)f, (uint32_t)r, 0) * 10);
      /* a class-coloured square at a class-dependent place, plus noise */
      const int ci = 4 + 2 * (label % 5), cj = 4 + 3 * (label / 5) * 3;
      rec[0] = (unsigned char)label;
      for (int c = 0; c < 3; c++)
        for (int i = 0; i < 32; i++)
          for (int j = 0; j < 32; j++) {
            double v = 60 + 40 * RnRandUniformAt(seed, RN_STREAM_DATA, (uint32_t)(100 + f), (uint32_t)r, (uint32_t)(c * 1024 + i * 32 + j));
            if (i >= ci && i < ci + 10 && j >= cj && j < cj + 10) v += ((label + c) % 3) * 70;
            rec[1 + c * 1024 + i * 32 + j] = (unsigned char)PetscMin(255.0, v);
          }
    }
    PetscCall(PetscSNPrintf(path, sizeof path, "%s/%s", dir, files[f]));
    fp = fopen(path, "wb");
    PetscCheck(fp, PETSC_COMM_SELF, PETSC_ERR_FILE_OPEN, "cannot write %s: %s", path, strerror(errno));
    PetscCheck(fwrite(buf, RN_CIFAR_RECORD, (size_t)records_per_file, fp) == (size_t)records_per_file, PETSC_COMM_SELF, PETSC_ERR_FILE_WRITE, "cannot write %s", path);
    fclose(fp);
  }
  PetscCall(PetscFree(buf));
  PetscFunctionReturn(0);
}
