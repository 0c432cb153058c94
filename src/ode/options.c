/* options.c: the PETSc options the ODE's TS will read, checked before any
 * solve (ode.h: RnOdeCheckOptions). A probe TS is set up as a solve sets it
 * up and reads the options with -help on, its help lines collected: they
 * name every option it reads and whether it takes a value. */
#include "odeimpl.h"

#include <ctype.h>
#include <stdarg.h>
#include <string.h>

#define RN_OPTION_NAMES_MAX 512
#define RN_OPTION_NAME_LEN 64

static struct {
  int n;
  char name[RN_OPTION_NAMES_MAX][RN_OPTION_NAME_LEN];
  PetscBool takes_value[RN_OPTION_NAMES_MAX];
} rn_options_read;

/* A help line of the probe's: "  -ts_rk_type <now 4 : formerly 4>: ..." */
static void CollectLine(const char *line)
{
  for (const char *p = line; (p = strstr(p, " -")) != NULL; p++) {
    const char *q = p + 2;
    int n = 0;
    if (!isalpha((unsigned char)*q)) continue;
    while (isalnum((unsigned char)q[n]) || q[n] == '_') n++;
    if (n == 0 || n >= RN_OPTION_NAME_LEN || rn_options_read.n >= RN_OPTION_NAMES_MAX) continue;
    snprintf(rn_options_read.name[rn_options_read.n], RN_OPTION_NAME_LEN, "%.*s", n, q);
    rn_options_read.takes_value[rn_options_read.n] = (PetscBool)(q[n] == ' ' && q[n + 1] == '<');
    rn_options_read.n++;
    break; /* one option a help line */
  }
}

/* PetscHelpPrintf while the probe reads its options */
static PetscErrorCode CollectHelp(MPI_Comm comm, const char format[], ...)
{
  char line[1024];
  va_list ap;

  va_start(ap, format);
  vsnprintf(line, sizeof line, format, ap);
  va_end(ap);
  CollectLine(line);
  return 0;
}

/* PetscVFPrintf likewise: the lists of types ("-ts_type <now rk ...> (one of)
 * euler ...") are printed with PetscFPrintf, not PetscHelpPrintf, and must
 * not reach the job's output */
static PetscErrorCode CollectVFPrintf(FILE *fd, const char format[], va_list ap)
{
  char line[1024];

  vsnprintf(line, sizeof line, format, ap);
  CollectLine(line);
  return 0;
}

int RnOdeOptionNames(const char *const **names)
{
  static const char *list[RN_OPTION_NAMES_MAX];
  for (int i = 0; i < rn_options_read.n; i++) list[i] = rn_options_read.name[i];
  *names = list;
  return rn_options_read.n;
}

/* The TS settings the config owns: every solve sets them from its keys after
 * (or instead of) PETSc's options, so a -ts_ value would be ignored; refused
 * with the key to use. */
static const struct {
  const char *option, *key, *why; /* key: the config's key for it, or NULL */
} rn_owned_options[] = {
  {"ts_rtol", "ode.rtol", "the tolerances are per state component, not on the parameters"},
  {"ts_atol", "ode.atol", "the tolerances are per state component, not on the parameters"},
  {"ts_max_steps", "ode.max_steps", "each solve sets its step budget from it"},
  {"ts_dt", "ode.dt0", "each solve sets its first step from it, or its fixed grid"},
  {"ts_adapt_type", "ode.adaptive", "a fixed grid is a ResNet's depth, an adaptive one the ODE's tolerance"},
  {"ts_max_time", NULL, "a solve ends at the model's end time, where its observations are"},
  {"ts_final_time", NULL, "a solve ends at the model's end time, where its observations are"},
  {"ts_exact_final_time", NULL, "every solve must end exactly at its observation times"},
};

