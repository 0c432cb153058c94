/* keys.c: the key reference (resnode-mpi --keys), the one place where the
 * meaning of every key is written; the validator's messages quote it (a
 * missing key, a did-you-mean: RnAppKeyMeaning).
 *
 * A key's type, default and range are not written here: the getters record
 * them as they validate (config.h: RnConfigKeyDescribe), so the reference
 * is made by reading each experiment's options from an empty config in
 * describing mode. Keys read only on some branch (train.momentum with
 * optimizer "sgd") are reached by the probes below. docs/reference.md's
 * tables are this output (scripts/update-reference), and the test
 * `reference` fails when they differ, when a key has no meaning here, or
 * when a meaning here names no key. */
#include "appimpl.h"

#include <string.h>

#define RN_PROBE_SETS 4   /* --set lines of one probe */
#define RN_KEYS_MAX   512 /* keys of one experiment */

typedef struct {
  const char *experiment; /* NULL: the key's meaning in every experiment */
  const char *key;
  const char *def; /* NULL: the validator's default; else what to show (a default computed at run time) */
  const char *meaning;
} KeyDoc;

/* Configs that take the branches an empty config does not (beside the empty one). */
typedef struct {
  const char *experiment;
  const char *sets[RN_PROBE_SETS];
} KeyProbe;

static const KeyProbe rn_key_probes[] = {
  {"node-fit", {"train.optimizer=\"sgd\"", "model.field=({type=\"conv\"; channels=2; kernel=1;}, {type=\"batchnorm\";}, {type=\"avgpool\"; size=1;}, {type=\"dense\"; out=2;})"}},
  {"identity", {"train.optimizer=\"sgd\""}},
  {"ensemble", {"data.kind=\"csv\""}},
  {"ensemble", {"data.kind=\"cifar\""}},
  {"ensemble", {"model.field=({type=\"dense\"; out=2;})", "sgd.sigma_diag=[0.1, 0.1, 0.1, 0.1, 0.1, 0.1]"}}, /* 2x2 weights and 2 biases */
  {"cifar", {"data.folds=3", "data.augment.shift_fraction=0.1"}},
  {"cifar", {"train.optimizer=\"sgd\""}},
  {"annulus", {"train.optimizer=\"sgd\""}},
  {NULL, {NULL}},
};

