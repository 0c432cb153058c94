/* adjoint.c: the discrete adjoint of the forward solve with TSAdjointSolve
 * (ex20adj.c's call sequence), observation jumps added as the sweep passes
 * them; full trajectory or a checkpoint schedule (schedules.c). */
#include "odeimpl.h"

#include <math.h>
#include <string.h>

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


/* Observation jumps during the adjoint sweep: PETSc calls the adjoint monitor
 * at every step k it reaches (k counted on the TS, from the start of the
 * recorded segment) before stepping back from it; the jumps of the
 * observations at steps in [adj_lo, adj_hi) are added there. One
 * TSAdjointSolve per segment instead of one per observation interval: each
 * call costs option-database look-ups that outweigh small solves. */
PetscErrorCode RnOde_JumpMonitor(TS ts, PetscInt k, PetscReal t, Vec u, PetscInt numcost, Vec *lambda, Vec *mu, void *ctx)
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
PetscErrorCode RnOde_AdjointRange(RnOde ode, TS ts, int a, int b, const double *dxobs, Vec lambda)
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


PetscErrorCode RnOdeBackward(RnOde ode, const double *dxobs, double *dx0, double *dtheta)
{
  Vec lambda;
  PetscScalar *l;
  const int S = ode->nsteps;

  PetscFunctionBeginUser;
  PetscCheck(ode->ts && ode->record, ode->comm, PETSC_ERR_ARG_WRONGSTATE, "RnOdeBackward needs a recorded RnOdeForward");
  ode->rhs_count = 0;
  if (ode->opt.adjoint == RN_ADJOINT_BACKSOLVE) {
    PetscCall(RnOde_Backsolve(ode, dxobs, dx0, dtheta));
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
    PetscCall(RnOde_AdjointRange(ode, ode->ts, 0, S, dxobs, lambda));
    ode->swept = PETSC_TRUE, ode->swept_steps = S;
  } else {
    /* recomputations follow the forward pass's steps exactly */
    ode->grid_fixed = PETSC_TRUE;
    ode->replaying = PETSC_TRUE;
    PetscCall(TSDestroy(&ode->ts_replay));
    PetscCall(RnOde_NewTS(ode, PETSC_TRUE, PETSC_TRUE, &ode->ts_replay));
    PetscCall(TSSetCostGradients(ode->ts_replay, 1, &lambda, NULL));
    if (ode->opt.adjoint == RN_ADJOINT_UNIFORM) {
      for (int seg = ode->slots_used - 1; seg >= 0; seg--) {
        const int a = ode->slot_step[seg], b = seg + 1 < ode->slots_used ? ode->slot_step[seg + 1] : S;
        if (b > a) PetscCall(RnOde_ReplayAndAdjoint(ode, a, b, ode->slots + (size_t)seg * ode->nx, dxobs, lambda));
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
      PetscCall(RnOde_NewTS(ode, PETSC_TRUE, PETSC_FALSE, &ode->ts_advance));
      PetscCall(RnOde_ReverseBinomial(ode, 0, S, 0, c, dxobs, lambda));
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

