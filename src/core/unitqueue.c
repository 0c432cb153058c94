/* unitqueue.c: units handed out to groups that do not wait for each other (units.h). */
#include "resnode/core/checkpoint.h"
#include "resnode/core/profile.h"
#include "resnode/core/units.h"

#include <errno.h>
#include <string.h>

/* Messages on the queue's own communicator (a duplicate of the world):
 * a leader asks rank 0 for its next unit (a round trip, once a unit) and
 * says when it is done; a stop goes from its group's leader to every other
 * leader, who look for it after each step (MPI_Iprobe: no round trip). One-
 * sided MPI would do the same with less code, but Open MPI 4.1 has no
 * one-sided component for TCP between nodes (MPI_Win_allocate fails). */
enum { TAG_REQUEST = 1, TAG_REPLY, TAG_STOP };
enum { REQUEST_NEXT, REQUEST_DONE };
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
  MPI_Comm comm;           /* the queue's messages */
  int next;                /* rank 0: the next position in the pending list */
  int finished;            /* rank 0: units finished before this attempt */
  int done_leaders;        /* rank 0: leaders of other groups that are done */
  long long stop;          /* the highest ranked stop this rank knows of (0: none) */
  int stops_received;
  int *stops_sent;         /* leaders: stop messages sent, by world rank */
  MPI_Request *sends;      /* ... their requests and values (two ranks of stop: at most 2 a leader) */
  long long *sent;
  int nsends;
  UnitTable tables[RN_MAX_TABLES];
  int ntables;
};

/* Rank 0: the heartbeat's unit count (finished before, and handed out since). */
static void NoteUnits(RnUnitQueue q) { RnRunDirNoteUnits(q->finished + q->next, q->nunits); }

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
  q->ctx = ctx, q->rd = rd, q->nunits = nunits, q->comm = MPI_COMM_NULL;
  PetscCall(RnCtxCreateGroupView(ctx, &q->view));
  PetscCall(PetscMalloc2(nunits, &q->units, nunits, &q->pending));
  PetscCall(PetscArraycpy(q->units, units, nunits));
  if (ctx->world_rank == 0) {
    double *left;
    PetscCall(PetscMalloc1(nunits, &left));
    PetscCall(ListPending(q, left, &finished));
    PetscCall(PetscFree(left));
    q->finished = finished;
    NoteUnits(q);
  }
  PetscCallMPI(MPI_Bcast(&q->npending, 1, MPI_INT, 0, ctx->world));
  PetscCallMPI(MPI_Bcast(q->pending, q->npending, MPI_INT, 0, ctx->world));
  PetscCallMPI(MPI_Comm_dup(ctx->world, &q->comm));
  PetscCall(PetscCalloc3(ctx->world_size, &q->stops_sent, 2 * ctx->world_size, &q->sends, 2 * ctx->world_size, &q->sent));
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

/* A stop's code, ranked: an error (input, non-finite) outranks a signal's
 * stop, so the highest ranked one is the cause to report. */
#define STOP_RANK_SHIFT 16
#define STOP_CODE_MASK ((1LL << STOP_RANK_SHIFT) - 1)
static long long RankedStop(long long code) { return ((long long)(code == RN_ERR_PREEMPTED ? 1 : 2) << STOP_RANK_SHIFT) | code; }

/* A leader posts a stop to every other group's leader. */
static PetscErrorCode RaiseStop(RnUnitQueue q, long long code)
{
  RnCtx ctx = q->ctx;

  PetscFunctionBeginUser;
  if (q->stop >= RankedStop(code)) PetscFunctionReturn(0);
  q->stop = RankedStop(code);
  for (int g = 0; g < ctx->group_count; g++) {
    const int leader = g * ctx->group_size;
    if (leader == ctx->world_rank) continue;
    q->sent[q->nsends] = q->stop;
    PetscCallMPI(MPI_Isend(&q->sent[q->nsends], 1, MPI_LONG_LONG, leader, TAG_STOP, q->comm, &q->sends[q->nsends]));
    q->nsends++;
    q->stops_sent[leader]++;
  }
  PetscFunctionReturn(0);
}

