/* core.h: the run context (communicators, groups, logging, seed) and the error
 * conventions every module follows.
 *
 * Errors use PETSc's convention: every fallible function returns a
 * PetscErrorCode and is called through PetscCall(). Bad user input (config,
 * data files, checkpoints, rank counts) is raised with RnInputError on a
 * communicator where every rank detects it identically, so all ranks unwind
 * together, rank 0 prints one clean line and the program exits with status 2
 * without a hang. Any other error aborts the whole job (MPI_Abort) so no rank
 * is left waiting in a collective. */
#ifndef RESNODE_CORE_H
#define RESNODE_CORE_H

#include <petscsys.h>
#include <stdint.h>
#include <stdio.h>

#ifndef RESNODE_VERSION
#define RESNODE_VERSION "unknown"
#endif
#ifndef RESNODE_GIT_COMMIT
#define RESNODE_GIT_COMMIT "unknown"
#endif

/* Error code for bad input detected collectively. */
/* The hot loops of our own code (the elementwise kernels around oneDNN, the
 * float64 convolution's im2col) are compiled for three x86-64 levels, and the
 * best one the CPU runs is chosen when the program loads (GCC's
 * target_clones): a portable build loses nothing on a newer CPU, and runs on
 * an older one. A native build (-DRESNODE_NATIVE=ON) has one version. */
#if defined(__x86_64__) && defined(__GNUC__) && !defined(__clang__) && __GNUC__ >= 12 && !defined(RESNODE_NATIVE)
#define RN_HOT_LOOP __attribute__((target_clones("default", "arch=x86-64-v3", "arch=x86-64-v4")))
#else
#define RN_HOT_LOOP
#endif

/* Bytes buffers are aligned to: a cache line, and what 512-bit vector stores
 * (oneDNN's non-temporal ones fault on less) need. */
#define RN_ALIGNMENT 64

#define RN_ERR_INPUT PETSC_ERR_USER_INPUT
/* A preemption signal was handled: checkpoint written, every rank unwinds. */
#define RN_ERR_PREEMPTED 200
/* A non-finite loss or gradient, agreed by all ranks (the last good
 * checkpoint is kept). */
#define RN_ERR_NONFINITE 201

/* Exit codes of the binary. */
#define RN_EXIT_OK 0
#define RN_EXIT_FAILED 1
#define RN_EXIT_INPUT 2
#define RN_EXIT_PREEMPTED 3
#define RN_EXIT_NONFINITE 4

/* Raise an input error (collectively on comm). */
#define RnCollectiveError(comm, code, ...) SETERRQ((comm), (code), __VA_ARGS__)
#define RnInputError(comm, ...) SETERRQ((comm), RN_ERR_INPUT, __VA_ARGS__)
#define RnInputCheck(cond, comm, ...) PetscCheck((cond), (comm), RN_ERR_INPUT, __VA_ARGS__)

typedef struct RnCtx_s *RnCtx;
struct RnCtx_s {
  MPI_Comm world; /* the job's communicator (PETSC_COMM_WORLD) */
  int world_rank, world_size;
  MPI_Comm group; /* the ranks that train one model instance together */
  int group_id, group_count, group_rank, group_size;
  MPI_Comm leaders; /* group leaders (group_rank 0); MPI_COMM_NULL elsewhere */
  uint64_t seed;    /* root of every random number (see rng.h) */
  int verbose;      /* 0 quiet, 1 progress, 2 debug */
  FILE *log_file;   /* copy of rank 0's messages in the run directory, or NULL */
  PetscBool progress_tty; /* rank 0's stdout is a terminal: update lines in place */
  char log_prefix[80];    /* put before each line on stdout ("" for none): a study's point */
};

PetscErrorCode RnCtxCreate(MPI_Comm world, RnCtx *ctx);
/* Split the world into group_count groups of equal size (consecutive ranks). */
PetscErrorCode RnCtxSetGroups(RnCtx ctx, int group_count);
/* The number of nodes (shared-memory domains) of the world, and whether
 * every node has as many ranks (collective). */
