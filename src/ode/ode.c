/* ode.c: neural ODE forward and discrete adjoint with PETSc TS (see ode.h). */
#include "resnode/ode/ode.h"

#include <math.h>
#include <stdint.h>
#include <string.h>

const char *const RnAdjointModeNames[] = {"full", "uniform", "binomial", "backsolve", NULL};

struct RnOde_s {
  MPI_Comm comm;
  RnNet field;
  int dim;          /* state size per sample */
  PetscInt nparams; /* field parameters */
  int nobs;
  double *tobs;
  RnOdeOptions opt;
  PetscBool record;

  /* the current forward pass */
  int batch;
  PetscInt nx;       /* local x entries: batch * dim */
  TS ts;
  Vec U;
  Mat J;
  double *xobs;      /* where the forward pass writes the observations */
  int next_obs;
  int *obs_step;     /* step number at which observation i was reached */
  int nsteps;
  double *step_times; /* t_0 .. t_nsteps */
  int step_capacity;
  PetscBool grid_fixed; /* steps follow step_times (fixed grid or replay) */
  PetscBool replaying;  /* a backward-pass recomputation: no bookkeeping in PostStep */
  int step_offset;      /* a replayed segment starts at this step of the forward pass */

  /* checkpointed adjoints */
  double *slots;        /* checkpoint states (x only: theta is constant) */
  int *slot_step;       /* uniform: the step each slot holds */
  int nslots, slots_used, max_slots_used;
  int record_steps_max; /* longest segment recorded in PETSc's memory trajectory */
  TS ts_replay, ts_advance;
  /* what the current ts was made for: it is reused while these stay the same */
  PetscInt ts_nx;
  PetscBool ts_fixed, ts_trajectory;
  /* the adjoint sweep under way: its steps' offset, the window of jumps */
  int adj_offset, adj_lo, adj_hi;
  PetscBool swept; /* the last recorded forward pass was followed by a full adjoint sweep */
  int swept_steps;
  const double *adj_dxobs;

  /* workspaces */
  double *theta;     /* the parameters of the current pass (the state's tail holds the same) */
  double *tape_f, *tape_j, *jac_x;
  int tape_batch;
  /* tape cache: the field's tape of every RHS evaluation of a recorded solve,
   * keyed by a hash of its input, so that the adjoint's linearisations at the
   * same stage values (PETSc hands back the stored ones bitwise) need no
   * second forward evaluation; a miss falls back to recomputing */
  PetscBool tc_recording;
  double **tc_tape;
  uint64_t *tc_hash;
  int tc_n, tc_alloc, tc_max;
  size_t tc_len;     /* doubles per cached tape */
  double *jac_tape;  /* the tape the transposed products use: tape_j or a cached one */
  RnOdeStats stats;
  long rhs_count;
};

void RnOdeOptionsDefault(RnOdeOptions *opt)
{
  memset(opt, 0, sizeof *opt);
  strcpy(opt->solver, "4");
  opt->adaptive = PETSC_FALSE;
  opt->steps = 100;
  opt->rtol = 1e-7;
  opt->atol = 1e-9;
  opt->dt0 = 0.0;
  opt->max_steps = 100000;
  opt->adjoint = RN_ADJOINT_FULL;
  opt->checkpoints = 0;
  opt->tape_cache_mb = 1024;
}

/* Users write the names they know; TSRK wants its own. */
static const char *SolverTSRKName(const char *solver)
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

static PetscErrorCode EnsureWorkspace(RnOde ode, int batch)
{
  PetscFunctionBeginUser;
  if (batch <= ode->tape_batch && ode->tape_f) PetscFunctionReturn(0);
  PetscCall(PetscFree3(ode->tape_f, ode->tape_j, ode->jac_x));
  PetscCall(PetscMalloc3((size_t)PetscMax(batch, 1) * ode->field->tape_per_sample, &ode->tape_f, (size_t)PetscMax(batch, 1) * ode->field->tape_per_sample, &ode->tape_j,
                         (size_t)PetscMax(batch, 1) * ode->dim, &ode->jac_x));
  ode->tape_batch = batch;
  PetscFunctionReturn(0);
}

static PetscErrorCode PushStepTime(RnOde ode, double t)
{
  PetscFunctionBeginUser;
  if (ode->nsteps + 1 >= ode->step_capacity) {
    double *bigger;
    int cap = PetscMax(64, 2 * ode->step_capacity);
    PetscCall(PetscMalloc1(cap, &bigger));
    if (ode->step_times) PetscCall(PetscArraycpy(bigger, ode->step_times, ode->nsteps + 1));
    PetscCall(PetscFree(ode->step_times));
    ode->step_times = bigger;
    ode->step_capacity = cap;
  }
  ode->step_times[++ode->nsteps] = t;
  PetscFunctionReturn(0);
}

/* An empty step list that starts at t = 0. */
static PetscErrorCode ResetSteps(RnOde ode)
{
  PetscFunctionBeginUser;
  ode->nsteps = -1;
  PetscCall(PushStepTime(ode, 0.0));
  PetscFunctionReturn(0);
}

/* 64-bit hash of a state (all its bits) */
static uint64_t StateHash(const double *x, PetscInt n)
{
  uint64_t h = 0x9e3779b97f4a7c15ull;
  for (PetscInt i = 0; i < n; i++) {
    uint64_t w;
    memcpy(&w, &x[i], sizeof w);
    h = (h ^ w) * 0x100000001b3ull;
    h ^= h >> 29;
  }
  return h ^ (uint64_t)n;
}

/* Starts (or stops) keeping the tapes of the solve that follows. */
static PetscErrorCode TapeCacheReset(RnOde ode, PetscBool recording)
{
  const size_t len = (size_t)PetscMax(ode->batch, 1) * ode->field->tape_per_sample;

  PetscFunctionBeginUser;
  if (len != ode->tc_len) {
    for (int i = 0; i < ode->tc_alloc; i++) PetscCall(PetscFree(ode->tc_tape[i]));
    ode->tc_alloc = 0;
    ode->tc_len = len;
  }
  ode->tc_n = 0;
  ode->tc_recording = (PetscBool)(recording && ode->opt.tape_cache_mb > 0);
  ode->tc_max = (int)PetscMin((double)ode->opt.tape_cache_mb * 1048576.0 / (8.0 * (double)len), 1e6);
  PetscFunctionReturn(0);
}

