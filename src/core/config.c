/* config.c: libconfig files with every key validated (see config.h). */
#include "resnode/core/config.h"

#include <ctype.h>
#include <errno.h>
#include <stdlib.h>
#include <libconfig.h>
#include <limits.h>
#include <stdarg.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define RN_MAX_KEYS 1024
#define RN_KEY_LEN 160

struct RnConfig_s {
  MPI_Comm comm;
  config_t lc;
  char source[PETSC_MAX_PATH_LEN]; /* file name (or "<embedded default>") */
  char dir[PETSC_MAX_PATH_LEN];
  /* keys asked for by getters: the known keys for did-you-mean */
  char (*known)[RN_KEY_LEN];
  int nknown;
  PetscBool *defaulted; /* per known key: absent, its default taken */
  /* keys set from the command line, with the argument that set them */
  char (*set_keys)[RN_KEY_LEN];
  char (*set_args)[RN_KEY_LEN * 2];
  int nset;
  PetscBool reporting; /* an error is being reported: no typo scan inside it */
};

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
static int WrappingIntegerLine(const char *text, char *literal, size_t len)
{
  int line = 1;
  for (const char *p = text; *p; p++) {
    if (*p == '\n') line++;
    else if (*p == '"') {
      for (p++; *p && *p != '"'; p++) {
        if (*p == '\\' && p[1]) p++;
        if (*p == '\n') line++;
      }
      if (!*p) break;
    } else if (*p == '#' || (*p == '/' && p[1] == '/')) {
      while (p[1] && p[1] != '\n') p++;
    } else if (*p == '/' && p[1] == '*') {
      for (p += 2; *p && !(*p == '*' && p[1] == '/'); p++)
        if (*p == '\n') line++;
      if (!*p) break;
      p++;
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

PetscErrorCode RnConfigLoadFile(RnConfig cfg, const char *path)
{
  FILE *fp;
  struct stat st;
  char *text, literal[64];
  long size;
  int line;

  PetscFunctionBeginUser;
  PetscCall(PetscStrncpy(cfg->source, path, sizeof cfg->source));
  /* not fopen first: opening a FIFO for reading blocks every rank */
  RnInputCheck(stat(path, &st) == 0, cfg->comm, "%s: cannot open the config file: %s", path, strerror(errno));
  RnInputCheck(S_ISREG(st.st_mode), cfg->comm, "%s: the config is not a regular file (%s)", path, S_ISDIR(st.st_mode) ? "a directory" : (S_ISFIFO(st.st_mode) ? "a FIFO" : "a device or socket"));
  fp = fopen(path, "r");
  RnInputCheck(fp, cfg->comm, "%s: cannot open the config file: %s", path, strerror(errno));
  size = st.st_size;
  PetscCall(PetscMalloc1((size_t)size + 1, &text));
  size = (long)fread(text, 1, (size_t)size, fp);
  text[size] = 0;
  fclose(fp);
  line = WrappingIntegerLine(text, literal, sizeof literal);
  {
    /* an @include that is not a regular file (a FIFO would block every rank) */
    char dir[PETSC_MAX_PATH_LEN], inc[PETSC_MAX_PATH_LEN], full[2 * PETSC_MAX_PATH_LEN + 2];
    const char *slash = strrchr(path, '/');
    int ok = 1;
    snprintf(dir, sizeof dir, "%.*s", slash ? (int)(slash - path) : 1, slash ? path : ".");
    for (const char *p = strstr(text, "@include"); p && ok; p = strstr(p + 8, "@include")) {
      const char *q = strchr(p, '"'), *e = q ? strchr(q + 1, '"') : NULL;
      struct stat ist;
      if (!q || !e) continue;
      snprintf(inc, sizeof inc, "%.*s", (int)(e - q - 1), q + 1);
      if (inc[0] == '/') snprintf(full, sizeof full, "%s", inc);
      else snprintf(full, sizeof full, "%s/%s", dir, inc);
      ok = stat(full, &ist) == 0 && S_ISREG(ist.st_mode);
      if (!ok) {
        PetscCall(PetscFree(text));
        RnInputError(cfg->comm, "%s: @include \"%s\": %s is %s", path, inc, full, stat(full, &ist) ? "missing" : "not a regular file");
      }
    }
  }
  PetscCall(PetscFree(text));
  RnInputCheck(!line, cfg->comm, "%s:%d: the integer %s does not fit in 32 bits (libconfig would read it modulo 2^32); check the value, or write %sL for a 64-bit one", path, line, literal, literal);
  /* relative @include paths are relative to the config's directory */
  PetscCall(PetscStrncpy(cfg->dir, path, sizeof cfg->dir));
  {
    char *slash = strrchr(cfg->dir, '/');
    if (slash) *slash = 0;
    else strcpy(cfg->dir, ".");
  }
  config_set_include_dir(&cfg->lc, cfg->dir);
  if (config_read_file(&cfg->lc, path) != CONFIG_TRUE)
    RnInputError(cfg->comm, "%s:%d: syntax error: %s", config_error_file(&cfg->lc) ? config_error_file(&cfg->lc) : path, config_error_line(&cfg->lc), config_error_text(&cfg->lc));
  PetscFunctionReturn(0);
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
static void Where(RnConfig cfg, const char *key, config_setting_t *s, char *buf, size_t len)
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
static PetscBool SetFromCommandLine(RnConfig cfg, const char *key)
{
  for (int i = cfg->nset - 1; i >= 0; i--) {
    size_t n = strlen(cfg->set_keys[i]);
    if (!strncmp(key, cfg->set_keys[i], n) && (key[n] == 0 || key[n] == '.')) return PETSC_TRUE;
  }
  return PETSC_FALSE;
}

static PetscErrorCode CheckUnusedIn(RnConfig cfg, config_setting_t *group, PetscBool typos_only);

PetscErrorCode RnConfigError(RnConfig cfg, const char *key, const char *fmt, ...)
{
  char where[PETSC_MAX_PATH_LEN + 64], what[1024];
  va_list ap;

  PetscFunctionBeginUser;
  if (!cfg->reporting) {
    /* a misspelled key explains most later errors ("ode.sovler" leaves the
     * default solver, which then clashes with ode.adaptive): report it first */
    cfg->reporting = PETSC_TRUE;
    PetscCall(CheckUnusedIn(cfg, config_root_setting(&cfg->lc), PETSC_TRUE));
  }
  Where(cfg, key, config_lookup(&cfg->lc, key), where, sizeof where);
  va_start(ap, fmt);
  vsnprintf(what, sizeof what, fmt, ap);
  va_end(ap);
  RnInputError(cfg->comm, "%s: %s: %s", where, key, what);
}

static const char *TypeName(int type);
static void MissingHint(RnConfig cfg, const char *key, char *hint, size_t len);

static void Remember(RnConfig cfg, const char *key)
{
  for (int i = 0; i < cfg->nknown; i++)
    if (!strcmp(cfg->known[i], key)) return;
  if (cfg->nknown < RN_MAX_KEYS) snprintf(cfg->known[cfg->nknown++], RN_KEY_LEN, "%s", key);
}

/* key was absent and takes its default */
static void MarkDefault(RnConfig cfg, const char *key)
{
  for (int i = 0; i < cfg->nknown; i++)
    if (!strcmp(cfg->known[i], key)) cfg->defaulted[i] = PETSC_TRUE;
}

PetscBool RnConfigHas(RnConfig cfg, const char *key) { return config_lookup(&cfg->lc, key) ? PETSC_TRUE : PETSC_FALSE; }

/* Creates key (and its parent groups) with the given type, replacing an
 * existing setting of another type. */
static PetscErrorCode CreateSetting(RnConfig cfg, const char *key, int type, config_setting_t **out)
{
  char path[RN_KEY_LEN], *name;
  config_setting_t *parent = config_root_setting(&cfg->lc), *s;

  PetscFunctionBeginUser;
  PetscCall(PetscStrncpy(path, key, sizeof path));
  name = path;
  for (char *dot = strchr(name, '.'); dot; dot = strchr(name, '.')) {
    config_setting_t *child;
    *dot = 0;
    if (name[0] == '[') {
      int index = atoi(name + 1);
      child = config_setting_get_elem(parent, (unsigned)index);
    } else {
      child = config_setting_get_member(parent, name);
      if (child && config_setting_type(child) != CONFIG_TYPE_GROUP && !(config_setting_is_aggregate(child) && dot[1] == '[')) {
        /* "train = 5;" where train.lr is asked for: say so, do not replace it */
        char group[RN_KEY_LEN];
        snprintf(group, sizeof group, "%.*s", (int)(dot - path), key);
        PetscCall(RnConfigError(cfg, group, "expected a group { ... } holding %s, got %s", key + (dot - path) + 1, TypeName(config_setting_type(child))));
      }
      if (!child) child = config_setting_add(parent, name, CONFIG_TYPE_GROUP);
    }
    RnInputCheck(child, cfg->comm, "%s: cannot create '%s' here (is a parent a list or a value?)", key, name);
    parent = child;
    name = dot + 1;
  }
  s = config_setting_get_member(parent, name);
  /* a new value replaces an old one: aggregates are not merged */
  if (s && (config_setting_type(s) != type || config_setting_is_aggregate(s))) {
    config_setting_remove(parent, name);
    s = NULL;
  }
  if (!s) s = config_setting_add(parent, name, type);
  RnInputCheck(s, cfg->comm, "%s: cannot create the setting", key);
  *out = s;
  PetscFunctionReturn(0);
}

PetscErrorCode RnConfigSet(RnConfig cfg, const char *assignment)
{
  const char *eq = strchr(assignment, '=');
  char key[RN_KEY_LEN], text[4096];
  config_t tmp;
  config_setting_t *value, *target, *parent;
  int type;

  PetscFunctionBeginUser;
  RnInputCheck(eq && eq != assignment && eq[1], cfg->comm, "--set %s: expected key=value, e.g. --set train.lr=0.001", assignment);
  RnInputCheck((size_t)(eq - assignment) < sizeof key, cfg->comm, "--set %s: key too long", assignment);
  memcpy(key, assignment, (size_t)(eq - assignment));
  key[eq - assignment] = 0;
  for (const char *c = key; *c; c++)
    RnInputCheck(isalnum((unsigned char)*c) || *c == '_' || *c == '.' || *c == '-' || *c == '[' || *c == ']', cfg->comm, "--set %s: '%s' is not a key (letters, digits, _ and dots)", assignment, key);
  {
    char literal[64];
    RnInputCheck(!WrappingIntegerLine(eq + 1, literal, sizeof literal), cfg->comm, "--set %s: the integer %s does not fit in 32 bits; check the value, or write %sL for a 64-bit one", assignment, literal, literal);
  }
  /* parse the value with libconfig itself */
  config_init(&tmp);
  PetscCall(PetscSNPrintf(text, sizeof text, "v = %s;", eq + 1));
  if (config_read_string(&tmp, text) != CONFIG_TRUE) {
    config_destroy(&tmp);
    RnInputError(cfg->comm, "--set %s: the value '%s' is not a number, a \"quoted string\", true/false, [a list] or ( a list of groups )", assignment, eq + 1);
  }
  value = config_lookup(&tmp, "v");
  type = config_setting_type(value);
  PetscCall(CreateSetting(cfg, key, type, &target));
  /* copy the parsed value: scalars directly, aggregates by re-parsing into place */
  switch (type) {
  case CONFIG_TYPE_INT:
    config_setting_set_int(target, config_setting_get_int(value));
    break;
  case CONFIG_TYPE_INT64:
    config_setting_set_int64(target, config_setting_get_int64(value));
    break;
  case CONFIG_TYPE_FLOAT:
    config_setting_set_float(target, config_setting_get_float(value));
    break;
  case CONFIG_TYPE_BOOL:
    config_setting_set_bool(target, config_setting_get_bool(value));
    break;
  case CONFIG_TYPE_STRING:
    config_setting_set_string(target, config_setting_get_string(value));
    break;
  default: {
    /* arrays, lists and groups: copy element by element (recursively) */
    PetscErrorCode CopySetting(RnConfig, config_setting_t *, config_setting_t *);
    PetscCall(CopySetting(cfg, value, target));
  }
  }
  config_destroy(&tmp);
  (void)parent;
  if (cfg->nset < RN_MAX_KEYS) {
    snprintf(cfg->set_keys[cfg->nset], RN_KEY_LEN, "%s", key);
    snprintf(cfg->set_args[cfg->nset], RN_KEY_LEN * 2, "%s", assignment);
    cfg->nset++;
  }
  PetscFunctionReturn(0);
}

PetscErrorCode CopySetting(RnConfig cfg, config_setting_t *from, config_setting_t *to)
{
  PetscFunctionBeginUser;
  for (int i = 0; i < config_setting_length(from); i++) {
    config_setting_t *e = config_setting_get_elem(from, (unsigned)i), *n;
    int type = config_setting_type(e);
    n = config_setting_add(to, config_setting_type(to) == CONFIG_TYPE_GROUP ? config_setting_name(e) : NULL, type);
    RnInputCheck(n, cfg->comm, "cannot copy a --set value (mixed types in an array?)");
    switch (type) {
    case CONFIG_TYPE_INT:
      config_setting_set_int(n, config_setting_get_int(e));
      break;
    case CONFIG_TYPE_INT64:
      config_setting_set_int64(n, config_setting_get_int64(e));
      break;
    case CONFIG_TYPE_FLOAT:
      config_setting_set_float(n, config_setting_get_float(e));
      break;
    case CONFIG_TYPE_BOOL:
      config_setting_set_bool(n, config_setting_get_bool(e));
      break;
    case CONFIG_TYPE_STRING:
      config_setting_set_string(n, config_setting_get_string(e));
      break;
    default:
      PetscCall(CopySetting(cfg, e, n));
    }
  }
  PetscFunctionReturn(0);
}

static const char *TypeName(int type)
{
  switch (type) {
  case CONFIG_TYPE_INT:
  case CONFIG_TYPE_INT64:
    return "an integer";
  case CONFIG_TYPE_FLOAT:
    return "a number";
  case CONFIG_TYPE_STRING:
    return "a string";
  case CONFIG_TYPE_BOOL:
    return "true/false";
  case CONFIG_TYPE_ARRAY:
    return "an array [...]";
  case CONFIG_TYPE_LIST:
    return "a list (...)";
  case CONFIG_TYPE_GROUP:
    return "a group {...}";
  default:
    return "something else";
  }
}

/* The setting of a key after the common checks, or NULL when absent. */
static config_setting_t *Lookup(RnConfig cfg, const char *key)
{
  Remember(cfg, key);
  return config_lookup(&cfg->lc, key);
}

PetscErrorCode RnConfigGetInt64(RnConfig cfg, const char *key, long long def, long long min, long long max, long long *value)
{
  config_setting_t *s = Lookup(cfg, key);
  long long v = 0;

  PetscFunctionBeginUser;
  if (!s) {
    PetscCall(CreateSetting(cfg, key, CONFIG_TYPE_INT64, &s));
    MarkDefault(cfg, key);
    config_setting_set_int64(s, def);
    *value = def;
    PetscFunctionReturn(0);
  }
  if (config_setting_type(s) == CONFIG_TYPE_INT) v = config_setting_get_int(s);
  else if (config_setting_type(s) == CONFIG_TYPE_INT64) v = config_setting_get_int64(s);
  else if (config_setting_type(s) == CONFIG_TYPE_FLOAT) PetscCall(RnConfigError(cfg, key, "expected an integer in [%lld, %lld], got the number %g", min, max, config_setting_get_float(s)));
  else if (config_setting_type(s) == CONFIG_TYPE_STRING) PetscCall(RnConfigError(cfg, key, "expected an integer in [%lld, %lld], got a string (\"%s\")", min, max, config_setting_get_string(s)));
  else PetscCall(RnConfigError(cfg, key, "expected an integer in [%lld, %lld], got %s", min, max, TypeName(config_setting_type(s))));
  if (v < min || v > max) PetscCall(RnConfigError(cfg, key, "must be in [%lld, %lld], got %lld", min, max, v));
  *value = v;
  PetscFunctionReturn(0);
}

PetscErrorCode RnConfigGetInt(RnConfig cfg, const char *key, int def, int min, int max, int *value)
{
  long long v;

  PetscFunctionBeginUser;
  PetscCall(RnConfigGetInt64(cfg, key, def, min, max, &v));
  *value = (int)v;
  /* keep the resolved file tidy: plain ints for int keys */
  {
    config_setting_t *s = config_lookup(&cfg->lc, key);
    if (s && config_setting_type(s) == CONFIG_TYPE_INT64) {
      PetscCall(CreateSetting(cfg, key, CONFIG_TYPE_INT, &s));
      config_setting_set_int(s, (int)v);
    }
  }
  PetscFunctionReturn(0);
}

PetscErrorCode RnConfigGetReal(RnConfig cfg, const char *key, double def, double min, double max, double *value)
{
  config_setting_t *s = Lookup(cfg, key);
  double v = 0;

  PetscFunctionBeginUser;
  if (!s) {
    PetscCall(CreateSetting(cfg, key, CONFIG_TYPE_FLOAT, &s));
    MarkDefault(cfg, key);
    config_setting_set_float(s, def);
    *value = def;
    PetscFunctionReturn(0);
  }
  switch (config_setting_type(s)) {
  case CONFIG_TYPE_INT:
    v = config_setting_get_int(s);
    break;
  case CONFIG_TYPE_INT64:
    v = (double)config_setting_get_int64(s);
    break;
  case CONFIG_TYPE_FLOAT:
    v = config_setting_get_float(s);
    break;
  case CONFIG_TYPE_STRING:
    PetscCall(RnConfigError(cfg, key, "expected a number in [%g, %g], got a string (\"%s\")", min, max, config_setting_get_string(s)));
    break;
  default:
    PetscCall(RnConfigError(cfg, key, "expected a number in [%g, %g], got %s", min, max, TypeName(config_setting_type(s))));
  }
  if (!(v >= min && v <= max)) PetscCall(RnConfigError(cfg, key, "must be in [%g, %g], got %g", min, max, v));
  *value = v;
  PetscFunctionReturn(0);
}

PetscErrorCode RnConfigGetBool(RnConfig cfg, const char *key, PetscBool def, PetscBool *value)
{
  config_setting_t *s = Lookup(cfg, key);

  PetscFunctionBeginUser;
  if (!s) {
    PetscCall(CreateSetting(cfg, key, CONFIG_TYPE_BOOL, &s));
    MarkDefault(cfg, key);
    config_setting_set_bool(s, def ? 1 : 0);
    *value = def;
    PetscFunctionReturn(0);
  }
  if (config_setting_type(s) != CONFIG_TYPE_BOOL) PetscCall(RnConfigError(cfg, key, "expected true or false, got %s", TypeName(config_setting_type(s))));
  *value = config_setting_get_bool(s) ? PETSC_TRUE : PETSC_FALSE;
  PetscFunctionReturn(0);
}

PetscErrorCode RnConfigGetString(RnConfig cfg, const char *key, const char *def, char *value, size_t len)
{
  config_setting_t *s = Lookup(cfg, key);

  PetscFunctionBeginUser;
  if (!s) {
    if (!def) {
      char where[PETSC_MAX_PATH_LEN];
      Where(cfg, key, NULL, where, sizeof where);
      char hint[RN_KEY_LEN + 96];
      MissingHint(cfg, key, hint, sizeof hint);
      RnInputError(cfg->comm, "%s: %s: missing; expected a \"string\"%s", where, key, hint);
    }
    PetscCall(CreateSetting(cfg, key, CONFIG_TYPE_STRING, &s));
    MarkDefault(cfg, key);
    config_setting_set_string(s, def);
    PetscCall(PetscStrncpy(value, def, len));
    PetscFunctionReturn(0);
  }
  if (config_setting_type(s) != CONFIG_TYPE_STRING) PetscCall(RnConfigError(cfg, key, "expected a \"string\", got %s", TypeName(config_setting_type(s))));
  if (strlen(config_setting_get_string(s)) >= len) PetscCall(RnConfigError(cfg, key, "too long (at most %zu characters)", len - 1));
  PetscCall(PetscStrncpy(value, config_setting_get_string(s), len));
  PetscFunctionReturn(0);
}

PetscErrorCode RnConfigGetChoice(RnConfig cfg, const char *key, const char *def, const char *const choices[], int *index)
{
  char value[256], allowed[1024] = "";

  PetscFunctionBeginUser;
  PetscCall(RnConfigGetString(cfg, key, def, value, sizeof value));
  for (int i = 0; choices[i]; i++) {
    if (!strcmp(value, choices[i])) {
      *index = i;
      PetscFunctionReturn(0);
    }
    if (strlen(allowed) + strlen(choices[i]) + 6 < sizeof allowed) {
      if (i) strcat(allowed, ", ");
      strcat(allowed, "\"");
      strcat(allowed, choices[i]);
      strcat(allowed, "\"");
    }
  }
  PetscCall(RnConfigError(cfg, key, "\"%s\" is not one of %s", value, allowed));
  PetscFunctionReturn(0);
}

/* A path from a --set is relative to the working directory (where the user
 * typed it); one from a file, to the directory of the file that holds it
 * (an @include'd file's own). The resolved path is made absolute and written
 * back, so the run directory's config.cfg resumes from anywhere. */
PetscErrorCode RnConfigGetPath(RnConfig cfg, const char *key, const char *def, int must_exist, char *value, size_t len)
{
  char raw[PETSC_MAX_PATH_LEN], base[PETSC_MAX_PATH_LEN], joined[2 * PETSC_MAX_PATH_LEN + 2], cwd[PETSC_MAX_PATH_LEN], real[PATH_MAX];
  const char *relative_to = "the config's directory";
  char hint[2 * PETSC_MAX_PATH_LEN] = "";
  config_setting_t *s;
  struct stat st;

  PetscFunctionBeginUser;
  PetscCall(RnConfigGetString(cfg, key, def, raw, sizeof raw));
  s = Lookup(cfg, key);
  if (!getcwd(cwd, sizeof cwd)) PetscCall(PetscStrncpy(cwd, ".", sizeof cwd));
  if (raw[0] == '/' || raw[0] == 0) PetscCall(PetscStrncpy(joined, raw, sizeof joined));
  else {
    if (SetFromCommandLine(cfg, key)) {
      PetscCall(PetscStrncpy(base, cwd, sizeof base));
      relative_to = "the working directory";
    }
    else if (s && config_setting_source_file(s)) {
      char *slash;
      PetscCall(PetscStrncpy(base, config_setting_source_file(s), sizeof base));
      slash = strrchr(base, '/');
      if (slash) *slash = 0;
      else PetscCall(PetscStrncpy(base, ".", sizeof base));
    } else PetscCall(PetscStrncpy(base, cfg->dir, sizeof base));
    if (base[0] == '/') snprintf(joined, sizeof joined, "%s/%s", base, raw);
    else snprintf(joined, sizeof joined, "%s/%s/%s", cwd, base, raw);
  }
  /* an existing path in its canonical form; else as joined */
  if (joined[0] && realpath(joined, real)) PetscCall(PetscStrncpy(joined, real, sizeof joined));
  if (strlen(joined) >= len) PetscCall(RnConfigError(cfg, key, "the path '%s' is too long (at most %zu characters)", joined, len - 1));
  PetscCall(PetscStrncpy(value, joined, len));
  if (strcmp(value, raw)) snprintf(hint, sizeof hint, " (resolved from '%s' relative to %s)", raw, relative_to);
  if (must_exist == 1 && (stat(value, &st) || !S_ISREG(st.st_mode) || access(value, R_OK))) PetscCall(RnConfigError(cfg, key, "no readable file '%s'%s", value, hint));
  if (must_exist == 2 && (stat(value, &st) || !S_ISDIR(st.st_mode))) PetscCall(RnConfigError(cfg, key, "no such directory '%s'%s", value, hint));
  if (s && value[0]) config_setting_set_string(s, value);
  PetscFunctionReturn(0);
}

/* Arrays: [1, 2] or lists (1, 2) of numbers. */
static PetscErrorCode GetNumberArray(RnConfig cfg, const char *key, PetscBool integers, int ndef, const double *def, double min, double max, int minn, int maxn, int *n, double *values)
{
  config_setting_t *s = Lookup(cfg, key);
  int len;

  PetscFunctionBeginUser;
  if (!s) {
    if (!def && ndef == 0 && minn > 0) {
      char where[PETSC_MAX_PATH_LEN];
      Where(cfg, key, NULL, where, sizeof where);
      char hint[RN_KEY_LEN + 96];
      MissingHint(cfg, key, hint, sizeof hint);
      RnInputError(cfg->comm, "%s: %s: missing; expected an array of %d to %d numbers%s", where, key, minn, maxn, hint);
    }
    PetscCall(CreateSetting(cfg, key, CONFIG_TYPE_ARRAY, &s));
    MarkDefault(cfg, key);
    for (int i = 0; i < ndef; i++) {
      config_setting_t *e = config_setting_add(s, NULL, integers ? CONFIG_TYPE_INT : CONFIG_TYPE_FLOAT);
      if (integers) config_setting_set_int(e, (int)def[i]);
      else config_setting_set_float(e, def[i]);
      values[i] = def[i];
    }
    *n = ndef;
    PetscFunctionReturn(0);
  }
  if (config_setting_type(s) != CONFIG_TYPE_ARRAY && config_setting_type(s) != CONFIG_TYPE_LIST)
    PetscCall(RnConfigError(cfg, key, "expected an array [a, b, ...] of %s, got %s", integers ? "integers" : "numbers", TypeName(config_setting_type(s))));
  len = config_setting_length(s);
  if (len < minn || len > maxn) PetscCall(RnConfigError(cfg, key, "expected %d to %d entries, got %d", minn, maxn, len));
  for (int i = 0; i < len; i++) {
    config_setting_t *e = config_setting_get_elem(s, (unsigned)i);
    int type = config_setting_type(e);
    double v = 0;
    if (type == CONFIG_TYPE_INT) v = config_setting_get_int(e);
    else if (type == CONFIG_TYPE_INT64) v = (double)config_setting_get_int64(e);
    else if (type == CONFIG_TYPE_FLOAT && !integers) v = config_setting_get_float(e);
    else PetscCall(RnConfigError(cfg, key, "entry [%d] is %s; expected %s", i, TypeName(type), integers ? "an integer" : "a number"));
    if (!(v >= min && v <= max)) PetscCall(RnConfigError(cfg, key, "entry [%d] = %g is outside [%g, %g]", i, v, min, max));
    values[i] = v;
  }
  *n = len;
  PetscFunctionReturn(0);
}

PetscErrorCode RnConfigGetRealArray(RnConfig cfg, const char *key, int ndef, const double *def, double min, double max, int minn, int maxn, int *n, double *values)
{
  PetscFunctionBeginUser;
  PetscCall(GetNumberArray(cfg, key, PETSC_FALSE, ndef, def, min, max, minn, maxn, n, values));
  PetscFunctionReturn(0);
}

PetscErrorCode RnConfigGetIntArray(RnConfig cfg, const char *key, int ndef, const int *def, int min, int max, int minn, int maxn, int *n, int *values)
{
  double *dv, *ddef = NULL;

  PetscFunctionBeginUser;
  PetscCall(PetscMalloc1(PetscMax(maxn, ndef) + 1, &dv));
  if (ndef) {
    PetscCall(PetscMalloc1(ndef, &ddef));
    for (int i = 0; i < ndef; i++) ddef[i] = def[i];
  }
  PetscCall(GetNumberArray(cfg, key, PETSC_TRUE, ndef, ddef, min, max, minn, maxn, n, dv));
  for (int i = 0; i < *n; i++) values[i] = (int)dv[i];
  PetscCall(PetscFree(dv));
  PetscCall(PetscFree(ddef));
  PetscFunctionReturn(0);
}

PetscErrorCode RnConfigGetLength(RnConfig cfg, const char *key, int *n)
{
  config_setting_t *s = config_lookup(&cfg->lc, key);

  PetscFunctionBeginUser;
  Remember(cfg, key);
  *n = 0;
  if (!s) PetscFunctionReturn(0);
  if (config_setting_type(s) != CONFIG_TYPE_LIST && config_setting_type(s) != CONFIG_TYPE_GROUP && config_setting_type(s) != CONFIG_TYPE_ARRAY)
    PetscCall(RnConfigError(cfg, key, "expected a list ( {...}, {...} ), got %s", TypeName(config_setting_type(s))));
  *n = config_setting_length(s);
  /* a list of groups: each element a { ... } */
  for (int i = 0; i < *n; i++) {
    config_setting_t *e = config_setting_get_elem(s, (unsigned)i);
    if (config_setting_type(e) != CONFIG_TYPE_GROUP) {
      char elem[RN_KEY_LEN + 16], where[PETSC_MAX_PATH_LEN + 64];
      snprintf(elem, sizeof elem, "%s.[%d]", key, i);
      Where(cfg, elem, e, where, sizeof where);
      RnInputError(cfg->comm, "%s: %s: expected a group { ... } such as { type = \"dense\"; out = 16; }, got %s", where, elem, TypeName(config_setting_type(e)));
    }
  }
  PetscFunctionReturn(0);
}

/* Edit distance, for did-you-mean. */
static int Distance(const char *a, const char *b)
{
  int la = (int)strlen(a), lb = (int)strlen(b), prev[RN_KEY_LEN + 1], cur[RN_KEY_LEN + 1];
  if (la > RN_KEY_LEN || lb > RN_KEY_LEN) return 1000;
  for (int j = 0; j <= lb; j++) prev[j] = j;
  for (int i = 1; i <= la; i++) {
    cur[0] = i;
    for (int j = 1; j <= lb; j++) {
      int sub = prev[j - 1] + (a[i - 1] != b[j - 1]);
      cur[j] = PetscMin(PetscMin(prev[j] + 1, cur[j - 1] + 1), sub);
    }
    memcpy(prev, cur, sizeof(int) * (lb + 1));
  }
  return prev[lb];
}

/* A key path of a setting: "a.b", "a.[2].c". */
static void PathOf(config_setting_t *s, char *buf, size_t len)
{
  char tmp[RN_KEY_LEN];
  config_setting_t *parent = config_setting_parent(s);
  if (!parent || config_setting_is_root(parent)) {
    snprintf(buf, len, "%s", config_setting_name(s) ? config_setting_name(s) : "");
    return;
  }
  PathOf(parent, tmp, sizeof tmp);
  if (config_setting_name(s)) snprintf(buf, len, "%s.%s", tmp, config_setting_name(s));
  else snprintf(buf, len, "%s.[%d]", tmp, config_setting_index(s));
}

/* For a missing required key: the closest key written in the config, as
 * " (is 'experimnet' at FILE:LINE a misspelling of it?)", or "". */
static PetscBool Known(RnConfig cfg, const char *key);

/* (keys the program has read are not misspellings) */
static void ClosestIn(RnConfig cfg, config_setting_t *group, const char *key, int *best_d, char *best, size_t len, int *line, const char **file)
{
  for (int i = 0; i < config_setting_length(group); i++) {
    config_setting_t *s = config_setting_get_elem(group, (unsigned)i);
    char path[RN_KEY_LEN];
    int d;
    /* the groups of a list (layers) are searched too */
    if (config_setting_name(s)) {
      PathOf(s, path, sizeof path);
      d = Known(cfg, path) ? 1000 : Distance(path, key);
      if (d < *best_d) *best_d = d, snprintf(best, len, "%s", path), *line = config_setting_source_line(s), *file = config_setting_source_file(s);
    }
    if (config_setting_type(s) == CONFIG_TYPE_GROUP || config_setting_type(s) == CONFIG_TYPE_LIST) ClosestIn(cfg, s, key, best_d, best, len, line, file);
  }
}

static void MissingHint(RnConfig cfg, const char *key, char *hint, size_t len)
{
  char best[RN_KEY_LEN] = "";
  int d = 1000, line = 0;
  const char *file = NULL;
  hint[0] = 0;
  ClosestIn(cfg, config_root_setting(&cfg->lc), key, &d, best, sizeof best, &line, &file);
  if (best[0] && d > 0 && d <= PetscMax(2, (int)strlen(key) / 3)) snprintf(hint, len, " (is '%s' at %s:%d a misspelling of it?)", best, file ? file : cfg->source, line);
}

static PetscBool Known(RnConfig cfg, const char *key)
{
  for (int i = 0; i < cfg->nknown; i++)
    if (!strcmp(cfg->known[i], key)) return PETSC_TRUE;
  return PETSC_FALSE;
}

/* Keys nobody asked for: errors (with a did-you-mean); typos_only: only
 * those close to a key that was asked for. */
static PetscErrorCode CheckUnusedIn(RnConfig cfg, config_setting_t *group, PetscBool typos_only)
{
  PetscFunctionBeginUser;
  for (int i = 0; i < config_setting_length(group); i++) {
    config_setting_t *s = config_setting_get_elem(group, (unsigned)i);
    char key[RN_KEY_LEN];
    int type = config_setting_type(s);
    PathOf(s, key, sizeof key);
    if (Known(cfg, key)) {
      /* a known list of groups: look inside its elements */
      if (type == CONFIG_TYPE_LIST)
        for (int j = 0; j < config_setting_length(s); j++) {
          config_setting_t *e = config_setting_get_elem(s, (unsigned)j);
          if (config_setting_type(e) == CONFIG_TYPE_GROUP) PetscCall(CheckUnusedIn(cfg, e, typos_only));
        }
      continue;
    }
    if (type == CONFIG_TYPE_GROUP) {
      PetscCall(CheckUnusedIn(cfg, s, typos_only));
      continue;
    }
    {
      const char *best = NULL;
      int bestd = 1000, best_index = -1;
      for (int k = 0; k < cfg->nknown; k++) {
        int d = Distance(key, cfg->known[k]);
        /* compare the last component too: "lrr" inside another group */
        const char *dot = strrchr(key, '.'), *kdot = strrchr(cfg->known[k], '.');
        if (dot && kdot) d = PetscMin(d, Distance(dot + 1, kdot + 1) + (strncmp(key, cfg->known[k], (size_t)(dot - key)) ? 2 : 0));
        if (d < bestd) bestd = d, best = cfg->known[k], best_index = k;
      }
      if (typos_only) {
        /* before all keys are read, only a sure typo: the same group, at most
         * two edits in the last name, and the key it resembles absent (its
         * default was taken in the typo's place) */
        const char *dot = strrchr(key, '.'), *bdot = best ? strrchr(best, '.') : NULL;
        const size_t plen = dot ? (size_t)(dot - key) : 0;
        const PetscBool same_group = (PetscBool)(best && (dot ? bdot && (size_t)(bdot - best) == plen && !strncmp(key, best, plen) : !bdot));
        PetscBool is_group_of_known = PETSC_FALSE; /* "sgd = [1];" is a wrong type, not a typo */
        for (int k = 0; k < cfg->nknown; k++)
          if (!strncmp(cfg->known[k], key, strlen(key)) && cfg->known[k][strlen(key)] == '.') is_group_of_known = PETSC_TRUE;
        if (!same_group || is_group_of_known || Distance(dot ? dot + 1 : key, bdot ? bdot + 1 : best) > 2 || !cfg->defaulted[best_index]) continue;
      }
      if (best && bestd <= PetscMax(2, (int)strlen(key) / 3)) PetscCall(RnConfigError(cfg, key, "unknown key; did you mean '%s'?", best));
      if (!typos_only) PetscCall(RnConfigError(cfg, key, "unknown key (not used by this experiment); see README.md for the keys of each experiment"));
    }
  }
  PetscFunctionReturn(0);
}

PetscErrorCode RnConfigCheckUnused(RnConfig cfg)
{
  PetscFunctionBeginUser;
  PetscCall(CheckUnusedIn(cfg, config_root_setting(&cfg->lc), PETSC_FALSE));
  PetscFunctionReturn(0);
}

/* Our own writer: libconfig 1.5 prints floats with 15 digits, and a resumed
 * run must read back exactly the values it ran with. */
static void WriteValue(FILE *fp, config_setting_t *s, int depth);

static void WriteFloat(FILE *fp, double v)
{
  char buf[64];
  /* the shortest of 15..17 digits that reads back exactly */
  for (int digits = 15; digits <= 17; digits++) {
    snprintf(buf, sizeof buf, "%.*g", digits, v);
    if (strtod(buf, NULL) == v) break;
  }
  if (!strpbrk(buf, ".eEn")) strcat(buf, ".0"); /* keep it a float for libconfig */
  fputs(buf, fp);
}

static void WriteString(FILE *fp, const char *text)
{
  fputc('"', fp);
  for (; *text; text++) {
    if (*text == '"' || *text == '\\') fputc('\\', fp);
    if (*text == '\n') fputs("\\n", fp);
    else fputc(*text, fp);
  }
  fputc('"', fp);
}

static void WriteMembers(FILE *fp, config_setting_t *group, int depth)
{
  for (int i = 0; i < config_setting_length(group); i++) {
    config_setting_t *m = config_setting_get_elem(group, (unsigned)i);
    fprintf(fp, "%*s%s = ", 2 * depth, "", config_setting_name(m));
    WriteValue(fp, m, depth);
    fputs(";\n", fp);
  }
}

static void WriteValue(FILE *fp, config_setting_t *s, int depth)
{
  switch (config_setting_type(s)) {
  case CONFIG_TYPE_INT:
    fprintf(fp, "%d", config_setting_get_int(s));
    break;
  case CONFIG_TYPE_INT64:
    fprintf(fp, "%lldL", (long long)config_setting_get_int64(s));
    break;
  case CONFIG_TYPE_FLOAT:
    WriteFloat(fp, config_setting_get_float(s));
    break;
  case CONFIG_TYPE_BOOL:
    fputs(config_setting_get_bool(s) ? "true" : "false", fp);
    break;
  case CONFIG_TYPE_STRING:
    WriteString(fp, config_setting_get_string(s));
    break;
  case CONFIG_TYPE_GROUP:
    fputs("{\n", fp);
    WriteMembers(fp, s, depth + 1);
    fprintf(fp, "%*s}", 2 * depth, "");
    break;
  case CONFIG_TYPE_ARRAY:
  case CONFIG_TYPE_LIST: {
    const int array = config_setting_type(s) == CONFIG_TYPE_ARRAY;
    fputs(array ? "[ " : "(\n", fp);
    for (int i = 0; i < config_setting_length(s); i++) {
      if (!array) fprintf(fp, "%*s", 2 * (depth + 1), "");
      WriteValue(fp, config_setting_get_elem(s, (unsigned)i), depth + 1);
      if (i + 1 < config_setting_length(s)) fputs(array ? ", " : ",\n", fp);
    }
    if (array) fputs(" ]", fp);
    else fprintf(fp, "\n%*s)", 2 * depth, "");
    break;
  }
  }
}

PetscErrorCode RnConfigWrite(RnConfig cfg, const char *path)
{
  int rank, ok = 1;
  char tmp[PETSC_MAX_PATH_LEN + 8];

  PetscFunctionBeginUser;
  PetscCallMPI(MPI_Comm_rank(cfg->comm, &rank));
  if (rank == 0) {
    FILE *fp;
    PetscCall(PetscSNPrintf(tmp, sizeof tmp, "%s.tmp", path));
    fp = fopen(tmp, "w");
    if (fp) {
      fprintf(fp, "# resolved configuration of this run (from %s); every key, defaults included\n", cfg->source);
      WriteMembers(fp, config_root_setting(&cfg->lc), 0);
      ok = fclose(fp) == 0 && rename(tmp, path) == 0;
    } else ok = 0;
  }
  PetscCallMPI(MPI_Bcast(&ok, 1, MPI_INT, 0, cfg->comm));
  RnInputCheck(ok, cfg->comm, "cannot write the resolved configuration to %s", path);
  PetscFunctionReturn(0);
}

/* Every scalar of a tree as "path = value" lines, values as RnConfigWrite writes them. */
static void Flatten(FILE *fp, config_setting_t *s, const char *path)
{
  const int type = config_setting_type(s);
  if (type == CONFIG_TYPE_GROUP || type == CONFIG_TYPE_LIST || type == CONFIG_TYPE_ARRAY) {
    for (int i = 0; i < config_setting_length(s); i++) {
      config_setting_t *e = config_setting_get_elem(s, (unsigned)i);
      char sub[RN_KEY_LEN + 32];
      if (type == CONFIG_TYPE_GROUP) snprintf(sub, sizeof sub, "%s%s%s", path, path[0] ? "." : "", config_setting_name(e));
      else snprintf(sub, sizeof sub, "%s.[%d]", path, i);
      Flatten(fp, e, sub);
    }
    if (config_setting_length(s) == 0) fprintf(fp, "%s = (empty)\n", path);
    return;
  }
  fprintf(fp, "%s = ", path);
  WriteValue(fp, s, 0);
  fputc('\n', fp);
}

/* The value of key in flattened text, or NULL (a pointer into text, up to the newline). */
static const char *FlatValue(const char *text, const char *key, int *vlen)
{
  const size_t n = strlen(key);
  for (const char *line = text; line && *line; line = strchr(line, '\n') ? strchr(line, '\n') + 1 : NULL)
    if (!strncmp(line, key, n) && !strncmp(line + n, " = ", 3)) {
      const char *v = line + n + 3;
      *vlen = (int)strcspn(v, "\n");
      return v;
    }
  return NULL;
}

static PetscBool MayChange(const char *key, const char *const *may_change)
{
  for (int i = 0; may_change[i]; i++) {
    const size_t n = strlen(may_change[i]);
    if (!strncmp(key, may_change[i], n) && (key[n] == 0 || key[n] == '.')) return PETSC_TRUE;
  }
  return PETSC_FALSE;
}

/* One direction of the comparison: keys of a that b lacks or holds otherwise. */
static void DiffOneWay(const char *a, const char *b, PetscBool a_is_stored, const char *const *may_change, char *out, size_t len, int *ndiff)
{
  for (const char *line = a; line && *line; line = strchr(line, '\n') ? strchr(line, '\n') + 1 : NULL) {
    char key[RN_KEY_LEN + 32];
    const char *eq = strstr(line, " = "), *vb;
    int la = (int)strcspn(line, "\n"), lb = 0, lv;
    if (!eq || eq - line >= (long)sizeof key) continue;
    snprintf(key, sizeof key, "%.*s", (int)(eq - line), line);
    if (MayChange(key, may_change)) continue;
    lv = la - (int)(eq + 3 - line);
    vb = FlatValue(b, key, &lb);
    if (vb && lb == lv && !strncmp(vb, eq + 3, (size_t)lv)) continue;
    if (!vb && !a_is_stored) {
      /* only in the new config: reported as added */
      snprintf(out + strlen(out), len - strlen(out), "%s%s added (%.*s)", *ndiff ? "; " : "", key, lv, eq + 3);
      (*ndiff)++;
    } else if (!vb) {
      snprintf(out + strlen(out), len - strlen(out), "%s%s removed (was %.*s)", *ndiff ? "; " : "", key, lv, eq + 3);
      (*ndiff)++;
    } else if (a_is_stored) {
      snprintf(out + strlen(out), len - strlen(out), "%s%s was %.*s, now %.*s", *ndiff ? "; " : "", key, lv, eq + 3, lb, vb);
      (*ndiff)++;
    }
  }
}

PetscErrorCode RnConfigCompareFile(RnConfig cfg, const char *path, const char *const *may_change, char *diff, size_t len, int *ndiff)
{
  config_t stored;
  char *now_text = NULL, *stored_text = NULL;
  size_t now_len = 0, stored_len = 0;
  FILE *fp;

  PetscFunctionBeginUser;
  diff[0] = 0;
  *ndiff = 0;
  config_init(&stored);
  if (config_read_file(&stored, path) != CONFIG_TRUE) {
    snprintf(diff, len, "%s:%d: %s (the stored configuration is unreadable)", path, config_error_line(&stored), config_error_text(&stored));
    *ndiff = -1;
    config_destroy(&stored);
    PetscFunctionReturn(0);
  }
  fp = open_memstream(&now_text, &now_len);
  PetscCheck(fp, PETSC_COMM_SELF, PETSC_ERR_MEM, "open_memstream failed");
  Flatten(fp, config_root_setting(&cfg->lc), "");
  fclose(fp);
  fp = open_memstream(&stored_text, &stored_len);
  PetscCheck(fp, PETSC_COMM_SELF, PETSC_ERR_MEM, "open_memstream failed");
  Flatten(fp, config_root_setting(&stored), "");
  fclose(fp);
  config_destroy(&stored);
  DiffOneWay(stored_text, now_text, PETSC_TRUE, may_change, diff, len, ndiff);
  DiffOneWay(now_text, stored_text, PETSC_FALSE, may_change, diff, len, ndiff);
  free(now_text);
  free(stored_text);
  PetscFunctionReturn(0);
}
