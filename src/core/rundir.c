/* rundir.c: the run directory, its lock and its manifest (rundir.h). */
#include "resnode/core/rundir.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdlib.h>
#include <stdarg.h>
#include <string.h>
#include <sys/file.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <time.h>
#include <unistd.h>

static void NowString(char *buf, size_t len)
{
  time_t now = time(NULL);
  struct tm tm;
  gmtime_r(&now, &tm);
  strftime(buf, len, "%Y-%m-%dT%H:%M:%SZ", &tm);
}

/* mkdir -p; returns 0 or an errno */
static int MakeDirs(const char *path)
{
  char tmp[PETSC_MAX_PATH_LEN];
  size_t len = strlen(path);
  if (len == 0 || len >= sizeof tmp) return ENAMETOOLONG;
  memcpy(tmp, path, len + 1);
  for (char *p = tmp + 1; *p; p++) {
    if (*p != '/') continue;
    *p = 0;
    if (mkdir(tmp, 0775) && errno != EEXIST) return errno;
    *p = '/';
  }
  if (mkdir(tmp, 0775) && errno != EEXIST) return errno;
  return 0;
}

/* A file's whole text (NULL when it cannot be read); the caller frees it. */
static char *ReadWholeFile(const char *path, long long *bytes)
{
  FILE *fp = fopen(path, "rb");
  char *text = NULL;
  long long n = 0;
  if (bytes) *bytes = -1;
  if (!fp) return NULL;
  if (!fseeko(fp, 0, SEEK_END) && (n = (long long)ftello(fp)) >= 0 && !fseeko(fp, 0, SEEK_SET) && (text = malloc((size_t)n + 1))) {
    if (fread(text, 1, (size_t)n, fp) != (size_t)n) free(text), text = NULL;
    else text[n] = 0;
  }
  fclose(fp);
  if (text && bytes) *bytes = n;
  return text;
}

/* The run whose manifest an aborting rank updates (RnSetAbortNote). */
static RnRunDir rn_current_run = NULL;
static void AbortNote(const char *status, const char *reason);

static PetscBool IsDir(const char *path)
{
  struct stat st;
  return stat(path, &st) == 0 && S_ISDIR(st.st_mode) ? PETSC_TRUE : PETSC_FALSE;
}

PetscBool RnRunDirReadStatus(const char *dir, char *status, size_t status_len, char *reason, size_t reason_len)
{
  char path[PETSC_MAX_PATH_LEN + 32], *text;
  const char *s, *r;

  status[0] = reason[0] = 0;
  snprintf(path, sizeof path, "%s/manifest.json", dir);
  if (!(text = ReadWholeFile(path, NULL))) return PETSC_FALSE;
  if ((s = strstr(text, "\"status\": \""))) snprintf(status, status_len, "%.*s", (int)strcspn(s + 11, "\""), s + 11);
  if ((r = strstr(text, "\"reason\": \""))) {
    size_t o = 0;
    for (const char *c = r + 11; *c && *c != '"' && o + 1 < reason_len; c++) {
      if (*c == '\\' && c[1]) c++; /* the escapes RnJsonString writes: the character after */
      reason[o++] = *c;
    }
    reason[o] = 0;
  }
  free(text);
  return PETSC_TRUE;
}

PetscBool RnRunDirHoldsRun(const char *dir)
{
  char path[PETSC_MAX_PATH_LEN + 32];
  snprintf(path, sizeof path, "%s/manifest.json", dir);
  return access(path, F_OK) == 0 ? PETSC_TRUE : PETSC_FALSE;
}


/* Writes data to path atomically (a temporary of this process's own, fsync,
 * rename, fsync of the directory); plain C, so that the heartbeat thread and
 * the abort path can use it. Returns 0, or an errno with *what naming the step. */
static int WriteAtomic(const char *path, const void *data, size_t len, const char **what)
{
  char tmp[PETSC_MAX_PATH_LEN + 24], dir[PETSC_MAX_PATH_LEN];
  const char *p = data;
  size_t left = len;
  int fd, err;

  /* a temporary name of this process's own: ranks may write the same file */
  snprintf(tmp, sizeof tmp, "%s.tmp.%d", path, (int)getpid());
  *what = "write";
  if ((fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC, 0664)) < 0) return errno;
  while (left > 0) {
    ssize_t w = write(fd, p, left);
    if (w < 0 && errno == EINTR) continue;
    if (w <= 0) {
      err = w < 0 ? errno : EIO;
      close(fd);
      unlink(tmp);
      return err;
    }
    p += w;
    left -= (size_t)w;
  }
  *what = "flush";
  if (fsync(fd) || close(fd)) {
    err = errno;
    unlink(tmp);
    return err;
  }
  *what = "rename";
  if (rename(tmp, path)) {
    err = errno;
    unlink(tmp);
    return err;
  }
  /* make the rename itself durable */
  snprintf(dir, sizeof dir, "%s", path);
  {
    char *slash = strrchr(dir, '/');
    if (slash) *slash = 0;
    else strcpy(dir, ".");
  }
  if ((fd = open(dir, O_RDONLY)) >= 0) {
    fsync(fd);
    close(fd);
  }
  return 0;
}

