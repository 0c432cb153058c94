/* snapshot.c: parameter snapshots (snapshot.h). */
#include "resnode/core/rundir.h"
#include "resnode/core/profile.h"
#include "resnode/core/snapshot.h"

#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <time.h>
#include <unistd.h>



static const char rn_snapshot_magic[8] = {'R', 'N', 'S', 'N', 'A', 'P', 0, 1};

static PetscErrorCode SnapshotWriteBody(const char *path, const RnSnapshotInfo *info, PetscInt n, const double *values)
{
  size_t len = 8 + 4 + 4 * 3 + 8 + 8 + 8 + sizeof(double) * (size_t)n + 8;
  char *buf, *p;
  uint32_t version = 1;
  int32_t ints[3] = {info->member, info->depth, 0};
  int64_t step = info->step, count = n;
  uint64_t sum;

  PetscFunctionBeginUser;
  PetscCall(PetscMalloc1(len, &buf));
  p = buf;
  memcpy(p, rn_snapshot_magic, 8), p += 8;
  memcpy(p, &version, 4), p += 4;
  memcpy(p, ints, 12), p += 12;
  memcpy(p, &step, 8), p += 8;
  memcpy(p, &info->time, 8), p += 8;
  memcpy(p, &count, 8), p += 8;
  memcpy(p, values, sizeof(double) * (size_t)n), p += sizeof(double) * (size_t)n;
  sum = RnChecksum(values, sizeof(double) * (size_t)n, RN_CHECKSUM_INIT);
  memcpy(p, &sum, 8);
  PetscCall(RnWriteFileAtomic(path, buf, len));
  PetscCall(PetscFree(buf));
  PetscFunctionReturn(0);
}

/* logged as a snapshot */
PetscErrorCode RnSnapshotWrite(const char *path, const RnSnapshotInfo *info, PetscInt n, const double *values)
{
  PetscFunctionBeginUser;
  PetscCall(RnEventBegin(RN_EV_SNAPSHOT));
  PetscCall(SnapshotWriteBody(path, info, n, values));
  PetscCall(RnEventEnd(RN_EV_SNAPSHOT));
  PetscFunctionReturn(0);
}

PetscErrorCode RnSnapshotRead(const char *path, RnSnapshotInfo *info, PetscInt *n, double **values)
{
  FILE *fp = fopen(path, "rb");
  char magic[8];
  uint32_t version;
  int32_t ints[3];
  int64_t step, count;
  uint64_t sum, expect;
  double *v;

  PetscFunctionBeginUser;
  RnInputCheck(fp, PETSC_COMM_SELF, "snapshot %s: cannot open: %s", path, strerror(errno));
  if (fread(magic, 1, 8, fp) != 8 || memcmp(magic, rn_snapshot_magic, 8)) {
    fclose(fp);
    RnInputError(PETSC_COMM_SELF, "snapshot %s: not a resnode snapshot (bad magic number)", path);
  }
  if (fread(&version, 4, 1, fp) != 1 || version != 1) {
    fclose(fp);
    RnInputError(PETSC_COMM_SELF, "snapshot %s: unsupported version %u (this build reads version 1)", path, (unsigned)version);
  }
  if (fread(ints, 4, 3, fp) != 3 || fread(&step, 8, 1, fp) != 1 || fread(&info->time, 8, 1, fp) != 1 || fread(&count, 8, 1, fp) != 1 || count < 0 || count > (int64_t)1 << 34) {
    fclose(fp);
    RnInputError(PETSC_COMM_SELF, "snapshot %s: truncated or corrupt header", path);
  }
  PetscCall(PetscMalloc1(PetscMax(count, 1), &v));
  if (fread(v, sizeof(double), (size_t)count, fp) != (size_t)count || fread(&sum, 8, 1, fp) != 1) {
    fclose(fp);
    PetscCall(PetscFree(v));
    RnInputError(PETSC_COMM_SELF, "snapshot %s: truncated (expected %lld values)", path, (long long)count);
  }
  fclose(fp);
  expect = RnChecksum(v, sizeof(double) * (size_t)count, RN_CHECKSUM_INIT);
  if (sum != expect) {
    PetscCall(PetscFree(v));
    RnInputError(PETSC_COMM_SELF, "snapshot %s: checksum mismatch (file corrupt)", path);
  }
  info->member = ints[0];
  info->depth = ints[1];
  info->step = step;
  *n = (PetscInt)count;
  *values = v;
  PetscFunctionReturn(0);
}
