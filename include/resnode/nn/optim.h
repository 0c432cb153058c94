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

PetscErrorCode RnOptimCreate(PetscInt n, const RnOptimOptions *opt, RnOptim *optim);
/* theta -= update(grad); lr_scale multiplies the learning rate (schedules). */
PetscErrorCode RnOptimStep(RnOptim optim, double lr_scale, double *theta, const double *grad);
PetscErrorCode RnOptimDestroy(RnOptim *optim);
/* optimizer = "adam" | "sgd"; lr; momentum; weight_decay; beta1; beta2; eps (under prefix). */
PetscErrorCode RnOptimOptionsFromConfig(RnConfig cfg, const char *prefix, RnOptimOptions *opt);

#endif
