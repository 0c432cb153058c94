/* ode.c: options, creation and destruction of the neural ODE (see ode.h; the
 * solves are in forward.c, adjoint.c, schedules.c and backsolve.c). */
#include "odeimpl.h"

#include <math.h>
#include <string.h>

const char *const RnAdjointModeNames[] = {"full", "uniform", "binomial", "backsolve", NULL};

/* The defaults, one table: RnOdeOptionsDefault and the config keys ode.* both
 * start from it. The solver is the user's name (RnOde_SolverTSRKName maps it). */
static const RnOdeOptions rn_ode_defaults = {
  .solver = "rk4",
  .adaptive = PETSC_FALSE,
  .steps = 100,
  .rtol = 1e-7,
  .atol = 1e-9,
  .dt0 = 0.0, /* adaptive: T / 100 */
  .max_steps = 100000,
  .adjoint = RN_ADJOINT_FULL,
  .checkpoints = 0,
  .tape_cache_mb = 1024,
};

void RnOdeOptionsDefault(RnOdeOptions *opt) { *opt = rn_ode_defaults; }

/* Users write the names they know; TSRK wants its own. */
const char * RnOde_SolverTSRKName(const char *solver)
{
  if (!strcmp(solver, "euler")) return TSRK1FE;
  if (!strcmp(solver, "rk4")) return TSRK4;
  if (!strcmp(solver, "dopri5")) return TSRK5DP;
  if (!strcmp(solver, "bosh3")) return TSRK3BS;
  return solver;
}

PetscErrorCode RnOdeCreate(MPI_Comm comm, RnNet field, int nobs, const double *tobs, RnOde *ode)
{
  RnOde o;

  PetscFunctionBeginUser;
  PetscCheck(field->setup, comm, PETSC_ERR_ARG_WRONGSTATE, "RnNetSetUp the vector field first");
  PetscCheck(RnShapeSize(field->in) == RnShapeSize(field->out), comm, PETSC_ERR_ARG_SIZ, "a vector field maps R^d to R^d; this one maps %d to %d entries",
             (int)RnShapeSize(field->in), (int)RnShapeSize(field->out));
  PetscCheck(nobs >= 1, comm, PETSC_ERR_ARG_OUTOFRANGE, "need at least one observation time");
  for (int i = 0; i < nobs; i++) {
    PetscCheck(tobs[i] >= 0.0 && (i == 0 || tobs[i] > tobs[i - 1]), comm, PETSC_ERR_ARG_OUTOFRANGE, "observation times must be >= 0 and increasing (t[%d] = %g)", i, tobs[i]);
  }
  PetscCheck(tobs[nobs - 1] > 0.0, comm, PETSC_ERR_ARG_OUTOFRANGE, "the final time must be > 0");
  PetscCall(PetscNew(&o));
  o->comm = comm;
  o->field = field;
  o->dim = (int)RnShapeSize(field->in);
  o->nparams = field->nparams;
  o->nobs = nobs;
  PetscCall(PetscMalloc2(nobs, &o->tobs, nobs, &o->obs_step));
  PetscCall(PetscArraycpy(o->tobs, tobs, nobs));
  RnOdeOptionsDefault(&o->opt);
  o->record = PETSC_TRUE;
  *ode = o;
  PetscFunctionReturn(0);
}

PetscErrorCode RnOdeSetOptions(RnOde ode, const RnOdeOptions *opt)
{
  PetscFunctionBeginUser;
  ode->opt = *opt;
  PetscFunctionReturn(0);
}

PetscErrorCode RnOdeSetRecord(RnOde ode, PetscBool record)
{
  PetscFunctionBeginUser;
  ode->record = record;
  PetscFunctionReturn(0);
}

