/* adjoint.c: the discrete adjoint of a recorded range of steps with
 * TSAdjointSolve (ex20adj.c's call sequence), the observation jumps added as
 * the sweep passes them. backward.c chooses what to sweep. */
#include "odeimpl.h"

#include <math.h>
#include <string.h>

/* lambda_x += dL/dx(t_i) */
PetscErrorCode RnOde_AddJump(RnOde ode, Vec lambda, const double *dxobs, int i)
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
    if (ode->obs_step[i] == step) PetscCall(RnOde_AddJump(ode, lambda[0], ode->adj_dxobs, i));
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
    PetscCall(RnEventBegin(RN_EV_ODE_ADJOINT));
    PetscCall(TSAdjointSolve(ts));
    PetscCall(RnEventEnd(RN_EV_ODE_ADJOINT));
  } else {
    for (int i = 0; i < ode->nobs; i++)
      if (ode->obs_step[i] == a) PetscCall(RnOde_AddJump(ode, lambda, dxobs, i));
  }
  PetscFunctionReturn(0);
}
