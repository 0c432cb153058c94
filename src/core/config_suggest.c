/* config_suggest.c: unknown keys, each with the nearest known one. */
#include "configimpl.h"

#include <ctype.h>
#include <errno.h>
#include <limits.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* Edit distance, for did-you-mean. */
static PetscBool Known(RnConfig cfg, const char *key)
{
  for (int i = 0; i < cfg->nknown; i++)
    if (!strcmp(cfg->known[i], key)) return PETSC_TRUE;
  return PETSC_FALSE;
}

int RnEditDistance(const char *a, const char *b)
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
      d = Known(cfg, path) ? 1000 : RnEditDistance(path, key);
      if (d < *best_d) *best_d = d, snprintf(best, len, "%s", path), *line = config_setting_source_line(s), *file = config_setting_source_file(s);
    }
    if (config_setting_type(s) == CONFIG_TYPE_GROUP || config_setting_type(s) == CONFIG_TYPE_LIST) ClosestIn(cfg, s, key, best_d, best, len, line, file);
  }
}

void RnConfig_MissingHint(RnConfig cfg, const char *key, char *hint, size_t len)
{
  char best[RN_KEY_LEN] = "";
  int d = 1000, line = 0;
  const char *file = NULL;
  hint[0] = 0;
  ClosestIn(cfg, config_root_setting(&cfg->lc), key, &d, best, sizeof best, &line, &file);
  if (best[0] && d > 0 && d <= PetscMax(2, (int)strlen(key) / 3)) snprintf(hint, len, " (is '%s' at %s:%d a misspelling of it?)", best, file ? file : cfg->source, line);
}


/* Keys nobody asked for: errors (with a did-you-mean); typos_only: only
 * those close to a key that was asked for. */
PetscErrorCode RnConfig_CheckUnusedIn(RnConfig cfg, config_setting_t *group, PetscBool typos_only)
{
  PetscFunctionBeginUser;
  for (int i = 0; i < config_setting_length(group); i++) {
    config_setting_t *s = config_setting_get_elem(group, (unsigned)i);
    char key[RN_KEY_LEN];
    int type = config_setting_type(s);
    PathOf(s, key, sizeof key);
    if (strlen(key) >= sizeof key - 1) {
      /* longer than any key (and cut here): its own file and line */
      const char *file = config_setting_source_file(s);
      RnInputError(cfg->comm, "%s:%d: %.60s...: unknown key, longer than any key (at most %d characters); resnode-mpi --keys EXPERIMENT lists an experiment's keys", file ? file : "<config>",
                   config_setting_source_line(s), key, RN_KEY_LEN - 1);
    }
    if (Known(cfg, key)) {
      /* a known list of groups: look inside its elements */
      if (type == CONFIG_TYPE_LIST)
        for (int j = 0; j < config_setting_length(s); j++) {
          config_setting_t *e = config_setting_get_elem(s, (unsigned)j);
          if (config_setting_type(e) == CONFIG_TYPE_GROUP) PetscCall(RnConfig_CheckUnusedIn(cfg, e, typos_only));
        }
      continue;
    }
    if (type == CONFIG_TYPE_GROUP) {
      PetscCall(RnConfig_CheckUnusedIn(cfg, s, typos_only));
      continue;
    }
    {
      const char *best = NULL;
      int bestd = 1000, best_index = -1;
      for (int k = 0; k < cfg->nknown; k++) {
        int d = RnEditDistance(key, cfg->known[k]);
        /* compare the last component too: "lrr" inside another group */
        const char *dot = strrchr(key, '.'), *kdot = strrchr(cfg->known[k], '.');
        if (dot && kdot) d = PetscMin(d, RnEditDistance(dot + 1, kdot + 1) + (strncmp(key, cfg->known[k], (size_t)(dot - key)) ? 2 : 0));
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
        if (!same_group || is_group_of_known || RnEditDistance(dot ? dot + 1 : key, bdot ? bdot + 1 : best) > 2) continue;
        /* sure: the key it resembles took its default in the typo's place, or
         * was set in another file (a base the typo meant to override) */
        if (!cfg->defaulted[best_index]) {
          config_setting_t *b = config_lookup(&cfg->lc, best);
          const char *typo_file = config_setting_source_file(s), *best_file = b ? config_setting_source_file(b) : NULL;
          if (!typo_file || !best_file || !strcmp(typo_file, best_file)) continue;
        }
      }
      if (best && bestd <= PetscMax(2, (int)strlen(key) / 3)) {
        char note[512];
        RnConfig_MeaningNote(cfg, best, note, sizeof note);
        PetscCall(RnConfigError(cfg, key, "unknown key; did you mean '%s'?%s", best, note));
      }
      if (!typos_only) PetscCall(RnConfigError(cfg, key, "unknown key (not used by this experiment); resnode-mpi --keys EXPERIMENT lists an experiment's keys"));
    }
  }
  PetscFunctionReturn(0);
}

PetscErrorCode RnConfigCheckUnused(RnConfig cfg)
{
  PetscFunctionBeginUser;
  PetscCall(RnConfig_CheckUnusedIn(cfg, config_root_setting(&cfg->lc), PETSC_FALSE));
  PetscFunctionReturn(0);
}
