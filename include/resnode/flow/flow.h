/* flow.h: the depth of a model. A flow maps the input x_0 of a block to its
 * states at the observation times t_1 < ... < t_K = T, by
 *   - RN_FLOW_RESNET: the weight-tied ResNet x_{k+1} = x_k + (T/N) f_theta(x_k),
 *     k = 0..N-1, with hand-written backpropagation;
 *   - RN_FLOW_UNTIED: the same with theta_k per step (N copies of the field's
 *     parameters, concatenated in the flat buffer);
 *   - RN_FLOW_ODE: the neural ODE dx/dt = f_theta(x) through PETSc TS (ode.h).
 * The ResNet at depth N is TS's forward Euler ("1fe") with N steps: the two
 * agree to rounding (a test).
 *
 * Also here: the parameter cap T_L of the capped risk. */
#ifndef RESNODE_FLOW_H
#define RESNODE_FLOW_H

#include "resnode/core/config.h"
#include "resnode/nn/layers.h"
#include "resnode/ode/ode.h"

typedef enum { RN_FLOW_RESNET, RN_FLOW_UNTIED, RN_FLOW_ODE } RnFlowKind;
extern const char *const RnFlowKindNames[]; /* "resnet", "untied", "ode", NULL */

typedef struct RnFlow_s *RnFlow;
struct RnFlow_s {
  RnFlowKind kind;
  MPI_Comm comm;
  RnNet field;      /* not owned */
  int depth;        /* N for the ResNets */
  int nobs;
  double *tobs;
  int *obs_layer;   /* ResNets: the step index k with k h = t_i */
  PetscInt nparams; /* field parameters (times N when untied) */
  int dim;
  RnOde ode;        /* RN_FLOW_ODE */
  /* ResNet tape of the last recorded forward pass */
  PetscBool record, recorded; /* record the next forward pass; the last one was */
  int batch, tape_batch;
  double *states;   /* (N + 1) x batch x dim */
  double *tapes;    /* N x batch x field tape */
  double *adj, *work;
  /* a forward pass without a record: two states and one layer's tape, whatever N */
  int pass_batch;
  double *pass_states, *pass_tape;
};

PetscErrorCode RnFlowCreate(MPI_Comm comm, RnNet field, RnFlowKind kind, int depth, int nobs, const double *tobs, RnFlow *flow);
/* ODE solver options (RN_FLOW_ODE only; ignored otherwise). */
PetscErrorCode RnFlowSetOdeOptions(RnFlow flow, const RnOdeOptions *opt);
/* Whether the next forward passes keep what RnFlowBackward needs (the
 * default). Without, a ResNet's pass holds two states and one layer's tape
 * instead of N of each (evaluation over large batches at any depth). */
PetscErrorCode RnFlowSetRecord(RnFlow flow, PetscBool record);
/* x0: batch x dim; xobs: nobs x batch x dim (all this rank's samples). */
PetscErrorCode RnFlowForward(RnFlow flow, int batch, const double *theta, const double *x0, double *xobs);
/* dxobs: nobs x batch x dim; dx0 may be NULL (overwritten); dtheta += this rank's part. */
PetscErrorCode RnFlowBackward(RnFlow flow, const double *theta, const double *dxobs, double *dx0, double *dtheta);
/* Initial parameters (untied: every step gets its own draw). */
PetscErrorCode RnFlowInit(RnFlow flow, uint64_t seed, uint32_t member, uint32_t first_layer_id, double *theta);
/* The layer ids RnFlowInit uses from first_layer_id on: the field's layers,
 * once for every step when untied. */
uint32_t RnFlowLayerIdCount(RnFlow flow);
PetscErrorCode RnFlowDestroy(RnFlow *flow);

/* T_L: componentwise cap of the parameters at level L. */
typedef enum { RN_CAP_NONE, RN_CAP_HARD, RN_CAP_SMOOTH } RnCapKind;
extern const char *const RnCapKindNames[]; /* "none", "hard", "smooth", NULL */
typedef struct {
  RnCapKind kind;
  double level;
} RnCap;
/* capped = T_L(theta) */
void RnCapApply(RnCap cap, PetscInt n, const double *theta, double *capped);
/* dtheta = T_L'(theta) * dcapped (componentwise; in place allowed) */
void RnCapBackward(RnCap cap, PetscInt n, const double *theta, const double *dcapped, double *dtheta);

/* The depth of a model from the config:
 *   model.depth = "ode" | "resnet" | "untied"; model.N (ResNets)
 * and the solver options under ode.* (see ode.h). */
typedef struct {
  RnFlowKind kind;
  int N;
  RnOdeOptions ode;
} RnDepthOptions;
PetscErrorCode RnDepthOptionsFromConfig(RnConfig cfg, const char *prefix, RnDepthOptions *opt);
/* A short name for logs: "ode(dopri5, adaptive)", "resnet(N=16)". */
void RnDepthDescribe(const RnDepthOptions *opt, char *buf, size_t len);

#endif