/* The buffer the next RHS evaluation writes its tape to: a new cache entry
 * while recording and within budget, else the scratch tape. */
static PetscErrorCode TapeForEvaluation(RnOde ode, double **tape)
{
  PetscFunctionBeginUser;
  *tape = ode->tape_f;
  if (!ode->tc_recording || ode->tc_n >= ode->tc_max) PetscFunctionReturn(0);
  if (ode->tc_n == ode->tc_alloc) {
    double **tapes;
    uint64_t *hashes;
    const int cap = PetscMax(16, 2 * ode->tc_alloc);
    PetscCall(PetscCalloc2(cap, &tapes, cap, &hashes));
    if (ode->tc_alloc) {
      PetscCall(PetscArraycpy(tapes, ode->tc_tape, ode->tc_alloc));
      PetscCall(PetscArraycpy(hashes, ode->tc_hash, ode->tc_alloc));
    }
    PetscCall(PetscFree2(ode->tc_tape, ode->tc_hash));
    ode->tc_tape = tapes, ode->tc_hash = hashes;
    for (int i = ode->tc_alloc; i < cap; i++) ode->tc_tape[i] = NULL;
    ode->tc_alloc = cap;
  }
  if (!ode->tc_tape[ode->tc_n]) PetscCall(PetscMalloc1(ode->tc_len, &ode->tc_tape[ode->tc_n]));
  *tape = ode->tc_tape[ode->tc_n];
  PetscFunctionReturn(0);
}

/* F(t, [x; theta]) = [f_theta(x); 0] */
static PetscErrorCode OdeRHS(TS ts, PetscReal t, Vec U, Vec F, void *ctx)
{
  RnOde ode = (RnOde)ctx;
  const PetscScalar *u;
  PetscScalar *f;
  double *tape;

  PetscFunctionBeginUser;
  PetscCall(VecGetArrayRead(U, &u));
  PetscCall(VecGetArray(F, &f));
  PetscCall(TapeForEvaluation(ode, &tape));
  PetscCall(RnNetForward(ode->field, ode->batch, ode->theta, u, f, tape));
  if (tape != ode->tape_f) ode->tc_hash[ode->tc_n++] = StateHash(u, ode->nx);
  PetscCall(PetscArrayzero(f + ode->nx, ode->nparams));
  PetscCall(VecRestoreArray(F, &f));
  PetscCall(VecRestoreArrayRead(U, &u));
  ode->rhs_count++;
  PetscFunctionReturn(0);
}

/* The Jacobian is a shell: linearising means the field's tape at U for the
 * transposed products: the one kept from the forward evaluation at the same
 * state, or a new forward evaluation. Hit or miss is agreed by the ranks (a
 * field may hold collectives, batch norm). */
static PetscErrorCode OdeRHSJacobian(TS ts, PetscReal t, Vec U, Mat A, Mat B, void *ctx)
{
  RnOde ode = (RnOde)ctx;
  const PetscScalar *u;
  int hit = -1, all_hit, local;

  PetscFunctionBeginUser;
  PetscCall(VecGetArrayRead(U, &u));
  PetscCall(PetscArraycpy(ode->jac_x, u, ode->nx + 0));
  PetscCall(VecRestoreArrayRead(U, &u));
  if (ode->tc_n > 0) {
    const uint64_t h = StateHash(ode->jac_x, ode->nx);
    for (int i = ode->tc_n - 1; i >= 0 && hit < 0; i--)
      if (ode->tc_hash[i] == h) hit = i;
  }
  local = hit >= 0;
  PetscCallMPI(MPI_Allreduce(&local, &all_hit, 1, MPI_INT, MPI_MIN, ode->comm));
  if (all_hit) ode->jac_tape = ode->tc_tape[hit];
  else {
    PetscCall(RnNetForward(ode->field, ode->batch, ode->theta, ode->jac_x, NULL, ode->tape_j));
    ode->jac_tape = ode->tape_j;
    ode->rhs_count++;
  }
  PetscFunctionReturn(0);
}

/* The augmented Jacobian is [[J_x, J_theta], [0, 0]]; its transpose maps
 * [v_x; v_theta] to [J_x^T v_x; J_theta^T v_x]. */
static PetscErrorCode OdeJacobianMultTranspose(Mat A, Vec V, Vec Y)
{
  RnOde ode;
  const PetscScalar *v;
  PetscScalar *y;

  PetscFunctionBeginUser;
  PetscCall(MatShellGetContext(A, &ode));
  PetscCall(VecGetArrayRead(V, &v));
  PetscCall(VecGetArray(Y, &y));
  PetscCall(PetscArrayzero(y + ode->nx, ode->nparams));
  PetscCall(RnNetBackward(ode->field, ode->batch, ode->theta, ode->jac_x, v, y, y + ode->nx, ode->jac_tape));
  PetscCall(VecRestoreArray(Y, &y));
  PetscCall(VecRestoreArrayRead(V, &v));
  ode->stats.vjp++;
  PetscFunctionReturn(0);
}

static PetscErrorCode CopyObservation(RnOde ode, Vec U, int i)
{
  const PetscScalar *u;

  PetscFunctionBeginUser;
  PetscCall(VecGetArrayRead(U, &u));
  PetscCall(PetscArraycpy(ode->xobs + (size_t)i * ode->nx, u, ode->nx));
  PetscCall(VecRestoreArrayRead(U, &u));
  PetscFunctionReturn(0);
}

/* lambda_x += dL/dx(t_i) */
static PetscErrorCode AddJump(RnOde ode, Vec lambda, const double *dxobs, int i)
{
  PetscScalar *l;

  PetscFunctionBeginUser;
  PetscCall(VecGetArray(lambda, &l));
  for (PetscInt j = 0; j < ode->nx; j++) l[j] += dxobs[(size_t)i * ode->nx + j];
  PetscCall(VecRestoreArray(lambda, &l));
  PetscFunctionReturn(0);
}

