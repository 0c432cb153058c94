/* app.c: command line, configuration, run directory, experiment dispatch. */
#include "appimpl.h"
#include "resnode/ode/ode.h"
#include "resnode/core/checkpoint.h"
#include "resnode/core/profile.h"

#include <cblas.h>
#include <errno.h>
#include <signal.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>
#include <time.h>

/* The embedded default: the test-equation fit of configs/node-fit.cfg, small
 * enough for a laptop. */
static const char rn_default_config[] = "experiment = \"node-fit\";\n"
                                        "ode = { solver = \"dopri5\"; adaptive = true; rtol = 1e-7; atol = 1e-9; };\n"
                                        "train = { optimizer = \"adam\"; lr = 0.01; iterations = 1000; };\n";

const RnExperiment *const RnAppExperiments[] = {&RnExperimentNodeFit, &RnExperimentIdentity, &RnExperimentEnsemble, &RnExperimentCifar, &RnExperimentAnnulus, NULL};

static void PrintUsage(void)
{
  printf("usage: resnode-mpi [CONFIG] [--set key=value ...] [--resume RUN_DIR] [PETSc options]\n"
         "       resnode-mpi CONFIG [--set ...] --print-config | --plan\n"
         "       resnode-mpi --keys [EXPERIMENT | study]\n"
         "       resnode-mpi STUDY.cfg [--set ...] [--point NAME ...] [--print-config | --plan]\n"
         "  CONFIG          a libconfig file (configs/*.cfg); without it the embedded\n"
         "                  default (the test-equation fit) runs. Its @include \"BASE\"\n"
         "                  lines name bases whose keys it overrides, key by key\n"
         "  --set k=v       override one key (repeatable), e.g. --set train.lr=1e-3\n"
         "  --resume DIR    continue the run in DIR from its newest complete checkpoint\n"
         "  --print-config  print the resolved, validated config (every default\n"
         "                  filled in) and exit; nothing is written\n"
         "  --plan          time a few steps of every unit on the ranks given, then\n"
         "                  print the units, peak memory per rank, the estimated wall\n"
         "                  time and the Slurm --time to ask for; no run is kept\n"
         "  --keys [EXP]    every key of EXP (or of every experiment): type, default,\n"
         "                  range, meaning; --keys study: the keys of a study file\n"
         "  STUDY.cfg       a study file (a config with a study group: axes, zip,\n"
         "                  points): every point a run in STUDY_DIR/points/, packed\n"
         "                  on the ranks' groups; run again, it resumes (docs/studies.md)\n"
         "  --point NAME    a study's point to run (repeatable); --print-config lists them\n"
         "  --help, --version\n"
         "experiments:\n");
  for (int i = 0; RnAppExperiments[i]; i++) printf("  %-10s %s\n", RnAppExperiments[i]->name, RnAppExperiments[i]->summary);
}

typedef struct {
  const char *config_path;
  const char *resume_dir;
  int nsets;
  const char **sets;
  PetscBool print_config; /* --print-config */
  PetscBool plan;         /* --plan */
  PetscBool keys;         /* --keys [EXPERIMENT] */
  const char *keys_experiment;
  int npoints; /* --point NAME: a study's points to run */
  const char **points;
} RnArgs;

static const RnExperiment *FindExperiment(const char *name)
{
  for (int i = 0; RnAppExperiments[i]; i++)
    if (!strcmp(RnAppExperiments[i]->name, name)) return RnAppExperiments[i];
  return NULL;
}

static char rn_usage_error[PETSC_MAX_PATH_LEN + 128]; /* printed by rank 0 once MPI is up */

static int UsageError(const char *fmt, const char *arg, const char *arg2)
{
  snprintf(rn_usage_error, sizeof rn_usage_error, fmt, arg, arg2 ? arg2 : "");
  return 2;
}

/* Whether a file is text: no NUL or control bytes but tab, newline and carriage return. */
static int IsText(const char *path)
{
  FILE *fp = fopen(path, "rb");
  int c, text = 1;
  if (!fp) return 0;
  while (text && (c = fgetc(fp)) != EOF) text = c >= 0x20 || c == '\t' || c == '\n' || c == '\r';
  fclose(fp);
  return text;
}

static int EndsWith(const char *s, const char *suffix)
{
  const size_t n = strlen(s), m = strlen(suffix);
  return n >= m && !strcmp(s + n - m, suffix);
}

