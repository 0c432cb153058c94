/* core.c: run context, logging, error handler. */
#include "resnode/core/core.h"

#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <cblas.h>
#include <omp.h>

PetscErrorCode RnCtxCreate(MPI_Comm world, RnCtx *ctx)
{
  RnCtx c;

  PetscFunctionBeginUser;
  PetscCall(PetscNew(&c));
  c->world = world;
  PetscCallMPI(MPI_Comm_rank(world, &c->world_rank));
  PetscCallMPI(MPI_Comm_size(world, &c->world_size));
  c->group = MPI_COMM_NULL;
  c->leaders = MPI_COMM_NULL;
  c->seed = 1;
  c->verbose = 1;
  /* lines rewritten in place only on an interactive terminal: under mpirun the
   * ranks may see a pty even when the output goes to a file, so batch jobs
   * (Slurm) and RESNODE_PROGRESS=lines get plain, throttled lines */
  {
    const char *mode = getenv("RESNODE_PROGRESS");
    c->progress_tty = (c->world_rank == 0 && isatty(STDOUT_FILENO) && !getenv("SLURM_JOB_ID")) ? PETSC_TRUE : PETSC_FALSE;
    if (mode && !strcmp(mode, "lines")) c->progress_tty = PETSC_FALSE;
    if (mode && !strcmp(mode, "tty")) c->progress_tty = PETSC_TRUE;
  }
  *ctx = c;
  PetscCall(RnCtxSetGroups(c, 1));
  PetscFunctionReturn(0);
}

PetscErrorCode RnCtxNodeCount(RnCtx ctx, int *nodes, PetscBool *balanced)
{
  MPI_Comm node;
  int node_rank, node_size, counts[3], sums[3];

  PetscFunctionBeginUser;
  PetscCallMPI(MPI_Comm_split_type(ctx->world, MPI_COMM_TYPE_SHARED, 0, MPI_INFO_NULL, &node));
  PetscCallMPI(MPI_Comm_rank(node, &node_rank));
  PetscCallMPI(MPI_Comm_size(node, &node_size));
  PetscCallMPI(MPI_Comm_free(&node));
  counts[0] = node_rank == 0, counts[1] = node_size, counts[2] = -node_size;
  PetscCallMPI(MPI_Allreduce(counts, sums, 1, MPI_INT, MPI_SUM, ctx->world));
  PetscCallMPI(MPI_Allreduce(counts + 1, sums + 1, 2, MPI_INT, MPI_MAX, ctx->world));
  *nodes = sums[0];
  *balanced = (PetscBool)(sums[1] == -sums[2]);
  PetscFunctionReturn(0);
}

PetscErrorCode RnCtxSetGroups(RnCtx ctx, int group_count)
{
  int group_size;

  PetscFunctionBeginUser;
  RnInputCheck(group_count >= 1, ctx->world, "parallel.groups: must be at least 1, got %d", group_count);
  RnInputCheck(ctx->world_size % group_count == 0, ctx->world,
               "parallel.groups = %d does not divide the %d MPI ranks: run with a multiple of %d ranks (mpirun -n %d ...) or change parallel.groups",
               group_count, ctx->world_size, group_count, group_count);
  if (ctx->group != MPI_COMM_NULL) PetscCallMPI(MPI_Comm_free(&ctx->group));
  if (ctx->leaders != MPI_COMM_NULL) PetscCallMPI(MPI_Comm_free(&ctx->leaders));
  group_size = ctx->world_size / group_count;
  ctx->group_count = group_count;
  ctx->group_id = ctx->world_rank / group_size;
  PetscCallMPI(MPI_Comm_split(ctx->world, ctx->group_id, ctx->world_rank, &ctx->group));
  PetscCallMPI(MPI_Comm_rank(ctx->group, &ctx->group_rank));
  PetscCallMPI(MPI_Comm_size(ctx->group, &ctx->group_size));
  PetscCallMPI(MPI_Comm_split(ctx->world, ctx->group_rank == 0 ? 0 : MPI_UNDEFINED, ctx->world_rank, &ctx->leaders));
  PetscFunctionReturn(0);
}

PetscErrorCode RnCtxDestroy(RnCtx *ctx)
{
  PetscFunctionBeginUser;
  if (!ctx || !*ctx) PetscFunctionReturn(0);
  if ((*ctx)->group != MPI_COMM_NULL) PetscCallMPI(MPI_Comm_free(&(*ctx)->group));
  if ((*ctx)->leaders != MPI_COMM_NULL) PetscCallMPI(MPI_Comm_free(&(*ctx)->leaders));
  if ((*ctx)->log_file) fclose((*ctx)->log_file);
  PetscCall(PetscFree(*ctx));
  *ctx = NULL;
  PetscFunctionReturn(0);
}

