/* config_set.c: --set key=value, typed by the key's value. */
#include "configimpl.h"

#include <ctype.h>
#include <errno.h>
#include <limits.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* Creates key (and its parent groups) with the given type, replacing an
 * existing setting of another type. */
PetscErrorCode RnConfig_CreateSetting(RnConfig cfg, const char *key, int type, config_setting_t **out)
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
        PetscCall(RnConfigError(cfg, group, "expected a group { ... } holding %s, got %s", key + (dot - path) + 1, RnConfig_TypeName(config_setting_type(child))));
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

/* A value written without quotes that can only mean a string: letters,
 * digits and _ . / + - : (a solver name, a path), not starting like a number. */
static int BareWord(const char *v)
{
  if (!*v || isdigit((unsigned char)v[0]) || ((v[0] == '-' || v[0] == '+' || v[0] == '.') && isdigit((unsigned char)v[1]))) return 0;
  if (!strcmp(v, "true") || !strcmp(v, "false")) return 0;
  for (const char *c = v; *c; c++)
    if (!(isalnum((unsigned char)*c) || strchr("_./+-:", *c))) return 0;
  return 1;
}

/* the keys set from the command line, for messages that name the --set */
static void RememberSet(RnConfig cfg, const char *key, const char *assignment)
{
  if (cfg->nset >= RN_MAX_KEYS) return;
  snprintf(cfg->set_keys[cfg->nset], RN_KEY_LEN, "%s", key);
  snprintf(cfg->set_args[cfg->nset], RN_KEY_LEN * 2, "%s", assignment);
  cfg->nset++;
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
    RnInputCheck(!RnConfig_WrappingIntegerLine(eq + 1, literal, sizeof literal), cfg->comm, "--set %s: the integer %s does not fit in 32 bits; check the value, or write %sL for a 64-bit one", assignment, literal, literal);
  }
  /* parse the value with libconfig itself; a bare word (rk4, /data/cifar) is
   * a string: the getter of the key says whether a string is what it takes */
  config_init(&tmp);
  PetscCall(PetscSNPrintf(text, sizeof text, "v = %s;", eq + 1));
  if (config_read_string(&tmp, text) != CONFIG_TRUE) {
    config_destroy(&tmp);
    config_init(&tmp);
    if (!BareWord(eq + 1) || (PetscSNPrintf(text, sizeof text, "v = \"%s\";", eq + 1), config_read_string(&tmp, text) != CONFIG_TRUE)) {
      config_destroy(&tmp);
      RnInputError(cfg->comm, "--set %s: the value '%s' is not a number, a \"quoted string\", true/false, [a list] or ( a list of groups ); for a string write --set '%s=\"%s\"'",
                   assignment, eq + 1, key, eq + 1);
    }
  }
  /* one key a --set: "lr=0.5;seed=77" would set lr and drop seed */
  if (config_setting_length(config_root_setting(&tmp)) != 1) {
    config_destroy(&tmp);
    RnInputError(cfg->comm, "--set %s: one key=value a --set; give each of the others a --set of its own", assignment);
  }
  value = config_lookup(&tmp, "v");
  type = config_setting_type(value);
  PetscCall(RnConfig_CreateSetting(cfg, key, type, &target));
  /* the parsed value, elements recursively; a --set names no file */
  if (RnConfig_CopyValue(target, value, NULL)) {
    config_destroy(&tmp);
    RnInputError(cfg->comm, "--set %s: cannot copy the value (mixed types in an array?)", assignment);
  }
  config_destroy(&tmp);
  (void)parent;
  RememberSet(cfg, key, assignment);
  PetscFunctionReturn(0);
}

PetscErrorCode RnConfigSetString(RnConfig cfg, const char *key, const char *value)
{
  config_setting_t *target;
  char assignment[RN_KEY_LEN * 2];

  PetscFunctionBeginUser;
  PetscCall(RnConfig_CreateSetting(cfg, key, CONFIG_TYPE_STRING, &target));
  RnInputCheck(config_setting_set_string(target, value) == CONFIG_TRUE, cfg->comm, "%s: cannot set the string '%s'", key, value);
  snprintf(assignment, sizeof assignment, "%s=%s", key, value);
  RememberSet(cfg, key, assignment);
  PetscFunctionReturn(0);
}

