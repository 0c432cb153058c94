/* experiments.h: the experiments the binary runs, as the app layer sees them.
 *
 * Each experiment reads all its keys first (so every config error is reported
 * before anything is written), then runs in its run directory. */
#ifndef RESNODE_EXPERIMENTS_H
#define RESNODE_EXPERIMENTS_H

#include "resnode/core/config.h"
#include "resnode/core/core.h"
#include "resnode/core/metrics.h"
#include "resnode/nn/layers.h"

typedef struct {
  const char *name;
  const char *summary;
  /* Read and validate every key of the experiment; *options is the
   * experiment's own struct (PetscMalloc'ed). */
  PetscErrorCode (*read_options)(RnCtx ctx, RnConfig cfg, void **options);
  /* Number of groups the experiment wants (after read_options). */
  int (*group_count)(RnCtx ctx, const void *options);
  PetscErrorCode (*run)(RnCtx ctx, RnRunDir rd, void *options);
  /* The analysis command of its run directories (resnode-<analysis>, running
   * analysis/<analysis>): plots and reports come from it, after the job. */
  const char *analysis;
  /* The options prefixes of the TS objects its solves create (NULL-terminated;
   * "" is -ts_*), checked before the run starts (ode.h: RnOdeCheckOptions). */
  const char *const *ts_prefixes;
  /* Its state is per unit (units.h: RnUnitQueue): a resume may change
   * parallel.* (the ranks, nodes and groups it continues on). */
  PetscBool units_resume_anywhere;
  /* --plan (trainer.h: RnTrainerPlanBegin): what its trainer's steps make
   * up, "epoch", "iteration", ...; NULL: no plan (a unit is one step) */
  const char *plan_period;
  /* Its whole work, estimated from its options in a unit of its own (block
   * evaluations of an image or sample): a study's groups take its points
   * largest first (app/study.c). NULL: the points in the study's order. */
  double (*work)(const void *options);
} RnExperiment;

extern const char *const RnExperimentOdePrefixes[]; /* {"", NULL}: the model's ODE */

extern const RnExperiment RnExperimentNodeFit;
extern const RnExperiment RnExperimentIdentity;
extern const RnExperiment RnExperimentEnsemble;
extern const RnExperiment RnExperimentCifar;
extern const RnExperiment RnExperimentAnnulus;

/* The command that runs analysis/<script> on a run directory:
 * resnode-<script> beside this binary (the build tree and an installed prefix
 * both have it there), named bare when that directory is on PATH. */
void RnAnalysisCommand(const char *script, char *cmd, size_t len);

/* model.precision checked against the CPU: bfloat16 where oneDNN has no
 * bfloat16 kernels is an input error naming the key (not a traceback at
 * the first convolution). */
PetscErrorCode RnCheckPrecision(RnConfig cfg, RnPrecision precision);

#endif