PetscErrorCode RnWriteFileAtomic(const char *path, const void *data, size_t len)
{
  const char *what = "";
  int err;

  PetscFunctionBeginUser;
  err = WriteAtomic(path, data, len, &what);
  PetscCheck(!err, PETSC_COMM_SELF, PETSC_ERR_FILE_WRITE, "cannot %s %s: %s (the previous %s is kept)", what, path, strerror(err), path);
  PetscFunctionReturn(0);
}

/* The heartbeat. A thread of the rank that writes the manifest rewrites it
 * every RN_HEARTBEAT_SECONDS with the time and the progress counts, whatever
 * the main thread is doing (a step, a collective, waiting for other groups),
 * so that a run killed without a word (SIGKILL, node loss, OOM) is told from a
 * live one by its heartbeat's age. The thread calls neither MPI nor PETSc,
 * and every manifest write takes the lock. */
struct RnHeartbeat_s {
  pthread_mutex_t lock;
  pthread_cond_t wake;
  pthread_t thread;
  int running, stop; /* the thread was started; asked to end */
  int every;         /* seconds between beats */
  char time[64];     /* the last beat */
  long long steps_done, steps_total;
  int units_started, units_total;
};

/* How long an aborting rank waits for the heartbeat's write to end. */
#define RN_ABORT_NOTE_WAIT_S 2

/* RESNODE_HEARTBEAT_SECONDS shortens the beat for the tests. */
static int HeartbeatSeconds(void)
{
  const char *env = getenv("RESNODE_HEARTBEAT_SECONDS");
  const int every = env ? atoi(env) : 0;
  return every > 0 ? every : RN_HEARTBEAT_SECONDS;
}

static void ManifestText(RnRunDir rd, const char *status, const char *reason, char *text, size_t len);

/* Rewrites the manifest with a fresh heartbeat (the lock held). */
static int WriteManifestLocked(RnRunDir rd, const char *status, const char *reason, const char **what)
{
  char text[RN_MANIFEST_MAX], path[PETSC_MAX_PATH_LEN + 32];
  NowString(rd->heartbeat->time, sizeof rd->heartbeat->time);
  ManifestText(rd, status, reason, text, sizeof text);
  snprintf(path, sizeof path, "%s/manifest.json", rd->path);
  return WriteAtomic(path, text, strlen(text), what);
}

static void *HeartbeatLoop(void *arg)
{
  RnRunDir rd = arg;
  struct RnHeartbeat_s *hb = rd->heartbeat;

  pthread_mutex_lock(&hb->lock);
  while (!hb->stop) {
    struct timespec until;
    const char *what;
    clock_gettime(CLOCK_REALTIME, &until);
    until.tv_sec += hb->every;
    while (!hb->stop && pthread_cond_timedwait(&hb->wake, &hb->lock, &until) != ETIMEDOUT) {
    }
    /* the status as the main thread last wrote it; a failed beat is retried at the next */
    if (!hb->stop) (void)WriteManifestLocked(rd, rd->status, rd->reason, &what);
  }
  pthread_mutex_unlock(&hb->lock);
  return NULL;
}

static PetscErrorCode HeartbeatStart(RnRunDir rd)
{
  struct RnHeartbeat_s *hb = rd->heartbeat;
  sigset_t all, old;
  int err;

  PetscFunctionBeginUser;
  /* the signals (preemption notices) stay the main thread's */
  sigfillset(&all);
  pthread_sigmask(SIG_BLOCK, &all, &old);
  err = pthread_create(&hb->thread, NULL, HeartbeatLoop, rd);
  pthread_sigmask(SIG_SETMASK, &old, NULL);
  PetscCheck(!err, PETSC_COMM_SELF, PETSC_ERR_SYS, "cannot start the heartbeat thread of %s: %s", rd->path, strerror(err));
  hb->running = 1;
  PetscFunctionReturn(0);
}