PetscErrorCode RnCtxCreateGroupView(RnCtx ctx, RnCtx *view)
{
  RnCtx v;

  PetscFunctionBeginUser;
  PetscCall(PetscNew(&v));
  v->world = ctx->group;
  v->world_rank = ctx->group_rank, v->world_size = ctx->group_size;
  v->group = ctx->group;
  v->group_id = 0, v->group_count = 1, v->group_rank = ctx->group_rank, v->group_size = ctx->group_size;
  v->leaders = MPI_COMM_NULL;
  v->seed = ctx->seed;
  /* one progress line on screen: group 0's */
  v->verbose = ctx->group_id == 0 ? ctx->verbose : 0;
  v->log_file = ctx->world_rank == 0 ? ctx->log_file : NULL; /* borrowed: the world's closes it */
  v->progress_tty = ctx->progress_tty;
  memcpy(v->log_prefix, ctx->log_prefix, sizeof v->log_prefix);
  *view = v;
  PetscFunctionReturn(0);
}

PetscErrorCode RnCtxDestroyGroupView(RnCtx *view)
{
  PetscFunctionBeginUser;
  PetscCall(PetscFree(*view));
  PetscFunctionReturn(0);
}

static int rn_progress_open = 0; /* a progress line is on screen without newline */
static double rn_progress_last = -1e30; /* when the last plain progress line went out */
#define RN_PROGRESS_INTERVAL 10.0     /* seconds between plain progress lines */

PetscErrorCode RnLog(RnCtx ctx, const char *fmt, ...)
{
  va_list ap;

  PetscFunctionBeginUser;
  if (ctx->world_rank != 0) PetscFunctionReturn(0);
  if (rn_progress_open) {
    fputc('\n', stdout);
    rn_progress_open = 0;
  }
  va_start(ap, fmt);
  if (ctx->log_prefix[0]) {
    /* a study's point: its lines told apart from the other groups' */
    char line[2048];
    vsnprintf(line, sizeof line, fmt, ap);
    for (const char *l = line; *l;) {
      const size_t n = strcspn(l, "\n");
      fprintf(stdout, "%s%.*s\n", ctx->log_prefix, (int)n, l);
      l += n + (l[n] == '\n');
    }
  } else vfprintf(stdout, fmt, ap);
  va_end(ap);
  fflush(stdout);
  if (ctx->log_file) {
    va_start(ap, fmt);
    vfprintf(ctx->log_file, fmt, ap);
    va_end(ap);
    fflush(ctx->log_file);
  }
  PetscFunctionReturn(0);
}

PetscErrorCode RnProgress(RnCtx ctx, const char *fmt, ...)
{
  va_list ap;
  char line[512];

  PetscFunctionBeginUser;
  if (ctx->world_rank != 0 || ctx->verbose < 1) PetscFunctionReturn(0);
  /* a line rewritten in place at most a few times a second; plain lines every RN_PROGRESS_INTERVAL */
  if (RnWallTime() - rn_progress_last < (ctx->progress_tty ? 0.25 : RN_PROGRESS_INTERVAL)) PetscFunctionReturn(0);
  rn_progress_last = RnWallTime();
  va_start(ap, fmt);
  vsnprintf(line, sizeof line, fmt, ap);
  va_end(ap);
  if (ctx->progress_tty) {
    fprintf(stdout, "\r\033[K%s", line);
    rn_progress_open = 1;
  } else {
    fprintf(stdout, "%s%s\n", ctx->log_prefix, line);
  }
  fflush(stdout);
  PetscFunctionReturn(0);
}

PetscErrorCode RnProgressEnd(RnCtx ctx)
{
  PetscFunctionBeginUser;
  if (ctx->world_rank == 0 && rn_progress_open) {
    fputc('\n', stdout);
    fflush(stdout);
    rn_progress_open = 0;
  }
  PetscFunctionReturn(0);
}

static char rn_last_error[1024]; /* the message of the newest error raised */
static size_t rn_failed_bytes;   /* the size of the allocation that failed */

/* PETSc's allocator, replaced (PetscMallocSet) so that a failed allocation
 * says how much it asked for; every buffer 64-byte aligned (oneDNN's). */