static const KeyDoc rn_key_docs[] = {
  /* every experiment */
  {NULL, "experiment", NULL, "which experiment the config runs"},
  {NULL, "seed", NULL, "root of every random number (counter-based Philox; results do not depend on the rank count)"},
  {NULL, "verbose", NULL, "0 quiet, 1 progress, 2 debug"},
  {NULL, "run.dir", "\"runs/EXPERIMENT-DATE-TIME\"", "the run directory (results, log, manifest, checkpoints); an existing one with a checkpoint is resumed"},
  {NULL, "output.plot", NULL, "run the analysis command (plots, report) at the end of the job, on rank 0"},
  {NULL, "checkpoint.every_steps", NULL, "checkpoint every this many steps (0: by time only)"},
  {NULL, "checkpoint.every_seconds", NULL, "checkpoint when this many seconds passed since the last (0: by steps only)"},
  {NULL, "checkpoint.keep", NULL, "complete checkpoints kept (the newest)"},
  {NULL, "parallel.groups", NULL, "groups of ranks that train units side by side; must divide the rank count"},
  {"ensemble", "parallel.groups", "the rank count", "groups of ranks that train members side by side (one per rank: every group holds M / groups members); must divide the rank count"},
  {"annulus", "parallel.groups", "the rank count", "groups of ranks that train units (a depth and a fold) side by side; must divide the rank count"},
  {"cifar", "parallel.groups", NULL, "groups of ranks that train units side by side; must divide the rank count; 0: one group per node; \"auto\": the count with the least predicted wall time"},
  /* the ODE solve (ode.*) */
  {NULL, "ode.solver", NULL, "a TSRK type: euler (1fe), rk4 (4), dopri5 (5dp), bosh3 (3bs), and PETSc's own names"},
  {NULL, "ode.adaptive", NULL, "adaptive steps (needs an embedded pair: dopri5, bosh3, 5f, 5bs, 2b, 6vr, 7vr, 8vr)"},
  {NULL, "ode.steps", NULL, "fixed steps on [0, T]"},
  {NULL, "ode.rtol", NULL, "relative tolerance of an adaptive solve"},
  {NULL, "ode.atol", NULL, "absolute tolerance of an adaptive solve"},
  {NULL, "ode.dt0", NULL, "first step of an adaptive solve (0: T / 100)"},
  {NULL, "ode.max_steps", NULL, "a solve that needs more steps stops with an error"},
  {NULL, "ode.adjoint", NULL, "\"discrete\" (exact gradient of the discretised map, TSAdjoint) or \"backsolve\" (the continuous adjoint integrated backwards: inexact, for comparison)"},
  {NULL, "ode.checkpoint_schedule", NULL, "\"none\" (PETSc keeps the whole trajectory), \"uniform\" (a checkpoint every ode.checkpoints steps), \"binomial\" (revolve-style, ode.checkpoints checkpoints: memory flat in the steps)"},
  {NULL, "ode.checkpoints", NULL, "the checkpoint schedule's parameter (see ode.checkpoint_schedule)"},
  {NULL, "ode.tape_cache_mb", NULL, "per rank: the field's tapes of a recorded solve kept for the adjoint (bitwise the same gradient, 25% less work for rk4); 0 recomputes them"},
  /* the optimizer (train.* in node-fit, identity, cifar, annulus) */
  {NULL, "train.optimizer", NULL, "the optimizer"},
  {NULL, "train.lr", NULL, "learning rate"},
  {NULL, "train.weight_decay", NULL, "L2 weight decay (added to the gradient)"},
  {NULL, "train.momentum", NULL, "heavy-ball momentum of \"sgd\""},
  {NULL, "train.beta1", NULL, "Adam's first-moment decay"},
  {NULL, "train.beta2", NULL, "Adam's second-moment decay"},
  {NULL, "train.eps", NULL, "Adam's epsilon, added to sqrt(v) (Keras' convention)"},
  {NULL, "train.lr_schedule.epochs", NULL, "epochs at which the learning rate steps down"},
  {NULL, "train.lr_schedule.factors", NULL, "the factor of the initial rate from each of those epochs on"},
  {NULL, "train.plateau.enable", NULL, "reduce the rate when train.plateau.metric stops improving"},
  {NULL, "train.plateau.metric", NULL, "the metric watched"},
  {NULL, "train.plateau.factor", NULL, "factor applied to the rate on a plateau"},
  {NULL, "train.plateau.patience", NULL, "epochs without improvement before the rate is reduced"},
  {NULL, "train.plateau.min_lr", NULL, "the rate is not reduced below this"},
  {NULL, "train.plateau.min_delta", NULL, "improvement smaller than this does not count"},
  {NULL, "train.log_every", NULL, "progress line every this many steps"},
  {NULL, "train.batch", NULL, "mini-batch size"},
  /* a vector field as a list of layers (node-fit, ensemble) */
  {NULL, "model.field", NULL, "the vector field f_theta: a list of layers applied in order"},
  {NULL, "model.field.[i].type", NULL, "the layer"},
  {NULL, "model.field.[i].out", "the input's size", "outputs of a dense layer"},
  {NULL, "model.field.[i].activation", NULL, "activation after a dense or conv layer"},
  {NULL, "model.field.[i].channels", "the input's channels", "output channels of a conv layer"},
  {NULL, "model.field.[i].kernel", NULL, "kernel size of a conv layer"},
  {NULL, "model.field.[i].stride", NULL, "stride of a conv layer"},
  {NULL, "model.field.[i].pad", "kernel / 2", "zero padding of a conv layer"},
  {NULL, "model.field.[i].momentum", NULL, "momentum of a batchnorm layer's running statistics"},
  {NULL, "model.field.[i].size", NULL, "window of an avgpool layer"},
  /* node-fit */
  {"node-fit", "data.A", NULL, "the matrix A (row-major 2x2) of the test equation du/dt = A u^3"},
  {"node-fit", "data.u0", NULL, "the initial state u(0)"},
  {"node-fit", "data.samples", NULL, "sample times of the trajectory in [0, t_end], the targets"},
  {"node-fit", "data.t_end", NULL, "the end of the trajectory"},
  {"node-fit", "data.rtol", NULL, "tolerance of the reference solve that makes the targets"},
  {"node-fit", "model.depth", NULL, "\"ode\" (the neural ODE) or \"resnet\" (N tied residual steps)"},
  {"node-fit", "model.N", NULL, "steps of the ResNet"},
  {"node-fit", "train.iterations", NULL, "optimizer steps (full batch)"},
  {"node-fit", "output.plot_points", NULL, "points of the fitted trajectory in the plot"},
  /* identity */
  {"identity", "data.xmax", NULL, "training points x = y in [-xmax, xmax]"},
  {"identity", "data.points", NULL, "training points"},
  {"identity", "train.max_epochs", NULL, "epochs at most; training stops at train.target_mse"},
  {"identity", "train.target_mse", NULL, "mean squared error that counts as fitted"},
  /* ensemble */
  {"ensemble", "ensemble.preset", NULL, "\"reduced\" or \"full\" (the paper's): the defaults of sgd.steps (400 with \"full\"), sgd.record_every (20), ensemble.members (64) and ensemble.depths"},
  {"ensemble", "ensemble.members", NULL, "independent SGD runs (members); the statistics are over members (64 with preset \"full\")"},
  {"ensemble", "ensemble.first_member", NULL, "the first member's index (an array task's share of one ensemble)"},
  {"ensemble", "ensemble.depths", NULL, "the ResNet depths N ([2, ..., 128] with preset \"full\")"},
  {"ensemble", "ensemble.limit", NULL, "also train the limit (the ODE) as the reference; false: the deepest N is the reference"},
  {"ensemble", "ensemble.stats", NULL, "\"covariance\" (the p x p covariance), \"gram\" (M x M products of the member matrices split over the ranks: the M leading eigenvalues) or \"auto\" (covariance up to p = 2048)"},
  {"ensemble", "ensemble.save_parameters", NULL, "\"final\" (the parameters of the last record), \"every\" (of every record, to merge an array's runs) or \"none\""},
  {"ensemble", "ensemble.save_precision", NULL, "the precision of the saved parameters in params.h5 (\"float32\" halves it; needs output.arrays = \"hdf5\")"},
  {"ensemble", "output.arrays", NULL, "where the large arrays go: \"csv\" (gram.csv, snapshots/theta-step<j>.bin) or \"hdf5\" (gram.h5 and params.h5: named dimensions, checksummed chunks, parallel writes)"},
  {"ensemble", "ensemble.limit_check", NULL, "at the end, the limit members' risk again with a finer solve, against e_R at the deepest N (limit.csv)"},
  {"ensemble", "data.kind", NULL, "\"synthetic\" (a smooth map of uniform points), \"csv\" (data.file) or \"cifar\" (CIFAR-10 classification)"},
  {"ensemble", "data.dim", NULL, "the dimension d of x and y"},
  {"ensemble", "data.samples", NULL, "synthetic points"},
  {"ensemble", "data.target", NULL, "the synthetic map: \"sine\" y = x + a sin(pi x), or \"linear\" y = a x"},
  {"ensemble", "data.amplitude", NULL, "a in the synthetic map"},
  {"ensemble", "data.seed", NULL, "the seed of the synthetic points (fixed across members)"},
  {"ensemble", "data.file", NULL, "the CSV of data.kind = \"csv\": rows of x then y"},
  {"ensemble", "data.dir", NULL, "the CIFAR-10 binary directory (data_batch_1.bin ...), relative to the file that sets it"},
  {"ensemble", "data.max_train", NULL, "the first this many training images"},
  {"ensemble", "model.T", NULL, "the time horizon T of the flow (N steps of T/N)"},
  {"ensemble", "model.cap", NULL, "the cap T_L on the parameters inside the field: \"smooth\", \"hard\" or \"none\""},
  {"ensemble", "model.cap_level", NULL, "the cap's level"},
  {"ensemble", "model.channels", NULL, "channels C of the CIFAR network"},
  {"ensemble", "model.activation", NULL, "the nonlinearity of the CIFAR network (stem, field, head)"},
  {"ensemble", "model.precision", NULL, "arithmetic of the CIFAR network (float32 and bfloat16 through oneDNN; float64 the reference)"},
  {"ensemble", "model.convolution", NULL, "3x3 convolutions: \"auto\" (Winograd where oneDNN has it) or \"direct\""},
  {"ensemble", "penalty.gamma", NULL, "weight gamma of the penalty gamma |theta|^p"},
  {"ensemble", "penalty.power", NULL, "the penalty's even power p"},
  {"ensemble", "sgd.eta", NULL, "SGD's step size"},
  {"ensemble", "sgd.steps", NULL, "SGD steps (400 with preset \"full\")"},
  {"ensemble", "sgd.batch", NULL, "mini-batch size (0: full batch)"},
  {"ensemble", "sgd.sigma", NULL, "the injected gradient noise's standard deviation"},
  {"ensemble", "sgd.sigma_diag", NULL, "per-parameter noise standard deviations (one per parameter), instead of sgd.sigma"},
  {"ensemble", "sgd.record_every", NULL, "record the statistics every this many steps (20 with preset \"full\")"},
  {"ensemble", "sgd.eval_batch", NULL, "images per evaluation pass of the CIFAR risk"},
  /* cifar */
  {"cifar", "data.dir", NULL, "the CIFAR-10 binary directory (data_batch_1.bin ...), relative to the file that sets it"},
  {"cifar", "data.max_train", NULL, "the first this many training images (0: all 50000)"},
  {"cifar", "data.max_test", NULL, "the first this many test images (0: all 10000)"},
  {"cifar", "data.folds", NULL, "k of k-fold cross-validation (1: a held-out validation split)"},
  {"cifar", "data.validation", NULL, "images held out for validation with data.folds = 1"},
  {"cifar", "data.fold", NULL, "train this fold only (an array task per fold); -1: every fold"},
  {"cifar", "data.normalize_std", NULL, "divide by the per-channel standard deviation (false: subtract the mean only)"},
  {"cifar", "data.augment.enable", NULL, "random shifts and flips of the training images"},
  {"cifar", "data.augment.shift_fraction", NULL, "shift range as a fraction of the image (sub-pixel, bilinear); 0: whole pixels (data.augment.shift)"},
  {"cifar", "data.augment.shift", NULL, "shift range in whole pixels"},
  {"cifar", "data.augment.flip", NULL, "random horizontal flips"},
  {"cifar", "data.augment.fill", NULL, "pixels shifted in: \"edge\" (nearest) or \"zero\""},
  {"cifar", "model.channels", NULL, "channels C of every layer"},
  {"cifar", "model.activation", NULL, "the nonlinearity (stem, field, head)"},
  {"cifar", "model.batchnorm.momentum", NULL, "Keras' convention: the weight of the old running statistics"},
  {"cifar", "model.batchnorm.eps", NULL, "batch norm's epsilon"},
  {"cifar", "model.precision", NULL, "arithmetic (float32 and bfloat16 through oneDNN; float64 the reference)"},
  {"cifar", "model.convolution", NULL, "3x3 convolutions: \"auto\" (Winograd where oneDNN has it) or \"direct\""},
  {"cifar", "model.depths", NULL, "the tied ResNets' depths N"},
  {"cifar", "model.ode", NULL, "also train the neural ODE"},
  {"cifar", "model.untied", NULL, "separate weights per residual step (a classic ResNet)"},
  {"cifar", "train.epochs", NULL, "epochs"},
  {"cifar", "train.eval_batch", NULL, "images per evaluation pass"},
  {"cifar", "parallel.half_rate_batch", NULL, "the cost model of \"auto\" groups: images per rank at which a rank runs at half its rate"},
  /* annulus */
  {"annulus", "data.samples", NULL, "points of the two rings"},
  {"annulus", "data.pad_dims", NULL, "zero dimensions appended to the 2-D points"},
  {"annulus", "model.width", NULL, "width of the residual field"},
  {"annulus", "model.depths", NULL, "the tied ResNets' depths N"},
  {"annulus", "model.ode", NULL, "also train the neural ODE"},
  {"annulus", "train.epochs", NULL, "epochs"},
  {"annulus", "train.folds", NULL, "k of k-fold cross-validation"},
  {NULL, NULL, NULL, NULL},
};

