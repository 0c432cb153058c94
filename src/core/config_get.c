/* config_get.c: the typed getters, each validating its key (config.h). */
#include "configimpl.h"

#include <ctype.h>
#include <errno.h>
#include <limits.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

const char *RnConfig_TypeName(int type)
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

void RnConfigSetDescribing(RnConfig cfg, PetscBool describing) { cfg->describing = describing; }
PetscBool RnConfigDescribing(RnConfig cfg) { return cfg->describing; }
int RnConfigKeyCount(RnConfig cfg) { return cfg->ndocs; }

void RnConfigSetMeanings(RnConfig cfg, RnKeyMeaningFn meaning, void *ctx) { cfg->meaning = meaning, cfg->meaning_ctx = ctx; }

void RnConfig_MeaningNote(RnConfig cfg, const char *key, char *note, size_t len)
{
  const char *m = cfg->meaning ? cfg->meaning(key, cfg->meaning_ctx) : NULL;
  if (m) snprintf(note, len, " (%s: %s)", key, m);
  else note[0] = 0;
}

void RnConfigKeyDescribe(RnConfig cfg, int i, const char **key, const char **type, const char **def, const char **range)
{
  *key = cfg->docs[i].key, *type = cfg->docs[i].type, *def = cfg->docs[i].def, *range = cfg->docs[i].range;
}

void RnConfig_Describe(RnConfig cfg, const char *key, const char *type, const char *def, const char *range)
{
  char generic[RN_KEY_LEN];
  size_t o = 0;
  int i;

  /* list elements: model.field.[3].out is model.field.[i].out */
  for (const char *p = key; *p && o + 4 < sizeof generic; p++) {
    if (p[0] == '[' && isdigit((unsigned char)p[1])) {
      memcpy(generic + o, "[i]", 3), o += 3;
      while (isdigit((unsigned char)p[1])) p++;
      p++; /* the closing bracket */
    } else generic[o++] = *p;
  }
  generic[o] = 0;
  for (i = 0; i < cfg->ndocs; i++)
    if (!strcmp(cfg->docs[i].key, generic)) break;
  if (i == cfg->ndocs) {
    if (cfg->ndocs == RN_MAX_KEYS) return;
    snprintf(cfg->docs[cfg->ndocs++].key, RN_KEY_LEN, "%s", generic);
  } else if (strchr(key, '[') && strcmp(cfg->docs[i].def, def)) {
    /* the elements of a list disagree (a default that follows the layer's input) */
    snprintf(cfg->docs[i].def, sizeof cfg->docs[i].def, "%s", "varies");
    return;
  }
  snprintf(cfg->docs[i].type, sizeof cfg->docs[i].type, "%s", type);
  snprintf(cfg->docs[i].def, sizeof cfg->docs[i].def, "%s", def);
  snprintf(cfg->docs[i].range, sizeof cfg->docs[i].range, "%s", range);
}

/* The setting of a key after the common checks, or NULL when absent. */
static config_setting_t *Lookup(RnConfig cfg, const char *key)
{
  RnConfig_Remember(cfg, key);
  return config_lookup(&cfg->lc, key);
}

PetscErrorCode RnConfigGetInt64(RnConfig cfg, const char *key, long long def, long long min, long long max, long long *value)
{
  config_setting_t *s = Lookup(cfg, key);
  long long v = 0;
  char def_text[32], range[96];

  PetscFunctionBeginUser;
  snprintf(def_text, sizeof def_text, "%lld", def);
  snprintf(range, sizeof range, "[%lld, %lld]", min, max);
  RnConfig_Describe(cfg, key, "integer", def_text, range);
  if (!s) {
    PetscCall(RnConfig_CreateSetting(cfg, key, CONFIG_TYPE_INT64, &s));
    RnConfig_MarkDefault(cfg, key);
    config_setting_set_int64(s, def);
    *value = def;
    PetscFunctionReturn(0);
  }
  if (config_setting_type(s) == CONFIG_TYPE_INT) v = config_setting_get_int(s);
  else if (config_setting_type(s) == CONFIG_TYPE_INT64) v = config_setting_get_int64(s);
  else if (config_setting_type(s) == CONFIG_TYPE_FLOAT) PetscCall(RnConfigError(cfg, key, "expected an integer in [%lld, %lld], got the number %g", min, max, config_setting_get_float(s)));
  else if (config_setting_type(s) == CONFIG_TYPE_STRING) PetscCall(RnConfigError(cfg, key, "expected an integer in [%lld, %lld], got a string (\"%s\")", min, max, config_setting_get_string(s)));
  else PetscCall(RnConfigError(cfg, key, "expected an integer in [%lld, %lld], got %s", min, max, RnConfig_TypeName(config_setting_type(s))));
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
      PetscCall(RnConfig_CreateSetting(cfg, key, CONFIG_TYPE_INT, &s));
      config_setting_set_int(s, (int)v);
    }
  }
  PetscFunctionReturn(0);
}