/* Uniform checkpoints: the state after step k, appended (grown on demand). */
static PetscErrorCode StoreSlot(RnOde ode, Vec U, int k)
{
  const PetscScalar *u;

  PetscFunctionBeginUser;
  if (ode->slots_used == ode->nslots) {
    int cap = PetscMax(8, 2 * ode->nslots);
    double *bigger;
    int *steps;
    PetscCall(PetscMalloc2((size_t)cap * PetscMax(ode->nx, 1), &bigger, cap, &steps));
    if (ode->slots) {
      PetscCall(PetscArraycpy(bigger, ode->slots, (size_t)ode->slots_used * ode->nx));
      PetscCall(PetscArraycpy(steps, ode->slot_step, ode->slots_used));
    }
    PetscCall(PetscFree2(ode->slots, ode->slot_step));
    ode->slots = bigger;
    ode->slot_step = steps;
    ode->nslots = cap;
  }
  PetscCall(VecGetArrayRead(U, &u));
  PetscCall(PetscArraycpy(ode->slots + (size_t)ode->slots_used * ode->nx, u, ode->nx));
  PetscCall(VecRestoreArrayRead(U, &u));
  ode->slot_step[ode->slots_used++] = k;
  ode->max_slots_used = PetscMax(ode->max_slots_used, ode->slots_used);
  PetscFunctionReturn(0);
}

/* Steps end exactly on the observation times: on a fixed grid (which
 * contains them) or by clipping the adaptive proposal. */
static PetscErrorCode OdePreStep(TS ts)
{
  RnOde ode;
  PetscReal t, dt;
  PetscInt k;

  PetscFunctionBeginUser;
  PetscCall(TSGetApplicationContext(ts, &ode));
  PetscCall(TSGetTime(ts, &t));
  PetscCall(TSGetStepNumber(ts, &k));
  if (ode->grid_fixed) {
    k += ode->step_offset;
    PetscCheck(k < ode->nsteps, ode->comm, PETSC_ERR_PLIB, "fixed grid exhausted at step %d", (int)k);
    dt = ode->step_times[k + 1] - t;
  } else {
    double tnext = ode->tobs[ode->next_obs];
    PetscCall(TSGetTimeStep(ts, &dt));
    if (t + dt >= tnext - 1e-12 * PetscMax(1.0, fabs(tnext))) dt = tnext - t;
  }
  PetscCall(TSSetTimeStep(ts, dt));
  PetscFunctionReturn(0);
}

static PetscErrorCode OdePostStep(TS ts)
{
  RnOde ode;
  PetscReal t;
  PetscInt k;
  Vec U;

  PetscFunctionBeginUser;
  PetscCall(TSGetApplicationContext(ts, &ode));
  if (ode->replaying) PetscFunctionReturn(0);
  PetscCall(TSGetTime(ts, &t));
  PetscCall(TSGetStepNumber(ts, &k));
  PetscCall(TSGetSolution(ts, &U));
  if (!ode->grid_fixed) PetscCall(PushStepTime(ode, t));
  if (ode->record && ode->opt.adjoint == RN_ADJOINT_UNIFORM && k % ode->opt.checkpoints == 0) PetscCall(StoreSlot(ode, U, (int)k));
  while (ode->next_obs < ode->nobs && fabs(t - ode->tobs[ode->next_obs]) <= 1e-10 * PetscMax(1.0, fabs(ode->tobs[ode->next_obs]))) {
    if (ode->xobs) PetscCall(CopyObservation(ode, U, ode->next_obs));
    ode->obs_step[ode->next_obs] = (int)k;
    ode->next_obs++;
  }
  /* PETSc would take a tiny extra step if rounding left t an ulp short of T */
  if (ode->next_obs == ode->nobs) PetscCall(TSSetConvergedReason(ts, TS_CONVERGED_TIME));
  PetscFunctionReturn(0);
}

/* A fixed grid: nsteps uniform steps on [0, T] merged with the observation times. */
static PetscErrorCode BuildFixedGrid(RnOde ode)
{
  const double T = ode->tobs[ode->nobs - 1];
  const double h = T / ode->opt.steps;
  int next = 0;

  PetscFunctionBeginUser;
  PetscCall(ResetSteps(ode));
  while (next < ode->nobs && ode->tobs[next] <= 0.0) next++;
  for (int k = 1; k <= ode->opt.steps; k++) {
    double tk = k == ode->opt.steps ? T : k * h;
    /* observation times strictly inside (t_{k-1}, t_k) become step ends of their own */
    while (next < ode->nobs && ode->tobs[next] < tk - 1e-10 * PetscMax(1.0, T)) PetscCall(PushStepTime(ode, ode->tobs[next++]));
    if (next < ode->nobs && fabs(ode->tobs[next] - tk) <= 1e-10 * PetscMax(1.0, T)) tk = ode->tobs[next++];
    PetscCall(PushStepTime(ode, tk));
  }
  PetscFunctionReturn(0);
}

static PetscErrorCode DestroyTS(RnOde ode)
{
  PetscFunctionBeginUser;
  PetscCall(TSDestroy(&ode->ts));
  PetscCall(TSDestroy(&ode->ts_replay));
  PetscCall(TSDestroy(&ode->ts_advance));
  PetscCall(MatDestroy(&ode->J));
  PetscCall(VecDestroy(&ode->U));
  PetscFunctionReturn(0);
}

static PetscErrorCode JumpMonitor(TS ts, PetscInt k, PetscReal t, Vec u, PetscInt numcost, Vec *lambda, Vec *mu, void *ctx);

static PetscErrorCode SetMemoryTrajectory(TS ts)
{
  TSTrajectory tj;

  PetscFunctionBeginUser;
  PetscCall(TSSetSaveTrajectory(ts));
  PetscCall(TSGetTrajectory(ts, &tj));
  PetscCall(TSTrajectorySetType(tj, ts, TSTRAJECTORYMEMORY));
  PetscFunctionReturn(0);
}

