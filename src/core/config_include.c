/* config_include.c: a config composed of others (config.h).
 *
 * An `@include "PATH"` line at the top level of a config names a base: the
 * base's keys come first, then the including file's own, key by key (a group
 * is merged member by member; any other value, arrays and lists included,
 * replaces the base's). PATH is absolute, or relative to the including file.
 * libconfig's own @include pastes text, so a key given in both files was a
 * "duplicate setting name"; each file is therefore parsed on its own and the
 * trees merged here. Every file read is listed with its checksum
 * (RnConfigFiles), for the run's manifest. */
#include "configimpl.h"
#include "resnode/core/checksum.h"

#include <ctype.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#define RN_INCLUDE_DEPTH_MAX 16 /* a chain deeper than this is a cycle in practice */
#define RN_INCLUDE_DIRECTIVE "@include"

/* The directory of path ("." for a bare name). */
static void DirectoryOf(const char *path, char *dir, size_t len)
{
  const char *slash = strrchr(path, '/');
  if (!slash) snprintf(dir, len, ".");
  else if (slash == path) snprintf(dir, len, "/");
  else snprintf(dir, len, "%.*s", (int)(slash - path), path);
}

/* The file's text, checked: a regular file (a FIFO would block every rank),
 * and no integer literal libconfig would wrap. */
static PetscErrorCode ReadText(RnConfig cfg, const char *path, const char *included_from, char **textp, size_t *lenp)
{
  struct stat st;
  FILE *fp;
  char *text, literal[64], from[PETSC_MAX_PATH_LEN + 32] = "";
  const char *nul;
  size_t size;
  int line;

  PetscFunctionBeginUser;
  if (included_from) snprintf(from, sizeof from, "%s: ", included_from);
  RnInputCheck(stat(path, &st) == 0, cfg->comm, "%s%s: cannot open the config file: %s", from, path, strerror(errno));
  RnInputCheck(S_ISREG(st.st_mode), cfg->comm, "%s%s: the config is not a regular file (%s)", from, path, S_ISDIR(st.st_mode) ? "a directory" : (S_ISFIFO(st.st_mode) ? "a FIFO" : "a device or socket"));
  fp = fopen(path, "r");
  RnInputCheck(fp, cfg->comm, "%s%s: cannot open the config file: %s", from, path, strerror(errno));
  PetscCall(PetscMalloc1((size_t)st.st_size + 1, &text));
  size = fread(text, 1, (size_t)st.st_size, fp);
  text[size] = 0;
  fclose(fp);
  /* libconfig reads a C string: a NUL would end the file there, silently
   * (every key after it at its default) */
  nul = memchr(text, 0, size);
  if (nul) {
    const size_t at = (size_t)(nul - text);
    int nul_line = 1;
    for (size_t c = 0; c < at; c++) nul_line += text[c] == '\n';
    PetscCall(PetscFree(text));
    RnInputError(cfg->comm, "%s:%d: a NUL byte (byte %zu): a config is text; is this a binary file, or was it damaged? (libconfig would ignore everything after it)", path, nul_line, at + 1);
  }
  line = RnConfig_NulEscapeLine(text);
  if (line) {
    PetscCall(PetscFree(text));
    RnInputError(cfg->comm, "%s:%d: a string holds the escape \\x00 (a NUL byte), which would end it there: no key takes one", path, line);
  }
  line = RnConfig_WrappingIntegerLine(text, literal, sizeof literal);
  if (line) {
    PetscCall(PetscFree(text));
    RnInputError(cfg->comm, "%s:%d: the integer %s does not fit in 32 bits (libconfig would read it modulo 2^32); check the value, or write %sL for a 64-bit one", path, line, literal, literal);
  }
  *textp = text, *lenp = size;
  PetscFunctionReturn(0);
}

/* The name a setting keeps for "FILE:LINE" messages: one copy per file, owned by cfg. */
static const char *Remember(RnConfig cfg, const char *path, const char *text, size_t len)
{
  for (int i = 0; i < cfg->nfiles; i++)
    if (!strcmp(cfg->files[i].path, path)) return cfg->files[i].path;
  if (cfg->nfiles == RN_MAX_CONFIG_FILES) return NULL;
  snprintf(cfg->files[cfg->nfiles].path, sizeof cfg->files[cfg->nfiles].path, "%s", path);
  cfg->files[cfg->nfiles].checksum = RnChecksum(text, len, RN_CHECKSUM_INIT);
  return cfg->files[cfg->nfiles++].path;
}

