/* config.c: libconfig files with every key validated (see config.h): loading,
 * where a key comes from, and the error that names it. Files and their
 * @include bases are read in config_include.c, the getters are in
 * config_get.c, --set in config_set.c, did-you-mean in config_suggest.c, the
 * writer and the resume diff in config_write.c. */
#include "configimpl.h"

#include <ctype.h>
#include <errno.h>
#include <limits.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

PetscErrorCode RnConfigCreate(MPI_Comm comm, RnConfig *cfgp)
{
  RnConfig cfg;

  PetscFunctionBeginUser;
  PetscCall(PetscNew(&cfg));
  cfg->comm = comm;
  config_init(&cfg->lc);
  PetscCall(PetscMalloc1(RN_MAX_KEYS, &cfg->known));
  PetscCall(PetscCalloc1(RN_MAX_KEYS, &cfg->defaulted));
  PetscCall(PetscMalloc2(RN_MAX_KEYS, &cfg->set_keys, RN_MAX_KEYS, &cfg->set_args));
  PetscCall(PetscMalloc1(RN_MAX_KEYS, &cfg->docs));
  strcpy(cfg->source, "<no config>");
  strcpy(cfg->dir, ".");
  *cfgp = cfg;
  PetscFunctionReturn(0);
}

PetscErrorCode RnConfigDestroy(RnConfig *cfg)
{
  PetscFunctionBeginUser;
  if (!cfg || !*cfg) PetscFunctionReturn(0);
  config_destroy(&(*cfg)->lc);
  PetscCall(PetscFree((*cfg)->known));
  PetscCall(PetscFree((*cfg)->defaulted));
  PetscCall(PetscFree2((*cfg)->set_keys, (*cfg)->set_args));
  PetscCall(PetscFree((*cfg)->docs));
  PetscCall(PetscFree(*cfg));
  *cfg = NULL;
  PetscFunctionReturn(0);
}

const char *RnConfigDirectory(RnConfig cfg) { return cfg->dir; }
const char *RnConfigSourceName(RnConfig cfg) { return cfg->source; }
MPI_Comm RnConfigComm(RnConfig cfg) { return cfg->comm; }

/* libconfig 1.5 reads an integer literal beyond 32 bits without an L suffix
 * modulo 2^32 (4294967299 becomes 3): find such a literal in text (outside
 * strings and comments) and return its line, or 0. */
int RnConfig_SkipStringOrComment(const char **pp, int *line)
{
  const char *p = *pp;
  if (*p == '"') {
    for (p++; *p && *p != '"'; p++) {
      if (*p == '\\' && p[1]) p++;
      if (*p == '\n') (*line)++;
    }
  } else if (*p == '#' || (*p == '/' && p[1] == '/')) {
    while (p[1] && p[1] != '\n') p++;
  } else if (*p == '/' && p[1] == '*') {
    for (p += 2; *p && !(*p == '*' && p[1] == '/'); p++)
      if (*p == '\n') (*line)++;
    if (*p) p++;
  } else return 0;
  *pp = p;
  return *p ? 1 : -1;
}

int RnConfig_NulEscapeLine(const char *text)
{
  int line = 1;
  for (const char *p = text; *p; p++) {
    if (*p == '\n') line++;
    else if (*p == '"') {
      for (p++; *p && *p != '"'; p++) {
        if (*p == '\n') line++;
        if (*p != '\\' || !p[1]) continue;
        /* \x00 (any case): libconfig would end the string there */
        if ((p[1] == 'x' || p[1] == 'X') && p[2] == '0' && p[3] == '0') return line;
        p++;
      }
      if (!*p) break;
    } else {
      int skipped = RnConfig_SkipStringOrComment(&p, &line);
      if (skipped < 0) break;
    }
  }
  return 0;
}

int RnConfig_WrappingIntegerLine(const char *text, char *literal, size_t len)
{
  int line = 1;
  for (const char *p = text; *p; p++) {
    int skipped;
    if (*p == '\n') line++;
    else if ((skipped = RnConfig_SkipStringOrComment(&p, &line))) {
      if (skipped < 0) break;
    } else if (p[0] == '0' && (p[1] == 'x' || p[1] == 'X') && (p == text || !(isalnum((unsigned char)p[-1]) || p[-1] == '.' || p[-1] == '_'))) {
      /* hexadecimal: libconfig keeps the low 32 bits without an L suffix */
      const char *q = p + 2;
      while (isxdigit((unsigned char)*q)) q++;
      errno = 0;
      if (*q != 'L' && q > p + 2 && (strtoull(p, NULL, 16) > 0xffffffffull || errno == ERANGE)) {
        snprintf(literal, len, "%.*s", (int)PetscMin(q - p, 40), p);
        return line;
      }
      p = q - 1;
    } else if (isdigit((unsigned char)*p) && (p == text || !(isalnum((unsigned char)p[-1]) || p[-1] == '.' || p[-1] == '_'))) {
      const char *q = p;
      while (isdigit((unsigned char)*q)) q++;
      /* an integer: not a float (. e E), not hex, not already 64-bit (L) */
      if (*q != '.' && *q != 'e' && *q != 'E' && *q != 'x' && *q != 'X' && *q != 'L' && !(p[0] == '0' && q - p > 1)) {
        errno = 0;
        if (strtoull(p, NULL, 10) > 2147483647ull || errno == ERANGE) {
          snprintf(literal, len, "%.*s", (int)PetscMin(q - p, 40), p);
          return line;
        }
      }
      p = q - 1;
    }
  }
  return 0;
}