/* TSSetFromOptions with a bad -ts_* option as an input error (not a traceback). */
static PetscErrorCode TSFromOptionsChecked(RnOde ode, TS ts)
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

/* A TS on the augmented state. fixed: steps follow ode->step_times (from
 * step_offset on); otherwise adaptive with zero tolerance weight on the theta
 * copies. New TS objects for every forward pass: PETSc 3.18's memory
 * trajectory does not survive reuse across solves of different lengths, and
 * creation is cheap next to a solve. */
static PetscErrorCode NewTS(RnOde ode, PetscBool fixed, PetscBool save_trajectory, TS *tsp)
{
  TS ts;
  TSAdapt adapt;
  const double T = ode->tobs[ode->nobs - 1];
  const PetscInt nlocal = ode->nx + ode->nparams;

  PetscFunctionBeginUser;
  PetscCall(TSCreate(ode->comm, &ts));
  PetscCall(TSSetApplicationContext(ts, ode));
  PetscCall(TSSetProblemType(ts, TS_NONLINEAR));
  PetscCall(TSSetType(ts, TSRK));
  PetscCall(TSRKSetType(ts, SolverTSRKName(ode->opt.solver)));
  PetscCall(TSSetRHSFunction(ts, NULL, OdeRHS, ode));
  PetscCall(TSSetRHSJacobian(ts, ode->J, ode->J, OdeRHSJacobian, ode));
  PetscCall(TSSetTime(ts, 0.0));
  PetscCall(TSSetStepNumber(ts, 0));
  PetscCall(TSSetMaxTime(ts, T));
  PetscCall(TSSetExactFinalTime(ts, TS_EXACTFINALTIME_MATCHSTEP));
  PetscCall(TSGetAdapt(ts, &adapt));
  if (fixed) {
    PetscCall(TSAdaptSetType(adapt, TSADAPTNONE));
    PetscCall(TSSetMaxSteps(ts, ode->nsteps));
    PetscCall(TSSetTimeStep(ts, ode->step_times[1] - ode->step_times[0]));
  } else {
    Vec vatol, vrtol;
    PetscScalar *va, *vr;
    PetscCall(TSAdaptSetType(adapt, TSADAPTBASIC));
    PetscCall(TSSetMaxSteps(ts, ode->opt.max_steps));
    PetscCall(TSSetTimeStep(ts, ode->opt.dt0 > 0 ? ode->opt.dt0 : T / 100.0));
    PetscCall(VecDuplicate(ode->U, &vatol));
    PetscCall(VecDuplicate(ode->U, &vrtol));
    PetscCall(VecGetArray(vatol, &va));
    PetscCall(VecGetArray(vrtol, &vr));
    for (PetscInt i = 0; i < nlocal; i++) {
      va[i] = i < ode->nx ? ode->opt.atol : 0.0;
      vr[i] = i < ode->nx ? ode->opt.rtol : 0.0;
    }
    PetscCall(VecRestoreArray(vatol, &va));
    PetscCall(VecRestoreArray(vrtol, &vr));
    PetscCall(TSSetTolerances(ts, PETSC_DECIDE, vatol, PETSC_DECIDE, vrtol));
    PetscCall(VecDestroy(&vatol));
    PetscCall(VecDestroy(&vrtol));
  }
  PetscCall(TSSetPreStep(ts, OdePreStep));
  PetscCall(TSSetPostStep(ts, OdePostStep));
  if (save_trajectory) {
    PetscCall(SetMemoryTrajectory(ts));
    PetscCall(TSAdjointMonitorSet(ts, JumpMonitor, ode, NULL));
  }
  /* PETSc's own -ts_* options still apply (to a TS without a prefix) */
  if (ode->opt.options_prefix[0]) PetscCall(TSSetOptionsPrefix(ts, ode->opt.options_prefix));
  PetscCall(TSFromOptionsChecked(ode, ts));
  *tsp = ts;
  PetscFunctionReturn(0);
}

/* Back to t = 0 for a new solve on the same TS: a fresh memory trajectory (the
 * old one breaks the next adjoint and is sized for the old step count), the
 * first step, the step limit. */
static PetscErrorCode RearmTS(RnOde ode, TS ts, PetscBool trajectory)
{
  PetscFunctionBeginUser;
  /* the memory trajectory can be used again when the last solve was swept
   * back by an adjoint and this one has as many steps on a uniform fixed grid
   * (no observation time splits a step); its stage vectors are then reused
   * instead of allocated step by step. PETSc sizes that trajectory's stack
   * from T / dt: a grid with steps of other sizes outgrows it, and reusing the
   * grown stack corrupts it (SIGSEGV in TSDestroy). */
  const PetscBool uniform = (PetscBool)(ode->grid_fixed && ode->nsteps == ode->opt.steps);
  if (trajectory && !(uniform && ode->swept && ode->swept_steps == ode->nsteps)) {
    PetscCall(TSResetTrajectory(ts));
    PetscCall(SetMemoryTrajectory(ts));
  }
  ode->swept = PETSC_FALSE;
  PetscCall(TSSetTime(ts, 0.0));
  PetscCall(TSSetStepNumber(ts, 0));
  PetscCall(TSSetMaxTime(ts, ode->tobs[ode->nobs - 1]));
  if (ode->grid_fixed) {
    PetscCall(TSSetMaxSteps(ts, ode->nsteps));
    PetscCall(TSSetTimeStep(ts, ode->step_times[1] - ode->step_times[0]));
  } else {
    PetscCall(TSSetMaxSteps(ts, ode->opt.max_steps));
    PetscCall(TSSetTimeStep(ts, ode->opt.dt0 > 0 ? ode->opt.dt0 : ode->tobs[ode->nobs - 1] / 100.0));
  }
  PetscCall(TSSetConvergedReason(ts, TS_CONVERGED_ITERATING));
  PetscFunctionReturn(0);
}

