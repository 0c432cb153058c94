/* The CIFAR-10 network: gradients of the whole network against finite
 * differences (ResNet and ODE paths, batch norm in training mode), and
 * training with the batch split over 2 ranks against 1 rank. */
#include "testutil.h"

#include <math.h>
#include <string.h>

#include "resnode/models/cifar.h"
#include "resnode/nn/optim.h"
#include "resnode/core/rng.h"
#include "resnode/data/data.h"
#include "resnode/core/config.h"

typedef struct {
  RnCifarModel m;
  int batch;
} Net;

static double Loss(const double *theta, void *ctx)
{
  Net *n = ctx;
  double l;
  int c;
  RnCifarModelPass(&n->m, n->batch, n->batch, theta, NULL, &l, &c);
  return l / n->batch;
}

static void SetupWith(Net *n, MPI_Comm comm, RnActivation act, RnFlowKind kind, int C, int batch, int first, double **theta)
{
  RnOdeOptions ode;
  RnOdeOptionsDefault(&ode);
  strcpy(ode.solver, "rk4");
  ode.steps = 2;
  RN_TEST_OK(RnCifarModelCreate(comm, C, act, kind, 2, &ode, RN_PRECISION_FLOAT64, &n->m));
  RN_TEST_OK(RnCifarModelReserve(&n->m, PetscMax(batch, 1)));
  n->batch = batch;
  *theta = malloc(sizeof(double) * n->m.n);
  RN_TEST_OK(RnCifarModelInit(&n->m, 1, 0, *theta));
  /* images keyed by their global index */
  for (int s = 0; s < batch; s++) {
    RnRandNormal(9, RN_STREAM_TEST, 1, (uint32_t)(first + s), 3072, n->m.x + (size_t)s * 3072);
    n->m.labels[s] = (first + s) % 10;
  }
}

static void Setup(Net *n, MPI_Comm comm, RnFlowKind kind, int C, int batch, int first, double **theta) { SetupWith(n, comm, RN_ACT_RELU, kind, C, batch, first, theta); }

static void CheckFD(RnActivation act, RnFlowKind kind)
{
  Net n;
  double *theta, *grad, l;
  int c;
  SetupWith(&n, PETSC_COMM_SELF, act, kind, 2, 4, 0, &theta);
  grad = calloc(n.m.n, sizeof(double));
  RN_TEST_OK(RnCifarModelPass(&n.m, 4, 4, theta, grad, &l, &c));
  double err = RnTestGradCheck(Loss, &n, (int)n.m.n, theta, grad, 1e-6, 80);
  if (rn_test_rank == 0) printf("\n    %s network, %s (C = 2, %d parameters): FD rel. error %.2e ", kind == RN_FLOW_ODE ? "ODE" : "ResNet", RnActivationNames[act], (int)n.m.n, err);
  CU_ASSERT(err < 1e-6);
  free(grad), free(theta);
  RnCifarModelDestroy(&n.m);
}

static void test_network_fd_resnet(void) { CheckFD(RN_ACT_RELU, RN_FLOW_RESNET); }
static void test_network_fd_ode(void) { CheckFD(RN_ACT_RELU, RN_FLOW_ODE); }
/* model.activation: every smooth choice, both paths */
static void test_network_fd_smooth(void)
{
  for (int a = 1; RnCifarActivationNames[a]; a++) {
    RnConfig cfg;
    RnActivation act;
    char set[64];
    RN_TEST_OK(RnConfigCreate(PETSC_COMM_SELF, &cfg));
    RN_TEST_OK(RnConfigLoadString(cfg, "test", "experiment = \"cifar\";"));
    snprintf(set, sizeof set, "model.activation=\"%s\"", RnCifarActivationNames[a]);
    RN_TEST_OK(RnConfigSet(cfg, set));
    RN_TEST_OK(RnCifarActivationFromConfig(cfg, &act));
    CU_ASSERT_STRING_EQUAL(RnActivationNames[act], RnCifarActivationNames[a]);
    CheckFD(act, RN_FLOW_RESNET);
    CheckFD(act, RN_FLOW_ODE);
    RnConfigDestroy(&cfg);
  }
}

