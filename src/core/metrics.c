/* metrics.c: the metrics tables of a run (metrics.h). */
#include "resnode/core/metrics.h"

#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <time.h>
#include <unistd.h>



struct RnMetrics_s {
  FILE *fp; /* rank 0 only */
  char path[PETSC_MAX_PATH_LEN + 32];
  long long header_end; /* byte offset after the header line */
};

/* continued: keep what the file holds (a checkpointer truncates it on
 * restore); else the file starts over with its header. */
static PetscErrorCode MetricsOpen(RnRunDir rd, const char *name, const char *header, PetscBool continued, RnMetrics *metrics)
{
  RnMetrics m;
  int failed = 0;
  char msg[PETSC_MAX_PATH_LEN + 128] = "";

  PetscFunctionBeginUser;
  PetscCall(PetscNew(&m));
  PetscCall(RnRunDirFile(rd, name, m->path, sizeof m->path));
  if (rd->ctx->world_rank == 0) {
    struct stat st;
    int exists = continued && stat(m->path, &st) == 0 && st.st_size > 0;
    m->fp = fopen(m->path, exists ? "a+" : "w");
    if (!m->fp) {
      failed = 1;
      snprintf(msg, sizeof msg, "cannot open %s for writing: %s", m->path, strerror(errno));
    } else if (!exists) {
      fprintf(m->fp, "%s\n", header);
      fflush(m->fp);
      m->header_end = (long long)strlen(header) + 1;
    } else {
      /* the header is the file's first line */
      int c;
      long long n = 0;
      rewind(m->fp);
      while ((c = fgetc(m->fp)) != EOF && c != '\n') n++;
      m->header_end = c == '\n' ? n + 1 : n;
      fseeko(m->fp, 0, SEEK_END);
    }
  }
  PetscCall(RnAgreeInput(rd->ctx->world, failed, msg));
  *metrics = m;
  PetscFunctionReturn(0);
}

PetscErrorCode RnMetricsOpen(RnRunDir rd, const char *name, const char *header, RnMetrics *metrics)
{
  PetscFunctionBeginUser;
  PetscCall(MetricsOpen(rd, name, header, PETSC_FALSE, metrics));
  PetscFunctionReturn(0);
}

PetscErrorCode RnMetricsOpenContinued(RnRunDir rd, const char *name, const char *header, RnMetrics *metrics)
{
  PetscFunctionBeginUser;
  PetscCall(MetricsOpen(rd, name, header, PETSC_TRUE, metrics));
  PetscFunctionReturn(0);
}

PetscErrorCode RnMetricsTruncateToHeader(RnMetrics m)
{
  PetscFunctionBeginUser;
  if (m && m->fp) PetscCall(RnMetricsTruncate(m, m->header_end));
  PetscFunctionReturn(0);
}

PetscErrorCode RnMetricsRow(RnMetrics m, const char *fmt, ...)
{
  va_list ap;

  PetscFunctionBeginUser;
  if (!m || !m->fp) PetscFunctionReturn(0);
  va_start(ap, fmt);
  vfprintf(m->fp, fmt, ap);
  va_end(ap);
  fputc('\n', m->fp);
  PetscCheck(fflush(m->fp) == 0, PETSC_COMM_SELF, PETSC_ERR_FILE_WRITE, "cannot write %s: %s", m->path, strerror(errno));
  PetscFunctionReturn(0);
}

PetscErrorCode RnMetricsOffset(RnMetrics m, long long *offset)
{
  PetscFunctionBeginUser;
  *offset = 0;
  if (m && m->fp) {
    PetscCheck(fflush(m->fp) == 0, PETSC_COMM_SELF, PETSC_ERR_FILE_WRITE, "cannot write %s", m->path);
    *offset = (long long)ftello(m->fp);
  }
  PetscFunctionReturn(0);
}

PetscErrorCode RnMetricsTruncate(RnMetrics m, long long offset)
{
  PetscFunctionBeginUser;
  if (!m || !m->fp) PetscFunctionReturn(0);
  PetscCheck(fflush(m->fp) == 0, PETSC_COMM_SELF, PETSC_ERR_FILE_WRITE, "cannot write %s", m->path);
  PetscCheck(ftruncate(fileno(m->fp), (off_t)offset) == 0, PETSC_COMM_SELF, PETSC_ERR_FILE_WRITE, "cannot truncate %s: %s", m->path, strerror(errno));
  PetscCheck(fseeko(m->fp, (off_t)offset, SEEK_SET) == 0, PETSC_COMM_SELF, PETSC_ERR_FILE_WRITE, "cannot seek %s", m->path);
  PetscFunctionReturn(0);
}

PetscErrorCode RnMetricsClose(RnMetrics *m)
{
  PetscFunctionBeginUser;
  if (!m || !*m) PetscFunctionReturn(0);
  if ((*m)->fp) fclose((*m)->fp);
  PetscCall(PetscFree(*m));
  *m = NULL;
  PetscFunctionReturn(0);
}