static void HeartbeatStop(RnRunDir rd)
{
  struct RnHeartbeat_s *hb = rd->heartbeat;
  if (!hb || !hb->running) return;
  pthread_mutex_lock(&hb->lock);
  hb->stop = 1;
  pthread_cond_signal(&hb->wake);
  pthread_mutex_unlock(&hb->lock);
  pthread_join(hb->thread, NULL);
  hb->running = 0;
}

void RnRunDirNoteSteps(long long done, long long total)
{
  struct RnHeartbeat_s *hb = rn_current_run ? rn_current_run->heartbeat : NULL;
  if (!hb) return;
  pthread_mutex_lock(&hb->lock);
  hb->steps_done = done, hb->steps_total = total;
  pthread_mutex_unlock(&hb->lock);
}

void RnRunDirNoteUnits(int started, int total)
{
  struct RnHeartbeat_s *hb = rn_current_run ? rn_current_run->heartbeat : NULL;
  if (!hb) return;
  pthread_mutex_lock(&hb->lock);
  hb->units_started = started, hb->units_total = total;
  pthread_mutex_unlock(&hb->lock);
}

/* Free space below which a run refuses to start: a run that cannot write its
 * checkpoints would lose its work. */
#define RN_MIN_FREE_BYTES (16.0 * 1024 * 1024)

/* Which host each rank runs on (MPI_Get_processor_name), on rank 0, as runs
 * of consecutive ranks: "rn1:0-1 rn2:2-3" (cut with "..." past the buffer). */
static PetscErrorCode RankHosts(RnCtx ctx, char *out, size_t len)
{
  char name[MPI_MAX_PROCESSOR_NAME] = "", *all = NULL;
  int n;

  PetscFunctionBeginUser;
  PetscCallMPI(MPI_Get_processor_name(name, &n));
  if (ctx->world_rank == 0) PetscCall(PetscMalloc1((size_t)ctx->world_size * MPI_MAX_PROCESSOR_NAME, &all));
  PetscCallMPI(MPI_Gather(name, MPI_MAX_PROCESSOR_NAME, MPI_CHAR, all, MPI_MAX_PROCESSOR_NAME, MPI_CHAR, 0, ctx->world));
  out[0] = 0;
  if (ctx->world_rank == 0) {
    size_t used = 0;
    for (int r = 0; r < ctx->world_size && used + 1 < len;) {
      const char *host = all + (size_t)r * MPI_MAX_PROCESSOR_NAME;
      int last = r;
      while (last + 1 < ctx->world_size && !strcmp(host, all + (size_t)(last + 1) * MPI_MAX_PROCESSOR_NAME)) last++;
      if (last > r) snprintf(out + used, len - used, "%s%s:%d-%d", used ? " " : "", host, r, last);
      else snprintf(out + used, len - used, "%s%s:%d", used ? " " : "", host, r);
      used = strlen(out);
      r = last + 1;
      if (r < ctx->world_size && used + 8 >= len) snprintf(out + len - 5, 5, "...");
    }
    PetscCall(PetscFree(all));
  }
  PetscFunctionReturn(0);
}

