/* metrics.h: the metrics tables of a run directory (CSV, written by rank 0,
 * a header then one row per record, flushed line by line). */
#ifndef RESNODE_METRICS_H
#define RESNODE_METRICS_H

#include "resnode/core/rundir.h"

/* A metrics CSV owned by rank 0 of ctx->world; other ranks hold an inert handle. */
typedef struct RnMetrics_s *RnMetrics;
/* A table written by this run from its header on (an existing file starts over). */
PetscErrorCode RnMetricsOpen(RnRunDir rd, const char *name, const char *header, RnMetrics *m);
/* A table a resumed run continues: what the file holds is kept until the
 * checkpointer it is registered with (RnCheckpointerAddMetrics) truncates it,
 * to the checkpoint's offset or, with no checkpoint, to its header. */
PetscErrorCode RnMetricsOpenContinued(RnRunDir rd, const char *name, const char *header, RnMetrics *m);
PetscErrorCode RnMetricsTruncateToHeader(RnMetrics m);
/* Append one row (already formatted, without newline), flushed at once. */
PetscErrorCode RnMetricsRow(RnMetrics m, const char *fmt, ...) PETSC_ATTRIBUTE_FORMAT(2, 3);
/* The file's byte length now (for checkpoints), and truncation back to it on resume. */
PetscErrorCode RnMetricsOffset(RnMetrics m, long long *offset);
PetscErrorCode RnMetricsTruncate(RnMetrics m, long long offset);
PetscErrorCode RnMetricsClose(RnMetrics *m);

#endif
