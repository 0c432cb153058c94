/* config_write.c: the resolved config written back, and the diff of a resume's
 * config against the one its checkpoints were made with. */
#include "configimpl.h"

#include <ctype.h>
#include <errno.h>
#include <limits.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* Our own writer: libconfig 1.5 prints floats with 15 digits, and a resumed
 * run must read back exactly the values it ran with. */

static void WriteValue(FILE *fp, config_setting_t *s, int depth); /* members and elements recurse into it */

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

static void WriteResolved(RnConfig cfg, FILE *fp)
{
  fprintf(fp, "# resolved configuration of this run (from %s); every key, defaults included\n", cfg->source);
  for (int i = 1; i < cfg->nfiles; i++) fprintf(fp, "# with the keys of its base %s (@include)\n", cfg->files[i].path);
  WriteMembers(fp, config_root_setting(&cfg->lc), 0);
}

PetscErrorCode RnConfigPrint(RnConfig cfg, FILE *fp)
{
  int rank;

  PetscFunctionBeginUser;
  PetscCallMPI(MPI_Comm_rank(cfg->comm, &rank));
  if (rank == 0) {
    WriteResolved(cfg, fp);
    fflush(fp);
  }
  PetscFunctionReturn(0);
}

PetscErrorCode RnConfigValueText(RnConfig cfg, const char *key, char *text, size_t len)
{
  config_setting_t *s = config_lookup(&cfg->lc, key);
  char *buf = NULL;
  size_t n = 0, o = 0;
  FILE *fp;

  PetscFunctionBeginUser;
  text[0] = 0;
  if (!s) PetscFunctionReturn(0);
  fp = open_memstream(&buf, &n);
  PetscCheck(fp, PETSC_COMM_SELF, PETSC_ERR_MEM, "open_memstream failed");
  WriteValue(fp, s, 0);
  fclose(fp);
  /* on one line: newlines and the indentation after them become one space */
  for (size_t i = 0; buf[i] && o + 1 < len; i++) {
    if (buf[i] == '\n') {
      while (buf[i + 1] == ' ') i++;
      if (o && text[o - 1] != '(' && text[o - 1] != '{' && buf[i + 1] != ')' && buf[i + 1] != '}') text[o++] = ' ';
    } else text[o++] = buf[i];
  }
  text[o] = 0;
  free(buf);
  PetscFunctionReturn(0);
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
      WriteResolved(cfg, fp);
      ok = fclose(fp) == 0 && rename(tmp, path) == 0;
    } else ok = 0;
  }
  PetscCallMPI(MPI_Bcast(&ok, 1, MPI_INT, 0, cfg->comm));
  RnInputCheck(ok, cfg->comm, "cannot write the resolved configuration to %s", path);
  PetscFunctionReturn(0);
}

/* Every scalar of a tree as "path = value" lines, values as RnConfigWrite writes them. */
void RnConfig_Flatten(FILE *fp, config_setting_t *s, const char *path)
{
  const int type = config_setting_type(s);
  if (type == CONFIG_TYPE_GROUP || type == CONFIG_TYPE_LIST || type == CONFIG_TYPE_ARRAY) {
    for (int i = 0; i < config_setting_length(s); i++) {
      config_setting_t *e = config_setting_get_elem(s, (unsigned)i);
      char sub[RN_KEY_LEN + 32];
      if (type == CONFIG_TYPE_GROUP) snprintf(sub, sizeof sub, "%s%s%s", path, path[0] ? "." : "", config_setting_name(e));
      else snprintf(sub, sizeof sub, "%s.[%d]", path, i);
      RnConfig_Flatten(fp, e, sub);
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
  RnConfig_Flatten(fp, config_root_setting(&cfg->lc), "");
  fclose(fp);
  fp = open_memstream(&stored_text, &stored_len);
  PetscCheck(fp, PETSC_COMM_SELF, PETSC_ERR_MEM, "open_memstream failed");
  RnConfig_Flatten(fp, config_root_setting(&stored), "");
  fclose(fp);
  config_destroy(&stored);
  DiffOneWay(stored_text, now_text, PETSC_TRUE, may_change, diff, len, ndiff);
  DiffOneWay(now_text, stored_text, PETSC_FALSE, may_change, diff, len, ndiff);
  free(now_text);
  free(stored_text);
  PetscFunctionReturn(0);
}