PetscErrorCode RnConfigGetReal(RnConfig cfg, const char *key, double def, double min, double max, double *value)
{
  config_setting_t *s = Lookup(cfg, key);
  double v = 0;
  char def_text[32], range[96];

  PetscFunctionBeginUser;
  snprintf(def_text, sizeof def_text, "%g", def);
  snprintf(range, sizeof range, "[%g, %g]", min, max);
  RnConfig_Describe(cfg, key, "number", def_text, range);
  if (!s) {
    PetscCall(RnConfig_CreateSetting(cfg, key, CONFIG_TYPE_FLOAT, &s));
    RnConfig_MarkDefault(cfg, key);
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
    PetscCall(RnConfigError(cfg, key, "expected a number in [%g, %g], got %s", min, max, RnConfig_TypeName(config_setting_type(s))));
  }
  if (!(v >= min && v <= max)) PetscCall(RnConfigError(cfg, key, "must be in [%g, %g], got %g", min, max, v));
  *value = v;
  PetscFunctionReturn(0);
}

PetscErrorCode RnConfigGetBool(RnConfig cfg, const char *key, PetscBool def, PetscBool *value)
{
  config_setting_t *s = Lookup(cfg, key);

  PetscFunctionBeginUser;
  RnConfig_Describe(cfg, key, "bool", def ? "true" : "false", "");
  if (!s) {
    PetscCall(RnConfig_CreateSetting(cfg, key, CONFIG_TYPE_BOOL, &s));
    RnConfig_MarkDefault(cfg, key);
    config_setting_set_bool(s, def ? 1 : 0);
    *value = def;
    PetscFunctionReturn(0);
  }
  if (config_setting_type(s) != CONFIG_TYPE_BOOL) PetscCall(RnConfigError(cfg, key, "expected true or false, got %s", RnConfig_TypeName(config_setting_type(s))));
  *value = config_setting_get_bool(s) ? PETSC_TRUE : PETSC_FALSE;
  PetscFunctionReturn(0);
}

PetscErrorCode RnConfigGetString(RnConfig cfg, const char *key, const char *def, char *value, size_t len)
{
  config_setting_t *s = Lookup(cfg, key);

  PetscFunctionBeginUser;
  {
    char def_text[200];
    snprintf(def_text, sizeof def_text, def ? "\"%s\"" : "required", def);
    RnConfig_Describe(cfg, key, "string", def_text, "");
  }
  if (!s && !def && cfg->describing) {
    /* describing: a required key reads as empty */
    value[0] = 0;
    PetscFunctionReturn(0);
  }
  if (!s) {
    if (!def) {
      char where[PETSC_MAX_PATH_LEN];
      PetscCall(RnConfig_CheckParents(cfg, key)); /* "data = 5;": data is the error, not data.dir */
      RnConfig_Where(cfg, key, NULL, where, sizeof where);
      char hint[RN_KEY_LEN + 96];
      RnConfig_MissingHint(cfg, key, hint, sizeof hint);
      char note[512] = "";
      /* what the key is for, unless a misspelling of it says more */
      if (!hint[0]) RnConfig_MeaningNote(cfg, key, note, sizeof note);
      RnInputError(cfg->comm, "%s: %s: missing; expected a \"string\"%s%s", where, key, note, hint);
    }
    PetscCall(RnConfig_CreateSetting(cfg, key, CONFIG_TYPE_STRING, &s));
    RnConfig_MarkDefault(cfg, key);
    config_setting_set_string(s, def);
    PetscCall(PetscStrncpy(value, def, len));
    PetscFunctionReturn(0);
  }
  if (config_setting_type(s) != CONFIG_TYPE_STRING) PetscCall(RnConfigError(cfg, key, "expected a \"string\", got %s", RnConfig_TypeName(config_setting_type(s))));
  if (strlen(config_setting_get_string(s)) >= len) PetscCall(RnConfigError(cfg, key, "too long (at most %zu characters)", len - 1));
  PetscCall(PetscStrncpy(value, config_setting_get_string(s), len));
  PetscFunctionReturn(0);
}