static PetscErrorCode RnMalloc(size_t bytes, PetscBool clear, int line, const char func[], const char file[], void **result)
{
  *result = NULL;
  if (!bytes) return 0;
  if (posix_memalign(result, 64, bytes)) {
    *result = NULL;
    rn_failed_bytes = bytes;
    return PetscError(PETSC_COMM_SELF, line, func, file, PETSC_ERR_MEM, PETSC_ERROR_INITIAL, "out of memory: %.0f bytes requested", (double)bytes);
  }
  if (clear) memset(*result, 0, bytes);
  return 0;
}

static PetscErrorCode RnFree(void *ptr, int line, const char func[], const char file[])
{
  free(ptr);
  return 0;
}

static PetscErrorCode RnRealloc(size_t bytes, int line, const char func[], const char file[], void **result)
{
  void *p;
  if (!bytes) {
    free(*result);
    *result = NULL;
    return 0;
  }
  p = realloc(*result, bytes);
  if (!p) {
    rn_failed_bytes = bytes;
    return PetscError(PETSC_COMM_SELF, line, func, file, PETSC_ERR_MEM, PETSC_ERROR_INITIAL, "out of memory: %.0f bytes requested", (double)bytes);
  }
  *result = p;
  return 0;
}

int RnMallocInstall(void) { return PetscMallocSet(RnMalloc, RnFree, RnRealloc) ? -1 : 0; }

double RnMemoryAvailable(void)
{
  char line[256];
  double kb = -1;
  FILE *f = fopen("/proc/meminfo", "r");
  if (!f) return -1;
  while (fgets(line, sizeof line, f))
    if (sscanf(line, "MemAvailable: %lf kB", &kb) == 1) break;
  fclose(f);
  return kb > 0 ? kb * 1024.0 : -1;
}

void RnFormatBytes(double bytes, char *buf, size_t len)
{
  const char *unit[] = {"B", "KiB", "MiB", "GiB", "TiB", "PiB", "EiB"};
  int u = 0;
  while (bytes >= 1024.0 && u < 6) bytes /= 1024.0, u++;
  snprintf(buf, len, u ? "%.1f %s" : "%.0f %s", bytes, unit[u]);
}
static void (*rn_abort_note)(const char *status, const char *reason);
static int rn_group_errors_collected = 0; /* a unit queue gathers the groups' errors (units.h) */
static MPI_Comm rn_job_comm = MPI_COMM_NULL; /* the ranks of the run under way (MPI_COMM_NULL: the world) */
static char rn_job_prefix[96];               /* ... and what its messages start with */

void RnErrorSetJob(MPI_Comm comm, const char *prefix)
{
  rn_job_comm = comm;
  snprintf(rn_job_prefix, sizeof rn_job_prefix, "%s", prefix ? prefix : "");
}

void RnGroupErrorsCollected(PetscBool collected) { rn_group_errors_collected = collected ? 1 : 0; }

const char *RnLastErrorMessage(void) { return rn_last_error; }

void RnSetAbortNote(void (*note)(const char *status, const char *reason)) { rn_abort_note = note; }

const char *RnErrorStatus(PetscErrorCode err) { return err == 0 ? "done" : (err == RN_ERR_PREEMPTED ? "preempted" : "failed"); }

void RnErrorReason(PetscErrorCode err, const char *message, char *buf, size_t len)
{
  const char *kind = err == RN_ERR_PREEMPTED ? "" : (err == RN_ERR_NONFINITE ? "non-finite: " : (err == RN_ERR_INPUT ? "bad input: " : "error: "));
  if (err == 0) snprintf(buf, len, "finished");
  else if (err == RN_ERR_PREEMPTED || err == RN_ERR_NONFINITE || err == RN_ERR_INPUT) snprintf(buf, len, "%s%s", kind, message && message[0] ? message : "(no message)");
  else snprintf(buf, len, "error: PETSc error %d%s%s", (int)err, message && message[0] ? ": " : "", message ? message : "");
}

/* Input errors: one clean line from rank 0 of the communicator that raised
 * it. Everything else: PETSc's traceback. */
