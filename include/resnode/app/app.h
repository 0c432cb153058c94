/* app.h: the binary's top level.
 *
 *   resnode-mpi [CONFIG] [--set key=value ...] [--resume RUN_DIR] [PETSc options]
 *
 * The command line, the configuration, the run directory and the registry of
 * experiments (experiments.h). main() is RnMain. */
#ifndef RESNODE_APP_H
#define RESNODE_APP_H

int RnMain(int argc, char **argv);

#endif
