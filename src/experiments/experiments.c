/* experiments.c: what the experiments share (experiments.h). */
#include "resnode/experiments/experiments.h"

#include <stdlib.h>

#ifndef RESNODE_SOURCE_DIR
#define RESNODE_SOURCE_DIR "."
#endif

const char *RnSourceDir(void)
{
  const char *env = getenv("RESNODE_SOURCE_DIR");
  return env && env[0] ? env : RESNODE_SOURCE_DIR;
}

PetscErrorCode RnRunPlotScript(RnCtx ctx, RnRunDir rd, const char *script)
{
  char cmd[3 * PETSC_MAX_PATH_LEN];
  int status;

  PetscFunctionBeginUser;
  if (ctx->world_rank != 0) PetscFunctionReturn(0);
  PetscCall(PetscSNPrintf(cmd, sizeof cmd, "/usr/bin/python3 '%s/analysis/%s' '%s' > '%s/plot.log' 2>&1", RnSourceDir(), script, rd->path, rd->path));
  status = system(cmd);
  if (status != 0) PetscCall(RnLog(ctx, "warning: the plot script analysis/%s failed (see %s/plot.log); the data are in %s\n", script, rd->path, rd->path));
  PetscFunctionReturn(0);
}
