/* checksum.h: the checksums and hashes of the project, one module.
 *
 * Three, each for its own reason:
 *   - RnChecksum: FNV-1a 64-bit over bytes, the checksum of every binary file
 *     (snapshots, checkpoints, the data set's pixels);
 *   - RnChecksumWords: sum_k w_k (2k + 1) mod 2^64 over 64-bit words, the row
 *     checksum of ensemble parameter files, which numpy checks in one vector
 *     operation (any changed word changes it: odd factors are invertible);
 *   - RnHashWords: a fast hash of a vector of doubles (all their bits), the
 *     key of the ODE's tape cache; not a file format. */
#ifndef RESNODE_CHECKSUM_H
#define RESNODE_CHECKSUM_H

#include <stddef.h>
#include <stdint.h>

#define RN_CHECKSUM_INIT 0xcbf29ce484222325ULL /* FNV-1a's offset basis */

/* FNV-1a over len bytes, continuing from seed_hash (RN_CHECKSUM_INIT to start). */
uint64_t RnChecksum(const void *data, size_t len, uint64_t seed_hash);
/* sum_k w_k (2k + 1) mod 2^64 over the words of v[0..n). */
uint64_t RnChecksumWords(const double *v, size_t n);
/* A 64-bit hash of v[0..n) (all bits of every value, and n). */
uint64_t RnHashWords(const double *v, size_t n);

#endif
