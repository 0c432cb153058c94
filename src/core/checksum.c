/* checksum.c: checksums and hashes (checksum.h). */
#include "resnode/core/checksum.h"

#include <string.h>

#define FNV_PRIME 0x100000001b3ULL
#define HASH_BASIS 0x9e3779b97f4a7c15ULL /* 2^64 / golden ratio */
#define HASH_SHIFT 29                    /* folds the high bits back in */

uint64_t RnChecksum(const void *data, size_t len, uint64_t h)
{
  const unsigned char *p = data;
  for (size_t i = 0; i < len; i++) {
    h ^= p[i];
    h *= FNV_PRIME;
  }
  return h;
}

uint64_t RnChecksumWords(const double *v, size_t n)
{
  uint64_t c = 0, w;
  for (size_t k = 0; k < n; k++) {
    memcpy(&w, v + k, sizeof w);
    c += w * (2 * (uint64_t)k + 1);
  }
  return c;
}

uint64_t RnHashWords(const double *v, size_t n)
{
  uint64_t h = HASH_BASIS, w;
  for (size_t i = 0; i < n; i++) {
    memcpy(&w, &v[i], sizeof w);
    h = (h ^ w) * FNV_PRIME;
    h ^= h >> HASH_SHIFT;
  }
  return h ^ (uint64_t)n;
}
