/* config_tree.c: walking a config's tree, values copied from another config,
 * and the hash of a resolved configuration (config.h). */
#include "configimpl.h"
#include "resnode/core/checksum.h"

#include <stdlib.h>
#include <string.h>

RnConfigKind RnConfigKindOf(RnConfig cfg, const char *key)
{
  config_setting_t *s = config_lookup(&cfg->lc, key);
  if (!s) return RN_CONFIG_ABSENT;
  switch (config_setting_type(s)) {
  case CONFIG_TYPE_GROUP:
    return RN_CONFIG_GROUP;
  case CONFIG_TYPE_LIST:
    return RN_CONFIG_LIST;
  case CONFIG_TYPE_ARRAY:
    return RN_CONFIG_ARRAY;
  default:
    return RN_CONFIG_SCALAR;
  }
}

int RnConfigCount(RnConfig cfg, const char *key)
{
  config_setting_t *s = config_lookup(&cfg->lc, key);
  return s && config_setting_is_aggregate(s) ? config_setting_length(s) : 0;
}

const char *RnConfigMemberName(RnConfig cfg, const char *key, int i)
{
  config_setting_t *s = config_lookup(&cfg->lc, key), *m;
  if (!s || config_setting_type(s) != CONFIG_TYPE_GROUP) return NULL;
  m = config_setting_get_elem(s, (unsigned)i);
  return m ? config_setting_name(m) : NULL;
}

void RnConfigWhere(RnConfig cfg, const char *key, char *buf, size_t len) { RnConfig_Where(cfg, key, config_lookup(&cfg->lc, key), buf, len); }

PetscErrorCode RnConfigRemove(RnConfig cfg, const char *key)
{
  config_setting_t *s = config_lookup(&cfg->lc, key), *parent;

  PetscFunctionBeginUser;
  if (!s) PetscFunctionReturn(0);
  parent = config_setting_parent(s);
  RnInputCheck(parent && config_setting_remove_elem(parent, (unsigned)config_setting_index(s)) == CONFIG_TRUE, cfg->comm, "%s: cannot remove it", key);
  PetscFunctionReturn(0);
}

/* The copy of a file name that lives as long as cfg (a setting points to it). */
static const char *OwnFileName(RnConfig cfg, const char *file)
{
  if (!file) return NULL;
  for (int i = 0; i < cfg->nfiles; i++)
    if (!strcmp(cfg->files[i].path, file)) return cfg->files[i].path;
  if (cfg->nfiles == RN_MAX_CONFIG_FILES) return NULL;
  snprintf(cfg->files[cfg->nfiles].path, sizeof cfg->files[cfg->nfiles].path, "%s", file);
  cfg->files[cfg->nfiles].checksum = 0;
  return cfg->files[cfg->nfiles++].path;
}

PetscErrorCode RnConfigSetFrom(RnConfig cfg, const char *key, RnConfig from, const char *from_key)
{
  config_setting_t *src = config_lookup(&from->lc, from_key), *dst;
  char where[PETSC_MAX_PATH_LEN + 64];

  PetscFunctionBeginUser;
  RnInputCheck(src, cfg->comm, "%s: no such setting", from_key);
  RnConfig_Where(from, from_key, src, where, sizeof where);
  PetscCall(RnConfig_CreateSetting(cfg, key, config_setting_type(src), &dst));
  RnInputCheck(!RnConfig_CopyValue(dst, src, OwnFileName(cfg, config_setting_source_file(src))), cfg->comm, "%s: %s: cannot copy the value", where, key);
  /* the value's own line names it from now on, not a --set of the same key */
  for (int i = 0; i < cfg->nset; i++) {
    const size_t n = strlen(cfg->set_keys[i]);
    if (!strncmp(key, cfg->set_keys[i], n) && (key[n] == 0 || key[n] == '.')) {
      memmove(cfg->set_keys + i, cfg->set_keys + i + 1, (size_t)(cfg->nset - i - 1) * sizeof *cfg->set_keys);
      memmove(cfg->set_args + i, cfg->set_args + i + 1, (size_t)(cfg->nset - i - 1) * sizeof *cfg->set_args);
      cfg->nset--, i--;
    }
  }
  PetscFunctionReturn(0);
}

static PetscBool Excluded(const char *key, const char *const *exclude)
{
  for (int i = 0; exclude && exclude[i]; i++) {
    const size_t n = strlen(exclude[i]);
    if (!strncmp(key, exclude[i], n) && (key[n] == 0 || key[n] == '.')) return PETSC_TRUE;
  }
  return PETSC_FALSE;
}

PetscErrorCode RnConfigHash(RnConfig cfg, const char *const *exclude, uint64_t *hash)
{
  char *text = NULL;
  size_t n = 0;
  FILE *fp;

  PetscFunctionBeginUser;
  fp = open_memstream(&text, &n);
  PetscCheck(fp, PETSC_COMM_SELF, PETSC_ERR_MEM, "open_memstream failed");
  RnConfig_Flatten(fp, config_root_setting(&cfg->lc), "");
  fclose(fp);
  *hash = RN_CHECKSUM_INIT;
  for (const char *line = text; *line;) {
    const size_t len = strcspn(line, "\n");
    char key[RN_KEY_LEN];
    snprintf(key, sizeof key, "%.*s", (int)strcspn(line, " "), line);
    if (!Excluded(key, exclude)) *hash = RnChecksum(line, len + 1, *hash);
    line += len + (line[len] == '\n');
  }
  free(text);
  PetscFunctionReturn(0);
}
