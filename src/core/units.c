/* units.c: units of work over groups of ranks (units.h). */
#include "resnode/core/units.h"

void RnBlockRange(long long n, int part, int parts, int *lo, int *hi)
{
  *lo = (int)(n * part / parts);
  *hi = (int)(n * (part + 1) / parts);
}

PetscErrorCode RnGroupsFromConfig(RnCtx ctx, RnConfig cfg, int fallback, PetscBool per_node, int *groups)
{
  PetscFunctionBeginUser;
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

int RnRoundCount(int nunits, int groups) { return (nunits + groups - 1) / groups; }

int RnRoundUnit(int round, int group, int groups, int nunits)
{
  const int unit = round * groups + group;
  return unit < nunits ? unit : -1;
}

PetscErrorCode RnGatherLeaderRows(RnCtx ctx, const double *row, int fields, double *rows)
{
  PetscFunctionBeginUser;
  if (ctx->leaders != MPI_COMM_NULL) PetscCallMPI(MPI_Gather(row, fields, MPI_DOUBLE, rows, fields, MPI_DOUBLE, 0, ctx->leaders));
  PetscFunctionReturn(0);
}
