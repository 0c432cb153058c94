/* profile.c: application events, their tallies and a run's profile (profile.h). */
#include "resnode/core/profile.h"

#include <stdio.h>
#include <string.h>

const char *const RnEventNames[] = {"RnNetForward", "RnNetBackward", "RnConvFwd", "RnConvBwd", "RnBatchNorm", "RnActivation", "RnPool", "RnDense", "RnLoss", "RnConvert", "RnOdeSolve",
                                    "RnOdeAdjoint", "RnOdeRHS", "RnOdeVJP", "RnGradReduce", "RnGroupWait", "RnOptimStep", "RnData", "RnCheckpoint", "RnSnapshot", "RnStats", "RnQueueWait",
                                    "RnEvaluation", NULL};
static const char *const rn_stage_names[] = {"RnSetUp", "RnTraining", "RnEvaluation", "RnOutput"};

/* events open at once, at most: deeper nesting is tallied whole */
#define RN_EVENT_STACK_MAX 32
/* the shares --plan prints */
#define RN_PLAN_SHARES 6
#define RN_PLAN_SHARE_MIN 0.005 /* ... of at least this share */

static PetscBool rn_profile_registered;
static PetscClassId rn_class_id;
static PetscLogEvent rn_petsc_events[RN_EV_COUNT];
static PetscLogStage rn_petsc_stages[RN_STAGE_COUNT];
static int rn_stage_pushed = -1; /* the stage of ours on PETSc's stack (-1: none) */
static RnProfileMark rn_tally;
static struct {
  RnEvent event;
  double start, enclosed; /* when it began; the time of the events it enclosed */
} rn_open[RN_EVENT_STACK_MAX];
static int rn_depth;

PetscErrorCode RnProfileRegister(void)
{
  PetscFunctionBeginUser;
  if (rn_profile_registered) PetscFunctionReturn(0);
  PetscCall(PetscClassIdRegister("resnode", &rn_class_id));
  for (int e = 0; e < RN_EV_COUNT; e++) PetscCall(PetscLogEventRegister(RnEventNames[e], rn_class_id, &rn_petsc_events[e]));
  for (int s = 0; s < RN_STAGE_COUNT; s++) PetscCall(PetscLogStageRegister(rn_stage_names[s], &rn_petsc_stages[s]));
  rn_profile_registered = PETSC_TRUE;
  PetscFunctionReturn(0);
}

PetscErrorCode RnEventBegin(RnEvent e)
{
  PetscFunctionBeginUser;
  if (!rn_profile_registered) PetscFunctionReturn(0);
  if (rn_depth < RN_EVENT_STACK_MAX) {
    rn_open[rn_depth].event = e;
    rn_open[rn_depth].start = RnWallTime();
    rn_open[rn_depth].enclosed = 0.0;
  }
  rn_depth++;
  PetscCall(PetscLogEventBegin(rn_petsc_events[e], 0, 0, 0, 0));
  PetscFunctionReturn(0);
}

PetscErrorCode RnEventEnd(RnEvent e)
{
  const double now = RnWallTime();

  PetscFunctionBeginUser;
  if (!rn_profile_registered) PetscFunctionReturn(0);
  /* events left open by an error inside this one end with it */
  while (rn_depth > 0) {
    const int top = rn_depth - 1;
    if (top < RN_EVENT_STACK_MAX) {
      const RnEvent open = rn_open[top].event;
      const double elapsed = now - rn_open[top].start;
      rn_tally.total[open] += elapsed;
      rn_tally.self[open] += elapsed - rn_open[top].enclosed;
      rn_tally.count[open]++;
      if (top > 0 && top - 1 < RN_EVENT_STACK_MAX) rn_open[top - 1].enclosed += elapsed;
      rn_depth--;
      if (open == e) break;
    } else rn_depth--;
  }
  PetscCall(PetscLogEventEnd(rn_petsc_events[e], 0, 0, 0, 0));
  PetscFunctionReturn(0);
}

PetscErrorCode RnProfileFlops(double flops)
{
  PetscFunctionBeginUser;
  if (!rn_profile_registered) PetscFunctionReturn(0);
  for (int i = 0; i < PetscMin(rn_depth, RN_EVENT_STACK_MAX); i++) rn_tally.flops[rn_open[i].event] += flops;
  PetscCall(PetscLogFlops(flops));
  PetscFunctionReturn(0);
}

PetscErrorCode RnProfileSetStage(RnStage stage)
{
  PetscFunctionBeginUser;
  if (!rn_profile_registered || rn_stage_pushed == (int)stage) PetscFunctionReturn(0);
  if (rn_stage_pushed >= 0) PetscCall(PetscLogStagePop());
  PetscCall(PetscLogStagePush(rn_petsc_stages[stage]));
  rn_stage_pushed = (int)stage;
  PetscFunctionReturn(0);
}

PetscErrorCode RnGradientSum(const double *grad, double *sum, PetscInt n, MPI_Comm comm)
{
  PetscFunctionBeginUser;
  PetscCall(RnEventBegin(RN_EV_GRAD_REDUCE));
  PetscCallMPI(MPI_Allreduce(grad, sum, (int)n, MPI_DOUBLE, MPI_SUM, comm));
  PetscCall(RnEventEnd(RN_EV_GRAD_REDUCE));
  PetscFunctionReturn(0);
}