/* three Adam steps on one rank and on the ranks of PETSC_COMM_WORLD */
static void CheckSplitTraining(RnFlowKind kind)
{
  const int B = 6, lo = B * rn_test_rank / rn_test_size, hi = B * (rn_test_rank + 1) / rn_test_size;
  Net whole, part;
  double *tw, *tp;
  RnOptim ow, op;
  RnOptimOptions oo;
  Setup(&whole, PETSC_COMM_SELF, kind, 3, B, 0, &tw);
  Setup(&part, PETSC_COMM_WORLD, kind, 3, hi - lo, lo, &tp);
  const PetscInt n = whole.m.n;
  double *gw = malloc(sizeof(double) * n), *gp = malloc(sizeof(double) * n), *gs = malloc(sizeof(double) * n), l, worst = 0;
  int c;
  RnOptimOptionsDefault(&oo);
  RnOptimCreate(n, &oo, &ow);
  RnOptimCreate(n, &oo, &op);
  for (int step = 0; step < 3; step++) {
    memset(gw, 0, sizeof(double) * n);
    memset(gp, 0, sizeof(double) * n);
    RN_TEST_OK(RnCifarModelPass(&whole.m, B, B, tw, gw, &l, &c));
    RN_TEST_OK(RnCifarModelPass(&part.m, hi - lo, B, tp, gp, &l, &c));
    MPI_Allreduce(gp, gs, (int)n, MPI_DOUBLE, MPI_SUM, PETSC_COMM_WORLD);
    RnOptimStep(ow, 1.0, tw, gw);
    RnOptimStep(op, 1.0, tp, gs);
  }
  for (PetscInt i = 0; i < n; i++) worst = fmax(worst, RnTestRelErr(tw[i], tp[i], 1e-3));
  if (rn_test_rank == 0) printf("\n    %s: parameters after 3 steps on %d ranks vs 1: %.1e ", kind == RN_FLOW_ODE ? "ODE" : "ResNet", rn_test_size, worst);
  CU_ASSERT(worst <= 1e-12);
  RnOptimDestroy(&ow), RnOptimDestroy(&op);
  free(gw), free(gp), free(gs), free(tw), free(tp);
  RnCifarModelDestroy(&whole.m);
  RnCifarModelDestroy(&part.m);
}

static void test_split_resnet(void) { CheckSplitTraining(RN_FLOW_RESNET); }
static void test_split_ode(void) { CheckSplitTraining(RN_FLOW_ODE); }

/* ---- the network as an SGD-ensemble problem ---- */

static RnDataset EnsembleData(void)
{
  char dir[256];
  RnDataset ds;
  RnTestTempDir("rn-cifar-ens", dir, sizeof dir);
  if (rn_test_rank == 0) RnCifarWriteSynthetic(dir, 40, 7);
  MPI_Barrier(PETSC_COMM_WORLD);
  RN_TEST_OK(RnCifarLoad(PETSC_COMM_WORLD, dir, PETSC_TRUE, 0, &ds));
  return ds;
}

static void EnsembleOptions(RnEnsembleOptions *o, RnCifarEnsembleOptions *c, RnPrecision precision)
{
  memset(o, 0, sizeof *o);
  o->classification = PETSC_TRUE;
  o->T = 1, o->cap.kind = RN_CAP_NONE, o->gamma = 0, o->power = 2;
  o->eta = 0.1, o->steps = 1, o->batch = 8, o->sigma = 0, o->record_every = 1, o->members = 4;
  RnOdeOptionsDefault(&o->ode);
  strcpy(o->ode.solver, "rk4");
  o->ode.steps = 2;
  c->channels = 4, c->activation = RN_ACT_RELU, c->batch = 8, c->eval_batch = 50, c->precision = precision, c->convolution = RN_CONV_AUTO, c->ode = o->ode;
}