/* The augmented state vector and the shell Jacobian for this batch. */
static PetscErrorCode SetUpState(RnOde ode)
{
  const PetscInt nlocal = ode->nx + ode->nparams;

  PetscFunctionBeginUser;
  PetscCall(DestroyTS(ode));
  PetscCall(VecCreateMPI(ode->comm, nlocal, PETSC_DETERMINE, &ode->U));
  PetscCall(MatCreateShell(ode->comm, nlocal, nlocal, PETSC_DETERMINE, PETSC_DETERMINE, ode, &ode->J));
  PetscCall(MatShellSetOperation(ode->J, MATOP_MULT_TRANSPOSE, (void (*)(void))OdeJacobianMultTranspose));
  PetscFunctionReturn(0);
}

static PetscErrorCode SetStateVec(RnOde ode, Vec U, const double *x)
{
  PetscScalar *u;

  PetscFunctionBeginUser;
  PetscCall(VecGetArray(U, &u));
  PetscCall(PetscArraycpy(u, x, ode->nx));
  PetscCall(PetscArraycpy(u + ode->nx, ode->theta, ode->nparams));
  PetscCall(VecRestoreArray(U, &u));
  PetscFunctionReturn(0);
}

static PetscErrorCode CheckReason(RnOde ode)
{
  TSConvergedReason reason;
  PetscReal t;

  PetscFunctionBeginUser;
  PetscCall(TSGetConvergedReason(ode->ts, &reason));
  PetscCall(TSGetTime(ode->ts, &t));
  /* both outcomes are the same on every rank (the TS is collective) */
  if (reason < 0)
    RnCollectiveError(ode->comm, RN_ERR_NONFINITE, "ode: the solver failed at t = %g (%s): the vector field blows up; lower the learning rate, or tighten ode.rtol",
                      (double)t, TSConvergedReasons[reason]);
  if (ode->next_obs < ode->nobs)
    RnCollectiveError(ode->comm, RN_ERR_INPUT, "ode: the solver stopped at t = %g before T = %g after %d steps (ode.max_steps = %d); raise ode.max_steps or loosen ode.rtol",
                      (double)t, ode->tobs[ode->nobs - 1], ode->nsteps, ode->opt.max_steps);
  PetscFunctionReturn(0);
}

PetscErrorCode RnOdeForward(RnOde ode, int batch, const double *theta, const double *x0, double *xobs)
{
  /* only the full-trajectory adjoint records during the forward pass; the
   * checkpointed ones keep states of their own, backsolve needs none */
  const PetscBool trajectory = ode->record && ode->opt.adjoint == RN_ADJOINT_FULL;

  PetscFunctionBeginUser;
  ode->batch = batch;
  ode->nx = (PetscInt)batch * ode->dim;
  PetscCall(EnsureWorkspace(ode, batch));
  if (!ode->theta) PetscCall(PetscMalloc1(PetscMax(ode->nparams, 1), &ode->theta));
  PetscCall(PetscArraycpy(ode->theta, theta, ode->nparams));
  PetscCheck(ode->opt.adjoint == RN_ADJOINT_FULL || ode->opt.adjoint == RN_ADJOINT_BACKSOLVE || ode->opt.checkpoints >= 1, ode->comm, PETSC_ERR_ARG_OUTOFRANGE,
             "ode.checkpoints must be >= 1 for a checkpointed adjoint");
  ode->xobs = xobs;
  ode->next_obs = 0;
  ode->rhs_count = 0;
  ode->replaying = PETSC_FALSE;
  ode->step_offset = 0;
  ode->slots_used = 0;
  ode->max_slots_used = 0;
  ode->record_steps_max = 0;
  memset(&ode->stats, 0, sizeof ode->stats);
  ode->grid_fixed = ode->opt.adaptive ? PETSC_FALSE : PETSC_TRUE;
  if (ode->grid_fixed) PetscCall(BuildFixedGrid(ode));
  else PetscCall(ResetSteps(ode));
  if (ode->ts && ode->ts_nx == ode->nx && ode->ts_fixed == ode->grid_fixed && ode->ts_trajectory == trajectory) {
    /* the same kind of solve as last time: rearm the TS (creating one costs
     * more than a small solve, most of it in the options database) */
    PetscCall(RearmTS(ode, ode->ts, trajectory));
  } else {
    PetscCall(SetUpState(ode));
    PetscCall(NewTS(ode, ode->grid_fixed, trajectory, &ode->ts));
    ode->ts_nx = ode->nx, ode->ts_fixed = ode->grid_fixed, ode->ts_trajectory = trajectory;
  }
  PetscCall(SetStateVec(ode, ode->U, x0));
  if (ode->record && ode->opt.adjoint != RN_ADJOINT_FULL) {
    /* the initial state is the first checkpoint of every schedule */
    PetscCall(StoreSlot(ode, ode->U, 0));
  }
  /* observations at t = 0 are the initial state itself */
  while (ode->next_obs < ode->nobs && ode->tobs[ode->next_obs] <= 0.0) {
    if (xobs) PetscCall(CopyObservation(ode, ode->U, ode->next_obs));
    ode->obs_step[ode->next_obs++] = 0;
  }
  PetscCall(TapeCacheReset(ode, trajectory));
  PetscCall(TSSolve(ode->ts, ode->U));
  PetscCall(CheckReason(ode));
  ode->stats.steps = ode->nsteps;
  ode->stats.rhs_forward = ode->rhs_count;
  if (trajectory) ode->record_steps_max = ode->nsteps;
  PetscFunctionReturn(0);
}


/* Observation jumps during the adjoint sweep: PETSc calls the adjoint monitor
 * at every step k it reaches (k counted on the TS, from the start of the
 * recorded segment) before stepping back from it; the jumps of the
 * observations at steps in [adj_lo, adj_hi) are added there. One
 * TSAdjointSolve per segment instead of one per observation interval: each
 * call costs option-database look-ups that outweigh small solves. */
