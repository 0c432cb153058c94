/* cifar10.c: the CIFAR-10 reader, splits, normalisation, augmentation. */
#include "resnode/data/data.h"
#include "resnode/core/profile.h"
#include "resnode/core/rng.h"

#include <errno.h>
#include <limits.h>
#include <math.h>
#include <string.h>
#include <stdint.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

static const char *const rn_cifar_train_files[] = {"data_batch_1.bin", "data_batch_2.bin", "data_batch_3.bin", "data_batch_4.bin", "data_batch_5.bin"};
static const char *const rn_cifar_test_files[] = {"test_batch.bin"};
#define RN_CIFAR_PIXELS 3072
#define RN_CIFAR_CHUNK 1024 /* records per read: 3 MB */
#define RN_CIFAR_EXPECTED "a CIFAR-10 directory holds data_batch_1.bin .. data_batch_5.bin and test_batch.bin (the binary version)"
#define RN_CIFAR_HOWTO "get them with scripts/get-cifar10 DIR and point data.dir to DIR/cifar-10-batches-bin"

static PetscBool rn_dataset_shared = PETSC_TRUE;

void RnDatasetSetShared(PetscBool shared) { rn_dataset_shared = shared; }

PetscErrorCode RnDatasetCreate(MPI_Comm comm, int n, int channels, int h, int w, int nclasses, RnDataset *ds)
{
  RnDataset d;
  const size_t chw = (size_t)channels * h * w;

  PetscFunctionBeginUser;
  PetscCheck(n >= 0 && channels > 0 && h > 0 && w > 0 && nclasses > 0, PETSC_COMM_SELF, PETSC_ERR_ARG_OUTOFRANGE, "bad data set shape n %d, %d x %d x %d, %d classes", n, channels, h, w,
             nclasses);
  PetscCall(PetscNew(&d));
  d->comm = comm;
  d->n = n, d->channels = channels, d->h = h, d->w = w, d->nclasses = nclasses;
  {
    /* one window per node: pixels, then labels and origin (64-byte aligned),
     * in whole pages from a page boundary so that they can be write-protected */
    const size_t page = (size_t)sysconf(_SC_PAGESIZE);
    const size_t pix = (chw * (size_t)n + RN_ALIGNMENT - 1) / RN_ALIGNMENT * RN_ALIGNMENT, ints = sizeof(int) * (size_t)PetscMax(n, 1);
    const size_t region = (pix + 2 * ints + page - 1) / page * page;
    char *base;
    MPI_Aint size;
    int disp;
    if (rn_dataset_shared) PetscCallMPI(MPI_Comm_split_type(comm, MPI_COMM_TYPE_SHARED, 0, MPI_INFO_NULL, &d->node));
    else {
      int rank;
      PetscCallMPI(MPI_Comm_rank(comm, &rank));
      PetscCallMPI(MPI_Comm_split(comm, rank, 0, &d->node)); /* a node of one rank */
    }
    PetscCallMPI(MPI_Comm_rank(d->node, &d->node_rank));
    PetscCallMPI(MPI_Win_allocate_shared(d->node_rank == 0 ? (MPI_Aint)(region + page) : 0, 1, MPI_INFO_NULL, d->node, &base, &d->win));
    PetscCallMPI(MPI_Win_shared_query(d->win, 0, &size, &disp, &base));
    PetscCallMPI(MPI_Win_lock_all(MPI_MODE_NOCHECK, d->win));
    base = (char *)(((uintptr_t)base + page - 1) / page * page);
    d->region = base, d->region_len = region;
    d->pixels = (uint8_t *)base;
    d->labels = (int *)(base + pix);
    d->origin = (int *)(base + pix + ints);
  }
  if (RnDatasetWriter(d))
    for (int i = 0; i < n; i++) d->origin[i] = i;
  *ds = d;
  PetscFunctionReturn(0);
}

PetscErrorCode RnDatasetCopies(RnDataset ds, int *copies, double *bytes)
{
  const int writer = RnDatasetWriter(ds);

  PetscFunctionBeginUser;
  PetscCallMPI(MPI_Allreduce(&writer, copies, 1, MPI_INT, MPI_SUM, ds->comm));
  *bytes = (double)ds->region_len;
  PetscFunctionReturn(0);
}

