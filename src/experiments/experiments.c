/* experiments.c: what the experiments share (experiments.h). */
#include "resnode/experiments/experiments.h"

#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

const char *const RnExperimentOdePrefixes[] = {"", NULL};

PetscErrorCode RnCheckPrecision(RnConfig cfg, RnPrecision precision)
{
  PetscBool has;
  char isa[128];

  PetscFunctionBeginUser;
  if (precision != RN_PRECISION_BFLOAT16 || RnConfigDescribing(cfg)) PetscFunctionReturn(0);
  PetscCall(RnDnnlHasBfloat16(&has));
  RnDnnlDescribe(isa, sizeof isa);
  if (!has) PetscCall(RnConfigError(cfg, "model.precision", "\"bfloat16\" needs bfloat16 convolutions, which %s does not have on this CPU (oneDNN 2.6 has them on AVX-512 cores); use \"float32\" here", isa));
  PetscFunctionReturn(0);
}

/* Whether dir is one of PATH's entries. */
static int OnPath(const char *dir)
{
  const char *path = getenv("PATH");
  const size_t n = strlen(dir);
  for (const char *p = path; p && *p;) {
    const char *end = strchr(p, ':');
    const size_t len = end ? (size_t)(end - p) : strlen(p);
    if (len == n && !strncmp(p, dir, n)) return 1;
    p = end ? end + 1 : p + len;
  }
  return 0;
}

void RnAnalysisCommand(const char *script, char *cmd, size_t len)
{
  char exe[PATH_MAX], candidate[PATH_MAX + 64];
  const ssize_t n = readlink("/proc/self/exe", exe, sizeof exe - 1);
  char *slash;

  snprintf(cmd, len, "resnode-%s", script);
  if (n <= 0) return;
  exe[n] = 0;
  if (!(slash = strrchr(exe, '/'))) return;
  *slash = 0;
  snprintf(candidate, sizeof candidate, "%s/resnode-%s", exe, script);
  if (!OnPath(exe) && access(candidate, X_OK) == 0) snprintf(cmd, len, "%s", candidate);
}
