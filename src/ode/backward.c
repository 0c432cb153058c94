/* backward.c: RnOdeBackward, the adjoint of the last recorded forward pass:
 * one sweep over the whole trajectory PETSc kept, segments replayed from
 * uniform slots, the binomial reversal (schedules.c), or the continuous
 * adjoint (backsolve.c).
 *
 * Why the checkpoint schedules are ours and not PETSc's TSTrajectory
 * checkpointing (-ts_trajectory_max_cps_ram): its binomial schedules come
 * from the revolve and CAMS packages (TJ_REVOLVE, TJ_CAMS), which Debian's
 * PETSc 3.18 and many cluster builds are configured without (no
 * PETSC_HAVE_REVOLVE), leaving a fixed stride (TJ_PETSC); our slots also hold
 * the state x alone, where PETSc's would store the augmented state with the
 * constant theta. A segment between two slots is still recorded in PETSc's
 * memory trajectory and swept by TSAdjointSolve. */
#include "odeimpl.h"

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
    if (ode->obs_step[i] == S) PetscCall(RnOde_AddJump(ode, lambda, dxobs, i));
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