PetscErrorCode RnDatasetPublish(RnDataset ds)
{
  PetscFunctionBeginUser;
  PetscCheck(!ds->sealed, PETSC_COMM_SELF, PETSC_ERR_ORDER, "a data set is published once; it is read-only after that");
  PetscCallMPI(MPI_Win_sync(ds->win));
  PetscCallMPI(MPI_Barrier(ds->node));
  PetscCallMPI(MPI_Win_sync(ds->win));
  PetscCheck(mprotect(ds->region, ds->region_len, PROT_READ) == 0, PETSC_COMM_SELF, PETSC_ERR_SYS, "cannot write-protect the data set's shared copy: %s", strerror(errno));
  ds->sealed = PETSC_TRUE;
  PetscFunctionReturn(0);
}

PetscErrorCode RnDatasetDestroy(RnDataset *ds)
{
  PetscFunctionBeginUser;
  if (!ds || !*ds) PetscFunctionReturn(0);
  /* the window's memory goes back to MPI as it came */
  if ((*ds)->sealed) PetscCheck(mprotect((*ds)->region, (*ds)->region_len, PROT_READ | PROT_WRITE) == 0, PETSC_COMM_SELF, PETSC_ERR_SYS, "cannot unprotect the data set's shared copy: %s", strerror(errno));
  PetscCallMPI(MPI_Win_unlock_all((*ds)->win));
  PetscCallMPI(MPI_Win_free(&(*ds)->win));
  PetscCallMPI(MPI_Comm_free(&(*ds)->node));
  PetscCall(PetscFree(*ds));
  *ds = NULL;
  PetscFunctionReturn(0);
}

/* Checks that dir and the set's files exist and have whole, equal numbers of
 * records; rank-local (the caller agrees). */
static PetscErrorCode CifarCheckFiles(const char *dir, const char *const *files, int nfiles, long long *counts, int *failedp, char *msg, size_t len)
{
  struct stat st;
  int failed = 0, longest = 0;
  const char *why = NULL;
  char path[PETSC_MAX_PATH_LEN], hint[PETSC_MAX_PATH_LEN + 64] = "";

  PetscFunctionBeginUser;
  if (!dir || !dir[0]) {
    PetscCall(PetscSNPrintf(msg, len, "no CIFAR-10 directory given; " RN_CIFAR_EXPECTED ": " RN_CIFAR_HOWTO));
    *failedp = 1;
    PetscFunctionReturn(0);
  }
  if (stat(dir, &st) != 0) why = strerror(errno);
  else if (!S_ISDIR(st.st_mode)) why = "not a directory";
  if (why) {
    PetscCall(PetscSNPrintf(msg, len, "CIFAR-10 directory %s: %s; " RN_CIFAR_EXPECTED ": " RN_CIFAR_HOWTO, dir, why));
    *failedp = 1;
    PetscFunctionReturn(0);
  }
  /* the commonest slip: DIR given instead of DIR/cifar-10-batches-bin */
  PetscCall(PetscSNPrintf(path, sizeof path, "%s/cifar-10-batches-bin", dir));
  if (stat(path, &st) == 0 && S_ISDIR(st.st_mode)) PetscCall(PetscSNPrintf(hint, sizeof hint, " (did you mean %s?)", path));
  for (int f = 0; f < nfiles && !failed; f++) {
    PetscCall(PetscSNPrintf(path, sizeof path, "%s/%s", dir, files[f]));
    counts[f] = 0;
    if (stat(path, &st) != 0) {
      PetscCall(PetscSNPrintf(msg, len, "%s: %s%s; " RN_CIFAR_EXPECTED ": " RN_CIFAR_HOWTO, path, errno == ENOENT ? "missing" : strerror(errno), hint));
      failed = 1;
    } else if (!S_ISREG(st.st_mode)) {
      PetscCall(PetscSNPrintf(msg, len, "%s: not a regular file; " RN_CIFAR_EXPECTED, path));
      failed = 1;
    } else if (st.st_size == 0) {
      PetscCall(PetscSNPrintf(msg, len, "%s: empty (0 records): truncated, or a failed copy", path));
      failed = 1;
    } else if (st.st_size % RN_CIFAR_RECORD != 0) {
      PetscCall(PetscSNPrintf(msg, len, "%s: %lld bytes is not a whole number of %d-byte records (%lld records and %lld bytes over): truncated, or not the CIFAR-10 binary version", path,
                              (long long)st.st_size, RN_CIFAR_RECORD, (long long)(st.st_size / RN_CIFAR_RECORD), (long long)(st.st_size % RN_CIFAR_RECORD)));
      failed = 1;
    } else {
      counts[f] = st.st_size / RN_CIFAR_RECORD;
      if (counts[f] > counts[longest]) longest = f;
    }
  }
  /* whole records but fewer than the set's other files: cut at a record boundary */
  for (int f = 0; f < nfiles && !failed; f++)
    if (counts[f] != counts[longest]) {
      PetscCall(PetscSNPrintf(msg, len, "%s/%s: %lld records, but %s/%s has %lld (truncated? every file of the set has as many, 10000 in CIFAR-10)", dir, files[f], counts[f], dir,
                              files[longest], counts[longest]));
      failed = 1;
    }
  *failedp = failed;
  PetscFunctionReturn(0);
}