/* Stops that reached this leader (without waiting). */
static PetscErrorCode ReceiveStops(RnUnitQueue q)
{
  int flag = 1;

  PetscFunctionBeginUser;
  while (flag) {
    MPI_Status st;
    PetscCallMPI(MPI_Iprobe(MPI_ANY_SOURCE, TAG_STOP, q->comm, &flag, &st));
    if (flag) {
      long long code;
      PetscCallMPI(MPI_Recv(&code, 1, MPI_LONG_LONG, st.MPI_SOURCE, TAG_STOP, q->comm, MPI_STATUS_IGNORE));
      q->stop = PetscMax(q->stop, code);
      q->stops_received++;
    }
  }
  PetscFunctionReturn(0);
}

/* Rank 0 answers a leader's request. */
static PetscErrorCode Answer(RnUnitQueue q, int source, int request)
{
  PetscFunctionBeginUser;
  if (request == REQUEST_DONE) q->done_leaders++;
  else {
    const int taken = q->stop || q->next >= q->npending ? -1 : q->next++;
    NoteUnits(q);
    PetscCallMPI(MPI_Send(&taken, 1, MPI_INT, source, TAG_REPLY, q->comm));
  }
  PetscFunctionReturn(0);
}

/* Rank 0 answers the requests waiting (without waiting for more). */
static PetscErrorCode Serve(RnUnitQueue q)
{
  int flag = 1;

  PetscFunctionBeginUser;
  if (q->ctx->world_rank != 0) PetscFunctionReturn(0);
  while (flag) {
    MPI_Status st;
    int request;
    PetscCallMPI(MPI_Iprobe(MPI_ANY_SOURCE, TAG_REQUEST, q->comm, &flag, &st));
    if (!flag) break;
    PetscCallMPI(MPI_Recv(&request, 1, MPI_INT, st.MPI_SOURCE, TAG_REQUEST, q->comm, MPI_STATUS_IGNORE));
    PetscCall(Answer(q, st.MPI_SOURCE, request));
  }
  PetscFunctionReturn(0);
}

/* The trainers' stop poll: a stop posted by another group stops this one
 * (a signal here is the trainer's own). Only the leader looks; the
 * checkpointer's Allreduce over the group tells the others. Rank 0 also
 * answers the other leaders here, once a step. */
static PetscErrorCode PollStop(void *poll_ctx, PetscBool *stop)
{
  RnUnitQueue q = poll_ctx;

  PetscFunctionBeginUser;
  *stop = PETSC_FALSE;
  if (q->ctx->group_rank != 0) PetscFunctionReturn(0);
  PetscCall(Serve(q));
  PetscCall(ReceiveStops(q));
  if (RnSignalPending()) PetscCall(RaiseStop(q, RN_ERR_PREEMPTED));
  *stop = q->stop ? PETSC_TRUE : PETSC_FALSE;
  PetscFunctionReturn(0);
}