RnStage RnProfileStage(void) { return rn_stage_pushed >= 0 ? (RnStage)rn_stage_pushed : RN_STAGE_SETUP; }

PetscErrorCode RnProfileEvaluationBegin(RnStage *before)
{
  PetscFunctionBeginUser;
  *before = RnProfileStage();
  PetscCall(RnProfileSetStage(RN_STAGE_EVALUATION));
  PetscCall(RnEventBegin(RN_EV_EVALUATION));
  PetscFunctionReturn(0);
}

PetscErrorCode RnProfileEvaluationEnd(RnStage before)
{
  PetscFunctionBeginUser;
  PetscCall(RnEventEnd(RN_EV_EVALUATION));
  PetscCall(RnProfileSetStage(before));
  PetscFunctionReturn(0);
}

void RnProfileMarkNow(RnProfileMark *mark)
{
  *mark = rn_tally;
  mark->wall = RnWallTime();
}

PetscErrorCode RnProfileJSON(MPI_Comm comm, const RnProfileMark *since, char *json, size_t len)
{
  RnProfileMark now;
  double mine[2 * RN_EV_COUNT + 1], sum[2 * RN_EV_COUNT + 1], lo[RN_EV_COUNT], hi[RN_EV_COUNT], flops[RN_EV_COUNT];
  long long count[RN_EV_COUNT], calls[RN_EV_COUNT];
  int rank, size;
  size_t used = 0;
  double covered = 0.0;

  PetscFunctionBeginUser;
  RnProfileMarkNow(&now);
  PetscCallMPI(MPI_Comm_rank(comm, &rank));
  PetscCallMPI(MPI_Comm_size(comm, &size));
  for (int e = 0; e < RN_EV_COUNT; e++) {
    mine[e] = now.self[e] - since->self[e];
    mine[RN_EV_COUNT + e] = now.total[e] - since->total[e];
    flops[e] = now.flops[e] - since->flops[e];
    count[e] = now.count[e] - since->count[e];
  }
  mine[2 * RN_EV_COUNT] = now.wall - since->wall;
  PetscCallMPI(MPI_Reduce(mine, sum, 2 * RN_EV_COUNT + 1, MPI_DOUBLE, MPI_SUM, 0, comm));
  PetscCallMPI(MPI_Reduce(mine, lo, RN_EV_COUNT, MPI_DOUBLE, MPI_MIN, 0, comm));
  PetscCallMPI(MPI_Reduce(mine, hi, RN_EV_COUNT, MPI_DOUBLE, MPI_MAX, 0, comm));
  PetscCallMPI(MPI_Reduce(rank == 0 ? MPI_IN_PLACE : flops, flops, RN_EV_COUNT, MPI_DOUBLE, MPI_SUM, 0, comm));
  PetscCallMPI(MPI_Reduce(count, calls, RN_EV_COUNT, MPI_LONG_LONG, MPI_MAX, 0, comm));
  json[0] = 0;
  if (rank != 0) PetscFunctionReturn(0);
  {
    const double wall = sum[2 * RN_EV_COUNT] / size;
    used += (size_t)snprintf(json + used, len - used, "{\"wall_s\": %.6g, \"ranks\": %d, \"events\": {", wall, size);
    for (int e = 0, first = 1; e < RN_EV_COUNT && used < len; e++) {
      const double self = sum[e] / size;
      if (calls[e] == 0) continue;
      covered += self;
      used += (size_t)snprintf(json + used, len - used, "%s\"%s\": {\"count\": %lld, \"self_s\": %.6g, \"self_min_s\": %.6g, \"self_max_s\": %.6g, \"total_s\": %.6g, \"mflop\": %.6g, \"share\": %.4f}",
                               first ? "" : ", ", RnEventNames[e], calls[e], self, lo[e], hi[e], sum[RN_EV_COUNT + e] / size, flops[e] / 1e6, wall > 0 ? self / wall : 0.0);
      first = 0;
    }
    if (used < len) snprintf(json + used, len - used, "}, \"other_s\": %.6g}", PetscMax(wall - covered, 0.0));
  }
  PetscFunctionReturn(0);
}

void RnProfileShares(const RnProfileMark *since, char *line, size_t len)
{
  RnProfileMark now;
  double self[RN_EV_COUNT], wall;
  size_t used = 0;

  RnProfileMarkNow(&now);
  wall = now.wall - since->wall;
  for (int e = 0; e < RN_EV_COUNT; e++) self[e] = now.self[e] - since->self[e];
  line[0] = 0;
  for (int k = 0; k < RN_PLAN_SHARES && wall > 0; k++) {
    int best = -1;
    for (int e = 0; e < RN_EV_COUNT; e++)
      if (self[e] > 0 && (best < 0 || self[e] > self[best])) best = e;
    if (best < 0 || self[best] < RN_PLAN_SHARE_MIN * wall) break;
    if (used < len) used += (size_t)snprintf(line + used, len - used, "%s%s %.0f%%", k ? ", " : "", RnEventNames[best], 100.0 * self[best] / wall);
    self[best] = 0.0;
  }
}
