/* trainer.c: the training driver (see trainer.h). */
#include "resnode/core/trainer.h"

#include <stdarg.h>
#include <stdio.h>

struct RnTrainer_s {
  RnCtx ctx;
  RnRunDir rd;
  RnCheckpointer ck;
  char experiment[32];
  long long first, total, last_done, last_final; /* last_final: the step of the last forced checkpoint */
  double start; /* wall time of this attempt's first step */
  PetscBool started;
  RnRunDir owned;                     /* a unit's directory, destroyed with the trainer */
  char resume_dir[PETSC_MAX_PATH_LEN]; /* what --resume takes: the run's directory */
};

PetscErrorCode RnTrainerCreate(RnCtx ctx, RnRunDir rd, const RnCheckpointOptions *opt, const char *experiment, RnTrainer *tr)
{
  RnTrainer t;

  PetscFunctionBeginUser;
  PetscCall(PetscNew(&t));
  t->ctx = ctx, t->rd = rd;
  PetscCall(PetscStrncpy(t->experiment, experiment, sizeof t->experiment));
  PetscCall(RnCheckpointerCreate(ctx, rd, opt, &t->ck));
  PetscCall(PetscStrncpy(t->resume_dir, rd->path, sizeof t->resume_dir));
  *tr = t;
  PetscFunctionReturn(0);
}

PetscErrorCode RnTrainerSetUnit(RnTrainer tr, RnRunDir unit_dir, const char *run_dir, RnStopPoll poll, void *poll_ctx)
{
  PetscFunctionBeginUser;
  tr->owned = unit_dir;
  PetscCall(PetscStrncpy(tr->resume_dir, run_dir, sizeof tr->resume_dir));
  PetscCall(RnCheckpointerSetStopPoll(tr->ck, poll, poll_ctx));
  PetscFunctionReturn(0);
}

PetscErrorCode RnTrainerAddState(RnTrainer tr, const char *name, void *data, size_t bytes, int owner_rank)
{
  PetscFunctionBeginUser;
  PetscCheck(!tr->started, PETSC_COMM_SELF, PETSC_ERR_ARG_WRONGSTATE, "state '%s' registered after RnTrainerStart", name);
  PetscCall(RnCheckpointerAddField(tr->ck, name, data, bytes, owner_rank));
  PetscFunctionReturn(0);
}

PetscErrorCode RnTrainerAddGroupState(RnTrainer tr, const char *name, void *mine, size_t bytes)
{
  RnCtx ctx = tr->ctx;

  PetscFunctionBeginUser;
  for (int g = 0; g < ctx->group_count; g++) {
    char field[48];
    PetscCall(PetscSNPrintf(field, sizeof field, "%s.%d", name, g));
    PetscCall(RnTrainerAddState(tr, field, g == ctx->group_id ? mine : NULL, bytes, g * ctx->group_size));
  }
  PetscFunctionReturn(0);
}

PetscErrorCode RnTrainerOpenMetrics(RnTrainer tr, const char *name, const char *header, RnMetrics *m)
{
  PetscFunctionBeginUser;
  PetscCheck(!tr->started, PETSC_COMM_SELF, PETSC_ERR_ARG_WRONGSTATE, "table '%s' opened after RnTrainerStart", name);
  PetscCall(RnMetricsOpenContinued(tr->rd, name, header, m));
  PetscCall(RnCheckpointerAddMetrics(tr->ck, name, *m));
  PetscFunctionReturn(0);
}

PetscErrorCode RnTrainerStart(RnTrainer tr, long long total, long long *first)
{
  long long resumed;

  PetscFunctionBeginUser;
  PetscCheck(!tr->started, PETSC_COMM_SELF, PETSC_ERR_ARG_WRONGSTATE, "RnTrainerStart called twice");
  PetscCall(RnCheckpointerRestore(tr->ck, &resumed));
  if (resumed < 0 && tr->rd->resume) PetscCall(RnLog(tr->ctx, "%s: no checkpoint in %s/checkpoints: starting from step 0\n", tr->experiment, tr->rd->path));
  /* a checkpoint beyond the configured end: the config was shortened */
  if (resumed > total)
    RnInputError(tr->ctx->world, "%s: the checkpoint in %s is at step %lld, beyond the %lld steps of this configuration (was a step count such as train.iterations or train.epochs lowered?); raise it again, or start a fresh run directory",
                 tr->experiment, tr->rd->path, resumed, total);
  tr->started = PETSC_TRUE;
  tr->first = tr->last_done = resumed > 0 ? resumed : 0;
  tr->last_final = -1;
  tr->total = total;
  tr->start = RnWallTime();
  *first = tr->first;
  PetscFunctionReturn(0);
}

PetscErrorCode RnTrainerStepDone(RnTrainer tr, long long done, PetscBool final, const char *what, ...)
{
  PetscBool stop;

  PetscFunctionBeginUser;
  PetscCheck(tr->started, PETSC_COMM_SELF, PETSC_ERR_ARG_WRONGSTATE, "RnTrainerStepDone before RnTrainerStart");
  tr->last_done = done;
  if (final) tr->last_final = done;
  PetscCall(RnCheckpointerStep(tr->ck, done, final, &stop));
  if (stop) {
    char where[256];
    va_list ap;
    va_start(ap, what);
    vsnprintf(where, sizeof where, what, ap);
    va_end(ap);
    PetscCall(RnProgressEnd(tr->ctx));
    /* a signal here, or a stop asked for by another group (its signal or error) */
    RnCollectiveError(tr->ctx->world, RN_ERR_PREEMPTED, "%s: checkpoint of %s written; resume with --resume %s", RnSignalPending() ? "signal received" : "stopped with the other groups", where,
                      tr->resume_dir);
  }
  PetscFunctionReturn(0);
}

double RnTrainerETA(RnTrainer tr, long long done)
{
  const double elapsed = RnWallTime() - tr->start;
  if (done <= tr->first) return 0.0;
  return elapsed / (double)(done - tr->first) * (double)PetscMax(tr->total - done, 0);
}

PetscErrorCode RnTrainerFinish(RnTrainer tr)
{
  PetscFunctionBeginUser;
  PetscCall(RnProgressEnd(tr->ctx));
  if (tr->last_final != tr->last_done || tr->last_done == 0) PetscCall(RnCheckpointerWrite(tr->ck, tr->last_done));
  PetscFunctionReturn(0);
}

PetscErrorCode RnTrainerDestroy(RnTrainer *tr)
{
  PetscFunctionBeginUser;
  if (!*tr) PetscFunctionReturn(0);
  PetscCall(RnCheckpointerDestroy(&(*tr)->ck));
  PetscCall(RnRunDirDestroy(&(*tr)->owned));
  PetscCall(PetscFree(*tr));
  PetscFunctionReturn(0);
}