static PetscErrorCode CheckOwnedOptions(MPI_Comm comm, const char *prefix)
{
  PetscFunctionBeginUser;
  for (size_t i = 0; i < sizeof rn_owned_options / sizeof rn_owned_options[0]; i++) {
    char name[RN_OPTION_NAME_LEN + 16];
    const char *value = NULL;
    PetscBool set;
    PetscCall(PetscSNPrintf(name, sizeof name, "-%s%s", prefix ? prefix : "", rn_owned_options[i].option));
    PetscCall(PetscOptionsFindPair(NULL, NULL, name, &value, &set));
    if (!set) continue;
    if (prefix && prefix[0])
      RnInputError(comm, "%s %s: set by the solver's config (%s), so the option would be ignored: remove it", name, value ? value : "", rn_owned_options[i].why);
    if (!rn_owned_options[i].key) RnInputError(comm, "%s %s: fixed by the model (%s), so the option would be ignored: remove it", name, value ? value : "", rn_owned_options[i].why);
    RnInputError(comm, "%s %s: set by the config's %s (%s), so the option would be ignored: use --set %s=VALUE instead", name, value ? value : "", rn_owned_options[i].key, rn_owned_options[i].why,
                 rn_owned_options[i].key);
  }
  PetscFunctionReturn(0);
}

/* A probe TS set up as the solves set theirs, reading its options with
 * -help on and its help lines collected (rn_options_read); *err is
 * TSSetFromOptions's outcome (*ts is NULL when it failed). */
static PetscErrorCode ProbeTS(MPI_Comm comm, const char *prefix, TS *tsp, PetscErrorCode *err)
{
  PetscErrorCode (*saved)(MPI_Comm, const char[], ...) = PetscHelpPrintf;
  PetscErrorCode (*saved_vfprintf)(FILE *, const char[], va_list) = PetscVFPrintf;
  PetscBool had_help;
  TS ts;
  TSAdapt adapt;

  PetscFunctionBeginUser;
  PetscCall(PetscOptionsHasName(NULL, NULL, "-help", &had_help));
  PetscCall(TSCreate(comm, &ts));
  PetscCall(TSSetOptionsPrefix(ts, prefix));
  PetscCall(TSSetProblemType(ts, TS_NONLINEAR));
  PetscCall(TSSetType(ts, TSRK));
  PetscCall(TSGetAdapt(ts, &adapt));
  PetscCall(TSAdaptSetType(adapt, TSADAPTBASIC));
  /* as the training solves set it up: a trajectory (its -ts_trajectory_*
   * options are read with the TS's) */
  PetscCall(TSSetSaveTrajectory(ts));
  if (!had_help) PetscCall(PetscOptionsSetValue(NULL, "-help", NULL));
  PetscHelpPrintf = CollectHelp;
  PetscVFPrintf = CollectVFPrintf;
  PetscCall(PetscPushErrorHandler(PetscReturnErrorHandler, NULL));
  *err = TSSetFromOptions(ts);
  PetscCall(PetscPopErrorHandler());
  PetscHelpPrintf = saved;
  PetscVFPrintf = saved_vfprintf;
  if (!had_help) PetscCall(PetscOptionsClearValue(NULL, "-help"));
  if (*err) PetscCall(TSDestroy(&ts));
  *tsp = ts;
  PetscFunctionReturn(0);
}

/* The option a failed probe failed on (PETSc's message rarely names it):
 * each of the given -PREFIXts_ options in turn is taken away and the probe
 * run again; the first without which it succeeds is the culprit. */
static PetscErrorCode FindCulprit(MPI_Comm comm, const char *prefix, int n, char **names, char **values, int *culprit)
{
  char ts_prefix[RN_OPTION_NAME_LEN + 8];

  PetscFunctionBeginUser;
  *culprit = -1;
  PetscCall(PetscSNPrintf(ts_prefix, sizeof ts_prefix, "%sts_", prefix ? prefix : ""));
  for (int i = 0; i < n && *culprit < 0; i++) {
    char name[RN_OPTION_NAME_LEN + 16];
    PetscErrorCode err;
    TS ts;
    if (strncmp(names[i], ts_prefix, strlen(ts_prefix))) continue;
    PetscCall(PetscSNPrintf(name, sizeof name, "-%s", names[i]));
    PetscCall(PetscOptionsClearValue(NULL, name));
    PetscCall(ProbeTS(comm, prefix, &ts, &err));
    PetscCall(TSDestroy(&ts));
    PetscCall(PetscOptionsSetValue(NULL, name, values[i]));
    if (!err) *culprit = i;
  }
  PetscFunctionReturn(0);
}

