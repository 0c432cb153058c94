/* forward.c: the vector field as the right-hand side of a PETSc TS on the
 * augmented state [x; theta], its tape cache, and the forward solve. */
#include "odeimpl.h"

#include <math.h>
#include <string.h>

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

/* Starts (or stops) keeping the tapes of the solve that follows. */
PetscErrorCode RnOde_TapeCacheReset(RnOde ode, PetscBool recording)
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
  PetscCall(RnEventBegin(RN_EV_ODE_RHS));
  PetscCall(VecGetArrayRead(U, &u));
  PetscCall(VecGetArray(F, &f));
  PetscCall(TapeForEvaluation(ode, &tape));
  PetscCall(RnNetForward(ode->field, ode->batch, ode->theta, u, f, tape));
  if (tape != ode->tape_f) ode->tc_hash[ode->tc_n++] = RnHashWords(u, (size_t)ode->nx);
  PetscCall(PetscArrayzero(f + ode->nx, ode->nparams));
  PetscCall(VecRestoreArray(F, &f));
  PetscCall(VecRestoreArrayRead(U, &u));
  ode->rhs_count++;
  PetscCall(RnEventEnd(RN_EV_ODE_RHS));
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
  PetscCall(RnEventBegin(RN_EV_ODE_VJP));
  PetscCall(VecGetArrayRead(U, &u));
  PetscCall(PetscArraycpy(ode->jac_x, u, ode->nx + 0));
  PetscCall(VecRestoreArrayRead(U, &u));
  if (ode->tc_n > 0) {
    const uint64_t h = RnHashWords(ode->jac_x, (size_t)ode->nx);
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
  PetscCall(RnEventEnd(RN_EV_ODE_VJP));
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
  PetscCall(RnEventBegin(RN_EV_ODE_VJP));
  PetscCall(VecGetArrayRead(V, &v));
  PetscCall(VecGetArray(Y, &y));
  PetscCall(PetscArrayzero(y + ode->nx, ode->nparams));
  PetscCall(RnNetBackward(ode->field, ode->batch, ode->theta, ode->jac_x, v, y, y + ode->nx, ode->jac_tape));
  PetscCall(VecRestoreArray(Y, &y));
  PetscCall(VecRestoreArrayRead(V, &v));
  ode->stats.vjp++;
  PetscCall(RnEventEnd(RN_EV_ODE_VJP));
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


/* Uniform checkpoints: the state after step k, appended (grown on demand). */
PetscErrorCode RnOde_StoreSlot(RnOde ode, Vec U, int k)
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
    if (t + dt >= tnext - RN_ODE_STEP_FLOOR * PetscMax(1.0, fabs(tnext))) dt = tnext - t;
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
  if (ode->record && ode->opt.adjoint == RN_ADJOINT_UNIFORM && k % ode->opt.checkpoints == 0) PetscCall(RnOde_StoreSlot(ode, U, (int)k));
  while (ode->next_obs < ode->nobs && fabs(t - ode->tobs[ode->next_obs]) <= RN_ODE_SAME_TIME * PetscMax(1.0, fabs(ode->tobs[ode->next_obs]))) {
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
    while (next < ode->nobs && ode->tobs[next] < tk - RN_ODE_SAME_TIME * PetscMax(1.0, T)) PetscCall(PushStepTime(ode, ode->tobs[next++]));
    if (next < ode->nobs && fabs(ode->tobs[next] - tk) <= RN_ODE_SAME_TIME * PetscMax(1.0, T)) tk = ode->tobs[next++];
    PetscCall(PushStepTime(ode, tk));
  }
  PetscFunctionReturn(0);
}


PetscErrorCode RnOde_SetMemoryTrajectory(TS ts)
{
  TSTrajectory tj;

  PetscFunctionBeginUser;
  PetscCall(TSSetSaveTrajectory(ts));
  PetscCall(TSGetTrajectory(ts, &tj));
  PetscCall(TSTrajectorySetType(tj, ts, TSTRAJECTORYMEMORY));
  PetscFunctionReturn(0);
}


/* A TS on the augmented state. fixed: steps follow ode->step_times (from
 * step_offset on); otherwise adaptive with zero tolerance weight on the theta
 * copies. New TS objects for every forward pass: PETSc 3.18's memory
 * trajectory does not survive reuse across solves of different lengths, and
 * creation is cheap next to a solve. */
PetscErrorCode RnOde_NewTS(RnOde ode, PetscBool fixed, PetscBool save_trajectory, TS *tsp)
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
  PetscCall(TSRKSetType(ts, RnOde_SolverTSRKName(ode->opt.solver)));
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
    /* a step below RN_ODE_STEP_FLOOR T is a solution that blows up (diverging
     * parameters): fail there, not after ode.max_steps ever smaller steps */
    PetscCall(TSAdaptSetStepLimits(adapt, RN_ODE_STEP_FLOOR * T, PETSC_DEFAULT));
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
    PetscCall(RnOde_SetMemoryTrajectory(ts));
    PetscCall(TSAdjointMonitorSet(ts, RnOde_JumpMonitor, ode, NULL));
  }
  /* PETSc's own -ts_* options still apply (to a TS without a prefix) */
  if (ode->opt.options_prefix[0]) PetscCall(TSSetOptionsPrefix(ts, ode->opt.options_prefix));
  PetscCall(RnOde_TSFromOptionsChecked(ode, ts));
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
    PetscCall(RnOde_SetMemoryTrajectory(ts));
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
  PetscCall(RnOde_DestroyTS(ode));
  PetscCall(VecCreateMPI(ode->comm, nlocal, PETSC_DETERMINE, &ode->U));
  PetscCall(MatCreateShell(ode->comm, nlocal, nlocal, PETSC_DETERMINE, PETSC_DETERMINE, ode, &ode->J));
  PetscCall(MatShellSetOperation(ode->J, MATOP_MULT_TRANSPOSE, (void (*)(void))OdeJacobianMultTranspose));
  PetscFunctionReturn(0);
}