/* Split our own arguments from PETSc's (which start with a single '-'). A
 * word after a PETSc option is that option's value, unless it names a .cfg
 * file (then it is the CONFIG: "-log_view configs/x.cfg"). */
static int ParseArgs(int argc, char **argv, RnArgs *args, int *petsc_argc, char **petsc_argv)
{
  memset(args, 0, sizeof *args);
  args->sets = calloc((size_t)argc, sizeof(char *));
  args->points = calloc((size_t)argc, sizeof(char *));
  petsc_argv[(*petsc_argc)++] = argv[0];
  for (int i = 1; i < argc; i++) {
    const int after_petsc_option = *petsc_argc > 1 && petsc_argv[*petsc_argc - 1][0] == '-';
    if (!strcmp(argv[i], "--set")) {
      if (i + 1 >= argc) return UsageError("--set needs key=value", "", NULL);
      args->sets[args->nsets++] = argv[++i];
    } else if (!strncmp(argv[i], "--set=", 6)) {
      args->sets[args->nsets++] = argv[i] + 6;
    } else if (!strcmp(argv[i], "--point")) {
      if (i + 1 >= argc) return UsageError("--point needs a point's name (a study's points: STUDY.cfg --print-config)", "", NULL);
      args->points[args->npoints++] = argv[++i];
    } else if (!strcmp(argv[i], "--resume")) {
      if (i + 1 >= argc) return UsageError("--resume needs a run directory", "", NULL);
      args->resume_dir = argv[++i];
    } else if (!strcmp(argv[i], "--print-config")) {
      args->print_config = PETSC_TRUE;
    } else if (!strcmp(argv[i], "--plan")) {
      args->plan = PETSC_TRUE;
    } else if (!strcmp(argv[i], "--keys")) {
      args->keys = PETSC_TRUE;
      if (i + 1 < argc && argv[i + 1][0] != '-') {
        if (!FindExperiment(argv[i + 1]) && strcmp(argv[i + 1], "study")) return UsageError("--keys %s: no such experiment, nor \"study\" (see --help for the list)", argv[i + 1], NULL);
        args->keys_experiment = argv[++i];
      }
    } else if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h")) {
      return -1;
    } else if (!strcmp(argv[i], "--version")) {
      return -2;
    } else if (argv[i][0] == '-' && argv[i][1] == '-') {
      return UsageError("unknown option %s (see --help)", argv[i], NULL);
    } else if (argv[i][0] != '-' && (!after_petsc_option || EndsWith(argv[i], ".cfg"))) {
      if (args->config_path) return UsageError("two configs given, %s and %s: give one (--set overrides keys of it)", args->config_path, argv[i]);
      args->config_path = argv[i];
    } else {
      petsc_argv[(*petsc_argc)++] = argv[i];
    }
  }
  petsc_argv[*petsc_argc] = NULL;
  if (args->keys && (args->config_path || args->nsets || args->resume_dir || args->print_config || args->plan))
    return UsageError("--keys takes no config, --set, --resume, --print-config or --plan: it lists the keys of an experiment%s", "", NULL);
  if (args->keys && *petsc_argc > 1) return UsageError("--keys takes no PETSc options (%s): it lists the keys of an experiment; -help lists PETSc's", petsc_argv[1], NULL);
  if (args->npoints && args->resume_dir) return UsageError("--point chooses points of a study: not with --resume (run the study file again: it resumes its points)%s", "", NULL);
  if (args->plan && (args->resume_dir || args->print_config)) return UsageError("--plan measures a new run of a config: not with --resume or --print-config%s", "", NULL);
  if (args->print_config && args->resume_dir) return UsageError("--print-config with --resume: the run's resolved config is %s/config.cfg", args->resume_dir, NULL);
  /* PETSc reads an options file in PetscInitialize, and a missing one is a
   * traceback there: check it first */
  for (int i = 1; i + 1 < *petsc_argc; i++) {
    struct stat st;
    if (strcmp(petsc_argv[i], "-options_file")) continue;
    if (access(petsc_argv[i + 1], R_OK) != 0) return UsageError("-options_file %s: cannot read it (%s)", petsc_argv[i + 1], strerror(errno));
    if (stat(petsc_argv[i + 1], &st) || !S_ISREG(st.st_mode)) return UsageError("-options_file %s: not a regular file%s; it is a text file of PETSc options, one or more a line", petsc_argv[i + 1], S_ISDIR(st.st_mode) ? " (a directory)" : "");
    if (!IsText(petsc_argv[i + 1])) return UsageError("-options_file %s: not text (a NUL or control byte): a PETSc options file holds options such as -ts_rk_type 3bs, one or more a line%s", petsc_argv[i + 1], "");
  }
  return 0;
}