PetscErrorCode RnRunDirCreate(RnCtx ctx, const char *path, const char *experiment, int argc, char **argv, PetscBool resume, RnRunDir *rdir)
{
  RnRunDir rd;
  char msg[PETSC_MAX_PATH_LEN + 256] = "", stale_beat[64] = "";
  int failed = 0;

  PetscFunctionBeginUser;
  PetscCall(PetscNew(&rd));
  rd->ctx = ctx;
  rd->lock_fd = -1;
  rd->resume = resume;
  PetscCall(PetscStrncpy(rd->path, path, sizeof rd->path));
  PetscCall(PetscStrncpy(rd->experiment, experiment, sizeof rd->experiment));
  for (int i = 0; i < argc; i++) {
    size_t used = strlen(rd->command);
    if (used + strlen(argv[i]) + 2 >= sizeof rd->command) break;
    if (i) strcat(rd->command, " ");
    strcat(rd->command, argv[i]);
  }
  NowString(rd->start_time, sizeof rd->start_time);
  PetscCall(RankHosts(ctx, rd->rank_hosts, sizeof rd->rank_hosts));
  {
    int mpi_len;
    PetscCallMPI(MPI_Get_library_version(rd->mpi_version, &mpi_len));
    rd->mpi_version[strcspn(rd->mpi_version, "\n,")] = 0;
  }
  PetscCall(PetscNew(&rd->heartbeat));
  PetscCheck(!pthread_mutex_init(&rd->heartbeat->lock, NULL) && !pthread_cond_init(&rd->heartbeat->wake, NULL), PETSC_COMM_SELF, PETSC_ERR_SYS, "cannot set up the heartbeat's lock");
  rd->heartbeat->every = HeartbeatSeconds();
  if (ctx->world_rank == 0) {
    char probe[PETSC_MAX_PATH_LEN + 32], lock[PETSC_MAX_PATH_LEN + 32];
    struct statvfs vfs;
    int err = MakeDirs(path);
    if (err) {
      failed = 1;
      snprintf(msg, sizeof msg, "run directory %s: cannot create it: %s; set run.dir to a writable place", path, strerror(err));
    }
    if (!failed) {
      FILE *fp;
      snprintf(probe, sizeof probe, "%s/.write-test", path);
      fp = fopen(probe, "w");
      if (!fp || fputs("ok\n", fp) < 0 || fclose(fp)) {
        failed = 1;
        snprintf(msg, sizeof msg, "run directory %s is not writable: %s; set run.dir to a writable place", path, strerror(errno));
      }
      unlink(probe);
    }
    if (!failed && statvfs(path, &vfs) == 0 && (double)vfs.f_bavail * (double)vfs.f_frsize < RN_MIN_FREE_BYTES) {
      failed = 1;
      snprintf(msg, sizeof msg, "run directory %s: only %.1f MB free on its file system; a run needs room for its checkpoints (at least %.0f MB)", path,
               (double)vfs.f_bavail * (double)vfs.f_frsize / 1e6, RN_MIN_FREE_BYTES / 1e6);
    }
    if (!failed && resume) {
      /* what this attempt may change, as found (RnRunDirUndoAttempt) */
      char file[PETSC_MAX_PATH_LEN + 32];
      snprintf(file, sizeof file, "%s/config.cfg", path);
      rd->previous_config = ReadWholeFile(file, NULL);
      snprintf(file, sizeof file, "%s/.lock", path);
      rd->previous_lock = ReadWholeFile(file, NULL);
      snprintf(file, sizeof file, "%s/log.txt", path);
      free(ReadWholeFile(file, &rd->previous_log_bytes));
      snprintf(file, sizeof file, "%s/checkpoints/config.cfg", path);
      rd->had_stored_config = access(file, F_OK) == 0 ? PETSC_TRUE : PETSC_FALSE;
      snprintf(file, sizeof file, "%s/snapshots", path);
      rd->had_snapshots = IsDir(file);
      snprintf(file, sizeof file, "%s/checkpoints", path);
      rd->had_checkpoints = IsDir(file);
    }
    if (!failed) {
      /* flock is released by the kernel when the process dies, so a killed
       * run never leaves a stale lock behind */
      snprintf(lock, sizeof lock, "%s/.lock", path);
      rd->lock_fd = open(lock, O_RDWR | O_CREAT, 0664);
      if (rd->lock_fd < 0) {
        /* not a run holding it: a lock that cannot be opened (a directory, no permission) */
        failed = 1;
        snprintf(msg, sizeof msg, "run directory %s: cannot open its lock file %s: %s%s", path, lock, strerror(errno), errno == EISDIR ? " (a directory: remove it)" : "");
      } else if (flock(rd->lock_fd, LOCK_EX | LOCK_NB)) {
        char owner[128] = "";
        if (rd->lock_fd >= 0) {
          ssize_t r = pread(rd->lock_fd, owner, sizeof owner - 1, 0);
          owner[r > 0 ? r : 0] = 0;
          owner[strcspn(owner, "\n")] = 0;
        }
        failed = 1;
        snprintf(msg, sizeof msg, "run directory %s is in use by another run (%s); wait for it, or choose another run.dir", path, owner[0] ? owner : "lock held");
      } else {
        char owner[128], host[64] = "?";
        gethostname(host, sizeof host);
        snprintf(owner, sizeof owner, "pid %d on %s since %s\n", (int)getpid(), host, rd->start_time);
        if (ftruncate(rd->lock_fd, 0) == 0 && pwrite(rd->lock_fd, owner, strlen(owner), 0) < 0) { /* informative only */
        }
      }
    }
    if (!failed) {
      /* the previous attempt's status: "running" with the lock free means it
       * was killed (time or memory limit, node failure, kill -9) */
      char mpath[PETSC_MAX_PATH_LEN + 32], *mtext;
      snprintf(mpath, sizeof mpath, "%s/manifest.json", path);
      /* whole: a 64-rank manifest is larger than any fixed buffer */
      if ((mtext = ReadWholeFile(mpath, NULL))) {
        const char *st;
        PetscCall(PetscStrallocpy(mtext, &rd->previous_manifest));
        if ((st = strstr(mtext, "\"status\": \""))) {
          st += strlen("\"status\": \"");
          snprintf(rd->previous, sizeof rd->previous, "%.*s", (int)strcspn(st, "\""), st);
          /* we hold the lock: no process runs it, whatever the manifest says */
          if (!strcmp(rd->previous, "running")) {
            const char *beat = strstr(mtext, "\"heartbeat\": {\"time\": \"");
            snprintf(rd->previous, sizeof rd->previous, "stale");
            if (beat) beat += strlen("\"heartbeat\": {\"time\": \""), snprintf(stale_beat, sizeof stale_beat, "%.*s", (int)strcspn(beat, "\""), beat);
          }
        }
        free(mtext);
      }
    }
    if (!failed) {
      char sub[PETSC_MAX_PATH_LEN + 32];
      snprintf(sub, sizeof sub, "%s/snapshots", path);
      MakeDirs(sub);
      snprintf(sub, sizeof sub, "%s/checkpoints", path);
      MakeDirs(sub);
      snprintf(sub, sizeof sub, "%s/log.txt", path);
      ctx->log_file = fopen(sub, "a"); /* a resumed run continues its log */
    }
  }
  PetscCall(RnAgreeInput(ctx->world, failed, msg));
  PetscCallMPI(MPI_Bcast(rd->start_time, sizeof rd->start_time, MPI_CHAR, 0, ctx->world));
  PetscCallMPI(MPI_Bcast(rd->previous, sizeof rd->previous, MPI_CHAR, 0, ctx->world));
  if (!strcmp(rd->previous, "stale"))
    PetscCall(RnLog(ctx, "run directory %s: the previous attempt is stale: it ended without a status, its last heartbeat %s%s (killed: a time or memory limit, a node failure or kill -9)\n", path,
                    stale_beat[0] ? "at " : "unknown", stale_beat[0] ? stale_beat : " (a manifest of before the heartbeat)"));
  *rdir = rd;
  rn_current_run = rd;
  RnSetAbortNote(AbortNote);
  PetscCall(RnRunDirSetStatus(rd, "running", ""));
  if (ctx->world_rank == 0) PetscCall(HeartbeatStart(rd));
  PetscFunctionReturn(0);
}

