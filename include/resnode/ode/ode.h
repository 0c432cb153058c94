/* ode.h: the neural ODE dx/dt = f_theta(x) integrated by PETSc TS (TSRK), with
 * exact discrete-adjoint gradients from TSAdjoint.
 *
 * The state of the TS is augmented with a copy of theta on every rank
 * (dtheta/dt = 0): the adjoint of the augmented state then carries
 * dL/dtheta in its tail, which sidesteps the PETSc 3.18 bug in the parameter
 * adjoint of RK tableaux with a zero weight (dopri5, 3bs, ...). The copies
 * get zero tolerance weight so the adaptive step sequence is that of x alone.
 *
 * The batch is sharded over the ranks of the communicator; the state Vec is
 * distributed accordingly, so adaptive step sizes are chosen on the norm of
 * the whole batch and do not depend on the number of ranks. The gradient
 * returned for theta is this rank's contribution (the caller sums it over the
 * group with its single Allreduce).
 *
 * Observation times t_1 < ... < t_K = T are step boundaries (steps are clipped
 * to land on them); the backward pass adds dL/dx(t_i) to the adjoint at each
 * of them. */
#ifndef RESNODE_ODE_H
#define RESNODE_ODE_H

#include "resnode/core/config.h"
#include "resnode/nn/layers.h"
#include <petscts.h>

typedef enum {
  RN_ADJOINT_FULL,     /* the whole trajectory in memory (PETSc's memory trajectory) */
  RN_ADJOINT_UNIFORM,  /* checkpoints every k steps, segments recomputed */
  RN_ADJOINT_BINOMIAL, /* revolve-style schedule for a fixed number of checkpoints */
  RN_ADJOINT_BACKSOLVE /* Chen et al.'s continuous adjoint, backwards in time: inexact */
} RnAdjointMode;

extern const char *const RnAdjointModeNames[]; /* "full", "uniform", "binomial", "backsolve", NULL */

typedef struct {
  char solver[32];    /* TSRK type: 1fe, 2a, 3, 3bs, 4, 5f, 5dp, 5bs, ... (aliases: euler, rk4, dopri5) */
  PetscBool adaptive; /* adaptive steps (TSADAPTBASIC) or a fixed grid */
  int steps;          /* fixed grid: number of steps on [0, T] */
  double rtol, atol;  /* adaptive tolerances */
  double dt0;         /* adaptive: first step (0: T / 100) */
  int max_steps;      /* a solve that needs more is an error */
  RnAdjointMode adjoint;
  int checkpoints;    /* uniform: a checkpoint every `checkpoints` steps; binomial: number of checkpoints */
  int tape_cache_mb;  /* the field's tapes of a recorded pass kept for the adjoint, per rank (0: recomputed) */
  char options_prefix[16]; /* PETSc options prefix of its TS ("" : the -ts_* options apply) */
} RnOdeOptions;

void RnOdeOptionsDefault(RnOdeOptions *opt);
/* Evaluations of the field a step of the solver makes, and a pass makes
 * (for cost models: adaptive steps are guessed as RN_ODE_ADAPTIVE_STEPS_GUESS). */
#define RN_ODE_ADAPTIVE_STEPS_GUESS 16
int RnOdeStagesPerStep(const RnOdeOptions *opt);
double RnOdeFieldEvaluationsPerPass(const RnOdeOptions *opt);

typedef struct RnOde_s *RnOde;

/* field: the vector field (input and output of equal size d); nobs
 * observation times (ascending, > = 0, last = T). */
PetscErrorCode RnOdeCreate(MPI_Comm comm, RnNet field, int nobs, const double *tobs, RnOde *ode);
PetscErrorCode RnOdeSetOptions(RnOde ode, const RnOdeOptions *opt);
/* Whether the next forward passes are followed by a backward pass (default
 * true); evaluation-only passes record nothing. */
PetscErrorCode RnOdeSetRecord(RnOde ode, PetscBool record);
/* x0: batch x d (this rank's samples); xobs: nobs x batch x d. */
PetscErrorCode RnOdeForward(RnOde ode, int batch, const double *theta, const double *x0, double *xobs);
/* dxobs: nobs x batch x d. dx0 (may be NULL) is overwritten; dtheta is added to. */
PetscErrorCode RnOdeBackward(RnOde ode, const double *dxobs, double *dx0, double *dtheta);
/* Counters of the last forward/backward pair. */
typedef struct {
  int steps;            /* accepted steps of the forward pass */
  long rhs_forward;     /* right-hand-side evaluations in the forward pass */
  long rhs_backward;    /* ... recomputed in the backward pass */
  long vjp;             /* transposed Jacobian products */
  int stored_states;    /* largest number of states held at once for the adjoint */
} RnOdeStats;
PetscErrorCode RnOdeGetStats(RnOde ode, RnOdeStats *stats);
PetscErrorCode RnOdeDestroy(RnOde *ode);

/* The PETSc options a TS with this options prefix reads ("" for -ts_*),
 * checked before any solve: an input error names an option that fails to
 * apply, a -ts_type other than an explicit Runge-Kutta method (the field
 * assembles no Jacobian), -ts_max_steps below 1, or an option that takes a
 * value given without one. The names of the options read are kept:
 * RnOdeOptionNames gives every name read by the checks so far (without the
 * leading dash), for did-you-mean. */
PetscErrorCode RnOdeCheckOptions(MPI_Comm comm, const char *prefix);
int RnOdeOptionNames(const char *const **names);

/* Keys under prefix (e.g. "ode"): solver, adaptive, steps, rtol, atol, dt0,
 * max_steps, adjoint ("discrete" | "backsolve"), checkpoint_schedule ("none" |
 * "uniform" | "binomial"), checkpoints, tape_cache_mb. */
PetscErrorCode RnOdeOptionsFromConfig(RnConfig cfg, const char *prefix, RnOdeOptions *opt);

#endif