static PetscErrorCode RnErrorHandler(MPI_Comm comm, int line, const char *fun, const char *file, PetscErrorCode n, PetscErrorType p, const char *mess, void *ctx)
{
  if (p == PETSC_ERROR_INITIAL) snprintf(rn_last_error, sizeof rn_last_error, "%s", mess ? mess : "");
  if (n == RN_ERR_INPUT || n == RN_ERR_PREEMPTED || n == RN_ERR_NONFINITE) {
    if (p == PETSC_ERROR_INITIAL) {
      int rank = 0, world_rank = 0;
      if (comm != MPI_COMM_NULL) MPI_Comm_rank(comm, &rank);
      MPI_Comm_rank(MPI_COMM_WORLD, &world_rank);
      /* a group's error: the queue ends the other groups and raises it on the world */
      if (rn_group_errors_collected && comm != MPI_COMM_NULL && comm != PETSC_COMM_SELF) return n;
      if (rank == 0) {
        if (rn_progress_open) fputc('\n', stdout), fflush(stdout);
        const char *what = n == RN_ERR_PREEMPTED ? "stopped" : "error";
        if (comm == PETSC_COMM_SELF && world_rank != 0) fprintf(stderr, "%sresnode-mpi: %s (rank %d): %s\n", rn_job_prefix, what, world_rank, mess);
        else fprintf(stderr, "%sresnode-mpi: %s: %s\n", rn_job_prefix, what, mess);
        fflush(stderr);
      }
      /* raised on part of the job (a group's communicator): the other ranks
       * would wait for these in the next collective. End the job with the
       * error's exit status instead of a hang. */
      if (comm != MPI_COMM_NULL) {
        int same;
        MPI_Comm_compare(comm, rn_job_comm != MPI_COMM_NULL ? rn_job_comm : MPI_COMM_WORLD, &same);
        if (same != MPI_IDENT && same != MPI_CONGRUENT) {
          int world_size;
          MPI_Comm_size(MPI_COMM_WORLD, &world_size);
          if (world_size > 1) {
            /* the run's manifest says how the job ended: the ranks that
             * would write it are about to be killed */
            if (rank == 0 && rn_abort_note) {
              char reason[1200];
              RnErrorReason(n, mess, reason, sizeof reason);
              rn_abort_note(RnErrorStatus(n), reason);
            }
            fflush(stdout);
            MPI_Abort(MPI_COMM_WORLD, n == RN_ERR_INPUT ? RN_EXIT_INPUT : (n == RN_ERR_PREEMPTED ? RN_EXIT_PREEMPTED : RN_EXIT_NONFINITE));
          }
        }
      }
    }
    return n;
  }
  /* a failed allocation (RnMalloc below; PETSc's own allocator in Debian's
   * 3.18 raises it from PetscMallocAlign with shifted arguments) */
  if (p == PETSC_ERROR_INITIAL && (n == PETSC_ERR_MEM || (fun && !strcmp(fun, "PetscMallocAlign")))) {
    /* a size the config asks for that this rank cannot hold: one line, not a
     * traceback; the job ends (the other ranks may be inside a collective) */
    int world_rank = 0;
    char need[64] = "", have[64] = "", reason[256];
    const double avail = RnMemoryAvailable();
    MPI_Comm_rank(MPI_COMM_WORLD, &world_rank);
    if (rn_failed_bytes > 0) RnFormatBytes((double)rn_failed_bytes, need, sizeof need);
    if (avail > 0) RnFormatBytes(avail, have, sizeof have);
    if (rn_progress_open) fputc('\n', stdout), fflush(stdout);
    snprintf(reason, sizeof reason, "out of memory: one allocation of %s%s%s%s", need[0] ? need : "more than is free", have[0] ? " with " : "", have, have[0] ? " available on the node" : "");
    fprintf(stderr, "resnode-mpi: error (rank %d): %s (in %s); the configuration asks for more memory than a rank has: lower its sizes (members, depths, batch, width, steps, records) or spread it over more nodes\n",
            world_rank, reason, n == PETSC_ERR_MEM ? (fun ? fun : "?") : (mess && mess[0] ? mess : "?"));
    fflush(stderr);
    if (rn_abort_note) rn_abort_note("failed", reason);
    MPI_Abort(MPI_COMM_WORLD, RN_EXIT_INPUT);
  }
  return PetscTraceBackErrorHandler(comm, line, fun, file, n, p, mess, ctx);
}

PetscErrorCode RnErrorHandlerPush(void)
{
  PetscFunctionBeginUser;
  PetscCall(PetscPushErrorHandler(RnErrorHandler, NULL));
  PetscFunctionReturn(0);
}

int RnExitFromError(PetscErrorCode err)
{
  if (err == 0) return RN_EXIT_OK;
  if (err == RN_ERR_INPUT) return RN_EXIT_INPUT;
  if (err == RN_ERR_PREEMPTED) return RN_EXIT_PREEMPTED;
  if (err == RN_ERR_NONFINITE) return RN_EXIT_NONFINITE;
  /* Anything else may have left other ranks inside a collective. */
  fflush(stdout);
  fflush(stderr);
  MPI_Abort(MPI_COMM_WORLD, RN_EXIT_FAILED);
  return RN_EXIT_FAILED;
}