PetscErrorCode RnConfigLoadString(RnConfig cfg, const char *name, const char *text)
{
  PetscFunctionBeginUser;
  PetscCall(PetscStrncpy(cfg->source, name, sizeof cfg->source));
  if (config_read_string(&cfg->lc, text) != CONFIG_TRUE) RnInputError(cfg->comm, "%s:%d: syntax error: %s", name, config_error_line(&cfg->lc), config_error_text(&cfg->lc));
  strcpy(cfg->dir, ".");
  PetscFunctionReturn(0);
}

/* Where a key comes from, for messages: "FILE:LINE" or "--set k=v". */
void RnConfig_Where(RnConfig cfg, const char *key, config_setting_t *s, char *buf, size_t len)
{
  for (int i = cfg->nset - 1; i >= 0; i--) {
    size_t n = strlen(cfg->set_keys[i]);
    /* the key itself, or a key inside a group set from the command line */
    if (!strncmp(key, cfg->set_keys[i], n) && (key[n] == 0 || key[n] == '.')) {
      snprintf(buf, len, "--set %s", cfg->set_args[i]);
      return;
    }
  }
  if (!s) {
    /* a key that is absent: the line of the group or list element that should hold it */
    char parent[RN_KEY_LEN + 64];
    snprintf(parent, sizeof parent, "%s", key);
    for (char *dot = strrchr(parent, '.'); dot && !s; dot = strrchr(parent, '.')) {
      *dot = 0;
      s = config_lookup(&cfg->lc, parent);
    }
  }
  if (s && config_setting_source_line(s) > 0) snprintf(buf, len, "%s:%d", config_setting_source_file(s) ? config_setting_source_file(s) : cfg->source, config_setting_source_line(s));
  else snprintf(buf, len, "%s", cfg->source);
}

/* whether a --set gave key (itself or a group holding it) */
PetscBool RnConfig_SetFromCommandLine(RnConfig cfg, const char *key)
{
  for (int i = cfg->nset - 1; i >= 0; i--) {
    size_t n = strlen(cfg->set_keys[i]);
    if (!strncmp(key, cfg->set_keys[i], n) && (key[n] == 0 || key[n] == '.')) return PETSC_TRUE;
  }
  return PETSC_FALSE;
}


PetscErrorCode RnConfigError(RnConfig cfg, const char *key, const char *fmt, ...)
{
  char where[PETSC_MAX_PATH_LEN + 64], what[1024];
  va_list ap;

  PetscFunctionBeginUser;
  if (!cfg->reporting) {
    /* a misspelled key explains most later errors ("ode.sovler" leaves the
     * default solver, which then clashes with ode.adaptive): report it first */
    cfg->reporting = PETSC_TRUE;
    PetscCall(RnConfig_CheckUnusedIn(cfg, config_root_setting(&cfg->lc), PETSC_TRUE));
  }
  RnConfig_Where(cfg, key, config_lookup(&cfg->lc, key), where, sizeof where);
  va_start(ap, fmt);
  vsnprintf(what, sizeof what, fmt, ap);
  va_end(ap);
  RnInputError(cfg->comm, "%s: %s: %s", where, key, what);
}


void RnConfig_Remember(RnConfig cfg, const char *key)
{
  for (int i = 0; i < cfg->nknown; i++)
    if (!strcmp(cfg->known[i], key)) return;
  if (cfg->nknown < RN_MAX_KEYS) snprintf(cfg->known[cfg->nknown++], RN_KEY_LEN, "%s", key);
}

/* key was absent and takes its default */
void RnConfig_MarkDefault(RnConfig cfg, const char *key)
{
  for (int i = 0; i < cfg->nknown; i++)
    if (!strcmp(cfg->known[i], key)) cfg->defaulted[i] = PETSC_TRUE;
}

PetscBool RnConfigHas(RnConfig cfg, const char *key) { return config_lookup(&cfg->lc, key) ? PETSC_TRUE : PETSC_FALSE; }

PetscBool RnConfigIsString(RnConfig cfg, const char *key)
{
  config_setting_t *s = config_lookup(&cfg->lc, key);
  return s && config_setting_type(s) == CONFIG_TYPE_STRING ? PETSC_TRUE : PETSC_FALSE;
}