/* One SGD step of a member is theta0 - eta g, g the CIFAR experiment's
 * gradient (RnCifarModelPass, inference-mode batch norm) on the member's
 * batch, at the same parameters and precision: bitwise. */
static void test_ensemble_step(void)
{
  RnDataset ds = EnsembleData();
  for (int k = 0; k < 2; k++) {
    const RnPrecision precision = k ? RN_PRECISION_FLOAT32 : RN_PRECISION_FLOAT64;
    RnEnsembleOptions o;
    RnCifarEnsembleOptions c;
    RnEnsembleProblem problem;
    RnEnsemble ens;
    RnCifarModel m;
    PetscInt p;
    double mean[3072], risk[2], *rec, *g, *gsum, l;
    int idx[8], hits, same = 1;
    const int lo = 8 * rn_test_rank / rn_test_size, hi = 8 * (rn_test_rank + 1) / rn_test_size;
    EnsembleOptions(&o, &c, precision);
    RN_TEST_OK(RnCifarEnsembleProblemCreate(PETSC_COMM_WORLD, 5, ds, &c, &problem, &p));
    RN_TEST_OK(RnEnsembleCreateWithProblem(PETSC_COMM_WORLD, 5, p, &o, &problem, &ens));
    rec = malloc(sizeof(double) * 2 * p), g = calloc(p, sizeof(double)), gsum = malloc(sizeof(double) * p);
    RN_TEST_OK(RnEnsembleRunMember(ens, 3, 2, risk, rec));
    /* by hand, with the experiment's own pieces */
    RN_TEST_OK(RnCifarModelCreate(PETSC_COMM_WORLD, 4, RN_ACT_RELU, RN_FLOW_RESNET, 2, NULL, precision, &m));
    RN_TEST_OK(RnCifarModelSetTraining(&m, PETSC_FALSE));
    RN_TEST_OK(RnCifarModelReserve(&m, 8));
    double *theta0 = malloc(sizeof(double) * p);
    RN_TEST_OK(RnCifarModelInit(&m, 5, 3, theta0));
    RN_TEST_OK(RnDatasetMeanStd(ds, mean, NULL));
    RnEnsembleBatchIndices(5, 3, 0, 8, ds->n, idx);
    RN_TEST_OK(RnDatasetGetBatch(ds, idx + lo, hi - lo, mean, NULL, NULL, 0, 0, m.x, m.labels));
    RN_TEST_OK(RnCifarModelPass(&m, hi - lo, 8, theta0, g, &l, &hits));
    MPI_Allreduce(g, gsum, (int)p, MPI_DOUBLE, MPI_SUM, PETSC_COMM_WORLD);
    for (PetscInt i = 0; i < p; i++) same &= rec[i] == theta0[i] && rec[p + i] == theta0[i] - 0.1 * gsum[i];
    if (rn_test_rank == 0) printf("\n    %s: the member's step %s theta0 - eta g of RnCifarModelPass ", RnPrecisionNames[precision], same ? "equals" : "DIFFERS from");
    CU_ASSERT(same);
    free(rec), free(g), free(gsum), free(theta0);
    RnCifarModelDestroy(&m);
    RnEnsembleDestroy(&ens);
  }
  RnDatasetDestroy(&ds);
}

/* What a member draws, read back while it runs: its batches (from the
 * problem) and its noise (a step monitor), at N = 2, 4 and the ODE. */
typedef struct {
  RnEnsembleProblem inner;
  int depth_index;
  uint64_t batch_hash[3][2][6], noise_hash[3][2][6]; /* [depth][member][step] */
} Spy;

static uint64_t Hash(const void *data, size_t bytes)
{
  const unsigned char *b = data;
  uint64_t h = 1469598103934665603ULL;
  for (size_t i = 0; i < bytes; i++) h = (h ^ b[i]) * 1099511628211ULL;
  return h;
}