PetscErrorCode RnOde_SetStateVec(RnOde ode, Vec U, const double *x)
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
  if (ode->next_obs < ode->nobs) {
    PetscReal dt, xmax;
    /* out of steps: a solution that blows up (steps shrinking towards the
     * singularity, or values out of range) is divergence, not a step budget */
    PetscCall(TSGetTimeStep(ode->ts, &dt));
    PetscCall(VecNorm(ode->U, NORM_INFINITY, &xmax));
    if (!PetscIsNormalReal(xmax) && xmax != 0) xmax = PETSC_INFINITY;
    if (!ode->grid_fixed && ode->step_budget < ode->opt.max_steps)
      RnCollectiveError(ode->comm, RN_ERR_NONFINITE,
                        "ode: the solver needed more than %d steps to reach t = %g, a thousand times the %d of the previous pass: the field has become stiff or singular as the parameters diverge; lower the learning rate",
                        ode->step_budget, (double)t, ode->prev_steps);
    if (xmax > RN_ODE_BLOWUP_STATE || dt < RN_ODE_BLOWUP_STEP * ode->tobs[ode->nobs - 1])
      RnCollectiveError(ode->comm, RN_ERR_NONFINITE, "ode: the solution blows up near t = %g (max |x| = %s, step size %.2e after %d steps): the parameters are diverging; lower the learning rate",
                        (double)t, xmax > 1e300 ? "overflow" : "large", (double)dt, ode->nsteps);
    /* after passes that reached T, training changed the field until it no
     * longer does: the parameters diverge, whichever group or unit meets it
     * first (the same exit status on any group count) */
    if (ode->prev_steps > 0)
      RnCollectiveError(ode->comm, RN_ERR_NONFINITE,
                        "ode: the solver stopped at t = %g before T = %g after %d steps (ode.max_steps = %d), where the previous pass took %d: the parameters are diverging; lower the learning rate (or raise ode.max_steps)",
                        (double)t, ode->tobs[ode->nobs - 1], ode->nsteps, ode->opt.max_steps, ode->prev_steps);
    /* the first pass, at the initial parameters: the step budget is the config's */
    RnCollectiveError(ode->comm, RN_ERR_INPUT, "ode: the solver stopped at t = %g before T = %g after %d steps (ode.max_steps = %d); raise ode.max_steps or loosen ode.rtol",
                      (double)t, ode->tobs[ode->nobs - 1], ode->nsteps, ode->opt.max_steps);
  }
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
  PetscCall(RnOde_EnsureWorkspace(ode, batch));
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
    PetscCall(RnOde_NewTS(ode, ode->grid_fixed, trajectory, &ode->ts));
    ode->ts_nx = ode->nx, ode->ts_fixed = ode->grid_fixed, ode->ts_trajectory = trajectory;
  }
  PetscCall(RnOde_SetStateVec(ode, ode->U, x0));
  if (ode->record && ode->opt.adjoint != RN_ADJOINT_FULL) {
    /* the initial state is the first checkpoint of every schedule */
    PetscCall(RnOde_StoreSlot(ode, ode->U, 0));
  }
  /* observations at t = 0 are the initial state itself */
  while (ode->next_obs < ode->nobs && ode->tobs[ode->next_obs] <= 0.0) {
    if (xobs) PetscCall(CopyObservation(ode, ode->U, ode->next_obs));
    ode->obs_step[ode->next_obs++] = 0;
  }
  PetscCall(RnOde_TapeCacheReset(ode, trajectory));
  if (!ode->grid_fixed) {
    /* a pass that needs a thousand times the steps of the previous one has a
     * field gone stiff or singular: diverging parameters, said as such */
    ode->step_budget = ode->opt.max_steps;
    if (ode->prev_steps > 0) ode->step_budget = (int)PetscMin((long long)ode->opt.max_steps, 1000LL * ode->prev_steps + 1000);
    PetscCall(TSSetMaxSteps(ode->ts, ode->step_budget));
  }
  PetscCall(RnEventBegin(RN_EV_ODE_SOLVE));
  PetscCall(TSSolve(ode->ts, ode->U));
  PetscCall(RnEventEnd(RN_EV_ODE_SOLVE));
  PetscCall(CheckReason(ode));
  if (!ode->grid_fixed) ode->prev_steps = ode->nsteps;
  ode->stats.steps = ode->nsteps;
  ode->stats.rhs_forward = ode->rhs_count;
  if (trajectory) ode->record_steps_max = ode->nsteps;
  PetscFunctionReturn(0);
}