/* The exit status of an analysis command that found no Python 3 with numpy
 * and matplotlib (cmake/analysis-command.in) */
#define RN_ANALYSIS_NO_PYTHON 3

PetscErrorCode RnAppReadCommon(RnCtx ctx, RnConfig cfg, const RnExperiment **experiment, char *run_dir, size_t len, PetscBool *plot)
{
  const char *names[16];
  int index = 0, n = 0, verbose;
  long long seed;
  char default_dir[256], stamp[32];
  time_t now;
  struct tm tm;

  PetscFunctionBeginUser;
  for (n = 0; RnAppExperiments[n]; n++) names[n] = RnAppExperiments[n]->name;
  names[n] = NULL;
  PetscCall(RnConfigGetChoice(cfg, "experiment", RN_REQUIRED, names, &index));
  *experiment = RnAppExperiments[index];
  PetscCall(RnConfigGetInt64(cfg, "seed", 1, 0, (long long)1 << 62, &seed));
  ctx->seed = (uint64_t)seed;
  PetscCall(RnConfigGetInt(cfg, "verbose", 1, 0, 2, &verbose));
  ctx->verbose = verbose;
  /* a time stamp names a fresh run directory; one that exists already (two
   * runs started in the same second) gets a suffix, since a run directory
   * holding a checkpoint is resumed. Rank 0 decides for all. */
  now = time(NULL);
  gmtime_r(&now, &tm);
  strftime(stamp, sizeof stamp, "%Y%m%d-%H%M%S", &tm);
  PetscCall(PetscSNPrintf(default_dir, sizeof default_dir, "runs/%s-%s", (*experiment)->name, stamp));
  if (ctx->world_rank == 0) {
    struct stat st;
    for (int k = 2; stat(default_dir, &st) == 0 && k < 1000; k++) PetscCall(PetscSNPrintf(default_dir, sizeof default_dir, "runs/%s-%s-%d", (*experiment)->name, stamp, k));
  }
  PetscCallMPI(MPI_Bcast(default_dir, sizeof default_dir, MPI_CHAR, 0, ctx->world));
  PetscCall(RnConfigGetString(cfg, "run.dir", default_dir, run_dir, len));
  if (!run_dir[0]) PetscCall(RnConfigError(cfg, "run.dir", "empty: give the run's directory, or leave run.dir out for runs/%s-<time>", (*experiment)->name));
  /* plots come from the analysis command after the job; true runs it at the
   * end of this one, on rank 0, once every result is written */
  PetscCall(RnConfigGetBool(cfg, "output.plot", PETSC_FALSE, plot));
  PetscFunctionReturn(0);
}

/* The run's last lines: with output.plot, the analysis command's outcome
 * (a missing Python is a note: the results are complete without it); always,
 * the command that makes the plots and reports. */
static PetscErrorCode Conclude(RnCtx ctx, RnRunDir rd, const RnExperiment *experiment, PetscBool plot)
{
  char command[PETSC_MAX_PATH_LEN + 64];

  PetscFunctionBeginUser;
  RnAnalysisCommand(experiment->analysis, command, sizeof command);
  if (plot && ctx->world_rank == 0) {
    char line[3 * PETSC_MAX_PATH_LEN + 128];
    int status;
    PetscCall(PetscSNPrintf(line, sizeof line, "'%s' '%s' > '%s/analysis.log' 2>&1", command, rd->path, rd->path));
    status = system(line);
    if (status != -1 && WIFEXITED(status) && WEXITSTATUS(status) == 0) PetscCall(RnLog(ctx, "plots and report: written by %s (log: %s/analysis.log)\n", command, rd->path));
    else if (status != -1 && WIFEXITED(status) && WEXITSTATUS(status) == RN_ANALYSIS_NO_PYTHON)
      PetscCall(RnLog(ctx, "note: no plots made here (no Python 3 with numpy and matplotlib on this node; see %s/analysis.log): the results are complete, plot them where Python is\n", rd->path));
    else PetscCall(RnLog(ctx, "warning: %s failed (see %s/analysis.log); the results are complete\n", command, rd->path));
  }
  PetscCall(RnLog(ctx, "done: results in %s; plots and report: %s %s\n", rd->path, command, rd->path));
  PetscFunctionReturn(0);
}