/* Reads the first records of each file into ds; rank-local (the caller agrees). */
static PetscErrorCode CifarReadFiles(const char *dir, const char *const *files, int nfiles, const long long *counts, RnDataset ds, int *failedp, char *msg, size_t len)
{
  unsigned char *chunk;
  int filled = 0, failed = 0;

  PetscFunctionBeginUser;
  PetscCall(PetscMalloc1((size_t)RN_CIFAR_CHUNK * RN_CIFAR_RECORD, &chunk));
  for (int f = 0; f < nfiles && filled < ds->n && !failed; f++) {
    char path[PETSC_MAX_PATH_LEN];
    FILE *fp;
    const long long want = PetscMin(counts[f], (long long)(ds->n - filled));

    PetscCall(PetscSNPrintf(path, sizeof path, "%s/%s", dir, files[f]));
    fp = fopen(path, "rb");
    if (!fp) {
      PetscCall(PetscSNPrintf(msg, len, "%s: cannot open: %s", path, strerror(errno)));
      failed = 1;
      break;
    }
    for (long long r0 = 0; r0 < want && !failed; r0 += RN_CIFAR_CHUNK) {
      const size_t m = (size_t)PetscMin((long long)RN_CIFAR_CHUNK, want - r0);
      const size_t got = fread(chunk, RN_CIFAR_RECORD, m, fp);
      if (got != m) {
        PetscCall(PetscSNPrintf(msg, len, "%s: record %lld: %s (the file changed while being read?)", path, r0 + (long long)got, ferror(fp) ? strerror(errno) : "unexpected end of file"));
        failed = 1;
        break;
      }
      for (size_t k = 0; k < m; k++) {
        const unsigned char *rec = chunk + k * RN_CIFAR_RECORD;
        if (rec[0] > 9) {
          PetscCall(PetscSNPrintf(msg, len, "%s: record %lld has label %d; CIFAR-10 labels are 0..9 (CIFAR-100's binary files have 2 label bytes a record)", path, r0 + (long long)k, rec[0]));
          failed = 1;
          break;
        }
        ds->labels[filled] = rec[0];
        memcpy(ds->pixels + (size_t)filled * RN_CIFAR_PIXELS, rec + 1, RN_CIFAR_PIXELS); /* R, G, B planes: (c, h, w) already */
        filled++;
      }
    }
    fclose(fp); /* read-only: nothing to lose */
  }
  PetscCall(PetscFree(chunk));
  *failedp = failed;
  PetscFunctionReturn(0);
}

PetscErrorCode RnCifarCheck(MPI_Comm comm, const char *dir, PetscBool train)
{
  long long counts[5] = {0};
  char msg[1024] = "";
  int failed = 0;

  PetscFunctionBeginUser;
  PetscCall(CifarCheckFiles(dir, train ? rn_cifar_train_files : rn_cifar_test_files, train ? 5 : 1, counts, &failed, msg, sizeof msg));
  PetscCall(RnAgreeInputOnHosts(comm, failed, msg));
  PetscFunctionReturn(0);
}