PetscErrorCode RnRunDirCreateUnit(RnRunDir parent, RnCtx view, const char *name, RnRunDir *unit)
{
  RnRunDir rd;
  char msg[PETSC_MAX_PATH_LEN + 128] = "";
  int failed = 0;

  PetscFunctionBeginUser;
  PetscCall(PetscNew(&rd));
  rd->ctx = view;
  rd->unit = PETSC_TRUE;
  rd->lock_fd = -1;
  rd->resume = PETSC_FALSE; /* the queue says which units go on from a checkpoint */
  PetscCall(PetscStrncpy(rd->experiment, parent->experiment, sizeof rd->experiment));
  PetscCall(PetscSNPrintf(rd->path, sizeof rd->path, "%s/units/%s", parent->path, name));
  if (view->world_rank == 0) {
    char sub[PETSC_MAX_PATH_LEN + 32];
    int err;
    snprintf(sub, sizeof sub, "%s/checkpoints", rd->path);
    if ((err = MakeDirs(sub))) failed = 1, snprintf(msg, sizeof msg, "cannot create %s: %s", sub, strerror(err));
  }
  PetscCall(RnAgreeInput(view->world, failed, msg));
  *unit = rd;
  PetscFunctionReturn(0);
}

PetscErrorCode RnRunDirFile(RnRunDir rd, const char *name, char *buf, size_t len)
{
  PetscFunctionBeginUser;
  PetscCall(PetscSNPrintf(buf, len, "%s/%s", rd->path, name));
  PetscFunctionReturn(0);
}

void RnJsonString(char *out, size_t len, const char *in)
{
  size_t o = 0;
  out[o++] = '"';
  for (; *in && o + 8 < len; in++) {
    if (*in == '"' || *in == '\\') out[o++] = '\\', out[o++] = *in;
    else if ((unsigned char)*in < 0x20) o += (size_t)snprintf(out + o, len - o, "\\u%04x", *in);
    else out[o++] = *in;
  }
  out[o++] = '"';
  out[o] = 0;
}