/* PETSc options that PETSc itself reads at PetscFinalize (or that are not
 * meant for an object): never reported as unused */
static const char *const rn_read_at_exit[] = {"log", "malloc", "memory_view", "options_", "objects_dump", "checkstack", "help", NULL};

static PetscBool ReadAtExit(const char *name)
{
  for (int k = 0; rn_read_at_exit[k]; k++)
    if (!strncmp(name, rn_read_at_exit[k], strlen(rn_read_at_exit[k]))) return PETSC_TRUE;
  return PETSC_FALSE;
}

/* The PETSc options, checked before anything runs: every TS the experiment's
 * solves create reads its options once, on a probe (ode.h:
 * RnOdeCheckOptions); an option that then is still unused is read by
 * nothing: an input error naming it and its nearest valid spelling. (A
 * 14-hour run with "-ts_rk_typ 3bs" used to run rk4 and say so at the end.) */
PetscErrorCode RnAppCheckPetscOptions(RnCtx ctx, const RnExperiment *experiment)
{
  PetscInt n;
  char **names, **values, unused[1024] = "";
  const char *const *known;
  int nknown;

  PetscFunctionBeginUser;
  for (int i = 0; experiment->ts_prefixes && experiment->ts_prefixes[i]; i++) PetscCall(RnOdeCheckOptions(ctx->world, experiment->ts_prefixes[i]));
  nknown = RnOdeOptionNames(&known);
  PetscCall(PetscOptionsLeftGet(NULL, &n, &names, &values));
  for (PetscInt i = 0; i < n && !unused[0]; i++) {
    const char *best = NULL;
    int best_d = 1 << 30;
    if (ReadAtExit(names[i])) continue;
    for (int k = 0; k < nknown; k++) {
      const int d = RnEditDistance(names[i], known[k]);
      if (d < best_d) best_d = d, best = known[k];
    }
    if (best && best_d <= 3) PetscCall(PetscSNPrintf(unused, sizeof unused, "the PETSc option -%s is read by nothing in this %s run: did you mean -%s? (see -help)", names[i], experiment->name, best));
    else PetscCall(PetscSNPrintf(unused, sizeof unused, "the PETSc option -%s is read by nothing in this %s run (see -help for the options it reads)", names[i], experiment->name));
  }
  PetscCall(PetscOptionsLeftRestore(NULL, &n, &names, &values));
  RnInputCheck(!unused[0], ctx->world, "%s", unused);
  PetscFunctionReturn(0);
}

/* PETSc options nobody read: a misspelling would otherwise pass silently
 * (-options_left without its table). Those PETSc reads at PetscFinalize are
 * not reported. */
static PetscErrorCode WarnUnusedOptions(RnCtx ctx)
{
  PetscInt n;
  char **names, **values;

  PetscFunctionBeginUser;
  PetscCall(PetscOptionsLeftGet(NULL, &n, &names, &values));
  for (PetscInt i = 0; i < n; i++) {
    if (!ReadAtExit(names[i])) PetscCall(RnLog(ctx, "warning: the PETSc option -%s was not used (misspelled? see -help)\n", names[i]));
  }
  PetscCall(PetscOptionsLeftRestore(NULL, &n, &names, &values));
  PetscFunctionReturn(0);
}

/* A run's checkpoints continue only under the configuration they were made
 * with, kept in checkpoints/config.cfg (config.cfg beside it may be edited):
 * a resume that changes anything else is refused, naming the change. */
