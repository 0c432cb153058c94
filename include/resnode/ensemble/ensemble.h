/* ensemble.h: SGD as a stochastic process on the risk of a depth-N tied
 * ResNet or of its neural-ODE limit, and ensembles of its realisations.
 *
 *   theta_{j+1} = theta_j - eta * g_j + sqrt(eta) * Sigma * xi_j
 *
 * g_j: the mini-batch (or full-batch) gradient of
 *   R^N(theta) = L^N(T_L(theta)) + gamma * H(theta),
 *   H(theta) = sum_k |theta_k|^q / q (q = 2: |theta|^2 / 2),
 * L^N the mean loss of the depth-N model over the data: for a field on
 * regression data mean_i |y_i - x_N(x_i)|^2; any RnEnsembleProblem otherwise
 * (the CIFAR network's cross-entropy, experiments/cifar.h).
 * Member m draws its initial theta, its noise xi_j and its mini-batch j from
 * the counter-based RNG keyed by (seed, m, j), identically for every depth
 * and for the limit (the coupling that makes theta_t - theta_t^N small in
 * variance). A member runs in one group of ranks: the mini-batch is split
 * over them and the gradient summed with one Allreduce. */
#ifndef RESNODE_ENSEMBLE_H
#define RESNODE_ENSEMBLE_H

#include "resnode/core/config.h"
#include "resnode/flow/flow.h"

typedef struct {
  /* data */
  int dim, samples;
  double *x, *y;      /* samples x dim each */
  /* model */
  double T;
  RnCap cap;
  double gamma, power;
  /* SGD */
  double eta;
  int steps, batch;   /* batch 0: full batch */
  double sigma;
  double *sigma_diag; /* NULL, or one per parameter */
  int nsigma_diag;
  int record_every;
  /* ensemble */
  int members;
  int first_member; /* member ids first_member .. first_member + members - 1 (array jobs) */
  int ndepths;
  int depths[64];
  PetscBool limit;
  RnOdeOptions ode;
  PetscBool classification; /* data.kind = "cifar": the experiment brings the data and network */
} RnEnsembleOptions;

/* Reads data.*, model.T, model.cap, model.cap_level, penalty.*, sgd.*,
 * ensemble.*, ode.*; the field itself is model.field (built per group). */
PetscErrorCode RnEnsembleOptionsFromConfig(RnConfig cfg, RnEnsembleOptions *opt);
PetscErrorCode RnEnsembleOptionsDestroy(RnEnsembleOptions *opt);

typedef struct RnEnsemble_s *RnEnsemble;

/* What a member's SGD needs of its problem, all at the capped parameters:
 * the gradient of the mean loss over mini-batch `step` of `member` (summed
 * over the group's ranks, which share the batch), the mean loss over the
 * whole data set (the risk without the penalty), and the initial parameters
 * (keyed by the member only: the same at every depth). A field on
 * regression data (RnEnsembleCreate) is one; the CIFAR network is another
 * (experiments/cifar.h). destroy (may be NULL) frees ctx. */
typedef struct {
  void *ctx;
  PetscErrorCode (*gradient)(void *ctx, int N, int member, int step, const double *capped, double *grad_sum);
  PetscErrorCode (*risk)(void *ctx, int N, const double *capped, double *loss);
  PetscErrorCode (*init)(void *ctx, int N, int member, double *theta);
  PetscErrorCode (*destroy)(void *ctx);
} RnEnsembleProblem;

/* comm: the group that runs members; field: the vector field (owned by the caller). */
PetscErrorCode RnEnsembleCreate(MPI_Comm comm, uint64_t seed, RnNet field, const RnEnsembleOptions *opt, RnEnsemble *ens);
/* The SGD process on a problem with p parameters (the problem's ctx is kept). */
PetscErrorCode RnEnsembleCreateWithProblem(MPI_Comm comm, uint64_t seed, PetscInt p, const RnEnsembleOptions *opt, const RnEnsembleProblem *problem, RnEnsemble *ens);
/* Mini-batch `step` of `member`: batch indices in [0, samples), drawn with
 * replacement from (seed, RN_STREAM_ORDER, member, step, i): the same at every depth. */
void RnEnsembleBatchIndices(uint64_t seed, int member, int step, int batch, int samples, int *idx);
/* Called after each SGD step's noise is drawn (tests read the coupling back). */
PetscErrorCode RnEnsembleSetStepMonitor(RnEnsemble ens, PetscErrorCode (*monitor)(void *ctx, int N, int member, int step, const double *noise, PetscInt p), void *ctx);
/* Number of parameters and of records (steps / record_every + 1). */
PetscInt RnEnsembleParamCount(RnEnsemble ens);
int RnEnsembleRecordCount(RnEnsemble ens);
/* The SGD step of record i: 0, record_every, 2 record_every, ..., and the last at sgd.steps. */
int RnEnsembleRecordStep(const RnEnsembleOptions *opt, int record);
/* Runs member m at depth N (N = 0: the ODE limit) in one go. Outputs (valid
 * on every rank of the group): risk[nrec] and theta[nrec * p] at the record
 * steps. (Tests and benchmarks; the experiment streams its records.) */
PetscErrorCode RnEnsembleRunMember(RnEnsemble ens, int member, int N, double *risk, double *theta);
/* One member's run as a flat state a checkpoint can hold, advanced a few
 * SGD steps at a time (RnEnsembleMemberStateLength doubles): [0] member,
 * [1] N, [2] SGD steps done, [3] reserved, then the current theta[p]. It
 * holds no records: the caller takes them as the record steps are reached.
 * A member resumed from its state continues bitwise as if never stopped. */
size_t RnEnsembleMemberStateLength(RnEnsemble ens);
PetscErrorCode RnEnsembleMemberBegin(RnEnsemble ens, int member, int N, double *state);
/* Up to `steps` more SGD steps, never past sgd.steps (collective on the group). */
PetscErrorCode RnEnsembleMemberAdvance(RnEnsemble ens, double *state, int steps);
/* The risk of the state's current theta (collective on the group); a
 * non-finite risk is an error (RN_ERR_NONFINITE) that names the member. */
PetscErrorCode RnEnsembleMemberRecord(RnEnsemble ens, double *state, double *risk);
double *RnEnsembleMemberTheta(RnEnsemble ens, double *state);
int RnEnsembleMemberSteps(RnEnsemble ens, const double *state);
/* The risk R^N(theta) on the whole data set (collective on the group). */
PetscErrorCode RnEnsembleRisk(RnEnsemble ens, int N, const double *theta, double *risk);
PetscErrorCode RnEnsembleDestroy(RnEnsemble *ens);

#endif
