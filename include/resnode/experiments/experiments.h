/* experiments.h: the experiments the binary runs, as the app layer sees them.
 *
 * Each experiment reads all its keys first (so every config error is reported
 * before anything is written), then runs in its run directory. */
#ifndef RESNODE_EXPERIMENTS_H
#define RESNODE_EXPERIMENTS_H

#include "resnode/core/config.h"
#include "resnode/core/core.h"
#include "resnode/core/metrics.h"

typedef struct {
  const char *name;
  const char *summary;
  /* Read and validate every key of the experiment; *options is the
   * experiment's own struct (PetscMalloc'ed). */
  PetscErrorCode (*read_options)(RnCtx ctx, RnConfig cfg, void **options);
  /* Number of groups the experiment wants (after read_options). */
  int (*group_count)(RnCtx ctx, const void *options);
  PetscErrorCode (*run)(RnCtx ctx, RnRunDir rd, void *options);
} RnExperiment;

extern const RnExperiment RnExperimentNodeFit;
extern const RnExperiment RnExperimentIdentity;
extern const RnExperiment RnExperimentEnsemble;
extern const RnExperiment RnExperimentCifar;
extern const RnExperiment RnExperimentAnnulus;

/* Shared by the experiments: the directory that holds analysis/ (for the plot
 * scripts the binary runs at the end of a run). */
const char *RnSourceDir(void);
/* Runs an analysis script on the run directory on rank 0 with /usr/bin/python3;
 * a failure is reported as a warning (the run's data are already written). */
PetscErrorCode RnRunPlotScript(RnCtx ctx, RnRunDir rd, const char *script);

#endif
