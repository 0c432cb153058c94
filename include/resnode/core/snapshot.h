/* snapshot.h: parameter snapshots, one vector a file.
 *
 * Format (little-endian), version 1:
 *   char[8]  magic "RNSNAP\0\1"
 *   uint32   version (1)
 *   int32    member, int32 depth (0 = the ODE limit), int32 reserved
 *   int64    step
 *   double   time
 *   int64    n
 *   double   values[n]
 *   uint64   FNV-1a checksum of values' bytes */
#ifndef RESNODE_SNAPSHOT_H
#define RESNODE_SNAPSHOT_H

#include "resnode/core/checksum.h"
#include "resnode/core/core.h"

/* Snapshots (rank-local I/O; call on the rank that holds the values). */
typedef struct {
  int member, depth;
  long long step;
  double time;
} RnSnapshotInfo;
PetscErrorCode RnSnapshotWrite(const char *path, const RnSnapshotInfo *info, PetscInt n, const double *values);
/* Reads a snapshot; *values is PetscMalloc'ed. Bad magic, version, size or
 * checksum is an input error naming the file (raised on PETSC_COMM_SELF). */
PetscErrorCode RnSnapshotRead(const char *path, RnSnapshotInfo *info, PetscInt *n, double **values);

#endif
