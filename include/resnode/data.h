/* data.h: image data sets in memory (CIFAR-10's standard binary files), splits,
 * normalisation and augmentation.
 *
 * CIFAR-10 binary format: data_batch_1.bin .. data_batch_5.bin (training)
 * and test_batch.bin, each of records of 1 label byte (0..9) and 3072 pixel
 * bytes: the R plane, then G, then B, each 32 x 32 row-major. Every rank
 * reads the files (pixels stay uint8) and validates them identically, so a
 * bad file is an input error on all ranks at once. */
#ifndef RESNODE_DATA_H
#define RESNODE_DATA_H

#include "resnode/core.h"

typedef struct RnDataset_s *RnDataset;
struct RnDataset_s {
  int n, channels, h, w, nclasses;
  uint8_t *pixels; /* n x (channels h w) */
  int *labels;     /* n */
  int *origin;     /* index of each sample in the file set it came from (keys augmentation) */
};

#define RN_CIFAR_RECORD 3073

/* train: the five data batches, else the test batch; max_records > 0 keeps
 * only the first max_records samples (quick runs). */
PetscErrorCode RnCifarLoad(MPI_Comm comm, const char *dir, PetscBool train, int max_records, RnDataset *ds);
/* Splits by a permutation from (seed, RN_STREAM_SPLIT): the first
 * `validation` samples of the permutation go to val, the rest to train. */
PetscErrorCode RnDatasetSplit(RnDataset all, int validation, uint64_t seed, RnDataset *train, RnDataset *val);
/* Per-pixel mean in [0, 1] units (channels h w values); std per channel (or NULL). */
PetscErrorCode RnDatasetMeanStd(RnDataset ds, double *mean, double *std);

typedef struct {
  int max_shift;      /* random shifts in [-max_shift, max_shift], both axes */
  PetscBool zero_fill;/* fill with zeros (else replicate the edge) */
  PetscBool flip;     /* horizontal flips with probability 1/2 */
} RnAugment;

/* x[count * chw] = (pixel / 255 - mean) / std of the samples indices[],
 * augmented (aug may be NULL) with random numbers keyed by (seed, epoch,
 * origin of the sample): independent of the batch and of the rank. */
PetscErrorCode RnDatasetGetBatch(RnDataset ds, const int *indices, int count, const double *mean, const double *std, const RnAugment *aug, uint64_t seed, uint32_t epoch,
                                 double *x, int *labels);
PetscErrorCode RnDatasetDestroy(RnDataset *ds);

/* Writes a small CIFAR-format data set (records_per_file records in each of
 * the six files) with learnable class patterns, for tests and demos. */
PetscErrorCode RnCifarWriteSynthetic(const char *dir, int records_per_file, uint64_t seed);

#endif