/* manifest.json's text; plain C (no PETSc or MPI calls), so that the heartbeat
 * thread and the abort path can use it */
static void ManifestText(RnRunDir rd, const char *status, const char *reason, char *text, size_t len)
{
  char petsc_version[128] = "?", now[64], host[64] = "?";
  char cmd[8192], mpi_json[2 * MPI_MAX_LIBRARY_VERSION_STRING], cpu[256], cpu_json[512], kernels_json[4200], schedule_json[600], data_json[300], reason_json[4200], isa[128], analysis_json[PETSC_MAX_PATH_LEN * 2],
    hosts_json[2 * sizeof rd->rank_hosts], heartbeat_json[400] = "null";
  const struct RnHeartbeat_s *hb = rd->heartbeat;

  PetscGetVersion(petsc_version, sizeof petsc_version);
  NowString(now, sizeof now);
  gethostname(host, sizeof host);
  RnJsonString(cmd, sizeof cmd, rd->command);
  RnJsonString(mpi_json, sizeof mpi_json, rd->mpi_version);
  RnCpuDescribe(cpu, sizeof cpu);
  RnJsonString(cpu_json, sizeof cpu_json, cpu);
  RnJsonString(kernels_json, sizeof kernels_json, rd->kernels);
  RnJsonString(schedule_json, sizeof schedule_json, rd->schedule);
  RnJsonString(data_json, sizeof data_json, rd->data_copies);
  RnJsonString(reason_json, sizeof reason_json, reason ? reason : "");
  RnJsonString(analysis_json, sizeof analysis_json, rd->analysis);
  RnJsonString(hosts_json, sizeof hosts_json, rd->rank_hosts);
  RnIsaDescribe(isa, sizeof isa);
  if (hb)
    snprintf(heartbeat_json, sizeof heartbeat_json, "{\"time\": \"%s\", \"every_s\": %d, \"pid\": %d, \"steps_done\": %lld, \"steps_total\": %lld, \"units_started\": %d, \"units_total\": %d}", hb->time[0] ? hb->time : now, hb->every,
             (int)getpid(), hb->steps_done, hb->steps_total, hb->units_started, hb->units_total);
  snprintf(text, len,
           "{\n  \"manifest_version\": %d,\n  \"resnode_version\": \"%s\",\n  \"git_commit\": \"%s\",\n  \"build\": \"%s\",\n  \"petsc_version\": \"%s\",\n  \"mpi_version\": %s,\n  \"experiment\": \"%s\",\n  \"command\": %s,\n"
           "  \"host\": \"%s\",\n  \"rank_hosts\": %s,\n  \"ranks\": %d,\n  \"groups\": %d,\n  \"ranks_per_group\": %d,\n  \"seed\": %llu,\n  \"start\": \"%s\",\n"
           "  \"end\": \"%s\",\n  \"status\": \"%s\",\n  \"reason\": %s,\n  \"heartbeat\": %s,\n  \"previous_attempt\": \"%s\",\n  \"cpu\": %s,\n  \"threads_per_rank\": %d,\n  \"kernels\": %s,\n  \"schedule\": %s,\n  \"data_copies\": %s,\n  \"peak_rss_mb\": %s,\n  \"analysis\": %s,\n  \"config_files\": %s,\n  \"profile\": %s\n}\n",
           RN_MANIFEST_VERSION, RESNODE_VERSION, RESNODE_GIT_COMMIT, isa, petsc_version, mpi_json, rd->experiment, cmd, host, hosts_json, rd->ctx->world_size, rd->ctx->group_count, rd->ctx->group_size,
           (unsigned long long)rd->ctx->seed, rd->start_time, strcmp(status, "running") ? now : "", status, reason_json, heartbeat_json, rd->previous, cpu_json, RnThreadsPerRank(), kernels_json, schedule_json, data_json,
           rd->peak_rss[0] ? rd->peak_rss : "null", analysis_json, rd->config_files[0] ? rd->config_files : "[]", rd->profile[0] ? rd->profile : "null");
}