PetscErrorCode RnOde_EnsureWorkspace(RnOde ode, int batch)
{
  PetscFunctionBeginUser;
  if (batch <= ode->tape_batch && ode->tape_f) PetscFunctionReturn(0);
  PetscCall(PetscFree3(ode->tape_f, ode->tape_j, ode->jac_x));
  PetscCall(PetscMalloc3((size_t)PetscMax(batch, 1) * ode->field->tape_per_sample, &ode->tape_f, (size_t)PetscMax(batch, 1) * ode->field->tape_per_sample, &ode->tape_j,
                         (size_t)PetscMax(batch, 1) * ode->dim, &ode->jac_x));
  ode->tape_batch = batch;
  PetscFunctionReturn(0);
}


PetscErrorCode RnOde_DestroyTS(RnOde ode)
{
  PetscFunctionBeginUser;
  PetscCall(TSDestroy(&ode->ts));
  PetscCall(TSDestroy(&ode->ts_replay));
  PetscCall(TSDestroy(&ode->ts_advance));
  PetscCall(MatDestroy(&ode->J));
  PetscCall(VecDestroy(&ode->U));
  PetscFunctionReturn(0);
}


/* TSSetFromOptions with a bad -ts_* option as an input error (not a traceback). */
PetscErrorCode RnOde_TSFromOptionsChecked(RnOde ode, TS ts)
{
  PetscErrorCode err;
  const char *generic = NULL;
  char *specific = NULL;

  PetscFunctionBeginUser;
  PetscCall(PetscPushErrorHandler(PetscReturnErrorHandler, NULL));
  err = TSSetFromOptions(ts);
  PetscCall(PetscPopErrorHandler());
  if (err) {
    PetscErrorMessage(err, &generic, &specific);
    RnInputError(ode->comm, "a PETSc option for the ODE solver: %s%s%s (see -help for the TS options)", generic ? generic : "error", specific ? ": " : "", specific ? specific : "");
  }
  PetscFunctionReturn(0);
}


PetscErrorCode RnOdeGetStats(RnOde ode, RnOdeStats *stats)
{
  PetscFunctionBeginUser;
  *stats = ode->stats;
  PetscFunctionReturn(0);
}

PetscErrorCode RnOdeDestroy(RnOde *ode)
{
  PetscFunctionBeginUser;
  if (!ode || !*ode) PetscFunctionReturn(0);
  PetscCall(RnOde_DestroyTS(*ode));
  PetscCall(PetscFree2((*ode)->tobs, (*ode)->obs_step));
  PetscCall(PetscFree((*ode)->step_times));
  PetscCall(PetscFree((*ode)->theta));
  PetscCall(PetscFree2((*ode)->slots, (*ode)->slot_step));
  PetscCall(PetscFree3((*ode)->tape_f, (*ode)->tape_j, (*ode)->jac_x));
  for (int i = 0; i < (*ode)->tc_alloc; i++) PetscCall(PetscFree((*ode)->tc_tape[i]));
  PetscCall(PetscFree2((*ode)->tc_tape, (*ode)->tc_hash));
  PetscCall(PetscFree(*ode));
  *ode = NULL;
  PetscFunctionReturn(0);
}

/* TSRK types of PETSc 3.18 and the names users know them by. */
int RnOdeStagesPerStep(const RnOdeOptions *opt)
{
  /* TSRK's stage counts (the first-same-as-last stage of 3bs and 5dp counted) */
  static const struct {
    const char *name;
    int stages;
  } stages[] = {{"euler", 1}, {"1fe", 1}, {"2a", 2}, {"2b", 2}, {"rk4", 4}, {"4", 4}, {"3", 3}, {"bosh3", 4}, {"3bs", 4}, {"dopri5", 7}, {"5dp", 7}, {"5f", 6}, {"5bs", 8}, {"6vr", 9}, {"7vr", 10}, {"8vr", 13}};
  for (size_t i = 0; i < sizeof stages / sizeof stages[0]; i++)
    if (!strcmp(opt->solver, stages[i].name)) return stages[i].stages;
  return 4;
}