PetscErrorCode RnUnitQueueNext(RnUnitQueue q, int *unit)
{
  int taken = -1;

  PetscFunctionBeginUser;
  PetscCall(RnEventBegin(RN_EV_QUEUE_WAIT));
  if (q->ctx->group_rank == 0) {
    const int request = REQUEST_NEXT;
    /* a signal between units is a stop like any other */
    if (RnSignalPending()) PetscCall(RaiseStop(q, RN_ERR_PREEMPTED));
    PetscCall(ReceiveStops(q));
    if (q->ctx->world_rank == 0) {
      PetscCall(Serve(q));
      if (!q->stop && q->next < q->npending) taken = q->next++;
      NoteUnits(q);
    } else if (!q->stop) {
      PetscCallMPI(MPI_Send(&request, 1, MPI_INT, 0, TAG_REQUEST, q->comm));
      PetscCallMPI(MPI_Recv(&taken, 1, MPI_INT, 0, TAG_REPLY, q->comm, MPI_STATUS_IGNORE));
    }
  }
  PetscCallMPI(MPI_Bcast(&taken, 1, MPI_INT, 0, q->ctx->group));
  PetscCall(RnEventEnd(RN_EV_QUEUE_WAIT));
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
  int candidate, first, *expected;
  char message[1024] = "";

  PetscFunctionBeginUser;
  RnGroupErrorsCollected(PETSC_FALSE);
  if (err && !Collective(err)) PetscFunctionReturn(err);
  /* the wait for the other groups to finish their units */
  PetscCall(RnEventBegin(RN_EV_QUEUE_WAIT));
  if (ctx->group_rank == 0) {
    const int request = REQUEST_DONE;
    /* the other groups stop at their next step */
    if (err) PetscCall(RaiseStop(q, err));
    if (ctx->world_rank != 0) PetscCallMPI(MPI_Send(&request, 1, MPI_INT, 0, TAG_REQUEST, q->comm));
    else
      /* rank 0 answers the others until every group is done */
      while (q->done_leaders < ctx->group_count - 1) {
        MPI_Status st;
        int req;
        PetscCallMPI(MPI_Recv(&req, 1, MPI_INT, MPI_ANY_SOURCE, TAG_REQUEST, q->comm, &st));
        PetscCall(Answer(q, st.MPI_SOURCE, req));
      }
  }
  /* every stop message sent is received: the counts tell each leader how many more */
  PetscCall(PetscMalloc1(ctx->world_size, &expected));
  PetscCallMPI(MPI_Allreduce(q->stops_sent, expected, ctx->world_size, MPI_INT, MPI_SUM, ctx->world));
  for (int i = q->stops_received; i < expected[ctx->world_rank]; i++) {
    long long code;
    PetscCallMPI(MPI_Recv(&code, 1, MPI_LONG_LONG, MPI_ANY_SOURCE, TAG_STOP, q->comm, MPI_STATUS_IGNORE));
    q->stop = PetscMax(q->stop, code);
  }
  PetscCall(PetscFree(expected));
  PetscCallMPI(MPI_Waitall(q->nsends, q->sends, MPI_STATUSES_IGNORE));
  q->nsends = 0;
  PetscCallMPI(MPI_Allreduce(&q->stop, &cause, 1, MPI_LONG_LONG, MPI_MAX, ctx->world));
  PetscCall(RnEventEnd(RN_EV_QUEUE_WAIT));
  cause &= STOP_CODE_MASK;
  /* the message of the lowest rank that failed with the cause */
  candidate = cause && err == (PetscErrorCode)cause ? ctx->world_rank : ctx->world_size;
  PetscCallMPI(MPI_Allreduce(&candidate, &first, 1, MPI_INT, MPI_MIN, ctx->world));
  if (cause && first < ctx->world_size) {
    if (ctx->world_rank == first) PetscCall(PetscStrncpy(message, RnLastErrorMessage(), sizeof message));
    PetscCallMPI(MPI_Bcast(message, sizeof message, MPI_CHAR, first, ctx->world));
  } else if (cause) PetscCall(PetscSNPrintf(message, sizeof message, "signal received between units: every unit's state is checkpointed; resume with --resume %s", q->rd->path));
  /* the run's tables, whatever the outcome: no finished row is lost */
  if (ctx->world_rank == 0)
    for (int i = 0; i < q->ntables; i++) PetscCall(MergeTable(q, &q->tables[i]));
  PetscCallMPI(MPI_Comm_free(&q->comm));
  PetscCheck(!cause, ctx->world, (PetscErrorCode)cause, "%s", message);
  PetscFunctionReturn(0);
}

PetscErrorCode RnUnitQueueRun(RnUnitQueue q, PetscErrorCode (*train)(void *ctx, int unit), void *ctx)
{
  PetscErrorCode err = 0;

  PetscFunctionBeginUser;
  /* each group at its own pace: a unit's error or stop ends this group's
   * loop, and Finish ends the others within a step of theirs */
  for (;;) {
    int unit;
    PetscCall(RnUnitQueueNext(q, &unit));
    if (unit < 0) break;
    if ((err = train(ctx, unit))) break;
  }
  PetscCall(RnUnitQueueFinish(q, err));
  PetscFunctionReturn(0);
}

PetscErrorCode RnUnitQueueDestroy(RnUnitQueue *q)
{
  PetscFunctionBeginUser;
  if (!q || !*q) PetscFunctionReturn(0);
  if ((*q)->comm != MPI_COMM_NULL) PetscCallMPI(MPI_Comm_free(&(*q)->comm));
  PetscCall(PetscFree3((*q)->stops_sent, (*q)->sends, (*q)->sent));
  PetscCall(RnCtxDestroyGroupView(&(*q)->view));
  PetscCall(PetscFree2((*q)->units, (*q)->pending));
  PetscCall(PetscFree(*q));
  PetscFunctionReturn(0);
}