PetscErrorCode RnAgreeInput(MPI_Comm comm, int local_failed, const char *local_message)
{
  int rank, size, first, candidate;
  char message[1024] = "";

  PetscFunctionBeginUser;
  PetscCallMPI(MPI_Comm_rank(comm, &rank));
  PetscCallMPI(MPI_Comm_size(comm, &size));
  candidate = local_failed ? rank : size;
  PetscCallMPI(MPI_Allreduce(&candidate, &first, 1, MPI_INT, MPI_MIN, comm));
  if (first == size) PetscFunctionReturn(0);
  if (rank == first && local_message) PetscCall(PetscStrncpy(message, local_message, sizeof message));
  PetscCallMPI(MPI_Bcast(message, sizeof message, MPI_CHAR, first, comm));
  RnInputError(comm, "%s", message);
}

PetscErrorCode RnAgreeInputOnHosts(MPI_Comm comm, int local_failed, const char *local_message)
{
  int rank, size, counts[2] = {local_failed ? 1 : 0, 0}, failed, first;
  char message[1024] = "", host[MPI_MAX_PROCESSOR_NAME] = "";

  PetscFunctionBeginUser;
  PetscCallMPI(MPI_Comm_rank(comm, &rank));
  PetscCallMPI(MPI_Comm_size(comm, &size));
  PetscCallMPI(MPI_Allreduce(counts, &failed, 1, MPI_INT, MPI_SUM, comm));
  if (!failed) PetscFunctionReturn(0);
  counts[1] = local_failed ? rank : size;
  PetscCallMPI(MPI_Allreduce(counts + 1, &first, 1, MPI_INT, MPI_MIN, comm));
  if (rank == first) {
    int hlen;
    MPI_Get_processor_name(host, &hlen);
    if (failed < size)
      snprintf(message, sizeof message, "%s (on host %s, rank %d: %d of the %d ranks do not see it, the others do: every node needs the same files at this path)", local_message, host, first, failed, size);
    else PetscCall(PetscStrncpy(message, local_message, sizeof message));
  }
  PetscCall(RnAgreeInput(comm, rank == first, message));
  PetscFunctionReturn(0);
}

double RnWallTime(void)
{
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

void RnIsaDescribe(char *buf, size_t len)
{
#if defined(RESNODE_NATIVE)
  snprintf(buf, len, "native build (-march=native)");
#elif defined(__x86_64__) && defined(__GNUC__) && !defined(__clang__) && __GNUC__ >= 12
  /* the version target_clones picks is the highest level the CPU supports */
  const char *level = __builtin_cpu_supports("x86-64-v4") ? "x86-64-v4" : __builtin_cpu_supports("x86-64-v3") ? "x86-64-v3" : "x86-64 (baseline)";
  snprintf(buf, len, "portable build, loops for %s", level);
#else
  snprintf(buf, len, "portable build");
#endif
}

void RnCpuDescribe(char *buf, size_t len)
{
  char line[4096], model[256] = "unknown CPU";
  int amx = 0, bf16 = 0;
  FILE *f = fopen("/proc/cpuinfo", "r");

  if (f) {
    while (fgets(line, sizeof line, f)) {
      if (!strncmp(line, "model name", 10) && strchr(line, ':')) {
        snprintf(model, sizeof model, "%s", strchr(line, ':') + 2);
        model[strcspn(model, "\n")] = 0;
      }
      if (!strncmp(line, "flags", 5)) {
        amx = strstr(line, " amx_bf16") != NULL;
        bf16 = strstr(line, " avx512_bf16") != NULL;
        break;
      }
    }
    fclose(f);
  }
  snprintf(buf, len, "%s (%s, %s)", model, bf16 ? "avx512_bf16" : "no avx512_bf16", amx ? "AMX" : "no AMX");
}

static int rn_threads = 1;

int RnThreadsPerRank(void) { return rn_threads; }

void RnThreadsSetUp(int world_size)
{
  const char *env = getenv("OMP_NUM_THREADS");
  /* ranks are the parallelism: threads on top of them would oversubscribe
   * the cores; OMP_NUM_THREADS (and OPENBLAS_NUM_THREADS for BLAS) decide when set */
  rn_threads = env && atoi(env) > 0 ? atoi(env) : (world_size > 1 ? 1 : omp_get_max_threads());
  omp_set_num_threads(rn_threads);
  if (!getenv("OPENBLAS_NUM_THREADS") && world_size > 1) openblas_set_num_threads(1);
}