static PetscErrorCode JumpMonitor(TS ts, PetscInt k, PetscReal t, Vec u, PetscInt numcost, Vec *lambda, Vec *mu, void *ctx)
{
  RnOde ode = (RnOde)ctx;
  const int step = ode->adj_offset + (int)k;

  PetscFunctionBeginUser;
  if (step < ode->adj_lo || step >= ode->adj_hi) PetscFunctionReturn(0);
  for (int i = 0; i < ode->nobs; i++)
    if (ode->obs_step[i] == step) PetscCall(AddJump(ode, lambda[0], ode->adj_dxobs, i));
  PetscFunctionReturn(0);
}

/* The adjoint from step b down to step a on a TS whose trajectory holds
 * steps a..b (numbered from 0 = a), adding the jumps of the observations at
 * steps a <= s < b (those at b were added by the caller or the previous
 * segment). */
static PetscErrorCode AdjointRange(RnOde ode, TS ts, int a, int b, const double *dxobs, Vec lambda)
{
  PetscFunctionBeginUser;
  ode->adj_offset = a, ode->adj_lo = a, ode->adj_hi = b, ode->adj_dxobs = dxobs;
  if (b > a) {
    PetscCall(TSAdjointSetSteps(ts, b - a));
    PetscCall(TSAdjointSolve(ts));
  } else {
    for (int i = 0; i < ode->nobs; i++)
      if (ode->obs_step[i] == a) PetscCall(AddJump(ode, lambda, dxobs, i));
  }
  PetscFunctionReturn(0);
}

/* Recompute steps a..b from the state x_a, recording them when ts saves its
 * trajectory; the final state is left in ode->U. */
static PetscErrorCode Replay(RnOde ode, TS ts, int a, int b, const double *x_a, PetscBool record)
{
  PetscFunctionBeginUser;
  if (record) {
    PetscCall(TSResetTrajectory(ts));
    PetscCall(SetMemoryTrajectory(ts));
    ode->record_steps_max = PetscMax(ode->record_steps_max, b - a);
  }
  ode->step_offset = a;
  PetscCall(TSSetTime(ts, ode->step_times[a]));
  PetscCall(TSSetStepNumber(ts, 0));
  PetscCall(TSSetMaxSteps(ts, b - a));
  PetscCall(TSSetTimeStep(ts, ode->step_times[a + 1] - ode->step_times[a]));
  PetscCall(SetStateVec(ode, ode->U, x_a));
  PetscCall(TapeCacheReset(ode, record));
  PetscCall(TSSolve(ts, ode->U));
  PetscFunctionReturn(0);
}

static PetscErrorCode ReplayAndAdjoint(RnOde ode, int a, int b, const double *x_a, const double *dxobs, Vec lambda)
{
  PetscFunctionBeginUser;
  PetscCall(Replay(ode, ode->ts_replay, a, b, x_a, PETSC_TRUE));
  PetscCall(AdjointRange(ode, ode->ts_replay, a, b, dxobs, lambda));
  PetscFunctionReturn(0);
}

/* beta(c, r) = C(c + r, c): the most steps c checkpoints reverse with r sweeps. */
static double Beta(int c, int r)
{
  double v = 1.0;
  for (int i = 1; i <= c; i++) v = v * (r + i) / i;
  return v;
}

/* Revolve-style reversal of steps a..b with the state at a in slot
 * slot_a and c free slots (Griewank's binomial schedule, offline: the
 * number of steps is known once the forward pass is done). */
static PetscErrorCode ReverseBinomial(RnOde ode, int a, int b, int slot_a, int c, const double *dxobs, Vec lambda)
{
  const int n = b - a;
  int r = 0, m, slot_m;
  const PetscScalar *u;

  PetscFunctionBeginUser;
  if (n <= 1 || c == 0) {
    /* a leaf: one step (or, with no slot left, the whole range) recorded */
    PetscCall(ReplayAndAdjoint(ode, a, b, ode->slots + (size_t)slot_a * ode->nx, dxobs, lambda));
    PetscFunctionReturn(0);
  }
  while (Beta(c, r) < n) r++;
  m = a + (int)PetscMin(Beta(c, r - 1), (double)(n - 1));
  if (m <= a) m = a + 1;
  /* advance to m and keep its state */
  PetscCall(Replay(ode, ode->ts_advance, a, m, ode->slots + (size_t)slot_a * ode->nx, PETSC_FALSE));
  slot_m = ode->slots_used++;
  ode->max_slots_used = PetscMax(ode->max_slots_used, ode->slots_used);
  PetscCall(VecGetArrayRead(ode->U, &u));
  PetscCall(PetscArraycpy(ode->slots + (size_t)slot_m * ode->nx, u, ode->nx));
  PetscCall(VecRestoreArrayRead(ode->U, &u));
  PetscCall(ReverseBinomial(ode, m, b, slot_m, c - 1, dxobs, lambda));
  ode->slots_used--;
  PetscCall(ReverseBinomial(ode, a, m, slot_a, c, dxobs, lambda));
  PetscFunctionReturn(0);
}

static PetscErrorCode Backsolve(RnOde ode, const double *dxobs, double *dx0, double *dtheta);