static PetscErrorCode CifarLoadBody(MPI_Comm comm, const char *dir, PetscBool train, int max_records, RnDataset *dsp)
{
  const char *const *files = train ? rn_cifar_train_files : rn_cifar_test_files;
  const int nfiles = train ? 5 : 1;
  long long counts[5] = {0}, total = 0;
  char msg[1024] = "";
  int failed = 0, any;
  RnDataset ds = NULL;

  PetscFunctionBeginUser;
  *dsp = NULL;
  PetscCheck(max_records >= 0, PETSC_COMM_SELF, PETSC_ERR_ARG_OUTOFRANGE, "max_records %d < 0", max_records);
  /* every rank checks its own view of the files (node-local file systems may
   * differ), then all agree, so no rank is left behind in a collective */
  PetscCall(CifarCheckFiles(dir, files, nfiles, counts, &failed, msg, sizeof msg));
  for (int f = 0; f < nfiles; f++) total += counts[f];
  if (max_records > 0 && total > max_records) total = max_records;
  if (!failed && total > INT_MAX) {
    PetscCall(PetscSNPrintf(msg, sizeof msg, "%s: %lld records are more than this reader can index", dir, total));
    failed = 1;
  }
  PetscCall(RnAgreeInputOnHosts(comm, failed, msg));
  PetscCall(RnDatasetCreate(comm, (int)total, 3, 32, 32, 10, &ds));
  /* one reader a node; the others learn its outcome */
  if (RnDatasetWriter(ds)) PetscCall(CifarReadFiles(dir, files, nfiles, counts, ds, &failed, msg, sizeof msg));
  PetscCall(RnDatasetPublish(ds));
  PetscCallMPI(MPI_Allreduce(&failed, &any, 1, MPI_INT, MPI_MAX, comm));
  if (any) PetscCall(RnDatasetDestroy(&ds)); /* before the agreed error unwinds */
  PetscCall(RnAgreeInput(comm, failed, msg));
  *dsp = ds;
  PetscFunctionReturn(0);
}

/* the files, read and published, logged as data */
PetscErrorCode RnCifarLoad(MPI_Comm comm, const char *dir, PetscBool train, int max_records, RnDataset *dsp)
{
  PetscFunctionBeginUser;
  PetscCall(RnEventBegin(RN_EV_DATA));
  PetscCall(CifarLoadBody(comm, dir, train, max_records, dsp));
  PetscCall(RnEventEnd(RN_EV_DATA));
  PetscFunctionReturn(0);
}

PetscErrorCode RnDatasetSplit(RnDataset all, int validation, uint64_t seed, RnDataset *train, RnDataset *val)
{
  int *perm;
  const size_t chw = (size_t)all->channels * all->h * all->w;

  PetscFunctionBeginUser;
  *train = *val = NULL;
  RnInputCheck(validation >= 0 && validation < all->n, all->comm, "a validation split of %d samples must be in [0, %d): the data set has %d", validation, all->n, all->n);
  PetscCall(PetscMalloc1(all->n, &perm));
  RnRandPermutation(seed, RN_STREAM_SPLIT, 0, 0, all->n, perm);
  PetscCall(RnDatasetCreate(all->comm, all->n - validation, all->channels, all->h, all->w, all->nclasses, train));
  PetscCall(RnDatasetCreate(all->comm, validation, all->channels, all->h, all->w, all->nclasses, val));
  for (int i = 0; i < all->n && RnDatasetWriter(all); i++) {
    RnDataset d = i < validation ? *val : *train;
    const int j = i < validation ? i : i - validation;
    memcpy(d->pixels + (size_t)j * chw, all->pixels + (size_t)perm[i] * chw, chw);
    d->labels[j] = all->labels[perm[i]];
    d->origin[j] = all->origin[perm[i]];
  }
  PetscCall(RnDatasetPublish(*train));
  PetscCall(RnDatasetPublish(*val));
  PetscCall(PetscFree(perm));
  PetscFunctionReturn(0);
}

PetscErrorCode RnDatasetSplitIndices(int n, int validation, uint64_t seed, int *train, int *val)
{
  int *perm;

  PetscFunctionBeginUser;
  PetscCall(PetscMalloc1(n, &perm));
  /* the permutation of RnDatasetSplit: the same samples in the same order */
  RnRandPermutation(seed, RN_STREAM_SPLIT, 0, 0, n, perm);
  for (int i = 0; i < n; i++) {
    if (i < validation) val[i] = perm[i];
    else train[i - validation] = perm[i];
  }
  PetscCall(PetscFree(perm));
  PetscFunctionReturn(0);
}