PetscErrorCode RnConfigGetChoice(RnConfig cfg, const char *key, const char *def, const char *const choices[], int *index)
{
  char value[256], allowed[1024] = "";

  PetscFunctionBeginUser;
  PetscCall(RnConfigGetString(cfg, key, def, value, sizeof value));
  for (int i = 0; choices[i]; i++)
    if (strlen(allowed) + strlen(choices[i]) + 6 < sizeof allowed) {
      if (i) strcat(allowed, ", ");
      strcat(allowed, "\"");
      strcat(allowed, choices[i]);
      strcat(allowed, "\"");
    }
  {
    char def_text[200];
    snprintf(def_text, sizeof def_text, def ? "\"%s\"" : "required", def);
    RnConfig_Describe(cfg, key, "choice", def_text, allowed);
  }
  if (!value[0] && !def && cfg->describing) {
    *index = 0;
    PetscFunctionReturn(0);
  }
  for (int i = 0; choices[i]; i++) {
    if (!strcmp(value, choices[i])) {
      *index = i;
      PetscFunctionReturn(0);
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
  {
    char def_text[200];
    snprintf(def_text, sizeof def_text, def ? "\"%s\"" : "required", def);
    RnConfig_Describe(cfg, key, "path", def_text, must_exist == 1 ? "a readable file" : (must_exist == 2 ? "a directory" : ""));
  }
  if (cfg->describing) must_exist = 0;
  s = Lookup(cfg, key);
  if (!getcwd(cwd, sizeof cwd)) PetscCall(PetscStrncpy(cwd, ".", sizeof cwd));
  if (raw[0] == '/' || raw[0] == 0) PetscCall(PetscStrncpy(joined, raw, sizeof joined));
  else {
    if (RnConfig_SetFromCommandLine(cfg, key)) {
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
  if (must_exist) {
    /* every rank looks on its own host: a path missing on some nodes only is
     * an input error on all ranks (not a hang), naming the first such host */
    const int bad = must_exist == 1 ? (stat(value, &st) || !S_ISREG(st.st_mode) || access(value, R_OK)) : (stat(value, &st) || !S_ISDIR(st.st_mode));
    int rank, size, counts[2] = {bad, 0}, sums[2], first;
    char host[MPI_MAX_PROCESSOR_NAME] = "", where[MPI_MAX_PROCESSOR_NAME + 160] = "";
    PetscCallMPI(MPI_Comm_rank(cfg->comm, &rank));
    PetscCallMPI(MPI_Comm_size(cfg->comm, &size));
    PetscCallMPI(MPI_Allreduce(counts, sums, 1, MPI_INT, MPI_SUM, cfg->comm));
    counts[1] = bad ? rank : size;
    PetscCallMPI(MPI_Allreduce(counts + 1, &first, 1, MPI_INT, MPI_MIN, cfg->comm));
    if (sums[0] > 0 && sums[0] < size) {
      int hlen;
      if (rank == first) MPI_Get_processor_name(host, &hlen);
      PetscCallMPI(MPI_Bcast(host, sizeof host, MPI_CHAR, first, cfg->comm));
      snprintf(where, sizeof where, " on host %s (rank %d; %d of the %d ranks do not see it, the others do: put it on a file system every node mounts, or at this path on every node)", host, first,
               sums[0], size);
    }
    if (sums[0] && must_exist == 1) PetscCall(RnConfigError(cfg, key, "no readable file '%s'%s%s", value, hint, where));
    if (sums[0] && must_exist == 2) PetscCall(RnConfigError(cfg, key, "no such directory '%s'%s%s", value, hint, where));
  }
  if (s && value[0]) config_setting_set_string(s, value);
  PetscFunctionReturn(0);
}

/* Arrays: [1, 2] or lists (1, 2) of numbers. */
static PetscErrorCode GetNumberArray(RnConfig cfg, const char *key, PetscBool integers, int ndef, const double *def, double min, double max, int minn, int maxn, int *n, double *values)
{
  config_setting_t *s = Lookup(cfg, key);
  int len;

  PetscFunctionBeginUser;
  {
    char def_text[200] = "", range[160];
    size_t o = 0;
    if (!def && ndef == 0 && minn > 0) snprintf(def_text, sizeof def_text, "required");
    else {
      o += (size_t)snprintf(def_text, sizeof def_text, "[");
      for (int i = 0; i < ndef && o + 24 < sizeof def_text; i++) o += (size_t)snprintf(def_text + o, sizeof def_text - o, "%s%g", i ? ", " : "", def[i]);
      snprintf(def_text + o, sizeof def_text - o, "]");
    }
    snprintf(range, sizeof range, "%d to %d entries in [%g, %g]", minn, maxn, min, max);
    RnConfig_Describe(cfg, key, integers ? "integer array" : "number array", def_text, range);
  }
  if (!s && !def && ndef == 0 && minn > 0 && cfg->describing) {
    *n = 0;
    PetscFunctionReturn(0);
  }
  if (!s) {
    if (!def && ndef == 0 && minn > 0) {
      char where[PETSC_MAX_PATH_LEN];
      PetscCall(RnConfig_CheckParents(cfg, key));
      RnConfig_Where(cfg, key, NULL, where, sizeof where);
      char hint[RN_KEY_LEN + 96];
      RnConfig_MissingHint(cfg, key, hint, sizeof hint);
      RnInputError(cfg->comm, "%s: %s: missing; expected an array of %d to %d numbers%s", where, key, minn, maxn, hint);
    }
    PetscCall(RnConfig_CreateSetting(cfg, key, CONFIG_TYPE_ARRAY, &s));
    RnConfig_MarkDefault(cfg, key);
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
    PetscCall(RnConfigError(cfg, key, "expected an array [a, b, ...] of %s, got %s", integers ? "integers" : "numbers", RnConfig_TypeName(config_setting_type(s))));
  len = config_setting_length(s);
  if (len < minn || len > maxn) PetscCall(RnConfigError(cfg, key, "expected %d to %d entries, got %d", minn, maxn, len));
  for (int i = 0; i < len; i++) {
    config_setting_t *e = config_setting_get_elem(s, (unsigned)i);
    int type = config_setting_type(e);
    double v = 0;
    if (type == CONFIG_TYPE_INT) v = config_setting_get_int(e);
    else if (type == CONFIG_TYPE_INT64) v = (double)config_setting_get_int64(e);
    else if (type == CONFIG_TYPE_FLOAT && !integers) v = config_setting_get_float(e);
    else PetscCall(RnConfigError(cfg, key, "entry [%d] is %s; expected %s", i, RnConfig_TypeName(type), integers ? "an integer" : "a number"));
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
  RnConfig_Remember(cfg, key);
  RnConfig_Describe(cfg, key, "list", "", "");
  *n = 0;
  if (!s) PetscFunctionReturn(0);
  if (config_setting_type(s) != CONFIG_TYPE_LIST && config_setting_type(s) != CONFIG_TYPE_GROUP && config_setting_type(s) != CONFIG_TYPE_ARRAY)
    PetscCall(RnConfigError(cfg, key, "expected a list ( {...}, {...} ), got %s", RnConfig_TypeName(config_setting_type(s))));
  *n = config_setting_length(s);
  /* a list of groups: each element a { ... } */
  for (int i = 0; i < *n; i++) {
    config_setting_t *e = config_setting_get_elem(s, (unsigned)i);
    if (config_setting_type(e) != CONFIG_TYPE_GROUP) {
      char elem[RN_KEY_LEN + 16], where[PETSC_MAX_PATH_LEN + 64];
      snprintf(elem, sizeof elem, "%s.[%d]", key, i);
      RnConfig_Where(cfg, elem, e, where, sizeof where);
      RnInputError(cfg->comm, "%s: %s: expected a group { ... } such as { type = \"dense\"; out = 16; }, got %s", where, elem, RnConfig_TypeName(config_setting_type(e)));
    }
  }
  PetscFunctionReturn(0);
}
