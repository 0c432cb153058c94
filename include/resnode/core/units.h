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

/* The block [lo, hi) of n items that part `part` of `parts` holds: blocks of
 * n * part / parts, whose sizes differ by at most one. */
void RnBlockRange(long long n, int part, int parts, int *lo, int *hi);

/* parallel.groups: `fallback` when absent; 0 means one group per node where
 * per_node is true (it needs as many ranks on every node). The count must
 * divide the rank count: an input error naming the key otherwise. */
PetscErrorCode RnGroupsFromConfig(RnCtx ctx, RnConfig cfg, int fallback, PetscBool per_node, int *groups);
/* parallel.groups of an experiment that trains one model on all the ranks:
 * 1, an input error naming the key else. */
PetscErrorCode RnConfigOneGroup(RnConfig cfg, const char *experiment);

/* Round-robin over the groups: units round * groups + group. */
int RnRoundCount(int nunits, int groups);
/* The unit that `group` trains in `round`, or -1 when it has none. */
int RnRoundUnit(int round, int group, int groups, int nunits);

/* Rank 0 of the world receives `fields` doubles from each group leader, in
 * group order, into rows (groups x fields, on rank 0 only; NULL elsewhere).
 * Collective on the world (ranks that lead no group pass through). */
PetscErrorCode RnGatherLeaderRows(RnCtx ctx, const double *row, int fields, double *rows);

#endif
