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

PetscErrorCode RnOdeCheckOptions(MPI_Comm comm, const char *prefix)
{
  PetscErrorCode (*saved)(MPI_Comm, const char[], ...) = PetscHelpPrintf;
  PetscErrorCode (*saved_vfprintf)(FILE *, const char[], va_list) = PetscVFPrintf;
  PetscBool had_help, set;
  PetscErrorCode err;
  const char *generic = NULL;
  char *specific = NULL, type_option[RN_OPTION_NAME_LEN + 16], type[RN_OPTION_NAME_LEN];
  TSType ts_type;
  PetscInt max_steps;
  TS ts;
  TSAdapt adapt;
  const int first = rn_options_read.n;

  PetscFunctionBeginUser;
  PetscCall(PetscOptionsHasName(NULL, NULL, "-help", &had_help));
  PetscCall(TSCreate(comm, &ts));
  PetscCall(TSSetOptionsPrefix(ts, prefix));
  PetscCall(TSSetProblemType(ts, TS_NONLINEAR));
  PetscCall(TSSetType(ts, TSRK));
  PetscCall(TSGetAdapt(ts, &adapt));
  PetscCall(TSAdaptSetType(adapt, TSADAPTBASIC));
  if (!had_help) PetscCall(PetscOptionsSetValue(NULL, "-help", NULL));
  PetscHelpPrintf = CollectHelp;
  PetscVFPrintf = CollectVFPrintf;
  PetscCall(PetscPushErrorHandler(PetscReturnErrorHandler, NULL));
  err = TSSetFromOptions(ts);
  PetscCall(PetscPopErrorHandler());
  PetscHelpPrintf = saved;
  PetscVFPrintf = saved_vfprintf;
  if (!had_help) PetscCall(PetscOptionsClearValue(NULL, "-help"));
  if (err) {
    PetscCall(TSDestroy(&ts));
    PetscErrorMessage(err, &generic, &specific);
    RnInputError(comm, "a PETSc option for the ODE solver: %s%s%s (see -help for the TS options)", generic ? generic : "error", specific ? ": " : "", specific ? specific : "");
  }
  /* the field has no Jacobian: explicit Runge-Kutta only */
  PetscCall(TSGetType(ts, &ts_type));
  PetscCall(PetscStrncpy(type, ts_type ? ts_type : "none", sizeof type));
  PetscCall(TSGetMaxSteps(ts, &max_steps));
  PetscCall(TSDestroy(&ts));
  PetscCall(PetscSNPrintf(type_option, sizeof type_option, "-%sts_type", prefix ? prefix : ""));
  RnInputCheck(!strcmp(type, TSRK), comm,
               "%s %s: resnode's neural ODE is integrated by explicit Runge-Kutta methods (TSRK): an implicit method such as %s needs the field's Jacobian, which it does not assemble; "
               "choose the method with ode.solver or -%sts_rk_type (4, 5dp, 3bs, ...)",
               type_option, type, type, prefix ? prefix : "");
  {
    char steps_option[RN_OPTION_NAME_LEN + 16];
    PetscCall(PetscSNPrintf(steps_option, sizeof steps_option, "-%sts_max_steps", prefix ? prefix : ""));
    PetscCall(PetscOptionsHasName(NULL, NULL, steps_option, &set));
    RnInputCheck(!set || max_steps >= 1, comm, "%s %d: the step limit must be at least 1 (ode.max_steps is the usual place for it)", steps_option, (int)max_steps);
  }
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