PetscErrorCode RnCtxNodeCount(RnCtx ctx, int *nodes, PetscBool *balanced);
PetscErrorCode RnCtxDestroy(RnCtx *ctx);
/* A view of this rank's group as a world of its own (world = the group's
 * communicator, not duplicated): what runs on one group alone (a unit's
 * trainer, checkpoints and tables) takes it. Its leader logs; only group
 * 0 shows progress lines. Free with RnCtxDestroyGroupView. */
PetscErrorCode RnCtxCreateGroupView(RnCtx ctx, RnCtx *view);
PetscErrorCode RnCtxDestroyGroupView(RnCtx *view);

/* printf on world rank 0 (and into the log file). */
PetscErrorCode RnLog(RnCtx ctx, const char *fmt, ...) PETSC_ATTRIBUTE_FORMAT(2, 3);
/* A progress line: rewritten in place on a terminal, a plain line otherwise. */
PetscErrorCode RnProgress(RnCtx ctx, const char *fmt, ...) PETSC_ATTRIBUTE_FORMAT(2, 3);
/* End a run of progress lines (prints the newline on a terminal). */
PetscErrorCode RnProgressEnd(RnCtx ctx);

/* Install the error handler described above (call once after PetscInitialize). */
PetscErrorCode RnErrorHandlerPush(void);
/* Turn an error code from the top level into the process's exit: returns the
 * exit status for input errors, aborts the job for everything else. */
int RnExitFromError(PetscErrorCode err);

/* Make a locally detected problem collective: every rank of comm passes its
 * own status (0 = fine) and message; if any rank failed, all ranks raise
 * RN_ERR_INPUT with the message of the lowest failing rank. */
/* PETSc's allocator replaced by one that reports the size of a failed
 * allocation (out of memory: one line with the size, exit 2); call before
 * PetscInitialize. 0 on success. */
int RnMallocInstall(void);
/* MemAvailable of this node in bytes (-1 when unknown), and "7.5 GiB". */
double RnMemoryAvailable(void);
void RnFormatBytes(double bytes, char *buf, size_t len);
/* The message of the newest error raised on this rank ("" for none). */
const char *RnLastErrorMessage(void);
/* How a run that ended with err is named in its manifest: its status
 * ("done", "preempted" or "failed") and a one-line reason. */
const char *RnErrorStatus(PetscErrorCode err);
void RnErrorReason(PetscErrorCode err, const char *message, char *buf, size_t len);
/* Called (status, reason) on the rank that ends the job with MPI_Abort (an
 * error on a group's communicator, out of memory), so the manifest can say
 * so; the run directory sets it. */
/* While a unit queue runs, an input error, stop or non-finite loss raised
 * on a group's communicator is the queue's to end the job with
 * (RnUnitQueueFinish), not a reason to abort it. */
void RnGroupErrorsCollected(PetscBool collected);
/* The ranks of the run under way, where it is not the whole job (a study's
 * point runs on one group of the study's ranks: app/study.c): an error
 * raised on them all ends that run, not the job, and its message starts
 * with prefix (the point's name). MPI_COMM_NULL, "": the world. */
void RnErrorSetJob(MPI_Comm comm, const char *prefix);
void RnSetAbortNote(void (*note)(const char *status, const char *reason));
PetscErrorCode RnAgreeInput(MPI_Comm comm, int local_failed, const char *local_message);
/* The same for a check of what each host sees (a file on a node-local file
 * system): where some ranks failed and others did not, the message names
 * the first failing rank's host and how many ranks failed. */
PetscErrorCode RnAgreeInputOnHosts(MPI_Comm comm, int local_failed, const char *local_message);

/* The CPU for performance figures: /proc/cpuinfo's model name and whether it
 * has AMX and avx512_bf16, e.g. "AMD EPYC (avx512_bf16, no AMX)". */
void RnCpuDescribe(char *buf, size_t len);
/* The build and the version of the hot loops this CPU runs, e.g.
 * "portable build, loops for x86-64-v4" or "native build (-march=native)". */
void RnIsaDescribe(char *buf, size_t len);
/* Threads each rank computes with (oneDNN's OpenMP, OpenBLAS): 1 when ranks
 * share a node unless OMP_NUM_THREADS says otherwise. RnThreadsSetUp applies it. */
int RnThreadsPerRank(void);
void RnThreadsSetUp(int world_size);

/* Wall-clock seconds. */
double RnWallTime(void);

#endif
