/* checkpoint.c: atomic checkpoints, resume, preemption signals. */
#include "resnode/core/checkpoint.h"

#include <dirent.h>
#include <errno.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define CK_NAME_LEN 48
static const char rn_ckpt_magic[8] = {'R', 'N', 'C', 'K', 'P', 'T', 0, 1};

typedef struct {
  char name[CK_NAME_LEN];
  void *data;
  size_t bytes;
  int owner;
} CkField;

typedef struct {
  char name[CK_NAME_LEN];
  RnMetrics metrics;
} CkMetrics;

struct RnCheckpointer_s {
  RnCtx ctx;
  RnRunDir rd;
  RnCheckpointOptions opt;
  CkField *fields;
  int nfields, cap_fields;
  CkMetrics metrics[16];
  int nmetrics;
  double last_time;
};

static volatile sig_atomic_t rn_signal_count = 0;

static void SignalHandler(int sig)
{
  rn_signal_count++;
  /* a second SIGTERM means "now" */
  if (sig == SIGTERM && rn_signal_count >= 2) _exit(128 + SIGTERM);
}

int RnSignalsCatch(void)
{
  struct sigaction sa;

  memset(&sa, 0, sizeof sa);
  sa.sa_handler = SignalHandler;
  sigemptyset(&sa.sa_mask);
  sa.sa_flags = SA_RESTART;
  return sigaction(SIGTERM, &sa, NULL) == 0 && sigaction(SIGUSR1, &sa, NULL) == 0 ? 0 : -1;
}

PetscErrorCode RnSignalsInstall(void)
{
  PetscFunctionBeginUser;
  PetscCheck(RnSignalsCatch() == 0, PETSC_COMM_SELF, PETSC_ERR_SYS, "cannot install signal handlers");
  PetscFunctionReturn(0);
}

PetscBool RnSignalPending(void) { return rn_signal_count > 0 ? PETSC_TRUE : PETSC_FALSE; }

PetscErrorCode RnCheckpointOptionsFromConfig(RnConfig cfg, RnCheckpointOptions *opt)
{
  PetscFunctionBeginUser;
  PetscCall(RnConfigGetInt(cfg, "checkpoint.every_steps", 0, 0, 1000000000, &opt->every_steps));
  PetscCall(RnConfigGetReal(cfg, "checkpoint.every_seconds", 600.0, 0.0, 1e9, &opt->every_seconds));
  PetscCall(RnConfigGetInt(cfg, "checkpoint.keep", 2, 1, 1000, &opt->keep));
  PetscFunctionReturn(0);
}

PetscErrorCode RnCheckpointerCreate(RnCtx ctx, RnRunDir rd, const RnCheckpointOptions *opt, RnCheckpointer *ckp)
{
  RnCheckpointer ck;

  PetscFunctionBeginUser;
  PetscCall(PetscNew(&ck));
  ck->ctx = ctx;
  ck->rd = rd;
  ck->opt = *opt;
  ck->last_time = RnWallTime();
  *ckp = ck;
  PetscFunctionReturn(0);
}

PetscErrorCode RnCheckpointerAddField(RnCheckpointer ck, const char *name, void *data, size_t bytes, int owner_rank)
{
  PetscFunctionBeginUser;
  if (ck->nfields == ck->cap_fields) {
    CkField *bigger;
    int cap = PetscMax(16, 2 * ck->cap_fields);
    PetscCall(PetscCalloc1(cap, &bigger));
    if (ck->fields) PetscCall(PetscArraycpy(bigger, ck->fields, ck->nfields));
    PetscCall(PetscFree(ck->fields));
    ck->fields = bigger;
    ck->cap_fields = cap;
  }
  PetscCall(PetscStrncpy(ck->fields[ck->nfields].name, name, CK_NAME_LEN));
  ck->fields[ck->nfields].data = data;
  ck->fields[ck->nfields].bytes = bytes;
  ck->fields[ck->nfields].owner = owner_rank;
  ck->nfields++;
  PetscFunctionReturn(0);
}

PetscErrorCode RnCheckpointerAddMetrics(RnCheckpointer ck, const char *name, RnMetrics m)
{
  PetscFunctionBeginUser;
  PetscCheck(ck->nmetrics < 16, PETSC_COMM_SELF, PETSC_ERR_SUP, "too many metrics files");
  PetscCall(PetscStrncpy(ck->metrics[ck->nmetrics].name, name, CK_NAME_LEN));
  ck->metrics[ck->nmetrics].metrics = m;
  ck->nmetrics++;
  PetscFunctionReturn(0);
}