static PetscErrorCode CheckStoredConfig(RnCtx ctx, RnConfig cfg, RnRunDir rd, const RnExperiment *experiment)
{
  static const char *const may_change_fixed[] = {"run", "checkpoint", "output", "train.iterations", "train.epochs", "data.dir", NULL};
  /* per-unit state continues on any ranks, nodes and groups */
  static const char *const may_change_units[] = {"run", "checkpoint", "output", "train.iterations", "train.epochs", "data.dir", "parallel", NULL};
  const char *const *may_change = experiment->units_resume_anywhere ? may_change_units : may_change_fixed;
  char stored[PETSC_MAX_PATH_LEN + 48], msg[4096] = "";
  int failed = 0, write = 0;

  PetscFunctionBeginUser;
  PetscCall(PetscSNPrintf(stored, sizeof stored, "%s/checkpoints/config.cfg", rd->path));
  if (ctx->world_rank == 0) {
    PetscBool any;
    PetscCall(RnCheckpointAny(rd->path, &any));
    if (any && access(stored, F_OK) == 0) {
      char diff[3072];
      int ndiff;
      PetscCall(RnConfigCompareFile(cfg, stored, may_change, diff, sizeof diff, &ndiff));
      if (ndiff < 0) failed = 1, snprintf(msg, sizeof msg, "%s", diff);
      else if (ndiff > 0)
        failed = 1, snprintf(msg, sizeof msg,
                             "%s: the checkpoints of %s were made with another configuration: %s. A resume continues the same run: undo the change%s, or start a new run directory "
                             "(only run.*, checkpoint.*, output.*, data.dir%s and the step counts train.iterations and train.epochs may change)",
                             stored, rd->path, diff, ndiff > 1 ? "s" : "", experiment->units_resume_anywhere ? ", parallel.*" : "");
    } else write = 1;
  }
  PetscCall(RnAgreeInput(ctx->world, failed, msg));
  PetscCallMPI(MPI_Bcast(&write, 1, MPI_INT, 0, ctx->world));
  if (write) PetscCall(RnConfigWrite(cfg, stored));
  PetscFunctionReturn(0);
}

static PetscErrorCode Run(int argc, char **argv, const RnArgs *args, RnCtx ctx, int *exit_code)
{
  RnConfig cfg = NULL;
  const RnExperiment *experiment = NULL;
  void *options = NULL;
  char run_dir[PETSC_MAX_PATH_LEN], resume_config[PETSC_MAX_PATH_LEN + 32];
  PetscBool resume = args->resume_dir ? PETSC_TRUE : PETSC_FALSE, plot = PETSC_FALSE;
  PetscErrorCode err;

  PetscFunctionBeginUser;
  if (args->keys) {
    int undocumented;
    PetscCall(RnAppPrintKeys(ctx, args->keys_experiment, &undocumented));
    *exit_code = undocumented ? RN_EXIT_FAILED : RN_EXIT_OK;
    PetscFunctionReturn(0);
  }
  if (args->resume_dir) {
    /* a mistyped path must not start a fresh (48-hour) run: a run starts without --resume */
    const int none = ctx->world_rank == 0 && !RnRunDirHoldsRun(args->resume_dir);
    char msg[PETSC_MAX_PATH_LEN + 256];
    PetscCall(PetscSNPrintf(msg, sizeof msg, "--resume %s: %s; check the path, or start a new run there without --resume (--set run.dir=...)", args->resume_dir,
                            access(args->resume_dir, F_OK) ? "no such directory" : "no run there (no manifest.json)"));
    PetscCall(RnAgreeInput(ctx->world, none, msg));
  }
  PetscCall(RnConfigCreate(ctx->world, &cfg));
  RnConfigSetMeanings(cfg, RnAppKeyMeaning, (void *)&experiment);
  if (args->config_path) PetscCall(RnConfigLoadFile(cfg, args->config_path));
  else if (args->resume_dir) {
    /* resuming without a config: the run's own resolved config */
    PetscCall(PetscSNPrintf(resume_config, sizeof resume_config, "%s/config.cfg", args->resume_dir));
    PetscCall(RnConfigLoadFile(cfg, resume_config));
  } else {
    if (!args->print_config) PetscCall(RnLog(ctx, "resnode-mpi: no CONFIG given: running the embedded default (the test-equation fit); see --help\n"));
    PetscCall(RnConfigLoadString(cfg, "<embedded default>", rn_default_config));
  }
  for (int i = 0; i < args->nsets; i++) PetscCall(RnConfigSet(cfg, args->sets[i]));
  if (RnConfigKindOf(cfg, "study") != RN_CONFIG_ABSENT) {
    /* a study: its points, each a run of its own (study.c) */
    RnStudyArgs study = {args->config_path, args->nsets, args->sets, args->npoints, args->points, args->print_config, args->plan};
    RnInputCheck(args->config_path && !args->resume_dir, ctx->world, "%s", args->resume_dir ? "--resume with a study file: run the study file again (without --resume): it resumes its stopped points" : "a study comes from a study file, not from --set study.*");
    PetscCall(RnAppStudy(ctx, cfg, &study, argc, argv, exit_code));
    PetscCall(RnConfigDestroy(&cfg));
    PetscFunctionReturn(0);
  }
  RnInputCheck(!args->npoints, ctx->world, "--point %s: %s is not a study file (no study group): --point chooses points of a study", args->points[0], args->config_path ? args->config_path : "the config");
  /* the directory as given, unparsed: any path that could be created resumes */
  if (args->resume_dir) PetscCall(RnConfigSetString(cfg, "run.dir", args->resume_dir));
  PetscCall(RnAppReadCommon(ctx, cfg, &experiment, run_dir, sizeof run_dir, &plot));
  PetscCall(experiment->read_options(ctx, cfg, &options));
  PetscCall(RnConfigCheckUnused(cfg));
  PetscCall(RnAppCheckPetscOptions(ctx, experiment));
  PetscCall(RnCtxSetGroups(ctx, experiment->group_count ? experiment->group_count(ctx, options) : 1));
  if (args->print_config) {
    /* validated, every default filled in; nothing written */
    PetscCall(RnConfigPrint(cfg, stdout));
    PetscCall(PetscFree(options));
    PetscCall(RnConfigDestroy(&cfg));
    *exit_code = RN_EXIT_OK;
    PetscFunctionReturn(0);
  }
  if (args->plan) {
    PetscBool adaptive = PETSC_FALSE;
    if (RnConfigHas(cfg, "ode.adaptive")) PetscCall(RnConfigGetBool(cfg, "ode.adaptive", PETSC_FALSE, &adaptive));
    PetscCall(RnAppPlan(ctx, experiment, options, run_dir, adaptive, argc, argv, NULL, NULL));
    PetscCall(PetscFree(options));
    PetscCall(RnConfigDestroy(&cfg));
    *exit_code = RN_EXIT_OK;
    PetscFunctionReturn(0);
  }

  err = RnAppRunOne(ctx, cfg, experiment, options, run_dir, resume, plot, argc, argv);
  PetscFree(options);
  RnConfigDestroy(&cfg);
  if (err) return err;
  *exit_code = RN_EXIT_OK;
  PetscFunctionReturn(0);
}

