/* rng.h: counter-based random numbers (Philox4x32-10).
 *
 * Every random number in a run is a pure function of (seed, stream, a, b, i):
 * the stream says what it is for, a and b key it (e.g. member and step), i is
 * its index. So a run's results do not depend on how many ranks it had or in
 * which order they drew. */
#ifndef RESNODE_RNG_H
#define RESNODE_RNG_H

#include <stddef.h>
#include <stdint.h>

typedef enum {
  RN_STREAM_INIT = 1,    /* parameter initialisation: a = member */
  RN_STREAM_NOISE = 2,   /* SGD noise xi_j: a = member, b = step */
  RN_STREAM_ORDER = 3,   /* mini-batch order: a = member, b = epoch */
  RN_STREAM_AUGMENT = 4, /* data augmentation: a = epoch, b = sample */
  RN_STREAM_DATA = 5,    /* synthetic data sets: a = data set id */
  RN_STREAM_SPLIT = 6,   /* train/validation splits, folds */
  RN_STREAM_TEST = 7
} RnStream;

/* One Philox4x32-10 block: 4 uniform 32-bit words. */
void RnPhilox4x32(uint64_t key, const uint32_t counter[4], uint32_t out[4]);

/* Uniform doubles in (0, 1): out[k] for k < n from counters (stream, a, b, k). */
void RnRandUniform(uint64_t seed, RnStream stream, uint32_t a, uint32_t b, size_t n, double *out);
/* Standard normal doubles (Box-Muller on the uniforms above). */
void RnRandNormal(uint64_t seed, RnStream stream, uint32_t a, uint32_t b, size_t n, double *out);
/* One uniform double in (0, 1) at index i. */
double RnRandUniformAt(uint64_t seed, RnStream stream, uint32_t a, uint32_t b, uint32_t i);
/* A permutation of 0..n-1 (Fisher-Yates on the uniforms of (stream, a, b)). */
void RnRandPermutation(uint64_t seed, RnStream stream, uint32_t a, uint32_t b, int n, int *perm);

#endif