PetscErrorCode RnDatasetStratifiedFolds(RnDataset ds, int k, uint64_t seed, int *fold)
{
  int *members, *perm, next = 0;

  PetscFunctionBeginUser;
  RnInputCheck(k >= 2 && k <= ds->n, ds->comm, "%d folds of %d samples: use 2 <= k <= the sample count", k, ds->n);
  PetscCall(PetscMalloc2(ds->n, &members, ds->n, &perm));
  for (int c = 0; c < ds->nclasses; c++) {
    int m = 0;
    for (int i = 0; i < ds->n; i++)
      if (ds->labels[i] == c) members[m++] = i;
    /* the class's samples in an order from (seed, class), dealt to the folds
     * in turn, the deal going on where the previous class's ended: every
     * class is spread evenly, and so are the fold sizes */
    RnRandPermutation(seed, RN_STREAM_SPLIT, 1, (uint32_t)c, m, perm);
    for (int j = 0; j < m; j++) fold[members[perm[j]]] = next, next = (next + 1) % k;
  }
  PetscCall(PetscFree2(members, perm));
  PetscFunctionReturn(0);
}

PetscErrorCode RnDatasetMeanStd(RnDataset ds, double *mean, double *std)
{
  PetscFunctionBeginUser;
  PetscCall(RnDatasetMeanStdOf(ds, NULL, ds->n, mean, std));
  PetscFunctionReturn(0);
}

PetscErrorCode RnDatasetMeanStdOf(RnDataset ds, const int *indices, int count, double *mean, double *std)
{
  const int chw = ds->channels * ds->h * ds->w, hw = ds->h * ds->w;
  const uint64_t n = (uint64_t)count;
  uint64_t *s1, *s2;

  PetscFunctionBeginUser;
  RnInputCheck(count > 0, ds->comm, "the mean of an empty data set is undefined");
  /* integer sums, sample by sample (contiguous): exact and cache-friendly */
  PetscCall(PetscCalloc2(chw, &s1, chw, &s2));
  for (int k = 0; k < count; k++) {
    const int s = indices ? indices[k] : k;
    const uint8_t *px = ds->pixels + (size_t)s * chw;
    for (int i = 0; i < chw; i++) {
      const uint64_t p = px[i];
      s1[i] += p;
      s2[i] += p * p;
    }
  }
  for (int i = 0; i < chw; i++) mean[i] = (double)s1[i] / (255.0 * (double)n);
  if (std)
    for (int c = 0; c < ds->channels; c++) {
      /* n^2 var_i = n s2 - s1^2, an exact integer for n up to ~10^7 */
      double acc = 0;
      for (int i = c * hw; i < (c + 1) * hw; i++) acc += (double)(n * s2[i] - s1[i] * s1[i]);
      std[c] = sqrt(acc / ((double)n * (double)n * hw)) / 255.0;
      if (!(std[c] > 0)) std[c] = 1.0; /* a constant channel: leave it unscaled */
    }
  PetscCall(PetscFree2(s1, s2));
  PetscFunctionReturn(0);
}

void RnAugmentDraw(const RnAugment *aug, uint64_t seed, uint32_t epoch, uint32_t sample, int *dy, int *dx, PetscBool *flip)
{
  const int span = 2 * aug->max_shift + 1;
  /* u < 1, but guard the product's rounding all the same */
  *dy = PetscMin((int)(RnRandUniformAt(seed, RN_STREAM_AUGMENT, epoch, sample, 0) * span), span - 1) - aug->max_shift;
  *dx = PetscMin((int)(RnRandUniformAt(seed, RN_STREAM_AUGMENT, epoch, sample, 1) * span), span - 1) - aug->max_shift;
  *flip = (aug->flip && RnRandUniformAt(seed, RN_STREAM_AUGMENT, epoch, sample, 2) < 0.5) ? PETSC_TRUE : PETSC_FALSE;
}

void RnAugmentDrawFraction(const RnAugment *aug, int h, int w, uint64_t seed, uint32_t epoch, uint32_t sample, double *ty, double *tx, PetscBool *flip)
{
  *ty = (2.0 * RnRandUniformAt(seed, RN_STREAM_AUGMENT, epoch, sample, 0) - 1.0) * aug->shift_fraction * h;
  *tx = (2.0 * RnRandUniformAt(seed, RN_STREAM_AUGMENT, epoch, sample, 1) - 1.0) * aug->shift_fraction * w;
  *flip = (aug->flip && RnRandUniformAt(seed, RN_STREAM_AUGMENT, epoch, sample, 2) < 0.5) ? PETSC_TRUE : PETSC_FALSE;
}