PetscErrorCode RnRunDirSetStatus(RnRunDir rd, const char *status, const char *reason)
{
  const char *what = "";
  int err;

  PetscFunctionBeginUser;
  PetscCall(PetscStrncpy(rd->status, status, sizeof rd->status));
  PetscCall(PetscStrncpy(rd->reason, reason ? reason : "", sizeof rd->reason));
  if (rd->ctx->world_rank != 0) PetscFunctionReturn(0);
  pthread_mutex_lock(&rd->heartbeat->lock);
  err = WriteManifestLocked(rd, status, reason, &what);
  pthread_mutex_unlock(&rd->heartbeat->lock);
  PetscCheck(!err, PETSC_COMM_SELF, PETSC_ERR_FILE_WRITE, "cannot %s %s/manifest.json: %s (the previous manifest is kept)", what, rd->path, strerror(err));
  PetscFunctionReturn(0);
}

static void AbortNote(const char *status, const char *reason)
{
  struct RnHeartbeat_s *hb;
  const char *what;

  if (!rn_current_run) return;
  hb = rn_current_run->heartbeat;
  /* best effort: the job is ending. The heartbeat may be writing (a moment:
   * wait for it), or the lock may be this thread's own, held by the write
   * that failed (give up after the wait) */
  {
    struct timespec until;
    clock_gettime(CLOCK_REALTIME, &until);
    until.tv_sec += RN_ABORT_NOTE_WAIT_S;
    if (pthread_mutex_timedlock(&hb->lock, &until)) return;
  }
  snprintf(rn_current_run->status, sizeof rn_current_run->status, "%s", status);
  snprintf(rn_current_run->reason, sizeof rn_current_run->reason, "%s", reason ? reason : "");
  (void)WriteManifestLocked(rn_current_run, status, reason, &what);
  pthread_mutex_unlock(&hb->lock);
}

/* Writes text back to path, or removes path where there was none. */
static PetscErrorCode PutBack(RnRunDir rd, const char *name, const char *text)
{
  char path[PETSC_MAX_PATH_LEN + 32];

  PetscFunctionBeginUser;
  PetscCall(RnRunDirFile(rd, name, path, sizeof path));
  if (text) PetscCall(RnWriteFileAtomic(path, text, strlen(text)));
  else unlink(path);
  PetscFunctionReturn(0);
}

PetscErrorCode RnRunDirUndoAttempt(RnRunDir rd)
{
  char path[PETSC_MAX_PATH_LEN + 32];

  PetscFunctionBeginUser;
  if (rd->ctx->world_rank != 0) PetscFunctionReturn(0);
  if (rd->previous_manifest) PetscCall(PutBack(rd, "manifest.json", rd->previous_manifest));
  if (!rd->resume) PetscFunctionReturn(0);
  PetscCall(PutBack(rd, "config.cfg", rd->previous_config));
  if (!rd->had_stored_config) PetscCall(PutBack(rd, "checkpoints/config.cfg", NULL));
  PetscCall(RnRunDirFile(rd, "log.txt", path, sizeof path));
  if (rd->ctx->log_file) fclose(rd->ctx->log_file), rd->ctx->log_file = NULL;
  if (rd->previous_log_bytes < 0) unlink(path);
  else if (truncate(path, (off_t)rd->previous_log_bytes)) PetscCall(RnLog(rd->ctx, "warning: could not restore %s: %s\n", path, strerror(errno)));
  if (rd->lock_fd >= 0 && rd->previous_lock && ftruncate(rd->lock_fd, 0) == 0 && pwrite(rd->lock_fd, rd->previous_lock, strlen(rd->previous_lock), 0) < 0) { /* informative only */
  }
  PetscCall(RnRunDirFile(rd, "snapshots", path, sizeof path));
  if (!rd->had_snapshots) rmdir(path);
  PetscCall(RnRunDirFile(rd, "checkpoints", path, sizeof path));
  if (!rd->had_checkpoints) rmdir(path);
  PetscFunctionReturn(0);
}

void RnRunDirMarkStarted(void)
{
  if (rn_current_run) rn_current_run->started = PETSC_TRUE;
}

PetscErrorCode RnRunDirSetAnalysis(RnRunDir rd, const char *command)
{
  PetscFunctionBeginUser;
  PetscCall(PetscStrncpy(rd->analysis, command, sizeof rd->analysis));
  PetscFunctionReturn(0);
}

PetscErrorCode RnRunDirAddConfigFile(RnRunDir rd, const char *path, uint64_t checksum)
{
  char path_json[2 * PETSC_MAX_PATH_LEN + 4];
  size_t used = strlen(rd->config_files);

  PetscFunctionBeginUser;
  RnJsonString(path_json, sizeof path_json, path);
  if (used) used--; /* over the closing bracket */
  else rd->config_files[used++] = '[';
  snprintf(rd->config_files + used, sizeof rd->config_files - used, "%s{\"path\": %s, \"fnv1a64\": \"%016llx\"}]", rd->config_files[used - 1] == '[' ? "" : ", ", path_json, (unsigned long long)checksum);
  PetscFunctionReturn(0);
}