PetscErrorCode RnOdeCheckOptions(MPI_Comm comm, const char *prefix)
{
  PetscBool set;
  PetscErrorCode err;
  const char *generic = NULL;
  char *specific = NULL, type_option[RN_OPTION_NAME_LEN + 16], type[RN_OPTION_NAME_LEN], **names, **values;
  TSType ts_type;
  PetscInt nleft;
  TS ts;
  const int first = rn_options_read.n;

  PetscFunctionBeginUser;
  PetscCall(CheckOwnedOptions(comm, prefix));
  /* the options given, copied before the probe reads them (every one still
   * unused): on a failure each is taken away and put back in turn */
  {
    char **name_copy, **value_copy;
    int culprit = -1, ngiven;
    char what[2 * RN_OPTION_NAME_LEN + 256] = "a PETSc option for the ODE solver", message[1024] = "";
    PetscCall(PetscOptionsLeftGet(NULL, &nleft, &names, &values));
    PetscCall(PetscCalloc2(nleft + 1, &name_copy, nleft + 1, &value_copy));
    for (PetscInt i = 0; i < nleft; i++) {
      PetscCall(PetscStrallocpy(names[i], &name_copy[i]));
      PetscCall(PetscStrallocpy(values[i], &value_copy[i]));
    }
    ngiven = (int)nleft; /* the restore zeroes nleft */
    PetscCall(PetscOptionsLeftRestore(NULL, &nleft, &names, &values));
    PetscCall(ProbeTS(comm, prefix, &ts, &err));
    if (err) {
      PetscErrorMessage(err, &generic, &specific);
      PetscCall(PetscSNPrintf(message, sizeof message, "%s%s%s", generic ? generic : "error", specific ? ": " : "", specific ? specific : ""));
      PetscCall(FindCulprit(comm, prefix, ngiven, name_copy, value_copy, &culprit));
      if (culprit >= 0) PetscCall(PetscSNPrintf(what, sizeof what, "-%s '%s'", name_copy[culprit], value_copy[culprit] ? value_copy[culprit] : ""));
    }
    for (int i = 0; i < ngiven; i++) {
      PetscCall(PetscFree(name_copy[i]));
      PetscCall(PetscFree(value_copy[i]));
    }
    PetscCall(PetscFree2(name_copy, value_copy));
    if (err) RnInputError(comm, "%s: %s (see -help for the TS options)", what, message);
  }
  /* the field has no Jacobian: explicit Runge-Kutta only */
  PetscCall(TSGetType(ts, &ts_type));
  PetscCall(PetscStrncpy(type, ts_type ? ts_type : "none", sizeof type));
  PetscCall(TSDestroy(&ts));
  PetscCall(PetscSNPrintf(type_option, sizeof type_option, "-%sts_type", prefix ? prefix : ""));
  RnInputCheck(!strcmp(type, TSRK), comm,
               "%s %s: resnode's neural ODE is integrated by explicit Runge-Kutta methods (TSRK): an implicit method such as %s needs the field's Jacobian, which it does not assemble; "
               "choose the method with ode.solver or -%sts_rk_type (4, 5dp, 3bs, ...)",
               type_option, type, type, prefix ? prefix : "");
  /* an option that takes a value, given without one */
  for (int i = first; i < rn_options_read.n; i++) {
    char name[RN_OPTION_NAME_LEN + 2];
    const char *value = NULL;
    if (!rn_options_read.takes_value[i]) continue;
    PetscCall(PetscSNPrintf(name, sizeof name, "-%s", rn_options_read.name[i]));
    PetscCall(PetscOptionsFindPair(NULL, NULL, name, &value, &set));
    RnInputCheck(!set || (value && value[0]), comm, "%s is given without a value; it takes one (see -help)", name);
  }
  PetscFunctionReturn(0);
}
