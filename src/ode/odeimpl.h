/* odeimpl.h: the inside of RnOde, shared by the files of src/ode (not part
 * of the public interface, include/resnode/ode/ode.h). Each file calls only
 * the ones above it in this list:
 *   ode.c        options, creation, workspaces, destruction
 *   forward.c    the vector field as a TS right-hand side, the tape cache,
 *                step bookkeeping and uniform slots, the forward solve
 *   adjoint.c    the discrete adjoint of a range of steps (TSAdjointSolve)
 *                with observation jumps
 *   schedules.c  checkpointed adjoints: replayed segments, the binomial reversal
 *   backsolve.c  the continuous adjoint of Chen et al. (inexact, O(1) memory)
 *   backward.c   RnOdeBackward: which of these runs (and why the schedules
 *                are not PETSc's TSTrajectory checkpointing) */
#ifndef RESNODE_ODEIMPL_H
#define RESNODE_ODEIMPL_H

#include "resnode/core/checksum.h"
#include "resnode/core/profile.h"
#include "resnode/ode/ode.h"

#include <stdint.h>

/* Times closer than this, relative to max(1, |t|) or to T, are one instant:
 * an observation reached by a step, a grid point met again. */
#define RN_ODE_SAME_TIME 1e-10
/* A step landing within this of the next observation is stretched onto it
 * (no sliver step); also the smallest adaptive step, relative to T. */
#define RN_ODE_STEP_FLOOR 1e-12
/* A step below this fraction of T while the solve failed: a blow-up. */
#define RN_ODE_BLOWUP_STEP 1e-9
/* |x| beyond this while the solve failed: a blow-up. */
#define RN_ODE_BLOWUP_STATE 1e100

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
  int prev_steps;       /* steps of the last adaptive forward pass (0: none yet) */
  int step_budget;      /* the step limit of the current adaptive pass */

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

/* ode.c */
const char *RnOde_SolverTSRKName(const char *solver);
PetscErrorCode RnOde_EnsureWorkspace(RnOde ode, int batch);
PetscErrorCode RnOde_DestroyTS(RnOde ode);
PetscErrorCode RnOde_TSFromOptionsChecked(RnOde ode, TS ts);
/* forward.c */
PetscErrorCode RnOde_StoreSlot(RnOde ode, Vec U, int k);
PetscErrorCode RnOde_TapeCacheReset(RnOde ode, PetscBool recording);
PetscErrorCode RnOde_SetMemoryTrajectory(TS ts);
PetscErrorCode RnOde_SetStateVec(RnOde ode, Vec U, const double *x);
PetscErrorCode RnOde_NewTS(RnOde ode, PetscBool fixed, PetscBool save_trajectory, TS *tsp);
/* adjoint.c */
PetscErrorCode RnOde_AddJump(RnOde ode, Vec lambda, const double *dxobs, int i);
PetscErrorCode RnOde_JumpMonitor(TS ts, PetscInt k, PetscReal t, Vec u, PetscInt numcost, Vec *lambda, Vec *mu, void *ctx);
PetscErrorCode RnOde_AdjointRange(RnOde ode, TS ts, int a, int b, const double *dxobs, Vec lambda);
/* schedules.c */
PetscErrorCode RnOde_ReplayAndAdjoint(RnOde ode, int a, int b, const double *x_a, const double *dxobs, Vec lambda);
PetscErrorCode RnOde_ReverseBinomial(RnOde ode, int a, int b, int slot_a, int c, const double *dxobs, Vec lambda);
/* backsolve.c */
PetscErrorCode RnOde_Backsolve(RnOde ode, const double *dxobs, double *dx0, double *dtheta);

#endif