static PetscErrorCode SpyGradient(void *ctx, int N, int member, int step, const double *capped, double *grad_sum)
{
  Spy *s = ctx;
  const int *idx;
  int count;
  PetscCall(s->inner.gradient(s->inner.ctx, N, member, step, capped, grad_sum));
  PetscCall(RnCifarEnsembleLastBatch(&s->inner, &idx, &count));
  s->batch_hash[s->depth_index][member - 2][step] = Hash(idx, sizeof(int) * count);
  return 0;
}
static PetscErrorCode SpyRisk(void *ctx, int N, const double *capped, double *loss) { return ((Spy *)ctx)->inner.risk(((Spy *)ctx)->inner.ctx, N, capped, loss); }
static PetscErrorCode SpyInit(void *ctx, int N, int member, double *theta) { return ((Spy *)ctx)->inner.init(((Spy *)ctx)->inner.ctx, N, member, theta); }
static PetscErrorCode SpyNoise(void *ctx, int N, int member, int step, const double *noise, PetscInt p)
{
  Spy *s = ctx;
  s->noise_hash[s->depth_index][member - 2][step] = Hash(noise, sizeof(double) * p);
  return 0;
}

static void test_ensemble_coupling(void)
{
  RnDataset ds = EnsembleData();
  RnEnsembleOptions o;
  RnCifarEnsembleOptions c;
  Spy spy;
  RnEnsembleProblem wrapped;
  RnEnsemble ens;
  PetscInt p;
  const int depths[3] = {2, 4, 0};
  int coupled = 1, varied = 1;
  double risk[8], *rec;

  EnsembleOptions(&o, &c, RN_PRECISION_FLOAT32);
  o.steps = 6, o.record_every = 3, o.sigma = 0.05;
  RN_TEST_OK(RnCifarEnsembleProblemCreate(PETSC_COMM_WORLD, 5, ds, &c, &spy.inner, &p));
  wrapped = (RnEnsembleProblem){&spy, SpyGradient, SpyRisk, SpyInit, NULL};
  RN_TEST_OK(RnEnsembleCreateWithProblem(PETSC_COMM_WORLD, 5, p, &o, &wrapped, &ens));
  RN_TEST_OK(RnEnsembleSetStepMonitor(ens, SpyNoise, &spy));
  rec = malloc(sizeof(double) * 3 * p);
  for (int d = 0; d < 3; d++)
    for (int m = 2; m < 4; m++) {
      spy.depth_index = d;
      RN_TEST_OK(RnEnsembleRunMember(ens, m, depths[d], risk, rec));
    }
  for (int d = 1; d < 3; d++)
    for (int m = 0; m < 2; m++)
      for (int j = 0; j < 6; j++) coupled &= spy.batch_hash[d][m][j] == spy.batch_hash[0][m][j] && spy.noise_hash[d][m][j] == spy.noise_hash[0][m][j];
  for (int j = 0; j < 6; j++) varied &= spy.batch_hash[0][0][j] != spy.batch_hash[0][1][j] && spy.noise_hash[0][0][j] != spy.noise_hash[0][1][j] && (j == 0 || spy.noise_hash[0][0][j] != spy.noise_hash[0][0][j - 1]);
  if (rn_test_rank == 0) printf("\n    batches and noise of members 2, 3 read back at N = 2, 4 and the ODE: %s across depths, %s across members and steps ", coupled ? "identical" : "DIFFERENT", varied ? "different" : "NOT different");
  CU_ASSERT(coupled);
  CU_ASSERT(varied);
  free(rec);
  RN_TEST_OK(spy.inner.destroy(spy.inner.ctx));
  RnEnsembleDestroy(&ens);
  RnDatasetDestroy(&ds);
}

/* The initial parameters of every layer with random weights, as slices of the
 * flat buffer: (offset, length). */
