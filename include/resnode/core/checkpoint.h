/* checkpoint.h: checkpoints, resume, and preemption signals.
 *
 * A run registers the pieces of its state (parameters, optimizer state,
 * counters, batch-norm statistics, ensemble state, ...) as named byte ranges
 * and the metrics files it appends to. RnCheckpointerStep, called once per
 * step by every rank, decides collectively whether to write a checkpoint
 * (every K steps, every S seconds, or because a SIGTERM/SIGUSR1 arrived), so
 * no rank is left inside a collective.
 *
 * Files: RUN_DIR/checkpoints/ckpt-<step>.bin, written in parallel with
 * MPI-IO, each field by the rank that owns it (no rank gathers the state:
 * an ensemble's groups write their own units), to a temporary file that is
 * synced, renamed by rank 0, then completed by ckpt-<step>.done. On resume
 * rank 0 checks the head and every rank reads the fields it holds (the run
 * directory is on a file system all ranks see). Format (little-endian):
 *   head: char[8] magic "RNCKPT\0\1", uint32 version (2), uint32 nfields,
 *   int64 step; per field: char[48] name, uint64 bytes, uint64 FNV-1a
 *   checksum of its bytes, uint64 offset; per metrics file: char[48] name,
 *   int64 offset; uint64 FNV-1a checksum of the head before it;
 *   then each field's bytes at its offset (8-aligned).
 * The two newest complete checkpoints are kept; on resume the newest one
 * whose checksum verifies is used (a corrupt one is reported and skipped),
 * and the metrics files are truncated back to their recorded offsets. */
#ifndef RESNODE_CHECKPOINT_H
#define RESNODE_CHECKPOINT_H

#include "resnode/core/config.h"
#include "resnode/core/metrics.h"

typedef struct RnCheckpointer_s *RnCheckpointer;

typedef struct {
  int every_steps;       /* 0: never by count */
  double every_seconds;  /* 0: never by time */
  int keep;              /* complete checkpoints kept (>= 1) */
} RnCheckpointOptions;

/* Keys checkpoint.every_steps, checkpoint.every_seconds, checkpoint.keep. */
PetscErrorCode RnCheckpointOptionsFromConfig(RnConfig cfg, RnCheckpointOptions *opt);

PetscErrorCode RnCheckpointerCreate(RnCtx ctx, RnRunDir rd, const RnCheckpointOptions *opt, RnCheckpointer *ck);
/* A piece of state: `bytes` bytes at data. owner_rank: the world rank that
 * holds the authoritative copy (0 for replicated state). Every rank
 * registers the same fields in the same order. */
PetscErrorCode RnCheckpointerAddField(RnCheckpointer ck, const char *name, void *data, size_t bytes, int owner_rank);
PetscErrorCode RnCheckpointerAddMetrics(RnCheckpointer ck, const char *name, RnMetrics m);
/* If the run directory holds a complete checkpoint: load it into the
 * registered fields (on their owners), truncate the metrics, and return
 * its step in *step (else *step = -1 and nothing changes). A checkpoint
 * past last_step, or none usable, is an input error (naming `what`) that
 * leaves every file as it was. */
PetscErrorCode RnCheckpointerRestore(RnCheckpointer ck, long long last_step, const char *what, long long *step);
/* Called after step `step` is complete. Writes a checkpoint when due; sets
 * *stop when a preemption signal arrived (the checkpoint is then written
 * already and the caller should return RN_ERR_PREEMPTED). */
PetscErrorCode RnCheckpointerStep(RnCheckpointer ck, long long step, PetscBool final, PetscBool *stop);
PetscErrorCode RnCheckpointerWrite(RnCheckpointer ck, long long step);
/* Whether run_dir/checkpoints, or a unit's (run_dir/units/NAME/checkpoints),
 * holds a complete checkpoint (this rank's view). */
PetscErrorCode RnCheckpointAny(const char *run_dir, PetscBool *any);
/* The step of the newest complete checkpoint in dir/checkpoints, -1 for none
 * (this rank's view; its fields are checked when it is restored). */
PetscErrorCode RnCheckpointNewest(const char *dir, long long *step);
/* A stop asked for from outside the checkpointer's ranks (another group's
 * signal or error: units.h). Called on every step by each rank; where it
 * says stop, the step is checkpointed and *stop set as for a signal. */
typedef PetscErrorCode (*RnStopPoll)(void *poll_ctx, PetscBool *stop);
PetscErrorCode RnCheckpointerSetStopPoll(RnCheckpointer ck, RnStopPoll poll, void *poll_ctx);
PetscErrorCode RnCheckpointerDestroy(RnCheckpointer *ck);

/* The handlers below, without PETSc: main's first call, so that a signal
 * while MPI and PETSc start (or to a thread a library started before main,
 * such as OpenBLAS's pool) is counted, not fatal; it takes effect at the
 * first step. Returns 0 on success. */
int RnSignalsCatch(void);
/* Install SIGTERM/SIGUSR1 handlers (first: finish the step, checkpoint, exit
 * 3; second SIGTERM: exit at once), again after PETSc's start-up. */
PetscErrorCode RnSignalsInstall(void);
PetscBool RnSignalPending(void);
/* For tests of resume at every phase boundary: where the environment has
 * RESNODE_TEST_STOP_AT=POINT:N, the N-th pass of this rank through the named
 * point acts as a SIGUSR1 received there (deterministic, unlike a signal
 * sent from outside). Without it, nothing. */
#define RN_TEST_STOP_ENV "RESNODE_TEST_STOP_AT"
void RnTestStopPoint(const char *point);

#endif
