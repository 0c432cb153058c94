/* data.h: image data sets in memory (CIFAR-10's standard binary files), splits,
 * normalisation and augmentation.
 *
 * CIFAR-10 binary format: data_batch_1.bin .. data_batch_5.bin (training)
 * and test_batch.bin, each of records of 1 label byte (0..9) and 3072 pixel
 * bytes: the R plane, then G, then B, each 32 x 32 row-major (so a record's
 * pixels are already in (c, h, w) order); 10000 records per file. Get them
 * with scripts/get-cifar10 DIR (-> DIR/cifar-10-batches-bin).
 *
 * The ranks of a node share one copy of a data set (MPI-3 shared memory:
 * MPI_Comm_split_type(MPI_COMM_TYPE_SHARED) and MPI_Win_allocate_shared):
 * the node's first rank reads and checks the records, the others map them
 * (60000 images are 184 MB a node, not a rank). Every rank checks that the
 * files exist and have whole records, and the ranks agree on every outcome
 * (RnAgreeInput), so a bad or missing file is an RN_ERR_INPUT on every rank
 * at once, even when the nodes' file systems differ. */
#ifndef RESNODE_DATA_H
#define RESNODE_DATA_H

#include "resnode/core/core.h"

typedef struct RnDataset_s *RnDataset;
struct RnDataset_s {
  MPI_Comm comm; /* the ranks that hold this same data set (errors are raised on it) */
  int n, channels, h, w, nclasses;
  uint8_t *pixels; /* n x (channels, h, w), row-major */
  int *labels;     /* n, in 0..nclasses-1 */
  int *origin;     /* index of each sample in the data set it was loaded as (keys
                      its augmentation, so it survives splits) */
  /* pixels, labels and origin live in one node-shared window, written by
   * node rank 0 only (RnDatasetWriter) and published by RnDatasetPublish,
   * which write-protects it: the pages [region, region + region_len) */
  MPI_Comm node;
  int node_rank;
  MPI_Win win;
  void *region;
  size_t region_len;
  PetscBool sealed;
};

#define RN_CIFAR_RECORD 3073 /* bytes a record: label + 3 x 32 x 32 */

/* Collective on comm. train: the five data batches (50000 images, in file
 * order), else the test batch (10000). max_records > 0 keeps only the first
 * max_records samples (quick configs): the size of every file is still
 * checked, labels only of the records read. Input errors (RN_ERR_INPUT, on
 * every rank, message naming the file): dir missing or not a directory, a file
 * missing, a size that is not a whole number of records, a file with fewer
 * records than the others of the set (truncated), a label > 9. */
/* The checks of RnCifarLoad on the files' sizes, without reading them: on
 * every rank (each sees its own node's files), before a run writes
 * anything; a file missing on some hosts only is named with the host. */
PetscErrorCode RnCifarCheck(MPI_Comm comm, const char *dir, PetscBool train);
PetscErrorCode RnCifarLoad(MPI_Comm comm, const char *dir, PetscBool train, int max_records, RnDataset *ds);

/* An empty data set of n samples in node-shared memory (pixels and labels
 * uninitialised, origin[i] = i). Collective on comm. Only the writer (node
 * rank 0) fills it; then every rank calls RnDatasetPublish, once. */
PetscErrorCode RnDatasetCreate(MPI_Comm comm, int n, int channels, int h, int w, int nclasses, RnDataset *ds);
static inline PetscBool RnDatasetWriter(RnDataset ds) { return (PetscBool)(ds->node_rank == 0); }
/* Whether data sets created from now on are shared by the ranks of a node
 * (default) or each rank holds its own copy (as ranks on different nodes do;
 * tests use it to model nodes whose file systems differ). */
void RnDatasetSetShared(PetscBool shared);
/* The writer's stores become visible to the node's ranks (collective on
 * ds->node), and the node's copy becomes read-only in fact: every rank's
 * mapping of it is write-protected (mprotect), so a stray write is a crash,
 * never a silently wrong result on another rank. */
PetscErrorCode RnDatasetPublish(RnDataset ds);
/* The copies of the data set the ranks of its communicator hold (one a node
 * when shared), and the bytes of one. Collective. */
PetscErrorCode RnDatasetCopies(RnDataset ds, int *copies, double *bytes);
PetscErrorCode RnDatasetDestroy(RnDataset *ds);

/* A partition by the permutation perm of (seed, RN_STREAM_SPLIT, a = 0, b = 0)
 * of 0..n-1: samples perm[0 .. validation-1] go to val (in that order), the
 * rest to train. 0 <= validation < all->n, else RN_ERR_INPUT. Keeps origin. */
