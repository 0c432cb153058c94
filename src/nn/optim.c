/* optim.c: SGD with momentum and Adam (PyTorch's conventions). */
#include "resnode/core/profile.h"
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

PetscInt RnOptimStateSize(const RnOptimOptions *opt, PetscInt n)
{
  /* Adam keeps two moments per parameter, SGD one velocity */
  return opt->kind == RN_OPTIM_ADAM ? 2 * n : n;
}

PetscErrorCode RnOptimCreate(PetscInt n, const RnOptimOptions *opt, RnOptim *optim)
{
  RnOptim o;

  PetscFunctionBeginUser;
  PetscCall(PetscNew(&o));
  o->opt = *opt;
  o->n = n;
  o->nstate = RnOptimStateSize(opt, n);
  PetscCall(PetscCalloc1(PetscMax(o->nstate, 1), &o->state));
  *optim = o;
  PetscFunctionReturn(0);
}

PetscErrorCode RnOptimStep(RnOptim o, double lr_scale, double *theta, const double *grad)
{
  const double lr = o->opt.lr * lr_scale, wd = o->opt.weight_decay;

  PetscFunctionBeginUser;
  PetscCall(RnEventBegin(RN_EV_OPTIMIZER));
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
  PetscCall(RnEventEnd(RN_EV_OPTIMIZER));
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

const char *const RnMetricKindNames[] = {"val_loss", "val_acc", "train_loss", "train_acc", NULL};

PetscErrorCode RnLrScheduleFromConfig(RnConfig cfg, const char *prefix, RnLrSchedule *s)
{
  char key[128];
  int nfactors, metric;

  PetscFunctionBeginUser;
  memset(s, 0, sizeof *s);
#define KEY(name) (PetscSNPrintf(key, sizeof key, "%s.%s", prefix, name), key)
  /* the keys this replaced */
  if (RnConfigHas(cfg, KEY("lr_decay"))) PetscCall(RnConfigError(cfg, key, "replaced by %s.lr_schedule = { epochs = [...]; factors = [...]; } (the factor of lr after each epoch)", prefix));
  if (RnConfigHas(cfg, KEY("lr_decay_epochs"))) PetscCall(RnConfigError(cfg, key, "replaced by %s.lr_schedule = { epochs = [...]; factors = [...]; } (the factor of lr after each epoch)", prefix));
  PetscCall(RnConfigGetIntArray(cfg, KEY("lr_schedule.epochs"), 0, NULL, 1, 1000000, 0, 32, &s->nsteps, s->epochs));
  PetscCall(RnConfigGetRealArray(cfg, KEY("lr_schedule.factors"), 0, NULL, 0.0, 1e6, 0, 32, &nfactors, s->factors));
  if (nfactors != s->nsteps) PetscCall(RnConfigError(cfg, KEY("lr_schedule.factors"), "%d factors for %d epochs: give one factor per epoch of %s.lr_schedule.epochs", nfactors, s->nsteps, prefix));
  for (int i = 1; i < s->nsteps; i++)
    if (s->epochs[i] <= s->epochs[i - 1]) PetscCall(RnConfigError(cfg, KEY("lr_schedule.epochs"), "must increase: %d follows %d", s->epochs[i], s->epochs[i - 1]));
  PetscCall(RnConfigGetBool(cfg, KEY("plateau.enable"), PETSC_FALSE, &s->plateau));
  PetscCall(RnConfigGetChoice(cfg, KEY("plateau.metric"), "val_loss", RnMetricKindNames, &metric));
  s->metric = (RnMetricKind)metric;
  PetscCall(RnConfigGetReal(cfg, KEY("plateau.factor"), sqrt(0.1), 1e-12, 1.0, &s->plateau_factor));
  PetscCall(RnConfigGetInt(cfg, KEY("plateau.patience"), 5, 1, 1000000, &s->patience));
  PetscCall(RnConfigGetReal(cfg, KEY("plateau.min_lr"), 0.5e-6, 0.0, 1e3, &s->min_lr));
  PetscCall(RnConfigGetReal(cfg, KEY("plateau.min_delta"), 1e-4, 0.0, 1e6, &s->min_delta));
#undef KEY
  PetscFunctionReturn(0);
}

double RnLrScheduleFactor(const RnLrSchedule *s, int epoch)
{
  double f = 1.0;
  for (int i = 0; i < s->nsteps; i++)
    if (s->epochs[i] < epoch) f = s->factors[i];
  return f;
}

void RnPlateauStart(RnPlateauState *st)
{
  st->scale = 1.0;
  st->best = NAN; /* none yet */
  st->wait = 0;
}

void RnPlateauUpdate(const RnLrSchedule *s, RnPlateauState *st, double lr, int epoch, double value, PetscBool *reduced)
{
  const PetscBool higher_is_better = s->metric == RN_METRIC_VAL_ACC || s->metric == RN_METRIC_TRAIN_ACC;
  const PetscBool improved = isnan(st->best) || (higher_is_better ? value > st->best + s->min_delta : value < st->best - s->min_delta);

  *reduced = PETSC_FALSE;
  if (!s->plateau) return;
  if (improved) {
    st->best = value;
    st->wait = 0;
    return;
  }
  st->wait += 1;
  if (st->wait >= s->patience) {
    const double current = RnLrAt(s, st, lr, epoch), next = PetscMax(current * s->plateau_factor, s->min_lr);
    if (current > s->min_lr && current > 0) {
      st->scale *= next / current;
      *reduced = PETSC_TRUE;
    }
    st->wait = 0;
  }
}

double RnLrAt(const RnLrSchedule *s, const RnPlateauState *st, double lr, int epoch) { return lr * RnLrScheduleFactor(s, epoch) * (st ? st->scale : 1.0); }
