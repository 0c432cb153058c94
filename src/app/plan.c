/* plan.c: resnode-mpi CONFIG --plan, a job measured before it is submitted.
 *
 * The experiment runs as configured (the full batch and data set, on the
 * ranks and groups given) in a scratch run directory beside run.dir, which
 * is removed afterwards; its trainers time a few steps of every unit after
 * a warm-up step, and the work done once an epoch or round (trainer.h:
 * RnTrainerPlanBegin). Each unit's time is its steps at the measured rate;
 * the queue's groups take units largest first; set-up is measured; a --time
 * with a stated margin follows. */
/* nftw (POSIX XSI) */
#define _XOPEN_SOURCE 700
#include "appimpl.h"
#include "resnode/core/profile.h"
#include "resnode/core/trainer.h"

#include <ftw.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <unistd.h>

#define RN_PLAN_STEPS         3     /* steps timed a unit, after a warm-up step */
#define RN_PLAN_MARGIN        0.25  /* --time: the estimate plus this fraction ... */
#define RN_PLAN_SLACK_SECONDS 120.0 /* ... and this (start-up, the last checkpoint, a slower node) */
#define RN_PLAN_FD_MAX        16    /* file descriptors nftw may hold */

static int RemoveEntry(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
  (void)st, (void)flag, (void)ftw;
  return remove(path);
}

/* "1 h 02 min", "3 min 04 s", "12.3 s" */
static void Duration(double seconds, char *buf, size_t len)
{
  const long s = lround(seconds);
  if (seconds < 60) snprintf(buf, len, "%.1f s", seconds);
  else if (s < 3600) snprintf(buf, len, "%ld min %02ld s", s / 60, s % 60);
  else snprintf(buf, len, "%ld h %02ld min", s / 3600, (s % 3600) / 60);
}

/* The time to request for an estimate: the estimate plus a margin and a slack */
static void RequestTime(double wall, char *buf, size_t len)
{
  const long minutes = (long)ceil((wall * (1.0 + RN_PLAN_MARGIN) + RN_PLAN_SLACK_SECONDS) / 60.0);
  snprintf(buf, len, "%ld:%02ld:00", minutes / 60, minutes % 60);
}

/* every rank's records on rank 0 (a unit's is on its group's leader) */
static PetscErrorCode GatherRecords(RnCtx ctx, RnPlanRecord **all, int *nall)
{
  const RnPlanRecord *mine;
  const int n = RnTrainerPlanRecords(&mine);
  int *counts = NULL, *displs = NULL, bytes = n * (int)sizeof(RnPlanRecord), total = 0;

  PetscFunctionBeginUser;
  if (ctx->world_rank == 0) PetscCall(PetscMalloc2(ctx->world_size, &counts, ctx->world_size, &displs));
  PetscCallMPI(MPI_Gather(&bytes, 1, MPI_INT, counts, 1, MPI_INT, 0, ctx->world));
  if (ctx->world_rank == 0)
    for (int r = 0; r < ctx->world_size; r++) displs[r] = total, total += counts[r];
  PetscCall(PetscMalloc(PetscMax(total, 1), all));
  PetscCallMPI(MPI_Gatherv(mine, bytes, MPI_BYTE, *all, counts, displs, MPI_BYTE, 0, ctx->world));
  *nall = total / (int)sizeof(RnPlanRecord);
  if (ctx->world_rank == 0) PetscCall(PetscFree2(counts, displs));
  PetscFunctionReturn(0);
}

static int ByTimeDescending(const void *a, const void *b)
{
  const double x = RnPlanRecordSeconds(a), y = RnPlanRecordSeconds(b);
  return x < y ? 1 : (x > y ? -1 : 0);
}

/* The busiest group's time when the groups take the units largest first,
 * each the next when it is free (the unit queue, units.h). */
static PetscErrorCode QueueWall(RnPlanRecord *r, int n, int groups, int *group_of, double *wall)
{
  double *load;

  PetscFunctionBeginUser;
  PetscCall(PetscCalloc1(groups, &load));
  qsort(r, (size_t)n, sizeof *r, ByTimeDescending);
  for (int i = 0; i < n; i++) {
    int g = 0;
    for (int k = 1; k < groups; k++)
      if (load[k] < load[g]) g = k;
    load[g] += RnPlanRecordSeconds(&r[i]);
    group_of[i] = g;
  }
  *wall = 0;
  for (int g = 0; g < groups; g++) *wall = PetscMax(*wall, load[g]);
  PetscCall(PetscFree(load));
  PetscFunctionReturn(0);
}

