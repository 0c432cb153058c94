/* backsolve.c: Chen et al.'s continuous adjoint
 * In reverse time s = T - t the augmented state [x, a, g] obeys
 *   dx/ds = -f(x),  da/ds = J_x(x)^T a,  dg/ds = J_theta(x)^T a,
 * from x(T), a = dL/dx(T), g = 0; the jumps dL/dx(t_i) are added to a at
 * the observation times. Inexact: x is recomputed backwards, so the
 * gradient differs from the discrete one by the solver's error. */
#include "odeimpl.h"

#include <math.h>
#include <string.h>

static PetscErrorCode BacksolveRHS(TS ts, PetscReal s, Vec Z, Vec F, void *ctx)
{
  RnOde ode = (RnOde)ctx;
  const PetscScalar *z;
  PetscScalar *f;
  const PetscInt nx = ode->nx;

  PetscFunctionBeginUser;
  PetscCall(RnEventBegin(RN_EV_ODE_VJP));
  PetscCall(VecGetArrayRead(Z, &z));
  PetscCall(VecGetArray(F, &f));
  PetscCall(RnNetForward(ode->field, ode->batch, ode->theta, z, f, ode->tape_f));
  for (PetscInt i = 0; i < nx; i++) f[i] = -f[i];
  PetscCall(PetscArrayzero(f + 2 * nx, ode->nparams));
  PetscCall(RnNetBackward(ode->field, ode->batch, ode->theta, z, z + nx, f + nx, f + 2 * nx, ode->tape_f));
  PetscCall(VecRestoreArray(F, &f));
  PetscCall(VecRestoreArrayRead(Z, &z));
  ode->rhs_count++;
  PetscCall(RnEventEnd(RN_EV_ODE_VJP));
  PetscFunctionReturn(0);
}

PetscErrorCode RnOde_Backsolve(RnOde ode, const double *dxobs, double *dx0, double *dtheta)
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
      PetscCall(TSRKSetType(ts, RnOde_SolverTSRKName(ode->opt.solver)));
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
        const int steps = PetscMax(1, (int)ceil(len / (T / ode->opt.steps) - RN_ODE_BLOWUP_STEP)); /* a whole number of steps stays whole */
        PetscCall(TSAdaptSetType(adapt, TSADAPTNONE));
        PetscCall(TSSetTimeStep(ts, len / steps));
        PetscCall(TSSetMaxSteps(ts, steps));
      }
      if (ode->opt.options_prefix[0]) PetscCall(TSSetOptionsPrefix(ts, ode->opt.options_prefix));
      PetscCall(RnOde_TSFromOptionsChecked(ode, ts));
      PetscCall(RnOde_TapeCacheReset(ode, PETSC_FALSE));
      PetscCall(RnEventBegin(RN_EV_ODE_ADJOINT));
      PetscCall(TSSolve(ts, Z));
      PetscCall(RnEventEnd(RN_EV_ODE_ADJOINT));
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

