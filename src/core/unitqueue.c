/* unitqueue.c: units handed out to groups that do not wait for each other (units.h). */
#include "resnode/core/checkpoint.h"
#include "resnode/core/units.h"

#include <errno.h>
#include <string.h>

/* rank 0's window: the next position in the pending list, and the first
 * stop's error code (0: none) */
enum { SLOT_NEXT, SLOT_STOP, SLOTS };
#define RN_MAX_TABLES 8
#define RN_TABLE_HEADER_LEN 512

typedef struct {
  char name[RN_UNIT_NAME_LEN];
  char header[RN_TABLE_HEADER_LEN];
} UnitTable;

struct RnUnitQueue_s {
  RnCtx ctx, view; /* the world, and this rank's group as a world */
  RnRunDir rd;
  int nunits, npending;
  RnUnitInfo *units;
  int *pending; /* the units left, largest remaining work first */
  MPI_Win win;
  long long *slots; /* rank 0: the window's memory */
  UnitTable tables[RN_MAX_TABLES];
  int ntables;
  PetscBool stopped; /* this group has seen the stop */
};

static void UnitDir(RnUnitQueue q, int unit, char *buf, size_t len) { snprintf(buf, len, "%s/units/%s", q->rd->path, q->units[unit].name); }

/* Rank 0: the units not finished, largest remaining work first (ties: unit order). */
static PetscErrorCode ListPending(RnUnitQueue q, double *left, int *finished)
{
  PetscFunctionBeginUser;
  *finished = 0;
  q->npending = 0;
  for (int u = 0; u < q->nunits; u++) {
    char dir[PETSC_MAX_PATH_LEN + RN_UNIT_NAME_LEN + 16];
    long long step;
    UnitDir(q, u, dir, sizeof dir);
    PetscCall(RnCheckpointNewest(dir, &step));
    if (step >= q->units[u].steps) {
      (*finished)++;
      continue;
    }
    left[u] = q->units[u].cost * (double)(q->units[u].steps - PetscMax(step, 0)) / (double)q->units[u].steps;
    q->pending[q->npending++] = u;
  }
  for (int i = 1; i < q->npending; i++)
    for (int j = i; j > 0 && left[q->pending[j]] > left[q->pending[j - 1]]; j--) {
      const int t = q->pending[j];
      q->pending[j] = q->pending[j - 1], q->pending[j - 1] = t;
    }
  PetscFunctionReturn(0);
}

PetscErrorCode RnUnitQueueCreate(RnCtx ctx, RnRunDir rd, int nunits, const RnUnitInfo *units, RnUnitQueue *queue)
{
  RnUnitQueue q;
  int finished = 0;

  PetscFunctionBeginUser;
  PetscCall(PetscNew(&q));
  q->ctx = ctx, q->rd = rd, q->nunits = nunits;
  PetscCall(RnCtxCreateGroupView(ctx, &q->view));
  PetscCall(PetscMalloc2(nunits, &q->units, nunits, &q->pending));
  PetscCall(PetscArraycpy(q->units, units, nunits));
  if (ctx->world_rank == 0) {
    double *left;
    PetscCall(PetscMalloc1(nunits, &left));
    PetscCall(ListPending(q, left, &finished));
    PetscCall(PetscFree(left));
  }
  PetscCallMPI(MPI_Bcast(&q->npending, 1, MPI_INT, 0, ctx->world));
  PetscCallMPI(MPI_Bcast(q->pending, q->npending, MPI_INT, 0, ctx->world));
  PetscCallMPI(MPI_Win_allocate(ctx->world_rank == 0 ? SLOTS * (MPI_Aint)sizeof(long long) : 0, sizeof(long long), MPI_INFO_NULL, ctx->world, &q->slots, &q->win));
  if (ctx->world_rank == 0) {
    PetscCallMPI(MPI_Win_lock(MPI_LOCK_EXCLUSIVE, 0, 0, q->win));
    for (int i = 0; i < SLOTS; i++) q->slots[i] = 0;
    PetscCallMPI(MPI_Win_unlock(0, q->win));
  }
  PetscCallMPI(MPI_Barrier(ctx->world));
  RnGroupErrorsCollected(PETSC_TRUE);
  if (finished) PetscCall(RnLog(ctx, "units: %d of %d finished already (their checkpoints in %s/units)\n", finished, nunits, rd->path));
  if (q->npending) {
    char order[1024] = "";
    for (int i = 0; i < q->npending && strlen(order) + RN_UNIT_NAME_LEN + 8 < sizeof order; i++)
      snprintf(order + strlen(order), sizeof order - strlen(order), "%s%s", i ? ", " : "", q->units[q->pending[i]].name);
    PetscCall(RnLog(ctx, "units: %d to train on %d group(s), largest first, each group taking the next when free: %s\n", q->npending, ctx->group_count, order));
  }
  *queue = q;
  PetscFunctionReturn(0);
}