PetscErrorCode RnOdeBackward(RnOde ode, const double *dxobs, double *dx0, double *dtheta)
{
  Vec lambda;
  PetscScalar *l;
  const int S = ode->nsteps;

  PetscFunctionBeginUser;
  PetscCheck(ode->ts && ode->record, ode->comm, PETSC_ERR_ARG_WRONGSTATE, "RnOdeBackward needs a recorded RnOdeForward");
  ode->rhs_count = 0;
  if (ode->opt.adjoint == RN_ADJOINT_BACKSOLVE) {
    PetscCall(Backsolve(ode, dxobs, dx0, dtheta));
    ode->stats.rhs_backward = ode->rhs_count;
    ode->stats.stored_states = 2;
    PetscFunctionReturn(0);
  }
  PetscCall(VecDuplicate(ode->U, &lambda));
  PetscCall(VecZeroEntries(lambda));
  for (int i = 0; i < ode->nobs; i++)
    if (ode->obs_step[i] == S) PetscCall(AddJump(ode, lambda, dxobs, i));
  if (ode->opt.adjoint == RN_ADJOINT_FULL) {
    PetscCall(TSSetCostGradients(ode->ts, 1, &lambda, NULL));
    PetscCall(AdjointRange(ode, ode->ts, 0, S, dxobs, lambda));
    ode->swept = PETSC_TRUE, ode->swept_steps = S;
  } else {
    /* recomputations follow the forward pass's steps exactly */
    ode->grid_fixed = PETSC_TRUE;
    ode->replaying = PETSC_TRUE;
    PetscCall(TSDestroy(&ode->ts_replay));
    PetscCall(NewTS(ode, PETSC_TRUE, PETSC_TRUE, &ode->ts_replay));
    PetscCall(TSSetCostGradients(ode->ts_replay, 1, &lambda, NULL));
    if (ode->opt.adjoint == RN_ADJOINT_UNIFORM) {
      for (int seg = ode->slots_used - 1; seg >= 0; seg--) {
        const int a = ode->slot_step[seg], b = seg + 1 < ode->slots_used ? ode->slot_step[seg + 1] : S;
        if (b > a) PetscCall(ReplayAndAdjoint(ode, a, b, ode->slots + (size_t)seg * ode->nx, dxobs, lambda));
      }
    } else {
      const int c = ode->opt.checkpoints;
      /* slot 0 holds x_0; c more for the schedule */
      if (ode->nslots < c + 1) {
        double *bigger;
        int *steps;
        PetscCall(PetscMalloc2((size_t)(c + 1) * PetscMax(ode->nx, 1), &bigger, c + 1, &steps));
        PetscCall(PetscArraycpy(bigger, ode->slots, ode->nx));
        PetscCall(PetscFree2(ode->slots, ode->slot_step));
        ode->slots = bigger;
        ode->slot_step = steps;
        ode->nslots = c + 1;
      }
      ode->slots_used = 1;
      PetscCall(TSDestroy(&ode->ts_advance));
      PetscCall(NewTS(ode, PETSC_TRUE, PETSC_FALSE, &ode->ts_advance));
      PetscCall(ReverseBinomial(ode, 0, S, 0, c, dxobs, lambda));
    }
    ode->replaying = PETSC_FALSE;
    ode->step_offset = 0;
  }
  PetscCall(VecGetArray(lambda, &l));
  if (dx0) PetscCall(PetscArraycpy(dx0, l, ode->nx));
  for (PetscInt j = 0; j < ode->nparams; j++) dtheta[j] += l[ode->nx + j];
  PetscCall(VecRestoreArray(lambda, &l));
  PetscCall(VecDestroy(&lambda));
  ode->stats.rhs_backward = ode->rhs_count;
  /* states held at once: checkpoints plus the recorded segment (its states
   * and RK stages are what PETSc's memory trajectory stores) */
  ode->stats.stored_states = ode->max_slots_used + ode->record_steps_max + 1;
  PetscFunctionReturn(0);
}

/* ---- backsolve: Chen et al.'s continuous adjoint ----
 * In reverse time s = T - t the augmented state [x, a, g] obeys
 *   dx/ds = -f(x),  da/ds = J_x(x)^T a,  dg/ds = J_theta(x)^T a,
 * from x(T), a = dL/dx(T), g = 0; the jumps dL/dx(t_i) are added to a at
 * the observation times. Inexact: x is recomputed backwards, so the
 * gradient differs from the discrete one by the solver's error. */
static PetscErrorCode BacksolveRHS(TS ts, PetscReal s, Vec Z, Vec F, void *ctx)
{
  RnOde ode = (RnOde)ctx;
  const PetscScalar *z;
  PetscScalar *f;
  const PetscInt nx = ode->nx;

  PetscFunctionBeginUser;
  PetscCall(VecGetArrayRead(Z, &z));
  PetscCall(VecGetArray(F, &f));
  PetscCall(RnNetForward(ode->field, ode->batch, ode->theta, z, f, ode->tape_f));
  for (PetscInt i = 0; i < nx; i++) f[i] = -f[i];
  PetscCall(PetscArrayzero(f + 2 * nx, ode->nparams));
  PetscCall(RnNetBackward(ode->field, ode->batch, ode->theta, z, z + nx, f + nx, f + 2 * nx, ode->tape_f));
  PetscCall(VecRestoreArray(F, &f));
  PetscCall(VecRestoreArrayRead(Z, &z));
  ode->rhs_count++;
  PetscFunctionReturn(0);
}