/* Shifts by fractions of a pixel: z at (i - ty, j' - tx) interpolated
 * bilinearly between the four pixels around it, coordinates outside the
 * image clamped to its edge (Keras' ImageDataGenerator with
 * width/height_shift_range < 1 and fill_mode 'nearest', order-1 spline), or
 * 0 outside with zero_fill. */
static PetscErrorCode GetBatchSubpixel(RnDataset ds, const int *indices, int count, const double *mean, const double *std, const RnAugment *aug, uint64_t seed, uint32_t epoch,
                                       double *x, int *labels)
{
  const int C = ds->channels, H = ds->h, W = ds->w, hw = H * W, chw = C * hw;
  double *z;

  PetscFunctionBeginUser;
  PetscCall(PetscMalloc1(chw, &z));
  for (int b = 0; b < count; b++) {
    const int n = indices[b];
    double ty, tx, *out = x + (size_t)b * chw;
    PetscBool flip;
    const uint8_t *px;

    PetscCheck(n >= 0 && n < ds->n, PETSC_COMM_SELF, PETSC_ERR_ARG_OUTOFRANGE, "sample %d of the batch is %d, outside the data set's [0, %d)", b, n, ds->n);
    px = ds->pixels + (size_t)n * chw;
    RnAugmentDrawFraction(aug, H, W, seed, epoch, (uint32_t)ds->origin[n], &ty, &tx, &flip);
    labels[b] = ds->labels[n];
    for (int c = 0; c < C; c++) {
      const double inv = 1.0 / (std ? std[c] : 1.0);
      for (int k = c * hw; k < (c + 1) * hw; k++) z[k] = (px[k] / 255.0 - (mean ? mean[k] : 0.0)) * inv;
    }
    for (int i = 0; i < H; i++) {
      const double sy = i - ty;
      const int y0 = (int)floor(sy);
      const double wy = sy - y0;
      const int ya = PetscMin(PetscMax(y0, 0), H - 1), yb = PetscMin(PetscMax(y0 + 1, 0), H - 1);
      const PetscBool yout = sy < 0 || sy > H - 1;
      for (int j = 0; j < W; j++) {
        const double sx = (flip ? W - 1 - j : j) - tx;
        const int x0 = (int)floor(sx);
        const double wx = sx - x0;
        const int xa = PetscMin(PetscMax(x0, 0), W - 1), xb = PetscMin(PetscMax(x0 + 1, 0), W - 1);
        const PetscBool out_of_image = yout || sx < 0 || sx > W - 1;
        for (int c = 0; c < C; c++) {
          const double *zc = z + c * hw;
          out[c * hw + i * W + j] = out_of_image && aug->zero_fill ? 0.0
                                                                  : (1 - wy) * ((1 - wx) * zc[ya * W + xa] + wx * zc[ya * W + xb]) + wy * ((1 - wx) * zc[yb * W + xa] + wx * zc[yb * W + xb]);
        }
      }
    }
  }
  PetscCall(PetscFree(z));
  PetscFunctionReturn(0);
}