PetscErrorCode RnAppPlan(RnCtx ctx, const RnExperiment *experiment, void *options, const char *run_dir, PetscBool adaptive, int argc, char **argv, double *wall_out, double *peak_out)
{
  char scratch[PETSC_MAX_PATH_LEN + 32], cpu[256], text[64], shares[256];
  RnProfileMark start;
  RnRunDir rd = NULL;
  RnPlanRecord *records = NULL;
  int nrecords = 0, pid = (int)getpid();
  double t0, setup = 0, work = 0, wall = 0, peak, peak_max = 0, peak_min, result[2];
  struct rusage ru;

  PetscFunctionBeginUser;
  RnInputCheck(experiment->plan_period, ctx->world, "--plan: %s trains each unit in one step, so there are no steps to time: run it shrunk instead (fewer epochs), which takes minutes", experiment->name);
  PetscCallMPI(MPI_Bcast(&pid, 1, MPI_INT, 0, ctx->world));
  PetscCall(PetscSNPrintf(scratch, sizeof scratch, "%s.plan-%d", run_dir, pid));
  PetscCall(RnLog(ctx, "plan: %s on %d rank(s) in %d group(s) of %d: timing %d steps of every unit after a warm-up step, in %s (removed afterwards)\n", experiment->name, ctx->world_size, ctx->group_count,
                  ctx->group_size, RN_PLAN_STEPS, scratch));
  RnTrainerPlanBegin(RN_PLAN_STEPS);
  PetscCall(RnRunDirCreate(ctx, scratch, experiment->name, argc, argv, PETSC_FALSE, &rd));
  t0 = RnWallTime();
  RnProfileMarkNow(&start);
  PetscCall(experiment->run(ctx, rd, options));
  RnProfileShares(&start, shares, sizeof shares);
  PetscCall(RnRunDirDestroy(&rd));
  getrusage(RUSAGE_SELF, &ru);
  peak = ru.ru_maxrss / 1024.0;
  PetscCallMPI(MPI_Reduce(&peak, &peak_max, 1, MPI_DOUBLE, MPI_MAX, 0, ctx->world));
  PetscCallMPI(MPI_Reduce(&peak, &peak_min, 1, MPI_DOUBLE, MPI_MIN, 0, ctx->world));
  PetscCall(GatherRecords(ctx, &records, &nrecords));
  if (ctx->world_rank == 0) {
    double first = INFINITY;
    nftw(scratch, RemoveEntry, RN_PLAN_FD_MAX, FTW_DEPTH | FTW_PHYS);
    PetscCall(RnLog(ctx, "plan: %-28s %12s %10s %14s %12s\n", "unit", "steps", "s/step", "s/" "period", "estimate"));
    for (int i = 0; i < nrecords; i++) {
      const RnPlanRecord *r = &records[i];
      const double per_step = r->timed ? r->seconds / (double)r->timed : 0.0;
      const double per_period = r->period_steps ? per_step * (double)r->period_steps + r->period_seconds : per_step;
      first = PetscMin(first, r->start);
      Duration(RnPlanRecordSeconds(r), text, sizeof text);
      PetscCall(RnLog(ctx, "plan: %-28s %12lld %10.4g %14.4g %12s\n", r->name, r->total, per_step, per_period, text));
    }
    PetscCall(RnLog(ctx, "plan: (a period is one %s%s)\n", experiment->plan_period, strcmp(experiment->plan_period, "epoch") ? "" : ": its training steps and its evaluation"));
    if (nrecords > 0) setup = first - t0;
    /* units of one trainer each (cifar) go through the queue, largest first;
     * a run of one trainer (node-fit, identity, the ensemble's lockstep
     * groups) is that trainer */
    if (nrecords > 1) {
      int *group_of;
      PetscCall(PetscMalloc1(nrecords, &group_of));
      PetscCall(QueueWall(records, nrecords, ctx->group_count, group_of, &work));
      for (int g = 0; g < ctx->group_count; g++) {
        char line[1024] = "";
        int count = 0;
        for (int i = 0; i < nrecords; i++)
          if (group_of[i] == g && strlen(line) + strlen(records[i].name) + 3 < sizeof line) {
            if (count++) strcat(line, ", ");
            strcat(line, records[i].name);
          }
        PetscCall(RnLog(ctx, "plan: group %d (%d rank(s)) is predicted to train %d unit(s): %s\n", g, ctx->group_size, count, count ? line : "none"));
      }
      PetscCall(PetscFree(group_of));
    } else work = nrecords ? RnPlanRecordSeconds(&records[0]) : 0.0;
    wall = PetscMax(setup, 0.0) + work;
    RnCpuDescribe(cpu, sizeof cpu);
    {
      char work_text[64];
      Duration(PetscMax(setup, 0.0), text, sizeof text);
      Duration(work, work_text, sizeof work_text);
      PetscCall(RnLog(ctx, "plan: set-up (data, models) %s; then training %s on the busiest of %d group(s)\n", text, work_text, ctx->group_count));
    }
    if (shares[0]) PetscCall(RnLog(ctx, "plan: predicted phase shares (own time on rank 0 in the measured steps, set-up included): %s\n", shares));
    PetscCall(RnLog(ctx, "plan: peak resident memory per rank %.0f to %.0f MB, measured on this configuration (its full batch and data set; a run's memory does not grow with its steps)\n", peak_min, peak_max));
    if (adaptive)
      PetscCall(RnLog(ctx, "plan: warning: the ODE takes adaptive steps (ode.adaptive): a step costs what its solves take, which often grows as the field trains (node-fit's from 16 solver steps to 96); the estimate is the rate of the first steps, a lower bound\n"));
    Duration(wall, text, sizeof text);
    PetscCall(RnLog(ctx, "plan: estimated wall time: %.0f s (%s), on %d rank(s) of this kind of node (%s)\n", wall, text, ctx->world_size, cpu));
    {
      char request[32];
      RequestTime(wall, request, sizeof request);
      PetscCall(RnLog(ctx, "plan: request --time=%s (the estimate plus %.0f%% and %.0f s for start-up and the last checkpoint)\n", request, 100 * RN_PLAN_MARGIN, RN_PLAN_SLACK_SECONDS));
    }
  }
  PetscCall(PetscFree(records));
  result[0] = wall, result[1] = peak_max;
  PetscCallMPI(MPI_Bcast(result, 2, MPI_DOUBLE, 0, ctx->world));
  if (wall_out) *wall_out = result[0];
  if (peak_out) *peak_out = result[1];
  PetscFunctionReturn(0);
}