int RnConfig_CopyValue(config_setting_t *dst, const config_setting_t *src, const char *file)
{
  const int type = config_setting_type(src);
  if (file) dst->line = src->line, dst->file = file;
  config_setting_set_format(dst, (short)config_setting_get_format(src));
  switch (type) {
  case CONFIG_TYPE_INT:
    config_setting_set_int(dst, config_setting_get_int(src));
    break;
  case CONFIG_TYPE_INT64:
    config_setting_set_int64(dst, config_setting_get_int64(src));
    break;
  case CONFIG_TYPE_FLOAT:
    config_setting_set_float(dst, config_setting_get_float(src));
    break;
  case CONFIG_TYPE_BOOL:
    config_setting_set_bool(dst, config_setting_get_bool(src));
    break;
  case CONFIG_TYPE_STRING:
    config_setting_set_string(dst, config_setting_get_string(src));
    break;
  default: /* group, array, list: their elements, in order */
    for (int i = 0; i < config_setting_length(src); i++) {
      const config_setting_t *e = config_setting_get_elem(src, (unsigned)i);
      config_setting_t *n = config_setting_add(dst, type == CONFIG_TYPE_GROUP ? config_setting_name(e) : NULL, config_setting_type(e));
      if (!n || RnConfig_CopyValue(n, e, file)) return -1;
    }
  }
  return 0;
}

/* src's members over dst's, key by key: groups merge, everything else replaces. */
static void Merge(config_setting_t *dst, const config_setting_t *src, const char *file)
{
  for (int i = 0; i < config_setting_length(src); i++) {
    const config_setting_t *m = config_setting_get_elem(src, (unsigned)i);
    const char *name = config_setting_name(m);
    config_setting_t *old = config_setting_get_member(dst, name);
    if (old && config_setting_type(old) == CONFIG_TYPE_GROUP && config_setting_type(m) == CONFIG_TYPE_GROUP) {
      Merge(old, m, file);
      continue;
    }
    if (old) config_setting_remove(dst, name);
    /* libconfig checked the file's arrays: no element can be refused */
    (void)RnConfig_CopyValue(config_setting_add(dst, name, config_setting_type(m)), m, file);
  }
}

/* The @include lines of text, in order: each one's path (as written) and
 * line, blanked out of text so that libconfig parses the file's own keys
 * with their line numbers. An @include inside a group or a comment's text
 * is not a base: the first is an error, the second is skipped. */
static PetscErrorCode TakeIncludes(RnConfig cfg, const char *path, char *text, int *ninc, char (*inc)[PETSC_MAX_PATH_LEN], int *inc_line)
{
  int line = 1, depth = 0, max = *ninc;

  PetscFunctionBeginUser;
  *ninc = 0;
  for (char *p = text; *p; p++) {
    const char *skip = p;
    int skipped;
    if (*p == '\n') line++;
    else if ((skipped = RnConfig_SkipStringOrComment(&skip, &line))) {
      if (skipped < 0) break;
      p = text + (skip - text);
    } else if (*p == '{' || *p == '(' || *p == '[') depth++;
    else if (*p == '}' || *p == ')' || *p == ']') depth--;
    else if (!strncmp(p, RN_INCLUDE_DIRECTIVE, strlen(RN_INCLUDE_DIRECTIVE))) {
      char *q = p + strlen(RN_INCLUDE_DIRECTIVE), *end;
      while (*q == ' ' || *q == '\t') q++;
      end = *q == '"' ? strchr(q + 1, '"') : NULL;
      RnInputCheck(end && end - q - 1 < PETSC_MAX_PATH_LEN && end > q + 1, cfg->comm, "%s:%d: expected @include \"PATH\" (a quoted, non-empty file name)", path, line);
      RnInputCheck(depth == 0, cfg->comm, "%s:%d: @include inside a group: put it at the top level of the file (an included config is a base, merged key by key)", path, line);
      RnInputCheck(*ninc < max, cfg->comm, "%s:%d: more than %d @include lines in one file", path, line, max);
      {
        /* nothing after it on its line but a comment */
        const char *rest = end + 1;
        while (*rest == ' ' || *rest == '\t' || *rest == ';') rest++;
        RnInputCheck(!*rest || *rest == '\n' || *rest == '\r' || *rest == '#' || (rest[0] == '/' && (rest[1] == '/' || rest[1] == '*')), cfg->comm,
                     "%s:%d: text after @include \"%.*s\": '%.*s' (an @include stands alone on its line)", path, line, (int)(end - q - 1), q + 1, (int)strcspn(rest, "\n"), rest);
      }
      snprintf(inc[*ninc], PETSC_MAX_PATH_LEN, "%.*s", (int)(end - q - 1), q + 1);
      inc_line[(*ninc)++] = line;
      memset(p, ' ', (size_t)(end + 1 - p));
      p = end;
    }
  }
  PetscFunctionReturn(0);
}