static void CheckpointPath(RnCheckpointer ck, long long step, const char *suffix, char *buf, size_t len)
{
  snprintf(buf, len, "%s/checkpoints/ckpt-%012lld.%s", ck->rd->path, step, suffix);
}

/* Steps of the complete checkpoints (a .done marker) of a run directory, newest first. */
static PetscErrorCode ListCompleteIn(const char *run_dir, int max, long long *steps, int *n)
{
  char dir[PETSC_MAX_PATH_LEN + 16];
  DIR *d;
  struct dirent *e;

  PetscFunctionBeginUser;
  *n = 0;
  snprintf(dir, sizeof dir, "%s/checkpoints", run_dir);
  d = opendir(dir);
  if (!d) PetscFunctionReturn(0);
  while ((e = readdir(d)) && *n < max) {
    long long s;
    char tail[16];
    if (sscanf(e->d_name, "ckpt-%lld.%15s", &s, tail) == 2 && !strcmp(tail, "done")) steps[(*n)++] = s;
  }
  closedir(d);
  /* newest first */
  for (int i = 1; i < *n; i++)
    for (int j = i; j > 0 && steps[j] > steps[j - 1]; j--) {
      long long t = steps[j];
      steps[j] = steps[j - 1];
      steps[j - 1] = t;
    }
  PetscFunctionReturn(0);
}

static PetscErrorCode ListComplete(RnCheckpointer ck, int max, long long *steps, int *n)
{
  PetscFunctionBeginUser;
  PetscCall(ListCompleteIn(ck->rd->path, max, steps, n));
  PetscFunctionReturn(0);
}

PetscErrorCode RnCheckpointAny(const char *run_dir, PetscBool *any)
{
  long long step;
  int n;

  PetscFunctionBeginUser;
  PetscCall(ListCompleteIn(run_dir, 1, &step, &n));
  *any = n > 0 ? PETSC_TRUE : PETSC_FALSE;
  PetscFunctionReturn(0);
}

PetscErrorCode RnCheckpointerWrite(RnCheckpointer ck, long long step)
{
  RnCtx ctx = ck->ctx;
  size_t total = 8 + 4 + 4 + 8;
  char *buf = NULL, *p;
  int failed = 0;
  char msg[PETSC_MAX_PATH_LEN + 256] = "";

  PetscFunctionBeginUser;
  for (int i = 0; i < ck->nfields; i++) total += CK_NAME_LEN + 8 + ck->fields[i].bytes;
  total += (size_t)ck->nmetrics * (CK_NAME_LEN + 8) + 8;
  if (ctx->world_rank == 0) PetscCall(PetscMalloc1(total, &buf));
  p = buf;
  if (ctx->world_rank == 0) {
    uint32_t version = 1, nf = (uint32_t)ck->nfields;
    int64_t s = step;
    memcpy(p, rn_ckpt_magic, 8), p += 8;
    memcpy(p, &version, 4), p += 4;
    memcpy(p, &nf, 4), p += 4;
    memcpy(p, &s, 8), p += 8;
  }
  for (int i = 0; i < ck->nfields; i++) {
    CkField *f = &ck->fields[i];
    if (ctx->world_rank == 0) {
      uint64_t b = f->bytes;
      memset(p, 0, CK_NAME_LEN);
      memcpy(p, f->name, strlen(f->name)), p += CK_NAME_LEN;
      memcpy(p, &b, 8), p += 8;
    }
    /* state held elsewhere comes to rank 0 first */
    if (f->owner == 0) {
      if (ctx->world_rank == 0) memcpy(p, f->data, f->bytes);
    } else if (ctx->world_rank == 0) {
      PetscCallMPI(MPI_Recv(p, (int)f->bytes, MPI_BYTE, f->owner, 7000 + i, ctx->world, MPI_STATUS_IGNORE));
    } else if (ctx->world_rank == f->owner) {
      PetscCallMPI(MPI_Send(f->data, (int)f->bytes, MPI_BYTE, 0, 7000 + i, ctx->world));
    }
    if (ctx->world_rank == 0) p += f->bytes;
  }
  if (ctx->world_rank == 0) {
    char path[PETSC_MAX_PATH_LEN + 64], done[PETSC_MAX_PATH_LEN + 64];
    uint64_t sum;
    PetscErrorCode err;
    for (int i = 0; i < ck->nmetrics; i++) {
      long long off;
      PetscCall(RnMetricsOffset(ck->metrics[i].metrics, &off));
      memset(p, 0, CK_NAME_LEN);
      memcpy(p, ck->metrics[i].name, strlen(ck->metrics[i].name)), p += CK_NAME_LEN;
      memcpy(p, &off, 8), p += 8;
    }
    sum = RnChecksum(buf, (size_t)(p - buf), RN_CHECKSUM_INIT);
    memcpy(p, &sum, 8);
    CheckpointPath(ck, step, "bin", path, sizeof path);
    CheckpointPath(ck, step, "done", done, sizeof done);
    /* a failed write leaves the previous checkpoints untouched */
    PetscCall(PetscPushErrorHandler(PetscReturnErrorHandler, NULL));
    err = RnWriteFileAtomic(path, buf, total);
    if (!err) err = RnWriteFileAtomic(done, "ok\n", 3);
    PetscCall(PetscPopErrorHandler());
    if (err) {
      failed = 1;
      snprintf(msg, sizeof msg, "cannot write checkpoint %s (disk full or not writable?); the previous checkpoints are kept", path);
      unlink(done);
    } else {
      /* keep the newest `keep` complete checkpoints */
      long long steps[256];
      int n;
      PetscCall(ListComplete(ck, 256, steps, &n));
      for (int i = ck->opt.keep; i < n; i++) {
        CheckpointPath(ck, steps[i], "done", done, sizeof done);
        unlink(done);
        CheckpointPath(ck, steps[i], "bin", path, sizeof path);
        unlink(path);
      }
    }
    PetscCall(PetscFree(buf));
  }
  PetscCall(RnAgreeInput(ctx->world, failed, msg));
  ck->last_time = RnWallTime();
  PetscFunctionReturn(0);
}

