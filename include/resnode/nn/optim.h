/* optim.h: optimizers on the flat parameter buffer: SGD (momentum, weight
 * decay) and Adam. Their state is flat too (one buffer, checkpointed as is). */
#ifndef RESNODE_OPTIM_H
#define RESNODE_OPTIM_H

#include "resnode/core/config.h"
#include "resnode/core/core.h"

typedef enum { RN_OPTIM_SGD, RN_OPTIM_ADAM } RnOptimKind;
extern const char *const RnOptimKindNames[]; /* "sgd", "adam", NULL */

typedef struct {
  RnOptimKind kind;
  double lr;
  double momentum;     /* SGD */
  double weight_decay; /* added to the gradient: g + wd * theta */
  double beta1, beta2, eps; /* Adam */
} RnOptimOptions;

void RnOptimOptionsDefault(RnOptimOptions *opt);

typedef struct RnOptim_s *RnOptim;
struct RnOptim_s {
  RnOptimOptions opt;
  PetscInt n;
  long step;      /* updates done */
  double *state;  /* SGD: velocity (n); Adam: m (n) then v (n) */
  PetscInt nstate;
};

/* The length of the optimizer's state for n parameters (checkpoints hold it). */
PetscInt RnOptimStateSize(const RnOptimOptions *opt, PetscInt n);
PetscErrorCode RnOptimCreate(PetscInt n, const RnOptimOptions *opt, RnOptim *optim);
/* theta -= update(grad); lr_scale multiplies the learning rate (schedules). */
PetscErrorCode RnOptimStep(RnOptim optim, double lr_scale, double *theta, const double *grad);
PetscErrorCode RnOptimDestroy(RnOptim *optim);
/* optimizer = "adam" | "sgd"; lr; momentum; weight_decay; beta1; beta2; eps (under prefix). */
PetscErrorCode RnOptimOptionsFromConfig(RnConfig cfg, const char *prefix, RnOptimOptions *opt);

/* The learning rate over epochs: lr x factor(E) x plateau scale in epoch E
 * (1-based). factor(E) = factors[i] for the last i with epochs[i] < E (the
 * factor applies after that epoch), 1 before the first. The plateau reducer
 * (Keras' ReduceLROnPlateau) watches a metric after every epoch: without an
 * improvement by more than min_delta for `patience` epochs in a row, the
 * current rate is multiplied by factor, not below min_lr, and the count
 * starts again; its reductions persist (they multiply the schedule's). */
typedef enum { RN_METRIC_VAL_LOSS, RN_METRIC_VAL_ACC, RN_METRIC_TRAIN_LOSS, RN_METRIC_TRAIN_ACC } RnMetricKind;
extern const char *const RnMetricKindNames[]; /* "val_loss", "val_acc", "train_loss", "train_acc", NULL */

typedef struct {
  int nsteps;
  int epochs[32];
  double factors[32];
  PetscBool plateau;
  RnMetricKind metric;
  double plateau_factor, min_lr, min_delta;
  int patience;
} RnLrSchedule;

/* What the reducer carries from epoch to epoch (a checkpoint holds it). */
typedef struct {
  double scale; /* product of its reductions */
  double best;  /* best value of the metric so far */
  double wait;  /* epochs since (a double: the state is a flat buffer of doubles) */
} RnPlateauState;

/* prefix.lr_schedule = { epochs = [...]; factors = [...]; } and
 * prefix.plateau = { enable; metric; factor; patience; min_lr; min_delta; }. */
PetscErrorCode RnLrScheduleFromConfig(RnConfig cfg, const char *prefix, RnLrSchedule *s);
double RnLrScheduleFactor(const RnLrSchedule *s, int epoch);
void RnPlateauStart(RnPlateauState *st);
/* After epoch `epoch` (1-based) whose metric is `value`, with base rate lr:
 * *reduced when the rate of the next epochs was cut. */
void RnPlateauUpdate(const RnLrSchedule *s, RnPlateauState *st, double lr, int epoch, double value, PetscBool *reduced);
/* The rate of epoch `epoch`. */
double RnLrAt(const RnLrSchedule *s, const RnPlateauState *st, double lr, int epoch);

#endif
