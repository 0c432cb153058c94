/* schedules.c: checkpointed adjoints: a segment replayed from its slot and
 * swept (adjoint.c), and the binomial (revolve-style) reversal. The uniform
 * slots are stored by the forward pass (forward.c). */
#include "odeimpl.h"

#include <math.h>
#include <string.h>

/* Recompute steps a..b from the state x_a, recording them when ts saves its
 * trajectory; the final state is left in ode->U. */
static PetscErrorCode Replay(RnOde ode, TS ts, int a, int b, const double *x_a, PetscBool record)
{
  PetscFunctionBeginUser;
  if (record) {
    PetscCall(TSResetTrajectory(ts));
    PetscCall(RnOde_SetMemoryTrajectory(ts));
    ode->record_steps_max = PetscMax(ode->record_steps_max, b - a);
  }
  ode->step_offset = a;
  PetscCall(TSSetTime(ts, ode->step_times[a]));
  PetscCall(TSSetStepNumber(ts, 0));
  PetscCall(TSSetMaxSteps(ts, b - a));
  PetscCall(TSSetTimeStep(ts, ode->step_times[a + 1] - ode->step_times[a]));
  PetscCall(RnOde_SetStateVec(ode, ode->U, x_a));
  PetscCall(RnOde_TapeCacheReset(ode, record));
  PetscCall(RnEventBegin(RN_EV_ODE_SOLVE));
  PetscCall(TSSolve(ts, ode->U));
  PetscCall(RnEventEnd(RN_EV_ODE_SOLVE));
  PetscFunctionReturn(0);
}

PetscErrorCode RnOde_ReplayAndAdjoint(RnOde ode, int a, int b, const double *x_a, const double *dxobs, Vec lambda)
{
  PetscFunctionBeginUser;
  PetscCall(Replay(ode, ode->ts_replay, a, b, x_a, PETSC_TRUE));
  PetscCall(RnOde_AdjointRange(ode, ode->ts_replay, a, b, dxobs, lambda));
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
PetscErrorCode RnOde_ReverseBinomial(RnOde ode, int a, int b, int slot_a, int c, const double *dxobs, Vec lambda)
{
  const int n = b - a;
  int r = 0, m, slot_m;
  const PetscScalar *u;

  PetscFunctionBeginUser;
  if (n <= 1 || c == 0) {
    /* a leaf: one step (or, with no slot left, the whole range) recorded */
    PetscCall(RnOde_ReplayAndAdjoint(ode, a, b, ode->slots + (size_t)slot_a * ode->nx, dxobs, lambda));
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
  PetscCall(RnOde_ReverseBinomial(ode, m, b, slot_m, c - 1, dxobs, lambda));
  ode->slots_used--;
  PetscCall(RnOde_ReverseBinomial(ode, a, m, slot_a, c, dxobs, lambda));
  PetscFunctionReturn(0);
}

