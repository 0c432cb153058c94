/* units.h: units of work over groups of ranks.
 *
 * A run trains a list of units (a model on a fold, a member at a depth). The
 * world is split into groups of consecutive ranks (core.h: RnCtxSetGroups);
 * a group trains its units data-parallel, each rank taking a block of the
 * batch, and rank 0 of the world gathers the rows its group leaders report. */
#ifndef RESNODE_UNITS_H
#define RESNODE_UNITS_H

#include "resnode/core/config.h"
#include "resnode/core/core.h"
#include "resnode/core/trainer.h"

/* The block [lo, hi) of n items that part `part` of `parts` holds: blocks of
 * n * part / parts, whose sizes differ by at most one. */
void RnBlockRange(long long n, int part, int parts, int *lo, int *hi);

/* parallel.groups: `fallback` when absent; 0 means one group per node where
 * per_node is true (it needs as many ranks on every node). The count must
 * divide the rank count: an input error naming the key otherwise. Where
 * allow_auto, "auto" gives RN_GROUPS_AUTO: the caller chooses with
 * RnGroupsChoose. */
#define RN_GROUPS_AUTO (-1)
PetscErrorCode RnGroupsFromConfig(RnCtx ctx, RnConfig cfg, int fallback, PetscBool per_node, PetscBool allow_auto, int *groups);

/* The per-rank batch efficiency of a data-parallel group: a rank that holds
 * b images of a batch computes them at b / (b + half) of its full rate.
 * RN_HALF_RATE_BATCH is the fit of bench_cifar, float32, C = 256, on AMD
 * EPYC (Zen4, 1 thread a rank): 42% at 2 images, 77% at 8, 94% at 32. */
#define RN_HALF_RATE_BATCH 2.7
double RnBatchEfficiency(double images_per_rank, double half);

/* The schedule the unit queue makes (largest first, each group taking the
 * next unit when it is free) of units of the given costs on `groups` groups
 * of ranks/groups ranks, with a batch split over a group's ranks: the
 * predicted wall time (in cost units of one rank at full rate) and busy
 * fraction (the sum of the units' times over groups x wall time). */
void RnScheduleSimulate(int nunits, const double *cost, int ranks, int groups, int batch, double half, double *wall, double *busy);
/* parallel.groups = "auto": the group count with the least predicted wall
 * time among those whose groups stay within a node (or are whole nodes,
 * when a group must span nodes), every group with at least one image of the
 * batch a rank; ties go to fewer groups (less memory). Collective (it counts
 * the nodes). */
/* ... the same for `ranks` ranks, per_node on every node (0: uneven). */
int RnGroupsChooseFor(int ranks, int per_node, int nunits, const double *cost, int batch, double half, double *wall, double *busy);
PetscErrorCode RnGroupsChoose(RnCtx ctx, int nunits, const double *cost, int batch, double half, int *groups, double *wall, double *busy);

/* A queue of units for groups that do not wait for each other.
 *
 * Each unit has a directory, RUN_DIR/units/<name>, with its own checkpoints
 * and tables: its state does not depend on the group that trains it, so a
 * run resumes on any number of groups, ranks or nodes. Units are handed out
 * largest remaining work first, by an atomic counter on rank 0 (MPI one-
 * sided): a group that finishes a unit takes the next. A stop (a signal,
 * or an error in one group) is posted in the same window; every group looks
 * at it after each step, checkpoints its unit and stops.
 *
 *   RnUnitQueueCreate(ctx, rd, nunits, units, &q);        // world
 *   RnUnitQueueAddTable(q, "final.csv", header);
 *   RnUnitQueueRun(q, TrainUnit, &run);                   // world: Next, train, Finish
 * where TrainUnit(ctx, unit) makes the unit's trainer:
 *     RnUnitQueueTrainerCreate(q, unit, &opt, "cifar", &tr);
 *     ... RnTrainerStart, steps, RnTrainerFinish, RnTrainerDestroy ...
 */
#define RN_UNIT_NAME_LEN 64
typedef struct {
  char name[RN_UNIT_NAME_LEN]; /* its directory under RUN_DIR/units */
  double cost;                 /* its whole work, in a unit common to all (block evaluations an image) */
  long long steps;             /* its training steps: finished when a checkpoint is at this step */
} RnUnitInfo;

typedef struct RnUnitQueue_s *RnUnitQueue;
PetscErrorCode RnUnitQueueCreate(RnCtx ctx, RnRunDir rd, int nunits, const RnUnitInfo *units, RnUnitQueue *q);
/* A table each unit writes in its directory; the run's copy (RUN_DIR/name)
 * is all the units' rows in unit order, written when the queue finishes. */
PetscErrorCode RnUnitQueueAddTable(RnUnitQueue q, const char *name, const char *header);
/* Collective on the group: the group's next unit, -1 when none is left or
 * the run stops. */
PetscErrorCode RnUnitQueueNext(RnUnitQueue q, int *unit);
/* The trainer of a unit, on the group: its checkpoints and continued tables
 * in the unit's directory, and the queue's stop looked at after every step. */
PetscErrorCode RnUnitQueueTrainerCreate(RnUnitQueue q, int unit, const RnCheckpointOptions *opt, const char *experiment, RnTrainer *tr);
/* The group as a world of its own (for logging from its leader). */
RnCtx RnUnitQueueGroupView(RnUnitQueue q);
/* Collective on the world, once the group has no unit left or its unit
 * failed with err: a stop, an input error or a non-finite loss ends every
 * group (each checkpoints its unit); the run's tables are merged; then the
 * first cause is raised on every rank with its group's message. Any other
 * err is returned as it is (it may leave ranks inside a collective). */
PetscErrorCode RnUnitQueueFinish(RnUnitQueue q, PetscErrorCode err);
/* The loop every experiment runs: the group takes units and trains each
 * with train(ctx, unit) until none is left or one fails; then
 * RnUnitQueueFinish with that failure. Collective on the world. */
PetscErrorCode RnUnitQueueRun(RnUnitQueue q, PetscErrorCode (*train)(void *ctx, int unit), void *ctx);
PetscErrorCode RnUnitQueueDestroy(RnUnitQueue *q);
/* parallel.groups of an experiment that trains one model on all the ranks:
 * 1, an input error naming the key else. */
PetscErrorCode RnConfigOneGroup(RnConfig cfg, const char *experiment);

#endif