PetscErrorCode RnUnitQueueAddTable(RnUnitQueue q, const char *name, const char *header)
{
  PetscFunctionBeginUser;
  PetscCheck(q->ntables < RN_MAX_TABLES, PETSC_COMM_SELF, PETSC_ERR_SUP, "too many unit tables");
  PetscCall(PetscStrncpy(q->tables[q->ntables].name, name, RN_UNIT_NAME_LEN));
  PetscCall(PetscStrncpy(q->tables[q->ntables].header, header, RN_TABLE_HEADER_LEN));
  q->ntables++;
  PetscFunctionReturn(0);
}

RnCtx RnUnitQueueGroupView(RnUnitQueue q) { return q->view; }

/* The leader's look at the stop slot. */
static PetscErrorCode ReadStop(RnUnitQueue q, long long *code)
{
  PetscFunctionBeginUser;
  PetscCallMPI(MPI_Win_lock(MPI_LOCK_SHARED, 0, 0, q->win));
  PetscCallMPI(MPI_Fetch_and_op(NULL, code, MPI_LONG_LONG, 0, SLOT_STOP, MPI_NO_OP, q->win));
  PetscCallMPI(MPI_Win_unlock(0, q->win));
  PetscFunctionReturn(0);
}

/* A stop's code in the window, ranked: an error (input, non-finite) outranks
 * a signal's stop, so MPI_MAX keeps the cause to report. (Fetch-and-op, not
 * compare-and-swap: Open MPI 4.1's osc/rdma over shared memory crashes on
 * the latter.) */
#define STOP_RANK_SHIFT 16
#define STOP_CODE_MASK ((1LL << STOP_RANK_SHIFT) - 1)
static PetscErrorCode RaiseStop(RnUnitQueue q, long long code)
{
  const long long ranked = ((long long)(code == RN_ERR_PREEMPTED ? 1 : 2) << STOP_RANK_SHIFT) | code;
  long long was;

  PetscFunctionBeginUser;
  PetscCallMPI(MPI_Win_lock(MPI_LOCK_SHARED, 0, 0, q->win));
  PetscCallMPI(MPI_Fetch_and_op(&ranked, &was, MPI_LONG_LONG, 0, SLOT_STOP, MPI_MAX, q->win));
  PetscCallMPI(MPI_Win_unlock(0, q->win));
  PetscFunctionReturn(0);
}

/* The trainers' stop poll: a signal here is posted for the other groups;
 * a stop posted by another group stops this one. Only the leader looks;
 * the checkpointer's Allreduce over the group tells the others. */
static PetscErrorCode PollStop(void *poll_ctx, PetscBool *stop)
{
  RnUnitQueue q = poll_ctx;
  long long code = 0;

  PetscFunctionBeginUser;
  *stop = PETSC_FALSE;
  if (q->ctx->group_rank != 0) PetscFunctionReturn(0);
  PetscCall(ReadStop(q, &code));
  *stop = code ? PETSC_TRUE : PETSC_FALSE;
  PetscFunctionReturn(0);
}

PetscErrorCode RnUnitQueueNext(RnUnitQueue q, int *unit)
{
  long long taken = -1, code = 0;

  PetscFunctionBeginUser;
  if (q->ctx->group_rank == 0) {
    const long long one = 1;
    /* a signal between units is a stop like any other */
    if (RnSignalPending()) PetscCall(RaiseStop(q, RN_ERR_PREEMPTED));
    PetscCall(ReadStop(q, &code));
    if (!code) {
      PetscCallMPI(MPI_Win_lock(MPI_LOCK_SHARED, 0, 0, q->win));
      PetscCallMPI(MPI_Fetch_and_op(&one, &taken, MPI_LONG_LONG, 0, SLOT_NEXT, MPI_SUM, q->win));
      PetscCallMPI(MPI_Win_unlock(0, q->win));
    }
  }
  PetscCallMPI(MPI_Bcast(&taken, 1, MPI_LONG_LONG, 0, q->ctx->group));
  *unit = taken >= 0 && taken < q->npending ? q->pending[taken] : -1;
  PetscFunctionReturn(0);
}

PetscErrorCode RnUnitQueueTrainerCreate(RnUnitQueue q, int unit, const RnCheckpointOptions *opt, const char *experiment, RnTrainer *tr)
{
  RnRunDir unit_dir;

  PetscFunctionBeginUser;
  PetscCall(RnRunDirCreateUnit(q->rd, q->view, q->units[unit].name, &unit_dir));
  PetscCall(RnTrainerCreate(q->view, unit_dir, opt, experiment, tr));
  PetscCall(RnTrainerSetUnit(*tr, unit_dir, q->rd->path, PollStop, q));
  PetscFunctionReturn(0);
}

