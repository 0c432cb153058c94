/* trainer.c: the training driver (see trainer.h). */
#include "resnode/core/trainer.h"
#include "resnode/core/profile.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#define RN_PLAN_MAX_RECORDS 4096

/* --plan (trainer.h): one plan a process */
static int rn_plan_steps;
static RnPlanRecord rn_plan_records[RN_PLAN_MAX_RECORDS];
static int rn_plan_nrecords;

struct RnTrainer_s {
  RnCtx ctx;
  RnRunDir rd;
  RnCheckpointer ck;
  char experiment[32];
  long long first, total, last_done, last_final; /* last_final: the step of the last forced checkpoint */
  double start; /* wall time of this attempt's first step */
  PetscBool started;
  RnRunDir owned;                     /* a unit's directory, destroyed with the trainer */
  PetscBool planning, plan_warm;      /* --plan: measuring; past the warm-up step */
  double plan_mark;                   /* --plan: the time of the last step */
  RnPlanRecord plan;
  char resume_dir[PETSC_MAX_PATH_LEN]; /* what --resume takes: the run's directory */
  RnProfileMark profile_start;         /* a unit's profile: from its first step */
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
  PetscCall(RnCheckpointerRestore(tr->ck, total, tr->experiment, &resumed));
  if (resumed < 0 && tr->rd->resume) PetscCall(RnLog(tr->ctx, "%s: no checkpoint in %s/checkpoints: starting from step 0\n", tr->experiment, tr->rd->path));
  RnRunDirMarkStarted();
  tr->started = PETSC_TRUE;
  tr->first = tr->last_done = resumed > 0 ? resumed : 0;
  tr->last_final = -1;
  tr->total = total;
  tr->start = RnWallTime();
  RnRunDirNoteSteps(tr->first, total);
  RnProfileMarkNow(&tr->profile_start);
  PetscCall(RnProfileSetStage(RN_STAGE_TRAINING));
  *first = tr->first;
  if (rn_plan_steps > 0) {
    tr->planning = PETSC_TRUE;
    tr->plan_mark = tr->start;
    PetscCall(PetscStrncpy(tr->plan.name, tr->experiment, sizeof tr->plan.name));
    if (tr->owned) {
      const char *slash = strrchr(tr->owned->path, '/');
      PetscCall(PetscStrncpy(tr->plan.name, slash ? slash + 1 : tr->owned->path, sizeof tr->plan.name));
    }
    tr->plan.total = total - tr->first;
    tr->plan.start = tr->start;
  }
  PetscFunctionReturn(0);
}

PetscErrorCode RnTrainerStepDone(RnTrainer tr, long long done, PetscBool final, const char *what, ...)
{
  PetscBool stop;

  PetscFunctionBeginUser;
  PetscCheck(tr->started, PETSC_COMM_SELF, PETSC_ERR_ARG_WRONGSTATE, "RnTrainerStepDone before RnTrainerStart");
  if (tr->planning) {
    /* measured, not run: no checkpoint */
    const double now = RnWallTime();
    if (done > tr->last_done && tr->plan_warm) tr->plan.seconds += now - tr->plan_mark, tr->plan.timed += done - tr->last_done;
    if (done > tr->last_done) tr->plan_warm = PETSC_TRUE;
    tr->plan_mark = now;
    tr->last_done = done;
    PetscFunctionReturn(0);
  }
  tr->last_done = done;
  if (final) tr->last_final = done;
  RnRunDirNoteSteps(done, tr->total);
  RnTestStopPoint("step");
  if (done == tr->total) RnTestStopPoint("last_step");
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

/* A unit's profile.json: where its time went on its group's ranks. */
static PetscErrorCode UnitProfile(RnTrainer tr)
{
  char json[8192], path[PETSC_MAX_PATH_LEN + 32];

  PetscFunctionBeginUser;
  PetscCall(RnProfileJSON(tr->ctx->world, &tr->profile_start, json, sizeof json));
  if (tr->ctx->world_rank == 0) {
    size_t n = strlen(json);
    json[n] = '\n';
    PetscCall(RnRunDirFile(tr->owned, "profile.json", path, sizeof path));
    PetscCall(RnWriteFileAtomic(path, json, n + 1));
  }
  PetscFunctionReturn(0);
}

PetscErrorCode RnTrainerFinish(RnTrainer tr)
{
  PetscFunctionBeginUser;
  PetscCall(RnProgressEnd(tr->ctx));
  PetscCall(RnProfileSetStage(RN_STAGE_OUTPUT));
  if (tr->planning) {
    if (tr->ctx->world_rank == 0 && rn_plan_nrecords < RN_PLAN_MAX_RECORDS) rn_plan_records[rn_plan_nrecords++] = tr->plan;
    PetscFunctionReturn(0);
  }
  if (tr->last_final != tr->last_done || tr->last_done == 0) PetscCall(RnCheckpointerWrite(tr->ck, tr->last_done));
  if (tr->owned) PetscCall(UnitProfile(tr));
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

void RnTrainerPlanBegin(int steps)
{
  rn_plan_steps = steps;
  rn_plan_nrecords = 0;
}

PetscBool RnTrainerPlanning(RnTrainer tr) { return tr->planning; }
PetscBool RnTrainerPlanDone(RnTrainer tr) { return tr->planning && tr->plan.timed >= rn_plan_steps ? PETSC_TRUE : PETSC_FALSE; }

PetscErrorCode RnTrainerPlanPeriod(RnTrainer tr, long long steps, double seconds)
{
  PetscFunctionBeginUser;
  tr->plan.period_steps = steps, tr->plan.period_seconds = seconds;
  PetscFunctionReturn(0);
}

int RnTrainerPlanRecords(const RnPlanRecord **records)
{
  *records = rn_plan_records;
  return rn_plan_nrecords;
}

double RnPlanRecordSeconds(const RnPlanRecord *r)
{
  const double per_step = r->timed > 0 ? r->seconds / (double)r->timed : 0.0;
  const double periods = r->period_steps > 0 ? (double)r->total / (double)r->period_steps : 0.0;
  return per_step * (double)r->total + periods * r->period_seconds;
}