PetscErrorCode RnRunDirSetKernels(RnRunDir rd, const char *kernels)
{
  PetscFunctionBeginUser;
  PetscCall(PetscStrncpy(rd->kernels, kernels, sizeof rd->kernels));
  PetscFunctionReturn(0);
}

PetscErrorCode RnRunDirSetDataCopies(RnRunDir rd, int copies, double bytes, int nodes)
{
  char size[32];

  PetscFunctionBeginUser;
  RnFormatBytes(bytes, size, sizeof size);
  PetscCall(PetscSNPrintf(rd->data_copies, sizeof rd->data_copies, "%d cop%s of %s on %d node(s)%s", copies, copies == 1 ? "y" : "ies", size, nodes, copies == nodes ? ", one a node" : ""));
  PetscFunctionReturn(0);
}

PetscErrorCode RnRunDirGatherPeakMemory(RnRunDir rd)
{
  RnCtx ctx = rd->ctx;
  struct rusage ru;
  double mine, *all = NULL;

  PetscFunctionBeginUser;
  getrusage(RUSAGE_SELF, &ru);
  mine = (double)ru.ru_maxrss / 1024.0; /* kB on Linux */
  if (ctx->world_rank == 0) PetscCall(PetscMalloc1(ctx->world_size, &all));
  PetscCallMPI(MPI_Gather(&mine, 1, MPI_DOUBLE, all, 1, MPI_DOUBLE, 0, ctx->world));
  if (ctx->world_rank == 0) {
    size_t used = 0;
    double lo = all[0], hi = all[0];
    int at = 0;
    used += (size_t)snprintf(rd->peak_rss, sizeof rd->peak_rss, "[");
    for (int r = 0; r < ctx->world_size && used + 16 < sizeof rd->peak_rss; r++) used += (size_t)snprintf(rd->peak_rss + used, sizeof rd->peak_rss - used, "%s%.1f", r ? ", " : "", all[r]);
    snprintf(rd->peak_rss + used, sizeof rd->peak_rss - used, "]");
    for (int r = 1; r < ctx->world_size; r++) {
      lo = PetscMin(lo, all[r]);
      if (all[r] > hi) hi = all[r], at = r;
    }
    PetscCall(RnLog(ctx, "peak resident memory per rank: %.0f to %.0f MB (the most on rank %d); all in the manifest (peak_rss_mb)\n", lo, hi, at));
    PetscCall(PetscFree(all));
  }
  PetscFunctionReturn(0);
}

PetscErrorCode RnRunDirSetProfile(RnRunDir rd, const char *json)
{
  PetscFunctionBeginUser;
  PetscCall(PetscStrncpy(rd->profile, json, sizeof rd->profile));
  PetscFunctionReturn(0);
}

PetscErrorCode RnRunDirSetSchedule(RnRunDir rd, const char *schedule)
{
  PetscFunctionBeginUser;
  PetscCall(PetscStrncpy(rd->schedule, schedule, sizeof rd->schedule));
  PetscFunctionReturn(0);
}

PetscErrorCode RnRunDirDestroy(RnRunDir *rd)
{
  PetscFunctionBeginUser;
  if (!rd || !*rd) PetscFunctionReturn(0);
  HeartbeatStop(*rd);
  if (rn_current_run == *rd) {
    rn_current_run = NULL;
    RnSetAbortNote(NULL);
  }
  if ((*rd)->heartbeat) {
    pthread_mutex_destroy(&(*rd)->heartbeat->lock);
    pthread_cond_destroy(&(*rd)->heartbeat->wake);
    PetscCall(PetscFree((*rd)->heartbeat));
  }
  PetscCall(PetscFree((*rd)->previous_manifest));
  free((*rd)->previous_config);
  free((*rd)->previous_lock);
  if ((*rd)->lock_fd >= 0) close((*rd)->lock_fd); /* releases the flock */
  if ((*rd)->ctx->log_file && !(*rd)->unit) {
    fclose((*rd)->ctx->log_file);
    (*rd)->ctx->log_file = NULL;
  }
  PetscCall(PetscFree(*rd));
  *rd = NULL;
  PetscFunctionReturn(0);
}