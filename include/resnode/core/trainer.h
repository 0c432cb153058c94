/* trainer.h: the one training driver every experiment runs under.
 *
 * An experiment registers its state (parameters, optimizer, counters,
 * per-group state) and the tables a resumed run continues, then counts its
 * steps through the trainer:
 *
 *   RnTrainerCreate(ctx, rd, &opt, "node-fit", &tr);
 *   RnTrainerAddState(tr, "theta", theta, bytes, 0);
 *   RnTrainerOpenMetrics(tr, "train.csv", header, &csv);
 *   RnTrainerStart(tr, total, &first);          // restores the newest checkpoint
 *   for (step = first; step < total; step++) {
 *     ... one step ...
 *     RnTrainerStepDone(tr, step + 1, PETSC_FALSE, "iteration %lld", step + 1);
 *   }
 *   RnTrainerFinish(tr);                         // a last checkpoint
 *   RnTrainerDestroy(&tr);
 *
 * The trainer owns the global step count, the checkpoint cadence
 * (checkpoint.every_steps, checkpoint.every_seconds, and on SIGTERM/SIGUSR1),
 * the collective stop decision (a signal ends the run with RN_ERR_PREEMPTED
 * on every rank after the checkpoint, with a message saying how to resume),
 * the continued tables (truncated to the checkpoint, or to their header when
 * a run starts without one), and the ETA of progress lines. What a step is,
 * is the experiment's business: an iteration, a training step within an
 * epoch, a round of ensemble members or folds. */
#ifndef RESNODE_TRAINER_H
#define RESNODE_TRAINER_H

#include "resnode/core/checkpoint.h"

typedef struct RnTrainer_s *RnTrainer;

PetscErrorCode RnTrainerCreate(RnCtx ctx, RnRunDir rd, const RnCheckpointOptions *opt, const char *experiment, RnTrainer *tr);
/* The trainer of one unit of a queue (units.h: RnUnitQueueTrainerCreate):
 * it owns unit_dir, names run_dir in its messages, and stops where poll asks. */
PetscErrorCode RnTrainerSetUnit(RnTrainer tr, RnRunDir unit_dir, const char *run_dir, RnStopPoll poll, void *poll_ctx);
/* State replicated on the ranks (owner_rank 0) or held by one rank. */
PetscErrorCode RnTrainerAddState(RnTrainer tr, const char *name, void *data, size_t bytes, int owner_rank);
/* State each group holds its own copy of (every group's, from its leader):
 * `mine` is this rank's copy, the same size on every rank. */
PetscErrorCode RnTrainerAddGroupState(RnTrainer tr, const char *name, void *mine, size_t bytes);
/* A table a resumed run continues (RnMetricsOpenContinued, registered). */
PetscErrorCode RnTrainerOpenMetrics(RnTrainer tr, const char *name, const char *header, RnMetrics *m);
/* Restores the newest complete checkpoint into the registered state and
 * returns its step in *first (0 without one); total is the run's step count,
 * for the ETA. Call once, after registering. */
PetscErrorCode RnTrainerStart(RnTrainer tr, long long total, long long *first);
/* After `done` steps: a checkpoint when due (final: always). On a signal,
 * every rank returns RN_ERR_PREEMPTED after the checkpoint; the format
 * `what` names the step in the message ("iteration %d", "round %d", ...). */
PetscErrorCode RnTrainerStepDone(RnTrainer tr, long long done, PetscBool final, const char *what, ...) PETSC_ATTRIBUTE_FORMAT(4, 5);
/* Seconds left at the rate of this attempt's steps so far. */
double RnTrainerETA(RnTrainer tr, long long done);
/* A checkpoint of the finished run (a --resume of it has nothing to do). */
PetscErrorCode RnTrainerFinish(RnTrainer tr);
PetscErrorCode RnTrainerDestroy(RnTrainer *tr);

/* --plan: a job measured, not run (app.c). After RnTrainerPlanBegin(steps)
 * every trainer writes no checkpoint, times its steps after a first one
 * (warm-up: first calls, allocations), and RnTrainerPlanDone turns true once
 * `steps` steps are timed: the experiment leaves its loop there (measuring
 * once the work it does once a period, such as an evaluation, and naming it
 * with RnTrainerPlanPeriod), and finishes. Each trainer leaves a record on
 * the rank 0 of its communicator (a unit's: its group's leader). */
#define RN_PLAN_NAME_LEN 64
typedef struct {
  char name[RN_PLAN_NAME_LEN]; /* the unit's name, or the experiment's */
  long long total;             /* the steps of the whole run (unit) */
  long long timed;             /* the steps timed */
  double seconds;              /* their time */
  long long period_steps;      /* steps of an epoch or round (0: no period work) */
  double period_seconds;       /* the work once a period, measured */
  double start;                /* wall time of its first step (RnWallTime) */
} RnPlanRecord;
void RnTrainerPlanBegin(int steps);
PetscBool RnTrainerPlanning(RnTrainer tr);
PetscBool RnTrainerPlanDone(RnTrainer tr);
PetscErrorCode RnTrainerPlanPeriod(RnTrainer tr, long long steps, double seconds);
/* This rank's records; the estimate of one: its whole time. */
int RnTrainerPlanRecords(const RnPlanRecord **records);
double RnPlanRecordSeconds(const RnPlanRecord *record);

#endif
