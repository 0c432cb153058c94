/* checkpoint.c: atomic checkpoints, resume, preemption signals. */
#include "resnode/core/checkpoint.h"
#include "resnode/core/profile.h"
#include "resnode/core/checksum.h"

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
  RnStopPoll poll; /* a stop asked for from outside this communicator (optional) */
  void *poll_ctx;
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
  if (sigaction(SIGTERM, &sa, NULL) || sigaction(SIGUSR1, &sa, NULL)) return -1;
  /* the launcher (src/app/launch.c) held them while the libraries loaded:
   * one that came meanwhile is delivered now, and counted */
  {
    sigset_t notices;
    sigemptyset(&notices);
    sigaddset(&notices, SIGUSR1);
    sigaddset(&notices, SIGTERM);
    return sigprocmask(SIG_UNBLOCK, &notices, NULL) ? -1 : 0;
  }
}

PetscErrorCode RnSignalsInstall(void)
{
  PetscFunctionBeginUser;
  PetscCheck(RnSignalsCatch() == 0, PETSC_COMM_SELF, PETSC_ERR_SYS, "cannot install signal handlers");
  PetscFunctionReturn(0);
}

PetscBool RnSignalPending(void) { return rn_signal_count > 0 ? PETSC_TRUE : PETSC_FALSE; }

void RnTestStopPoint(const char *point)
{
  static int hits, looked;
  static const char *env; /* read once: the trainer passes here every step */
  size_t n;
  if (!looked) env = getenv(RN_TEST_STOP_ENV), looked = 1;
  if (!env) return;
  n = strlen(point);
  if (strncmp(env, point, n) || env[n] != ':') return;
  if (++hits == atoi(env + n + 1)) rn_signal_count++;
}

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

PetscErrorCode RnCheckpointNewest(const char *dir, long long *step)
{
  long long steps[256];
  int n;

  PetscFunctionBeginUser;
  PetscCall(ListCompleteIn(dir, 256, steps, &n));
  *step = n > 0 ? steps[0] : -1;
  PetscFunctionReturn(0);
}

PetscErrorCode RnCheckpointAny(const char *run_dir, PetscBool *any)
{
  long long step;
  char units[PETSC_MAX_PATH_LEN + 16];
  DIR *d;
  struct dirent *e;

  PetscFunctionBeginUser;
  PetscCall(RnCheckpointNewest(run_dir, &step));
  *any = step >= 0 ? PETSC_TRUE : PETSC_FALSE;
  /* and the units' own (units.h) */
  snprintf(units, sizeof units, "%s/units", run_dir);
  if (!*any && (d = opendir(units))) {
    while (!*any && (e = readdir(d))) {
      char unit[2 * PETSC_MAX_PATH_LEN];
      if (e->d_name[0] == '.') continue;
      snprintf(unit, sizeof unit, "%s/%s", units, e->d_name);
      PetscCall(RnCheckpointNewest(unit, &step));
      *any = step >= 0 ? PETSC_TRUE : PETSC_FALSE;
    }
    closedir(d);
  }
  PetscFunctionReturn(0);
}

PetscErrorCode RnCheckpointerSetStopPoll(RnCheckpointer ck, RnStopPoll poll, void *poll_ctx)
{
  PetscFunctionBeginUser;
  ck->poll = poll, ck->poll_ctx = poll_ctx;
  PetscFunctionReturn(0);
}

/* The file's layout (checkpoint.h): the head (header, field table, metrics
 * offsets, its checksum), then each field's bytes at an 8-aligned offset. */
#define CK_HEADER 24
#define CK_FIELD_ENTRY (CK_NAME_LEN + 24)
#define CK_METRICS_ENTRY (CK_NAME_LEN + 8)
static size_t HeadLength(RnCheckpointer ck) { return CK_HEADER + (size_t)ck->nfields * CK_FIELD_ENTRY + (size_t)ck->nmetrics * CK_METRICS_ENTRY + 8; }
static size_t FieldOffset(RnCheckpointer ck, int i)
{
  size_t off = HeadLength(ck);
  for (int k = 0; k < i; k++) off += (ck->fields[k].bytes + 7) / 8 * 8;
  return off;
}

