/* appimpl.h: the app component's private header (app.h is the public one):
 * what app.c and keys.c share. */
#ifndef RESNODE_APPIMPL_H
#define RESNODE_APPIMPL_H

#include "resnode/app/app.h"
#include "resnode/experiments/experiments.h"

/* The experiments the binary runs, NULL-terminated (app.c). */
extern const RnExperiment *const RnAppExperiments[];

/* The keys every experiment reads (experiment, seed, verbose, run.*,
 * output.plot), and the experiment named (app.c). */
PetscErrorCode RnAppReadCommon(RnCtx ctx, RnConfig cfg, const RnExperiment **experiment, char *run_dir, size_t len, PetscBool *plot);

/* --keys: the keys of one experiment (or of all, name NULL) as markdown
 * tables on stdout, each key with its type, default and range as the
 * validator records them (config.h: RnConfigKeyDescribe) and its meaning
 * from keys.c's table. Keys without a meaning, and meanings of no key, are
 * named on stderr, and *undocumented counts them (keys.c). */
PetscErrorCode RnAppPrintKeys(RnCtx ctx, const char *name, int *undocumented);
/* A key's meaning for the validator's messages (config.h: RnKeyMeaningFn);
 * experiment points to the run's experiment, NULL until it is known (keys.c). */
const char *RnAppKeyMeaning(const char *key, void *experiment);

/* --plan: run the experiment measured, in a scratch directory beside
 * run_dir that is removed, and report the units, their times, the peak
 * memory per rank, the wall time and the --time to ask for; adaptive: the
 * ODE's steps are adaptive, and the estimate a lower bound. *wall and
 * *peak (where not NULL): the estimate in s and the peak MB a rank (plan.c). */
PetscErrorCode RnAppPlan(RnCtx ctx, const RnExperiment *experiment, void *options, const char *run_dir, PetscBool adaptive, int argc, char **argv, double *wall, double *peak);
/* ... a study's: each point's estimate (wall, in s) and peak memory a rank
 * (MB), the groups taking them largest first: the study's wall time and the
 * --time to ask for (rank 0 prints; plan.c). */
PetscErrorCode RnAppPlanStudy(RnCtx ctx, int npoints, const char *const *names, const double *wall, const double *peak, int groups, int group_size);

/* One run of a config read and validated (experiment and options read):
 * its run directory (resumed where resume), the experiment run, the
 * manifest's status, the analysis where plot (app.c). The error of the run,
 * its directory left saying how it ended. */
PetscErrorCode RnAppRunOne(RnCtx ctx, RnConfig cfg, const RnExperiment *experiment, void *options, const char *run_dir, PetscBool resume, PetscBool plot, int argc, char **argv);
/* PETSc options no TS of the experiment reads: an input error naming them (app.c). */
PetscErrorCode RnAppCheckPetscOptions(RnCtx ctx, const RnExperiment *experiment);

/* A study (study.c): a config with a `study` group, its points run packed
 * on the ranks' groups. */
typedef struct {
  const char *path;   /* the study file */
  int nsets;          /* the command line's --set, applied to every point */
  const char **sets;
  int npoints;        /* --point NAME: only these points (array mode) */
  const char **points;
  PetscBool print_config, plan;
} RnStudyArgs;
PetscErrorCode RnAppStudy(RnCtx ctx, RnConfig study, const RnStudyArgs *args, int argc, char **argv, int *exit_code);
/* The study's own keys, for --keys study and the validator (NULL-terminated). */
typedef struct {
  const char *key, *type, *def, *meaning;
} RnStudyKeyDoc;
extern const RnStudyKeyDoc RnAppStudyKeys[];

#endif