/* Where the run's time went: the manifest's profile, and a line of the log. */
static PetscErrorCode Profile(RnCtx ctx, RnRunDir rd, const RnProfileMark *start)
{
  char json[sizeof rd->profile], shares[256];

  PetscFunctionBeginUser;
  PetscCall(RnProfileJSON(ctx->world, start, json, sizeof json));
  PetscCall(RnRunDirSetProfile(rd, json));
  RnProfileShares(start, shares, sizeof shares);
  if (shares[0]) PetscCall(RnLog(ctx, "where the time went (rank 0, own time of each phase): %s; every phase and rank in the manifest (profile)\n", shares));
  PetscFunctionReturn(0);
}

PetscErrorCode RnAppRunOne(RnCtx ctx, RnConfig cfg, const RnExperiment *experiment, void *options, const char *run_dir, PetscBool resume, PetscBool plot, int argc, char **argv)
{
  char config_out[PETSC_MAX_PATH_LEN + 32];
  RnRunDir rd = NULL;
  PetscBool refused;
  PetscErrorCode err;
  RnProfileMark start;

  PetscFunctionBeginUser;
  RnProfileMarkNow(&start);
  PetscCall(RnProfileSetStage(RN_STAGE_SETUP));
  PetscCall(RnRunDirCreate(ctx, run_dir, experiment->name, argc, argv, resume, &rd));
  for (int i = 0; i < RnConfigFileCount(cfg); i++) {
    uint64_t checksum;
    const char *file = RnConfigFile(cfg, i, &checksum);
    char real[PATH_MAX];
    PetscCall(RnRunDirAddConfigFile(rd, realpath(file, real) ? real : file, checksum));
  }
  PetscCall(RnRunDirFile(rd, "config.cfg", config_out, sizeof config_out));
  /* from here on the manifest says how the run ended */
  err = CheckStoredConfig(ctx, cfg, rd, experiment);
  refused = err == RN_ERR_INPUT ? PETSC_TRUE : PETSC_FALSE;
  if (!err) err = RnConfigWrite(cfg, config_out);
  if (!err) err = RnLog(ctx, "resnode-mpi %s: %s on %d rank(s) in %d group(s); run directory %s\n", RESNODE_VERSION, experiment->name, ctx->world_size, ctx->group_count, rd->path);
  if (!err) {
    char analysis[PETSC_MAX_PATH_LEN + 64];
    const char *base;
    RnAnalysisCommand(experiment->analysis, analysis, sizeof analysis);
    base = strrchr(analysis, '/');
    err = RnRunDirSetAnalysis(rd, base ? base + 1 : analysis);
  }
  if (!err) err = experiment->run(ctx, rd, options);
  if (err == RN_ERR_INPUT && (refused || (resume && !rd->started))) {
    /* refused before anything ran (a changed config), or a resume refused
     * before its first step (its checkpoints, its step counts): the
     * directory stays byte for byte as it was */
    PetscPushErrorHandler(PetscReturnErrorHandler, NULL);
    RnRunDirUndoAttempt(rd);
    PetscPopErrorHandler();
    RnRunDirDestroy(&rd);
    return err;
  }
  if (err) {
    /* keep what was written, and say how the run ended; a manifest that
     * cannot be written now (a full disk) is a warning, not a traceback */
    char reason[1200];
    RnErrorReason(err, RnLastErrorMessage(), reason, sizeof reason);
    PetscPushErrorHandler(PetscReturnErrorHandler, NULL);
    if (RnRunDirSetStatus(rd, RnErrorStatus(err), reason) && ctx->world_rank == 0)
      fprintf(stderr, "resnode-mpi: warning: could not update %s/manifest.json (disk full?); the previous one is kept\n", rd->path);
    PetscPopErrorHandler();
    RnRunDirDestroy(&rd);
    return err;
  }
  PetscCall(RnRunDirGatherPeakMemory(rd));
  PetscCall(Profile(ctx, rd, &start));
  PetscCall(RnRunDirSetStatus(rd, "done", "finished"));
  PetscCall(WarnUnusedOptions(ctx));
  PetscCall(Conclude(ctx, rd, experiment, plot));
  PetscCall(RnRunDirDestroy(&rd));
  PetscFunctionReturn(0);
}