PetscErrorCode RnDatasetSplit(RnDataset all, int validation, uint64_t seed, RnDataset *train, RnDataset *val);

/* The same partition as index lists into all: val[0 .. validation-1] and
 * train[0 .. n-validation-1], in the order of RnDatasetSplit's sets. */
PetscErrorCode RnDatasetSplitIndices(int n, int validation, uint64_t seed, int *train, int *val);
/* Stratified k-fold (2 <= k <= n): fold[i] in 0..k-1 for every sample, from
 * the seed and the labels only (not the rank or group count). Each class is
 * shuffled (seed, RN_STREAM_SPLIT, a = 1, b = class) and dealt to the folds in
 * turn, each class's deal starting where the previous one ended: the folds
 * are disjoint, cover the set, and any two hold a class's samples (and
 * samples in all) within one of each other. */
PetscErrorCode RnDatasetStratifiedFolds(RnDataset ds, int k, uint64_t seed, int *fold);
/* mean[channels h w]: the per-pixel mean in [0, 1] units (pixel / 255).
 * std[channels] (or NULL): per channel, the root mean square of
 * pixel / 255 - mean over the channel's pixels of all samples, so that
 * normalised data has mean 0 and variance 1 in each channel (a constant
 * channel gets std 1). Exact: integer sums. */
PetscErrorCode RnDatasetMeanStd(RnDataset ds, double *mean, double *std);
/* The same over the samples indices[0 .. count-1] (indices NULL: 0 .. count-1). */
PetscErrorCode RnDatasetMeanStdOf(RnDataset ds, const int *indices, int count, double *mean, double *std);

typedef struct {
  int max_shift;       /* random shifts dy, dx uniform in [-max_shift, max_shift] (4 in the paper) */
  PetscBool zero_fill; /* shifted-in pixels are 0 after normalisation (the mean image);
                          else the edge pixel is replicated */
  PetscBool flip;      /* a horizontal flip with probability 1/2 */
  double shift_fraction; /* > 0: instead, shifts uniform in [-f h, f h] x [-f w, f w],
                            sub-pixel and bilinear (RnAugmentDrawFraction) */
} RnAugment;

/* The transform of one sample: dy, dx and flip from RnRandUniformAt(seed,
 * RN_STREAM_AUGMENT, epoch, sample, k) with k = 0 (dy), 1 (dx), 2 (flip).
 * sample is the sample's origin, so the transform depends on (seed, epoch,
 * sample) only: not on the batch, its order or the rank. */
void RnAugmentDraw(const RnAugment *aug, uint64_t seed, uint32_t epoch, uint32_t sample, int *dy, int *dx, PetscBool *flip);

/* With shift_fraction f > 0: ty = (2 u0 - 1) f h, tx = (2 u1 - 1) f w from the
 * same draws (u0, u1, u2 for the flip); the batch then holds z at (i - ty,
 * j' - tx) interpolated bilinearly, outside the image clamped to the edge
 * (Keras' width/height_shift_range with fill_mode "nearest") or 0 (zero_fill). */
void RnAugmentDrawFraction(const RnAugment *aug, int h, int w, uint64_t seed, uint32_t epoch, uint32_t sample, double *ty, double *tx, PetscBool *flip);
/* For b < count, sample n = indices[b] (0 <= n < ds->n):
 *   labels[b] = ds->labels[n],
 *   x[b][c][i][j] = z(c, i - dy, j' - dx), j' = flip ? w-1-j : j,
 *   z(c, i, j) = (pixel(n, c, i, j) / 255 - mean[c][i][j]) / std[c],
 * (mean NULL: 0, std NULL: 1; aug NULL: dy = dx = 0, no flip), and outside
 * the image z = 0 (zero_fill) or z at the nearest edge pixel. So the image is
 * normalised, shifted by (dy, dx) (as a crop of the image padded by
 * max_shift) and then mirrored. x holds count * channels * h * w doubles. */
PetscErrorCode RnDatasetGetBatch(RnDataset ds, const int *indices, int count, const double *mean, const double *std, const RnAugment *aug, uint64_t seed, uint32_t epoch,
                                 double *x, int *labels);

/* Writes dir/data_batch_1..5.bin and dir/test_batch.bin, records_per_file
 * records each, with learnable class patterns (a 10 x 10 square whose place
 * and colour depend on the class, on uniform noise); creates dir (not its
 * parents). Rank-local: call it on one rank. Deterministic in seed. */
PetscErrorCode RnCifarWriteSynthetic(const char *dir, int records_per_file, uint64_t seed);

#endif