typedef struct {
  char key[160], type[24], def[200], range[400];
} KeyRow;

/* The meaning of key in experiment (NULL: any experiment's) */
static const KeyDoc *FindDoc(const char *experiment, const char *key)
{
  const KeyDoc *generic = NULL, *any = NULL;
  for (const KeyDoc *d = rn_key_docs; d->key; d++) {
    if (strcmp(d->key, key)) continue;
    if (d->experiment && experiment && !strcmp(d->experiment, experiment)) return d;
    if (!d->experiment) generic = d;
    else if (!any) any = d;
  }
  return generic ? generic : (experiment ? NULL : any);
}

const char *RnAppKeyMeaning(const char *key, void *experiment)
{
  const RnExperiment *const *e = experiment;
  const KeyDoc *d = FindDoc(e && *e ? (*e)->name : NULL, key);
  return d ? d->meaning : NULL;
}

/* text with '|' escaped, for a markdown cell */
static void Cell(const char *text)
{
  for (; *text; text++) {
    if (*text == '|') putchar('\\');
    putchar(*text);
  }
}

/* Read the experiment's keys from an empty config plus one probe's --set lines, describing only. */
static PetscErrorCode CollectKeys(RnCtx ctx, const RnExperiment *experiment, const char *const *sets, KeyRow *rows, int *nrows)
{
  RnConfig cfg;
  const RnExperiment *read;
  char text[128], run_dir[PETSC_MAX_PATH_LEN];
  PetscBool plot;
  void *options = NULL;

  PetscFunctionBeginUser;
  PetscCall(RnConfigCreate(ctx->world, &cfg));
  PetscCall(PetscSNPrintf(text, sizeof text, "experiment = \"%s\";\n", experiment->name));
  PetscCall(RnConfigLoadString(cfg, "<keys>", text));
  RnConfigSetDescribing(cfg, PETSC_TRUE);
  for (int i = 0; sets && i < RN_PROBE_SETS && sets[i]; i++) PetscCall(RnConfigSet(cfg, sets[i]));
  PetscCall(RnAppReadCommon(ctx, cfg, &read, run_dir, sizeof run_dir, &plot));
  PetscCall(experiment->read_options(ctx, cfg, &options));
  PetscCall(PetscFree(options));
  for (int i = 0; i < RnConfigKeyCount(cfg); i++) {
    const char *key, *type, *def, *range;
    int k;
    RnConfigKeyDescribe(cfg, i, &key, &type, &def, &range);
    for (k = 0; k < *nrows; k++)
      if (!strcmp(rows[k].key, key)) break;
    if (k < *nrows || k == RN_KEYS_MAX) continue;
    /* a key only a probe reaches goes after its group's last key */
    for (size_t n = strlen(key); n > 0 && sets; n--) {
      int last = -1;
      if (key[n - 1] != '.') continue;
      for (int j = 0; j < *nrows; j++)
        if (!strncmp(rows[j].key, key, n)) last = j;
      if (last >= 0) {
        memmove(rows + last + 2, rows + last + 1, (size_t)(*nrows - last - 1) * sizeof *rows);
        k = last + 1;
        break;
      }
    }
    PetscCall(PetscStrncpy(rows[k].key, key, sizeof rows[k].key));
    PetscCall(PetscStrncpy(rows[k].type, type, sizeof rows[k].type));
    PetscCall(PetscStrncpy(rows[k].def, def, sizeof rows[k].def));
    PetscCall(PetscStrncpy(rows[k].range, range, sizeof rows[k].range));
    /* a list's default is what the experiment put in its place */
    if (!strcmp(type, "list") && !sets) PetscCall(RnConfigValueText(cfg, key, rows[k].def, sizeof rows[k].def));
    (*nrows)++;
  }
  PetscCall(RnConfigDestroy(&cfg));
  PetscFunctionReturn(0);
}

