/* rng.c: Philox4x32-10 (Salmon et al., SC'11), the counter-based generator
 * behind every random number of a run. */
#include "resnode/core/rng.h"

#include <math.h>

#define PHILOX_M0 0xD2511F53u
#define PHILOX_M1 0xCD9E8D57u
#define PHILOX_W0 0x9E3779B9u
#define PHILOX_W1 0xBB67AE85u

static inline void philox_round(uint32_t k0, uint32_t k1, uint32_t c[4])
{
  uint64_t p0 = (uint64_t)PHILOX_M0 * c[0];
  uint64_t p1 = (uint64_t)PHILOX_M1 * c[2];
  uint32_t hi0 = (uint32_t)(p0 >> 32), lo0 = (uint32_t)p0;
  uint32_t hi1 = (uint32_t)(p1 >> 32), lo1 = (uint32_t)p1;
  uint32_t n0 = hi1 ^ c[1] ^ k0;
  uint32_t n2 = hi0 ^ c[3] ^ k1;
  c[0] = n0;
  c[1] = lo1;
  c[2] = n2;
  c[3] = lo0;
}

void RnPhilox4x32(uint64_t key, const uint32_t counter[4], uint32_t out[4])
{
  uint32_t k0 = (uint32_t)key, k1 = (uint32_t)(key >> 32);
  uint32_t c[4] = {counter[0], counter[1], counter[2], counter[3]};
  for (int r = 0; r < 10; r++) {
    philox_round(k0, k1, c);
    k0 += PHILOX_W0;
    k1 += PHILOX_W1;
  }
  out[0] = c[0];
  out[1] = c[1];
  out[2] = c[2];
  out[3] = c[3];
}

/* 53 random bits from two words, mapped into the open interval (0, 1). */
static inline double to_unit(uint32_t hi, uint32_t lo)
{
  uint64_t bits = ((uint64_t)hi << 21) ^ (uint64_t)(lo >> 11);
  bits &= ((uint64_t)1 << 53) - 1;
  return ((double)bits + 0.5) * (1.0 / 9007199254740992.0);
}

double RnRandUniformAt(uint64_t seed, RnStream stream, uint32_t a, uint32_t b, uint32_t i)
{
  uint32_t ctr[4] = {(uint32_t)stream, a, b, i}, out[4];
  RnPhilox4x32(seed, ctr, out);
  return to_unit(out[0], out[1]);
}

void RnRandUniform(uint64_t seed, RnStream stream, uint32_t a, uint32_t b, size_t n, double *u)
{
  for (size_t k = 0; k < n; k++) u[k] = RnRandUniformAt(seed, stream, a, b, (uint32_t)k);
}

void RnRandNormal(uint64_t seed, RnStream stream, uint32_t a, uint32_t b, size_t n, double *z)
{
  for (size_t k = 0; k < n; k += 2) {
    uint32_t ctr[4] = {(uint32_t)stream, a, b, (uint32_t)(k / 2)}, out[4];
    RnPhilox4x32(seed, ctr, out);
    double u1 = to_unit(out[0], out[1]), u2 = to_unit(out[2], out[3]);
    double r = sqrt(-2.0 * log(u1)), phi = 2.0 * M_PI * u2;
    z[k] = r * cos(phi);
    if (k + 1 < n) z[k + 1] = r * sin(phi);
  }
}

void RnRandPermutation(uint64_t seed, RnStream stream, uint32_t a, uint32_t b, int n, int *perm)
{
  for (int i = 0; i < n; i++) perm[i] = i;
  for (int i = n - 1; i > 0; i--) {
    int j = (int)(RnRandUniformAt(seed, stream, a, b, (uint32_t)i) * (double)(i + 1));
    if (j > i) j = i;
    int t = perm[i];
    perm[i] = perm[j];
    perm[j] = t;
  }
}
