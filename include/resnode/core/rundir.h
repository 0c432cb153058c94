/* rundir.h: the run directory and what a run leaves in it.
 *
 *   RUN_DIR/config.cfg      the resolved configuration (every key, defaults included)
 *   RUN_DIR/manifest.json   versions, command, ranks, groups, start/end, status,
 *                           and a heartbeat rewritten every RN_HEARTBEAT_SECONDS
 *                           while the run lives (its time and progress)
 *   RUN_DIR/log.txt         a copy of rank 0's messages
 *   RUN_DIR/<name>.csv      metrics: a header, then one row per record, appended
 *                           and flushed line by line by rank 0 (a killed job keeps them)
 *   RUN_DIR/snapshots/      parameter snapshots (snapshot.h)
 *   RUN_DIR/checkpoints/    checkpoints (checkpoint.h)
 */
#ifndef RESNODE_RUNDIR_H
#define RESNODE_RUNDIR_H

#include "resnode/core/core.h"

typedef struct RnRunDir_s *RnRunDir;
struct RnRunDir_s {
  RnCtx ctx;
  char path[PETSC_MAX_PATH_LEN];
  char command[4096];
  char experiment[64];
  char start_time[64];
  char status[32];
  char reason[2048]; /* the status's one-line reason, as last written */
  char kernels[2048]; /* what computes (precision, oneDNN kernels): set by the experiment */
  char analysis[PETSC_MAX_PATH_LEN]; /* the command that plots and reports this run */
  char config_files[8192];           /* JSON array: the config files read, with checksums */
  char rank_hosts[4096]; /* rank 0: the host of each rank, as runs "host:first-last" */
  int lock_fd;
  PetscBool resume; /* started by --resume */
  char previous[64]; /* how the previous attempt in this directory ended ("" for none) */
  char *previous_manifest; /* rank 0: its manifest as found (NULL for none) */
  /* rank 0, resuming: what this attempt may change, as found, so that an
   * attempt refused before its first step leaves the directory as it was */
  char *previous_config;        /* config.cfg (NULL for none) */
  char *previous_lock;          /* .lock's text (NULL for none) */
  long long previous_log_bytes; /* log.txt's length (-1: none) */
  PetscBool had_stored_config, had_snapshots, had_checkpoints; /* checkpoints/config.cfg, snapshots/, checkpoints/ */
  PetscBool started; /* this attempt has taken or restored its first step (RnRunDirMarkStarted) */
  char data_copies[128]; /* the data set's copies (one a node), for the manifest */
  char peak_rss[4096];   /* rank 0: each rank's peak resident memory in MB, a JSON array */
  char schedule[256]; /* the group shape and predicted busy fraction (units.h) */
  PetscBool unit; /* a unit's directory (RnRunDirCreateUnit): borrows the run's log */
  char mpi_version[MPI_MAX_LIBRARY_VERSION_STRING];        /* MPI_Get_library_version's first line, for the manifest */
  struct RnHeartbeat_s *heartbeat; /* the manifest's heartbeat and progress (rundir.c) */
  char profile[8192];              /* rank 0: where the time went, JSON (profile.h), "" until the end */
};

/* The manifest's schema: 2 added manifest_version, heartbeat and profile (a manifest
 * without manifest_version is version 1). */
#define RN_MANIFEST_VERSION 2
/* the manifest's largest size (64 ranks' hosts and memory, kernels, profile) */
#define RN_MANIFEST_MAX 65536
/* How often a live run rewrites its manifest's heartbeat: a run whose
 * heartbeat is much older than this died without a word (resnode-runs). */
#define RN_HEARTBEAT_SECONDS 60

/* Creates (or, resuming, opens) the run directory on rank 0, checks that it
 * is writable and takes its lock (a second run on the same directory is
 * refused); every rank learns the outcome. */
PetscErrorCode RnRunDirCreate(RnCtx ctx, const char *path, const char *experiment, int argc, char **argv, PetscBool resume, RnRunDir *rd);
/* path/name into buf */
PetscErrorCode RnRunDirFile(RnRunDir rd, const char *name, char *buf, size_t len);
/* Writes manifest.json (rank 0) with the status ("running", "done",
 * "preempted" or "failed") and a one-line reason ("finished", the signal's
 * checkpoint, the error); atomically (temp + rename). */
PetscErrorCode RnRunDirSetStatus(RnRunDir rd, const char *status, const char *reason);
/* Puts back what this attempt changed (rank 0): the manifest, config.cfg,
 * checkpoints/config.cfg, log.txt, .lock and the directories it created, as
 * they were; for an attempt refused before its first step (a resume refused
 * for its checkpoints or its config). */
PetscErrorCode RnRunDirUndoAttempt(RnRunDir rd);
/* The current run has taken (or restored) its first step: from here on its
 * directory holds this attempt's results (the trainer calls it). */
void RnRunDirMarkStarted(void);
/* Progress for the heartbeat: the current run's steps (the trainer) and
 * units started of all (the unit queue); cheap, any thread of rank 0. */
void RnRunDirNoteSteps(long long done, long long total);
void RnRunDirNoteUnits(int started, int total);
/* The status and reason of the manifest in dir (PETSC_FALSE, both "", where
 * it has none); plain C. */
PetscBool RnRunDirReadStatus(const char *dir, char *status, size_t status_len, char *reason, size_t reason_len);
/* Whether dir holds a run (its manifest.json): what --resume takes. */
PetscBool RnRunDirHoldsRun(const char *dir);
PetscErrorCode RnRunDirDestroy(RnRunDir *rd);
/* RUN_DIR/units/<name>: the directory of one unit of work (its checkpoints
 * and tables), seen from `view` (the ranks that train it; RnCtxCreateGroupView).
 * Created by the view's rank 0; no lock and no manifest of its own. */
PetscErrorCode RnRunDirCreateUnit(RnRunDir parent, RnCtx view, const char *name, RnRunDir *unit);
/* Names the analysis command in the manifest (the job scripts run it after the job). */
PetscErrorCode RnRunDirSetAnalysis(RnRunDir rd, const char *command);
/* Name one config file that went into the run (the config, or one of its
 * @include bases) and its FNV-1a checksum, for the manifest's config_files. */
PetscErrorCode RnRunDirAddConfigFile(RnRunDir rd, const char *path, uint64_t checksum);
/* Names the kernels in the manifest (rank 0's text; written at the next status). */
PetscErrorCode RnRunDirSetKernels(RnRunDir rd, const char *kernels);
/* ... the copies of its data set ("3 copies of 46.1 MB, one a node") */
PetscErrorCode RnRunDirSetDataCopies(RnRunDir rd, int copies, double bytes, int nodes);
/* Collective: each rank's peak resident memory, for the manifest and the log. */
PetscErrorCode RnRunDirGatherPeakMemory(RnRunDir rd);
/* ... where its time went (RnProfileJSON's text) */
PetscErrorCode RnRunDirSetProfile(RnRunDir rd, const char *json);
/* ... and how its units are scheduled (the manifest's "schedule"). */
PetscErrorCode RnRunDirSetSchedule(RnRunDir rd, const char *schedule);

/* in as a JSON string, quotes included, escaped; cut to fit len */
void RnJsonString(char *out, size_t len, const char *in);
/* Writes data to path atomically: path.tmp, fsync, rename, fsync of the directory. */
PetscErrorCode RnWriteFileAtomic(const char *path, const void *data, size_t len);

#endif