PetscErrorCode RnAppPrintKeys(RnCtx ctx, const char *name, int *undocumented)
{
  KeyRow *rows;
  int nrows;
  PetscBool *used;
  const PetscBool out = ctx->world_rank == 0 ? PETSC_TRUE : PETSC_FALSE;
  int ndocs = 0;

  PetscFunctionBeginUser;
  *undocumented = 0;
  while (rn_key_docs[ndocs].key) ndocs++;
  PetscCall(PetscMalloc1(RN_KEYS_MAX, &rows));
  PetscCall(PetscCalloc1(ndocs, &used));
  for (int e = 0; RnAppExperiments[e]; e++) {
    const RnExperiment *experiment = RnAppExperiments[e];
    if (name && strcmp(name, experiment->name)) continue;
    nrows = 0;
    PetscCall(CollectKeys(ctx, experiment, NULL, rows, &nrows));
    for (const KeyProbe *p = rn_key_probes; p->experiment; p++)
      if (!strcmp(p->experiment, experiment->name)) PetscCall(CollectKeys(ctx, experiment, p->sets, rows, &nrows));
    if (out) printf("%s## %s\n\n%s.\n\n| key | type | default | range | meaning |\n|---|---|---|---|---|\n", e && !name ? "\n" : "", experiment->name, experiment->summary);
    for (int k = 0; k < nrows; k++) {
      const KeyDoc *doc = FindDoc(experiment->name, rows[k].key);
      if (doc) used[doc - rn_key_docs] = PETSC_TRUE;
      else {
        (*undocumented)++;
        if (out) fprintf(stderr, "resnode-mpi: --keys: the key %s of %s has no meaning in src/app/keys.c\n", rows[k].key, experiment->name);
      }
      if (!out) continue;
      printf("| `%s` | %s | ", rows[k].key, rows[k].type);
      Cell(doc && doc->def ? doc->def : rows[k].def);
      printf(" | ");
      Cell(rows[k].range);
      printf(" | ");
      Cell(doc ? doc->meaning : "(no meaning written)");
      printf(" |\n");
    }
  }
  if (out && (!name || !strcmp(name, "study"))) {
    printf("%s## study\n\nA study file: a config (the base of every point) with a `study` group; every point is a run in STUDY_DIR/points/ (docs/studies.md).\n\n"
           "| key | type | default | meaning |\n|---|---|---|---|\n", name ? "" : "\n");
    for (int k = 0; RnAppStudyKeys[k].key; k++) {
      printf("| `%s` | %s | ", RnAppStudyKeys[k].key, RnAppStudyKeys[k].type);
      Cell(RnAppStudyKeys[k].def);
      printf(" | ");
      Cell(RnAppStudyKeys[k].meaning);
      printf(" |\n");
    }
  }
  /* with every experiment listed, a meaning that matched no key is stale */
  for (int d = 0; !name && d < ndocs; d++)
    if (!used[d]) {
      (*undocumented)++;
      if (out) fprintf(stderr, "resnode-mpi: --keys: src/app/keys.c describes %s%s%s, which no experiment reads\n", rn_key_docs[d].key, rn_key_docs[d].experiment ? " of " : "", rn_key_docs[d].experiment ? rn_key_docs[d].experiment : "");
    }
  if (out) fflush(stdout);
  PetscCall(PetscFree(rows));
  PetscCall(PetscFree(used));
  PetscFunctionReturn(0);
}