/* Reads and verifies one checkpoint on rank 0; returns a message when it is
 * unusable. */
static PetscErrorCode ReadVerified(RnCheckpointer ck, long long step, char **data, size_t *len, char *why, size_t whylen)
{
  char path[PETSC_MAX_PATH_LEN + 64];
  FILE *fp;
  long size;
  char *buf;
  size_t expect = 8 + 4 + 4 + 8;
  uint64_t sum;

  PetscFunctionBeginUser;
  *data = NULL;
  why[0] = 0;
  CheckpointPath(ck, step, "bin", path, sizeof path);
  for (int i = 0; i < ck->nfields; i++) expect += CK_NAME_LEN + 8 + ck->fields[i].bytes;
  expect += (size_t)ck->nmetrics * (CK_NAME_LEN + 8) + 8;
  fp = fopen(path, "rb");
  if (!fp) {
    snprintf(why, whylen, "%s: cannot open: %s", path, strerror(errno));
    PetscFunctionReturn(0);
  }
  fseek(fp, 0, SEEK_END);
  size = ftell(fp);
  fseek(fp, 0, SEEK_SET);
  if (size != (long)expect) {
    fclose(fp);
    snprintf(why, whylen, "%s: %ld bytes, expected %zu for this configuration (truncated, or written by a different config)", path, size, expect);
    PetscFunctionReturn(0);
  }
  PetscCall(PetscMalloc1(expect, &buf));
  if (fread(buf, 1, expect, fp) != expect) {
    fclose(fp);
    PetscCall(PetscFree(buf));
    snprintf(why, whylen, "%s: read error", path);
    PetscFunctionReturn(0);
  }
  fclose(fp);
  memcpy(&sum, buf + expect - 8, 8);
  if (memcmp(buf, rn_ckpt_magic, 8)) snprintf(why, whylen, "%s: not a resnode checkpoint (bad magic number)", path);
  else if (RnChecksum(buf, expect - 8, RN_CHECKSUM_INIT) != sum) snprintf(why, whylen, "%s: checksum mismatch (corrupt)", path);
  else {
    uint32_t version, nf;
    memcpy(&version, buf + 8, 4);
    memcpy(&nf, buf + 12, 4);
    if (version != 1) snprintf(why, whylen, "%s: version %u, this build reads version 1", path, version);
    else if (nf != (uint32_t)ck->nfields) snprintf(why, whylen, "%s: %u fields, this configuration has %d", path, nf, ck->nfields);
    else {
      const char *p = buf + 24;
      for (int i = 0; i < ck->nfields && !why[0]; i++) {
        uint64_t b;
        memcpy(&b, p + CK_NAME_LEN, 8);
        if (strncmp(p, ck->fields[i].name, CK_NAME_LEN) || b != ck->fields[i].bytes)
          snprintf(why, whylen, "%s: field %d is '%.48s' of %llu bytes, expected '%s' of %zu bytes (a different configuration?)", path, i, p, (unsigned long long)b,
                   ck->fields[i].name, ck->fields[i].bytes);
        p += CK_NAME_LEN + 8 + b;
      }
    }
  }
  if (why[0]) PetscCall(PetscFree(buf));
  else {
    *data = buf;
    *len = expect;
  }
  PetscFunctionReturn(0);
}