static PetscErrorCode Backsolve(RnOde ode, const double *dxobs, double *dx0, double *dtheta)
{
  const PetscInt nx = ode->nx, nlocal = 2 * nx + ode->nparams;
  const double T = ode->tobs[ode->nobs - 1];
  Vec Z;
  PetscScalar *z;
  int i = ode->nobs - 1;

  PetscFunctionBeginUser;
  PetscCall(VecCreateMPI(ode->comm, nlocal, PETSC_DETERMINE, &Z));
  PetscCall(VecGetArray(Z, &z));
  PetscCall(PetscArrayzero(z, nlocal));
  {
    const PetscScalar *u;
    PetscCall(VecGetArrayRead(ode->U, &u)); /* x(T) from the forward pass */
    PetscCall(PetscArraycpy(z, u, nx));
    PetscCall(VecRestoreArrayRead(ode->U, &u));
  }
  PetscCall(VecRestoreArray(Z, &z));
  /* from one observation time down to the previous one (or 0) */
  for (; i >= -1; i--) {
    const double t_hi = i >= 0 ? ode->tobs[i] : 0.0;
    double t_lo;
    if (i >= 0) {
      /* the jump at t_i */
      PetscCall(VecGetArray(Z, &z));
      for (PetscInt j = 0; j < nx; j++) z[nx + j] += dxobs[(size_t)i * nx + j];
      PetscCall(VecRestoreArray(Z, &z));
    }
    if (i < 0 || t_hi <= 0.0) break;
    t_lo = i > 0 ? ode->tobs[i - 1] : 0.0;
    {
      TS ts;
      TSAdapt adapt;
      TSConvergedReason reason;
      const double len = t_hi - t_lo;
      PetscCall(TSCreate(ode->comm, &ts));
      PetscCall(TSSetProblemType(ts, TS_NONLINEAR));
      PetscCall(TSSetType(ts, TSRK));
      PetscCall(TSRKSetType(ts, SolverTSRKName(ode->opt.solver)));
      PetscCall(TSSetRHSFunction(ts, NULL, BacksolveRHS, ode));
      PetscCall(TSSetTime(ts, T - t_hi));
      PetscCall(TSSetMaxTime(ts, T - t_lo));
      PetscCall(TSSetExactFinalTime(ts, TS_EXACTFINALTIME_MATCHSTEP));
      PetscCall(TSGetAdapt(ts, &adapt));
      if (ode->opt.adaptive) {
        Vec vatol, vrtol;
        PetscScalar *va, *vr;
        PetscCall(TSAdaptSetType(adapt, TSADAPTBASIC));
        PetscCall(TSSetMaxSteps(ts, ode->opt.max_steps));
        PetscCall(TSSetTimeStep(ts, PetscMin(len, ode->opt.dt0 > 0 ? ode->opt.dt0 : T / 100.0)));
        PetscCall(VecDuplicate(Z, &vatol));
        PetscCall(VecDuplicate(Z, &vrtol));
        PetscCall(VecGetArray(vatol, &va));
        PetscCall(VecGetArray(vrtol, &vr));
        for (PetscInt j = 0; j < nlocal; j++) {
          va[j] = j < 2 * nx ? ode->opt.atol : 0.0;
          vr[j] = j < 2 * nx ? ode->opt.rtol : 0.0;
        }
        PetscCall(VecRestoreArray(vatol, &va));
        PetscCall(VecRestoreArray(vrtol, &vr));
        PetscCall(TSSetTolerances(ts, PETSC_DECIDE, vatol, PETSC_DECIDE, vrtol));
        PetscCall(VecDestroy(&vatol));
        PetscCall(VecDestroy(&vrtol));
      } else {
        /* the forward grid's step size, so both passes are equally fine */
        const int steps = PetscMax(1, (int)ceil(len / (T / ode->opt.steps) - 1e-9));
        PetscCall(TSAdaptSetType(adapt, TSADAPTNONE));
        PetscCall(TSSetTimeStep(ts, len / steps));
        PetscCall(TSSetMaxSteps(ts, steps));
      }
      if (ode->opt.options_prefix[0]) PetscCall(TSSetOptionsPrefix(ts, ode->opt.options_prefix));
      PetscCall(TSFromOptionsChecked(ode, ts));
      PetscCall(TapeCacheReset(ode, PETSC_FALSE));
      PetscCall(TSSolve(ts, Z));
      PetscCall(TSGetConvergedReason(ts, &reason));
      PetscCheck(reason >= 0, ode->comm, PETSC_ERR_NOT_CONVERGED, "ode backsolve: the backward solve failed (%s)", TSConvergedReasons[reason]);
      PetscCall(TSDestroy(&ts));
    }
  }
  PetscCall(VecGetArray(Z, &z));
  if (dx0) PetscCall(PetscArraycpy(dx0, z + nx, nx));
  for (PetscInt j = 0; j < ode->nparams; j++) dtheta[j] += z[2 * nx + j];
  PetscCall(VecRestoreArray(Z, &z));
  PetscCall(VecDestroy(&Z));
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
  PetscCall(DestroyTS(*ode));
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
  PetscCall(RnConfigGetChoice(cfg, KEY("solver"), "rk4", rn_solver_names, &solver));
  PetscCall(PetscStrncpy(opt->solver, rn_solver_names[solver], sizeof opt->solver));
  PetscCall(RnConfigGetBool(cfg, KEY("adaptive"), PETSC_FALSE, &opt->adaptive));
  PetscCall(RnConfigGetInt(cfg, KEY("steps"), 100, 1, 100000000, &opt->steps));
  {
    /* adaptivity needs an embedded error estimate */
    const char *fixed_only[] = {"euler", "rk4", "1fe", "4", "3", "2a"};
    for (size_t i = 0; i < sizeof fixed_only / sizeof fixed_only[0]; i++)
      if (opt->adaptive && !strcmp(opt->solver, fixed_only[i]))
        PetscCall(RnConfigError(cfg, KEY("adaptive"), "solver \"%s\" has no error estimate; use dopri5 (5dp), bosh3 (3bs), 5f, 5bs, 2b, 6vr, 7vr or 8vr for adaptive steps", opt->solver));
  }
  PetscCall(RnConfigGetReal(cfg, KEY("rtol"), 1e-7, 1e-15, 1.0, &opt->rtol));
  PetscCall(RnConfigGetReal(cfg, KEY("atol"), 1e-9, 1e-18, 1.0, &opt->atol));
  PetscCall(RnConfigGetReal(cfg, KEY("dt0"), 0.0, 0.0, 1e6, &opt->dt0));
  PetscCall(RnConfigGetInt(cfg, KEY("max_steps"), 100000, 1, 1000000000, &opt->max_steps));
  PetscCall(RnConfigGetChoice(cfg, KEY("adjoint"), "discrete", rn_adjoint_names, &adjoint));
  PetscCall(RnConfigGetChoice(cfg, KEY("checkpoint_schedule"), "none", rn_schedule_names, &schedule));
  PetscCall(RnConfigGetInt(cfg, KEY("checkpoints"), 0, 0, 100000000, &opt->checkpoints));
  PetscCall(RnConfigGetInt(cfg, KEY("tape_cache_mb"), 1024, 0, 1 << 24, &opt->tape_cache_mb));
  opt->adjoint = adjoint == 1 ? RN_ADJOINT_BACKSOLVE : (RnAdjointMode)schedule;
  if (schedule != 0 && opt->checkpoints < 1) PetscCall(RnConfigError(cfg, KEY("checkpoints"), "checkpoint_schedule \"%s\" needs checkpoints >= 1", rn_schedule_names[schedule]));
#undef KEY
  PetscFunctionReturn(0);
}
