/* bench_schedule: the predicted wall time and busy fraction of a depth sweep
 * on a cluster shape, for the schedule before the unit queue (groups in
 * lock-step rounds, one group per node, units model-major) and for the queue
 * (largest first, groups at their own pace, the shape "auto" chooses).
 *
 *   build/bench/bench_schedule RANKS PER_NODE BATCH SECONDS_PER_COST COST...
 *
 * COST: each unit's work in block evaluations an image (CifarUnits' model);
 * SECONDS_PER_COST: one rank's time for one cost unit of a whole unit's
 * training at its full rate (measured: bench/sweep-busy.sh). Printed:
 *   busy:       the sum of the units' times on their groups / (groups x wall)
 *   efficiency: the work at one rank's full rate / (ranks x wall), which also
 *               counts what small per-rank batches lose (units.h). */
#include "resnode/core/units.h"

#include <stdio.h>
#include <stdlib.h>

#define MAX_UNITS 4096

/* The lock-step rounds: `groups` units at a time in the given order, each
 * round as long as its largest unit. */
static void Rounds(int n, const double *cost, int ranks, int groups, int batch, double half, double *wall, double *busy)
{
  const int size = ranks / groups;
  const double rate = size * RnBatchEfficiency((double)batch / size, half);
  double sum = 0;

  *wall = 0;
  for (int first = 0; first < n; first += groups) {
    double longest = 0;
    for (int u = first; u < n && u < first + groups; u++) longest = cost[u] > longest ? cost[u] : longest, sum += cost[u] / rate;
    *wall += longest / rate;
  }
  *busy = sum / (groups * *wall);
}

int main(int argc, char **argv)
{
  int ranks, per_node, batch, n = 0, groups;
  double seconds, cost[MAX_UNITS], work = 0, wall, busy;

  if (argc < 6) {
    fprintf(stderr, "usage: bench_schedule RANKS PER_NODE BATCH SECONDS_PER_COST COST...\n");
    return 2;
  }
  ranks = atoi(argv[1]), per_node = atoi(argv[2]), batch = atoi(argv[3]), seconds = atof(argv[4]);
  if (ranks < 1 || per_node < 1 || ranks % per_node || batch < 1 || seconds <= 0) {
    fprintf(stderr, "bench_schedule: RANKS a multiple of PER_NODE, BATCH >= 1, SECONDS_PER_COST > 0\n");
    return 2;
  }
  for (int i = 5; i < argc && n < MAX_UNITS; i++) cost[n] = atof(argv[i]), work += cost[n++];
  printf("%d units, %.1f cost units of work; %d ranks, %d a node; batch %d\n", n, work, ranks, per_node, batch);
  /* before: one group per node, in rounds */
  groups = ranks / per_node;
  Rounds(n, cost, ranks, groups, batch, RN_HALF_RATE_BATCH, &wall, &busy);
  printf("rounds (one group per node):   %3d group(s) of %2d: wall %10.0f s  busy %5.1f%%  efficiency %5.1f%%\n", groups, per_node, wall * seconds, 100 * busy, 100 * work / (ranks * wall));
  /* the queue on the same shape, and on the shape auto chooses */
  RnScheduleSimulate(n, cost, ranks, groups, batch, RN_HALF_RATE_BATCH, &wall, &busy);
  printf("queue (one group per node):    %3d group(s) of %2d: wall %10.0f s  busy %5.1f%%  efficiency %5.1f%%\n", groups, per_node, wall * seconds, 100 * busy, 100 * work / (ranks * wall));
  groups = RnGroupsChooseFor(ranks, per_node, n, cost, batch, RN_HALF_RATE_BATCH, &wall, &busy);
  printf("queue (parallel.groups auto):  %3d group(s) of %2d: wall %10.0f s  busy %5.1f%%  efficiency %5.1f%%\n", groups, ranks / groups, wall * seconds, 100 * busy, 100 * work / (ranks * wall));
  return 0;
}