PetscErrorCode RnCheckpointerRestore(RnCheckpointer ck, long long *step)
{
  RnCtx ctx = ck->ctx;
  long long found = -1;
  char *buf = NULL;
  size_t len = 0;
  int failed = 0;
  char msg[2048] = "";

  PetscFunctionBeginUser;
  if (ctx->world_rank == 0) {
    long long steps[256];
    int n;
    char why[1024];
    PetscCall(ListComplete(ck, 256, steps, &n));
    for (int i = 0; i < n && found < 0; i++) {
      PetscCall(ReadVerified(ck, steps[i], &buf, &len, why, sizeof why));
      if (buf) found = steps[i];
      else {
        PetscCall(RnLog(ctx, "warning: checkpoint skipped: %s\n", why));
        if (i == n - 1) {
          failed = 1;
          snprintf(msg, sizeof msg, "no usable checkpoint in %s/checkpoints (the newest problem: %s); move the directory aside to start afresh", ck->rd->path, why);
        }
      }
    }
  }
  PetscCall(RnAgreeInput(ctx->world, failed, msg));
  PetscCallMPI(MPI_Bcast(&found, 1, MPI_LONG_LONG, 0, ctx->world));
  *step = found;
  if (found < 0) {
    /* a start without a checkpoint starts the continued tables over: rows of
     * an attempt that died before its first checkpoint are not results */
    if (ctx->world_rank == 0)
      for (int i = 0; i < ck->nmetrics; i++) PetscCall(RnMetricsTruncateToHeader(ck->metrics[i].metrics));
    PetscFunctionReturn(0);
  }
  {
    char *p = buf ? buf + 24 : NULL;
    for (int i = 0; i < ck->nfields; i++) {
      CkField *f = &ck->fields[i];
      char *tmp;
      PetscCall(PetscMalloc1(PetscMax(f->bytes, 1), &tmp));
      if (ctx->world_rank == 0) memcpy(tmp, p + CK_NAME_LEN + 8, f->bytes);
      PetscCallMPI(MPI_Bcast(tmp, (int)f->bytes, MPI_BYTE, 0, ctx->world));
      if (f->data) memcpy(f->data, tmp, f->bytes);
      PetscCall(PetscFree(tmp));
      if (p) p += CK_NAME_LEN + 8 + f->bytes;
    }
    if (ctx->world_rank == 0) {
      for (int i = 0; i < ck->nmetrics; i++) {
        long long off;
        memcpy(&off, p + CK_NAME_LEN, 8);
        /* rows written after the checkpoint are written again by the resumed run */
        PetscCall(RnMetricsTruncate(ck->metrics[i].metrics, off));
        p += CK_NAME_LEN + 8;
      }
    }
  }
  PetscCall(PetscFree(buf));
  PetscCall(RnLog(ctx, "resumed from the checkpoint of step %lld\n", found));
  PetscFunctionReturn(0);
}

PetscErrorCode RnCheckpointerStep(RnCheckpointer ck, long long step, PetscBool final, PetscBool *stop)
{
  int local[2], global[2];

  PetscFunctionBeginUser;
  *stop = PETSC_FALSE;
  /* rank 0's clock decides time-based checkpoints; signals may reach any rank */
  local[0] = (ck->ctx->world_rank == 0 && ck->opt.every_seconds > 0 && RnWallTime() - ck->last_time >= ck->opt.every_seconds) || final ||
             (ck->opt.every_steps > 0 && step % ck->opt.every_steps == 0);
  local[1] = RnSignalPending() ? 1 : 0;
  PetscCallMPI(MPI_Allreduce(local, global, 2, MPI_INT, MPI_MAX, ck->ctx->world));
  if (global[0] || global[1]) PetscCall(RnCheckpointerWrite(ck, step));
  if (global[1]) *stop = PETSC_TRUE;
  PetscFunctionReturn(0);
}

PetscErrorCode RnCheckpointerDestroy(RnCheckpointer *ck)
{
  PetscFunctionBeginUser;
  if (!ck || !*ck) PetscFunctionReturn(0);
  PetscCall(PetscFree((*ck)->fields));
  PetscCall(PetscFree(*ck));
  *ck = NULL;
  PetscFunctionReturn(0);
}