typedef struct {
  int n;
  PetscInt offset[512], length[512];
} RandomSlices;

static void AddRandomSlices(RnNet net, PetscInt base, RandomSlices *s)
{
  for (int i = 0; i < net->nlayers; i++) {
    const RnLayer l = net->layers[i];
    if (l->type != RN_LAYER_CONV2D && l->type != RN_LAYER_DENSE) continue;
    s->offset[s->n] = base + net->param_offset[i];
    s->length[s->n] = l->nparams;
    s->n++;
  }
}

/* Two layers drawn from the same stream (rng.h: RN_STREAM_INIT keyed by the
 * layer id) have initial weights u_k scaled by their own bounds: the leading
 * values of one are a multiple of the other's. */
static int SameStream(const double *a, const double *b, PetscInt n)
{
  const double ratio = b[0] / a[0];
  for (PetscInt k = 1; k < n; k++)
    if (fabs(b[k] - ratio * a[k]) > 1e-12 * fabs(b[k])) return 0;
  return 1;
}

/* No two layers of the CIFAR network share an initialisation stream, at any
 * depth: untied N = 64 uses 192 block layer ids (the head's ids were once
 * fixed at 200, inside the block's at N >= 34). Also: the tied ResNet and the
 * ODE keep the head's ids, so their initial parameters are as before. */
static void test_init_streams(void)
{
  const struct {
    RnFlowKind kind;
    int N;
  } models[] = {{RN_FLOW_UNTIED, 64}, {RN_FLOW_UNTIED, 33}, {RN_FLOW_RESNET, 64}, {RN_FLOW_ODE, 0}};
  const PetscInt lead = 8; /* leading values compared */
  for (size_t k = 0; k < sizeof models / sizeof models[0]; k++) {
    RnCifarModel m;
    RandomSlices s = {0};
    double *theta;
    int shared = 0;
    uint32_t stem, block, head;
    RN_TEST_OK(RnCifarModelCreate(PETSC_COMM_SELF, 2, RN_ACT_RELU, models[k].kind, models[k].N, NULL, RN_PRECISION_FLOAT64, &m));
    theta = malloc(sizeof(double) * m.n);
    RN_TEST_OK(RnCifarModelInit(&m, 5, 0, theta));
    RN_TEST_OK(RnCifarModelLayerIds(&m, &stem, &block, &head));
    AddRandomSlices(m.stem, 0, &s);
    for (int step = 0; step < (models[k].kind == RN_FLOW_UNTIED ? models[k].N : 1); step++) AddRandomSlices(m.field, m.nstem + (PetscInt)step * m.field->nparams, &s);
    AddRandomSlices(m.head, m.nstem + m.nblock, &s);
    for (int i = 0; i < s.n; i++)
      for (int j = i + 1; j < s.n; j++) shared += SameStream(theta + s.offset[i], theta + s.offset[j], PetscMin(lead, PetscMin(s.length[i], s.length[j])));
    if (rn_test_rank == 0) printf("\n    %s N = %d: %d layers with random weights, %d pairs sharing a stream; head ids from %u ", RnFlowKindNames[models[k].kind], models[k].N, s.n, shared, head);
    CU_ASSERT(shared == 0);
    if (models[k].kind != RN_FLOW_UNTIED || models[k].N < 34) CU_ASSERT(head == 200);
    free(theta);
    RnCifarModelDestroy(&m);
  }
}

static void Register(void)
{
  RnTestAddSuite("cifar_network", "network_fd_resnet", test_network_fd_resnet, "network_fd_ode", test_network_fd_ode, "network_fd_smooth", test_network_fd_smooth, "split_resnet", test_split_resnet, "split_ode",
                 test_split_ode, "ensemble_step", test_ensemble_step, "ensemble_coupling", test_ensemble_coupling, "init_streams", test_init_streams, NULL);
}

int main(int argc, char **argv) { return RnTestMain(argc, argv, Register); }