/* Rank 0: RUN_DIR/<table>, the header and every unit's rows in unit order. */
static PetscErrorCode MergeTable(RnUnitQueue q, const UnitTable *t)
{
  char *text, path[PETSC_MAX_PATH_LEN + RN_UNIT_NAME_LEN + 16];
  size_t len, cap = RN_TABLE_HEADER_LEN + 2;

  PetscFunctionBeginUser;
  PetscCall(PetscMalloc1(cap, &text));
  len = (size_t)snprintf(text, cap, "%s\n", t->header);
  for (int u = 0; u < q->nunits; u++) {
    FILE *fp;
    long size;
    char *rows;
    UnitDir(q, u, path, sizeof path);
    snprintf(path + strlen(path), sizeof path - strlen(path), "/%s", t->name);
    if (!(fp = fopen(path, "rb"))) continue; /* not started */
    fseek(fp, 0, SEEK_END);
    size = ftell(fp);
    fseek(fp, 0, SEEK_SET);
    PetscCall(PetscMalloc1(size + 1, &rows));
    size = (long)fread(rows, 1, (size_t)size, fp);
    fclose(fp);
    rows[size] = 0;
    {
      /* its rows: everything after its header line */
      const char *body = strchr(rows, '\n');
      const size_t n = body ? strlen(body + 1) : 0;
      if (len + n + 1 > cap) {
        char *bigger;
        cap = 2 * (len + n + 1);
        PetscCall(PetscMalloc1(cap, &bigger));
        PetscCall(PetscMemcpy(bigger, text, len));
        PetscCall(PetscFree(text));
        text = bigger;
      }
      if (n) PetscCall(PetscMemcpy(text + len, body + 1, n));
      len += n;
    }
    PetscCall(PetscFree(rows));
  }
  PetscCall(RnRunDirFile(q->rd, t->name, path, sizeof path));
  PetscCall(RnWriteFileAtomic(path, text, len));
  PetscCall(PetscFree(text));
  PetscFunctionReturn(0);
}

static PetscBool Collective(PetscErrorCode err) { return err == RN_ERR_INPUT || err == RN_ERR_PREEMPTED || err == RN_ERR_NONFINITE ? PETSC_TRUE : PETSC_FALSE; }

PetscErrorCode RnUnitQueueFinish(RnUnitQueue q, PetscErrorCode err)
{
  RnCtx ctx = q->ctx;
  long long cause = 0;
  int candidate, first;
  char message[1024] = "";

  PetscFunctionBeginUser;
  RnGroupErrorsCollected(PETSC_FALSE);
  if (err && !Collective(err)) PetscFunctionReturn(err);
  /* the other groups stop at their next step */
  if (err && ctx->group_rank == 0) PetscCall(RaiseStop(q, err));
  PetscCallMPI(MPI_Barrier(ctx->world));
  if (ctx->world_rank == 0) {
    PetscCallMPI(MPI_Win_lock(MPI_LOCK_EXCLUSIVE, 0, 0, q->win));
    cause = q->slots[SLOT_STOP] & STOP_CODE_MASK;
    PetscCallMPI(MPI_Win_unlock(0, q->win));
  }
  PetscCallMPI(MPI_Bcast(&cause, 1, MPI_LONG_LONG, 0, ctx->world));
  /* the message of the lowest rank that failed with the first cause */
  candidate = cause && err == (PetscErrorCode)cause ? ctx->world_rank : ctx->world_size;
  PetscCallMPI(MPI_Allreduce(&candidate, &first, 1, MPI_INT, MPI_MIN, ctx->world));
  if (cause && first < ctx->world_size) {
    if (ctx->world_rank == first) PetscCall(PetscStrncpy(message, RnLastErrorMessage(), sizeof message));
    PetscCallMPI(MPI_Bcast(message, sizeof message, MPI_CHAR, first, ctx->world));
  } else if (cause) PetscCall(PetscSNPrintf(message, sizeof message, "signal received between units: every unit's state is checkpointed; resume with --resume %s", q->rd->path));
  /* the run's tables, whatever the outcome: no finished row is lost */
  if (ctx->world_rank == 0)
    for (int i = 0; i < q->ntables; i++) PetscCall(MergeTable(q, &q->tables[i]));
  PetscCallMPI(MPI_Win_free(&q->win));
  PetscCheck(!cause, ctx->world, (PetscErrorCode)cause, "%s", message);
  PetscFunctionReturn(0);
}

PetscErrorCode RnUnitQueueDestroy(RnUnitQueue *q)
{
  PetscFunctionBeginUser;
  if (!q || !*q) PetscFunctionReturn(0);
  if ((*q)->win != MPI_WIN_NULL) PetscCallMPI(MPI_Win_free(&(*q)->win));
  PetscCall(RnCtxDestroyGroupView(&(*q)->view));
  PetscCall(PetscFree2((*q)->units, (*q)->pending));
  PetscCall(PetscFree(*q));
  PetscFunctionReturn(0);
}