static PetscErrorCode DatasetGetBatchBody(RnDataset ds, const int *indices, int count, const double *mean, const double *std, const RnAugment *aug, uint64_t seed, uint32_t epoch,
                                 double *x, int *labels)
{
  const int C = ds->channels, H = ds->h, W = ds->w, hw = H * W, chw = C * hw;
  const PetscBool zero_fill = aug && aug->zero_fill ? PETSC_TRUE : PETSC_FALSE;
  int *col;

  PetscFunctionBeginUser;
  PetscCheck(!aug || aug->max_shift >= 0, PETSC_COMM_SELF, PETSC_ERR_ARG_OUTOFRANGE, "augmentation shift %d < 0", aug->max_shift);
  if (aug && aug->shift_fraction > 0) {
    PetscCall(GetBatchSubpixel(ds, indices, count, mean, std, aug, seed, epoch, x, labels));
    PetscFunctionReturn(0);
  }
  PetscCall(PetscMalloc1(W, &col));
  for (int b = 0; b < count; b++) {
    const int n = indices[b];
    const uint8_t *px;
    double *out = x + (size_t)b * chw;
    int dy = 0, dx = 0;
    PetscBool flip = PETSC_FALSE;

    PetscCheck(n >= 0 && n < ds->n, PETSC_COMM_SELF, PETSC_ERR_ARG_OUTOFRANGE, "sample %d of the batch is %d, outside the data set's [0, %d)", b, n, ds->n);
    px = ds->pixels + (size_t)n * chw;
    if (aug) RnAugmentDraw(aug, seed, epoch, (uint32_t)ds->origin[n], &dy, &dx, &flip); /* keyed by the sample, not its place */
    labels[b] = ds->labels[n];
    /* the source column of each output column; -1: outside, zero filled */
    for (int j = 0; j < W; j++) {
      int sj = (flip ? W - 1 - j : j) - dx;
      if (sj < 0 || sj >= W) sj = zero_fill ? -1 : PetscMin(PetscMax(sj, 0), W - 1);
      col[j] = sj;
    }
    for (int c = 0; c < C; c++) {
      const double inv = 1.0 / (std ? std[c] : 1.0);
      for (int i = 0; i < H; i++) {
        int si = i - dy;
        double *row = out + c * hw + i * W;
        if (si < 0 || si >= H) {
          if (zero_fill) {
            for (int j = 0; j < W; j++) row[j] = 0.0;
            continue;
          }
          si = PetscMin(PetscMax(si, 0), H - 1);
        }
        for (int j = 0; j < W; j++) {
          const int k = c * hw + si * W + col[j];
          row[j] = col[j] < 0 ? 0.0 : (px[k] / 255.0 - (mean ? mean[k] : 0.0)) * inv;
        }
      }
    }
  }
  PetscCall(PetscFree(col));
  PetscFunctionReturn(0);
}

/* a batch, logged as data */
PetscErrorCode RnDatasetGetBatch(RnDataset ds, const int *indices, int count, const double *mean, const double *std, const RnAugment *aug, uint64_t seed, uint32_t epoch,
                                 double *x, int *labels)
{
  PetscFunctionBeginUser;
  PetscCall(RnEventBegin(RN_EV_DATA));
  PetscCall(DatasetGetBatchBody(ds, indices, count, mean, std, aug, seed, epoch, x, labels));
  PetscCall(RnEventEnd(RN_EV_DATA));
  PetscFunctionReturn(0);
}

PetscErrorCode RnCifarWriteSynthetic(const char *dir, int records_per_file, uint64_t seed)
{
  const char *files[] = {"data_batch_1.bin", "data_batch_2.bin", "data_batch_3.bin", "data_batch_4.bin", "data_batch_5.bin", "test_batch.bin"};
  unsigned char *buf;

  PetscFunctionBeginUser;
  PetscCheck(records_per_file > 0, PETSC_COMM_SELF, PETSC_ERR_ARG_OUTOFRANGE, "records_per_file %d must be positive", records_per_file);
  PetscCheck(mkdir(dir, 0775) == 0 || errno == EEXIST, PETSC_COMM_SELF, PETSC_ERR_FILE_OPEN, "cannot create %s: %s", dir, strerror(errno));
  PetscCall(PetscMalloc1((size_t)records_per_file * RN_CIFAR_RECORD, &buf));
  for (int f = 0; f < 6; f++) {
    char path[PETSC_MAX_PATH_LEN];
    FILE *fp;
    size_t written;
    int closed;

    for (int r = 0; r < records_per_file; r++) {
      unsigned char *rec = buf + (size_t)r * RN_CIFAR_RECORD;
      const int label = (int)(RnRandUniformAt(seed, RN_STREAM_DATA, (uint32_t)f, (uint32_t)r, 0) * 10);
      /* a class-coloured square at a class-dependent place (5 rows x 2
       * columns of places, 3 colours), on noise in [60, 100) */
      const int ci = 4 + 2 * (label % 5), cj = 4 + 9 * (label / 5);
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
    written = fwrite(buf, RN_CIFAR_RECORD, (size_t)records_per_file, fp);
    closed = fclose(fp); /* a full disk may only show here */
    PetscCheck(written == (size_t)records_per_file && closed == 0, PETSC_COMM_SELF, PETSC_ERR_FILE_WRITE, "cannot write %s: %s", path, strerror(errno));
  }
  PetscCall(PetscFree(buf));
  PetscFunctionReturn(0);
}