/* MPI-IO transfers of any size (counts are ints). */
static int WriteAt(MPI_File fh, size_t off, const void *data, size_t bytes)
{
  int err = MPI_SUCCESS;
  for (size_t done = 0; done < bytes && err == MPI_SUCCESS; done += 1 << 30) {
    const size_t n = PetscMin(bytes - done, (size_t)1 << 30);
    err = MPI_File_write_at(fh, (MPI_Offset)(off + done), (const char *)data + done, (int)n, MPI_BYTE, MPI_STATUS_IGNORE);
  }
  return err;
}

static PetscErrorCode CheckpointerWriteBody(RnCheckpointer ck, long long step)
{
  RnCtx ctx = ck->ctx;
  const size_t head_len = HeadLength(ck), total = FieldOffset(ck, ck->nfields);
  char path[PETSC_MAX_PATH_LEN + 64], tmp[PETSC_MAX_PATH_LEN + 80], done[PETSC_MAX_PATH_LEN + 64], msg[PETSC_MAX_PATH_LEN + 512] = "";
  uint64_t *sums, *sums_all;
  MPI_File fh;
  int err, local_failed = 0, failed;

  PetscFunctionBeginUser;
  CheckpointPath(ck, step, "bin", path, sizeof path);
  CheckpointPath(ck, step, "done", done, sizeof done);
  PetscCall(PetscSNPrintf(tmp, sizeof tmp, "%s.tmp", path));
  /* each field's checksum by its owner; rank 0 puts them in the head */
  PetscCall(PetscCalloc2(PetscMax(ck->nfields, 1), &sums, PetscMax(ck->nfields, 1), &sums_all));
  for (int i = 0; i < ck->nfields; i++)
    if (ctx->world_rank == ck->fields[i].owner) sums[i] = RnChecksum(ck->fields[i].data, ck->fields[i].bytes, RN_CHECKSUM_INIT);
  PetscCallMPI(MPI_Reduce(sums, sums_all, ck->nfields, MPI_UINT64_T, MPI_BXOR, 0, ctx->world));
  /* every owner writes its own fields, in parallel (MPI-IO): no rank gathers the state */
  err = MPI_File_open(ctx->world, tmp, MPI_MODE_CREATE | MPI_MODE_WRONLY, MPI_INFO_NULL, &fh);
  if (err == MPI_SUCCESS) {
    err = MPI_File_set_size(fh, (MPI_Offset)total);
    for (int i = 0; i < ck->nfields && err == MPI_SUCCESS; i++)
      if (ctx->world_rank == ck->fields[i].owner) err = WriteAt(fh, FieldOffset(ck, i), ck->fields[i].data, ck->fields[i].bytes);
    if (err == MPI_SUCCESS && ctx->world_rank == 0) {
      char *head, *p;
      uint32_t version = 2, nf = (uint32_t)ck->nfields;
      int64_t s = step;
      uint64_t sum;
      PetscCall(PetscCalloc1(head_len, &head));
      p = head;
      memcpy(p, rn_ckpt_magic, 8), p += 8;
      memcpy(p, &version, 4), p += 4;
      memcpy(p, &nf, 4), p += 4;
      memcpy(p, &s, 8), p += 8;
      for (int i = 0; i < ck->nfields; i++) {
        uint64_t b = ck->fields[i].bytes, off = FieldOffset(ck, i);
        memcpy(p, ck->fields[i].name, strlen(ck->fields[i].name)), p += CK_NAME_LEN;
        memcpy(p, &b, 8), memcpy(p + 8, &sums_all[i], 8), memcpy(p + 16, &off, 8), p += 24;
      }
      for (int i = 0; i < ck->nmetrics; i++) {
        long long off;
        PetscCall(RnMetricsOffset(ck->metrics[i].metrics, &off));
        memcpy(p, ck->metrics[i].name, strlen(ck->metrics[i].name)), p += CK_NAME_LEN;
        memcpy(p, &off, 8), p += 8;
      }
      sum = RnChecksum(head, (size_t)(p - head), RN_CHECKSUM_INIT);
      memcpy(p, &sum, 8);
      err = WriteAt(fh, 0, head, head_len);
      PetscCall(PetscFree(head));
    }
    /* on disk before the rename makes it a checkpoint (collective: every rank reaches it) */
    if (MPI_File_sync(fh) != MPI_SUCCESS && err == MPI_SUCCESS) err = MPI_ERR_IO;
    if (MPI_File_close(&fh) != MPI_SUCCESS && err == MPI_SUCCESS) err = MPI_ERR_IO;
  }
  if (err != MPI_SUCCESS) {
    char why[MPI_MAX_ERROR_STRING];
    int len;
    MPI_Error_string(err, why, &len);
    local_failed = 1;
    snprintf(msg, sizeof msg, "cannot write checkpoint %s (%s: disk full or not writable?); the previous checkpoints are kept", path, why);
  }
  PetscCallMPI(MPI_Allreduce(&local_failed, &failed, 1, MPI_INT, MPI_MAX, ctx->world));
  if (ctx->world_rank == 0) {
    if (!failed) {
      PetscErrorCode e;
      PetscCall(PetscPushErrorHandler(PetscReturnErrorHandler, NULL));
      e = rename(tmp, path) ? PETSC_ERR_FILE_WRITE : 0;
      if (!e) e = RnWriteFileAtomic(done, "ok\n", 3);
      PetscCall(PetscPopErrorHandler());
      if (e) {
        local_failed = 1;
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
    } else unlink(tmp);
  }
  PetscCall(PetscFree2(sums, sums_all));
  PetscCall(RnAgreeInput(ctx->world, local_failed, msg));
  ck->last_time = RnWallTime();
  PetscFunctionReturn(0);
}

/* logged as a checkpoint */
PetscErrorCode RnCheckpointerWrite(RnCheckpointer ck, long long step)
{
  PetscFunctionBeginUser;
  PetscCall(RnEventBegin(RN_EV_CHECKPOINT));
  PetscCall(CheckpointerWriteBody(ck, step));
  PetscCall(RnEventEnd(RN_EV_CHECKPOINT));
  PetscFunctionReturn(0);
}

/* Rank 0 checks one checkpoint's size and head (magic, version, fields,
 * head checksum); *head (PetscMalloc'ed) is NULL and `why` says what is
 * wrong when it is unusable. The fields are checked by their readers. */
static PetscErrorCode ReadHead(RnCheckpointer ck, long long step, char **head, char *why, size_t whylen)
{
  char path[PETSC_MAX_PATH_LEN + 64];
  const size_t head_len = HeadLength(ck), expect = FieldOffset(ck, ck->nfields);
  FILE *fp;
  long size;
  char *buf;
  uint64_t sum;

  PetscFunctionBeginUser;
  *head = NULL;
  why[0] = 0;
  CheckpointPath(ck, step, "bin", path, sizeof path);
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
  PetscCall(PetscMalloc1(head_len, &buf));
  if (fread(buf, 1, head_len, fp) != head_len) {
    fclose(fp);
    PetscCall(PetscFree(buf));
    snprintf(why, whylen, "%s: read error", path);
    PetscFunctionReturn(0);
  }
  fclose(fp);
  memcpy(&sum, buf + head_len - 8, 8);
  if (memcmp(buf, rn_ckpt_magic, 8)) snprintf(why, whylen, "%s: not a resnode checkpoint (bad magic number)", path);
  else {
    uint32_t version, nf;
    memcpy(&version, buf + 8, 4);
    memcpy(&nf, buf + 12, 4);
    if (version != 2) snprintf(why, whylen, "%s: version %u, this build reads version 2 (finish that run with the build that started it)", path, version);
    else if (RnChecksum(buf, head_len - 8, RN_CHECKSUM_INIT) != sum) snprintf(why, whylen, "%s: checksum mismatch in its head (corrupt)", path);
    else if (nf != (uint32_t)ck->nfields) snprintf(why, whylen, "%s: %u fields, this configuration has %d", path, nf, ck->nfields);
    else
      for (int i = 0; i < ck->nfields && !why[0]; i++) {
        const char *p = buf + CK_HEADER + (size_t)i * CK_FIELD_ENTRY;
        uint64_t b;
        memcpy(&b, p + CK_NAME_LEN, 8);
        if (strncmp(p, ck->fields[i].name, CK_NAME_LEN) || b != ck->fields[i].bytes)
          snprintf(why, whylen, "%s: field %d is '%.48s' of %llu bytes, expected '%s' of %zu bytes (a different configuration?)", path, i, p, (unsigned long long)b,
                   ck->fields[i].name, ck->fields[i].bytes);
      }
  }
  if (why[0]) PetscCall(PetscFree(buf));
  else *head = buf;
  PetscFunctionReturn(0);
}

/* Every rank that holds a field reads it from the file itself and checks
 * its checksum (no rank reads what it does not hold). Collective; *bad on
 * every rank when some field failed, `why` (rank 0) says which. */
static PetscErrorCode ReadFields(RnCheckpointer ck, long long step, const uint64_t *sums, int *bad, char *why, size_t whylen)
{
  RnCtx ctx = ck->ctx;
  char path[PETSC_MAX_PATH_LEN + 64], mine[1024] = "";
  FILE *fp;
  int local = 0;

  PetscFunctionBeginUser;
  CheckpointPath(ck, step, "bin", path, sizeof path);
  fp = fopen(path, "rb");
  for (int i = 0; i < ck->nfields && !local; i++) {
    CkField *f = &ck->fields[i];
    if (!f->data) continue;
    if (!fp || fseek(fp, (long)FieldOffset(ck, i), SEEK_SET) || fread(f->data, 1, f->bytes, fp) != f->bytes) {
      local = 1;
      snprintf(mine, sizeof mine, "%s: cannot read field '%s' on rank %d", path, f->name, ctx->world_rank);
    } else if (RnChecksum(f->data, f->bytes, RN_CHECKSUM_INIT) != sums[i]) {
      local = 1;
      snprintf(mine, sizeof mine, "%s: checksum mismatch in field '%s' (corrupt)", path, f->name);
    }
  }
  if (fp) fclose(fp);
  {
    int candidate = local ? ctx->world_rank : ctx->world_size, first;
    PetscCallMPI(MPI_Allreduce(&candidate, &first, 1, MPI_INT, MPI_MIN, ctx->world));
    *bad = first < ctx->world_size;
    if (*bad) {
      PetscCallMPI(MPI_Bcast(mine, sizeof mine, MPI_CHAR, first, ctx->world));
      snprintf(why, whylen, "%s", mine);
    }
  }
  PetscFunctionReturn(0);
}

static PetscErrorCode CheckpointerRestoreBody(RnCheckpointer ck, long long last_step, const char *what, long long *step)
{
  RnCtx ctx = ck->ctx;
  long long found = -1, steps[256];
  char *head = NULL;
  int n = 0, failed = 0;
  char msg[2048] = "", why[1024] = "";
  uint64_t *sums;

  PetscFunctionBeginUser;
  PetscCall(PetscCalloc1(PetscMax(ck->nfields, 1), &sums));
  if (ctx->world_rank == 0) PetscCall(ListComplete(ck, 256, steps, &n));
  PetscCallMPI(MPI_Bcast(&n, 1, MPI_INT, 0, ctx->world));
  PetscCallMPI(MPI_Bcast(steps, n, MPI_LONG_LONG, 0, ctx->world));
  /* the newest usable one: its head on rank 0, then its fields where they live */
  for (int i = 0; i < n && found < 0; i++) {
    int usable = 0, bad = 0;
    if (ctx->world_rank == 0) {
      PetscCall(PetscFree(head));
      PetscCall(ReadHead(ck, steps[i], &head, why, sizeof why));
      usable = head != NULL;
      if (usable)
        for (int f = 0; f < ck->nfields; f++) memcpy(&sums[f], head + CK_HEADER + (size_t)f * CK_FIELD_ENTRY + CK_NAME_LEN + 8, 8);
    }
    PetscCallMPI(MPI_Bcast(&usable, 1, MPI_INT, 0, ctx->world));
    if (usable) {
      PetscCallMPI(MPI_Bcast(sums, ck->nfields, MPI_UINT64_T, 0, ctx->world));
      PetscCall(ReadFields(ck, steps[i], sums, &bad, why, sizeof why));
      if (!bad) found = steps[i];
    }
    if (found < 0) {
      PetscCall(RnLog(ctx, "warning: checkpoint skipped: %s\n", why));
      if (i == n - 1) {
        failed = 1;
        snprintf(msg, sizeof msg, "no usable checkpoint in %s/checkpoints (the newest problem: %s); move the directory aside to start afresh", ck->rd->path, why);
      }
    }
  }
  PetscCall(PetscFree(sums));
  /* a checkpoint beyond the configured end: the config was shortened;
   * refused before any table is cut back */
  if (!failed && found > last_step) {
    failed = 1;
    snprintf(msg, sizeof msg,
             "%s: the checkpoint in %s is at step %lld, beyond the %lld steps of this configuration (was a step count such as train.iterations or train.epochs lowered?); raise it again, or start a fresh run directory",
             what, ck->rd->path, found, last_step);
  }
  PetscCall(RnAgreeInput(ctx->world, ctx->world_rank == 0 && failed, msg));
  *step = found;
  if (found < 0) {
    /* a start without a checkpoint starts the continued tables over: rows of
     * an attempt that died before its first checkpoint are not results */
    if (ctx->world_rank == 0)
      for (int i = 0; i < ck->nmetrics; i++) PetscCall(RnMetricsTruncateToHeader(ck->metrics[i].metrics));
    PetscFunctionReturn(0);
  }
  if (ctx->world_rank == 0) {
    const char *p = head + CK_HEADER + (size_t)ck->nfields * CK_FIELD_ENTRY;
    for (int i = 0; i < ck->nmetrics; i++) {
      long long off;
      memcpy(&off, p + CK_NAME_LEN, 8);
      /* rows written after the checkpoint are written again by the resumed run */
      PetscCall(RnMetricsTruncate(ck->metrics[i].metrics, off));
      p += CK_METRICS_ENTRY;
    }
  }
  PetscCall(PetscFree(head));
  PetscCall(RnLog(ctx, "resumed from the checkpoint of step %lld\n", found));
  PetscFunctionReturn(0);
}

/* logged as a checkpoint */
PetscErrorCode RnCheckpointerRestore(RnCheckpointer ck, long long last_step, const char *what, long long *step)
{
  PetscFunctionBeginUser;
  PetscCall(RnEventBegin(RN_EV_CHECKPOINT));
  PetscCall(CheckpointerRestoreBody(ck, last_step, what, step));
  PetscCall(RnEventEnd(RN_EV_CHECKPOINT));
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
  if (ck->poll && !local[1]) {
    PetscBool asked;
    PetscCall(ck->poll(ck->poll_ctx, &asked));
    local[1] = asked ? 1 : 0;
  }
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
