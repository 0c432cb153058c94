/* units.c: units of work over groups of ranks (units.h). */
#include "resnode/core/units.h"

#include <math.h>
#include <string.h>

#define RN_MAX_SIMULATED_GROUPS 4096
#define RN_MAX_SIMULATED_UNITS 4096
#define RN_GROUPS_GAIN 0.01 /* the least relative gain in wall time that justifies more groups */

void RnBlockRange(long long n, int part, int parts, int *lo, int *hi)
{
  *lo = (int)(n * part / parts);
  *hi = (int)(n * (part + 1) / parts);
}

PetscErrorCode RnGroupsFromConfig(RnCtx ctx, RnConfig cfg, int fallback, PetscBool per_node, PetscBool allow_auto, int *groups)
{
  PetscFunctionBeginUser;
  if (RnConfigIsString(cfg, "parallel.groups")) {
    char word[16];
    PetscCall(RnConfigGetString(cfg, "parallel.groups", "", word, sizeof word));
    if (allow_auto && !strcmp(word, "auto")) {
      *groups = RN_GROUPS_AUTO;
      PetscFunctionReturn(0);
    }
    PetscCall(RnConfigError(cfg, "parallel.groups", "\"%s\" is not a group count: give a number%s%s", word, per_node ? " (0: one group per node)" : "", allow_auto ? " or \"auto\"" : ""));
  }
  if (fallback == RN_GROUPS_AUTO && !RnConfigHas(cfg, "parallel.groups")) {
    *groups = RN_GROUPS_AUTO;
    PetscFunctionReturn(0);
  }
  PetscCall(RnConfigGetInt(cfg, "parallel.groups", fallback, per_node ? 0 : 1, 1 << 20, groups));
  if (*groups == 0) {
    PetscBool balanced;
    PetscCall(RnCtxNodeCount(ctx, groups, &balanced));
    if (!balanced)
      PetscCall(RnConfigError(cfg, "parallel.groups", "0 (one group per node) needs as many ranks on every node; the %d ranks are spread unevenly over %d nodes: give the group count", ctx->world_size, *groups));
  }
  if (ctx->world_size % *groups)
    PetscCall(RnConfigError(cfg, "parallel.groups", "%d groups do not divide the %d MPI ranks; use a divisor of the rank count, or run with a multiple of %d ranks", *groups, ctx->world_size, *groups));
  PetscFunctionReturn(0);
}

PetscErrorCode RnConfigOneGroup(RnConfig cfg, const char *experiment)
{
  int groups;

  PetscFunctionBeginUser;
  PetscCall(RnConfigGetInt(cfg, "parallel.groups", 1, 1, 1 << 20, &groups));
  if (groups != 1) PetscCall(RnConfigError(cfg, "parallel.groups", "%s trains one model on all the ranks: use 1, got %d", experiment, groups));
  PetscFunctionReturn(0);
}

double RnBatchEfficiency(double images_per_rank, double half) { return images_per_rank / (images_per_rank + half); }

void RnScheduleSimulate(int nunits, const double *cost, int ranks, int groups, int batch, double half, double *wall, double *busy)
{
  const int size = ranks / groups;
  const double rate = size * RnBatchEfficiency((double)batch / size, half);
  double load[RN_MAX_SIMULATED_GROUPS] = {0}, order[RN_MAX_SIMULATED_UNITS], sum = 0;
  const int g = PetscMin(groups, RN_MAX_SIMULATED_GROUPS), n = PetscMin(nunits, RN_MAX_SIMULATED_UNITS);

  /* largest first; each unit to the group free first (the queue's order) */
  for (int i = 0; i < n; i++) order[i] = cost[i];
  for (int i = 1; i < n; i++)
    for (int j = i; j > 0 && order[j] > order[j - 1]; j--) {
      const double t = order[j];
      order[j] = order[j - 1], order[j - 1] = t;
    }
  *wall = 0;
  for (int i = 0; i < n; i++) {
    int free = 0;
    for (int k = 1; k < g; k++)
      if (load[k] < load[free]) free = k;
    load[free] += order[i] / rate;
    sum += order[i] / rate;
    *wall = PetscMax(*wall, load[free]);
  }
  *busy = *wall > 0 ? sum / (g * *wall) : 1.0;
}

int RnGroupsChooseFor(int ranks, int per_node, int nunits, const double *cost, int batch, double half, double *wall, double *busy)
{
  PetscBool within_node = PETSC_FALSE;
  int groups = 0;

  /* is there a shape whose groups stay within a node? (then no group spans nodes) */
  for (int size = 1; size <= ranks && per_node; size++)
    if (per_node % size == 0 && size <= batch) within_node = PETSC_TRUE;
  for (int g = 1; g <= ranks; g++) {
    const int size = ranks / g;
    double w, b;
    if (ranks % g || size > batch || g > RN_MAX_SIMULATED_GROUPS) continue;
    if (within_node && per_node % size) continue;
    RnScheduleSimulate(nunits, cost, ranks, g, batch, half, &w, &b);
    /* more groups cost memory and more data-set rows held: only for a clear gain */
    if (groups == 0 || w < *wall * (1 - RN_GROUPS_GAIN)) groups = g, *wall = w, *busy = b;
  }
  return groups;
}

PetscErrorCode RnGroupsChoose(RnCtx ctx, int nunits, const double *cost, int batch, double half, int *groups, double *wall, double *busy)
{
  int nodes;
  PetscBool balanced;

  PetscFunctionBeginUser;
  PetscCall(RnCtxNodeCount(ctx, &nodes, &balanced));
  *groups = RnGroupsChooseFor(ctx->world_size, balanced ? ctx->world_size / nodes : 0, nunits, cost, batch, half, wall, busy);
  PetscFunctionReturn(0);
}
