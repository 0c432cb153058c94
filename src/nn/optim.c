/* optim.c: SGD with momentum and Adam (PyTorch's conventions). */
#include "resnode/nn/optim.h"

#include <math.h>

const char *const RnOptimKindNames[] = {"sgd", "adam", NULL};

void RnOptimOptionsDefault(RnOptimOptions *opt)
{
  opt->kind = RN_OPTIM_ADAM;
  opt->lr = 1e-3;
  opt->momentum = 0.0;
  opt->weight_decay = 0.0;
  opt->beta1 = 0.9;
  opt->beta2 = 0.999;
  opt->eps = 1e-8;
}

PetscErrorCode RnOptimCreate(PetscInt n, const RnOptimOptions *opt, RnOptim *optim)
{
  RnOptim o;

  PetscFunctionBeginUser;
  PetscCall(PetscNew(&o));
  o->opt = *opt;
  o->n = n;
  o->nstate = opt->kind == RN_OPTIM_ADAM ? 2 * n : n;
  PetscCall(PetscCalloc1(PetscMax(o->nstate, 1), &o->state));
  *optim = o;
  PetscFunctionReturn(0);
}

PetscErrorCode RnOptimStep(RnOptim o, double lr_scale, double *theta, const double *grad)
{
  const double lr = o->opt.lr * lr_scale, wd = o->opt.weight_decay;

  PetscFunctionBeginUser;
  o->step++;
  if (o->opt.kind == RN_OPTIM_SGD) {
    double *v = o->state;
    const double mu = o->opt.momentum;
    for (PetscInt i = 0; i < o->n; i++) {
      double g = grad[i] + wd * theta[i];
      if (mu != 0.0) {
        v[i] = o->step == 1 ? g : mu * v[i] + g;
        g = v[i];
      }
      theta[i] -= lr * g;
    }
  } else {
    double *m = o->state, *v = o->state + o->n;
    const double b1 = o->opt.beta1, b2 = o->opt.beta2;
    const double c1 = 1.0 - pow(b1, (double)o->step), c2 = 1.0 - pow(b2, (double)o->step);
    for (PetscInt i = 0; i < o->n; i++) {
      double g = grad[i] + wd * theta[i];
      m[i] = b1 * m[i] + (1.0 - b1) * g;
      v[i] = b2 * v[i] + (1.0 - b2) * g * g;
      theta[i] -= lr * (m[i] / c1) / (sqrt(v[i] / c2) + o->opt.eps);
    }
  }
  PetscFunctionReturn(0);
}

PetscErrorCode RnOptimDestroy(RnOptim *optim)
{
  PetscFunctionBeginUser;
  if (!optim || !*optim) PetscFunctionReturn(0);
  PetscCall(PetscFree((*optim)->state));
  PetscCall(PetscFree(*optim));
  *optim = NULL;
  PetscFunctionReturn(0);
}

PetscErrorCode RnOptimOptionsFromConfig(RnConfig cfg, const char *prefix, RnOptimOptions *opt)
{
  char key[128];
  int kind;

  PetscFunctionBeginUser;
  RnOptimOptionsDefault(opt);
#define KEY(name) (PetscSNPrintf(key, sizeof key, "%s.%s", prefix, name), key)
  PetscCall(RnConfigGetChoice(cfg, KEY("optimizer"), "adam", RnOptimKindNames, &kind));
  opt->kind = (RnOptimKind)kind;
  PetscCall(RnConfigGetReal(cfg, KEY("lr"), opt->lr, 0.0, 1e3, &opt->lr));
  PetscCall(RnConfigGetReal(cfg, KEY("weight_decay"), 0.0, 0.0, 1e3, &opt->weight_decay));
  if (opt->kind == RN_OPTIM_SGD) {
    PetscCall(RnConfigGetReal(cfg, KEY("momentum"), 0.0, 0.0, 0.999999, &opt->momentum));
  } else {
    PetscCall(RnConfigGetReal(cfg, KEY("beta1"), opt->beta1, 0.0, 0.999999, &opt->beta1));
    PetscCall(RnConfigGetReal(cfg, KEY("beta2"), opt->beta2, 0.0, 0.999999999, &opt->beta2));
    PetscCall(RnConfigGetReal(cfg, KEY("eps"), opt->eps, 0.0, 1.0, &opt->eps));
  }
#undef KEY
  PetscFunctionReturn(0);
}