/* Load path and its bases into cfg->lc (bases first). chain holds the files
 * that include it, to refuse a cycle. */
static PetscErrorCode LoadComposed(RnConfig cfg, const char *path, const char *included_from, int depth, const char **chain)
{
  char *text, dir[PETSC_MAX_PATH_LEN], (*inc)[PETSC_MAX_PATH_LEN], where[PETSC_MAX_PATH_LEN + 32];
  int ninc = RN_MAX_CONFIG_FILES, *inc_line;
  size_t len;
  const char *file;
  config_t own;

  PetscFunctionBeginUser;
  PetscCall(ReadText(cfg, path, included_from, &text, &len));
  file = Remember(cfg, path, text, len);
  if (!file) {
    PetscCall(PetscFree(text));
    RnInputError(cfg->comm, "%s: more than %d config files in one composition", path, RN_MAX_CONFIG_FILES);
  }
  PetscCall(PetscMalloc2(ninc, &inc, ninc, &inc_line));
  PetscCall(TakeIncludes(cfg, path, text, &ninc, inc, inc_line));
  DirectoryOf(path, dir, sizeof dir);
  chain[depth] = file;
  for (int i = 0; i < ninc; i++) {
    char full[2 * PETSC_MAX_PATH_LEN + 2];
    if (inc[i][0] == '/') snprintf(full, sizeof full, "%s", inc[i]);
    else snprintf(full, sizeof full, "%s/%s", dir, inc[i]);
    snprintf(where, sizeof where, "%s:%d: @include \"%s\"", path, inc_line[i], inc[i]);
    RnInputCheck(depth + 1 < RN_INCLUDE_DEPTH_MAX, cfg->comm, "%s: includes nest deeper than %d files (a cycle?)", where, RN_INCLUDE_DEPTH_MAX);
    for (int k = 0; k <= depth; k++) {
      struct stat a, b;
      RnInputCheck(!(stat(full, &a) == 0 && stat(chain[k], &b) == 0 && a.st_dev == b.st_dev && a.st_ino == b.st_ino), cfg->comm, "%s: %s includes itself through %s (a cycle)", where, full, chain[k]);
    }
    PetscCall(LoadComposed(cfg, full, where, depth + 1, chain));
  }
  PetscCall(PetscFree2(inc, inc_line));
  config_init(&own);
  if (config_read_string(&own, text) != CONFIG_TRUE) {
    char msg[PETSC_MAX_PATH_LEN + 256];
    snprintf(msg, sizeof msg, "%s:%d: syntax error: %s", path, config_error_line(&own), config_error_text(&own));
    config_destroy(&own);
    PetscCall(PetscFree(text));
    RnInputError(cfg->comm, "%s", msg);
  }
  PetscCall(PetscFree(text));
  Merge(config_root_setting(&cfg->lc), config_root_setting(&own), file);
  config_destroy(&own);
  PetscFunctionReturn(0);
}

PetscErrorCode RnConfigLoadFile(RnConfig cfg, const char *path)
{
  const char *chain[RN_INCLUDE_DEPTH_MAX];

  PetscFunctionBeginUser;
  PetscCall(PetscStrncpy(cfg->source, path, sizeof cfg->source));
  DirectoryOf(path, cfg->dir, sizeof cfg->dir);
  PetscCall(LoadComposed(cfg, path, NULL, 0, chain));
  PetscFunctionReturn(0);
}

int RnConfigFileCount(RnConfig cfg) { return cfg->nfiles; }

const char *RnConfigFile(RnConfig cfg, int i, uint64_t *checksum)
{
  if (i < 0 || i >= cfg->nfiles) return NULL;
  if (checksum) *checksum = cfg->files[i].checksum;
  return cfg->files[i].path;
}