PetscErrorCode RnAppPlanStudy(RnCtx ctx, int npoints, const char *const *names, const double *wall, const double *peak, int groups, int group_size)
{
  double *load, busiest = 0, peak_max = 0, total = 0;
  int *order;
  char text[64], cpu[256], request[32];

  PetscFunctionBeginUser;
  if (ctx->world_rank != 0) PetscFunctionReturn(0);
  PetscCall(PetscCalloc1(groups, &load));
  PetscCall(PetscMalloc1(npoints, &order));
  /* the groups take the points largest first, each the next when it is free */
  for (int i = 0; i < npoints; i++) order[i] = i;
  for (int i = 1; i < npoints; i++)
    for (int j = i; j > 0 && wall[order[j]] > wall[order[j - 1]]; j--) {
      const int t = order[j];
      order[j] = order[j - 1], order[j - 1] = t;
    }
  PetscCall(RnLog(ctx, "plan: %-60s %12s %12s\n", "point", "estimate", "peak MB/rank"));
  for (int i = 0; i < npoints; i++) {
    const int k = order[i];
    int g = 0;
    for (int h = 1; h < groups; h++)
      if (load[h] < load[g]) g = h;
    load[g] += wall[k];
    total += wall[k];
    peak_max = PetscMax(peak_max, peak[k]);
    Duration(wall[k], text, sizeof text);
    PetscCall(RnLog(ctx, "plan: %-60s %12s %12.0f\n", names[k], text, peak[k]));
  }
  for (int g = 0; g < groups; g++) busiest = PetscMax(busiest, load[g]);
  RnCpuDescribe(cpu, sizeof cpu);
  Duration(busiest, text, sizeof text);
  RequestTime(busiest, request, sizeof request);
  PetscCall(RnLog(ctx, "plan: the study's %d point(s) to run, packed on %d group(s) of %d rank(s) (%.0f%% busy): estimated wall time %.0f s (%s) on %d rank(s) of this kind of node (%s); peak resident memory %.0f MB a rank\n", npoints, groups, group_size,
                  busiest > 0 ? 100.0 * total / (groups * busiest) : 100.0, busiest, text, ctx->world_size, cpu, peak_max));
  PetscCall(RnLog(ctx, "plan: request --time=%s (the estimate plus %.0f%% and %.0f s for start-up and the last checkpoint)\n", request, 100 * RN_PLAN_MARGIN, RN_PLAN_SLACK_SECONDS));
  PetscCall(PetscFree(load));
  PetscCall(PetscFree(order));
  PetscFunctionReturn(0);
}