double RnOdeFieldEvaluationsPerPass(const RnOdeOptions *opt) { return (double)RnOdeStagesPerStep(opt) * (opt->adaptive ? RN_ODE_ADAPTIVE_STEPS_GUESS : opt->steps); }

static const char *const rn_solver_names[] = {"euler", "rk4", "dopri5", "bosh3", "1fe", "2a", "2b", "3", "3bs", "4", "5f", "5dp", "5bs", "6vr", "7vr", "8vr", NULL};
static const char *const rn_schedule_names[] = {"none", "uniform", "binomial", NULL};
static const char *const rn_adjoint_names[] = {"discrete", "backsolve", NULL};

PetscErrorCode RnOdeOptionsFromConfig(RnConfig cfg, const char *prefix, RnOdeOptions *opt)
{
  char key[128];
  int solver, schedule, adjoint;

  PetscFunctionBeginUser;
  RnOdeOptionsDefault(opt);
#define KEY(name) (PetscSNPrintf(key, sizeof key, "%s.%s", prefix, name), key)
  PetscCall(RnConfigGetChoice(cfg, KEY("solver"), rn_ode_defaults.solver, rn_solver_names, &solver));
  PetscCall(PetscStrncpy(opt->solver, rn_solver_names[solver], sizeof opt->solver));
  PetscCall(RnConfigGetBool(cfg, KEY("adaptive"), rn_ode_defaults.adaptive, &opt->adaptive));
  PetscCall(RnConfigGetInt(cfg, KEY("steps"), rn_ode_defaults.steps, 1, 100000000, &opt->steps));
  {
    /* adaptivity needs an embedded error estimate */
    const char *fixed_only[] = {"euler", "rk4", "1fe", "4", "3", "2a"};
    for (size_t i = 0; i < sizeof fixed_only / sizeof fixed_only[0]; i++)
      if (opt->adaptive && !strcmp(opt->solver, fixed_only[i]))
        PetscCall(RnConfigError(cfg, KEY("adaptive"), "solver \"%s\" has no error estimate; use dopri5 (5dp), bosh3 (3bs), 5f, 5bs, 2b, 6vr, 7vr or 8vr for adaptive steps", opt->solver));
  }
  PetscCall(RnConfigGetReal(cfg, KEY("rtol"), rn_ode_defaults.rtol, 1e-15, 1.0, &opt->rtol));
  PetscCall(RnConfigGetReal(cfg, KEY("atol"), rn_ode_defaults.atol, 1e-18, 1.0, &opt->atol));
  PetscCall(RnConfigGetReal(cfg, KEY("dt0"), rn_ode_defaults.dt0, 0.0, 1e6, &opt->dt0));
  PetscCall(RnConfigGetInt(cfg, KEY("max_steps"), rn_ode_defaults.max_steps, 1, 1000000000, &opt->max_steps));
  PetscCall(RnConfigGetChoice(cfg, KEY("adjoint"), "discrete", rn_adjoint_names, &adjoint));
  PetscCall(RnConfigGetChoice(cfg, KEY("checkpoint_schedule"), "none", rn_schedule_names, &schedule));
  PetscCall(RnConfigGetInt(cfg, KEY("checkpoints"), rn_ode_defaults.checkpoints, 0, 100000000, &opt->checkpoints));
  PetscCall(RnConfigGetInt(cfg, KEY("tape_cache_mb"), rn_ode_defaults.tape_cache_mb, 0, 1 << 24, &opt->tape_cache_mb));
  opt->adjoint = adjoint == 1 ? RN_ADJOINT_BACKSOLVE : (RnAdjointMode)schedule;
  if (schedule != 0 && opt->checkpoints < 1) PetscCall(RnConfigError(cfg, KEY("checkpoints"), "checkpoint_schedule \"%s\" needs checkpoints >= 1", rn_schedule_names[schedule]));
#undef KEY
  PetscFunctionReturn(0);
}