int RnMain(int argc, char **argv)
{
  RnArgs args;
  int petsc_argc = 0, status, exit_code = RN_EXIT_FAILED;
  char **petsc_argv = calloc((size_t)argc + 1, sizeof(char *));
  RnCtx ctx = NULL;
  PetscErrorCode err;

  RnSignalsCatch();
  status = ParseArgs(argc, argv, &args, &petsc_argc, petsc_argv);
  if (status) {
    int rank = 0, initialized = 0;
    MPI_Initialized(&initialized);
    if (!initialized) MPI_Init(&argc, &argv);
    MPI_Comm_rank(MPI_COMM_WORLD, &rank);
    if (rank == 0 && status == -1) PrintUsage();
    if (rank == 0 && status == -2) printf("resnode-mpi %s\n", RESNODE_VERSION);
    if (rank == 0 && status > 0) fprintf(stderr, "resnode-mpi: error: %s\n", rn_usage_error);
    MPI_Finalize();
    return status < 0 ? 0 : status;
  }
  if (RnMallocInstall()) return RN_EXIT_FAILED;
  if (PetscInitialize(&petsc_argc, &petsc_argv, NULL, NULL)) return RN_EXIT_FAILED;
  if (RnErrorHandlerPush()) return RN_EXIT_FAILED;
  if (RnSignalsInstall()) return RN_EXIT_FAILED;
  if (RnProfileRegister()) return RN_EXIT_FAILED;
  /* a listing piped into head or less ends quietly when the reader stops
   * (PETSc's handler would print a crash report for SIGPIPE) */
  if (args.keys || args.print_config) signal(SIGPIPE, SIG_DFL);
  err = RnCtxCreate(PETSC_COMM_WORLD, &ctx);
  /* threads per rank for oneDNN and BLAS (core.h) */
  if (!err) RnThreadsSetUp(ctx->world_size);
  if (!err) err = Run(argc, argv, &args, ctx, &exit_code);
  if (err) {
    /* input errors are collective: finish cleanly; anything else aborts */
    exit_code = RnExitFromError(err);
  }
  RnCtxDestroy(&ctx);
  PetscFinalize();
  free(args.sets);
  free(args.points);
  free(petsc_argv);
  return exit_code;
}
