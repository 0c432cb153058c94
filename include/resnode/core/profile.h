/* profile.h: where a run's time goes.
 *
 * The application's phases are PETSc events of a class "resnode" (PETSc
 * manual, "Profiling Application Codes"), so that -log_view (and its
 * ascii_csv and ascii_flamegraph forms) shows them beside PETSc's TSStep and
 * TSAdjointStep, with stages for set-up, training, evaluation and output.
 * Beside PETSc's log, every event is tallied here, always and cheaply: its
 * calls, its time, its own time (less the events it encloses) and its flops
 * (RnProfileFlops). Own times partition the wall time, so a run's profile
 * (the manifest's "profile", a unit's units/<name>/profile.json) says what
 * share of it each phase took, with its spread over the ranks.
 *
 *   PetscCall(RnEventBegin(RN_EV_CONV_FORWARD));
 *   ... the convolution ...
 *   PetscCall(RnProfileFlops(2.0 * n * k * c * r * s * h * w));
 *   PetscCall(RnEventEnd(RN_EV_CONV_FORWARD));
 *
 * Events nest (an ODE solve encloses right-hand sides, which enclose the
 * net's forward pass, which encloses its convolutions); an event left open
 * by an error is closed by the next end of an event that encloses it. */
#ifndef RESNODE_PROFILE_H
#define RESNODE_PROFILE_H

#include "resnode/core/core.h"

typedef enum {
  RN_EV_NET_FORWARD,   /* a net's forward pass (less what it encloses: glue, copies) */
  RN_EV_NET_BACKWARD,  /* ... and its backward pass */
  RN_EV_CONV_FORWARD,  /* convolutions, forward */
  RN_EV_CONV_BACKWARD, /* ... backward (data and weights) */
  RN_EV_BATCHNORM,     /* batch norm, forward and backward */
  RN_EV_ACTIVATION,    /* activations (relu, tanh, softplus, gelu), forward and backward */
  RN_EV_POOL,          /* pooling, forward and backward */
  RN_EV_DENSE,         /* dense layers, forward and backward */
  RN_EV_LOSS,          /* the loss and its gradient */
  RN_EV_CONVERT,       /* precision conversions: double <-> float32/bfloat16 */
  RN_EV_ODE_SOLVE,     /* an ODE's forward solve (TSSolve): its own time is the solver's (stages, vectors) */
  RN_EV_ODE_ADJOINT,   /* ... its adjoint solve (TSAdjointSolve) */
  RN_EV_ODE_RHS,       /* the right-hand side f_theta(x) inside TS */
  RN_EV_ODE_VJP,       /* its vector-Jacobian products inside TSAdjoint */
  RN_EV_GRAD_REDUCE,   /* the gradient's reduction over a group (MPI_Allreduce) */
  RN_EV_BARRIER,       /* waiting for the group (barriers, the loss's reduction) */
  RN_EV_OPTIMIZER,     /* the optimizer's step */
  RN_EV_DATA,          /* data: loading, augmentation, batch assembly */
  RN_EV_CHECKPOINT,    /* checkpoints: writing and restoring */
  RN_EV_SNAPSHOT,      /* parameter snapshots, and the ensemble's large arrays (Gram matrices, parameters) */
  RN_EV_STATS,         /* the ensemble's statistics (Gram matrices, ScaLAPACK) */
  RN_EV_QUEUE_WAIT,    /* the unit queue: waiting for a unit or for the other groups */
  RN_EV_EVALUATION,    /* evaluation (test and validation passes) */
  RN_EV_COUNT
} RnEvent;
extern const char *const RnEventNames[]; /* as -log_view shows them ("RnConvFwd", ...) */

typedef enum { RN_STAGE_SETUP, RN_STAGE_TRAINING, RN_STAGE_EVALUATION, RN_STAGE_OUTPUT, RN_STAGE_COUNT } RnStage;

/* Registers the class, the events and the stages with PETSc (once a process;
 * after PetscInitialize). Until then the calls below tally nothing. */
PetscErrorCode RnProfileRegister(void);
PetscErrorCode RnEventBegin(RnEvent e);
PetscErrorCode RnEventEnd(RnEvent e);
/* Flops of the innermost open event (and of those enclosing it), for PETSc too. */
PetscErrorCode RnProfileFlops(double flops);
/* The stage the time is counted in from here on (-log_view's stages). */
PetscErrorCode RnProfileSetStage(RnStage stage);
/* The stage the time is counted in now (to go back to it after an evaluation). */
RnStage RnProfileStage(void);
/* An evaluation, in its stage and event (the stage before it, after it). */
PetscErrorCode RnProfileEvaluationBegin(RnStage *before);
PetscErrorCode RnProfileEvaluationEnd(RnStage before);

/* The sum of a flat gradient over comm (MPI_Allreduce), logged as RnGradReduce. */
PetscErrorCode RnGradientSum(const double *grad, double *sum, PetscInt n, MPI_Comm comm);

/* This process's tallies at a moment: a profile is the difference of two. */
typedef struct {
  double wall;
  double total[RN_EV_COUNT], self[RN_EV_COUNT], flops[RN_EV_COUNT];
  long long count[RN_EV_COUNT];
} RnProfileMark;
void RnProfileMarkNow(RnProfileMark *mark);
/* Collective on comm: the profile since `since` as JSON on comm's rank 0
 * (elsewhere ""): {"wall_s", "ranks", "events": {name: {"count", "self_s"
 * (mean over ranks), "self_min_s", "self_max_s", "total_s", "mflop", "share"
 * (of the wall time, own time)}}, "other_s"}; events with no call left out. */
PetscErrorCode RnProfileJSON(MPI_Comm comm, const RnProfileMark *since, char *json, size_t len);
/* The largest own-time shares of the profile since `since` on this process,
 * as one line ("RnConvFwd 41%, RnOdeSolve 22%, ..."), for --plan. */
void RnProfileShares(const RnProfileMark *since, char *line, size_t len);

#endif
